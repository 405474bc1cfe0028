"""A connection keeps its state in slots: no instance dict (a worker holds thousands, and
a dict of 50 keys is past what CPython shares between instances), and every attribute
its code sets has a slot (one set only on a rare path, a close or a timeout, would fail
there and nowhere else)."""

import pytest
from helpers import assert_slotted, attributes_set_on_self, slots_of

from server.asgi.protocol import ASGIConnection, ASGIServerHttpProtocol
from server.protocol.parser import RequestParser
from server.protocol.server import ServerHttpProtocol
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


def test_a_subclass_of_its_own_gets_a_dict():
    """An app's subclass that declares no slots may set what it likes, as before."""
    class Mine(ServerHttpProtocol):
        pass

    mine = object.__new__(Mine)
    mine.anything = 1
    assert mine.__dict__ == {"anything": 1}
