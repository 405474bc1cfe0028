"""A malformed request is a stream error (RFC 9113 s8.1.1): that stream alone ends (a 400,
or RST_STREAM PROTOCOL_ERROR once its app has started), and the other streams of the
connection are served. Before, h2's ProtocolError ended the whole connection with a GOAWAY."""

import hpack
import pytest
from hyperframe.frame import DataFrame, HeadersFrame, RstStreamFrame

from h2_support import h2_server
from helpers import connect
from test_h2_attacks import PROTOCOL_ERROR, goaway_of, headers, opening, read_frames

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


def exchange(kind: str, first: bytes, then_ok_on: int = 3, path: str = "/"):
    """Send ``first`` (stream 1, malformed), then a good GET on stream ``then_ok_on``: the frames
    back in 3 s (gunicorn's keepalive may end the idle connection gracefully by then)."""
    with h2_server(kind) as server, connect(server.port) as sock:
        sock.sendall(opening() + first)
        sock.sendall(headers(then_ok_on, block(ENCODER, path=path)))
        frames, _, _ = read_frames(sock, 3)
        LOGS.append(server.log_text())
    return frames


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
def test_data_that_disagree_with_the_content_length_end_that_stream_only(kind, declared, sent):
    head = block(ENCODER, "POST", "/echo", [("content-length", str(declared))])
    first = headers(1, head, end_stream=False) + DataFrame(1, b"x" * sent, flags=["END_STREAM"]).serialize()
    frames = exchange(kind, first)
    refused = status_of(frames, 1, hpack.Decoder()) == "400" or reset_of(frames, 1) == PROTOCOL_ERROR
    assert refused, frames
    assert status_of(frames, 3, hpack.Decoder()) == "200", frames
    assert_not_ended_by_error(frames)
