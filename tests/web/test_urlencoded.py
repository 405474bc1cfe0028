"""Urlencoded pairs (server/web/urlencoded.py): the same result as
``urllib.parse.parse_qsl(text, keep_blank_values=True)``, with the percent-decoding of
ASCII pieces compiled (server/protocol/_chead.c) or in Python (the reference). Each
case runs on both; generated strings of the characters that matter are compared too."""

import os
import subprocess
import sys
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import assert_no_leak
from server.protocol.compiled import compiled
from server.web import urlencoded
from server.web.urlencoded import parse_pairs, unquote_plus_ascii_py

PURE = os.environ.get("ASYNCWORKER_PURE_PYTHON") == "1"
NOT_BUILT = "the compiled helpers are not in use (ASYNCWORKER_PURE_PYTHON=1 or not built)"
unquote_plus_ascii_c = compiled("unquote_plus_ascii")

UNQUOTES = [pytest.param(unquote_plus_ascii_py, id="py"),
            pytest.param(unquote_plus_ascii_c, id="c",
                         marks=pytest.mark.skipif(unquote_plus_ascii_c is None, reason=NOT_BUILT))]


@pytest.fixture(params=UNQUOTES)
def unquote(request, monkeypatch):
    """Each implementation in turn, as the one ``parse_pairs`` uses."""
    monkeypatch.setattr(urlencoded, "unquote_plus_ascii", request.param)
    return request.param


def test_the_compiled_helper_is_in_use():
    if PURE:
        pytest.skip("ASYNCWORKER_PURE_PYTHON=1: the Python helper is forced")
    assert urlencoded.unquote_plus_ascii is unquote_plus_ascii_c is not None


def test_pure_python_switch_picks_the_reference():
    code = "from server.web import urlencoded as u; assert u.unquote_plus_ascii is u.unquote_plus_ascii_py"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "ASYNCWORKER_PURE_PYTHON": "1"})


UNQUOTE_CASES = [
    ("", b""),
    ("plain", b"plain"),
    ("a+b++c", b"a b  c"),
    ("%41%62%2B", b"Ab+"),  # an escaped "+" stays a plus
    ("%c3%a9%C3%A9", b"\xc3\xa9\xc3\xa9"),  # either case of hex digit
    ("100%", b"100%"),  # "%" at the end
    ("%4", b"%4"),  # one digit, then the end
    ("%4%41", b"%4A"),  # one digit, then an escape
    ("%%41", b"%A"),
    ("%zz%g1%1g", b"%zz%g1%1g"),  # not hex: kept as it is
    ("%00%ff", b"\x00\xff"),
    ("%2", b"%2"),
]


@pytest.mark.parametrize("text,expected", UNQUOTE_CASES)
def test_unquote_plus_ascii(unquote, text, expected):
    assert unquote(text) == expected
    assert type(unquote(text)) is bytes


@pytest.mark.parametrize("text", ["é", "a%41é", "\x80", "日本"])
def test_unquote_plus_ascii_declines_what_is_not_ascii(unquote, text):
    assert unquote(text) is None


def test_the_compiled_unquote_takes_only_a_str():
    if unquote_plus_ascii_c is None:
        pytest.skip(NOT_BUILT)
    for wrong in (b"a%41", 1, None):
        with pytest.raises(TypeError):
            unquote_plus_ascii_c(wrong)


PAIRS_CASES = [
    "",
    "a=1",
    "a=1&b=2&a=3",  # repeated names, in order
    "a&b=&=c&=",  # no "=", empty value, empty name, both empty
    "&&a=1&&",  # empty pieces are skipped
    "a=b=c",  # the first "=" splits
    "name=Jeanne+Dupont&email=jeanne.dupont%40example.com&phone=%2B33+6+12",
    "k%3Dx=v%26y",  # an escaped "=" or "&" is data
    "msg=bonne+journ%C3%A9e%21",
    "bad=%C3%28&lone=%E9",  # undecodable escapes: U+FFFD, as parse_qsl
    "raw=é+%C3%A9&日本=語",  # raw non-ASCII beside escapes (the Python path)
    "pct=100%&half=%4&odd=%%41",
    "a;b=1",  # ";" is not a separator
]


@pytest.mark.parametrize("text", PAIRS_CASES)
@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "cp1252"])
def test_parse_pairs_is_parse_qsl(unquote, text, encoding):
    expected = parse_qsl(text, keep_blank_values=True, encoding=encoding)
    assert parse_pairs(text, encoding) == expected


ALPHABET = st.sampled_from(list("ab=&+%%%0123456789AaFfGgz ;é\x80日") + ["%C3%A9", "%E9", "%2", "%41"])


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=40).map("".join), st.sampled_from(["utf-8", "latin-1", "shift_jis"]))
def test_parse_pairs_is_parse_qsl_on_generated_text(text, encoding):
    """(With whichever unquote is in use: the compiled one unless the pure-Python switch is set.)"""
    assert parse_pairs(text, encoding) == parse_qsl(text, keep_blank_values=True, encoding=encoding)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(list("a+%%09AFfgz&= ") + ["%41", "%e9", "%4"]), max_size=60).map("".join))
def test_compiled_unquote_is_the_reference_on_generated_text(text):
    if unquote_plus_ascii_c is None:
        pytest.skip(NOT_BUILT)
    assert unquote_plus_ascii_c(text) == unquote_plus_ascii_py(text)


@pytest.mark.parametrize("text,bound", [("a=1&b=2&c=3", 3), ("", 0), ("a=1&&", 3)])
def test_max_fields_at_the_bound_parses(text, bound):
    assert parse_pairs(text, max_fields=bound) == parse_qsl(text, keep_blank_values=True)


@pytest.mark.parametrize("text,bound", [("a=1&b=2&c=3", 2), ("a=1&&", 2), ("x", 0)])
def test_max_fields_past_the_bound_is_refused_as_parse_qsl_refuses(text, bound):
    """Pieces are counted before parsing, empty ones too (parse_qsl's ``max_num_fields``)."""
    with pytest.raises(ValueError):
        parse_qsl(text, keep_blank_values=True, max_num_fields=bound)
    with pytest.raises(ValueError):
        parse_pairs(text, max_fields=bound)


def test_the_compiled_unquote_does_not_leak():
    if unquote_plus_ascii_c is None:
        pytest.skip(NOT_BUILT)
    texts = ["x" * 100, "a+b%41%zz" * 30, "é" * 3]  # (not the shared one-character or empty str)

    def run(n):
        for _ in range(n):
            for text in texts:
                unquote_plus_ascii_c(text)
    assert_no_leak(run, texts)
