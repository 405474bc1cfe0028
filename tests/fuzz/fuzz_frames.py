"""Coverage-guided fuzzing of the WebSocket frame reader (``server/websocket/frames.py``).

    fuzzer bytes ──► [options, frames] ──► FrameParser (whole, and in pieces), with or without
                                           permessage-deflate

A finding is any exception other than ``WebSocketError`` with a close code of RFC 6455
(1002, 1007, 1009), a data message larger than ``max_message_size``, messages holding more
bytes than the input without compression, or a different outcome for the same bytes whole
and in pieces (the same close code, or the same messages).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["server"]):
    from server.websocket.deflate import DeflateParams, Inflater
    from server.websocket.frames import FrameParser, MsgType, WebSocketError

MAX_MESSAGE = 512
CODES = {1002, 1007, 1009}


class FuzzFinding(AssertionError):
    """The frame reader broke one of its promises on this input."""


def parse(pieces, deflate: bool, masked: bool) -> tuple:
    parser = FrameParser(MAX_MESSAGE, Inflater(DeflateParams()) if deflate else None, require_mask=masked)
    messages = []
    try:
        for piece in pieces:
            messages += parser.feed(piece)
    except WebSocketError as exc:
        if exc.code not in CODES:
            raise FuzzFinding(f"undocumented close code {exc.code}") from exc
        return tuple(messages), exc.code
    return tuple(messages), None


def check(data: bytes) -> None:
    if not data:
        return
    options, raw = data[0], data[1:]
    deflate, masked, step = bool(options & 1), bool(options & 2), options % 13 + 1
    whole = parse([raw], deflate, masked)
    split = parse([raw[i:i + step] for i in range(0, len(raw), step)], deflate, masked)
    # feed() raises without the messages of the same call: compare them when no error came.
    if whole[1] != split[1] or (whole[1] is None and whole[0] != split[0]):
        raise FuzzFinding(f"split-dependent outcome: {whole[1]} whole, {split[1]} in pieces")
    size = 0
    for message in whole[0]:
        if message.type in (MsgType.TEXT, MsgType.BINARY):
            if len(message.data) > MAX_MESSAGE:
                raise FuzzFinding(f"a {len(message.data)}-byte message past max_message_size")
            size += len(message.data)
    if not deflate and size > len(raw):
        raise FuzzFinding("more message bytes than input")


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
