"""Urlencoded pairs, of a form body or a query string, as ``urllib.parse.parse_qsl``
reads them with ``keep_blank_values=True``, but faster where the bytes are many.

    "name=Jeanne+Dupont&email=j%40x.fr&flag"  ──parse_pairs()──►
        [("name", "Jeanne Dupont"), ("email", "j@x.fr"), ("flag", "")]

parse_qsl decodes each escape of a piece in Python (a 4 KiB message with a few
hundred escapes took tens of microseconds); here an ASCII piece is decoded in one
compiled pass (``unquote_plus_ascii``, server/protocol/_chead.c), to bytes that are
then decoded in the form's charset, as parse_qsl does (undecodable bytes become
U+FFFD). A piece that is not ASCII (raw UTF-8 in the body) goes through
``urllib.parse.unquote``, which keeps those characters as they are. The result is
parse_qsl's, exactly: the tests compare the two.
"""

from urllib.parse import unquote, unquote_to_bytes

from server.protocol.compiled import compiled


def unquote_plus_ascii_py(text: str) -> bytes | None:
    """``text``'s bytes with "+" as a space and its %XX escapes decoded; None if not ASCII."""
    if not text.isascii():
        return None
    return unquote_to_bytes(text.replace("+", " "))


unquote_plus_ascii = compiled("unquote_plus_ascii") or unquote_plus_ascii_py


def unquote_piece(piece: str, encoding: str) -> str:
    """A name or a value of a pair, decoded ("+" is a space; escapes are bytes in ``encoding``)."""
    if "%" not in piece:
        return piece.replace("+", " ")
    raw = unquote_plus_ascii(piece)
    if raw is None:
        return unquote(piece.replace("+", " "), encoding, "replace")
    return raw.decode(encoding, "replace")


def parse_pairs(text: str, encoding: str = "utf-8", max_fields: int | None = None) -> list[tuple[str, str]]:
    """The (name, value) pairs of ``text``, in order, blank values kept; ``ValueError`` when
    there are more than ``max_fields`` "&"-separated pieces (counted before parsing, as
    parse_qsl's ``max_num_fields``)."""
    if max_fields is not None and text and text.count("&") + 1 > max_fields:
        raise ValueError("Max number of fields exceeded")
    pairs = []
    for field in text.split("&"):
        if field:
            name, _, value = field.partition("=")
            pairs.append((unquote_piece(name, encoding), unquote_piece(value, encoding)))
    return pairs
