"""Replay gunicorn's request-parser corpus through one real server running echo_app.

A case passes if the server's behaviour meets its `expect` outcome or one of its `alt`
outcomes (see tests/data/corpus/README.md); which one matched is summarised at the end."""

import base64
import contextlib
import json
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import pytest

from helpers import Gunicorn, load_corpus, parse_responses, send_and_close_write, send_and_read

CASES = load_corpus()
CGI_HEADERS = {"CONTENT-TYPE": "CONTENT_TYPE", "CONTENT-LENGTH": "CONTENT_LENGTH"}
KEEP_ALIVE = 30  # idle keep-alive far above the read timeouts: a close we see is deliberate


# The settings of configuration-dependent cases, as gunicorn command-line options. The
# lenient ones (obs-fold, spaces before a colon, unconventional methods, header_map =
# dangerous) are not offered by this worker: their cases are skipped with that reason.
CONFIG_OPTIONS = {
    "limit_request_line": "--limit-request-line",
    "limit_request_field_size": "--limit-request-field_size",
    "limit_request_fields": "--limit-request-fields",
    "forwarded_allow_ips": "--forwarded-allow-ips",
    "proxy_protocol": "--proxy-protocol",
    "header_map": "--header-map",
}


def config_args(config: dict) -> list[str] | None:
    """gunicorn arguments for a case's settings; None if the worker does not offer one of them."""
    args = []
    for name, value in config.items():
        if name not in CONFIG_OPTIONS or (name == "header_map" and value == "dangerous"):
            return None
        args += [CONFIG_OPTIONS[name], "auto" if value is True else str(value)]  # True: proxy_protocol
    return args


def skip_reason(case, configured: bool = False):
    if "config" in case and not configured:
        return f"{case['name']}: expectation needs non-default gunicorn settings {case['config']}"
    if "config" in case and config_args(case["config"]) is None:
        return f"{case['name']}: a leniency this worker does not offer ({case['config']})"
    return case.get("skip") and f"{case['name']}: {case['skip']}"


def case_params(cases, configured: bool = False) -> list:
    params = []
    for case in cases:
        reason = skip_reason(case, configured)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(case, id=case["name"], marks=marks))
    return params


# Where this worker differs from gunicorn on purpose (README), the outcome it must give instead.
DEVIATIONS = {
    # A peer in proxy_allow_ips must send the PROXY header: without it the connection is
    # closed unanswered (gunicorn's workers also serve a connection without one).
    "valid/pp_03": {"expect": "invalid", "must_close": True},
}


def outcomes(case):
    """(label, outcome) pairs: the case's own expectation first, then its alternatives
    (or, for a deliberate deviation, only the outcome it must give here)."""
    if case["name"] in DEVIATIONS and "config" in case:
        return [("deviation", DEVIATIONS[case["name"]])]
    alts = case.get("alt", [])
    alts = alts if isinstance(alts, list) else [alts]
    own = {"expect": case["expect"], "requests": case.get("requests")}
    return [("expect", own)] + [(f"alt:{a['expect']}", a) for a in alts]


def echo_gunicorn(tmp_path_factory, *args: str) -> Gunicorn:
    hits = tmp_path_factory.mktemp("corpus") / "hits.jsonl"
    hits.touch()
    server = Gunicorn("echo_app:app", "--keep-alive", str(KEEP_ALIVE), *args, env={"ECHO_HITS_FILE": str(hits)})
    server.hits_file = hits
    return server


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory):
    with echo_gunicorn(tmp_path_factory) as server:
        yield server


@pytest.fixture(scope="module")
def configured_servers(tmp_path_factory):
    """``get(config)``: a server started with a case's settings (one per distinct config)."""
    servers = {}
    with contextlib.ExitStack() as stack:
        def get(config: dict) -> Gunicorn:
            key = json.dumps(config, sort_keys=True)
            if key not in servers:
                servers[key] = stack.enter_context(echo_gunicorn(tmp_path_factory, *config_args(config)))
            return servers[key]
        yield get


def hit_count(server) -> int:
    return len(server.hits_file.read_text().splitlines())


@dataclass
class Replay:
    responses: list  # final (non-1xx) responses, in order
    closed: bool | None  # server closed on its own (None: not observable, we half-closed)
    hits: int  # requests that reached the app


def replay(server, case) -> Replay:
    """Send the case's bytes on a fresh connection. Cases whose outcome requires the server
    to close are sent without half-closing, so that the close is the server's own doing."""
    raw = base64.b64decode(case["raw"])
    before = hit_count(server)
    if any(o.get("must_close") for _, o in outcomes(case)):
        data, closed = send_and_read(server.port, raw)
    else:
        data, closed = send_and_close_write(server.port, raw), None
    final = [r for r in parse_responses(data) if r.status >= 200]
    return Replay(final, closed, hit_count(server) - before)


# --- what the WSGI app should have seen ----------------------------------------

def split_values(value: str) -> list[str]:
    return [part.strip() for part in value.split(",")]


def expected_headers(pairs) -> list:
    """Header pairs as echo_app reports environ (HTTP_X -> X; CGI keys as they are),
    repeated fields joined, each value split on ',' to ignore the joiner used."""
    joined = {}
    for name, value in pairs:
        key = CGI_HEADERS.get(name) or "HTTP_" + name.replace("-", "_")
        joined.setdefault(key, []).append(value)
    return sorted((key.removeprefix("HTTP_"), split_values(",".join(values)))
                  for key, values in joined.items())


def is_chunked(req: dict) -> bool:
    return any(name == "TRANSFER-ENCODING" and "chunked" in value.lower() for name, value in req["headers"])


def echo_mismatch(echo: dict, req: dict) -> str | None:
    body = base64.b64decode(req["body"])
    got = [(name, value) for name, value in echo["headers"]]
    if is_chunked(req) and ("CONTENT_LENGTH", str(len(body))) in got:
        # The server receives a chunked body before calling the app, so it can
        # tell the app its decoded length (Django needs CONTENT_LENGTH to read a body).
        got.remove(("CONTENT_LENGTH", str(len(body))))
    got_headers = sorted((name, split_values(value)) for name, value in got)
    checks = [("method", echo["method"], req["method"]),
              ("query", echo["query"], req["query"]),
              ("headers", got_headers, expected_headers(req["headers"])),
              ("body", base64.b64decode(echo["body"]), body)]
    if req["path"] is not None:
        path = unquote_to_bytes(req["path"].encode("latin-1")).decode("latin-1")
        checks.append(("SCRIPT_NAME+PATH_INFO", echo["script_name"] + echo["path"], path))
    return next((f"{what}: got {got!r}, expected {want!r}"
                 for what, got, want in checks if got != want), None)


# --- outcome checks: each returns None when met, else why not --------------------

def is_2xx(resp) -> bool:
    return 200 <= resp.status < 300


def check_valid(rep: Replay, outcome) -> str | None:
    reqs = outcome["requests"]
    if len(rep.responses) != len(reqs):
        return f"{len(rep.responses)} responses {[r.status for r in rep.responses]} for {len(reqs)} requests"
    for i, (resp, req) in enumerate(zip(rep.responses, reqs)):
        if not is_2xx(resp):
            return f"request {i} answered {resp.status}: {resp.body[:200]!r}"
        if why := echo_mismatch(json.loads(resp.body), req):
            return f"request {i}: {why}"
    return None


def check_invalid(rep: Replay, outcome) -> str | None:
    prefix = outcome.get("valid_prefix", 0)
    statuses = [r.status for r in rep.responses]
    if len(statuses) < prefix or not all(is_2xx(r) for r in rep.responses[:prefix]):
        return f"statuses {statuses}: the first {prefix} requests must be answered 2xx"
    if any(s < 400 for s in statuses[prefix:]):
        return f"statuses {statuses}: a rejected request got a non-error answer"
    if rep.hits != prefix:
        return f"{rep.hits} requests reached the app, expected {prefix}"
    return None


def check_accepted(rep: Replay, outcome) -> str | None:
    return None if any(map(is_2xx, rep.responses)) else \
        f"no 2xx among {[r.status for r in rep.responses]}"


CHECKS = {"valid": check_valid, "invalid": check_invalid, "accepted": check_accepted}


def outcome_mismatch(rep: Replay, outcome) -> str | None:
    why = CHECKS[outcome["expect"]](rep, outcome)
    if why is None and outcome.get("must_close") and not rep.closed:
        why = "the server must close the connection after answering"
    return why


@pytest.mark.parametrize("case", case_params(CASES))
def test_corpus_case(echo_server, case, corpus_outcomes):
    check_case(echo_server, case, corpus_outcomes)


@pytest.mark.parametrize("case", case_params([c for c in CASES if "config" in c], configured=True))
def test_corpus_case_with_its_settings(configured_servers, case, corpus_outcomes):
    """Configuration-dependent cases, each against a server started with its gunicorn settings."""
    check_case(configured_servers(case["config"]), case, corpus_outcomes)


def check_case(server, case, corpus_outcomes) -> None:
    rep = replay(server, case)
    reasons = []
    for label, outcome in outcomes(case):
        why = outcome_mismatch(rep, outcome)
        if why is None:
            corpus_outcomes[case["name"]] = label
            return
        reasons.append(f"{label}: {why}")
    corpus_outcomes[case["name"]] = "none"
    pytest.fail("no acceptable outcome:\n  " + "\n  ".join(reasons))


def test_keep_alive_connection_is_not_closed(echo_server):
    """Premise of the must_close check: a plain keep-alive request does not see a close."""
    data, closed = send_and_read(echo_server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=1)
    assert [r.status for r in parse_responses(data)] == [200]
    assert not closed


def test_invalid_cases_log_no_traceback(echo_server):
    """Every `invalid` case (configuration-dependent ones too) is handled without a traceback."""
    offenders = []
    for case in (c for c in CASES if c["expect"] == "invalid"):
        start = len(echo_server.log_text())
        send_and_close_write(echo_server.port, base64.b64decode(case["raw"]))
        if "Traceback" in echo_server.log_text()[start:]:
            offenders.append(case["name"])
    assert not offenders, f"tracebacks logged for {offenders}:\n{echo_server.log_text()[-5000:]}"
    assert "Traceback" not in echo_server.log_text(), echo_server.log_text()[-5000:]
