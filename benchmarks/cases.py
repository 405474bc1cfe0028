"""The suite's cases: what each one requests, from which app kinds, at what load, and what
a right answer is. Pure definitions (no sockets, no processes), shared by suite.py,
syscalls.py and instructions.py.

    Case ──request()──► method, path, headers, body   (the check and wrk send the same)
         ──script()───► wrk Lua script, when the request is more than a plain GET
         ──verify(r)──► "" or what is wrong with an answer

The apps (``apps/hello.py``, ``asgi_hello.py``, ``native_hello.py``, ``aiohttp_hello.py``)
serve the same routes with the same answers:

| route | answer |
|---|---|
| ``GET /`` | ``Hello, world!\\n``, Content-Length |
| ``GET /chunked`` | 16 x 4 KiB, no Content-Length (chunked) |
| ``GET /100k`` | 100 KiB of fixed bytes, Content-Length |
| ``GET /file`` | the 10 MiB file named by ``BENCH_FILE``, Content-Length; the header ``X-Bench-Path`` says how it went out |
| ``POST /echo`` | the length of the body read, in decimal |
| ``POST /form`` | the form parsed: ``<fields> <characters of the values>`` |
"""

import os
import tempfile
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote_plus

HELLO = b"Hello, world!\n"
CHUNKED_SIZE = 16 * 4096
RESPONSE_100K = 100 * 1024
FILE_SIZE = 10 * 1024 * 1024
POST_SIZE = 1024 * 1024
FORM_SIZE = 4 * 1024
FILE_ENV = "BENCH_FILE"  # environment variable: the path of the file /file serves
PATH_HEADER = "x-bench-path"  # how the app sent /file (file_wrapper, pathsend, FileResponse, blocks...)

# A browser's navigation request: with Host (wrk adds it), 15 header fields.
BROWSER_HEADERS = (
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.7,fr;q=0.3"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Referer", "https://www.example.com/articles/2026/12/benchmarks?page=2&sort=recent"),
    ("Cookie", "sessionid=4f9c2a7e1b3d8f60a5c7e9d1b2f4a6c8; csrftoken=Zx8Qw2Er4Ty6Ui8Op0As2Df4Gh6Jk8Lz; "
               "theme=dark; _ga=GA1.1.1234567890.1733155200"),
    ("Connection", "keep-alive"),
    ("Upgrade-Insecure-Requests", "1"),
    ("Sec-Fetch-Dest", "document"),
    ("Sec-Fetch-Mode", "navigate"),
    ("Sec-Fetch-Site", "same-origin"),
    ("Sec-Fetch-User", "?1"),
    ("Priority", "u=0, i"),
    ("Cache-Control", "max-age=0"),
)


FORM_FIELDS = (
    ("csrfmiddlewaretoken", "Zx8Qw2Er4Ty6Ui8Op0As2Df4Gh6Jk8LzXc0Vb2Nm4Ql6Wk8Ej0Rh2Tg4Yf6Ud8Is"),
    ("name", "Jeanne Dupont"), ("email", "jeanne.dupont@example.com"), ("phone", "+33 6 12 34 56 78"),
    ("subject", "Question about my order #12345"), ("country", "FR"), ("newsletter", "on"),
    ("terms", "on"), ("contact", "email"), ("priority", "normal"), ("order", "12345"),
    ("referrer", "https://www.example.com/shop/cart?step=3"),
)
FORM_TEXT = ("Bonjour, I ordered the blue model last week and the delivery note says it left the "
             "warehouse, but the tracking page has not moved since. Could you check? Merci d'avance, "
             "et bonne journée! ")


def form_body(size: int = FORM_SIZE) -> bytes:
    """A urlencoded form of exactly ``size`` bytes, as a contact form sends it: a dozen short
    fields, then a long message (spaces, punctuation and UTF-8 escapes)."""
    head = "&".join(f"{k}={quote_plus(v)}" for k, v in FORM_FIELDS) + "&message="
    text = quote_plus(FORM_TEXT * (size // len(FORM_TEXT) + 1))
    body = (head + text)[:size]
    while body[-2:].count("%"):  # do not cut an escape in two
        body = body[:-1]
    body = body + "x" * (size - len(body))
    assert len(body) == size, len(body)
    return body.encode()


def form_answer(body: bytes) -> bytes:
    """What the apps answer for a form: fields and characters of the values, parsed as they parse it."""
    pairs = parse_qsl(body.decode("latin-1"), encoding="utf-8")
    return b"%d %d" % (len(pairs), sum(len(v) for _, v in pairs))


def file_content(size: int = FILE_SIZE) -> bytes:
    """The served file's bytes: a fixed pattern, so an answer can be compared whole."""
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def make_file(directory: str | None = None) -> str:
    """Write the 10 MiB file into a fresh temporary directory; the caller removes it."""
    directory = directory or tempfile.mkdtemp(prefix="bench-file-")
    path = os.path.join(directory, "10MiB.bin")
    with open(path, "wb") as f:
        f.write(file_content())
    return path


@dataclass(frozen=True)
class Case:
    name: str
    kinds: tuple  # app kinds that take part: "wsgi", "asgi", "native"
    path: str
    connections: int
    group: str = ""  # cases with the same request and load: ratios may use a reference of another kind
    method: str = "GET"
    headers: tuple = ()  # extra request header fields (name, value), besides Host
    body: str = ""  # "echo" (POST_SIZE bytes) or "form" (FORM_SIZE bytes, urlencoded)
    watch: bool = False  # probes and accept queue during the run
    counted: bool = False  # instructions.py can count this request
    what: str = ""  # one line for the README and --help

    def request(self) -> tuple[str, str, list, bytes]:
        """``(method, path, headers, body)`` exactly as the check sends it (and wrk, via script())."""
        headers = list(self.headers)
        body = b""
        if self.body == "echo":
            body = b"x" * POST_SIZE
            headers.append(("Content-Type", "application/octet-stream"))
        elif self.body == "form":
            body = form_body()
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        return self.method, self.path, headers, body

    def needs_script(self) -> bool:
        return self.method != "GET" or bool(self.headers) or bool(self.body)

    def script(self) -> str:
        """The wrk Lua script that sends this request (wrk adds Host and Content-Length)."""
        method, _, headers, body = self.request()
        lines = [f"wrk.method = {lua_string(method.encode())}"]
        if self.body == "echo":
            lines.append(f'wrk.body = string.rep("x", {POST_SIZE})')
        elif body:
            lines.append(f"wrk.body = {lua_string(body)}")
        for name, value in headers:
            lines.append(f"wrk.headers[{lua_string(name.encode())}] = {lua_string(value.encode())}")
        return "\n".join(lines) + "\n"

    def verify(self, kind: str, status: int, headers: dict, body: bytes) -> str:
        """"" if the answer (``headers`` with lower-case names) is right for this case, else why not."""
        if status != 200:
            return f"status {status}"
        expected = expected_body(self)
        if self.path == "/chunked":
            if "content-length" in headers:
                return f"has a Content-Length ({headers['content-length']}) where the app gave none"
        elif self.path in ("/100k", "/file") and headers.get("content-length") != str(len(expected)):
            return f"Content-Length {headers.get('content-length')!r}, not {len(expected)}"
        if self.body:
            body = body.strip()
        if body != expected:
            return (f"body of {len(body)} bytes {body[:60]!r} is not the expected {len(expected)} bytes "
                    f"{expected[:60]!r}")
        return ""


def expected_body(case: Case) -> bytes:
    if case.body == "echo":
        return str(POST_SIZE).encode()
    if case.body == "form":
        return form_answer(form_body())
    return {"/": HELLO, "/chunked": b"x" * CHUNKED_SIZE, "/100k": response_100k(),
            "/file": file_content()}[case.path]


def response_100k() -> bytes:
    return b"0123456789abcdef" * (RESPONSE_100K // 16)


def lua_string(data: bytes) -> str:
    """A Lua string literal of ``data`` (any bytes)."""
    out = []
    for b in data:
        c = chr(b)
        out.append(c if (c.isalnum() and b < 128) or c in " =&+%-_.,;:/()*?!~'" else f"\\{b:03d}")
    return '"' + "".join(out) + '"'


ALL = ("wsgi", "asgi", "native")
CASES = (
    Case("hello", ("wsgi",), "/", 50, group="hello", counted=True, what="`GET /` → `Hello, world!\\n`"),
    Case("asgi-hello", ("asgi",), "/", 50, group="hello", counted=True, what="the same, from the ASGI app"),
    Case("native-hello", ("native",), "/", 50, group="hello", counted=True,
         what="the same, from a native handler"),
    Case("hello-c1", ALL, "/", 1, what="`GET /`, one connection (latency)"),
    Case("browser", ALL, "/", 50, headers=BROWSER_HEADERS, counted=True,
         what="`GET /` with a browser's 15 header fields (4 cookies, `Accept-*`, `User-Agent`, `Referer`)"),
    Case("chunked", ALL, "/chunked", 50, counted=True,
         what="`GET /chunked`: 16 x 4 KiB, no Content-Length (chunked)"),
    Case("resp-100KiB", ALL, "/100k", 50, counted=True, what="`GET /100k`: 100 KiB of fixed bytes, Content-Length"),
    Case("file-10MiB", ALL, "/file", 10,
         what="`GET /file`: a 10 MiB file (WSGI `wsgi.file_wrapper`, ASGI `http.response.pathsend` "
              "when offered, else 64 KiB body messages; native and aiohttp `web.FileResponse`)"),
    Case("form-4KiB", ALL, "/form", 50, method="POST", body="form", counted=True,
         what="`POST /form`: 4 KiB urlencoded form, parsed by the app; answers fields and characters"),
    Case("echo-1MiB-c10", ALL, "/echo", 10, method="POST", body="echo", counted=True,
         what="`POST /echo`: 1 MiB, read whole by the app, answers its length"),
    Case("hello-c200", ALL, "/", 200,
         what="`GET /`, 200 connections: between c=50 and c=1000, where a server that hands requests "
              "to another thread hands each many at once"),
    Case("hello-c1000", ALL, "/", 1000, watch=True, what="`GET /`, 1000 connections, watched"),
    Case("hello-close", ALL, "/", 50, headers=(("Connection", "close"),),
         what="`GET /` with `Connection: close`: a new connection per request, as from a proxy "
              "without upstream keep-alive (nginx's default)"),
)
CASE_NAMES = tuple(c.name for c in CASES)
BY_NAME = {c.name: c for c in CASES}

