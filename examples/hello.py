"""A minimal WSGI app: `gunicorn -k server.workers.AsyncWorker examples.hello:app`."""


def app(environ, start_response):
    body = b"Hello, world!\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
