"""Echo app: answers every request with 200 and a JSON description of what the app saw.

If ECHO_HITS_FILE is set, one JSON line [method, path] is appended per request first,
so a test can count the requests that reached the application."""

import base64
import json
import os

CGI_HEADERS = ("CONTENT_TYPE", "CONTENT_LENGTH")


def _headers(environ):
    pairs = [[key[5:], value] for key, value in environ.items() if key.startswith("HTTP_")]
    return pairs + [[key, environ[key]] for key in CGI_HEADERS if key in environ]


def _record_hit(environ):
    path = os.environ.get("ECHO_HITS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps([environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")]) + "\n")


def app(environ, start_response):
    _record_hit(environ)
    body = json.dumps({
        "method": environ["REQUEST_METHOD"],
        "path": environ.get("PATH_INFO", ""),
        "query": environ.get("QUERY_STRING", ""),
        "script_name": environ.get("SCRIPT_NAME", ""),
        "headers": _headers(environ),
        "body": base64.b64encode(environ["wsgi.input"].read()).decode("ascii"),
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
