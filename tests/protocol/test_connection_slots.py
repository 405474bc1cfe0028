"""A connection keeps its state in slots: no instance dict, and every attribute its
code sets has a slot (an attribute set only on a rare path, a close or a timeout, would
otherwise fail there and nowhere else)."""

import ast
import inspect
import textwrap

import pytest

from server.asgi.protocol import ASGIServerHttpProtocol
from server.protocol.server import ServerHttpProtocol
from server.web.protocol import WebServerHttpProtocol
from server.wsgi.protocol import WSGIServerHttpProtocol

CONNECTION_CLASSES = (ServerHttpProtocol, ASGIServerHttpProtocol, WSGIServerHttpProtocol, WebServerHttpProtocol)


def slots_of(cls) -> set[str]:
    names = set()
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        names.update((slots,) if isinstance(slots, str) else slots)
    return names


def attributes_set_on_self(klass) -> set[str]:
    """The names the methods of ``klass`` itself assign on ``self`` (``self.x = ...``,
    ``self.x += ...``, ``self.x: T = ...``, ``a = self.x = ...``)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        else:
            continue
        for target in targets:
            for element in ast.walk(target):
                if (isinstance(element, ast.Attribute) and isinstance(element.value, ast.Name)
                        and element.value.id == "self"):
                    names.add(element.attr)
    return names


def own_classes(cls):
    return [klass for klass in cls.__mro__ if klass.__module__.startswith("server.")]


@pytest.mark.parametrize("cls", CONNECTION_CLASSES, ids=lambda c: c.__name__)
def test_a_connection_has_no_instance_dict(cls):
    assert not any("__dict__" in klass.__dict__.get("__slots__", ()) for klass in cls.__mro__)
    assert all("__slots__" in klass.__dict__ for klass in own_classes(cls))
    assert cls.__dictoffset__ == 0  # (-1 or above 0: instances would have a dict)


@pytest.mark.parametrize("cls", CONNECTION_CLASSES, ids=lambda c: c.__name__)
def test_every_attribute_the_connection_sets_has_a_slot(cls):
    slots = slots_of(cls)
    assigned = set().union(*(attributes_set_on_self(klass) for klass in own_classes(cls)))
    assert assigned  # the walk found the assignments (the class is read)
    assert assigned - slots == set()


def test_the_check_sees_an_attribute_without_a_slot():
    class Careless(ServerHttpProtocol):
        __slots__ = ()

        def on_timeout_once(self):
            self.forgotten = True

    assert attributes_set_on_self(Careless) - slots_of(Careless) == {"forgotten"}
    with pytest.raises(AttributeError):
        Careless.on_timeout_once(object.__new__(Careless))


def test_attributes_set_from_outside_have_slots():
    """What other modules set on a connection: the listener's early bytes, the kinds'
    exchange and access-log environ."""
    assert {"early_data", "exchange", "log_environ"} <= slots_of(ServerHttpProtocol)
