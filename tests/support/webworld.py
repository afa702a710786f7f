"""A web client world for tests: a fake INDI device behind a real inditoredis and Redis, and a WSGI client."""

from __future__ import annotations

import io
import re
from urllib.parse import unquote, urlencode

import pytest

import indiredis
from indiredis import tools
from indiredis.bridges import make_inditoredis
from indiredis.indiwsgi import make_wsgi_app
from tests.support.bridgethread import run_bridge
from tests.support.fakeindi import FakeIndiServer
from tests.support.servers import wait_for

DEFS = b"""<defNumberVector device="Mount" name="COORD" label="Coordinates" group="Motion" state="Idle" perm="rw">
<defNumber name="RA" label="RA" format="%010.6m" min="0" max="24" step="0">12.5</defNumber>
<defNumber name="DEC" label="Dec" format="%.2f" min="-90" max="90" step="0">45</defNumber></defNumberVector>
<defSwitchVector device="Mount" name="TRACK" group="Motion" state="Ok" perm="rw" rule="OneOfMany">
<defSwitch name="ON">On</defSwitch><defSwitch name="OFF">Off</defSwitch></defSwitchVector>
<defSwitchVector device="Mount" name="OPTIONS" group="Options" state="Ok" perm="rw" rule="AnyOfMany">
<defSwitch name="A">Off</defSwitch><defSwitch name="B">Off</defSwitch></defSwitchVector>
<defSwitchVector device="Mount" name="PARK" group="Options" state="Ok" perm="rw" rule="AtMostOne">
<defSwitch name="PARK">Off</defSwitch><defSwitch name="UNPARK">Off</defSwitch></defSwitchVector>
<defTextVector device="Mount" name="SITE" group="Site" state="Idle" perm="rw"><defText name="NAME">home</defText></defTextVector>
<defTextVector device="Mount" name="INFO" group="Site" state="Alert" perm="ro">
<defText name="NOTE" label="&lt;script&gt;alert(1)&lt;/script&gt;">&lt;b&gt;bold&lt;/b&gt;</defText></defTextVector>
<defLightVector device="Mount" name="STATUS" group="Site" state="Busy"><defLight name="L">Ok</defLight></defLightVector>
<defBLOBVector device="Mount" name="UPLOAD" group="Files" state="Idle" perm="wo"><defBLOB name="FILE"/></defBLOBVector>
<defBLOBVector device="Mount" name="IMAGE" group="Files" state="Idle" perm="ro"><defBLOB name="IMG"/></defBLOBVector>
"""  # noqa: E501 - INDI XML samples, one message per line


class Client:
    """Calls the WSGI app the way a server would; :meth:`post` sends the CSRF token of the pages it
    saw, as the page script does (unless ``auto_csrf`` is False)."""

    auto_csrf = True

    def __init__(self, app) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}
        self.page_token = ""

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        content_type: str = "",
        headers: dict[str, str] | None = None,
    ) -> tuple[str, dict[str, str], bytes]:
        # as waitress does: PATH_INFO percent-decoded (PEP 3333), REQUEST_URI the raw request target
        environ = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path.split("?")[0], "latin-1"),
            "REQUEST_URI": path,
            "QUERY_STRING": path.partition("?")[2],
            "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": content_type,
        }
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        for key, value in (headers or {}).items():
            environ["HTTP_" + key.upper().replace("-", "_")] = value
        box: dict[str, object] = {}

        def start_response(status, response_headers):
            box["status"], box["headers"] = status, dict(response_headers)
            for name, value in response_headers:
                if name == "Set-Cookie":
                    key, _, rest = value.partition("=")
                    self.cookies[key] = rest.split(";", 1)[0]

        data = b"".join(self.app(environ, start_response))
        found = re.search(rb"<meta name='csrf' content='([^']*)'>", data)
        if found:
            self.page_token = found.group(1).decode()
        return box["status"], box["headers"], data  # type: ignore[return-value]

    def token(self) -> str:
        """The CSRF token a page of the app carries (read from the device list once)."""
        if not self.page_token:
            self.get("/")
        return self.page_token

    def get(self, path: str, **headers: str):
        return self.request("GET", path, headers=headers)

    def post(self, path: str, fields: dict[str, str | list[str]]):
        pairs = [
            (k, v) for k, values in fields.items() for v in (values if isinstance(values, list) else [values])
        ]
        return self.request(
            "POST",
            path,
            urlencode(pairs).encode(),
            "application/x-www-form-urlencoded",
            {"X-Requested-With": "fetch", **({"X-CSRF-Token": self.token()} if self.auto_csrf else {})},
        )


@pytest.fixture
def world(redis_host, rconn, tmp_path):
    blobs = tmp_path / "blobs"
    with FakeIndiServer() as fake:
        bridge = make_inditoredis(
            indiredis.indi_server("127.0.0.1", fake.port), redis_host, blob_folder=str(blobs)
        )
        with run_bridge(bridge):
            wait_for(lambda: bridge.ready and fake.clients, what="bridge connected")
            fake.send(DEFS)
            wait_for(lambda: len(tools.properties(rconn, redis_host, "Mount")) == 9, what="Mount defined")
            wait_for(lambda: fake.received.count(b"</enableBLOB>") == 2, what="the bridge's enableBLOBs")
            app = make_wsgi_app(redis_host, blob_folder=blobs)
            yield Client(app), fake, blobs
            app.close()


@pytest.fixture
def new_app():
    """``make_wsgi_app`` for one test: every app it made is closed when the test ends.  An app left open
    keeps its Redis watcher thread, which goes on retrying the test's Redis once it is gone (with
    redis-py's jittered back-off, from the global ``random``: Hypothesis, in a later test of the same
    worker, then warned that its strategies used ``random``)."""
    apps = []

    def make(*args, **kwargs):
        app = make_wsgi_app(*args, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


def sent_after(fake, marker: int) -> bytes:
    wait_for(lambda: len(fake.received) > marker, what="a request at the INDI side")
    return bytes(fake.received[marker:])
