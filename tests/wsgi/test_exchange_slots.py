"""A WSGI exchange (one per request) keeps its state in slots (see tests/protocol/test_connection_slots.py)."""

from helpers import assert_slotted

from server.wsgi.exchange import WSGIExchange


def test_an_exchange_keeps_its_state_in_slots():
    assert_slotted(WSGIExchange)
