"""Logins hard to disturb: the limiter bounded, a small login body, an unknown user name costing a scrypt,
sessions ended by a changed password and a removed user, the Origin compared by scheme, host and port,
and the trusted-proxy settings checked."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest

from indiredis.errors import ConfigError
from indiredis.indiwsgi import make_wsgi_app
from indiredis.indiwsgi.access import LOGIN_BODY
from indiredis.indiwsgi.auth import LoginLimiter, User, hash_password
from indiredis.indiwsgi.request import same_origin
from indiredis.service import config as service_config
from tests.support.daemons import BIN, write_config
from tests.support.servers import free_port
from tests.support.webworld import Client

PASSWORD = "a long enough password"
NEW_PASSWORD = "another long password"


def login(app, name: str = "olga", password: str = PASSWORD, address: str = "127.0.0.1"):
    """A client of ``app`` that tried to log in from ``address``, and the answer's status."""

    def from_address(environ, start_response):
        return app({**environ, "REMOTE_ADDR": address}, start_response)

    client = Client(from_address)
    body = urlencode({"user": name, "password": password}).encode()
    status, _, _ = client.request("POST", "/login", body, "application/x-www-form-urlencoded")
    return client, status


@pytest.fixture
def app(redis_host):
    made = make_wsgi_app(redis_host, users={"olga": User("olga", "operator", hash_password(PASSWORD))})
    yield made
    made.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limiter_forgets_a_key_once_its_window_has_passed():
    clock = Clock()
    limiter = LoginLimiter(limit=5, window=300.0, clock=clock)
    for _ in range(5):
        limiter.failed("address:192.0.2.1", "user:olga")
    assert limiter.blocked("address:192.0.2.1") and len(limiter) == 2
    clock.now += 301
    assert not limiter.blocked("address:192.0.2.1")
    limiter.failed("address:192.0.2.2")
    assert len(limiter) == 1  # the expired keys are gone, not kept empty


def test_the_limiter_holds_at_most_its_cap_and_keeps_the_most_recent():
    clock = Clock()
    limiter = LoginLimiter(limit=5, window=300.0, max_keys=100, clock=clock)
    for _ in range(5):
        limiter.failed("address:192.0.2.1")
    for number in range(10_000):  # a botnet's addresses and made-up user names
        clock.now += 0.001
        limiter.failed(f"address:10.{number // 256}.{number % 256}.1", f"user:nobody{number}")
        if number % 10 == 0:
            limiter.failed("address:192.0.2.1")  # still trying, so still among the most recent
    assert len(limiter) == 100
    assert limiter.blocked("address:192.0.2.1")


def test_failed_logins_from_many_addresses_leave_the_app_limiter_bounded(app):
    app.access.limiter = LoginLimiter(max_keys=10)
    for number in range(12):
        _, status = login(app, f"nobody{number}", "wrong", address=f"192.0.2.{number}")
        assert status.startswith("401")
    assert len(app.access.limiter) == 10


class CountingInput:
    """A request body of ``size`` bytes that counts what is read of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        self.read_bytes += size
        return b"x" * min(size, 1024)


def test_a_login_body_beyond_a_few_kilobytes_is_refused_unread(app):
    statuses: list[str] = []
    for length in (64 * 1024 * 1024, LOGIN_BODY + 1):
        body = CountingInput()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/login",
            "REQUEST_URI": "/login",
            "SCRIPT_NAME": "",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(length),
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": body,
        }
        b"".join(app(environ, lambda status, headers: statuses.append(status)))
        assert statuses[-1].startswith("400") and body.read_bytes == 0, length
    assert login(app)[1].startswith("303")  # a real login form is well within the bound


def test_an_unknown_user_name_costs_the_same_scrypt_as_a_wrong_password(app, monkeypatch):
    calls: list[tuple[int, int, int]] = []
    real_scrypt = hashlib.scrypt

    def counting_scrypt(password, *, salt, n, r, p, dklen=64, maxmem=0):
        calls.append((n, r, p))
        return real_scrypt(password, salt=salt, n=n, r=r, p=p, dklen=dklen)

    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)
    assert login(app, "nobody", "wrong")[1].startswith("401")  # the first may make the dummy hash
    calls.clear()
    assert login(app, "nobody", "wrong", address="127.0.0.2")[1].startswith("401")
    unknown = list(calls)
    calls.clear()
    assert login(app, "olga", "wrong", address="127.0.0.3")[1].startswith("401")
    assert unknown == calls == [(16384, 8, 1)]


def test_a_session_ends_when_its_users_password_changes(app, redis_host):
    client, status = login(app)
    assert status.startswith("303") and client.get("/api/devices")[0] == "200 OK"
    users = {"olga": User("olga", "operator", hash_password(NEW_PASSWORD))}
    reloaded = make_wsgi_app(redis_host, users=users)  # the web service reloaded with the new password
    try:
        client.app = reloaded
        assert client.get("/api/devices")[0].startswith("401")
        assert login(reloaded, password=NEW_PASSWORD)[1].startswith("303")
    finally:
        reloaded.close()


def web_config(tmp_path: Path, redis_port: int) -> Path:
    return write_config(
        tmp_path,
        "web",
        f"[redis]\nhost = 127.0.0.1\nport = {redis_port}\n",
        f"[service]\nblob_folder = {tmp_path}\n",
    )


def web_command(path: Path, *args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "indiredis-web"), "--config", str(path), *args],
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("change", ["password", "removal"])
def test_the_command_line_ends_a_users_sessions_at_once(redis_proc, redis_host, rconn, tmp_path, change):
    path = web_config(tmp_path, redis_proc.port)
    for name in ("olga", "otto"):
        assert web_command(path, "--add-user", name, password=PASSWORD).returncode == 0
    running = make_wsgi_app(redis_host, users=service_config.load("web", path).users)  # not reloaded
    try:
        olga, otto = login(running)[0], login(running, "otto")[0]
        assert olga.get("/api/devices")[0] == otto.get("/api/devices")[0] == "200 OK"
        if change == "password":
            done = web_command(path, "--add-user", "olga", password=NEW_PASSWORD)
        else:
            done = web_command(path, "--remove-user", "olga")
        assert done.returncode == 0, done.stderr
        assert "1 session of olga ended" in done.stdout
        assert olga.get("/api/devices")[0].startswith("401")
        assert otto.get("/api/devices")[0] == "200 OK"  # the other user's session is untouched
        users = service_config.load("web", path).users
        assert set(users) == {"olga", "otto"} if change == "password" else set(users) == {"otto"}
    finally:
        running.close()


def test_removing_an_unknown_user_says_so(redis_proc, tmp_path):
    path = web_config(tmp_path, redis_proc.port)
    assert web_command(path, "--add-user", "otto", password=PASSWORD).returncode == 0
    done = web_command(path, "--remove-user", "olga")
    assert done.returncode == 2 and "no user olga" in done.stderr


@pytest.mark.parametrize(
    ("scheme", "host", "origin", "same"),
    [
        ("https", "localhost:8443", "https://localhost:8443", True),
        ("https", "localhost:8443", "http://localhost:8443", False),  # another scheme
        ("https", "localhost:8443", "https://localhost", False),  # another port
        ("https", "localhost:8443", "https://evil.example:8443", False),
        ("https", "LocalHost", "https://localhost:443", True),  # the default port spelled out
        ("http", "localhost", "http://localhost:80", True),
        ("http", "localhost", "https://localhost", False),  # behind TLS but the proxy is not trusted
    ],
)
def test_the_origin_must_have_the_requests_scheme_host_and_port(scheme, host, origin, same):
    environ = {"wsgi.url_scheme": scheme, "HTTP_HOST": host, "HTTP_ORIGIN": origin}
    assert same_origin(environ) is same
    referer = {"wsgi.url_scheme": scheme, "HTTP_HOST": host, "HTTP_REFERER": origin + "/device/Mount"}
    assert same_origin(referer) is same


def test_the_trusted_proxy_settings_are_checked(tmp_path):
    path = write_config(
        tmp_path, "web", "[redis]\nhost = 127.0.0.1\n", "[service]\ntrusted_proxy = 127.0.0.1\n"
    )
    service_config.users_path(path).write_text(f"[users]\nolga = operator:{hash_password(PASSWORD)}\n")
    options = service_config.load("web", path).options
    assert options["trusted_proxy"] == "127.0.0.1"
    assert options["trusted_proxy_headers"] == [
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-forwarded-port",
    ]
    for headers, problem in (
        ("x-forwarded-for x-real-ip", "unknown x-real-ip"),
        ("forwarded x-forwarded-for", "forwarded cannot be combined"),
    ):
        path.write_text(f"[service]\ntrusted_proxy = 127.0.0.1\ntrusted_proxy_headers = {headers}\n")
        with pytest.raises(ConfigError, match=problem):
            service_config.load("web", path)


def test_without_redis_the_command_says_when_the_sessions_end(tmp_path):
    path = web_config(tmp_path, free_port())  # nothing listens there
    assert web_command(path, "--add-user", "olga", password=PASSWORD).returncode == 0
    done = web_command(path, "--add-user", "olga", password=NEW_PASSWORD)
    assert done.returncode == 0  # the users' file is written all the same
    assert "olga's sessions end when the web service is reloaded" in done.stderr
    assert "olga (operator) replaced in" in done.stdout
