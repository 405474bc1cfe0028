"""Routes whose variables take the default pattern are matched segment by segment in linear
time (the regex of ``/{a}-{b}-{c}`` is cubic on a path of many '-'); the matches and the
values must be the regex's own, which hypothesis checks on paths made of the characters
that matter."""

from hypothesis import given, settings
from hypothesis import strategies as st

from urllib.parse import unquote

from server.web.router import Resource, _compile

ROUTES = ["/{a}-{b}", "/{name}.{ext}", "/x/{a}/{b}", "/v{n}", "/{a}{b}", "/{a}-{b}-{c}", "/p/{a}.{b}.tar",
          "/{a}--{b}", "/files/{id}/raw", "/{a}", "/{a}{b}{c}", "/{a}-{b}{c}", "/q{a}z", "/{a}aa{b}"]


@settings(max_examples=3000, deadline=None)
@given(route=st.sampled_from(ROUTES), tail=st.text(alphabet="a-.xz/{}%", max_size=12))
def test_segment_matching_agrees_with_the_routes_regex(route, tail):
    path = "/" + tail
    resource = Resource(route)
    assert resource.segments is not None
    m = _compile(route).fullmatch(path)
    assert resource.match(path) == ({k: unquote(v) for k, v in m.groupdict().items()} if m else None)


def test_the_first_variable_takes_the_most_as_the_regex_does():
    assert Resource("/{name}.{ext}").match("/archive.tar.gz") == {"name": "archive.tar", "ext": "gz"}
    assert Resource("/{a}-{b}-{c}").match("/x-y-z-w") == {"a": "x-y", "b": "z", "c": "w"}
    assert Resource("/{a}-{b}").match("/-x") is None and Resource("/{a}-{b}").match("/x-") is None


def test_a_variable_with_its_own_expression_keeps_the_regex():
    resource = Resource("/{tail:.+}")
    assert resource.segments is None and resource.match("/a/b") == {"tail": "a/b"}
    assert Resource("/{a}/{b:\\d+}").segments is None
