"""Size limits of the request parser, named and defaulted as gunicorn's settings."""

from dataclasses import dataclass

MAX_REQUEST_LINE = 8190  # gunicorn's ceiling for limit_request_line
UNLIMITED_REQUEST_LINE = 65536  # what limit_request_line = 0 ("unlimited") means here
MAX_HEADERS = 32768
DEFAULT_FIELD_SIZE = 8190


@dataclass(frozen=True, slots=True)
class Limits:
    request_line: int = 4094  # limit_request_line: 414 past it
    fields: int = 100  # limit_request_fields: 431 past it (trailers too)
    field_size: int = 8190  # limit_request_field_size: 431 past it (one field line)
    body: int = 0  # bytes of request body; 413 past it; 0 = no cap
    chunk_line: int = 4096  # a chunk-size line with its extensions: 400 past it

    @classmethod
    def from_gunicorn(cls, cfg, body: int = 0) -> "Limits":
        """Read gunicorn's limit_request_* settings with gunicorn's meaning of 0."""
        line = cfg.limit_request_line
        if line == 0:
            line = UNLIMITED_REQUEST_LINE
        elif line < 0 or line > MAX_REQUEST_LINE:
            line = MAX_REQUEST_LINE
        fields = cfg.limit_request_fields
        if fields <= 0 or fields > MAX_HEADERS:
            fields = MAX_HEADERS
        field_size = cfg.limit_request_field_size
        if field_size <= 0:
            field_size = DEFAULT_FIELD_SIZE
        return cls(request_line=line, fields=fields, field_size=field_size, body=body)

    @property
    def head_size(self) -> int:
        """The most bytes a complete request head may take."""
        return self.request_line + 2 + self.fields * (self.field_size + 2) + 2
