"""Malformed requests are stream errors, not connection errors (RFC 9113 s8.1.1).

h2 raises ``ProtocolError`` for a ``content-length`` that is not a number or that
disagrees with the DATA. Raised from ``receive_data``, it ends the whole connection,
every other stream on it, and the events of the frames read before it. RFC 9113 s8.1.1
makes a malformed request a stream error of type PROTOCOL_ERROR: the other streams go on.
(The head's other rules are checked by fields.py, h2's own header checks being off.)

Here h2's state machine stays as it is; the checks are caught where h2 makes them, in
its stream (``_initialize_content_length``, ``_track_content_length``), and the stream
is marked ``malformed`` (why). Its head or data still comes out as an event, and the
connection (connection.py) refuses that stream alone when it sees the event. These are
h2's internal methods, stable since h2 3; tests/http2/test_h2_malformed.py fails if they
move.
"""

import h2.connection
import h2.stream
from h2.exceptions import InvalidBodyLengthError, ProtocolError


class LenientStream(h2.stream.H2Stream):
    """h2's stream, marking a malformed request instead of raising."""

    malformed: str | None = None

    def _initialize_content_length(self, headers) -> None:
        try:
            super()._initialize_content_length(headers)
        except ProtocolError as exc:
            self.malformed = str(exc)

    def _track_content_length(self, length: int, end_stream: bool) -> None:
        try:
            super()._track_content_length(length, end_stream)
        except InvalidBodyLengthError as exc:
            self.malformed = f"Request body disagrees with its content-length ({exc})"
            self._expected_content_length = None  # (reported once)


class StreamErrorsConnection(h2.connection.H2Connection):
    """h2's connection whose streams are ``LenientStream``."""

    def _begin_new_stream(self, stream_id, allowed_ids):
        stream = super()._begin_new_stream(stream_id, allowed_ids)
        stream.__class__ = LenientStream
        return stream

    def malformed(self, stream_id: int) -> str | None:
        """Why the request on ``stream_id`` is malformed, or None."""
        stream = self.streams.get(stream_id)
        return getattr(stream, "malformed", None)
