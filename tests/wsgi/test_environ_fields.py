"""The compiled ``environ_fields`` (``_chead.c``) puts a request's fields in the WSGI environ
exactly as its Python reference ``environ_fields_py`` does: the same keys, the same joins of
repeated fields, the same refusals, the same errors."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from helpers import assert_no_leak
from server.protocol.compiled import compiled
from server.wsgi import environ as environ_module
from server.wsgi.environ import _environ_key, environ_fields_py

environ_fields_c = compiled("environ_fields")
needs_c = pytest.mark.skipif(environ_fields_c is None, reason="the compiled helpers are not in use")

IMPLS = [pytest.param(environ_fields_py, id="py"),
         pytest.param(environ_fields_c, id="c", marks=needs_c)]


def run(impl, fields, forwarder_fields=frozenset(), start=None):
    environ = dict(start or {"SCRIPT_NAME": "", "REQUEST_METHOD": "GET"})
    impl(environ, CIMultiDict(fields), {}, _environ_key, forwarder_fields)
    return environ


CASES = [
    ([("Host", "h"), ("Accept", "*/*"), ("User-Agent", "u")], frozenset()),
    ([("Cookie", "a=1"), ("cookie", "b=2"), ("COOKIE", "c=3")], frozenset()),
    ([("Accept", "a"), ("accept", "b")], frozenset()),
    ([("Content-Type", "a"), ("Content-Type", "b")], frozenset()),  # the last one
    ([("Content-Length", "5"), ("X-A", "1")], frozenset()),  # the length comes from the framing
    ([("X_Forwarded", "x"), ("Y-Z", "y")], frozenset()),  # "_": dropped
    ([("Script_Name", "/app/")], frozenset({"SCRIPT_NAME"})),  # a trusted proxy's
    ([("X-Empty", ""), ("X-Empty", "")], frozenset()),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fields, forwarder_fields", CASES)
def test_the_environ_is_the_reference_one(impl, fields, forwarder_fields):
    assert run(impl, fields, forwarder_fields) == run(environ_fields_py, fields, forwarder_fields)


@pytest.mark.parametrize("impl", IMPLS)
def test_what_the_fields_become(impl):
    environ = run(impl, [("Host", "h"), ("Cookie", "a=1"), ("Cookie", "b=2"), ("Accept", "x"), ("Accept", "y"),
                         ("Content-Type", "t1"), ("Content-Type", "t2"), ("Content-Length", "3"), ("A_B", "c")])
    assert environ == {"SCRIPT_NAME": "", "REQUEST_METHOD": "GET", "HTTP_HOST": "h", "HTTP_COOKIE": "a=1; b=2",
                       "HTTP_ACCEPT": "x, y", "CONTENT_TYPE": "t2"}


@pytest.mark.parametrize("impl", IMPLS)
def test_a_field_joins_what_the_environ_already_has(impl):
    environ = run(impl, [("X-A", "2")], start={"HTTP_X_A": "1"})
    assert environ == {"HTTP_X_A": "1, 2"}


@pytest.mark.parametrize("impl", IMPLS)
def test_an_error_of_the_key_function_comes_through(impl):
    def key_of(name, forwarder_fields):
        raise LookupError(name)

    with pytest.raises(LookupError, match="X-New"):
        impl({}, CIMultiDict([("X-New", "v")]), {}, key_of, frozenset())


@needs_c
def test_the_compiled_one_refuses_what_it_cannot_take():
    with pytest.raises(TypeError):
        environ_fields_c({}, CIMultiDict(), [], _environ_key, frozenset())  # keys: not a dict
    with pytest.raises(TypeError):
        environ_fields_c({}, CIMultiDict())  # arguments missing


class PairsOfThree:
    def items(self):
        return [("a", "b", "c")]


@pytest.mark.parametrize("impl", IMPLS)
def test_items_that_are_not_pairs_are_an_error(impl):
    with pytest.raises((TypeError, ValueError)):
        impl({}, PairsOfThree(), {}, _environ_key, frozenset())


NAMES = st.sampled_from(["Host", "Cookie", "cookie", "Accept", "Content-Type", "content-type", "Content-Length",
                         "X_Y", "Script_Name", "X-A", "x-a"])
VALUES = st.text(alphabet="ab=;, \xe9", max_size=6)


@settings(max_examples=300, deadline=None)
@given(fields=st.lists(st.tuples(NAMES, VALUES), max_size=12), trusted=st.booleans())
def test_any_fields_give_the_reference_environ(fields, trusted):
    forwarder_fields = frozenset({"SCRIPT_NAME", "X_Y"}) if trusted else frozenset()
    got = run(environ_module.environ_fields, fields, forwarder_fields)
    assert got == run(environ_fields_py, fields, forwarder_fields)


@needs_c
def test_the_compiled_one_does_not_leak():
    headers = CIMultiDict([("Host", "h"), ("Cookie", "a"), ("Cookie", "b"), ("Content-Type", "x"),
                           ("Content-Type", "y"), ("A_B", "z")])

    def run_many(n):
        for _ in range(n):
            environ_fields_c({}, headers, {}, _environ_key, frozenset())
            try:
                environ_fields_c({}, PairsOfThree(), {}, _environ_key, frozenset())
            except TypeError:
                pass

    assert_no_leak(run_many)
