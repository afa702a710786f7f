"""``systemctl reload`` of indiredis-driverstoredis with a driver added or removed: the real daemon, the
simulators, a real Redis.  Only the difference starts or stops; the other drivers keep their process and
their devices stay connected."""

from __future__ import annotations

import signal

import pytest

import indiredis
from indiredis import tools
from indiredis.links.indi_side.manager import DEFAULT_MANAGER_DEVICE as MANAGER
from tests.support.daemons import start_daemon, stop_daemon, write_config
from tests.support.indiclient import connect_device
from tests.support.notifysocket import NotifySocket
from tests.support.servers import wait_for

TELESCOPE = "Telescope Simulator"
CCD = "CCD Simulator"


@pytest.fixture
def notify(tmp_path):
    sock = NotifySocket(tmp_path)
    yield sock
    sock.close()


def pid_of(rconn, server, driver: str) -> str:
    """The driver's process id as the Driver Manager shows it ('' while it is not running)."""
    return tools.elements_dict(rconn, server, "PID", f"{driver}_INFO", MANAGER).get("value", "")


def test_reload_with_a_driver_added_then_removed_leaves_the_others_running(
    redis_proc, rconn, notify, tmp_path
):
    server = indiredis.redis_server(host="127.0.0.1", port=redis_proc.port)
    config = write_config(
        tmp_path,
        "driverstoredis",
        f"[redis]\nhost = 127.0.0.1\nport = {redis_proc.port}\n",
        "[service]\nblob_folder =\ndrivers = indi_simulator_telescope\n",
    )
    proc = start_daemon("driverstoredis", config, notify)

    def reload() -> None:
        mark = len(notify.snapshot())
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: notify.has("RELOADING=1", mark), what="RELOADING=1")
        wait_for(lambda: notify.has("READY=1", notify.index("RELOADING=1", mark)), timeout=20, what="READY=1")

    try:
        wait_for(lambda: notify.has("READY=1"), timeout=20, what="READY=1")
        connect_device(rconn, server, TELESCOPE)
        telescope_pid = wait_for(lambda: pid_of(rconn, server, "indi_simulator_telescope"), what="its pid")

        config.write_text("[service]\nblob_folder =\ndrivers = indi_simulator_telescope indi_simulator_ccd\n")
        reload()
        wait_for(lambda: CCD in tools.devices(rconn, server), timeout=20, what="the added driver's device")
        wait_for(lambda: pid_of(rconn, server, "indi_simulator_ccd"), what="the added driver shown running")
        log = (tmp_path / "driverstoredis.log").read_text()
        assert "drivers changed in place: started indi_simulator_ccd" in log
        assert "configuration changed, restarting" not in log
        assert pid_of(rconn, server, "indi_simulator_telescope") == telescope_pid
        assert tools.elements_dict(rconn, server, "CONNECT", "CONNECTION", TELESCOPE)["value"] == "On"

        config.write_text("[service]\nblob_folder =\ndrivers = indi_simulator_telescope\n")
        reload()
        wait_for(
            lambda: CCD not in tools.devices(rconn, server), timeout=20, what="the removed driver's device"
        )
        wait_for(
            lambda: "indi_simulator_ccd_STATUS" not in tools.properties(rconn, server, MANAGER),
            what="the removed driver gone from the Driver Manager",
        )
        assert pid_of(rconn, server, "indi_simulator_telescope") == telescope_pid
        assert tools.elements_dict(rconn, server, "CONNECT", "CONNECTION", TELESCOPE)["value"] == "On"
        assert (
            "drivers changed in place: stopped indi_simulator_ccd"
            in (tmp_path / "driverstoredis.log").read_text()
        )
    finally:
        status = stop_daemon(proc)
    assert status == 0 and "Traceback" not in (tmp_path / "driverstoredis.log").read_text()
