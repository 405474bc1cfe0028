"""Events the request parser yields, in order, for each request on a connection:

    RequestHead, then zero or more Data, then EndOfMessage

They hold only what was on the wire and what the framing rules decided; they
know nothing of sockets, applications or time.
"""

from dataclasses import dataclass

from multidict import CIMultiDict


@dataclass(slots=True, eq=False)
class RequestHead:
    method: str
    target: str  # the request-target as sent (latin-1)
    path: str  # path component, still percent-encoded
    query: str  # query component without "?", still encoded
    version: tuple[int, int]
    headers: CIMultiDict
    raw_headers: list[tuple[bytes, bytes]]
    keep_alive: bool  # what the request asks for; the response may still close
    content_length: int | None  # body length; None for a chunked body
    chunked: bool
    expect_continue: bool
    upgrade: bool
    has_body: bool  # chunked or a Content-Length above 0 (a field: read several times per request)


@dataclass(slots=True, eq=False)
class Data:
    data: bytes
    end_of_chunk: bool = False  # True on the last piece of an HTTP chunk


@dataclass(slots=True, eq=False, frozen=True)
class EndOfMessage:
    trailers: CIMultiDict | None = None
