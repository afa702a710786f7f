"""A night at the telescope with the web panel, in Debian's headless Chromium (issue 28).

Real Redis, indiserver with the telescope and CCD simulators, inditoredis and the web server
(the browser test's world and browser, one of each for this module).  Each test is one of the
issue's acceptance points; screenshots go under ``artifacts/``.
"""

from __future__ import annotations

import re

import pytest

from indiredis import tools
from indiredis.protocol.numbers import format_number
from tests.support.servers import wait_for
from tests.support.subscriber import Subscriber
from tests.web import test_browser as web
from tests.web.test_browser import CCD, TELESCOPE, block, connect, press, screenshot, show, shown_value

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

browser, desktop = web.browser, web.desktop  # the browser test's, in this module's world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The browser test's world (Redis, indiserver with the simulators, inditoredis, the web server), with
    the history keeping a value every 0.05 s instead of every second, so that a graph has more points
    than the key space's 50 kept values within seconds."""
    with web.panel_world(tmp_path_factory.mktemp("blobs"), history_interval=0.05) as world:
        yield world


def file_count(browser) -> int:
    return len(browser.find_elements(By.CSS_SELECTOR, ".prop[data-prop='CCD1'] .files li"))


def a_frame(browser, world) -> None:
    """At least one frame in the CCD's file list: a short exposure if no test of this world took one
    (the tests may run in any order, or on another worker with a world of its own)."""
    connect(browser, world, CCD)
    if file_count(browser) == 0:
        values = {"CCD_EXPOSURE_VALUE": "0.1"}
        tools.newnumbervector(world.rconn, world.redis_host, "CCD_EXPOSURE", CCD, values)
    wait_for(lambda: file_count(browser) > 0, timeout=60, what="a frame")


def test_a_repeated_exposure_takes_one_click(world, desktop):
    connect(desktop, world, CCD)
    exposure = show(desktop, "CCD_EXPOSURE")
    expose = exposure.find_element(By.CSS_SELECTOR, "button.set")
    assert expose.text == "Expose"
    field = exposure.find_element(By.NAME, "CCD_EXPOSURE_VALUE")
    field.clear()
    field.send_keys("2")
    before = file_count(desktop)
    expose.click()
    wait_for(lambda: file_count(desktop) > before, timeout=60, what="the first frame")
    # the countdown went to 0 beside it, the duration typed stays: the target
    assert shown_value(desktop, "CCD_EXPOSURE", "CCD_EXPOSURE_VALUE") in ("0", "0.00", "0.000")
    duration = block(desktop, "CCD_EXPOSURE").find_element(By.NAME, "CCD_EXPOSURE_VALUE")
    assert duration.get_attribute("value") == "2"
    frames = file_count(desktop)
    press(desktop, block(desktop, "CCD_EXPOSURE").find_element(By.CSS_SELECTOR, "button.set"))  # no retyping
    wait_for(
        lambda: block(desktop, "CCD_EXPOSURE").find_element(By.CSS_SELECTOR, "progress").is_displayed(),
        timeout=30,
        what="the progress bar of the second exposure",
    )
    wait_for(lambda: file_count(desktop) > frames, timeout=60, what="the repeated frame")
    assert "out of bounds" not in block(desktop, "CCD_EXPOSURE").text


BRIGHTNESS = """
var img = arguments[0], canvas = document.createElement("canvas");
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
var context = canvas.getContext("2d");
context.drawImage(img, 0, 0);
var data = context.getImageData(0, 0, canvas.width, canvas.height).data, total = 0;
for (var i = 0; i < data.length; i += 4) { total += data[i]; }
return total / (data.length / 4);
"""


def test_the_viewer_stretches_zooms_and_tells_the_statistics_and_header(world, desktop):
    a_frame(desktop, world)
    open_viewer = desktop.find_element(By.CSS_SELECTOR, ".latest .open-viewer")
    wait_for(open_viewer.is_displayed, what="the latest image")
    open_viewer.click()
    viewer = desktop.find_element(By.ID, "viewer")
    image = viewer.find_element(By.CSS_SELECTOR, "img.vimg")

    def loaded() -> str:
        return viewer.get_attribute("data-loaded") or ""

    first = wait_for(loaded, what="the view")
    stats = wait_for(lambda: viewer.find_element(By.CSS_SELECTOR, ".stats").text, what="the statistics")
    for name in ("Min", "Max", "Mean", "Median", "Std dev"):
        assert name in stats
    header = viewer.find_element(By.CSS_SELECTOR, ".fitsheader pre").get_attribute("textContent")
    assert header.startswith("SIMPLE") and "NAXIS1" in header
    asinh = desktop.execute_script(BRIGHTNESS, image)
    screenshot(desktop, "web-ccd-viewer")
    # a log stretch with the white point lowered brightens the image
    from selenium.webdriver.support.ui import Select

    Select(viewer.find_element(By.CSS_SELECTOR, "select.stretch")).select_by_value("log")
    white = viewer.find_element(By.CSS_SELECTOR, "input.white")
    black = float(viewer.find_element(By.CSS_SELECTOR, "input.black").get_attribute("value"))
    level = black + (float(white.get_attribute("value")) - black) / 4
    white.clear()
    white.send_keys(f"{level:.6g}\n")
    wait_for(lambda: loaded() != first and "stretch=log" in image.get_attribute("src"), what="the log view")
    wait_for(lambda: desktop.execute_script(BRIGHTNESS, image) > asinh + 10, what="a brighter image")
    # zoom in: a region of the frame at twice the scale
    stretched = loaded()
    region_width_before = region_width(image)
    viewer.find_element(By.CSS_SELECTOR, "button.zin").click()
    # a narrower region of the frame (the view of the white point typed above may come first)
    wait_for(lambda: region_width(image) < region_width_before / 1.5, what="the zoomed view")
    assert loaded() != stretched
    viewer.find_element(By.CSS_SELECTOR, "button.vclose").click()


def region_width(image) -> int:
    """The width, in frame pixels, of the region a view shows (its w= parameter)."""
    return int(re.search(r"[?&]w=(\d+)", image.get_attribute("src")).group(1))


def test_a_cooling_setpoint_stays_while_the_temperature_moves(world, desktop):
    connect(desktop, world, CCD)
    cooling = show(desktop, "CCD_TEMPERATURE")
    start = shown_value(desktop, "CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE")
    field = cooling.find_element(By.NAME, "CCD_TEMPERATURE_VALUE")
    field.clear()
    field.send_keys("-10")
    press(desktop, cooling.find_element(By.CSS_SELECTOR, "button.set"))
    wait_for(
        lambda: shown_value(desktop, "CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE") not in (start, "-10.00"),
        timeout=30,
        what="the temperature moving",
    )
    field = block(desktop, "CCD_TEMPERATURE").find_element(By.NAME, "CCD_TEMPERATURE_VALUE")
    assert field.get_attribute("value") == "-10"
    assert field.get_attribute("data-target") == "-10"
    desktop.refresh()  # the browser remembers the target
    field = wait_for(
        lambda: block(desktop, "CCD_TEMPERATURE").find_element(By.NAME, "CCD_TEMPERATURE_VALUE"),
        what="the page again",
    )
    wait_for(lambda: field.get_attribute("data-target") == "-10", what="the target after a reload")
    # a field never touched follows the current value
    exposure = block(desktop, "CCD_EXPOSURE").find_element(By.NAME, "CCD_EXPOSURE_VALUE")
    assert exposure.get_attribute("data-target") in (None, "2")


def test_the_drivers_messages_stand_out_from_the_bridges_notes(world, desktop):
    connect(desktop, world, CCD)
    wait_for(lambda: desktop.find_elements(By.CSS_SELECTOR, "#messages li.driver"), what="a driver's message")
    show(desktop, "CONNECTION").find_element(By.CSS_SELECTOR, "button[value='DISCONNECT']").click()
    # a disconnection deletes many properties: the bridge's notes, more than the key space keeps (5)
    wait_for(
        lambda: len(desktop.find_elements(By.CSS_SELECTOR, "#messages li.bridge")) > 5,
        timeout=30,
        what="the bridge's notes",
    )
    driver = desktop.find_elements(By.CSS_SELECTOR, "#messages li.driver")
    assert driver  # not pushed out by the notes
    note = desktop.find_element(By.CSS_SELECTOR, "#messages li.bridge")
    assert "deleted from device" in note.text
    assert float(desktop.execute_script("return getComputedStyle(arguments[0]).opacity;", note)) < 1  # dimmed
    desktop.find_element(By.ID, "hidebridge").click()
    assert not note.is_displayed() and driver[0].is_displayed()
    desktop.refresh()  # a new page gets the long log too (kept by the web process), and the choice
    wait_for(
        lambda: len(desktop.find_elements(By.CSS_SELECTOR, "#messages li")) > 6, what="the long log again"
    )
    assert desktop.find_element(By.ID, "hidebridge").is_selected()
    assert not desktop.find_element(By.CSS_SELECTOR, "#messages li.bridge").is_displayed()
    desktop.find_element(By.ID, "hidebridge").click()
    connect(desktop, world, CCD)


AXES = "MOUNT_AXES"
NUMBER = re.compile(r'<oneNumber name="([^"]*)"[^>]*>\s*([^<]*?)\s*</oneNumber>')
RECORD = """
window.shown = {};
arguments[0].querySelectorAll("output[data-element]").forEach(function (output) {
  var name = output.getAttribute("data-element");
  window.shown[name] = [output.textContent];
  new MutationObserver(function () { window.shown[name].push(output.textContent); })
    .observe(output, {childList: true, characterData: true, subtree: true});
});
"""


def test_every_update_of_a_tracking_mount_reaches_the_page(world, desktop):
    connect(desktop, world, TELESCOPE)
    for name, values in (
        ("TELESCOPE_PARK", {"PARK": "Off", "UNPARK": "On"}),
        ("TELESCOPE_TRACK_STATE", {"TRACK_ON": "On", "TRACK_OFF": "Off"}),
    ):
        tools.newswitchvector(world.rconn, world.redis_host, name, TELESCOPE, values)
    axes = show(desktop, AXES)
    formats = {
        e: tools.elements_dict(world.rconn, world.redis_host, e, AXES, TELESCOPE)["format"]
        for e in tools.elements(world.rconn, world.redis_host, AXES, TELESCOPE)
    }
    desktop.execute_script(RECORD, axes)  # every text the page's cells show from now on
    subscriber = Subscriber(world.rconn)
    try:

        def published() -> list[dict[str, str]]:
            found = []
            for _, data in list(subscriber.items):
                if f'name="{AXES}"'.encode() in data[:300] and data.startswith(b"<set"):
                    raw = NUMBER.findall(data.decode())
                    found.append({e: format_number(v, formats[e]).strip() for e, v in raw})
            return found

        updates = wait_for(lambda: len(published()) >= 16 and published(), timeout=30, what="16 updates")
        assert len({tuple(sorted(u.items())) for u in updates}) >= 8  # the values do change (tracking)

        def missing() -> list[tuple[str, str]]:
            shown = desktop.execute_script("return window.shown;")
            return [(e, text) for update in updates for e, text in update.items() if text not in shown[e]]

        wait_for(lambda: not missing(), what="every update shown")
    finally:
        subscriber.close()
    assert desktop.execute_script("return window.indiredisEvents;") > 16  # pushed, not polled


def test_a_history_graph_spans_more_than_the_values_the_key_space_keeps(world, desktop):
    connect(desktop, world, TELESCOPE)
    for name, values in (
        ("TELESCOPE_PARK", {"PARK": "Off", "UNPARK": "On"}),
        ("TELESCOPE_TRACK_STATE", {"TRACK_ON": "On", "TRACK_OFF": "Off"}),
    ):
        tools.newswitchvector(world.rconn, world.redis_host, name, TELESCOPE, values)
    # tracking, the axes move four times a second (RA/DEC change only while slewing)
    axis = sorted(tools.elements(world.rconn, world.redis_host, AXES, TELESCOPE))[0]
    key = f"{world.redis_host.keyprefix}history:{axis}:{AXES}:{TELESCOPE}"
    wait_for(lambda: world.rconn.xlen(key) > 60, timeout=60, interval=0.5, what="60 values of an axis kept")
    button = desktop.find_element(By.CSS_SELECTOR, "#graphs .quick button[data-graph='EQUATORIAL_EOD_COORD']")
    assert button.text == "Mount RA/DEC"  # a default graph, one click away
    button.click()
    wait_for(lambda: len(rows(desktop)) == 2, what="the RA and DEC graphs")
    show(desktop, AXES).find_element(By.CSS_SELECTOR, "button.graph").click()  # any number vector
    wait_for(lambda: min(rows(desktop)) > 50, what="axis graphs of more than the 50 values a vector keeps")
    assert desktop.find_elements(By.CSS_SELECTOR, "#graphs .plot canvas")  # drawn by dygraphs
    screenshot(desktop, "web-telescope-graph")


def rows(browser) -> list[int]:
    """The number of points of each graph shown."""
    return browser.execute_script("return window.indiredisGraphs.map(function (g) { return g.numRows(); });")


def test_park_asks_first(world, desktop):
    connect(desktop, world, TELESCOPE)
    park = show(desktop, "TELESCOPE_PARK").find_element(By.CSS_SELECTOR, "button[value='PARK']")
    park.click()
    alert = wait_for(lambda: desktop.switch_to.alert, what="the confirmation")
    assert alert.text == "Park the telescope?"
    alert.dismiss()
    assert block(desktop, "TELESCOPE_PARK").find_element(By.CSS_SELECTOR, ".note").text == ""
    park.click()
    wait_for(lambda: desktop.switch_to.alert, what="the confirmation").accept()

    def parking() -> bool:
        park = tools.elements_dict(world.rconn, world.redis_host, "PARK", "TELESCOPE_PARK", TELESCOPE)
        return park["value"] == "On" or block(desktop, "TELESCOPE_PARK").get_attribute("data-state") == "Busy"

    wait_for(
        parking,
        timeout=30,
        what="parking",
    )
    screenshot(desktop, "web-telescope-park")
    # unparked again once parked: the simulator remembers its park state in $HOME/.indi for the
    # other modules (it refuses to unpark while it slews to the park position)
    wait_for(
        lambda: (
            tools.elements_dict(world.rconn, world.redis_host, "PARK", "TELESCOPE_PARK", TELESCOPE)["value"]
            == "On"
            and tools.attributes_dict(world.rconn, world.redis_host, "TELESCOPE_PARK", TELESCOPE)["state"]
            == "Ok"
        ),
        timeout=90,
        what="parked",
    )
    tools.newswitchvector(
        world.rconn, world.redis_host, "TELESCOPE_PARK", TELESCOPE, {"PARK": "Off", "UNPARK": "On"}
    )
    wait_for(
        lambda: (
            tools.elements_dict(world.rconn, world.redis_host, "UNPARK", "TELESCOPE_PARK", TELESCOPE)["value"]
            == "On"
        ),
        timeout=60,
        what="unparked",
    )


LAYOUT = """
function box(selector) {
  var found = document.querySelector(selector), b = found.getBoundingClientRect();
  return {top: b.top + window.scrollY, height: b.height, bottom: b.bottom + window.scrollY};
}
return {tabs: box(".tabs"), header: box("header.top"), actions: box(".quickactions"), latest: box(".latest"),
        controls: box(".controls"), tabsPosition: getComputedStyle(document.querySelector(".tabs")).position,
        navLine: document.querySelector("nav.devices a").getBoundingClientRect().height,
        scroll: [document.documentElement.scrollWidth, document.documentElement.clientWidth]};
"""


def test_the_phone_layout_fits_a_390_by_844_screen(world, browser):
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", web.PHONE)
    browser.execute_script("try { localStorage.removeItem('indiredis-theme'); } catch (e) {}")
    try:
        connect(browser, world, CCD)
        wait_for(
            lambda: (
                browser.find_element(By.CSS_SELECTOR, ".quickactions").is_displayed()
                and browser.find_element(By.CSS_SELECTOR, ".latest").is_displayed()
            ),
            what="the actions and the latest image",
        )
        layout = browser.execute_script(LAYOUT)
        assert layout["tabs"]["height"] <= 0.10 * 844, layout  # one row that scrolls sideways
        assert layout["tabsPosition"] != "sticky"  # it scrolls away with the page
        assert layout["header"]["height"] <= 2 * layout["navLine"] + 16, layout  # two lines
        assert layout["actions"]["bottom"] <= 844, layout  # at hand without scrolling
        assert layout["latest"]["top"] < layout["controls"]["top"], layout  # before the properties
        assert layout["scroll"][0] <= layout["scroll"][1]
        quick = browser.find_element(By.CSS_SELECTOR, ".quickactions button.action")
        assert quick.text == "Expose"
        browser.execute_script("window.scrollTo(0, 0);")
        screenshot(browser, "web-ccd-phone-top")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


STAGE = """
var stage = document.querySelector(".stage");
return [document.querySelector(".vimg").src, stage.clientWidth, stage.clientHeight];
"""


def open_graph(browser, name: str) -> None:
    """Click the property's Graph button (again if the page swapped the block under the click)."""

    def opened() -> bool:
        if browser.find_element(By.CSS_SELECTOR, "#graphs .history").is_displayed():
            return True
        show(browser, name).find_element(By.CSS_SELECTOR, "button.graph").click()
        return False

    wait_for(opened, what=f"the graph of {name}")


def viewport(browser, name: str) -> None:
    """What the screen shows, under artifacts/."""
    web.ARTIFACTS.mkdir(exist_ok=True)
    browser.get_screenshot_as_file(str(web.ARTIFACTS / f"{name}.png"))


@pytest.mark.parametrize("theme", ["light", "red"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_screenshots_of_the_panel(world, browser, theme, size):
    if size == "phone":
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", web.PHONE)
    else:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.execute_script(f"localStorage.setItem('indiredis-theme', '{theme}');")
    try:
        connect(browser, world, TELESCOPE)
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("data-theme") == theme
        show(browser, "EQUATORIAL_EOD_COORD")
        browser.execute_script("window.scrollTo(0, 0);")
        screenshot(browser, f"web-telescope-{size}-{theme}")
        open_graph(browser, AXES)
        try:
            wait_for(lambda: rows(browser), timeout=30, what="the graphs")
        except TimeoutError as exc:
            note = browser.find_element(By.CSS_SELECTOR, ".graphnote").text
            raise AssertionError(f"{exc}: {note!r}, {rows(browser)}") from None
        browser.execute_script("document.getElementById('graphs').scrollIntoView();")
        viewport(browser, f"web-graph-{size}-{theme}")
        a_frame(browser, world)
        button = browser.find_element(By.CSS_SELECTOR, ".latest .open-viewer")
        wait_for(button.is_displayed, what="the latest image")
        button.click()
        viewer = browser.find_element(By.ID, "viewer")
        try:
            wait_for(lambda: viewer.get_attribute("data-loaded"), timeout=30, what="the view")
        except TimeoutError as exc:
            note = viewer.find_element(By.CSS_SELECTOR, ".vnote").text
            where = browser.execute_script(STAGE)
            raise AssertionError(f"{exc}: {note!r} {where}") from None
        wait_for(
            lambda: viewer.find_element(By.CSS_SELECTOR, ".stats").text, timeout=30, what="the statistics"
        )
        viewport(browser, f"web-ccd-viewer-{size}-{theme}")
        viewer.find_element(By.CSS_SELECTOR, "button.vclose").click()
        browser.execute_script("window.scrollTo(0, 0);")
        viewport(browser, f"web-ccd-{size}-{theme}")
    finally:
        browser.execute_script("localStorage.removeItem('indiredis-theme');")
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
