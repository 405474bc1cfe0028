"""Size limits of the request parser, named and defaulted as gunicorn's settings.

``server.workers.config`` reads those settings, with gunicorn's meaning of 0.
"""

from dataclasses import dataclass, field

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
    # Made of the above once, not by every connection's parser:
    head_size: int = field(init=False, repr=False, compare=False)  # the most bytes a complete head may take
    plain: tuple = field(init=False, repr=False, compare=False)  # what the plain-head parser is given

    def __post_init__(self):
        object.__setattr__(self, "head_size", self.request_line + 2 + self.fields * (self.field_size + 2) + 2)
        object.__setattr__(self, "plain", (self.request_line, self.field_size, self.fields))
