"""How long is this request's body? One strict function decides (RFC 9112 s6).

Nearly every request-smuggling bug of the servers before us was a leniency here,
or two parsers disagreeing about it. So anything ambiguous is refused, and
refused with a close (all parse errors close the connection):

* Transfer-Encoding and Content-Length together: 400 (s6.1 allows processing by
  TE and closing; refusing is the safe reading).
* Transfer-Encoding on HTTP/1.0: 400 (s6.1: the framing is faulty).
* Transfer-Encoding must end in exactly one ``chunked`` (s6.3 rule 4): otherwise
  400; any other coding (gzip, identity, ...) is one we do not implement: 501
  (s6.1).
* Content-Length must be one field of digits only (s6.2 / RFC 9110 s8.6): no
  sign, no list (``5, 5``), no repeated field, at most 18 digits.
* Neither: no body (s6.3 rule 7: requests are never read until close).
"""

from multidict import CIMultiDict

from .errors import BadRequest, NotImplementedByServer

_MAX_CL_DIGITS = 18


def body_framing(version: tuple[int, int], headers: CIMultiDict) -> tuple[int | None, bool]:
    """Return ``(content_length, chunked)``; content_length is None when chunked."""
    te_fields = headers.getall("Transfer-Encoding", ())
    cl_fields = headers.getall("Content-Length", ())
    if te_fields:
        if cl_fields:
            raise BadRequest("Both Transfer-Encoding and Content-Length")
        if version < (1, 1):
            raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
        _check_transfer_codings(te_fields)
        return None, True
    if not cl_fields:
        return 0, False
    if len(cl_fields) > 1:
        raise BadRequest("Repeated Content-Length")
    return content_length_of(cl_fields[0]), False


def content_length_of(value: str) -> int:
    """The body size a Content-Length field's value declares: ASCII digits only, at most
    ``_MAX_CL_DIGITS`` of them (no sign, no spaces, no list)."""
    if not (value.isascii() and value.isdigit()) or len(value) > _MAX_CL_DIGITS:
        raise BadRequest("Invalid Content-Length")
    return int(value)


def _check_transfer_codings(fields: list[str]) -> None:
    codings = [c.strip(" \t").lower() for f in fields for c in f.split(",")]
    if any(not c for c in codings):
        raise BadRequest("Empty transfer coding")
    if codings.count("chunked") != 1 or codings[-1] != "chunked":
        raise BadRequest("Transfer-Encoding must end in a single chunked")
    if len(codings) > 1:
        raise NotImplementedByServer(f"Unsupported transfer coding: {codings[0]}")


def connection_tokens(headers: CIMultiDict) -> set[str]:
    """The lower-cased options of all Connection fields."""
    fields = headers.getall("Connection", ())
    return {t.strip(" \t").lower() for f in fields for t in f.split(",")} if fields else set()


def wants_keep_alive(version: tuple[int, int], tokens: set[str]) -> bool:
    """HTTP/1.1 persists unless told to close; HTTP/1.0 only when asked to keep alive."""
    if "close" in tokens:
        return False
    return version >= (1, 1) or "keep-alive" in tokens
