"""Write coalescing: the body pieces an app writes during one pass of the loop go out in one write.

    send_body(piece) ─► write_corked ─► [pieces of this pass] ──end of the pass──► transport.writelines
                                           └─ past CORK_LIMIT, or before any other write or a close: at once

An app streaming without waiting between its pieces (an ASGI app sending 16
``http.response.body`` messages, a WSGI batch, a native handler's writes) would
make one system call per piece: on uvloop a write to an empty transport buffer
is sent at once. Held until the end of the loop pass, they go in one ``writev``
(``writelines``: no copy on uvloop). A piece never waits past the pass it was
written in, so a stream that waits between pieces (server-sent events) is sent
as before; flow control holds within ``CORK_LIMIT`` bytes.
"""

CORK_LIMIT = 64 * 1024  # body bytes held back for one write at the end of a loop pass


class WriteCoalescing:
    """Mixed into ``ServerHttpProtocol``; its ``write`` and ``close`` uncork first."""

    __slots__ = ()  # its state is in the connection's slots (``server.py``)

    def _init_cork(self) -> None:
        self._corked: list | None = None  # the pieces of this pass, once there is one
        self._corked_size = 0
        self._uncork_due = False

    def write_corked(self, data: bytes) -> None:
        """Write a piece in the middle of a body: the pieces written during one pass of the
        loop (an app streaming without waiting) go out in one write at its end, one system
        call instead of one each; at once past ``CORK_LIMIT`` bytes, or before any other
        write or a close, so the order and the transport's flow control hold."""
        if self.transport is None:
            return
        self._response_started = True
        self._continue_pending = False
        if self._corked is None:
            self._corked = [data]
            self._corked_size = len(data)
            if not self._uncork_due:
                self._uncork_due = True
                self.loop.call_soon(self._uncork_soon)
        else:
            self._corked.append(data)
            self._corked_size += len(data)
        if self._corked_size >= CORK_LIMIT:
            self._uncork()

    def uncork(self) -> None:
        """Write what is held now (before bytes that go by another way: sendfile)."""
        if self._corked is not None:
            self._uncork()

    def _uncork_soon(self) -> None:
        self._uncork_due = False
        if self._corked is not None:
            self._uncork()

    def _uncork(self) -> None:
        pieces, self._corked = self._corked, None
        transport = self.transport
        if transport is None or self.write_closed:
            return
        if self.writing_paused:
            self._written_while_paused += self._corked_size
        if len(pieces) == 1:
            transport.write(pieces[0])
        else:
            transport.writelines(pieces)  # (uvloop: one writev, no copy)
