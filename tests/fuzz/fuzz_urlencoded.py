"""Coverage-guided fuzzing of urlencoded form bodies (``Request.post()``'s ``parse_urlencoded``).

A finding is any exception other than the 413 of the field cap, more fields than the cap,
more characters in names and values than the body has, or a body under the cap refused.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["server"]):
    from server.web.exceptions import HTTPRequestEntityTooLarge
    from server.web.request import parse_urlencoded

MAX_FIELDS = 16
ENCODINGS = ["utf-8", "latin-1", "utf-16"]


class FuzzFinding(AssertionError):
    """The parser broke one of its promises on this input."""


def check(data: bytes) -> None:
    if not data:
        return
    encoding, text = ENCODINGS[data[0] % len(ENCODINGS)], data[1:].decode("latin-1")
    try:
        form = parse_urlencoded(text, encoding, MAX_FIELDS)
    except HTTPRequestEntityTooLarge:
        if text.count("&") + 1 <= MAX_FIELDS:
            raise FuzzFinding("a body under the field cap was refused") from None
        return
    if len(form) > MAX_FIELDS:
        raise FuzzFinding(f"{len(form)} fields past the cap of {MAX_FIELDS}")
    if sum(len(k) + len(v) for k, v in form.items()) > len(text):
        raise FuzzFinding("more characters in the fields than in the body")


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
