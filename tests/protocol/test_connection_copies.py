"""New connections made as copies of a template (protocol/copies.py): the compiled slot copy
matches its Python reference, a copy holds what a connection made the usual way holds, and
it shares nothing mutable with its template but what every connection of a worker shares."""

import asyncio
import functools

import pytest
from helpers import slots_of
from test_seam import QuietLog

from server.asgi.protocol import ASGIConfig, ASGIServerHttpProtocol
from server.protocol import copies
from server.protocol.compiled import compiled
from server.protocol.config import ServerConfig
from server.protocol.limits import Limits
from server.protocol.parser import RequestParser
from server.protocol.server import ServerHttpProtocol, connection_factory
from server.protocol.uwsgi_connection import uwsgi_protocol
from server.web.protocol import WebContext, WebServerHttpProtocol
from server.wsgi.environ import base_environ
from server.wsgi.exchange import WSGIExchange
from server.wsgi.protocol import WSGIConfig, WSGIServerHttpProtocol

COMPILED_COPY = compiled("copy_slots")
IMMUTABLE = (type(None), bool, int, float, str, bytes, frozenset, tuple)
OWN = ("_parser", "app")  # what each connection makes for itself (ServerHttpProtocol.copied)


class Base:
    __slots__ = ("a", "__hidden", "__weakref__")


class Middle(Base):
    __slots__ = "b"  # (a string: one slot)


class Leaf(Middle):
    __slots__ = ("c", "unset")


def slot_values(obj) -> dict:
    values = {}
    for cls in type(obj).__mro__:
        for name in copies._declared_slots(cls):
            try:
                values[name] = cls.__dict__[name].__get__(obj, type(obj))
            except AttributeError:
                values[name] = "<unset>"
    return values


def filled_pair() -> tuple:
    src, dst = Leaf(), Leaf()
    src.a, src.b, src.c = [1], "two", None
    src._Base__hidden = object()
    dst.a, dst.unset = "old", "set in dst, unset in src"
    return src, dst


@pytest.mark.parametrize("copy", [copies.copy_slots_py, COMPILED_COPY], ids=["python", "compiled"])
def test_every_slot_is_copied_and_an_unset_one_unset(copy):
    if copy is None:
        pytest.skip("the compiled helpers are not built")
    src, dst = filled_pair()
    copy(dst, src)
    values = slot_values(dst)
    assert values == slot_values(src)
    assert values["a"] is src.a and values["_Base__hidden"] is src._Base__hidden
    assert values["unset"] == "<unset>"


@pytest.mark.skipif(COMPILED_COPY is None, reason="the compiled helpers are not built")
def test_the_compiled_copy_matches_its_reference():
    src, by_python = filled_pair()
    by_c = filled_pair()[1]
    copies.copy_slots_py(by_python, src)
    COMPILED_COPY(by_c, src)
    assert slot_values(by_c) == slot_values(by_python)
    with pytest.raises(TypeError):
        COMPILED_COPY(Middle(), src)
    with pytest.raises(TypeError):
        copies.copy_slots_py(Middle(), src)


@pytest.mark.skipif(COMPILED_COPY is None, reason="the compiled helpers are not built")
def test_the_compiled_copy_copies_each_of_many_types_again_and_again():
    """It keeps the slot offsets of the first types it copies, and walks the MRO of the others."""
    kinds = [type(f"Kind{k}", (Leaf,), {"__slots__": tuple(f"s{j}" for j in range(k))}) for k in range(12)]
    for _ in range(2):
        for kind in kinds:
            src, by_c, by_python = kind(), kind(), kind()
            src.a, src.b, src._Base__hidden = [], "b", object()
            for j in range(len(kind.__slots__)):
                setattr(src, f"s{j}", (j,))
            by_c.c = "set, unset in src"
            COMPILED_COPY(by_c, src)
            copies.copy_slots_py(by_python, src)
            assert slot_values(by_c) == slot_values(by_python) == slot_values(src)
            assert by_c.a is src.a and not hasattr(by_c, "c")


COMPILED_COPY_OF = compiled("copy_of")


@pytest.mark.parametrize("copy_of", [copies.copy_of_py, COMPILED_COPY_OF], ids=["python", "compiled"])
def test_a_copy_of_a_template_is_a_new_object_with_its_slots_and_no_init(copy_of):
    if copy_of is None:
        pytest.skip("the compiled helpers are not built")
    template = filled_pair()[0]
    copy = copy_of(template)
    assert type(copy) is Leaf and copy is not template
    assert slot_values(copy) == slot_values(template) and copy.a is template.a
    assert copy.c is None and not hasattr(copy, "unset")  # (None where None, unset where unset)
    template.a.append(1)
    assert copy.a == [1, 1] and copy_of(template).a is template.a  # (shared as copy_slots shares)


def wsgi_args(loop):
    environ = base_environ(multithread=True, multiprocess=False, file_wrapper=None)
    return (WSGIConfig(app=None, pool=None, environ=environ, log=QuietLog()),
            ServerConfig(log=QuietLog(), keepalive=5), loop, None)


def asgi_args(loop):
    return ASGIConfig(app=None, log=QuietLog()), ServerConfig(log=QuietLog(), access_log=True), loop, None


def web_args(loop):
    return WebContext(app=None, log=QuietLog()), ServerConfig(log=QuietLog()), loop, None


KINDS = {WSGIServerHttpProtocol: wsgi_args, ASGIServerHttpProtocol: asgi_args, WebServerHttpProtocol: web_args}


@pytest.mark.parametrize("cls", list(KINDS), ids=lambda c: c.__name__)
def test_a_copy_holds_what_a_new_connection_holds_and_its_own_parser_and_kind(cls):
    loop = asyncio.new_event_loop()
    try:
        args = KINDS[cls](loop)
        template = cls(*args)
        copy = template.copied()
        fresh = cls(*args)
    finally:
        loop.close()
    assert type(copy) is cls
    for name in slots_of(cls) - set(OWN):
        mine, usual = getattr(copy, name, "<unset>"), getattr(fresh, name, "<unset>")
        # Shared with the template only what every connection shares, or what cannot change.
        assert mine is usual or (isinstance(mine, IMMUTABLE) and mine == usual), name
    assert copy._parser is not template._parser and type(copy._parser) is type(template._parser)
    assert slot_values(copy._parser) == slot_values(fresh._parser)
    assert copy._parser.buffer is not template._parser.buffer
    assert type(copy.app) is type(fresh.app) and copy.app is not template.app
    assert copy.app.channel is copy


def test_an_exchange_copied_from_the_template_holds_what_one_made_the_usual_way_holds():
    loop = asyncio.new_event_loop()
    try:
        wsgi, config, loop, _ = wsgi_args(loop)
        connection = WSGIServerHttpProtocol(wsgi, config, loop)
    finally:
        loop.close()
    template = wsgi.exchange_template
    if COMPILED_COPY is None:
        assert template is None  # (the Python copy is slower than __init__)
        return
    head = RequestParser().feed(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")[0]
    copy = object.__new__(WSGIExchange)
    COMPILED_COPY(copy, template)
    copy.protocol, copy.connection, copy.head = connection, connection.app, head  # (as on_request does)
    usual = WSGIExchange(connection.app, head, wsgi)
    assert slot_values(copy) == slot_values(usual)
    assert all(isinstance(value, IMMUTABLE) or value is getattr(usual, name)
               for name, value in slot_values(copy).items())


class ParserWithADict(RequestParser):
    pass


@pytest.mark.parametrize("cls", [RequestParser, ParserWithADict], ids=["slots", "a-dict"])
def test_a_fresh_parser_parses_as_a_new_one_and_shares_no_buffer(cls):
    template = cls(Limits(fields=20))
    first, second = template.fresh(), template.fresh()
    assert type(first) is cls and first.limits is template.limits
    assert slot_values(first) == slot_values(cls(template.limits))
    assert len({id(template.buffer), id(first.buffer), id(second.buffer)}) == 3
    chunked = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nA: b\r\n\r\n"
    assert [type(e).__name__ for e in first.feed(chunked[:-8])] == ["RequestHead", "Data"]
    assert [type(e).__name__ for e in second.feed(chunked)] == ["RequestHead", "Data", "EndOfMessage"]
    assert list(first.feed(chunked[-8:])[-1].trailers.items()) == [("A", "b")] and not template.buffer


def test_the_factory_copies_only_where_a_copy_is_the_whole_connection():
    loop = asyncio.new_event_loop()
    try:
        args = wsgi_args(loop)
        made = connection_factory(WSGIServerHttpProtocol, *args)
        with_a_dict = connection_factory(uwsgi_protocol(WSGIServerHttpProtocol), *args)
        no_kind_of_its_own = connection_factory(ServerHttpProtocol, ServerConfig(log=QuietLog()))
    finally:
        loop.close()
    if COMPILED_COPY is None:
        assert isinstance(made, functools.partial)
    else:
        assert made.__func__ is ServerHttpProtocol.copied and type(made.__self__) is WSGIServerHttpProtocol
        first, second = made(), made()
        assert type(first) is WSGIServerHttpProtocol and first._parser is not second._parser
        assert first.app is not second.app and first.app.channel is first
    assert isinstance(with_a_dict, functools.partial) and isinstance(no_kind_of_its_own, functools.partial)
