"""Reading a request head out of the parser's buffer, and the full checks of any head.

    buffer ──_read_head()──► head bytes ──plain_head (plainhead.py)──► RequestHead
                                  │ declined: not a plain head
                                  ▼
                     _parse_any_head(): request line, target form, field lines
                                  ▼
                     build_head(): Host, Content-Type, framing, Expect, Connection

``HeadReader`` is the part of ``RequestParser`` that works in state HEAD: it waits
for the empty line that ends the head, fails early on an unfinished head that can
never become valid, and turns the head into a ``RequestHead``, then hands over to
the body reader (``_start_body``) or ends a bodiless request (``_finish``). The
full checks refuse what the plain-head parser declines with a precise error.
"""

from multidict import CIMultiDict, istr

from . import grammar
from .errors import (
    BadRequest,
    ExpectationFailed,
    HeaderFieldsTooLarge,
    NotImplementedByServer,
    UriTooLong,
    VersionNotSupported,
)
from .events import RequestHead
from .framing import body_framing, connection_tokens, content_length_of, wants_keep_alive
from .host import settle_host
from .plainhead import NEEDS_CHECKS, SPECIAL_CONNECTION, SPECIAL_CONTENT_LENGTH, SPECIAL_HOST, VERSIONS, simple_head

_CONNECTION = istr("Connection")  # (istr: CIMultiDict reuses their case-folded form and hash)
_CONTENT_LENGTH = istr("Content-Length")
# The fields of a plain head settled after ``simple_head`` when there is one of each.
_SETTLED_AFTER = SPECIAL_CONTENT_LENGTH | SPECIAL_CONNECTION


class HeadReader:
    """State HEAD of ``RequestParser``: its ``buffer``, ``limits``, ``_head_size``,
    ``_plain_limits``, ``_plain_head``, and where the last look at an unfinished head
    stopped: ``_scan_from`` (the bytes before it have been looked at; 0 starts a new
    head), ``_crlfs`` (the CRLFs before it) and ``_line_start`` (where the line after
    the last of them starts). A head that arrives in many pieces is looked at once
    in all, not once per piece."""

    __slots__ = ()  # its state is in the parser's slots (parser.py)

    def _read_head(self, events: list) -> bool:
        """Parse the head once it is all buffered; False while it is not."""
        buf = self.buffer
        scan_from = self._scan_from
        if not scan_from:
            # RFC 9112 s2.2: ignore empty lines before the request-line.
            while buf.startswith(b"\r\n"):
                del buf[:2]
        # The end may straddle the bytes looked at before: back up by three.
        end = buf.find(b"\r\n\r\n", scan_from - 3 if scan_from > 3 else 0)
        if end < 0:
            self._check_partial_head(scan_from)
            return False
        if end + 4 > self._head_size:
            raise HeaderFieldsTooLarge("Request header fields too large")
        block = bytes(buf[:end])
        del buf[: end + 4]
        head = self._parse_head_block(block)
        events.append(head)
        if not head.has_body:
            self._finish(events)
        return True

    def _check_partial_head(self, scan_from: int) -> None:
        """Fail early on an unfinished head that can never become valid, looking only
        at the bytes after ``scan_from``."""
        buf = self.buffer
        limits = self.limits
        if not scan_from:
            self._crlfs = self._line_start = 0
        size = len(buf) - buf.endswith(b"\r")  # a lone CR may be the start of CRLF
        crlfs = buf.count(b"\r\n", scan_from, size)
        if crlfs:
            self._crlfs += crlfs
            self._line_start = buf.rfind(b"\r\n", scan_from, size) + 2
        # Every LF of a head ends a CRLF; a CR before scan_from is never left unseen.
        bare_lf = buf.count(b"\n", scan_from, size) != crlfs
        self._scan_from = size
        if not self._crlfs:
            if size > limits.request_line:
                raise UriTooLong("Request line too long")
        elif size - self._line_start + 2 > limits.field_size:  # the partial line and its CRLF
            raise HeaderFieldsTooLarge("Header field too large")
        elif self._crlfs > limits.fields + 1:
            raise HeaderFieldsTooLarge("Too many header fields")
        if len(buf) > limits.head_size:
            raise HeaderFieldsTooLarge("Request header fields too large")
        if bare_lf:
            raise BadRequest("Bare LF in request head")

    def _parse_head_block(self, head: bytes) -> RequestHead:
        parsed = self._parse_plain_head(head)
        if parsed is None:
            parsed = self._parse_any_head(head)
        self._start_body(parsed)
        return parsed

    def _parse_plain_head(self, head: bytes) -> RequestHead | None:
        """The common head, parsed by ``plain_head``; None for any other, which the
        full checks then accept or refuse."""
        plain = self._plain_head(head, *self._plain_limits)
        if plain is None:
            return None
        special = plain[7] & NEEDS_CHECKS
        if special == SPECIAL_HOST:
            head = simple_head(plain)
        elif special & ~_SETTLED_AFTER == SPECIAL_HOST:
            # One Host, and one Content-Length (a sized upload), one Connection (a browser's
            # "keep-alive"), or both: the simple head, then what build_head decides of them.
            head = simple_head(plain)
            if special & SPECIAL_CONTENT_LENGTH:
                _settle_content_length(head)
            if special & SPECIAL_CONNECTION:
                _settle_connection(head)
        else:
            method, target, path, query, minor, raw, pairs, _ = plain
            head = build_head(method, target, path, query, VERSIONS[minor], CIMultiDict(pairs), raw)
        settle_host(head)
        return head

    def _parse_any_head(self, head: bytes) -> RequestHead:
        crlf = head.count(b"\r\n")
        if head.count(b"\n") != crlf:
            raise BadRequest("Bare LF in request head")
        if head.count(b"\r") != crlf:
            raise BadRequest("Bare CR in request head")
        lines = head.split(b"\r\n")
        request_line = lines[0]
        if len(request_line) > self.limits.request_line:
            raise UriTooLong("Request line too long")
        method, target, version = _parse_request_line(request_line)
        headers, raw = parse_field_lines(lines, 1, self.limits)
        path, query = _split_target(method, target)
        head = build_head(method, target, path, query, version, headers, raw)
        settle_host(head)
        return head


def parse_field_lines(lines: list[bytes], start: int, limits) -> tuple[CIMultiDict, list]:
    """The fields of ``lines[start:]`` (a head's or a trailer section's), and their raw bytes."""
    if len(lines) - start > limits.fields:
        raise HeaderFieldsTooLarge("Too many header fields")
    headers: CIMultiDict = CIMultiDict()
    raw = []
    match = grammar.field_line.fullmatch
    for i in range(start, len(lines)):
        line = lines[i]
        if len(line) + 2 > limits.field_size:  # gunicorn counts the CRLF
            raise HeaderFieldsTooLarge("Header field too large")
        m = match(line)
        if m is None:
            raise BadRequest(_field_line_problem(line))
        name, value = m.groups()
        raw.append((name, value))
        headers.add(name.decode("ascii"), value.decode("latin-1"))
    return headers, raw


def _parse_request_line(line: bytes) -> tuple[str, str, tuple[int, int]]:
    """``method SP request-target SP HTTP-version``, exactly single spaces."""
    parts = line.split(b" ")
    if len(parts) != 3:
        raise BadRequest("Invalid request line")
    method, target, version = parts
    if grammar.token.fullmatch(method) is None:
        raise BadRequest("Invalid method")
    m = grammar.http_version.fullmatch(version)
    if m is None:
        raise BadRequest("Invalid HTTP version")
    major, minor = int(m.group(1)), int(m.group(2))
    if major != 1:
        raise VersionNotSupported(f"HTTP/{major}.{minor} not supported")
    # RFC 9112 s2.3: a higher minor version is understood as the highest we speak.
    return method.decode("ascii"), target.decode("latin-1"), (1, min(minor, 1))


def _split_target(method: str, target: str) -> tuple[str, str]:
    """Return (path, query) after checking the target's form (RFC 9112 s3.2)."""
    raw = target.encode("latin-1")
    if method == "CONNECT":
        raise NotImplementedByServer("CONNECT is not supported by this server")
    if grammar.origin_form.fullmatch(raw):
        path, _, query = target.partition("?")
        return path, query
    if target == "*":
        if method != "OPTIONS":
            raise BadRequest("Asterisk target is only for OPTIONS")
        return "*", ""
    m = grammar.absolute_form.fullmatch(raw)
    if m is None:
        raise BadRequest("Invalid request target")
    rest = (m.group(2) or b"").decode("latin-1")
    path, _, query = rest.partition("?")
    return path or "/", query


def _settle_connection(head: RequestHead) -> None:
    """A simple head's one Connection field: what ``build_head`` decides of it (its other
    checks cannot fail: one Host, and no field that bears on framing but one Content-Length)."""
    value = head.headers[_CONNECTION]
    if value in ("keep-alive", "Keep-Alive"):  # (what browsers send: no set to make)
        head.keep_alive = True
        return
    if value in ("close", "Close"):  # (what nginx sends upstream by default, and wrk -H)
        head.keep_alive = False
        return
    tokens = connection_tokens(head.headers)
    head.keep_alive = wants_keep_alive(head.version, tokens)
    head.upgrade = "upgrade" in tokens and "Upgrade" in head.headers


def _settle_content_length(head: RequestHead) -> None:
    """A simple head's one Content-Length field (no Transfer-Encoding, no Expect): its body."""
    head.content_length = length = content_length_of(head.headers[_CONTENT_LENGTH])
    head.has_body = length > 0


def build_head(method, target, path, query, version, headers, raw) -> RequestHead:
    """The head, once its fields are checked: one Host (none for HTTP/1.0), at most one
    Content-Type, unambiguous framing, no expectation but 100-continue."""
    hosts = headers.getall("Host", ())
    if len(hosts) > 1:
        raise BadRequest("More than one Host header")
    if not hosts and version >= (1, 1):
        raise BadRequest("Missing Host header")
    if len(headers.getall("Content-Type", ())) > 1:
        raise BadRequest("More than one Content-Type header")
    content_length, chunked = body_framing(version, headers)
    tokens = connection_tokens(headers)
    expect_continue = False
    expectations = headers.getall("Expect", ())
    if expectations:
        if any(e.strip(" \t").lower() != "100-continue" for f in expectations for e in f.split(",")):
            raise ExpectationFailed("Unsupported expectation")
        expect_continue = version >= (1, 1)  # RFC 9110 s10.1.1: ignored in HTTP/1.0
    head = RequestHead(
        method=method,
        target=target,
        path=path,
        query=query,
        version=version,
        headers=headers,
        raw_headers=raw,
        keep_alive=wants_keep_alive(version, tokens),
        content_length=content_length,
        chunked=chunked,
        expect_continue=expect_continue,
        upgrade="upgrade" in tokens and "Upgrade" in headers,
        has_body=chunked or bool(content_length),
    )
    return head


def _field_line_problem(line: bytes) -> str:
    if line[:1] in (b" ", b"\t"):
        return "Obsolete line folding is not accepted"
    name, colon, _ = line.partition(b":")
    if not colon:
        return "Header line without a colon"
    if name != name.rstrip(b" \t"):
        return "Whitespace between header name and colon"
    if grammar.token.fullmatch(name) is None:
        return "Invalid header name"
    return "Invalid character in header value"
