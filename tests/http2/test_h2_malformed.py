"""A malformed request is a stream error (RFC 9113 s8.1.1): that stream alone ends (a 400,
or RST_STREAM PROTOCOL_ERROR once its app has started), and the other streams of the
connection are served. Before, h2's ProtocolError ended the whole connection with a GOAWAY."""

import select
import time

import hpack
import pytest
from hyperframe.frame import DataFrame, HeadersFrame, PingFrame, RstStreamFrame, SettingsFrame

from h2_support import h2_server
from helpers import connect
from test_h2_attacks import PROTOCOL_ERROR, _parse, goaway_of, headers, opening, read_frames

pytest.importorskip("h2", reason="HTTP/2 needs the h2 package (the http2 extra)")


def block(encoder, method: str = "GET", path: str = "/", extra=()) -> bytes:
    return encoder.encode([(":method", method), (":path", path), (":scheme", "http"), (":authority", "x"),
                           *extra])


def status_of(frames, stream_id: int, decoder) -> str | None:
    """The :status of ``stream_id``'s response (every header block decoded in order: HPACK's
    table is shared)."""
    found = None
    for frame in frames:
        if isinstance(frame, HeadersFrame):
            fields = dict(decoder.decode(frame.data, raw=True))
            if frame.stream_id == stream_id and found is None:
                found = fields.get(b":status", b"").decode()
    return found


def assert_not_ended_by_error(frames) -> None:
    """No GOAWAY but the idle one of gunicorn's keepalive (NO_ERROR, after stream 3)."""
    goaway = goaway_of(frames)
    assert goaway is None or (goaway.error_code == 0 and goaway.last_stream_id >= 3), goaway


def reset_of(frames, stream_id: int):
    return next((f.error_code for f in frames if isinstance(f, RstStreamFrame) and f.stream_id == stream_id), None)


def exchange(kind: str, first, then_ok_on: int = 3, path: str = "/", env=None, settings=None):
    """Send ``first`` (stream 1, malformed; a list: sent in pieces, each handled by the server
    before the next goes, see ``handled``), then a good GET on stream ``then_ok_on``: the
    frames back in 3 s (gunicorn's keepalive may end the idle connection gracefully by then)."""
    pieces = first if isinstance(first, list) else [first]
    with h2_server(kind, env=env) as server, connect(server.port) as sock:
        sock.sendall(opening(settings))
        frames = []
        for piece in pieces[:-1]:
            sock.sendall(piece)
            frames += handled(sock)
        sock.sendall(pieces[-1])
        sock.sendall(headers(then_ok_on, block(ENCODER, path=path)))
        frames += read_frames(sock, 3)[0]
        LOGS.append(server.log_text())
    return frames


def handled(sock, timeout: float = 5) -> list:
    """A PING, and the frames until its ACK: the server answers frames in order, so all it
    had of the bytes sent before is handled (and its streams started) when the ACK comes."""
    sock.sendall(PingFrame(0, opaque_data=b"handled!").serialize())
    buffer, frames, deadline = b"", [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not select.select([sock], [], [], 0.05)[0]:
            continue
        data = sock.recv(1 << 16)
        assert data, f"closed before the PING ACK: {frames}"
        got, buffer = _parse(buffer + data)
        frames += got
        if any(isinstance(f, PingFrame) and "ACK" in f.flags and f.opaque_data == b"handled!" for f in got):
            assert not buffer, "bytes after the PING ACK, before the next piece was sent"
            return frames
    raise AssertionError(f"no PING ACK in {timeout} s: {frames}")


ENCODER = hpack.Encoder()
LOGS: list[str] = []  # the server's log of the last exchange


@pytest.fixture(autouse=True)
def fresh_encoder():
    global ENCODER
    ENCODER = hpack.Encoder()


@pytest.mark.parametrize("field", [("connection", "keep-alive"), ("transfer-encoding", "chunked"),
                                   ("X-Upper", "1"), ("te", "gzip")],
                         ids=["connection", "transfer-encoding", "uppercase", "te-not-trailers"])
def test_a_malformed_head_is_refused_on_its_stream_only(field):
    frames = exchange("wsgi", headers(1, block(ENCODER, extra=[field])))
    assert status_of(frames, 1, hpack.Decoder()) == "400", frames
    assert status_of(frames, 3, hpack.Decoder()) == "200", frames
    assert_not_ended_by_error(frames)
    assert "Invalid request from 127.0.0.1 on HTTP/2 stream 1: Malformed request" in LOGS[-1]


@pytest.mark.parametrize("kind", ["wsgi", "asgi", "native"])
@pytest.mark.parametrize("declared,sent", [(10, 5), (3, 5)], ids=["shorter", "longer"])
@pytest.mark.parametrize("split", [False, True], ids=["one-read", "head-data-end-apart"])
def test_data_that_disagree_with_the_content_length_end_that_stream_only(kind, declared, sent, split, tmp_path):
    """Split: the app has started (its sink waits) when the bad DATA come, and the END_STREAM
    comes after the refusal while the 400's body waits for a window the client keeps shut (the
    stream stays open): a WSGI app must not then be called with what was received."""
    head = headers(1, block(ENCODER, "POST", "/echo", [("content-length", str(declared))]), end_stream=False)
    if split:
        first = [head, DataFrame(1, b"x" * sent).serialize(), DataFrame(1, b"", flags=["END_STREAM"]).serialize()]
    else:
        first = head + DataFrame(1, b"x" * sent, flags=["END_STREAM"]).serialize()
    starts = tmp_path / "starts"
    shut = {SettingsFrame.INITIAL_WINDOW_SIZE: 0} if split else None
    frames = exchange(kind, first, env={"H2_STARTS_FILE": str(starts)}, settings=shut)
    if kind == "wsgi":  # the body is received before the app is called: it never runs for stream 1
        assert starts.read_text().count("x") == 1, "the WSGI app ran for the refused body"
    refused = status_of(frames, 1, hpack.Decoder()) == "400" or reset_of(frames, 1) == PROTOCOL_ERROR
    assert refused, frames
    assert status_of(frames, 3, hpack.Decoder()) == "200", frames
    assert_not_ended_by_error(frames)


@pytest.mark.parametrize("kind", ["wsgi", "asgi", "native"])
def test_a_body_refused_in_the_read_that_opened_its_stream_never_starts_the_app(kind, tmp_path):
    """Over ASYNCWORKER_MAX_BODY_SIZE before the stream starts, with the 413's body waiting for
    a window the client keeps shut (the stream stays open): the app must not then start on it
    (it did, and its response broke h2's state; then an error ended the connection)."""
    head = headers(1, block(ENCODER, "POST", "/echo"), end_stream=False)
    first = head + DataFrame(1, b"x" * 50, flags=["END_STREAM"]).serialize()
    starts = tmp_path / "starts"
    frames = exchange(kind, first, env={"H2_STARTS_FILE": str(starts), "ASYNCWORKER_MAX_BODY_SIZE": "10"},
                      settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    assert status_of(frames, 1, hpack.Decoder()) == "413", frames
    assert status_of(frames, 3, hpack.Decoder()) == "200", frames
    assert starts.read_text().count("x") == 1, "the app started on the refused stream"
    assert "Traceback" not in LOGS[-1], LOGS[-1]
    assert_not_ended_by_error(frames)
