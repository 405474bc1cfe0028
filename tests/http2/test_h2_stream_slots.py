"""An HTTP/2 stream (one per request) keeps its state in slots (see tests/protocol/test_connection_slots.py)."""

import pytest
from helpers import assert_slotted

pytest.importorskip("h2", reason="HTTP/2 needs the h2 package (the http2 extra)")

from server.http2.stream import H2Stream  # noqa: E402

# What the connection sets on its streams (connection.py), and the kinds on their channel.
SET_FROM_OUTSIDE = ("input_ended", "request_trailers", "sent_end", "open", "sink", "exchange", "log_environ")


def test_a_stream_keeps_its_state_in_slots():
    assert_slotted(H2Stream, SET_FROM_OUTSIDE)
