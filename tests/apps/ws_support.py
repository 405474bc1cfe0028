"""A raw WebSocket client for tests: it sends what real clients refuse to send
(unmasked frames, invalid UTF-8, no pongs) and reads the server's frames with the
sans-IO parser in client mode."""

import asyncio
import base64
import os
import socket

from server.websocket.frames import FrameParser, Message, MsgType, Opcode, apply_mask, close_payload, frame_header

KEY = base64.b64encode(b"0123456789abcdef").decode()


def upgrade_request(path="/", *extra: str, host="test", version="13", key=KEY) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", f"Sec-WebSocket-Version: {version}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def masked(opcode, payload=b"", fin=True, rsv1=False) -> bytes:
    """A client frame, unchecked: invalid frames are what some tests want to send."""
    mask = os.urandom(4)
    return frame_header(opcode, len(payload), fin, rsv1, mask) + apply_mask(payload, mask)


class RawClient:
    """One connection over asyncio streams. ``messages()`` yields the server's messages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.parser = FrameParser(require_mask=False)
        self.pending: list[Message] = []
        self.response_head = b""

    @classmethod
    async def connect(cls, port: int, request: bytes | None = None, *, extra: bytes = b"",
                      receive_buffer: int = 0) -> "RawClient":
        """``receive_buffer``: the socket's SO_RCVBUF (a fixed size: no autotuning), when set."""
        if receive_buffer:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock)
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        writer.write((request or upgrade_request()) + extra)
        client.response_head = await reader.readuntil(b"\r\n\r\n")
        return client

    @property
    def status(self) -> int:
        return int(self.response_head.split(b" ", 2)[1])

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def receive(self, timeout: float = 10) -> Message | None:
        """The server's next message, or None at EOF."""
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not data:
                return None
            self.pending += self.parser.feed(data)
        return self.pending.pop(0)

    async def receive_close(self, timeout: float = 10) -> Message:
        """Skip to the server's close frame (pings and data before it are dropped)."""
        while True:
            message = await self.receive(timeout)
            if message is None or message.type == MsgType.CLOSE:
                return message

    async def eof(self, timeout: float = 10) -> bool:
        """True when the server closes the connection within ``timeout`` (bytes before are dropped)."""
        try:
            while await asyncio.wait_for(self.reader.read(65536), timeout):
                pass
        except ConnectionResetError:
            pass
        return True

    def close_frame(self, code=1000, reason="") -> None:
        self.send(masked(Opcode.CLOSE, close_payload(code, reason)))

    def close(self) -> None:
        self.writer.close()
