"""The native web layer's pieces without a server: router, app detection, multipart
parsing, content codings, responses and exceptions."""

import asyncio
import gzip
import zlib

import pytest

from server import web
from server.protocol.errors import BadRequest
from server.web.streams import StreamReader
from server.web.compression import DecodedTooLarge, DecodingReader, negotiate
from server.web.multipart import MAX_PART_HEAD, MultipartReader, parse_content_disposition, read_form
from server.web.router import safe_path
from server.workers.apps import app_kind


async def handler(request):
    return web.Response()


async def other(request):
    return web.Response()


# -- router ---------------------------------------------------------------------------------


def test_router_matches_in_order_and_decodes_values():
    router = web.Router()
    router.add_get("/users/{id}", handler)
    router.add_get("/users/me", other)
    router.add_get(r"/n/{num:\d{2,3}}", handler)
    assert router.resolve("GET", "/users/me").handler is handler  # registered first
    assert router.resolve("GET", "/users/a%20b") == {"id": "a b"}
    assert router.resolve("GET", "/users/a%2Fb") == {"id": "a/b"}  # an encoded slash stays in the segment
    assert router.resolve("GET", "/n/123") == {"num": "123"}
    assert router.resolve("GET", "/n/1").route_path is None


def test_router_plain_path_before_patterns_is_found_directly():
    router = web.Router()
    router.add_get("/users/me", other)
    router.add_delete("/users/{id}", handler)
    assert router.resolve("GET", "/users/me").handler is other
    assert router.resolve("DELETE", "/users/me").handler is handler


def test_router_405_lists_every_method_of_matching_resources():
    router = web.Router()
    router.add_get("/x", handler)
    router.add_post("/x", handler)
    with pytest.raises(web.HTTPMethodNotAllowed) as info:
        asyncio.run(router.resolve("PUT", "/x").handler(None))
    assert info.value.headers["Allow"] == "GET,HEAD,POST"
    with pytest.raises(web.HTTPNotFound):
        asyncio.run(router.resolve("GET", "/y").handler(None))


def test_router_rejects_bad_definitions_and_changes_when_frozen():
    router = web.Router()
    with pytest.raises(ValueError):
        router.add_get("no-slash", handler)
    with pytest.raises(ValueError):
        router.add_get("/{bad name}", handler)
    router.add_get("/a", handler)
    with pytest.raises(RuntimeError):
        router.add_get("/a", other)
    router.freeze()
    with pytest.raises(RuntimeError):
        router.add_get("/b", handler)


def test_safe_path_keeps_encoded_slash_and_percent():
    assert safe_path("/a%20b/c%2Fd/%25") == "/a b/c%2Fd/%25"


# -- detection ----------------------------------------------------------------------------------


def wsgi_app(environ, start_response):
    return []


async def asgi_app(scope, receive, send):
    pass


class AsgiClass:
    async def __call__(self, scope, receive, send):
        pass


def annotated() -> web.Application:
    return web.Application()


async def annotated_async() -> "web.Application":
    return web.Application()


@web.app_factory
def marked():
    return web.Application()


def unannotated():
    return web.Application()


def test_native_apps_and_factories_are_detected():
    app = web.Application()
    assert web.is_native_app(app) and app() is app  # gunicorn wants a callable
    for factory in (annotated, annotated_async, marked):
        assert web.is_native_app(factory), factory
        assert app_kind(factory) == "native"


def test_wsgi_and_asgi_apps_are_never_native():
    import flask
    import starlette.applications
    from django.core.handlers.wsgi import WSGIHandler

    candidates = [wsgi_app, asgi_app, AsgiClass(), AsgiClass, flask.Flask("x"), unannotated, lambda: None,
                  starlette.applications.Starlette(), WSGIHandler, print, object()]
    for candidate in candidates:
        assert not web.is_native_app(candidate), candidate


def test_factory_returning_something_else_fails_at_startup():
    from server.web.serving import resolve_app

    async def wrong() -> web.Application:
        return wsgi_app

    with pytest.raises(TypeError, match="not a server.web.Application"):
        asyncio.run(resolve_app(wrong))
    assert isinstance(asyncio.run(resolve_app(annotated_async)), web.Application)


# -- multipart ------------------------------------------------------------------------------------


def test_content_disposition():
    assert parse_content_disposition('form-data; name="a b"; filename="x\\"y.txt"') == (
        "form-data", {"name": "a b", "filename": 'x"y.txt'})
    assert parse_content_disposition("attachment; filename*=UTF-8''na%C3%AFve.txt; filename=naive.txt") == (
        "attachment", {"filename": "naïve.txt"})
    assert parse_content_disposition(None) == (None, {})


def feed_all(body: bytes, piece: int) -> StreamReader:
    stream = StreamReader(loop=asyncio.get_running_loop())
    for i in range(0, len(body), piece):
        stream.feed_data(body[i:i + piece])
    stream.feed_eof()
    return stream


TRICKY = b"\r\n--XyY\r\n-XyZ a--XyZ\r" * 3  # almost delimiters ("\r\n--XyZ" may not occur in a part)
FORM = (b"--XyZ\r\nContent-Disposition: form-data; name=\"f1\"\r\n\r\nvalue one\r\n"
        b"--XyZ\r\nContent-Disposition: form-data; name=\"up\"; filename=\"a.bin\"\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n" + TRICKY + b"\r\n"
        b"--XyZ--\r\n")


@pytest.mark.parametrize("piece", [1, 3, 7, 64, 10_000])
def test_multipart_form_from_any_piece_size(tmp_path, piece):
    async def main():
        reader = MultipartReader({"Content-Type": "multipart/form-data; boundary=XyZ"}, feed_all(FORM, piece))
        form = await read_form(reader, 0, str(tmp_path))
        upload = form["up"]
        return form["f1"], upload.filename, upload.file.read()

    assert asyncio.run(main()) == ("value one", "a.bin", TRICKY)


@pytest.mark.parametrize("body", [b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nno end",
                                  b"no boundary at all",
                                  b"--XyZ\r\nBad header line\r\n\r\nx\r\n--XyZ--",
                                  b"--XyZ\r\nX: " + b"h" * (MAX_PART_HEAD + 10) + b"\r\n\r\nx\r\n--XyZ--"])
def test_malformed_multipart_is_a_bad_request(body):
    async def main():
        reader = MultipartReader({"Content-Type": "multipart/form-data; boundary=XyZ"}, feed_all(body, 1000))
        return await read_form(reader, 0, None)

    with pytest.raises(web.HTTPBadRequest):
        asyncio.run(main())


def test_multipart_form_size_bound():
    async def main():
        reader = MultipartReader({"Content-Type": "multipart/form-data; boundary=XyZ"}, feed_all(FORM, 50))
        return await read_form(reader, 20, None)

    with pytest.raises(web.HTTPRequestEntityTooLarge):
        asyncio.run(main())


# -- content codings ------------------------------------------------------------------------------


@pytest.mark.parametrize("header,expected", [("gzip, deflate", "gzip"), ("deflate", "deflate"),
                                             ("gzip;q=0, deflate", "deflate"), ("identity", None), ("*", "gzip"),
                                             ("br", None), ("", None), ("GZIP;q=0.5", "gzip")])
def test_accept_encoding_negotiation(header, expected):
    assert negotiate(header) == expected


def test_decoding_reader_bound_is_crossed_exactly():
    data = b"a" * 100_000
    body = gzip.compress(data)

    async def decode(limit):
        reader = DecodingReader(feed_all(body, 1000), "gzip", limit)
        return await reader.read()

    assert asyncio.run(decode(len(data))) == data
    with pytest.raises(DecodedTooLarge):
        asyncio.run(decode(len(data) - 1))


def test_decoding_reader_deflate_and_truncation():
    data = b"hello " * 1000

    async def decode(body, coding):
        return await DecodingReader(feed_all(body, 100), coding, 0).read()

    assert asyncio.run(decode(zlib.compress(data), "deflate")) == data
    with pytest.raises(BadRequest):
        asyncio.run(decode(gzip.compress(data)[:-20], "gzip"))
    with pytest.raises(BadRequest):
        asyncio.run(decode(b"not deflate at all", "deflate"))


# -- responses ---------------------------------------------------------------------------------------


def test_response_content_type_and_charset():
    resp = web.Response(text="é")
    assert (resp.content_type, resp.charset, resp.body) == ("text/plain", "utf-8", "é".encode())
    resp = web.Response(body=b"{}", content_type="application/json")
    assert resp.headers["Content-Type"] == "application/json"
    resp.charset = "latin-1"
    assert resp.headers["Content-Type"] == "application/json; charset=latin-1"
    assert web.json_response({"a": 1}).text == '{"a": 1}'
    with pytest.raises(ValueError):
        web.Response(body=b"x", text="y")
    with pytest.raises(TypeError):
        web.Response(body="str body")


def test_status_reason_and_location_cannot_split_the_head():
    with pytest.raises(ValueError):
        web.StreamResponse(status=200, reason="OK\r\nX-Evil: 1")
    with pytest.raises(ValueError):
        web.HTTPFound("/x\r\nX-Evil: 1")
    assert web.HTTPFound("/next").headers["Location"] == "/next"


def test_http_exceptions_are_responses():
    exc = web.HTTPNotFound()
    assert isinstance(exc, Exception) and isinstance(exc, web.Response)
    assert (exc.status, exc.text) == (404, "404: Not Found")
    assert web.HTTPNoContent().body is None
    assert issubclass(web.HTTPBadRequest, web.HTTPClientError)
    assert issubclass(web.HTTPServiceUnavailable, web.HTTPServerError)
    too_large = web.HTTPRequestEntityTooLarge(10, 11)
    assert too_large.status == 413 and "10" in too_large.text


def test_app_state_and_frozen_signals():
    app = web.Application()
    app["db"] = 1
    assert dict(app) == {"db": 1}
    app.freeze()
    with pytest.raises(RuntimeError):
        app.on_startup.append(handler)
