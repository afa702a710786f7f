"""The web client while Redis is away (the soak's ``web viewers: ... errors``): a clean 503 page while
it is down, never a 500; once it is back empty, the sessions it held are gone (401 for the API, the
login page for a page), and a new login works."""

from __future__ import annotations

from urllib.parse import urlencode

import indiredis
from indiredis.indiwsgi import make_wsgi_app
from indiredis.indiwsgi.auth import User, hash_password
from tests.support.servers import RedisProcess
from tests.support.webworld import Client

PASSWORD = "a long enough password"
FORM = "application/x-www-form-urlencoded"


def test_redis_down_is_a_clean_503_and_back_empty_asks_for_a_login_again():
    with RedisProcess() as server:
        app = make_wsgi_app(
            indiredis.redis_server(host="127.0.0.1", port=server.port),
            users={"olga": User("olga", "observer", hash_password(PASSWORD))},
        )
        try:
            client = Client(app)
            login = urlencode({"user": "olga", "password": PASSWORD}).encode()
            assert client.request("POST", "/login", login, FORM)[0] == "303 See Other"
            assert client.request("GET", "/")[0] == "200 OK"
            server.kill()
            for path in ("/", "/api/device/CCD%20Simulator", "/device/CCD%20Simulator"):
                status, _, body = client.request("GET", path)
                assert status == "503 Service Unavailable", path
                assert b"The Redis store cannot be reached" in body and b"Traceback" not in body
            server.start()  # back, empty: the session is gone
            assert client.request("GET", "/api/device/CCD%20Simulator")[0] == "401 Unauthorized"
            status, headers, _ = client.request("GET", "/")
            assert status == "303 See Other" and headers["Location"].endswith("/login")
            assert client.request("POST", "/login", login, FORM)[0] == "303 See Other"
            assert client.request("GET", "/")[0] == "200 OK"
        finally:
            app.close()
