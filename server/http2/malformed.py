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

The same connection class drops a stream from h2's table when it closes, so that h2's
count of open streams (made for every new stream) need not pass over them all
(``open_inbound_streams``; tests/http2/test_h2_stream_count.py).
"""

from collections import OrderedDict

import h2.connection
import h2.stream
from h2.exceptions import InvalidBodyLengthError, ProtocolError
from h2.utilities import SizeLimitDict

_ordered_set = OrderedDict.__setitem__


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
    """h2's connection whose streams are ``LenientStream``; closed streams are dropped as
    they close (``forget_closed``), not in a pass over every stream for each new one.

    How the last ``MAX_CLOSED_STREAMS`` closed streams ended is remembered, for frames the
    client sent before it learnt (a reset stream's trailers are answered with RST_STREAM,
    not a connection error). h2 remembers 65,536 for the life of a connection: megabytes
    of records on a connection that served as many requests. Here 1,024, ten times the
    concurrent streams allowed by default; RFC 9113 s5.1 lets an endpoint limit how long
    it ignores frames on a stream it reset.
    """

    MAX_CLOSED_STREAMS = 1024

    def _begin_new_stream(self, stream_id, allowed_ids):
        stream = super()._begin_new_stream(stream_id, allowed_ids)
        stream.__class__ = LenientStream
        return stream

    @property
    def open_inbound_streams(self) -> int:
        """h2 counts the open streams for every new one (against MAX_CONCURRENT_STREAMS), in a
        pass over all it holds that also drops the closed ones: a hundred per request at a
        hundred concurrent streams. With closed streams dropped as they close, the number
        held bounds the count; only at the limit is the pass made, exact as h2's."""
        return self.open_inbound_below(self.local_settings.max_concurrent_streams)

    def open_inbound_below(self, limit: int) -> int:
        """``open_inbound_streams``, for the current MAX_CONCURRENT_STREAMS ``limit``."""
        held = len(self.streams)
        if held < limit:
            return held
        return self._open_streams(1)  # (client streams are odd)

    def forget_closed(self, stream_id: int) -> None:
        """Drop a closed stream now (h2 keeps why it closed, for frames that still come: the
        last ``_size_limit`` of them, oldest dropped first, as its ``SizeLimitDict`` does, without
        its two Python calls per stream)."""
        stream = self.streams.get(stream_id)
        if stream is not None and stream.closed:
            del self.streams[stream_id]
            closed = self._closed_streams
            if type(closed) is not SizeLimitDict or closed._size_limit is None:
                closed[stream_id] = stream.closed_by
                return
            _ordered_set(closed, stream_id, stream.closed_by)
            if len(closed) > closed._size_limit:
                closed.popitem(last=False)

    def malformed(self, stream_id: int) -> str | None:
        """Why the request on ``stream_id`` is malformed, or None."""
        stream = self.streams.get(stream_id)
        return getattr(stream, "malformed", None)
