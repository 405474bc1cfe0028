"""Coverage-guided fuzzing of the multipart/form-data parser (atheris / libFuzzer).

    fuzzer bytes ──► [piece seed, content-type pick, body] ──► read_form (whole, and in pieces)
                                                          └──► python-multipart (reference)

A finding is any exception other than a 400 or 413 ``HTTPException``, a form whose values
hold more bytes than the body, an outcome that depends on how the body arrives, or, where
python-multipart accepts the body too, other parts or other part data (names are compared
when the body has no backslash: quoted-pair escapes are read differently by each parser;
head bytes that are not UTF-8 are replaced in ours).
Run it as a script (see tests/fuzz/README.md); test_fuzz_targets.py runs a short session.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["server"]):
    from multipart_reference import ours, python_multipart

CONTENT_TYPES = ["multipart/form-data; boundary=B", 'multipart/form-data; boundary="a;b"',
                 "multipart/form-data; boundary=--x--", 'multipart/form-data; boundary="q \\"r"']
STATUSES = {400, 413}
MAX_SIZE = 4096  # the whole-body bound, so short inputs reach it


class FuzzFinding(AssertionError):
    """The parser broke one of its promises on this input."""


def check(data: bytes) -> None:
    if len(data) < 2:
        return
    piece, ctype, body = data[0] % 17 + 1, CONTENT_TYPES[data[1] % len(CONTENT_TYPES)], data[2:]
    whole = ours(body, ctype, max_size=MAX_SIZE)
    if whole[0] == "error" and whole[1] not in STATUSES:
        raise FuzzFinding(f"undocumented status {whole[1]}")
    if ours(body, ctype, piece=piece, max_size=MAX_SIZE) != whole:
        raise FuzzFinding("the outcome depends on how the body arrives")
    if whole[0] == "error":
        return
    # Names in characters: a head byte that is not UTF-8 becomes one (3-byte) replacement character.
    if sum(len(name.decode()) + len(value) for name, _, value in whole[1]) > len(body):
        raise FuzzFinding("more form data than body")
    reference = python_multipart(body, ctype)
    if reference[0] == "ok" and not _agree(whole[1], reference[1], b"\\" in body):
        raise FuzzFinding(f"python-multipart reads other parts: {reference[1]!r} != {whole[1]!r}")


def _agree(mine: tuple, theirs: tuple, escapes: bool) -> bool:
    if len(mine) != len(theirs):
        return False
    for (name, filename, value), (their_name, their_filename, their_value) in zip(mine, theirs):
        if value != their_value or (filename is None) != (their_filename is None):
            return False
        if not escapes and (name, filename) != (_utf8(their_name), _utf8(their_filename)):
            return False
    return True


def _utf8(raw: bytes | None) -> bytes | None:
    """python-multipart keeps head bytes; we read heads as UTF-8 (bad bytes replaced)."""
    return None if raw is None else raw.decode("utf-8", "replace").encode()


def main() -> None:
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
