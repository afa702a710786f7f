"""The web client behind a login: sessions, CSRF, read-only users, login rate limit."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from indiredis.indiwsgi import make_wsgi_app
from indiredis.indiwsgi.auth import MAX_FAILURES, User, hash_password
from tests.support.servers import wait_for
from tests.support.webworld import Client

PASSWORD = "correct horse battery"


@pytest.fixture
def secured(world, redis_host, tmp_path):  # noqa: F811
    _, fake, blobs = world
    users = {
        "olga": User("olga", "operator", hash_password(PASSWORD)),
        "walt": User("walt", "observer", hash_password(PASSWORD)),
    }
    app = make_wsgi_app(redis_host, blobs, users=users)
    yield SessionClient(app), fake
    app.close()


class SessionClient(Client):
    """A client that keeps its session cookie and sends a CSRF token only when told."""

    cookie = ""
    auto_csrf = False

    def request(self, method, path, body=b"", content_type="", headers=None):
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = self.cookie
        status, response_headers, data = super().request(method, path, body, content_type, headers)
        if "Set-Cookie" in response_headers:
            self.cookie = response_headers["Set-Cookie"].split(";", 1)[0]
        return status, response_headers, data

    def login(self, user: str, password: str = PASSWORD):
        return self.request(
            "POST",
            "/login",
            urlencode({"user": user, "password": password}).encode(),
            "application/x-www-form-urlencoded",
        )

    def csrf(self) -> str:
        page = self.get("/device/Mount")[2].decode()
        return re.search(r"name='csrf' content='([^']+)'", page).group(1)


def test_everything_refused_before_login(secured):
    client, fake = secured
    status, headers, _ = client.get("/")
    assert status.startswith("303") and headers["Location"] == "/login"
    assert client.get("/device/Mount")[0].startswith("303")
    assert client.get("/api/device/Mount")[0].startswith("401")
    assert client.get("/blobs/anything")[0].startswith("303")
    mark = len(fake.received)
    assert client.post("/set/Mount/COORD", {"DEC": "1"})[0].startswith("401")
    assert len(fake.received) == mark


def test_login_sets_a_strict_http_only_cookie(secured):
    client, _ = secured
    status, headers, _ = client.login("olga")
    assert status.startswith("303")
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and PASSWORD not in cookie
    assert client.get("/")[0] == "200 OK"
    assert client.login("olga", "wrong")[0].startswith("401")


def test_set_requests_need_the_csrf_token(secured):
    client, fake = secured
    client.login("olga")
    mark = len(fake.received)
    assert client.post("/set/Mount/COORD", {"DEC": "1"})[0].startswith("403")  # no token
    assert client.post("/set/Mount/COORD", {"DEC": "1", "csrf": "forged"})[0].startswith("403")
    assert len(fake.received) == mark
    assert client.post("/set/Mount/COORD", {"DEC": "1", "csrf": client.csrf()})[0] == "200 OK"
    wait_for(lambda: b"newNumberVector" in bytes(fake.received[mark:]), what="the request sent")


def test_read_only_user_watches_but_cannot_set(secured):
    client, fake = secured
    client.login("walt")
    page = client.get("/device/Mount")[2].decode()
    assert "12:30:00" in page and "<form class='set'" not in page
    mark = len(fake.received)
    assert client.post("/set/Mount/COORD", {"DEC": "1", "csrf": client.csrf()})[0].startswith("403")
    assert len(fake.received) == mark


def test_failed_logins_are_rate_limited(secured):
    client, _ = secured
    for _ in range(MAX_FAILURES):
        assert client.login("olga", "guess")[0].startswith("401")
    # even the right password is refused for a while now
    status, headers, _ = client.login("olga")
    assert status.startswith("429") and headers["Retry-After"]
