"""H2Connection: one HTTP/2 connection over hyper-h2's sans-IO state machine.

    bytes ──FrameWatch (bounds)──► h2.receive_data ──events──► streams (stream.py), one per request
      RequestReceived: a head (request.py) ──► a stream, started once the read's events are handled
      DataReceived / StreamEnded ──► its body sink (flow.py: acknowledged as the app consumes it)
      StreamReset ──► its app learns the client left; too many resets ──► GOAWAY ENHANCE_YOUR_CALM
      WindowUpdated / settings ──► streams waiting for a send window go on
    streams ──send_headers / send_data──► h2 ──data_to_send──► the transport

The connection is the receiver of an accepted ``ServerHttpProtocol`` (``upgrade``): the
worker counts it, closes it and stops it gracefully as any other, and its socket-level
defences (the minimum rate of a client that does not read) hold here too. Its own: the
preface and header-block timeouts (``header timeout``), the idle timeout (gunicorn's
``keepalive``: GOAWAY), the graceful stop (GOAWAY naming the last stream, the streams in
flight finish), the rapid-reset cap, the header block cap (frames.py), the cap on
PING/SETTINGS answered to a client that does not read, and the minimum rate at which a
client must open its windows while a response waits on them.
"""

import asyncio
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import ConnectionState
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from server.protocol.closing import LINGER_TIMEOUT
from server.protocol.forwarded import direct
from server.protocol.peer import peer_ip
from server.protocol.rates import MinimumRate
from server.protocol.timers import ConnectionTimer

from .config import header_list_size
from .blocks import ReusingDecoder, ReusingEncoder
from .direct import DirectConnection
from .fields import BadHead, Malformed, check_trailers
from .frames import FloodError, FrameWatch
from .request import KeptHeads
from .stream import H2Stream

SETTINGS = h2.settings.SettingCodes


def new_h2(settings, limits) -> h2.connection.H2Connection:
    """A server-side h2 state machine with the worker's settings (in force at once)."""
    # Header blocks are checked by request.py and fields.py in one pass (h2's checks cost a
    # fifth of a small request); the response fields are made well formed by stream.py.
    config = h2.config.H2Configuration(client_side=False, header_encoding=None, validate_inbound_headers=False,
                                       normalize_inbound_headers=False, validate_outbound_headers=False,
                                       normalize_outbound_headers=False)
    conn = DirectConnection(config=config)
    conn.encoder = ReusingEncoder()  # (before anything is encoded or decoded)
    decoder = ReusingDecoder(conn.decoder.max_header_list_size)
    decoder.max_allowed_table_size = conn.decoder.max_allowed_table_size
    conn.decoder = decoder
    list_size = header_list_size(settings, limits)
    conn.local_settings = h2.settings.Settings(client=False, initial_values={
        SETTINGS.MAX_CONCURRENT_STREAMS: settings.max_concurrent_streams,
        SETTINGS.INITIAL_WINDOW_SIZE: settings.initial_window_size,
        SETTINGS.MAX_FRAME_SIZE: settings.max_frame_size,
        SETTINGS.MAX_HEADER_LIST_SIZE: list_size,
        SETTINGS.ENABLE_PUSH: 0,
    })
    conn.max_inbound_frame_size = settings.max_frame_size
    conn.incoming_buffer.max_frame_size = settings.max_frame_size
    conn.decoder.max_header_list_size = list_size
    return conn


class H2Connection(asyncio.Protocol):
    def __init__(self, host, service, owner=None):
        self.host = host  # the accepted connection this one took over (its transport, its counting)
        self.transport = host.transport
        self.loop = host.loop
        self.log = host.log
        self.config = service.config  # ServerConfig of the streams
        self.settings = service.settings
        self.kind = service.kind
        self.peername = host.peername
        self.sockname = host.sockname
        self.owner = owner
        self.h2 = new_h2(self.settings, self.config.limits)
        self.watch = FrameWatch(self.settings.max_header_block)
        proxy = self.config.proxy
        self.heads = KeptHeads(self.config.limits, proxy.forwards if proxy is not None else None)
        self.response_fields: dict = {}  # (response Head, length) -> its HPACK fields but the date (stream.py)
        self.peer = (direct(self.peername, self.config.scheme), proxy.trusts(self.peername) if proxy else None)
        self.streams: dict[int, H2Stream] = {}
        self._to_start: list[H2Stream] = []
        self._waiting: set[H2Stream] = set()  # streams whose bytes wait for a send window
        self.writing_paused = host.writing_paused
        self._answers_unread = 0
        self._resets: list[float] = []  # when the client reset streams, within the interval
        self._any_request = False
        self._goaway = None  # the last stream id once a graceful GOAWAY went out
        self._sent = 0  # DATA bytes sent (the window-stall rate's progress)
        self._flush_due = None  # a write of h2's output at the end of this loop iteration
        self._closed = False  # closed by us (GOAWAY sent): the rest of a read is not served
        self._last_stream = 0  # the last stream taken (h2 may have parsed more of a read)
        self._timer = ConnectionTimer(self.loop, self._on_timeout)
        self._stall = MinimumRate(self.loop, self.config.min_response_rate, self.config.rate_grace,
                                  lambda: self._sent, self._stalled)

    def start(self, data: bytes) -> None:
        """Begin: our SETTINGS (and a larger connection window), then the client's bytes so far."""
        self.h2.initiate_connection()
        self._open_window()
        self.flush()
        self._timer.start("preface", self.config.head_timeout)
        if data:
            self.data_received(data)

    def start_upgraded(self, settings: bytes, head, data: bytes) -> None:
        """Begin after ``101 Switching Protocols``: ``head`` (the HTTP/1.1 request, whose
        HTTP2-Settings were ``settings``) is stream 1, half closed; the client's preface follows."""
        self.h2.initiate_upgrade_connection(settings)
        self._open_window()
        self._any_request = True
        self._last_stream = 1
        stream = self.streams[1] = H2Stream(self, 1, head)
        stream.input_ended = True
        # Answered once the client's preface is in: a client reads the 101 before it switches,
        # and may not hold much of HTTP/2 before it has (curl 7.88 holds 32 KiB).
        self._to_start.append(stream)
        self.flush()
        self._timer.start("preface", self.config.head_timeout)
        if data:
            self.data_received(data)

    def _open_window(self) -> None:
        """The connection's receive window, from the protocol's 64 KiB to room for every stream's."""
        extra = self.settings.connection_window - 65535
        if extra > 0:
            self.h2.increment_flow_control_window(extra)

    # -- input ------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return  # (after our GOAWAY: dropped until the client closes or the linger ends)
        watch = self.watch
        answers = watch.answers
        try:
            watch.feed(data)
        except FloodError as exc:
            self._calm(str(exc))
            return
        if self.writing_paused:
            self._answers_unread += watch.answers - answers
            if self._answers_unread > self.settings.unread_answers:
                self._calm("PING/SETTINGS frames while it does not read")
                return
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail(exc)
            return
        for event in events:
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, event)
                if self._closed:  # a bound was crossed: nothing more of this read is served
                    return
        self._start_streams()
        self.flush()
        self._update_timer()

    def eof_received(self) -> bool:
        return False  # nothing more can come: the streams in flight are lost with the connection

    def connection_lost(self, exc) -> None:
        self._timer.cancel()
        self._stall.cancel()
        self.transport = None
        lost = ConnectionResetError("Client disconnected")
        for stream in list(self.streams.values()):
            stream.close_stream(lost, notify=True)
        self.streams.clear()

    def _request(self, event) -> None:
        sid = event.stream_id
        if self._goaway is not None and sid > self._goaway:
            self.reset_id(sid, ErrorCodes.REFUSED_STREAM)
            return
        self._any_request = True
        self._last_stream = sid
        malformed = self.h2.malformed(sid)
        if malformed is not None:
            self._refuse(sid, 400, f"Malformed request: {malformed}", event.stream_ended is not None,
                         ErrorCodes.PROTOCOL_ERROR)
            return
        try:
            head, forwards = self.heads.head(event.headers, event.stream_ended is not None)
        except BadHead as exc:
            self._refuse(sid, exc.status, exc.message, event.stream_ended is not None, ErrorCodes[exc.reset])
            return
        stream = self.streams[sid] = H2Stream(self, sid, head, forwards)
        self._to_start.append(stream)

    def _start_streams(self) -> None:
        """Streams opened by this read start now: one reset in the same read never starts its app."""
        starting, self._to_start = self._to_start, []
        for stream in starting:
            if stream.open:
                stream.start()

    def _data(self, event) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            self.ack_id(event.stream_id, event.flow_controlled_length)
            return
        malformed = self.h2.malformed(event.stream_id)
        if malformed is not None:
            self.ack_id(event.stream_id, event.flow_controlled_length)
            stream.body_malformed(malformed)
            return
        stream.data_received(event.data, event.flow_controlled_length)

    def _trailers(self, event) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            try:
                check_trailers(event.headers)
            except Malformed as exc:
                stream.body_malformed(exc.message)
                return
            stream.request_trailers = _trailer_map(event.headers)

    def _ended(self, event) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.input_received(stream.request_trailers)

    def _reset(self, event) -> None:
        if event.remote_reset:
            now = time.monotonic()
            resets = self._resets
            resets.append(now)
            if len(resets) > self.settings.reset_limit:
                if now - resets[0] < self.settings.reset_interval:
                    self._calm("too many streams reset")
                    return
                del resets[:len(resets) // 2]
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.close_stream(ConnectionResetError("Stream reset by the client"), notify=True)

    def _window(self, event) -> None:
        if event.stream_id:
            stream = self.streams.get(event.stream_id)
            if stream is not None and stream.writing_paused:
                stream.push()
        else:
            self._push_waiting()

    def _settings_changed(self, event) -> None:
        if SETTINGS.INITIAL_WINDOW_SIZE in event.changed_settings:
            self._push_waiting()

    def _terminated(self, event) -> None:
        """The client's GOAWAY. With NO_ERROR its streams in flight still get their answers
        (RFC 9113 s6.8), which h2's state machine, closed by any GOAWAY, would refuse to
        send: it is set open again. No new stream is taken; the last one done closes."""
        if event.error_code or not self.streams:
            self.close()
            return
        self.h2.state_machine.state = ConnectionState.SERVER_OPEN
        if self._goaway is None:
            self._goaway = self._last_stream

    # -- output (for the streams) -------------------------------------------------------------

    def send_headers(self, stream, fields, end: bool) -> None:
        """Trailers, or a 100 Continue: written at the end of this loop iteration."""
        self.h2.send_headers(stream.id, fields, end_stream=end)
        if end:
            stream.sent_end = True
        self.flush()

    def send_response_head(self, stream, fields: list, end: bool) -> None:
        """A response head made by the stream (a list of (bytes, bytes)); written by the push that follows."""
        h2_stream = self.h2.streams.get(stream.id)
        if h2_stream is None:
            self.h2.send_headers(stream.id, fields, end_stream=end)  # (h2 raises as it does)
        else:
            self.h2.send_plain_headers(h2_stream, fields, end)
        if end:
            stream.sent_end = True

    def send_whole_response(self, stream, fields: list, data: bytes) -> bool:
        """A response head and its whole body (``data``, maybe empty), the stream's end, if the
        socket, the windows and a frame take it: then written as ``send_response_head`` and
        ``send_data`` would, and the output ended. Else False, with nothing done."""
        if self.writing_paused or self.transport is None:
            return False
        h2_stream = self.h2.streams.get(stream.id)
        if h2_stream is None or not self.h2.send_plain_response(h2_stream, fields, data):
            return False
        self._sent += len(data)
        stream.sent_end = True
        self.output_ended(stream)
        self.flush()
        return True

    def send_data(self, stream, data: bytes, end: bool) -> None:
        """(written by the caller's ``flush()``: a push writes all its frames at once)"""
        self.h2.send_data(stream.id, data, end_stream=end)
        self._sent += len(data)
        if end:
            stream.sent_end = True

    def room(self, stream) -> int:
        """Bytes ``stream`` may send now: its window, the connection's, one frame; 0 while the
        socket's buffer is full."""
        if self.writing_paused or self.transport is None:
            return 0
        return min(self.h2.local_flow_control_window(stream.id), self.h2.max_outbound_frame_size)

    def blocked(self, stream, waiting: bool) -> None:
        """``stream`` waits for a window (or no longer does): the stall rate watches while any does."""
        if waiting:
            if not self._waiting and not self.writing_paused:
                self._stall.start()
            self._waiting.add(stream)
        else:
            self._waiting.discard(stream)
            if not self._waiting:
                self._stall.stop()

    def _push_waiting(self) -> None:
        for stream in list(self._waiting):
            stream.push()

    def ack(self, stream, size: int) -> None:
        self.ack_id(stream.id, size)

    def ack_id(self, stream_id: int, size: int) -> None:
        if size and self.transport is not None:
            try:
                self.h2.acknowledge_received_data(size, stream_id)
            except h2.exceptions.StreamClosedError:
                pass
            self.flush()  # (nothing to write unless a window is half used: h2 batches its updates)

    def reset(self, stream, error: str) -> None:
        self.reset_id(stream.id, ErrorCodes[error])

    def reset_id(self, stream_id: int, code) -> None:
        try:
            self.h2.reset_stream(stream_id, code)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            return
        self.flush()

    def flush(self) -> None:
        """Write what h2 has for the socket: at the end of this loop iteration, so the responses
        of many streams ready together go out in one write."""
        if self._flush_due is None and self.transport is not None and not self._closed:
            self._flush_due = self.loop.call_soon(self.write_now)

    def write_now(self) -> None:
        self._flush_due = None
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self._closed:
            self.host.write(data)

    # -- streams ending -------------------------------------------------------------------------

    def response_done(self, stream) -> None:
        """The app is done with ``stream`` (its bytes may still wait for a window)."""
        if self.owner is not None:
            self.owner.request_done()

    def output_ended(self, stream) -> None:
        """END_STREAM went out: a request body still coming is not wanted (RFC 9113 s8.1)."""
        if not stream.input_ended:
            self.reset(stream, "NO_ERROR")
        stream.open = False
        self.stream_closed(stream)

    def stream_closed(self, stream) -> None:
        if self.streams.get(stream.id) is stream:
            del self.streams[stream.id]
        stream.sink = None  # (nothing more reaches it; it holds the stream: both go at once)
        self.h2.forget_closed(stream.id)
        self._waiting.discard(stream)
        if not self.streams:
            if self._goaway is not None:
                self.close()
            else:
                self._update_timer()

    def _refuse(self, stream_id: int, status: int, message: str, ended: bool, reset=ErrorCodes.NO_ERROR) -> None:
        """A head refused before any stream exists for it: a short error response, then
        (a malformed request, RFC 9113 s8.1.1) PROTOCOL_ERROR if the client still sends. Logged
        as HTTP/1.1 logs a request it cannot parse: a warning, no access-log line."""
        if self.log is not None:
            self.log.warning("Invalid request from %s on HTTP/2 stream %d: %s", peer_ip(self.peername),
                             stream_id, message)
        body = (message + "\n").encode("utf-8")
        fields = [(b":status", b"%d" % status), (b"content-type", b"text/plain; charset=utf-8"),
                  (b"content-length", b"%d" % len(body))]
        fits = self.h2.local_flow_control_window(stream_id) >= len(body)
        self.h2.send_headers(stream_id, fields if fits else fields[:1], end_stream=not fits)
        if fits:
            self.h2.send_data(stream_id, body, end_stream=True)
        if not ended:
            self.reset_id(stream_id, reset)

    # -- the connection's end ---------------------------------------------------------------------

    def pause_writing(self) -> None:
        self.writing_paused = True
        self._answers_unread = 0

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._push_waiting()

    def closing(self) -> None:
        """Graceful stop: GOAWAY naming the last stream taken; those streams finish, then close."""
        if self._goaway is not None or self.transport is None or self._closed:
            return
        self._goaway = last = self._last_stream
        self.host.write(GoAwayFrame(0, last_stream_id=last, error_code=0).serialize())
        if not self.streams:
            self.close()

    def close(self, error=ErrorCodes.NO_ERROR) -> None:
        if self._closed or self.transport is None:
            self._closed = True
            return
        try:
            self.h2.close_connection(error, last_stream_id=self._last_stream)
        except h2.exceptions.ProtocolError:
            pass
        self.write_now()
        self._shut()

    def _shut(self) -> None:
        """After the GOAWAY: half-close, and read (and drop) what the client still sends for a
        while. Closing with its bytes unread would make our TCP stack reset the connection,
        and a reset can discard the GOAWAY before the client has read it."""
        transport = self.transport
        if transport is None:
            return
        self._closed = True
        gone = ConnectionResetError("Connection closed")
        for stream in list(self.streams.values()):  # (h2 sends nothing more after a GOAWAY)
            stream.close_stream(gone, notify=True)
        if not transport.can_write_eof():
            self.host.close()
            return
        transport.write_eof()
        self._timer.start("linger", LINGER_TIMEOUT)

    def _calm(self, why: str) -> None:
        """A bound was crossed: GOAWAY ENHANCE_YOUR_CALM and close."""
        if self.log is not None:
            self.log.warning("Closing HTTP/2 connection from %s: %s", peer_ip(self.peername), why)
        self.close(ErrorCodes.ENHANCE_YOUR_CALM)

    def _fail(self, exc) -> None:
        """h2 found a connection error (it queued its GOAWAY): send it and close."""
        if self.log is not None:
            self.log.debug("HTTP/2 connection error from %s: %s", peer_ip(self.peername), exc)
        self.write_now()
        self._shut()

    # -- time -------------------------------------------------------------------------------------

    def _update_timer(self) -> None:
        timer = self._timer
        if self.transport is None or self._closed:
            return
        if self.watch.block_open:
            if timer.phase != "head":
                timer.start("head", self.config.head_timeout)
        elif not self._any_request:
            if timer.phase != "preface":
                timer.start("preface", self.config.head_timeout)
        elif not self.streams:
            if timer.phase != "idle":
                if self.config.keepalive <= 0:
                    self.close()
                    return
                timer.start("idle", self.config.keepalive)
        else:
            timer.stop()

    def _on_timeout(self, phase: str) -> None:
        if phase == "linger":
            self.host.close()
            return
        if self.log is not None and phase != "idle":
            self.log.debug("Closing HTTP/2 connection from %s: %s timeout", peer_ip(self.peername), phase)
        self.close()

    def _stalled(self) -> None:
        """Responses wait on windows the client does not open (or opens too slowly)."""
        if self.transport is None:
            return
        if self.log is not None:
            self.log.info("Closing %s: it opens its HTTP/2 windows slower than %g bytes/s",
                          peer_ip(self.peername), self.config.min_response_rate)
        self.transport.abort()


def _trailer_map(fields):
    if not fields:
        return None
    from multidict import CIMultiDict
    return CIMultiDict((n.decode("latin-1"), v.decode("latin-1")) for n, v in fields)


_HANDLERS = {
    h2.events.RequestReceived: H2Connection._request,
    h2.events.DataReceived: H2Connection._data,
    h2.events.TrailersReceived: H2Connection._trailers,
    h2.events.StreamEnded: H2Connection._ended,
    h2.events.StreamReset: H2Connection._reset,
    h2.events.WindowUpdated: H2Connection._window,
    h2.events.RemoteSettingsChanged: H2Connection._settings_changed,
    h2.events.ConnectionTerminated: H2Connection._terminated,
}
