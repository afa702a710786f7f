"""Sessions and request checks: foreign origins and missing CSRF tokens refused with or without logins,
sessions ended on the server by logout and by expiry, a warning when serving the network without logins."""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode

import pytest

from indiredis.indiwsgi import warn_if_exposed
from indiredis.indiwsgi.auth import User, hash_password
from tests.support.servers import wait_for
from tests.support.webworld import Client, sent_after

PASSWORD = "a long enough password"


def logged_in(app) -> Client:
    client = Client(app)
    status, headers, _ = client.request(
        "POST",
        "/login",
        urlencode({"user": "olga", "password": PASSWORD}).encode(),
        "application/x-www-form-urlencoded",
    )
    assert status.startswith("303") and "indiredis_session" in client.cookies
    client.get("/device/Mount")  # the page carries the session's CSRF token
    return client


@pytest.fixture
def users():
    return {
        "olga": User("olga", "operator", hash_password(PASSWORD)),
        "otto": User("otto", "observer", hash_password(PASSWORD)),
    }


def post(client: Client, path: str, fields: dict[str, str], **headers: str):
    return client.request(
        "POST",
        path,
        urlencode(fields).encode(),
        "application/x-www-form-urlencoded",
        {"X-Requested-With": "fetch", **headers},
    )


@pytest.mark.parametrize("logins", [False, True], ids=["without logins", "with logins"])
def test_a_post_from_a_foreign_origin_is_refused(new_app, world, redis_host, users, logins):
    _, fake, blobs = world
    app = new_app(redis_host, blobs, users=users if logins else None)
    client = logged_in(app) if logins else Client(app)
    token = client.token()
    for foreign in (
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/x"},
    ):
        status, _, _ = post(
            client, "/set/Mount/SITE", {"NAME": "x", "csrf": token}, Host="localhost", **foreign
        )
        assert status.startswith("403"), foreign
    # without the token, even from the same origin
    assert post(client, "/set/Mount/SITE", {"NAME": "x"}, Host="localhost")[0].startswith("403")
    assert post(client, "/set/Mount/SITE", {"NAME": "x", "csrf": "forged"})[0].startswith("403")
    # the page's own origin and token
    mark = len(fake.received)
    ok = post(
        client, "/set/Mount/SITE", {"NAME": "x", "csrf": token}, Host="localhost", Origin="http://localhost"
    )
    assert ok[0] == "200 OK" and b"newTextVector" in sent_after(fake, mark)


def test_a_cookie_does_not_work_after_logout(new_app, world, redis_host, users):
    _, _, blobs = world
    app = new_app(redis_host, blobs, users=users)
    client = logged_in(app)
    stolen = dict(client.cookies)
    token = client.token()
    assert client.get("/api/device/Mount")[0] == "200 OK"
    status, headers, _ = client.get("/logout")
    assert status.startswith("303") and headers["Location"] == "/login"
    thief = Client(app)
    thief.cookies = stolen  # the old cookie, kept by someone
    assert thief.get("/api/device/Mount")[0].startswith("401")
    assert thief.get("/device/Mount")[0].startswith("303")
    assert post(thief, "/set/Mount/SITE", {"NAME": "x", "csrf": token})[0].startswith(("401", "403"))


def test_an_expired_session_sends_the_user_to_the_login_page(new_app, world, redis_host, rconn, users):
    _, _, blobs = world
    app = new_app(redis_host, blobs, users=users, session_seconds=1)
    client = logged_in(app)
    assert client.get("/api/device/Mount")[0] == "200 OK"
    wait_for(lambda: not rconn.keys("indi_websession:*"), what="the session expired in Redis")
    assert client.get("/api/device/Mount")[0].startswith("401")  # the page script then goes to /login
    status, headers, _ = client.get("/device/Mount")
    assert status.startswith("303") and headers["Location"] == "/login"


def test_sessions_are_shared_by_web_processes(new_app, world, redis_host, users):
    _, _, blobs = world
    first, second = (new_app(redis_host, blobs, users=users) for _ in range(2))
    client = logged_in(first)
    client.app = second  # the next request reaches another process behind the proxy
    assert client.get("/api/device/Mount")[0] == "200 OK"
    assert post(client, "/set/Mount/SITE", {"NAME": "y", "csrf": client.token()})[0] == "200 OK"


def test_an_observer_watches_but_cannot_set(new_app, world, redis_host, users):
    _, _, blobs = world
    app = new_app(redis_host, blobs, users=users)
    client = Client(app)
    client.request(
        "POST",
        "/login",
        urlencode({"user": "otto", "password": PASSWORD}).encode(),
        "application/x-www-form-urlencoded",
    )
    page = client.get("/device/Mount")[2].decode()
    assert "otto (observer)" in page and "Log out" in page and "<form" not in page.split("<main", 1)[1]
    assert post(client, "/set/Mount/SITE", {"NAME": "x", "csrf": client.token()})[0].startswith("403")


def test_serving_the_network_without_logins_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING):
        warn_if_exposed("127.0.0.1", logins=False)
        warn_if_exposed("localhost", logins=False)
        warn_if_exposed("0.0.0.0", logins=True)
    assert not caplog.records
    with caplog.at_level(logging.WARNING):
        warn_if_exposed("0.0.0.0", logins=False)
    assert re.search("without logins", caplog.text)
