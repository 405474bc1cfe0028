"""forwarded.py and proxyprotocol.py without sockets: trust lists, forwarded headers, PROXY headers."""

import struct

import pytest
from multidict import CIMultiDict

from server.protocol.forwarded import AllowList, ProxyPolicy, parse_forwarded
from server.protocol.proxyprotocol import ProxyHeaderError, V2_SIGNATURE, parse_proxy_header

SECURE = (("X-FORWARDED-PROTOCOL", "ssl"), ("X-FORWARDED-PROTO", "https"), ("X-FORWARDED-SSL", "on"))
PEER = ("127.0.0.1", 40000)
OUTSIDER = ("203.0.113.9", 40000)


def policy(allow="127.0.0.1,::1", mode="x-forwarded", forwarder=("SCRIPT_NAME", "REMOTE_USER"),
           host=True) -> ProxyPolicy:
    """A policy that opted in to the client address (``mode``) and host (``host``)."""
    return ProxyPolicy(AllowList(allow), SECURE, frozenset(forwarder), mode, forwarded_host=host)


def resolve(headers, peer=PEER, scheme="http", **kwargs):
    return policy(**kwargs).resolve(CIMultiDict(headers), peer, scheme)


# -- allow lists ------------------------------------------------------------------

@pytest.mark.parametrize("entries, address, allowed", [
    ("127.0.0.1,::1", "127.0.0.1", True),
    ("127.0.0.1,::1", "::1", True),
    ("127.0.0.1,::1", "127.0.0.2", False),
    ("10.0.0.0/8", "10.200.3.4", True),
    ("10.0.0.0/8", "11.0.0.1", False),
    ("192.168.0.0/16, 2001:db8::/32", "2001:db8::7", True),
    ("127.0.0.1", "::ffff:127.0.0.1", True),  # IPv4-mapped IPv6 peer of a dual-stack socket
    ("*", "198.51.100.1", True),
    ("*", "unknown", True),
    ("127.0.0.1", "not-an-address", False),
    ("", "127.0.0.1", False),
])
def test_allow_list_addresses_and_networks(entries, address, allowed):
    assert AllowList(entries).allows_ip(address) is allowed


def test_allow_list_accepts_gunicorn_lists_and_trusts_unix_peers():
    allow = AllowList(["10.1.2.3", "172.16.0.0/12"])
    assert allow.allows_peer(("172.20.1.1", 5)) and not allow.allows_peer(("10.1.2.4", 5))
    assert allow.allows_peer("") and allow.allows_peer(None)  # unix sockets: gunicorn allows them


def test_allow_list_remembers_a_bounded_number_of_answers():
    allow = AllowList("10.0.0.0/8")
    addresses = [f"10.{i // 256}.{i % 256}.1" for i in range(AllowList.CACHED + 100)]
    assert all(allow.allows_ip(a) for a in addresses)
    assert not any(allow.allows_ip(a.replace("10.", "11.", 1)) for a in addresses)
    assert len(allow._answers) == AllowList.CACHED  # past the bound: answered, not remembered


def test_requests_without_forwarding_headers_skip_the_trust_check():
    assert set(policy().watched) == {"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Port", "X-FORWARDED-PROTOCOL",
                                     "X-FORWARDED-PROTO", "X-FORWARDED-SSL", "SCRIPT_NAME", "REMOTE_USER"}
    assert set(policy(mode="forwarded").watched) >= {"Forwarded"}
    assert "X-Forwarded-For" not in policy(mode="off").watched
    assert "X-Forwarded-Host" not in policy(host=False).watched


SPOOF = [("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Port", "8443"),
         ("X-Forwarded-Proto", "https"), ("Forwarded", "for=198.51.100.8;host=evil2.example")]


BROWSER_FIELDS = [(f"X-Browser-{i}", "v") for i in range(12)]  # more fields than watched names


@pytest.mark.parametrize("others", [[], BROWSER_FIELDS], ids=["few-fields", "many-fields"])
@pytest.mark.parametrize("name", ["x-forwarded-proto", "X-FORWARDED-SSL", "X-Forwarded-For", "script_name"])
def test_a_watched_field_is_seen_in_any_case_among_few_or_many(others, name):
    """(forwards() looks each watched name up among the fields, in any case.)"""
    p = policy()
    assert p.forwards(CIMultiDict([*others, (name, "x")])) is True
    assert p.forwards(CIMultiDict([*others, ("X-Forwarded-Other", "x")])) is False


def test_by_default_a_trusted_peer_sets_the_scheme_only_as_gunicorn():
    default = ProxyPolicy(AllowList("127.0.0.1"), SECURE)
    assert (default.proxy_headers, default.forwarded_host) == ("off", False)
    assert set(default.watched) == {name for name, _ in SECURE}
    forwarded = default.resolve(CIMultiDict(SPOOF), PEER, "http")
    assert (forwarded.client, forwarded.scheme, forwarded.host, forwarded.error) == (PEER, "https", None, None)


@pytest.mark.parametrize("mode, client", [("x-forwarded", "198.51.100.7"), ("forwarded", "198.51.100.8")])
def test_the_client_address_without_the_host_unless_forwarded_host(mode, client):
    forwarded = resolve(SPOOF, mode=mode, host=False)
    assert (forwarded.client, forwarded.scheme, forwarded.host) == ((client, 0), "https", None)
    assert resolve(SPOOF, mode=mode).host == ("evil.example:8443" if mode == "x-forwarded" else "evil2.example")
    forwarded = resolve({"Host": "x", "Forwarded": "for=1.2.3.4"})  # Forwarded: not read in x-forwarded mode
    assert (forwarded.client, forwarded.host) == (PEER, None)


# -- X-Forwarded-* ------------------------------------------------------------------

def test_untrusted_peer_changes_nothing():
    headers = {"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example",
               "Script_Name": "/x"}
    forwarded = resolve(headers, peer=OUTSIDER)
    assert (forwarded.client, forwarded.scheme, forwarded.host, forwarded.fields) == \
        (OUTSIDER, "http", None, frozenset())


def test_trusted_peer_sets_client_scheme_and_host():
    forwarded = resolve({"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https",
                         "X-Forwarded-Host": "shop.example"})
    assert forwarded.client == ("198.51.100.7", 0)
    assert forwarded.scheme == "https"
    assert forwarded.host == "shop.example"
    assert forwarded.error is None


def test_client_is_the_rightmost_untrusted_hop():
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.0.0.2, 127.0.0.1"}
    assert resolve(headers, allow="127.0.0.1,10.0.0.0/8").client == ("198.51.100.7", 0)
    # every hop trusted: the leftmost is the client
    assert resolve({"X-Forwarded-For": "10.0.0.9, 10.0.0.2"}, allow="127.0.0.1,10.0.0.0/8").client == \
        ("10.0.0.9", 0)
    # "*": trust the whole chain, as uvicorn does
    assert resolve(headers, allow="*", peer=OUTSIDER).client == ("6.6.6.6", 0)


def test_repeated_forwarded_for_fields_form_one_list():
    headers = CIMultiDict([("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.7")])
    assert policy().resolve(headers, PEER, "http").client == ("198.51.100.7", 0)


def test_scheme_headers_follow_gunicorn():
    assert resolve({"X-Forwarded-Proto": "https"}).scheme == "https"
    assert resolve({"X-Forwarded-Ssl": "on"}).scheme == "https"
    assert resolve({"X-Forwarded-Proto": "http"}, scheme="https").scheme == "http"  # as gunicorn: may downgrade
    assert resolve({"X-Forwarded-Proto": "HTTPS"}).scheme == "http"  # values compare exactly
    agreeing = resolve({"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on"})
    assert agreeing.scheme == "https" and agreeing.error is None
    assert resolve({"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"}).error == "Contradictory scheme headers"
    # from an untrusted peer the contradiction is not even looked at
    assert resolve({"X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "off"}, peer=OUTSIDER).error is None


def test_forwarded_host_and_port():
    assert resolve({"Host": "internal", "X-Forwarded-Host": "a.example, b.example"}).host == "b.example"
    assert resolve({"Host": "internal", "X-Forwarded-Host": "a.example", "X-Forwarded-Port": "8443"}).host == \
        "a.example:8443"
    assert resolve({"Host": "internal:8000", "X-Forwarded-Port": "9000"}).host == "internal:9000"
    assert resolve({"Host": "x", "X-Forwarded-Host": "a.example", "X-Forwarded-Port": "443",
                    "X-Forwarded-Proto": "https"}).host == "a.example"
    assert resolve({"Host": "x", "X-Forwarded-Host": "[2001:db8::1]:8080"}).host == "[2001:db8::1]:8080"
    # nonsense is ignored rather than handed to apps building URLs
    assert resolve({"Host": "x", "X-Forwarded-Host": "a.example/evil"}).host is None
    assert resolve({"Host": "x", "X-Forwarded-Host": "a.example", "X-Forwarded-Port": "99999"}).host == "a.example"
    assert resolve({"Host": "x"}).host is None


def test_forwarder_headers_pass_only_from_trusted_peers():
    headers = {"Script_Name": "/app", "Remote_User": "ann", "Path_Info": "/x"}
    assert resolve(headers).fields == {"SCRIPT_NAME", "REMOTE_USER"}
    assert resolve(headers, peer=OUTSIDER).fields == frozenset()


def test_proxy_headers_off_keeps_the_peer_but_not_the_scheme_headers():
    forwarded = resolve({"X-Forwarded-For": "1.2.3.4", "X-Forwarded-Host": "a", "X-Forwarded-Proto": "https"},
                        mode="off")
    assert (forwarded.client, forwarded.host, forwarded.scheme) == (PEER, None, "https")


def test_unix_socket_peer_is_trusted():
    forwarded = resolve({"X-Forwarded-For": "198.51.100.7"}, peer="", allow="10.9.9.9")
    assert forwarded.client == ("198.51.100.7", 0)
    assert resolve({}, peer="").client is None


# -- RFC 7239 Forwarded -----------------------------------------------------------------

def test_parse_forwarded_elements():
    assert parse_forwarded(['for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711"']) == [
        {"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"},
        {"for": "[2001:db8:cafe::17]:4711"},
    ]
    assert parse_forwarded(['for="a\\"b,c";host=x']) == [{"for": 'a"b,c', "host": "x"}]
    assert parse_forwarded(["for=1.2.3.4;garbage", "for=5.6.7.8"]) == [{"for": "5.6.7.8"}]


def test_forwarded_mode():
    headers = {"Forwarded": 'for=6.6.6.6, for="[2001:db8::17]:4711";proto=https;host=shop.example',
               "X-Forwarded-For": "9.9.9.9"}
    forwarded = resolve(headers, mode="forwarded")
    assert forwarded.client == ("2001:db8::17", 4711)
    assert (forwarded.scheme, forwarded.host) == ("https", "shop.example")
    assert resolve(headers, mode="x-forwarded").client == ("9.9.9.9", 0)  # one family only
    assert resolve({"Forwarded": "for=192.0.2.1:8080;proto=https", "X-Forwarded-Proto": "http"},
                   mode="forwarded").error == "Contradictory scheme headers"
    assert resolve({"Forwarded": "for=unknown"}, mode="forwarded").client == ("unknown", 0)
    assert resolve({"Forwarded": "by=1.2.3.4"}, mode="forwarded").client == PEER


# -- PROXY protocol -----------------------------------------------------------------------

def v2(command=1, family=1, protocol=1, addresses=b"", tlv=b"") -> bytes:
    body = addresses + tlv
    return V2_SIGNATURE + struct.pack("!BBH", 0x20 | command, family << 4 | protocol, len(body)) + body


V2_INET = bytes([198, 51, 100, 7, 10, 0, 0, 1]) + struct.pack("!HH", 51000, 443)


def test_proxy_v1():
    data = b"PROXY TCP4 198.51.100.7 10.0.0.1 51000 443\r\nGET / HTTP/1.1\r\n"
    header = parse_proxy_header(data, "v1")
    assert (header.version, header.client, header.server) == (1, ("198.51.100.7", 51000), ("10.0.0.1", 443))
    assert data[header.length:] == b"GET / HTTP/1.1\r\n"
    six = parse_proxy_header(b"PROXY TCP6 2001:db8::7 2001:db8::1 1 2\r\n", "auto")
    assert six.client == ("2001:db8::7", 1)
    unknown = parse_proxy_header(b"PROXY UNKNOWN whatever\r\n", "auto")
    assert unknown.client is None and unknown.length == 24


def test_proxy_v2():
    data = v2(addresses=V2_INET, tlv=b"\x04\x00\x02hi") + b"GET"
    header = parse_proxy_header(data, "v2")
    assert (header.version, header.client, header.server) == (2, ("198.51.100.7", 51000), ("10.0.0.1", 443))
    assert data[header.length:] == b"GET"
    six = v2(family=2, addresses=bytes(15) + b"\x07" + bytes(15) + b"\x01" + struct.pack("!HH", 1, 2))
    assert parse_proxy_header(six, "auto").client == ("::7", 1)
    assert parse_proxy_header(v2(command=0), "v2").client is None  # LOCAL: a health check
    assert parse_proxy_header(v2(family=0, protocol=0), "v2").client is None


@pytest.mark.parametrize("data", [
    b"PROXY TCP4 198.51.100.7 10.0.0.1 51000 443",
    b"PROX",
    b"",
    V2_SIGNATURE[:7],
    v2(addresses=V2_INET)[:20],
])
def test_proxy_header_incomplete_needs_more(data):
    assert parse_proxy_header(data, "auto") is None


@pytest.mark.parametrize("data, mode", [
    (b"GET / HTTP/1.1\r\n", "auto"),  # missing
    (b"PROXY TCP4 198.51.100.7 10.0.0.1 51000 443\r\n", "v2"),  # version not accepted
    (v2(addresses=V2_INET), "v1"),
    (b"PROXY TCP4 198.51.100.7 10.0.0.1 51000 443\n", "v1"),
    (b"PROXY TCP4 198.51.100.7 10.0.0.1 51000\r\n", "v1"),
    (b"PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n", "v1"),
    (b"PROXY TCP4 198.51.100.7 10.0.0.1 65536 443\r\n", "v1"),
    (b"PROXY TCP4 198.51.100.7 10.0.0.1 +1 443\r\n", "v1"),
    (b"PROXY TCP4 198.051.100.7 10.0.0.1 1 443\r\n", "v1"),
    (b"PROXY UDP4 198.51.100.7 10.0.0.1 1 443\r\n", "v1"),
    (b"PROXY " + b"1" * 101, "v1"),  # 107 bytes without CRLF: past the spec's bound
    (v2(protocol=2, addresses=V2_INET), "v2"),  # datagram
    (v2(family=1, addresses=V2_INET[:6]), "v2"),  # short address block
    (v2(family=5, addresses=V2_INET), "v2"),
    (v2(command=2), "v2"),
    (V2_SIGNATURE + b"\x11\x11\x00\x00", "v2"),  # version 1 in a v2 header
])
def test_proxy_header_errors(data, mode):
    with pytest.raises(ProxyHeaderError):
        parse_proxy_header(data, mode)


def test_proxy_v1_line_at_the_bound_is_accepted():
    line = b"PROXY UNKNOWN " + b"x" * (107 - 16) + b"\r\n"
    assert len(line) == 107
    assert parse_proxy_header(line, "v1").length == 107
