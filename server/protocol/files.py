"""The one file sender: part of a regular file as response body, for every app kind.

    channel.send_file(file, offset, count) ──► loop.sendfile (where the loop implements it
                                                and gunicorn's ``sendfile`` is on)
                                          └──► else blocks read off the loop (os.pread in the
                                                default executor), each written and drained

A chunked body gets one chunk for the whole range. The loop never blocks on the
disk: sendfile is the kernel's, and a block read runs in an executor thread.
A file that ends before ``count`` raises ``FileTooShort`` (the response then
cannot be completed); a client that went away raises ``ConnectionError``.
"""

import asyncio
import os

FILE_BLOCK = 256 * 1024  # bytes read per step when a file cannot go by sendfile


class FileTooShort(RuntimeError):
    """The file ended before the announced range did."""


def loop_has_sendfile(loop) -> bool:
    """Does ``loop`` implement ``sendfile`` (asyncio's does; uvloop's does not)?"""
    return type(loop).sendfile is not asyncio.AbstractEventLoop.sendfile


async def send_file(channel, framing, file, offset: int, count: int) -> None:
    """Send ``count`` bytes of ``file`` from ``offset`` through ``channel``, framed by ``framing``."""
    if channel.transport is None:
        raise ConnectionResetError("Client disconnected")
    if channel.config.sendfile and loop_has_sendfile(channel.loop):
        await _sendfile(channel, framing, file, offset, count)
    else:
        await _send_blocks(channel, framing, file.fileno(), offset, count)


async def _sendfile(channel, framing, file, offset: int, count: int) -> None:
    if framing.chunked:
        channel.write(b"%x\r\n" % count)
    sent = await channel.sendfile(file, offset, count)
    framing.sent += sent
    if sent != count:
        raise FileTooShort(f"The file is shorter than announced ({sent} of {count} bytes)")
    if framing.chunked:
        channel.write(b"\r\n")


async def _send_blocks(channel, framing, fd: int, offset: int, count: int) -> None:
    loop = channel.loop
    end = offset + count
    while offset < end:
        block = await loop.run_in_executor(None, os.pread, fd, min(FILE_BLOCK, end - offset), offset)
        if not block:
            raise FileTooShort(f"The file ended {end - offset} bytes early")
        offset += len(block)
        channel.write(framing.body(block))
        await channel.drain()
