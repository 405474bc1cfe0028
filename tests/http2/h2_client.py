"""A small HTTP/2 client over asyncio and hyper-h2's client side, for tests that need several
streams on one connection with exact control (uploads and downloads at once, raw frames).

    client = await H2Client.connect(port)
    status, body = await client.request("GET", "/")          # whole
    await client.request("POST", "/echo", body=chunks())       # a body of async pieces, sent as
                                                               # the server's windows allow
"""

import asyncio
import collections

import h2.config
import h2.connection
import h2.events


class H2Client:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.events = collections.defaultdict(asyncio.Queue)  # stream id -> its events
        self.window = asyncio.Event()  # set on every WINDOW_UPDATE
        self.closed = asyncio.Event()
        self.terminated = None  # the server's ConnectionTerminated, if any
        self._reading = None

    @classmethod
    async def connect(cls, port: int, window: int = 1 << 24) -> "H2Client":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        client.conn.initiate_connection()
        client.conn.increment_flow_control_window(window)
        client.flush()
        client._reading = asyncio.get_running_loop().create_task(client._read())
        return client

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(1 << 20)
                if not data:
                    break
                for event in self.conn.receive_data(data):
                    self._dispatch(event)
                self.flush()
        except (ConnectionError, h2.exceptions.ProtocolError):
            pass
        finally:
            self.closed.set()
            self.window.set()
            for queue in self.events.values():
                queue.put_nowait(None)

    def _dispatch(self, event) -> None:
        if isinstance(event, h2.events.WindowUpdated):
            self.window.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.terminated = event
            if event.error_code == 0:
                # A graceful GOAWAY: the streams up to its last one still finish (RFC 9113
                # s6.8), which h2's client state machine, closed by any GOAWAY, would refuse.
                self.conn.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        stream_id = getattr(event, "stream_id", None)
        if stream_id:
            self.events[stream_id].put_nowait(event)

    async def request(self, method: str, path: str, body=None, headers=()):
        """``(status, body bytes, response headers)``; ``body``: bytes or an async iterator of pieces."""
        sid = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":path", path), (":scheme", "http"), (":authority", "localhost"),
                  *headers]
        self.conn.send_headers(sid, fields, end_stream=body is None)
        self.flush()
        if body is not None:
            await self._send_body(sid, [body] if isinstance(body, bytes) else body)
        return await self.response(sid)

    async def _send_body(self, sid: int, pieces) -> None:
        async def each():
            if hasattr(pieces, "__aiter__"):
                async for piece in pieces:
                    yield piece
            else:
                for piece in pieces:
                    yield piece

        async for piece in each():
            view = memoryview(piece)
            while view:
                room = min(self.conn.local_flow_control_window(sid), self.conn.max_outbound_frame_size)
                if room <= 0:
                    self.window.clear()
                    await self.window.wait()
                    if self.closed.is_set():
                        raise ConnectionError("closed")
                    continue
                self.conn.send_data(sid, bytes(view[:room]))
                view = view[room:]
                self.flush()
                await self.writer.drain()
        self.conn.end_stream(sid)
        self.flush()

    async def response(self, sid: int, sink=None):
        """Wait for the response of stream ``sid``; ``sink(piece)`` takes the body (else it is kept)."""
        status, headers, parts = None, [], []
        queue = self.events[sid]
        while True:
            event = await queue.get()
            if event is None:
                raise ConnectionError("connection closed")
            if isinstance(event, h2.events.ResponseReceived):
                headers = event.headers
                status = int(dict(headers)[b":status"])
            elif isinstance(event, h2.events.DataReceived):
                (sink or parts.append)(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, sid)
                self.flush()
            elif isinstance(event, h2.events.StreamReset):
                raise ConnectionResetError(f"stream {sid} reset: {event.error_code!r}")
            elif isinstance(event, h2.events.StreamEnded):
                return status, b"".join(parts), headers

    async def close(self) -> None:
        self.writer.close()
        if self._reading is not None:
            await asyncio.gather(self._reading, return_exceptions=True)
