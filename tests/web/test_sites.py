"""Many sites, one panel: two sites whose devices have the same names, in one web process.

A real redis-server; per site a real indiserver with Debian's telescope and CCD simulators and an
inditoredis writing the shared Redis under the site's own key prefix and channels, as each site's
central ``mqtttoredis`` would; the panel (``[site:NAME]`` sections of ``web.ini``, read by the real
configuration loader) served by waitress.  The WSGI part checks the site list's health, the shared
login and that a request reaches one site only; the browser part does the same in Chromium.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis

import indiredis
from indiredis import tools
from indiredis.bridges import make_inditoredis
from indiredis.errors import ConfigError
from indiredis.hosts import RedisServer
from indiredis.indiwsgi import close_server, make_server
from indiredis.indiwsgi.auth import hash_password
from indiredis.indiwsgi.push import STREAMS_MAX
from indiredis.indiwsgi.sites import PanelSite, SitesApp, make_sites_app, read_health
from indiredis.service import config
from tests.support.bridgethread import run_bridge
from tests.support.daemons import start_daemon, stop_daemon
from tests.support.notifysocket import NotifySocket
from tests.support.servers import IndiServerProcess, RedisProcess, free_port, port_open, wait_for
from tests.support.webworld import Client

TELESCOPE = "Telescope Simulator"
CCD = "CCD Simulator"
PASSWORD = "correct horse battery"
SITES = ("north", "south")


class Panel:
    def __init__(
        self, url: str, app: SitesApp, rconn: redis.Redis, hosts: dict[str, RedisServer], ini: Path
    ) -> None:
        self.url, self.app, self.rconn, self.hosts, self.ini = url, app, rconn, hosts, ini

    def connected(self, site: str, device: str = TELESCOPE) -> bool:
        values = tools.elements_dict(self.rconn, self.hosts[site], "CONNECT", "CONNECTION", device)
        return values.get("value") == "On"


def web_ini(folder: Path, redis_port: int, blobs: dict[str, Path]) -> Path:
    """The panel's configuration as an administrator writes it: [redis], two sites, one user."""
    lines = ["[redis]", "host = 127.0.0.1", f"port = {redis_port}", "keyprefix = panel_", ""]
    for site in SITES:
        lines += [
            f"[site:{site}]",
            f"keyprefix = {site}_",
            f"to_indi_channel = {site}_to",
            f"from_indi_channel = {site}_from",
            f"blob_folder = {blobs[site]}",
            f"label = {site.title()} dome",
            "",
        ]
    lines += ["[users]", f"olga = operator:{hash_password(PASSWORD)}"]
    path = folder / "web.ini"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def panel(tmp_path_factory) -> Iterator[Panel]:
    folder = tmp_path_factory.mktemp("sites")
    blobs = {site: folder / f"blobs-{site}" for site in SITES}
    with (
        RedisProcess() as redis_proc,
        IndiServerProcess() as north_indi,
        IndiServerProcess() as south_indi,
    ):
        ini = web_ini(folder, redis_proc.port, blobs)
        settings = config.load("web", ini)
        assert settings.redis is not None
        hosts = {site.name: site.redis_host(settings.redis) for site in settings.sites}
        bridges = [
            make_inditoredis(
                indiredis.indi_server("127.0.0.1", indi.port), hosts[site], blob_folder=str(blobs[site])
            )
            for site, indi in zip(SITES, (north_indi, south_indi), strict=True)
        ]
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port, socket_timeout=5)
        app = make_sites_app(settings.redis, settings.sites, users=settings.users)
        port = free_port()
        server = make_server(app, host="127.0.0.1", port=port)
        thread = threading.Thread(target=server.run, daemon=True)
        with run_bridge(bridges[0]), run_bridge(bridges[1]):
            thread.start()
            for site in SITES:
                wait_for(
                    lambda site=site: (
                        tools.properties(rconn, hosts[site], TELESCOPE)
                        and tools.properties(rconn, hosts[site], CCD)
                    ),
                    timeout=30,
                    what=f"the simulators of {site} in Redis",
                )
            try:
                yield Panel(f"http://127.0.0.1:{port}", app, rconn, hosts, ini)
            finally:
                app.close()
                close_server(server)
                rconn.close()


def logged_in(app: SitesApp) -> Client:
    client = Client(app)
    status, headers, _ = client.post("/login", {"user": "olga", "password": PASSWORD})
    assert status.startswith("303") and headers["Location"] == "/"
    return client


# -- configuration --------------------------------------------------------------------------------


def test_sites_sections_are_checked(tmp_path):
    users = f"[users]\nolga = operator:{hash_password(PASSWORD)}\n"
    site = (
        "[site:{name}]\nkeyprefix = {prefix}\nto_indi_channel = {name}_to\nfrom_indi_channel = {name}_from\n"
    )
    ini = tmp_path / "web.ini"
    ini.write_text(users)
    assert config.load("web", ini).sites == ()  # no site: the web client of one key prefix, as before
    ini.write_text(users + site.format(name="north", prefix="n_") + site.format(name="south", prefix="n_"))
    with pytest.raises(ConfigError, match=r"\[site:south\] sites 'north' and 'south' share keyprefix 'n_'"):
        config.load("web", ini)
    ini.write_text(users + site.format(name="no/rth", prefix="n_"))
    with pytest.raises(ConfigError, match="letters, digits"):
        config.load("web", ini)
    ini.write_text(users + "[site:north]\nkeyprefix = n_\n")
    with pytest.raises(ConfigError, match=r"\[site:north\] to_indi_channel is required"):
        config.load("web", ini)
    ini.write_text(users + "[site:north]\nkeyprefix = n_\nto_indi_channel = x\nfrom_indi_channel = x\n")
    with pytest.raises(ConfigError, match="share channel 'x'"):
        config.load("web", ini)
    ini.write_text(site.format(name="north", prefix="n_"))
    (tmp_path / "inditoredis.ini").write_text("[service]\n" + site.format(name="north", prefix="n_"))
    with pytest.raises(ConfigError, match=r"unknown section \[site:north\]"):
        config.load("inditoredis", tmp_path / "inditoredis.ini")


# -- the panel over WSGI ----------------------------------------------------------------------------


def test_one_login_serves_every_site(panel):
    anonymous = Client(panel.app)
    status, headers, _ = anonymous.get("/")
    assert status.startswith("303") and headers["Location"] == "/login"
    status, headers, _ = anonymous.get("/sites/north/")
    assert status.startswith("303") and headers["Location"] == "/sites/north/login"
    status, headers, _ = anonymous.get("/sites/north/login")  # a site's login is the panel's
    assert status.startswith("303") and headers["Location"] == "/login"
    assert anonymous.get("/api/sites")[0].startswith("401")
    client = logged_in(panel.app)
    for site in SITES:
        status, _, body = client.get(f"/sites/{site}/device/Telescope%20Simulator")
        assert status.startswith("200"), body[:200]
        assert b"href='/sites/%s/device/CCD%%20Simulator'" % site.encode() in body  # links stay in the site
        assert b"<a href='/' class='sites' id='sites'>Sites</a>" in body  # and one leads to the site list
    assert client.get("/device/Telescope%20Simulator")[0].startswith("404")  # no site: nothing
    assert client.get("/sites/west/")[0].startswith("404")
    status, headers, _ = client.get("/sites/south/logout")
    assert headers["Location"] == "/logout"
    client.get("/logout")
    assert client.get("/sites/north/")[0].startswith("303")  # logged out of every site at once


def test_a_request_reaches_its_site_only(panel):
    client = logged_in(panel.app)
    client.get("/sites/north/device/Telescope%20Simulator")  # the page, for its CSRF token
    status, _, body = client.post("/sites/north/set/Telescope%20Simulator/CONNECTION", {"press": "CONNECT"})
    assert status.startswith("200"), body
    wait_for(lambda: panel.connected("north"), timeout=30, what="north's telescope connected")
    assert not panel.connected("south")
    tools.newswitchvector(
        panel.rconn, panel.hosts["north"], "CONNECTION", TELESCOPE, {"CONNECT": "Off", "DISCONNECT": "On"}
    )
    wait_for(lambda: not panel.connected("north"), timeout=30, what="north's telescope disconnected")


def test_the_site_list_tells_each_sites_health(panel):
    client = logged_in(panel.app)

    def sites() -> dict[str, Any]:
        status, _, body = client.get("/api/sites")
        assert status.startswith("200"), body
        return {site["name"]: site for site in json.loads(body)["sites"]}

    found = sites()
    assert set(found) == set(SITES)
    for site in SITES:
        assert found[site]["devices"] == [CCD, TELESCOPE] and found[site]["bridge"]
        assert found[site]["ok"] and found[site]["label"] == f"{site.title()} dome"
    # a frame taken at the south site only: the south site's newest frame, none at the north
    south = panel.hosts["south"]
    tools.newswitchvector(panel.rconn, south, "CONNECTION", CCD, {"CONNECT": "On", "DISCONNECT": "Off"})
    wait_for(lambda: "CCD_EXPOSURE" in tools.properties(panel.rconn, south, CCD), timeout=30, what="CCD")
    tools.newnumbervector(panel.rconn, south, "CCD_EXPOSURE", CCD, {"CCD_EXPOSURE_VALUE": "0.1"})
    wait_for(lambda: sites()["south"]["frame"], timeout=30, what="the south site's newest frame")
    frame = sites()["south"]["frame"]
    assert (frame["device"], frame["property"], frame["element"]) == (CCD, "CCD1", "CCD1")
    assert sites()["south"]["connected"] == 1 and sites()["north"]["frame"] is None
    status, _, page = client.get("/")
    assert status.startswith("200")
    assert b"South dome" in page and b"North dome" in page and frame["file"].encode() in page
    assert b"href='/sites/north/'" in page and b"1 of 2 devices connected" in page
    # the frame is the south site's file, served by the south site's app only
    assert client.get(f"/sites/south/blobs/{frame['file']}")[0].startswith("200")
    assert client.get(f"/sites/north/blobs/{frame['file']}")[0].startswith("404")
    # a site whose bridge writes nothing: the site list says so
    west = read_health(panel.rconn, PanelSite("west", "west_", "west_to", "west_from"))
    assert not west["ok"] and "No bridge" in west["problems"][0] and west["devices"] == []


def test_the_web_service_serves_the_sites_of_its_configuration(panel, tmp_path):
    """The real indiredis-web daemon with the panel's web.ini: the site list at /, each site under
    /sites/<name>/."""
    port = free_port()
    ini = tmp_path / "web.ini"
    ini.write_text(f"[service]\nlisten_host = 127.0.0.1\nlisten_port = {port}\n" + panel.ini.read_text())
    web = start_daemon("web", ini, NotifySocket(tmp_path))
    try:
        wait_for(lambda: port_open(port), timeout=20, what="indiredis-web listening")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = urlencode({"user": "olga", "password": PASSWORD})
        connection.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
        answer = connection.getresponse()
        answer.read()
        cookie = (answer.getheader("Set-Cookie") or "").split(";")[0]
        assert answer.status == 303 and "Path=/;" in (answer.getheader("Set-Cookie") or ""), cookie
        connection.request("GET", "/api/sites", headers={"Cookie": cookie})
        answer = connection.getresponse()
        found = json.loads(answer.read())
        assert [site["name"] for site in found["sites"]] == list(SITES)
        assert all(site["devices"] == [CCD, TELESCOPE] for site in found["sites"])
        connection.request("GET", "/sites/south/device/CCD%20Simulator", headers={"Cookie": cookie})
        answer = connection.getresponse()
        assert answer.status == 200 and b"<h1>CCD Simulator</h1>" in answer.read()
        connection.close()
    finally:
        assert stop_daemon(web) == 0
    assert "serving the sites north, south" in (tmp_path / "web.log").read_text()


def test_a_panel_mounted_under_a_path_without_logins(panel):
    """make_sites_app(url="/indi") (behind a proxy's path), without users (open, as the quick start):
    every link carries the mount, a set carries the site's own CSRF cookie."""
    sites = [PanelSite(name, f"{name}_", f"{name}_to", f"{name}_from") for name in SITES]
    app = make_sites_app(panel.app.redis_host, sites, url="/indi")
    try:
        assert sum(site.cache.hub.streams_max for site in app.apps.values()) <= STREAMS_MAX
        client = Client(app)
        status, _, page = client.get("/indi/")
        assert status.startswith("200") and b"href='/indi/sites/south/'" in page
        assert client.get("/")[0].startswith("404") and client.get("/sites/north/")[0].startswith("404")
        status, _, page = client.get("/indi/sites/north/device/Telescope%20Simulator")
        assert status.startswith("200") and b"href='/indi/sites/north/device/CCD%20Simulator'" in page
        assert b"data-root='/indi/sites/north'" in page
        assert b"<a href='/indi/' class='sites' id='sites'>Sites</a>" in page  # back to the site list
        status, _, body = client.post(
            "/indi/sites/north/set/Telescope%20Simulator/CONNECTION", {"press": "CONNECT"}
        )
        assert status.startswith("200"), body
        wait_for(lambda: panel.connected("north"), timeout=30, what="north's telescope connected")
        assert not panel.connected("south")
        client.post("/indi/sites/north/set/Telescope%20Simulator/CONNECTION", {"press": "DISCONNECT"})
        wait_for(lambda: not panel.connected("north"), timeout=30, what="north's telescope disconnected")
    finally:
        app.close()


def test_sites_app_refuses_bad_sites():
    host = RedisServer(port=1)
    same = [PanelSite("a", "x_", "a_to", "a_from"), PanelSite("b", "x_", "b_to", "b_from")]
    with pytest.raises(ValueError, match="share keyprefix"):
        SitesApp(host, same)
    with pytest.raises(ValueError, match="at least one site"):
        SitesApp(host, [])


# -- the panel in Chromium --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory, panel):
    pytest.importorskip("selenium.webdriver")
    from tests.web.test_browser import start_chromium

    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    yield driver
    driver.quit()


def test_the_panel_in_a_browser(panel, browser):
    from selenium.webdriver.common.by import By

    from tests.web.test_browser import press, screenshot, show

    browser.get(f"{panel.url}/")
    assert browser.current_url.endswith("/login")  # one login for every site
    browser.find_element(By.NAME, "user").send_keys("olga")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#sitelist li.site"), what="the site list")
    rows = browser.find_elements(By.CSS_SELECTOR, "#sitelist li.site")
    assert [row.get_attribute("data-site") for row in rows] == list(SITES)
    assert "North dome" in rows[0].text and TELESCOPE in rows[0].text
    screenshot(browser, "sites-list")
    for site in SITES:  # each site's telescope page, reached from the site list
        browser.get(f"{panel.url}/")
        browser.find_element(By.CSS_SELECTOR, f"li.site[data-site='{site}'] a").click()
        wait_for(lambda s=site: browser.current_url.endswith(f"/sites/{s}/"), what=f"{site}'s devices")
        browser.find_element(
            By.CSS_SELECTOR, f"#devicelist a[href='/sites/{site}/device/Telescope%20Simulator']"
        ).click()
        wait_for(
            lambda: browser.find_elements(By.CSS_SELECTOR, ".prop[data-prop='CONNECTION']"),
            what=f"{site}'s telescope page",
        )
        assert browser.find_element(By.TAG_NAME, "h1").text == TELESCOPE
    # on the south site's page (the last opened): connect its telescope; the north one stays put
    assert not panel.connected("south") and not panel.connected("north")
    press(browser, show(browser, "CONNECTION").find_element(By.CSS_SELECTOR, "button[value='CONNECT']"))
    wait_for(lambda: panel.connected("south"), timeout=30, what="the south telescope connected")
    wait_for(
        lambda: (
            browser.find_element(By.CSS_SELECTOR, ".prop[data-prop='CONNECTION']").get_attribute("data-state")
            == "Ok"
        ),
        timeout=30,
        what="the page showing it connected",
    )
    assert not panel.connected("north")
    browser.get(f"{panel.url}/sites/north/device/Telescope%20Simulator")
    wait_for(
        lambda: browser.find_elements(
            By.CSS_SELECTOR, ".prop[data-prop='CONNECTION'] button[value='CONNECT']"
        ),
        what="north's telescope page",
    )
    button = browser.find_element(By.CSS_SELECTOR, ".prop[data-prop='CONNECTION'] button[value='CONNECT']")
    assert button.get_attribute("aria-pressed") != "true"  # the north telescope's page: not connected
    tools.newswitchvector(
        panel.rconn, panel.hosts["south"], "CONNECTION", TELESCOPE, {"CONNECT": "Off", "DISCONNECT": "On"}
    )
