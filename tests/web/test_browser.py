"""The web client in Debian's headless Chromium, with real Redis and the simulators behind inditoredis.

Driven by Selenium with Debian's chromedriver.  The screenshot is saved to
``artifacts/web-telescope.png`` (git-ignored) and to the test's tmp folder.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

import indiredis
from indiredis.bridges import make_inditoredis
from indiredis.indiwsgi import make_wsgi_app
from indiredis.indiwsgi.auth import User, hash_password
from tests.support.bridgethread import run_bridge
from tests.support.servers import free_port, wait_for

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

ARTIFACTS = Path(__file__).parents[2] / "artifacts"
TELESCOPE = "Telescope Simulator"
COORD = "EQUATORIAL_EOD_COORD"
PASSWORD = "correct horse battery"


@pytest.fixture
def served_app(simulators, redis_host, tmp_path):
    import waitress

    bridge = make_inditoredis(
        indiredis.indi_server("127.0.0.1", simulators.port), redis_host, blob_folder=str(tmp_path / "blobs")
    )
    port = free_port()
    users = {"olga": User("olga", "operator", hash_password(PASSWORD))}
    server = waitress.create_server(
        make_wsgi_app(redis_host, tmp_path / "blobs", users=users), host="127.0.0.1", port=port
    )
    thread = threading.Thread(target=server.run, daemon=True)
    with run_bridge(bridge):
        thread.start()
        wait_for(lambda: bridge.ready, what="inditoredis ready")
        yield f"http://127.0.0.1:{port}"
        server.close()


@pytest.fixture
def browser(tmp_path):
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
        f"--user-data-dir={tmp_path / 'chromium'}",
        "--window-size=1200,2400",
    ):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def form_of(browser, name: str):
    return browser.find_element(By.CSS_SELECTOR, f"form[action$='/{name}']")


def test_slew_the_telescope_from_the_browser(served_app, browser, tmp_path):
    browser.get(f"{served_app}/")
    assert browser.current_url.endswith("/login")  # the web client asks for a login first
    browser.find_element(By.NAME, "user").send_keys("olga")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.TAG_NAME, "button").click()
    wait_for(lambda: browser.find_elements(By.LINK_TEXT, TELESCOPE), what="the device list after logging in")
    browser.find_element(By.LINK_TEXT, TELESCOPE).click()
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, "form[action$='/CONNECTION']"), what="device page"
    )
    browser.execute_script("window.pageMark = 'no reload';")
    connection = form_of(browser, "CONNECTION")
    connection.find_element(By.CSS_SELECTOR, "input[value='CONNECT']").click()
    connection.find_element(By.TAG_NAME, "button").click()
    # the coordinates appear once the simulator is connected: the page learns them without a reload
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, f"form[action$='/{COORD}']"),
        timeout=30,
        what="the coordinates property in the page",
    )
    coordinates = form_of(browser, COORD)
    coordinates.find_element(By.NAME, "RA").send_keys("6:00:00")
    coordinates.find_element(By.NAME, "DEC").send_keys("60")
    coordinates.find_element(By.TAG_NAME, "button").click()

    def dec_shown() -> str:
        return browser.find_element(By.CSS_SELECTOR, f"[data-value='{COORD}'][data-element='DEC']").text

    wait_for(
        lambda: dec_shown().lstrip("+ ").startswith("60:00"),
        timeout=90,
        interval=0.2,
        what="the new declination in the page",
    )

    def coordinate_states() -> list[str]:
        states = browser.execute_script("return window.indiredisStates;")
        return [s.split(":", 1)[1] for s in states if s.startswith(COORD + ":")]

    # the light went Busy while slewing, then Ok on arrival, all seen live
    wait_for(
        lambda: (
            "Busy" in coordinate_states() and "Ok" in coordinate_states()[coordinate_states().index("Busy") :]
        ),
        timeout=30,
        what=f"{COORD} Busy then Ok",
    )
    assert browser.execute_script("return window.pageMark;") == "no reload"
    # switch choices follow the device: tracking started by the slew shows as the checked choice
    tracking = form_of(browser, "TELESCOPE_TRACK_STATE")
    wait_for(
        lambda: (
            tracking.find_element(By.CSS_SELECTOR, "input[value='TRACK_ON']").is_selected()
            == (tracking.find_element(By.CSS_SELECTOR, "[data-element='TRACK_ON']").text == "On")
        ),
        what="the tracking switch choice in step with its value",
    )
    light = browser.find_element(By.CSS_SELECTOR, f"[data-light='{COORD}']")
    assert light.get_attribute("data-state") == "Ok"
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(tmp_path / "web-telescope.png"))
    shutil.copy(tmp_path / "web-telescope.png", ARTIFACTS / "web-telescope.png")
