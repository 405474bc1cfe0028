"""The parser hands a socket read that is all body to the app as it came (parser.py
``feed``, bodyreader.py ``_body_piece``): no pass through its buffer, no copy. A read
that holds a plain head and part of its body copies only the body part, once; anything
else (more than the body, pipelined requests, chunk framing) takes the buffered path
and yields the same events."""

from server.protocol.events import Data, EndOfMessage, RequestHead
from server.protocol.parser import RequestParser

HEAD = b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n"


def test_reads_of_a_content_length_body_are_the_events_data_itself():
    parser = RequestParser()
    first = b"a" * 1000
    events = parser.feed(HEAD % 3000 + first)
    assert [type(e) for e in events] == [RequestHead, Data] and events[1].data == first
    for piece in (b"b" * 1500, b"c" * 500):
        events = parser.feed(piece)
        assert events[0].data is piece  # the very object the loop read
    assert not parser.buffer
    assert isinstance(events[-1], EndOfMessage) and parser.done


def test_chunk_data_read_alone_is_not_copied():
    parser = RequestParser()
    parser.feed(b"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert parser.feed(b"1000\r\n") == []
    piece = b"x" * 0x800
    (event,) = parser.feed(piece)
    assert event.data is piece and not event.end_of_chunk
    piece2 = b"y" * 0x800
    (event,) = parser.feed(piece2)
    assert event.data is piece2 and event.end_of_chunk
    events = parser.feed(b"\r\n0\r\n\r\n")
    assert isinstance(events[-1], EndOfMessage)


def test_a_read_past_the_body_keeps_the_rest_for_the_next_request():
    parser = RequestParser()
    events = parser.feed(HEAD % 5 + b"hel")
    assert events[1].data == b"hel"
    events = parser.feed(b"lo" + b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert [e.data for e in events if isinstance(e, Data)] == [b"lo"] and parser.done
    (head, end) = parser.next_request()
    assert head.method == "GET" and isinstance(end, EndOfMessage)


def test_a_head_with_more_than_its_body_parses_the_pipelined_request_after_it():
    parser = RequestParser()
    events = parser.feed(HEAD % 2 + b"ok" + b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
    assert [type(e) for e in events] == [RequestHead, Data, EndOfMessage]
    assert events[1].data == b"ok"
    (head, _) = parser.next_request()
    assert head.target == "/next"


def test_a_bodiless_head_with_the_next_request_in_the_same_read():
    parser = RequestParser()
    events = parser.feed(b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n")
    assert [type(e) for e in events] == [RequestHead, EndOfMessage] and events[0].target == "/a"
    (head, _) = parser.next_request()
    assert head.target == "/b"


def test_an_empty_read_in_a_body_is_no_event():
    parser = RequestParser()
    parser.feed(HEAD % 3)
    assert parser.feed(b"") == []
    parser.feed(b"POST"[:0])
    assert [e.data for e in parser.feed(b"abc") if isinstance(e, Data)] == [b"abc"]
