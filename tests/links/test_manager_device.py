"""The Driver Manager device of the DriverPool, with fake drivers (tests/support/fakedriver.py) as real
child processes and no Redis: its definitions, restart / stop / start requests, refusals, the give-up
policy, crash logging and a new list of drivers applied in place."""

from __future__ import annotations

import logging
from pathlib import Path

from indiredis.links.indi_side.drivers import DriverPool
from indiredis.links.indi_side.manager import (
    Command,
    DriverAction,
    DriverReport,
    DriverState,
    GiveUp,
    ManagerDevice,
    Refusal,
    driver_key,
)
from indiredis.protocol.messages import Message
from tests.links.test_driverpool import alive, defined, fake_driver, msg, run, running, text

MANAGER = "Driver Manager"


def crashing_driver(folder: Path, name: str = "crashy_driver") -> str:
    """A driver that exits with status 3 as soon as it starts."""
    script = folder / name
    script.write_text("#!/bin/sh\necho 'about to fail' >&2\nexit 3\n")
    script.chmod(0o755)
    return str(script)


def light(key: str, state: str, action: str = "set"):
    """Predicate: the Driver Manager's light of driver ``key`` in ``state``."""
    return lambda i: (
        isinstance(i, Message)
        and i.tag == f"{action}LightVector"
        and i.device == MANAGER
        and i.name == f"{key}_STATUS"
        and i.attrs.get("state") == state
    )


def control(key: str, switch: str) -> Message:
    return msg(
        f'<newSwitchVector device="{MANAGER}" name="{key}_CONTROL"><oneSwitch name="{switch}">On</oneSwitch>'
        "</newSwitchVector>"
    )


def manager_message(contains: str):
    return lambda i: isinstance(i, Message) and i.device == MANAGER and contains in text(i)


# -- the pure part ----------------------------------------------------------------------------------
def test_keys_are_property_name_safe_and_unique():
    assert driver_key("indi_simulator_ccd") == "indi_simulator_ccd"
    assert driver_key("indi-lx200 generic") == "indi_lx200_generic"
    assert driver_key("indi_simulator_ccd", ["indi_simulator_ccd"]) == "indi_simulator_ccd_2"


def test_definitions_and_updates_follow_indi_conventions():
    device = ManagerDevice()
    report = DriverReport("cam", "/usr/bin/cam", DriverState.RESTARTING, restarts=2, stderr=("a", "b"))
    definitions = device.definitions([report])
    assert [m.tag for m in definitions] == [
        "defLightVector",
        "defTextVector",
        "defNumberVector",
        "defTextVector",
        "defSwitchVector",
    ]
    assert all(m.device == MANAGER and m.attrs["group"] == "cam" for m in definitions)
    status, info, restarts, stderr, switches = definitions
    assert status.attrs["state"] == "Busy" and switches.attrs["state"] == "Busy"
    assert switches.attrs["perm"] == "rw" and switches.attrs["rule"] == "AtMostOne"
    assert [m.name for m in switches.members] == ["RESTART", "STOP", "START"]
    assert {m.name: m.text for m in info.members}["EXECUTABLE"] == "/usr/bin/cam"
    assert restarts.members[0].text == "2" and stderr.members[0].text == "a\nb"
    failed = device.updates(DriverReport("cam", "cam", DriverState.FAILED))
    assert [m.attrs["state"] for m in failed if m.tag in ("setLightVector", "setSwitchVector")] == [
        "Alert",
        "Alert",
    ]
    assert [m.name for m in device.deletions("cam")][0] == "cam_STATUS"


def test_requests_map_to_configured_drivers_only():
    device = ManagerDevice()
    assert device.request(control("cam", "RESTART"), ["cam"]) == Command("cam", DriverAction.RESTART)
    for refused in (
        control("sh", "START"),  # no such configured driver
        msg(
            f'<newTextVector device="{MANAGER}" name="cam_CONTROL"><oneText name="START">/bin/sh</oneText>'
            "</newTextVector>"
        ),
        msg(
            f'<newSwitchVector device="{MANAGER}" name="cam_CONTROL"><oneSwitch name="EXEC">On</oneSwitch>'
            "</newSwitchVector>"
        ),
    ):
        verdict = device.request(refused, ["cam"])
        assert isinstance(verdict, Refusal), refused
        assert "nothing was" in text(verdict.messages[0])
    assert device.request(msg(f'<getProperties version="1.7" device="{MANAGER}"/>'), ["cam"]) is None


# -- with the pool ----------------------------------------------------------------------------------
def test_restart_stop_and_start_a_driver_while_the_other_keeps_running(tmp_path):
    mount = fake_driver(tmp_path, "fake_mount", "Mount")
    cam = fake_driver(tmp_path, "fake_cam", "Cam")
    pool = DriverPool([mount, cam])

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(light("fake_cam", "Busy", "def"), "the definitions at start")
            await inbox.wait(light("fake_cam", "Ok"), "the camera running")
            await inbox.wait(defined("Mount", "COORD"), "Mount's definitions")
            await inbox.wait(defined("Cam", "COORD"), "Cam's definitions")
            mount_pid = pool.router.owner("Mount").process.pid
            cam_driver = pool.router.owner("Cam")
            cam_pid = cam_driver.process.pid

            # a client's getProperties brings the manager's definitions too
            mark = len(inbox.items)
            await to_indi.put(msg('<getProperties version="1.7"/>'))
            await inbox.wait(light("fake_cam", "Ok", "def"), "the definitions again", since=mark)

            mark = len(inbox.items)
            await to_indi.put(control("fake_cam", "RESTART"))
            busy = await inbox.wait(light("fake_cam", "Busy"), "Busy while restarting", since=mark)
            await inbox.wait(light("fake_cam", "Ok"), "Ok once restarted", since=inbox.items.index(busy))
            halted = await inbox.wait(
                lambda i: "restarting at a client's request" in text(i), "the halt said"
            )
            # from the new process (the old one is gone once the halt is said)
            await inbox.wait(
                defined("Cam", "COORD"), "Cam's definitions again", since=inbox.items.index(halted)
            )
            assert cam_driver.process.pid != cam_pid and not alive(cam_pid)
            assert pool.router.owner("Mount").process.pid == mount_pid
            assert not inbox.matching(
                lambda i: isinstance(i, Message) and i.tag == "delProperty" and i.device == "Mount"
            )

            mark = len(inbox.items)
            await to_indi.put(control("fake_cam", "STOP"))
            await inbox.wait(
                lambda i: isinstance(i, Message) and i.tag == "delProperty" and i.device == "Cam",
                "Cam deleted",
                since=mark,
            )
            await inbox.wait(light("fake_cam", "Idle"), "Idle once stopped", since=mark)
            assert not cam_driver.running and pool.state.connected

            mark = len(inbox.items)
            await to_indi.put(control("fake_cam", "START"))
            await inbox.wait(light("fake_cam", "Ok"), "Ok once started", since=mark)
            await inbox.wait(defined("Cam", "COORD"), "Cam back", since=mark)
            assert pool.router.owner("Mount").process.pid == mount_pid
            assert cam_driver.restarts == 2

    run(scenario())


def test_a_request_for_an_unconfigured_executable_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    intruder = tmp_path / "intruder"
    intruder.write_text(f"#!/bin/sh\ntouch '{marker}'\n")
    intruder.chmod(0o755)
    pool = DriverPool([fake_driver(tmp_path, "fake_cam", "Cam")])

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(defined("Cam", "COORD"), "Cam's definitions")
            pids = pool.child_pids()
            await to_indi.put(control("intruder", "START"))
            await to_indi.put(
                msg(
                    f'<newTextVector device="{MANAGER}" name="DRIVERS">'
                    f'<oneText name="START">{intruder}</oneText></newTextVector>'
                )
            )
            await inbox.wait(manager_message("refused newSwitchVector 'intruder_CONTROL'"), "the refusal")
            await inbox.wait(manager_message("refused newTextVector 'DRIVERS'"), "the second refusal")
            assert pool.child_pids() == pids and len(pool.drivers) == 1

    run(scenario())
    assert not marker.exists()


def test_give_up_policy_leaves_a_crashing_driver_failed_until_a_client_starts_it(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    pool = DriverPool(
        [crashing_driver(tmp_path), fake_driver(tmp_path, "fake_cam", "Cam")], give_up=GiveUp(3, 60)
    )

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(light("crashy_driver", "Alert"), "the driver marked failed")
            said = await inbox.wait(lambda i: "given up" in text(i), "the give-up message")
            assert "crashy_driver crashed 3 times in 60 s" in text(said)
            crashy = pool.drivers[0]
            assert not pool.supervisor.supervising(crashy) and not crashy.running and crashy.restarts == 2
            # STDERR shows what it said last, INFO how it ended
            stderr = inbox.matching(
                lambda i: isinstance(i, Message) and i.name == "crashy_driver_STDERR" and i.action == "set"
            )
            assert stderr and "about to fail" in stderr[-1].members[0].text
            info = inbox.matching(
                lambda i: isinstance(i, Message) and i.name == "crashy_driver_INFO" and i.action == "set"
            )[-1]
            assert {m.name: m.text for m in info.members}["LAST_EXIT"] == "exit status 3"
            mark = len(inbox.items)
            await to_indi.put(control("crashy_driver", "START"))  # a client tries again
            await inbox.wait(light("crashy_driver", "Alert"), "failed again", since=mark)
            assert pool.router.owner("Cam").running

    run(scenario())
    crashes = [r for r in caplog.records if "crashy_driver exit status 3" in r.getMessage()]
    assert len(crashes) == 6 and all(r.levelno >= logging.WARNING for r in crashes)
    assert "crashy_driver crashed 2 times in 60 s" in crashes[1].getMessage()


def test_every_crash_is_a_warning_with_the_count_when_they_repeat(tmp_path, caplog):
    """Issue 17 item 6: no crash hidden at debug level, repeated ones counted (no give-up policy)."""
    caplog.set_level(logging.DEBUG)
    pool = DriverPool([crashing_driver(tmp_path)])

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(lambda i: "crashed 3 times in 60 s" in text(i), "the third crash reported")

    run(scenario())
    crashes = [r for r in caplog.records if "crashy_driver exit status 3" in r.getMessage()]
    assert len(crashes) >= 3 and all(r.levelno == logging.WARNING for r in crashes)
    assert [r.getMessage().split("(")[1].split(")")[0] for r in crashes[1:3]] == [
        "crashy_driver crashed 2 times in 60 s",
        "crashy_driver crashed 3 times in 60 s",
    ]


def test_a_new_list_of_drivers_starts_and_stops_just_the_difference(tmp_path):
    mount = fake_driver(tmp_path, "fake_mount", "Mount")
    cam = fake_driver(tmp_path, "fake_cam", "Cam")
    focuser = fake_driver(tmp_path, "fake_focuser", "Focuser")
    pool = DriverPool([mount, cam])

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(defined("Mount", "COORD"), "Mount's definitions")
            await inbox.wait(defined("Cam", "COORD"), "Cam's definitions")
            mount_pid = pool.router.owner("Mount").process.pid
            cam_pid = pool.router.owner("Cam").process.pid
            mark = len(inbox.items)
            assert pool.set_drivers([mount, focuser]) == ([focuser], [cam])
            await inbox.wait(defined("Focuser", "COORD"), "the added driver's device", since=mark)
            await inbox.wait(light("fake_focuser", "Busy", "def"), "its manager properties", since=mark)
            await inbox.wait(
                lambda i: isinstance(i, Message) and i.tag == "delProperty" and i.device == "Cam",
                "the removed driver's device deleted",
                since=mark,
            )
            await inbox.wait(
                lambda i: (
                    isinstance(i, Message)
                    and i.tag == "delProperty"
                    and i.device == MANAGER
                    and i.name == "fake_cam_CONTROL"
                ),
                "its manager properties deleted",
                since=mark,
            )
            assert pool.router.owner("Mount").process.pid == mount_pid and not alive(cam_pid)
            assert [d.label for d in pool.drivers] == ["fake_mount", "fake_focuser"]
            await to_indi.put(control("fake_cam", "START"))  # no longer configured: refused
            await inbox.wait(manager_message("refused"), "the refusal")

    run(scenario())
