"""An HTTP/2 stream (one per request) keeps its state in slots, and a connection class made to
serve HTTP/2 can hold what its mixin sets (see tests/protocol/test_connection_slots.py)."""

from types import SimpleNamespace

import pytest
from helpers import assert_slotted, can_hold_what_it_sets

pytest.importorskip("h2", reason="HTTP/2 needs the h2 package (the http2 extra)")

from server.http2.selection import H2Capable, PrefaceSniffing, h2_protocol  # noqa: E402
from server.http2.stream import H2Stream  # noqa: E402
from server.wsgi.protocol import WSGIServerHttpProtocol  # noqa: E402

# What the connection sets on its streams (connection.py), and the kinds on their channel.
SET_FROM_OUTSIDE = ("input_ended", "request_trailers", "sent_end", "open", "sink", "exchange", "log_environ")


def test_a_stream_keeps_its_state_in_slots():
    assert_slotted(H2Stream, SET_FROM_OUTSIDE)


@pytest.mark.parametrize("prior_knowledge", (False, True))
def test_a_connection_class_made_for_http2_can_hold_its_mixins_state(prior_knowledge):
    """``h2_protocol`` mixes H2Capable (or PrefaceSniffing) into a slotted connection class;
    what they set (the preface so far, the HTTP/2 connection) needs the dict it gives."""
    service = SimpleNamespace(settings=SimpleNamespace(prior_knowledge=prior_knowledge))
    cls = h2_protocol(WSGIServerHttpProtocol, service)
    assert issubclass(cls, PrefaceSniffing if prior_knowledge else H2Capable)
    assert can_hold_what_it_sets(cls)
