"""The web client in Debian's headless Chromium, with real Redis and the simulators behind inditoredis.

Each test is a user's task at the telescope.  Driven by Selenium with Debian's
chromedriver.  Screenshots (desktop, phone, red theme) are saved under
``artifacts/`` (git-ignored).  The world (Redis, indiserver with the telescope
and CCD simulators, the bridge, the web server and one browser) is shared by
the module; the test that kills indiserver comes last.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import indiredis
from indiredis import tools
from indiredis.bridges import make_inditoredis
from indiredis.core.bridge import Bridge
from indiredis.hosts import RedisServer
from indiredis.indiwsgi import close_server, make_server, make_wsgi_app
from indiredis.indiwsgi.auth import User, hash_password
from tests.support.bridgethread import run_bridge
from tests.support.servers import IndiServerProcess, RedisProcess, free_port, wait_for

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import ElementClickInterceptedException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

ARTIFACTS = Path(__file__).parents[2] / "artifacts"
TELESCOPE = "Telescope Simulator"
CCD = "CCD Simulator"
COORD = "EQUATORIAL_EOD_COORD"
PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}


class World:
    def __init__(self, url: str, redis_host, rconn: redis.Redis, indiserver: IndiServerProcess) -> None:
        self.url, self.redis_host, self.rconn, self.indiserver = url, redis_host, rconn, indiserver


PANELS: dict[str, Any] = {}  # URL -> the WSGI app serving it (in this process)


@contextlib.contextmanager
def web_panel(
    bridge: Bridge, redis_host: RedisServer, blobs: Path, users: dict[str, User], **options: Any
) -> Iterator[str]:
    """The web panel served by waitress on a free port while ``bridge`` runs: its URL, once the bridge is
    ready (``options``: more arguments of make_wsgi_app)."""
    port = free_port()
    app = make_wsgi_app(redis_host, blobs, users=users, **options)
    server = make_server(app, host="127.0.0.1", port=port)  # as indiredis-web serves it
    thread = threading.Thread(target=server.run, daemon=True)
    PANELS[f"http://127.0.0.1:{port}"] = app
    with run_bridge(bridge):
        thread.start()
        wait_for(lambda: bridge.ready, what="the bridge ready")
        yield f"http://127.0.0.1:{port}"
        app.close()
        close_server(server)


@contextlib.contextmanager
def panel_world(blobs: Path, **panel_options: Any) -> Iterator[World]:
    """Redis, indiserver with the simulators, inditoredis and the web panel (``panel_options`` go to
    :func:`web_panel`), with the operator olga."""
    with RedisProcess() as redis_proc, IndiServerProcess() as indiserver:
        redis_host = indiredis.redis_server(host="127.0.0.1", port=redis_proc.port)
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port, socket_timeout=5)
        bridge = make_inditoredis(
            indiredis.indi_server("127.0.0.1", indiserver.port), redis_host, blob_folder=str(blobs)
        )
        users = {"olga": User("olga", "operator", hash_password(PASSWORD))}
        try:
            with web_panel(bridge, redis_host, blobs, users, **panel_options) as url:
                yield World(url, redis_host, rconn, indiserver)
        finally:
            rconn.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with panel_world(tmp_path_factory.mktemp("blobs")) as world:
        yield world


def start_chromium(profile: Path) -> Any:
    """Debian's Chromium, headless, driven by chromedriver, with its profile in ``profile``."""
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.fail("chromium and chromium-driver are missing (make test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,1000",
    ):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory, world):
    driver = start_chromium(tmp_path_factory.mktemp("chromium"))
    log_in(driver, world.url)
    yield driver
    driver.quit()


@pytest.fixture
def desktop(browser):
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.execute_script("try { localStorage.removeItem('indiredis-theme'); } catch (e) {}")
    return browser


def log_in(browser, url: str) -> None:
    browser.get(f"{url}/")
    assert browser.current_url.endswith("/login")  # the web client asks for a login first
    browser.find_element(By.NAME, "user").send_keys("olga")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait_for(lambda: browser.find_elements(By.LINK_TEXT, "Log out"), what="the device list after logging in")


def open_device(browser, world: World, device: str) -> None:
    wait_for(lambda: tools.properties(world.rconn, world.redis_host, device), what=f"{device} defined")
    browser.get(f"{world.url}/device/{device.replace(' ', '%20')}")
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, ".prop[data-prop='CONNECTION']"), what="device page"
    )


def block(browser, name: str):
    return browser.find_element(By.CSS_SELECTOR, f".prop[data-prop='{name}']")


def show(browser, name: str):
    """The property's block, with its group's tab selected."""
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, f".prop[data-prop='{name}']"), what=f"{name} shown"
    )
    group = browser.execute_script(
        "return arguments[0].closest('.group').getAttribute('data-group');", block(browser, name)
    )
    browser.find_element(By.CSS_SELECTOR, f".tabs a[data-group='{group}']").click()
    return block(browser, name)


def press(browser, button) -> None:
    """Click ``button`` as a user would: in the middle of the screen (the sticky tab bar may cover it
    where the last scroll left it, and a block swapped above it can move it)."""

    def clicked() -> bool:
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
        try:
            button.click()
        except ElementClickInterceptedException:
            return False
        return True

    wait_for(clicked, what="a click on the button")


def shown_value(browser, name: str, element: str) -> str:
    return block(browser, name).find_element(By.CSS_SELECTOR, f"output[data-element='{element}']").text


def connect(browser, world: World, device: str) -> None:
    """Connect the device with one click on its Connect button."""
    open_device(browser, world, device)
    connection = show(browser, "CONNECTION")
    button = connection.find_element(By.CSS_SELECTOR, "button[value='CONNECT']")
    if button.get_attribute("aria-pressed") != "true":
        button.click()
    wait_for(
        lambda: (
            block(browser, "CONNECTION").get_attribute("data-state") == "Ok"
            and block(browser, "CONNECTION")
            .find_element(By.CSS_SELECTOR, "button[value='CONNECT']")
            .get_attribute("aria-pressed")
            == "true"
        ),
        timeout=30,
        what=f"{device} connected",
    )


def screenshot(browser, name: str) -> Path:
    """A full-page PNG under artifacts/."""
    height = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"]
    width = browser.execute_script("return window.innerWidth;")  # the page as laid out without a scrollbar
    clip = {"x": 0, "y": 0, "width": width, "height": min(height, 5000), "scale": 1}
    data = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(data["data"]))
    return path


def test_connect_the_telescope_with_one_click(world, desktop):
    open_device(desktop, world, TELESCOPE)
    desktop.execute_script("window.pageMark = 'no reload';")
    show(desktop, "CONNECTION").find_element(By.CSS_SELECTOR, "button[value='CONNECT']").click()
    # the coordinates appear once the simulator is connected: the page learns them without a reload
    wait_for(
        lambda: desktop.find_elements(By.CSS_SELECTOR, f".prop[data-prop='{COORD}']"),
        timeout=30,
        what="the coordinates property in the page",
    )
    wait_for(lambda: block(desktop, "CONNECTION").get_attribute("data-state") == "Ok", what="connected")
    assert desktop.execute_script("return window.pageMark;") == "no reload"
    # groups are tabs in the driver's order; RA comes before DEC as the driver defined them
    tabs = [a.text for a in desktop.find_elements(By.CSS_SELECTOR, ".tabs a")]
    assert tabs[0] == "Main Control"
    names = [
        e.get_attribute("data-element")
        for e in block(desktop, COORD).find_elements(By.CSS_SELECTOR, "output")
    ]
    assert names == ["RA", "DEC"]


def debug_off(world: World) -> None:
    """The telescope without its debugging properties, as the tests that turn DEBUG on expect it (a test
    that failed with DEBUG on made the next one wait in vain for the properties DEBUG defines)."""
    if "DEBUG_LEVEL" not in tools.properties(world.rconn, world.redis_host, TELESCOPE):
        return
    tools.newswitchvector(
        world.rconn, world.redis_host, "DEBUG", TELESCOPE, {"ENABLE": "Off", "DISABLE": "On"}
    )
    wait_for(
        lambda: "DEBUG_LEVEL" not in tools.properties(world.rconn, world.redis_host, TELESCOPE),
        what="the debugging properties deleted",
    )


def test_slew_with_sexagesimal_input_that_survives_a_new_property(world, desktop):
    debug_off(world)
    connect(desktop, world, TELESCOPE)
    desktop.execute_script("window.indiredisStates = [];")
    coordinates = show(desktop, COORD)
    ra = coordinates.find_element(By.NAME, "RA")
    ra.clear()
    ra.send_keys("6:00:00")  # typed, not sent yet
    before = set(tools.properties(world.rconn, world.redis_host, TELESCOPE))
    # another user turns debugging on: the driver defines new properties while RA is being typed
    tools.newswitchvector(
        world.rconn, world.redis_host, "DEBUG", TELESCOPE, {"ENABLE": "On", "DISABLE": "Off"}
    )
    added = wait_for(
        lambda: set(tools.properties(world.rconn, world.redis_host, TELESCOPE)) - before,
        what="a property added by the driver",
    )
    wait_for(
        lambda: desktop.find_elements(By.CSS_SELECTOR, f".prop[data-prop='{sorted(added)[0]}']"),
        what="the new property in the page",
    )
    assert coordinates.find_element(By.NAME, "RA").get_attribute("value") == "6:00:00"
    dec = coordinates.find_element(By.NAME, "DEC")
    dec.clear()
    dec.send_keys("+60:00:00")
    press(desktop, coordinates.find_element(By.CSS_SELECTOR, "button.set"))
    wait_for(
        lambda: shown_value(desktop, COORD, "DEC").lstrip("+ ").startswith("60:00"),
        timeout=90,
        interval=0.2,
        what="the new declination in the page",
    )

    def coordinate_states() -> list[str]:
        states = desktop.execute_script("return window.indiredisStates;")
        return [s.split(":", 1)[1] for s in states if s.startswith(COORD + ":")]

    wait_for(
        lambda: (
            "Busy" in coordinate_states() and "Ok" in coordinate_states()[coordinate_states().index("Busy") :]
        ),
        timeout=30,
        what=f"{COORD} Busy then Ok",
    )
    assert shown_value(desktop, COORD, "RA").strip().startswith("6:00")
    tools.newswitchvector(
        world.rconn, world.redis_host, "DEBUG", TELESCOPE, {"ENABLE": "Off", "DISABLE": "On"}
    )
    show(desktop, "CONNECTION")
    screenshot(desktop, "web-telescope-desktop")


def last_event(browser) -> int:
    """The id of the newest event the page received (0 before any)."""
    ids = browser.execute_script(
        "return window.indiredisLog.map(function (l) { var m = / event (\\d+) /.exec(l);"
        " return m ? Number(m[1]) : 0; });"
    )
    return max(ids, default=0)


def test_the_field_being_typed_into_keeps_the_focus_while_the_device_changes(world, desktop):
    """The mount reports its coordinates four times a second; applying them must leave the focus in the
    field the user types into (the page moved every group on every change, which took the focus away:
    keys typed just then were lost, the typed RA of the flaky slew test)."""
    connect(desktop, world, TELESCOPE)
    ra = show(desktop, COORD).find_element(By.NAME, "RA")
    desktop.execute_script("arguments[0].focus();", ra)
    assert desktop.execute_script("return document.activeElement === arguments[0];", ra)
    seen = last_event(desktop)
    wait_for(lambda: last_event(desktop) >= seen + 3, what="three more events applied")
    assert desktop.execute_script("return document.activeElement === arguments[0];", ra)


def test_abort_in_one_click(world, desktop):
    connect(desktop, world, TELESCOPE)
    coordinates = show(desktop, COORD)
    for name, value in (("RA", "18:00:00"), ("DEC", "-60")):
        field = coordinates.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    desktop.execute_script("window.indiredisStates = [];")
    press(desktop, coordinates.find_element(By.CSS_SELECTOR, "button.set"))
    wait_for(
        lambda: f"{COORD}:Busy" in desktop.execute_script("return window.indiredisStates;"),
        what=f"slewing (the page says: {block(desktop, COORD).text})",
    )
    show(desktop, "TELESCOPE_ABORT_MOTION").find_element(By.CSS_SELECTOR, "button[value='ABORT']").click()
    wait_for(lambda: block(desktop, COORD).get_attribute("data-state") != "Busy", what="the slew aborted")
    # the page shows where the mount stopped (the driver's reading), not the target: an abort within
    # the simulator's first step leaves DEC at the +60:00:00 it started from, which is right too
    stopped = tools.elements_dict(world.rconn, world.redis_host, "DEC", COORD, TELESCOPE)[
        "formatted_number"
    ].strip()
    assert not stopped.startswith("-60:00")
    wait_for(
        lambda: shown_value(desktop, COORD, "DEC") == stopped,
        what=f"the DEC where the mount stopped, {stopped}",
    )


def test_a_text_vector_set_keeps_its_other_fields(world, desktop):
    open_device(desktop, world, TELESCOPE)
    before = {
        e: tools.elements_dict(world.rconn, world.redis_host, e, "ACTIVE_DEVICES", TELESCOPE)["value"]
        for e in tools.elements(world.rconn, world.redis_host, "ACTIVE_DEVICES", TELESCOPE)
    }
    assert before["ACTIVE_GPS"]  # the field that was blanked before
    active = show(desktop, "ACTIVE_DEVICES")
    dome = active.find_element(By.NAME, "ACTIVE_DOME")
    dome.clear()
    dome.send_keys("Dome Simulator 2")
    press(desktop, active.find_element(By.CSS_SELECTOR, "button.set"))
    wait_for(lambda: shown_value(desktop, "ACTIVE_DEVICES", "ACTIVE_DOME") == "Dome Simulator 2", what="set")
    after = {
        e: tools.elements_dict(world.rconn, world.redis_host, e, "ACTIVE_DEVICES", TELESCOPE)["value"]
        for e in before
    }
    assert after == {**before, "ACTIVE_DOME": "Dome Simulator 2"}


HOLD_BLOCKS = """
window.heldBlocks = [];
var pass = window.fetch;
window.fetch = function (url, options) {
  if (String(url).indexOf("/api/blocks/") < 0) { return pass(url, options); }
  window.fetch = pass;  // only the first is held
  return new Promise(function (resolve) {
    window.heldBlocks.push(function () { resolve(pass(url, options)); });
  });
};
"""


def test_a_whole_state_that_comes_while_blocks_are_fetched_is_not_undone_by_them(world, desktop):
    """New properties make the page fetch their blocks; a whole state of the device and a change that
    arrive meanwhile must still show once the blocks come (the page applied the state it had when it
    asked for them, an older one: the change vanished until the property changed again)."""
    debug_off(world)
    connect(desktop, world, TELESCOPE)
    active = show(desktop, "ACTIVE_DEVICES")
    before = shown_value(desktop, "ACTIVE_DEVICES", "ACTIVE_DOME")
    after = before + " 2" if not before.endswith(" 2") else before[:-2]
    wholes = "return window.indiredisLog.filter(function (l) { return l.indexOf('\"full\":') >= 0; }).length;"
    seen = desktop.execute_script(wholes)
    desktop.execute_script(HOLD_BLOCKS)
    tools.newswitchvector(
        world.rconn, world.redis_host, "DEBUG", TELESCOPE, {"ENABLE": "On", "DISABLE": "Off"}
    )
    wait_for(
        lambda: desktop.execute_script("return window.heldBlocks.length;"), what="the new blocks asked for"
    )
    tools.newswitchvector(
        world.rconn, world.redis_host, "DEBUG", TELESCOPE, {"ENABLE": "Off", "DISABLE": "On"}
    )
    wait_for(lambda: desktop.execute_script(wholes) >= seen + 2, what="the second whole state of the device")
    try:
        tools.newtextvector(
            world.rconn, world.redis_host, "ACTIVE_DEVICES", TELESCOPE, {"ACTIVE_DOME": after}
        )
        wait_for(lambda: shown_value(desktop, "ACTIVE_DEVICES", "ACTIVE_DOME") == after, what="the change")
        desktop.execute_script("window.heldBlocks.forEach(function (go) { go(); });")
        wait_for(
            lambda: any(
                "blocks received" in line for line in desktop.execute_script("return window.indiredisLog;")
            ),
            what="the blocks received",
        )
        assert shown_value(desktop, "ACTIVE_DEVICES", "ACTIVE_DOME") == after
        assert active.is_displayed()
    finally:
        tools.newtextvector(
            world.rconn, world.redis_host, "ACTIVE_DEVICES", TELESCOPE, {"ACTIVE_DOME": before}
        )
        wait_for(
            lambda: shown_value(desktop, "ACTIVE_DEVICES", "ACTIVE_DOME") == before, what="the dome again"
        )


def test_a_ccd_exposure_shows_its_preview_and_downloads_its_fits(world, desktop):
    connect(desktop, world, CCD)
    exposure = show(desktop, "CCD_EXPOSURE")
    field = exposure.find_element(By.NAME, "CCD_EXPOSURE_VALUE")
    field.clear()
    field.send_keys("1")
    press(desktop, exposure.find_element(By.CSS_SELECTOR, "button.set"))
    image = wait_for(
        lambda: [
            img
            for img in desktop.find_elements(By.CSS_SELECTOR, ".latest img")
            if desktop.execute_script("return arguments[0].complete && arguments[0].naturalWidth;", img)
        ],
        timeout=60,
        what="the preview of the exposure",
    )[0]
    assert "/preview/" in image.get_attribute("src")
    link = wait_for(
        lambda: desktop.find_elements(By.CSS_SELECTOR, ".prop[data-prop='CCD1'] .files a"),
        what="the file list",
    )[0]
    head = desktop.execute_script(
        "return fetch(arguments[0]).then(r => r.arrayBuffer())"
        ".then(b => String.fromCharCode.apply(null, new Uint8Array(b.slice(0, 6))));",
        link.get_attribute("href"),
    )
    assert head == "SIMPLE"  # a FITS file
    screenshot(desktop, "web-ccd-desktop")


def test_the_red_theme_applies(world, desktop):
    connect(desktop, world, CCD)
    button = desktop.find_element(By.ID, "theme")
    while desktop.find_element(By.TAG_NAME, "html").get_attribute("data-theme") != "red":
        button.click()
    assert desktop.execute_script("return getComputedStyle(document.body).backgroundColor;") == "rgb(0, 0, 0)"
    desktop.refresh()  # remembered by the browser
    wait_for(lambda: desktop.find_elements(By.CSS_SELECTOR, ".prop"), what="the page again")
    assert desktop.find_element(By.TAG_NAME, "html").get_attribute("data-theme") == "red"
    show(desktop, "CCD_EXPOSURE")
    screenshot(desktop, "web-ccd-red")
    connect(desktop, world, TELESCOPE)
    show(desktop, COORD)
    screenshot(desktop, "web-telescope-red")


def test_a_phone_sized_window_has_no_horizontal_scroll(world, browser):
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    browser.execute_script("try { localStorage.removeItem('indiredis-theme'); } catch (e) {}")
    try:
        for device, first in ((TELESCOPE, COORD), (CCD, "CCD_EXPOSURE")):
            connect(browser, world, device)
            for tab in browser.find_elements(By.CSS_SELECTOR, ".tabs a"):
                browser.execute_script("arguments[0].click();", tab)
                width = browser.execute_script(
                    "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];"
                )
                assert width[0] <= width[1], (device, tab.text, width)
            show(browser, first)
            screenshot(browser, f"web-{'telescope' if device == TELESCOPE else 'ccd'}-phone")
        browser.find_element(By.ID, "theme").click()
        browser.find_element(By.ID, "theme").click()  # light, dark, red
        screenshot(browser, "web-ccd-phone-red")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_page_refused_a_stream_polls_then_tries_the_stream_again(world, desktop):
    hub = PANELS[world.url].cache.hub
    # the page's 30 s before trying the stream again made 0.5 s (timers of 30 s or more only)
    fast = desktop.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {
            "source": "(function () { var later = window.setTimeout; window.setTimeout = "
            "function (f, ms) { return later(f, ms >= 30000 ? 500 : ms); }; })();"
        },
    )
    saved = hub.streams_max
    hub.streams_max = 0  # every stream refused (503)
    try:
        open_device(desktop, world, TELESCOPE)
        polled = "return performance.getEntriesByType('resource').some(function (e) {"
        polled += " return e.name.indexOf('/api/device/') >= 0; });"
        wait_for(lambda: desktop.execute_script(polled), what="the page polling its device")
        assert desktop.execute_script("return window.indiredisEvents") == 0
        hub.streams_max = saved
        wait_for(lambda: desktop.execute_script("return window.indiredisEvents") > 0, what="the stream again")
        assert hub.streams >= 1
    finally:
        hub.streams_max = saved
        desktop.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": fast["identifier"]}
        )


def test_killing_indiserver_shows_the_stale_banner(world, desktop):
    open_device(desktop, world, TELESCOPE)
    assert not desktop.find_element(By.ID, "banner").is_displayed()
    world.indiserver.kill()
    wait_for(lambda: desktop.find_element(By.ID, "banner").is_displayed(), timeout=5, what="the stale banner")
    assert "down" in desktop.find_element(By.ID, "banner").text
    assert "stale" in desktop.find_element(By.TAG_NAME, "body").get_attribute("class")
    screenshot(desktop, "web-telescope-stale")
