"""The pages' event streams through the WSGI app: a slot is held only by a running stream, and a store
that goes away while a stream runs does not end it with a traceback (the page is told by the status)."""

from __future__ import annotations

import io
from urllib.parse import urlencode

import indiredis
from indiredis.indiwsgi import make_wsgi_app, push
from indiredis.indiwsgi.auth import User, hash_password
from tests.support.servers import RedisProcess
from tests.support.webworld import Client

PASSWORD = "a long enough password"


def stream_of(app, cookies: dict[str, str], left: list[bool]):
    """The chunks of ``/api/stream`` as a WSGI server would iterate them, and its status."""
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/api/stream",
        "REQUEST_URI": "/api/stream",
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(b""),
        "HTTP_COOKIE": "; ".join(f"{k}={v}" for k, v in cookies.items()),
        "waitress.client_disconnected": lambda: left[0],
    }
    box: dict[str, str] = {}
    chunks = app(environ, lambda status, headers: box.update(status=status))
    return box["status"], iter(chunks)


def test_a_stream_never_started_holds_no_slot(redis_host, tmp_path):
    app = make_wsgi_app(redis_host, tmp_path)
    try:
        for _ in range(3):
            status, chunks = stream_of(app, {}, [False])
            assert status.startswith("200")
            chunks.close()  # the client left before the server read the first chunk
        assert app.cache.hub.streams == 0
        left = [False]
        status, chunks = stream_of(app, {}, left)
        assert next(chunks).startswith(b"retry: 1000\n")
        assert app.cache.hub.streams == 1
        left[0] = True
        assert list(chunks) == []
        assert app.cache.hub.streams == 0
    finally:
        app.close()


def test_a_stream_outlives_the_store_going_away(tmp_path, monkeypatch):
    monkeypatch.setattr(push, "SESSION_CHECK", 0.0)  # the session asked at every turn
    users = {"olga": User("olga", "operator", hash_password(PASSWORD))}
    with RedisProcess() as proc:
        app = make_wsgi_app(indiredis.redis_server(host="127.0.0.1", port=proc.port), tmp_path, users=users)
        client = Client(app)
        status, _, _ = client.request(
            "POST",
            "/login",
            urlencode({"user": "olga", "password": PASSWORD}).encode(),
            "application/x-www-form-urlencoded",
        )
        assert status.startswith("303")
        left = [False]
        status, chunks = stream_of(app, client.cookies, left)
        assert status.startswith("200") and next(chunks).startswith(b"retry: 1000\n")
    try:  # the store is gone
        got = next(chunks)  # the status change, or a keepalive: not a ConnectionError
        assert got.startswith((b"id: ", b": keepalive"))
        left[0] = True
        assert list(chunks) == []
        assert app.cache.hub.streams == 0
    finally:
        app.close()
