"""The byte-level grammar of HTTP/1.1 requests (RFC 9110, RFC 9112), as regexes.

Every pattern is meant for ``fullmatch``: nothing may be left over (but
``crlf_field_line``, which picks the fields out of a block ``field_lines`` has
matched whole).

These patterns run on client bytes, so each takes linear time: no two parts of
a pattern may match the same bytes at the same place (``*+``, ``++``, ``?+``
are possessive: what they match is never given back). A pattern in which a
run of blanks could go to either of two quantifiers costs quadratic time on a
long run of them followed by an invalid byte.
"""

import re

# RFC 9110 s5.6.2: token = 1*tchar
TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
TOKEN = rb"[" + TCHAR + rb"]+"
token = re.compile(TOKEN)
_TOKEN = TOKEN + rb"+"  # possessive, where what follows cannot be a tchar

# RFC 9110 s5.5: field-value = *field-content; no CTL but HTAB, no DEL.
# obs-text (0x80-0xFF) is allowed. Surrounding OWS is not part of the value:
# the value is runs of visible bytes with runs of blanks between them.
_VCHAR_OBS = rb"[\x21-\x7e\x80-\xff]++"
_BLANKS = rb"[\t ]*+"
FIELD_VALUE = rb"(?:" + _VCHAR_OBS + rb"(?:[\t ]++" + _VCHAR_OBS + rb")*+)?+"

# RFC 9112 s5: field-line = field-name ":" OWS field-value OWS
_FIELD_LINE = _TOKEN + rb":" + _BLANKS + FIELD_VALUE + _BLANKS
FIELD_LINE = rb"(" + _TOKEN + rb"):" + _BLANKS + rb"(" + FIELD_VALUE + rb")" + _BLANKS
field_line = re.compile(FIELD_LINE)

# The field lines of a head, each after the CRLF that ends the line before it:
# ``field_lines`` checks all of them at once, ``crlf_field_line.findall`` then
# yields their (name, value) pairs (each match ends at the next CR, so on a
# checked block the matches are exactly the lines).
field_lines = re.compile(rb"(?:\r\n" + _FIELD_LINE + rb")*+")
crlf_field_line = re.compile(rb"\r\n" + FIELD_LINE)

# RFC 9112 s2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT
http_version = re.compile(rb"HTTP/([0-9])\.([0-9])")

# RFC 9112 s3.2.1 origin-form: absolute-path [ "?" query ]. Visible ASCII but
# "#" (a fragment is never sent); no CTL, no space, no raw non-ASCII octets.
ORIGIN_FORM = rb"/[\x21\x22\x24-\x7e]*+"
origin_form = re.compile(ORIGIN_FORM)

# The common request-line: an origin-form target and HTTP/1.0 or HTTP/1.1. A line
# this matches is valid; any other goes through the full checks (and their errors).
plain_request_line = re.compile(rb"(" + _TOKEN + rb") (" + ORIGIN_FORM + rb") HTTP/1\.([01])")

# RFC 9112 s3.2.2 absolute-form, for the schemes an origin server serves;
# userinfo is refused (RFC 9110 s4.2.4: a recipient SHOULD treat it as an error).
absolute_form = re.compile(
    rb"(?i:https?)://"
    rb"(\[[0-9A-Fa-f:.]++\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*+)"  # host
    rb"(?::[0-9]*+)?+"  # port
    rb"([/?][\x21\x22\x24-\x7e]*+)?+"  # path-abempty [ "?" query ]
)

# RFC 9112 s7.1.1: chunk-size [ chunk-ext ]; chunk-ext = *( BWS ";" BWS ext-name
# [ BWS "=" BWS ext-val ] ), ext-val = token / quoted-string. Sizes are hex only,
# at most 16 digits (a 64-bit length).
QUOTED_STRING = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]++|\\[\t \x21-\x7e\x80-\xff])*+"'
CHUNK_EXT = (
    rb"(?:" + _BLANKS + rb";" + _BLANKS + _TOKEN
    + rb"(?:" + _BLANKS + rb"=" + _BLANKS + rb"(?:" + _TOKEN + rb"|" + QUOTED_STRING + rb"))?+)*+"
)
chunk_size_line = re.compile(rb"([0-9A-Fa-f]{1,16})" + CHUNK_EXT)
