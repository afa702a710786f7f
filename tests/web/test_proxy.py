"""The web client behind Debian's nginx on a non-default port, as docs/web.md sets it up: a real
``indiredis-web`` process trusting the proxy, reached over TLS; login, set and logout work, the session
cookie is Secure, and the login limiter sees each client's own address (clients connect to nginx from
127.0.0.1 and from 127.0.0.2, both loopback addresses)."""

from __future__ import annotations

import http.client
import re
import ssl
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.support.certs import make_certificates
from tests.support.daemons import BIN, start_daemon, stop_daemon, write_config
from tests.support.nginx import NginxProcess
from tests.support.notifysocket import NotifySocket
from tests.support.servers import free_port, port_open, wait_for
from tests.support.webworld import sent_after

DOCS = Path(__file__).resolve().parents[2] / "docs" / "web.md"
PASSWORD = "a long enough password"


def docs_server_block(port: int, upstream: int, cert: Path, key: Path) -> str:
    """The nginx site of docs/web.md (HTTPS on 8443 in front of 127.0.0.1:8000), on the test's ports."""
    blocks = re.findall(r"```nginx\n(.*?)```", DOCS.read_text(), re.S)
    block = next(block for block in blocks if "listen 8443 ssl;" in block)
    block = block.replace("listen 8443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    block = block.replace("http://127.0.0.1:8000", f"http://127.0.0.1:{upstream}")
    block = re.sub(r"ssl_certificate\s+\S+;", f"ssl_certificate {cert};", block)
    return re.sub(r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", block)


class Browser:
    """An HTTPS client of the proxy from one loopback address, keeping its cookies as a browser does
    and sending the page's origin with each POST."""

    def __init__(self, port: int, ca: Path, address: str = "127.0.0.1") -> None:
        self.port, self.address = port, address
        self.context = ssl.create_default_context(cafile=str(ca))
        self.cookies: dict[str, str] = {}
        self.set_cookies: list[str] = []
        self.token = ""

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.port}"

    def request(self, method: str, path: str, fields: dict[str, str] | None = None, **headers: str):
        connection = http.client.HTTPSConnection(
            "localhost", self.port, context=self.context, timeout=10, source_address=(self.address, 0)
        )
        sent = dict(headers)
        body = None
        if fields is not None:
            body = urlencode(fields).encode()
            sent.setdefault("Origin", self.origin)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        for value in response.headers.get_all("Set-Cookie") or []:
            self.set_cookies.append(value)
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        found = re.search(rb"<meta name='csrf' content='([^']*)'>", data)
        if found:
            self.token = found.group(1).decode()
        return response.status, response.headers, data

    def login(self, user: str, password: str, **headers: str) -> int:
        return self.request("POST", "/login", {"user": user, "password": password}, **headers)[0]


@pytest.fixture
def proxied(world, redis_proc, tmp_path):
    """indiredis-web (a real process trusting 127.0.0.1) behind nginx on a free port over TLS: the
    nginx port, the CA, the fake INDI server, and the web service's log."""
    _, fake, blobs = world
    certs = make_certificates(tmp_path / "certs")
    web_port = free_port()
    config = write_config(
        tmp_path,
        "web",
        f"[redis]\nhost = 127.0.0.1\nport = {redis_proc.port}\n",
        f"[service]\nblob_folder = {blobs}\nlisten_host = 127.0.0.1\nlisten_port = {web_port}\n"
        "trusted_proxy = 127.0.0.1\n",
    )
    subprocess.run(
        [str(BIN / "indiredis-web"), "--config", str(config), "--add-user", "olga"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    notify = NotifySocket(tmp_path)
    web = start_daemon("web", config, notify)
    try:
        wait_for(lambda: notify.has("READY=1"), timeout=20, what="web READY=1")
        wait_for(lambda: port_open(web_port), what="indiredis-web listening")
        block = docs_server_block(0, web_port, certs.server_cert, certs.server_key)
        nginx = NginxProcess(block)
        nginx.server_block = block.replace("127.0.0.1:0 ssl", f"127.0.0.1:{nginx.port} ssl")
        with nginx:
            yield nginx.port, certs.ca, fake, tmp_path / "web.log", web_port
    finally:
        assert stop_daemon(web) == 0


def test_login_set_and_logout_work_through_nginx_on_a_non_default_port(proxied):
    port, ca, fake, _, _ = proxied
    browser = Browser(port, ca)
    assert browser.request("GET", "/login")[0] == 200
    assert browser.login("olga", PASSWORD) == 303
    session = next(c for c in browser.set_cookies if c.startswith("indiredis_session="))
    assert "; Secure" in session and "HttpOnly" in session
    status, _, page = browser.request("GET", "/device/Mount")
    assert status == 200 and b"olga (operator)" in page and browser.token
    mark = len(fake.received)
    fields = {"NAME": "behind nginx", "csrf": browser.token}
    status, _, answer = browser.request("POST", "/set/Mount/SITE", fields, **{"X-Requested-With": "fetch"})
    assert (status, answer) == (200, b"sent")
    assert b"behind nginx" in sent_after(fake, mark)
    # the Origin check compares the port the browser used: another port is another origin
    other = {"Origin": f"https://localhost:{port + 1}", "X-Requested-With": "fetch"}
    assert browser.request("POST", "/set/Mount/SITE", fields, **other)[0] == 403
    status, headers, _ = browser.request("GET", "/logout")
    assert status == 303 and headers["Location"] == "/login"
    assert browser.request("GET", "/api/devices")[0] == 401


def test_the_login_limiter_sees_each_clients_own_address(proxied):
    port, ca, _, web_log, _ = proxied
    stranger = Browser(port, ca, address="127.0.0.2")
    for number in range(5):  # five names, one failure each: only the address reaches the limit
        # a forged X-Forwarded-For naming the operator's address does not move the count there
        assert stranger.login(f"guess{number}", "wrong", **{"X-Forwarded-For": "127.0.0.1"}) == 401
    assert stranger.login("guess5", "wrong") == 429
    assert stranger.login("olga", PASSWORD) == 429  # refused from that address, even the right password
    assert Browser(port, ca).login("olga", PASSWORD) == 303  # the operator, from 127.0.0.1, is not locked out
    log = web_log.read_text()
    assert "web login failed for 'guess0' from 127.0.0.2" in log
    assert "web login: olga (operator) from 127.0.0.1" in log


def test_only_the_trusted_proxy_is_believed(proxied):
    _, _, _, web_log, web_port = proxied
    # a peer reaching indiredis-web around the proxy, claiming HTTPS and another address
    connection = http.client.HTTPConnection(
        "127.0.0.1", web_port, timeout=10, source_address=("127.0.0.2", 0)
    )
    forged = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": "198.51.100.7",
        "X-Forwarded-Host": "observatory.example",
        "Origin": f"http://127.0.0.1:{web_port}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    try:
        connection.request(
            "POST", "/login", body=urlencode({"user": "olga", "password": PASSWORD}), headers=forged
        )
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()
    assert response.status == 303  # the Origin matched the real host, not the forged one
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("indiredis_session=") and "Secure" not in cookie
    assert "web login: olga (operator) from 127.0.0.2" in web_log.read_text()
