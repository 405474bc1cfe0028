"""Where a RequestParser is in the current request: the states of its machine.

    HEAD ──head without a body──────────────────────────────► DONE ──next_request()──► HEAD
      ├──Content-Length──► BODY ──its last byte─────────────► DONE
      └──chunked──► CHUNK_SIZE ──size > 0──► CHUNK_DATA ──► CHUNK_CRLF ──► CHUNK_SIZE
                        └──size 0──► TRAILERS ──empty line──► DONE

Any error leaves the parser in ERROR for good; so does ``detach()``.
"""

HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF, TRAILERS, DONE, ERROR = range(8)
