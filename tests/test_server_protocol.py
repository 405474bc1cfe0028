"""ServerHttpProtocol on a real socket pair, with a minimal adapter that answers on demand."""

import asyncio
import socket

from server.protocol.server import PIPELINE_BUFFER, ServerConfig, ServerHttpProtocol
from server.protocol.writer import ResponseWriter


class HeldResponses(ServerHttpProtocol):
    """Records request heads; answers one only when the test says so."""

    def __init__(self):
        super().__init__(ServerConfig(keepalive=5))
        self.heads = []

    def on_request(self, head):
        self.heads.append(head)

    def answer(self):
        head = self.heads[-1]
        writer = ResponseWriter(head.method, head.version, head.keep_alive, b"")
        self.write(writer.head(200, "OK", [], 2) + writer.body(head.path[-2:].encode()))
        self.response_finished(writer.keep_alive)


async def wait_for(condition, timeout=5.0):
    async def poll():
        while not condition():
            await asyncio.sleep(0.01)
    await asyncio.wait_for(poll(), timeout)


def test_pipelined_bytes_are_bounded_while_a_request_is_in_flight():
    async def main():
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        proto = HeldResponses()
        await loop.connect_accepted_socket(lambda: proto, ours)
        requests = [b"GET /r%05d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(20000)]  # ~700 KiB
        sender = loop.create_task(loop.sock_sendall(theirs, b"".join(requests)))
        await wait_for(lambda: proto.heads and "pipeline" in proto._read_paused_by)
        # The first request is held; reading stopped soon after the bound was crossed.
        assert len(proto.heads) == 1
        assert PIPELINE_BUFFER < proto._parser.buffered < PIPELINE_BUFFER + 512 * 1024
        assert not sender.done()  # the client is made to wait, not our memory to grow
        # Answering each request lets the next one in, in order.
        for answered in range(len(requests)):
            await wait_for(lambda: len(proto.heads) > answered and proto._head is not None)
            proto.answer()
        await sender
        assert [h.path for h in proto.heads] == [r.split(b" ")[1].decode() for r in requests]
        assert not proto._read_paused_by
        proto.transport.close()
        theirs.close()

    asyncio.run(main())
