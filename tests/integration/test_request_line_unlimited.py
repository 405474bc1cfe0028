"""gunicorn's ``limit_request_line = 0`` ("unlimited") is a bound of 64 KiB here (README):
a long line is served, a longer one gets a 414, and nothing grows past the bound."""

from helpers import Gunicorn, connect, read_response

from server.protocol.limits import UNLIMITED_REQUEST_LINE


def request_line_of(size: int) -> bytes:
    """A GET request whose request line (without its CRLF) is ``size`` bytes long."""
    target = "/hello?" + "a" * (size - len("GET /hello? HTTP/1.1"))
    line = f"GET {target} HTTP/1.1".encode()
    assert len(line) == size
    return line + b"\r\nHost: t\r\nConnection: close\r\n\r\n"


def test_limit_request_line_0_is_64_kib():
    with Gunicorn("record_apps:wsgi_app", "--limit-request-line", "0") as srv:
        for size, status in ((UNLIMITED_REQUEST_LINE - 1000, 200), (UNLIMITED_REQUEST_LINE + 1000, 414)):
            with connect(srv.port) as sock:
                sock.sendall(request_line_of(size))
                assert read_response(sock).status == status, size
