"""FastAPI and Django's ASGI handler on AsyncWorker (Starlette: test_asgi_starlette.py)."""

import httpx

from helpers import Gunicorn


def test_fastapi_app():
    with Gunicorn("asgi_fastapi:app") as server:
        r = httpx.post(server.base_url + "/items/3", json={"name": "x"}, params={"q": "y"}, timeout=10)
    assert r.json() == {"id": 3, "name": "x", "q": "y"}
    assert "ASGI lifespan startup complete" in server.log_text()


def test_django_asgi_app():
    payload = {"text": "naïve ☃", "list": [1, 2.5, None]}
    with Gunicorn("asgi_django:application") as server, \
            httpx.Client(base_url=server.base_url, timeout=10) as client:
        r = client.post("/json", json=payload)
        form = client.post("/form", data={"name": "Zoë"})
    assert (r.status_code, r.json()) == (200, {"received": payload})
    assert form.json() == {"name": "Zoë"}
    assert "ASGI lifespan not supported by the app" in server.log_text()  # Django has no lifespan
