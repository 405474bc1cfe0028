"""gunicorn's pre_request and post_request hooks run around every WSGI request."""

from helpers import Gunicorn, connect, read_response, wait_until

CONFIG = '''
def pre_request(worker, req):
    with open({log!r}, "a") as f:
        f.write(f"pre {{req.method}} {{req.path}} {{req.query}} {{dict(req.headers).get('X-TEST')}}\\n")

def post_request(worker, req, environ, resp):
    with open({log!r}, "a") as f:
        f.write(f"post {{req.path}} {{resp.status}} {{resp.sent}} {{environ['PATH_INFO']}}\\n")
'''


def test_request_hooks_see_request_and_response(tmp_path):
    log = tmp_path / "hooks.log"
    conf = tmp_path / "hooks.conf.py"
    conf.write_text(CONFIG.format(log=str(log)))
    with Gunicorn("response_apps:app", "-c", str(conf)) as srv:
        with connect(srv.port) as sock:
            sock.sendall(b"GET /hello?a=1 HTTP/1.1\r\nHost: t\r\nX-Test: yes\r\n\r\n")
            assert read_response(sock).body == b"hello world"
        lines = wait_until(lambda: log.exists() and len(log.read_text().splitlines()) == 2 and
                           log.read_text().splitlines(), 5, what="both hooks")
    assert lines == ["pre GET /hello a=1 yes", "post /hello 200 OK 11 /hello"]
