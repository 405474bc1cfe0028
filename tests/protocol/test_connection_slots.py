"""A connection keeps its state in slots: no instance dict (a worker holds thousands, and
a dict of 50 keys is past what CPython shares between instances), and every attribute
its code sets has a slot (one set only on a rare path, a close or a timeout, would fail
there and nowhere else)."""

import pytest
from helpers import assert_slotted, attributes_set_on_self, can_hold_what_it_sets, slots_of

from server.asgi.protocol import ASGIConnection, ASGIServerHttpProtocol
from server.protocol.parser import RequestParser
from server.protocol.server import ServerHttpProtocol
from server.protocol.uwsgi_connection import uwsgi_protocol
from server.web.protocol import WebConnection, WebServerHttpProtocol
from server.wsgi.protocol import WSGIConnection, WSGIServerHttpProtocol

# What other modules set on a connection: the listener's early bytes, the kinds' exchange
# and access-log environ.
SET_FROM_OUTSIDE = ("early_data", "exchange", "log_environ")


@pytest.mark.parametrize("cls", (ServerHttpProtocol, ASGIServerHttpProtocol, WSGIServerHttpProtocol,
                                 WebServerHttpProtocol), ids=lambda c: c.__name__)
def test_a_connection_keeps_its_state_in_slots(cls):
    assert_slotted(cls, SET_FROM_OUTSIDE)


@pytest.mark.parametrize("cls", (RequestParser, ASGIConnection, WSGIConnection, WebConnection),
                         ids=lambda c: c.__name__)
def test_its_parser_and_app_kind_keep_their_state_in_slots(cls):
    assert_slotted(cls)


def test_the_check_sees_an_attribute_without_a_slot():
    class Careless(ServerHttpProtocol):
        __slots__ = ()

        def on_timeout_once(self):
            self.forgotten = True

    assert attributes_set_on_self(Careless) - slots_of(Careless) == {"forgotten"}
    with pytest.raises(AssertionError):
        assert_slotted(Careless)
    with pytest.raises(AttributeError):
        Careless.on_timeout_once(object.__new__(Careless))


def test_a_uwsgi_connection_class_can_hold_its_mixins_state():
    """``uwsgi_protocol`` mixes a class without slots into a connection class: its
    objects get a dict for what the mixin sets (a mixin given empty slots would fail)."""
    cls = uwsgi_protocol(WSGIServerHttpProtocol)
    assert can_hold_what_it_sets(cls)

    class SlottedMixin:  # (as UwsgiConnection would be with empty slots)
        __slots__ = ()

        def connection_made(self, transport):
            self.uwsgi_peer = transport

    assert not can_hold_what_it_sets(type("Uwsgi", (SlottedMixin, WSGIServerHttpProtocol), {"__slots__": ()}))
