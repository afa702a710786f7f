"""The Driver Manager in the web client (Debian's headless Chromium): driverstoredis runs the simulators,
the web panel shows its Driver Manager like any device, and its Restart button restarts the CCD driver
while the telescope keeps running; an observer cannot use it."""

from __future__ import annotations

import pytest
import redis

import indiredis
from indiredis import tools
from indiredis.bridges import make_driverstoredis
from indiredis.indiwsgi.auth import User, hash_password
from indiredis.links.indi_side.manager import DEFAULT_MANAGER_DEVICE as MANAGER
from tests.support.servers import RedisProcess, wait_for
from tests.web import test_browser as web
from tests.web.test_browser import CCD, PASSWORD, TELESCOPE, World, block, show

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402

browser, desktop = web.browser, web.desktop  # the browser test's fixtures, logging in to this world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Redis, driverstoredis with the telescope and CCD simulators, and the web server (an operator olga,
    an observer oscar)."""
    blobs = tmp_path_factory.mktemp("blobs")
    with RedisProcess() as redis_proc:
        redis_host = indiredis.redis_server(host="127.0.0.1", port=redis_proc.port)
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port, socket_timeout=5)
        bridge = make_driverstoredis(
            ["indi_simulator_telescope", "indi_simulator_ccd"], redis_host, blob_folder=str(blobs)
        )
        users = {
            "olga": User("olga", "operator", hash_password(PASSWORD)),
            "oscar": User("oscar", "observer", hash_password(PASSWORD)),
        }
        with web.web_panel(bridge, redis_host, blobs, users) as url:
            world = World(url, redis_host, rconn, None)  # type: ignore[arg-type]
            world.pool = bridge.indi_side  # type: ignore[attr-defined]
            yield world
        rconn.close()


def open_manager(browser, world) -> None:
    wait_for(
        lambda: "indi_simulator_ccd_CONTROL" in tools.properties(world.rconn, world.redis_host, MANAGER),
        what="the Driver Manager defined",
    )
    browser.get(f"{world.url}/device/{MANAGER.replace(' ', '%20')}")
    wait_for(
        lambda: browser.find_elements(By.CSS_SELECTOR, ".prop[data-prop='indi_simulator_ccd_CONTROL']"),
        what="the Driver Manager's page",
    )


def test_the_driver_manager_is_a_device_and_its_restart_button_works(world, desktop):
    browser = desktop
    browser.get(f"{world.url}/")
    wait_for(lambda: MANAGER in browser.page_source, what="the Driver Manager in the device list")
    open_manager(browser, world)
    wait_for(
        lambda: block(browser, "indi_simulator_ccd_STATUS").get_attribute("data-state") == "Ok",
        what="the CCD shown running",
    )
    pool = world.pool
    wait_for(lambda: pool.router.owner(CCD) and pool.router.owner(TELESCOPE), what="both drivers' devices")
    telescope_pid, ccd_pid = pool.router.owner(TELESCOPE).process.pid, pool.router.owner(CCD).process.pid
    restarts = pool.router.owner(CCD).restarts
    show(browser, "indi_simulator_ccd_CONTROL").find_element(
        By.CSS_SELECTOR, "button[value='RESTART']"
    ).click()
    ccd = pool.drivers[1]
    wait_for(
        lambda: ccd.restarts == restarts + 1 and ccd.running and ccd.process.pid != ccd_pid,
        timeout=30,
        what="the CCD driver restarted by the button",
    )
    wait_for(
        lambda: (
            show(browser, "indi_simulator_ccd_STATUS")
            and block(browser, "indi_simulator_ccd_STATUS").get_attribute("data-state") == "Ok"
        ),
        timeout=30,
        what="the CCD shown running again, without a reload",
    )
    assert pool.router.owner(TELESCOPE).process.pid == telescope_pid


def test_an_observer_cannot_use_the_driver_manager(world, browser):
    browser.get(f"{world.url}/logout")
    browser.delete_all_cookies()
    browser.get(f"{world.url}/")
    browser.find_element(By.NAME, "user").send_keys("oscar")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()
    wait_for(lambda: browser.find_elements(By.LINK_TEXT, "Log out"), what="oscar logged in")
    open_manager(browser, world)
    pids = world.pool.child_pids()
    control = show(browser, "indi_simulator_ccd_CONTROL")
    buttons = control.find_elements(By.CSS_SELECTOR, "button[value='STOP']")
    assert buttons and not buttons[0].is_enabled()  # shown, but not for an observer to press
    assert world.pool.child_pids() == pids
