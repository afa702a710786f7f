"""A night at the telescope with the web panel, in Debian's headless Chromium (issue 28).

Real Redis, indiserver with the telescope and CCD simulators, inditoredis and the web server
(the browser test's world and browser, one of each for this module).  Each test is one of the
issue's acceptance points; screenshots go under ``artifacts/``.
"""

from __future__ import annotations

import pytest

from indiredis import tools
from tests.support.servers import wait_for
from tests.web import test_browser as web
from tests.web.test_browser import CCD, TELESCOPE, block, connect, screenshot, show, shown_value

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

world, browser, desktop = web.world, web.browser, web.desktop  # a world of this module's own


def file_count(browser) -> int:
    return len(browser.find_elements(By.CSS_SELECTOR, ".prop[data-prop='CCD1'] .files li"))


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
    block(desktop, "CCD_EXPOSURE").find_element(By.CSS_SELECTOR, "button.set").click()  # no retyping
    wait_for(
        lambda: block(desktop, "CCD_EXPOSURE").find_element(By.CSS_SELECTOR, "progress").is_displayed(),
        timeout=30,
        what="the progress bar of the second exposure",
    )
    wait_for(lambda: file_count(desktop) > frames, timeout=60, what="the repeated frame")
    assert "out of bounds" not in block(desktop, "CCD_EXPOSURE").text


def test_a_cooling_setpoint_stays_while_the_temperature_moves(world, desktop):
    connect(desktop, world, CCD)
    cooling = show(desktop, "CCD_TEMPERATURE")
    start = shown_value(desktop, "CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE")
    field = cooling.find_element(By.NAME, "CCD_TEMPERATURE_VALUE")
    field.clear()
    field.send_keys("-10")
    cooling.find_element(By.CSS_SELECTOR, "button.set").click()
    wait_for(
        lambda: shown_value(desktop, "CCD_TEMPERATURE", "CCD_TEMPERATURE_VALUE") not in (start, "-10.00"),
        timeout=30,
        what="the temperature moving",
    )
    field = block(desktop, "CCD_TEMPERATURE").find_element(By.NAME, "CCD_TEMPERATURE_VALUE")
    assert field.get_attribute("value") == "-10"
    assert field.get_attribute("data-target") == "-10"
    # a field never touched follows the current value
    exposure = block(desktop, "CCD_EXPOSURE").find_element(By.NAME, "CCD_EXPOSURE_VALUE")
    assert exposure.get_attribute("data-target") in (None, "2")


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
