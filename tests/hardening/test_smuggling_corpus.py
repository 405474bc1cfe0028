"""Replay the request-smuggling corpus (tests/data/smuggling/, see its README.md).

    one JSON file per attack class ──► RequestParser (sans-IO)
                                   └─► real gunicorn -k AsyncWorker + echo_app, over a socket

At both levels a case must give its status after its valid prefix; through the worker
the connection must also close, only the expected requests may reach the app, and an
accepted body must arrive exactly.
"""

import base64
import json

import pytest

from helpers import TESTS_DIR, Gunicorn, parse_responses, send_and_close_write, send_and_read
from server.protocol.errors import HttpError
from server.protocol.events import Data, EndOfMessage, RequestHead
from server.protocol.parser import RequestParser

DATA_DIR = TESTS_DIR / "data" / "smuggling"


def load_cases() -> list:
    files = sorted(DATA_DIR.glob("*.json"))
    assert len(files) >= 10, f"smuggling corpus missing in {DATA_DIR}"
    cases = []
    for path in files:
        doc = json.loads(path.read_text())
        names = [c["name"] for c in doc["cases"]]
        assert len(names) == len(set(names)), f"duplicate case names in {path.name}"
        cases += [pytest.param(case, id=f"{path.stem}/{case['name']}") for case in doc["cases"]]
    return cases


CASES = load_cases()


def raw_bytes(case: dict) -> bytes:
    raw = case["raw"]
    parts = raw if isinstance(raw, list) else [raw]
    return b"".join(p.encode("latin-1") if isinstance(p, str) else p["repeat"].encode("latin-1") * p["times"]
                    for p in parts)


def expected_body(case: dict):
    if "body" in case:
        return case["body"].encode("latin-1")
    return None


# --- parser level ----------------------------------------------------------------------

def parse_case(raw: bytes, half_close: bool) -> tuple[list, int | None]:
    """Complete requests as (head, body), and the error status (None if none)."""
    parser = RequestParser()
    done, head, body = [], None, bytearray()

    def take(events):
        nonlocal head, body
        for ev in events:
            if isinstance(ev, RequestHead):
                head, body = ev, bytearray()
            elif isinstance(ev, Data):
                body += ev.data
            elif isinstance(ev, EndOfMessage):
                done.append((head, bytes(body)))

    try:
        take(parser.feed(raw))
        while parser.done and done[-1][0].keep_alive:
            take(parser.next_request())
        if half_close and not parser.done:
            parser.feed_eof()
    except HttpError as exc:
        return done, exc.status
    return done, None


@pytest.mark.parametrize("case", CASES)
def test_parser(case):
    prefix, status = case.get("valid_prefix", 0), case["status"]
    done, error = parse_case(raw_bytes(case), case.get("half_close", False))
    if status == 200:
        assert error is None and len(done) == prefix + 1, (error, len(done))
        body = done[-1][1]
        assert body == expected_body(case) if "body" in case else len(body) == case.get("body_length", len(body))
    elif status is None:
        assert (len(done), error) == (prefix, 400), "a cut request is an incomplete one"
    else:
        assert (len(done), error) == (prefix, status)


# --- through the worker ------------------------------------------------------------------

@pytest.fixture(scope="module")
def echo_server(tmp_path_factory):
    hits = tmp_path_factory.mktemp("smuggling") / "hits.jsonl"
    hits.touch()
    with Gunicorn("echo_app:app", "--keep-alive", "30", env={"ECHO_HITS_FILE": str(hits)}) as server:
        server.hits_file = hits
        yield server


def hit_count(server) -> int:
    return len(server.hits_file.read_text().splitlines())


@pytest.mark.parametrize("case", CASES)
def test_worker(echo_server, case):
    raw, prefix, status = raw_bytes(case), case.get("valid_prefix", 0), case["status"]
    before = hit_count(echo_server)
    if case.get("half_close"):
        data, closed = send_and_close_write(echo_server.port, raw), True
    else:
        data, closed = send_and_read(echo_server.port, raw)
    responses = [r for r in parse_responses(data) if r.status >= 200]
    want = [200] * prefix + ([] if status is None else [status])
    assert [r.status for r in responses] == want, data[:500]
    assert closed, "the server must close the connection"
    assert hit_count(echo_server) - before == prefix + (status == 200)
    if status == 200:
        seen = base64.b64decode(json.loads(responses[-1].body)["body"])
        if "body" in case:
            assert seen == expected_body(case)
        if "body_length" in case:
            assert len(seen) == case["body_length"]
    if status is not None and status >= 400:
        assert responses[-1].header("connection").lower() == "close"


def test_worker_logged_no_traceback(echo_server):
    """Runs after the replays (same module, same server): no case made the worker log a traceback."""
    log = echo_server.log_text()
    assert "Traceback" not in log and "[ERROR]" not in log, log[-5000:]
