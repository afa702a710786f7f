"""DriverPool routing with fake drivers (tests/support/fakedriver.py) as real child processes, no Redis.

Each fake driver reports every message it receives as an INDI ``message`` ("got <tag> ..."), so a
test sees what reached which driver.  A driver's stdin and stdout are ordered, so once a driver
has reported a later marker, an earlier message that it did not report never reached it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from indiredis.core.channel import Channel
from indiredis.core.sides import Reset
from indiredis.links.indi_side.drivers import DriverPool
from indiredis.links.indi_side.process import DriverProcess
from indiredis.protocol.messages import Message
from indiredis.protocol.parser import parse_message
from tests.support.servers import wait_for

FAKE = Path(__file__).resolve().parent.parent / "support" / "fakedriver.py"
TIMEOUT = 15.0


def fake_driver(folder: Path, name: str, device: str, snoop: str = "", snoop_blobs: str = "") -> str:
    """An executable wrapper that runs tests/support/fakedriver.py for ``device`` with this interpreter."""
    script = folder / name
    script.write_text(
        "#!/bin/sh\n"
        f"FAKE_DEVICE='{device}' FAKE_SNOOP='{snoop}' FAKE_SNOOP_BLOBS='{snoop_blobs}' "
        f"exec '{sys.executable}' '{FAKE}'\n"
    )
    script.chmod(0o755)
    return str(script)


def msg(xml: str) -> Message:
    message = parse_message(xml.encode())
    assert isinstance(message, Message)
    return message


def text(item: object) -> str:
    return item.attrs.get("message", "") if isinstance(item, Message) and item.tag == "message" else ""


class Inbox:
    """Collects what the pool puts on ``from_indi`` and lets a test wait for an item."""

    def __init__(self, from_indi: Channel) -> None:
        self.from_indi = from_indi
        self.items: list[object] = []
        self._changed = asyncio.Condition()

    async def collect(self) -> None:
        while True:
            batch = await self.from_indi.get_batch()
            async with self._changed:
                self.items.extend(batch)
                self._changed.notify_all()

    async def wait(
        self, predicate: Callable[[object], bool], what: str, count: int = 1, since: int = 0
    ) -> object:
        """The ``count``-th item from index ``since`` on that satisfies ``predicate`` (waiting up to
        TIMEOUT)."""

        async def found() -> object:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.matching(predicate, since)) >= count)
                return self.matching(predicate, since)[count - 1]

        try:
            return await asyncio.wait_for(found(), TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}; from_indi held: {self.texts()}") from None

    async def report(self, device: str, start: str, count: int = 1) -> str:
        """The text of a fake driver's ``count``-th report (of ``device``) starting with ``start``."""
        item = await self.wait(
            lambda i: isinstance(i, Message) and i.device == device and text(i).startswith(start),
            f"{device} to report {start!r}",
            count,
        )
        return text(item)

    def matching(self, predicate: Callable[[object], bool], since: int = 0) -> list[object]:
        return [item for item in self.items[since:] if predicate(item)]

    def reports(self, device: str, start: str) -> list[str]:
        return [
            text(i)
            for i in self.items
            if isinstance(i, Message) and i.device == device and text(i).startswith(start)
        ]

    def texts(self) -> list[str]:
        return [text(i) or (i.tag if isinstance(i, Message) else repr(i)) for i in self.items][-40:]


@contextlib.asynccontextmanager
async def running(pool: DriverPool) -> AsyncIterator[tuple[Inbox, Channel]]:
    from_indi: Channel = Channel(10_000, "from INDI")
    to_indi: Channel = Channel(10_000, "to INDI")
    inbox = Inbox(from_indi)
    tasks = [asyncio.ensure_future(pool.run(from_indi, to_indi)), asyncio.ensure_future(inbox.collect())]
    try:
        yield inbox, to_indi
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def defined(device: str, name: str) -> Callable[[object], bool]:
    return lambda i: isinstance(i, Message) and i.action == "def" and i.device == device and i.name == name


def run(coroutine) -> None:
    asyncio.run(asyncio.wait_for(coroutine, 60))


def alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_client_traffic_goes_to_the_owner_and_snoopers_get_the_answers(tmp_path):
    mount = fake_driver(tmp_path, "fake_mount", "Mount")
    cam = fake_driver(tmp_path, "fake_cam", "Cam", snoop="Mount:COORD,Remote:")
    pool = DriverPool([mount, cam], forward_snoop_requests=True)

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            assert isinstance(await inbox.wait(lambda i: True, "the first item"), Reset)
            await inbox.wait(defined("Mount", "COORD"), "Mount's definitions")
            await inbox.wait(defined("Cam", "COORD"), "Cam's definitions")
            # a snoop request for a device no local driver owns goes to the client side (MQTT asks the
            # network)
            await inbox.wait(
                lambda i: isinstance(i, Message) and i.tag == "getProperties" and i.device == "Remote",
                "the Remote snoop request on from_indi",
            )
            await to_indi.put(
                msg(
                    '<newNumberVector device="Mount" name="COORD">'
                    '<oneNumber name="RA">5</oneNumber><oneNumber name="DEC">10</oneNumber></newNumberVector>'
                )
            )
            await inbox.report("Mount", "got newNumberVector Mount/COORD RA=5 DEC=10")
            await inbox.wait(
                lambda i: isinstance(i, Message) and i.tag == "setNumberVector" and i.device == "Mount",
                "Mount's answer on from_indi",
            )
            assert (
                await inbox.report("Cam", "got setNumberVector Mount/COORD")
                == "got setNumberVector Mount/COORD RA=5 DEC=10"
            )
            # traffic for a device no local driver owns (snoop data from elsewhere) goes to its snoopers only
            await to_indi.put(
                msg(
                    '<setTextVector device="Remote" name="SKY"><oneText name="Q">dark</oneText>'
                    "</setTextVector>"
                )
            )
            await inbox.report("Cam", "got setTextVector Remote/SKY Q=dark")
            # a bare getProperties goes to every driver: after it, each has reported all it ever received
            await to_indi.put(msg('<getProperties version="1.7"/>'))
            await inbox.report("Mount", "got getProperties /", count=2)
            await inbox.report("Cam", "got getProperties /", count=2)
            assert not inbox.reports("Cam", "got newNumberVector")
            assert not inbox.reports("Mount", "got setTextVector Remote")
            assert inbox.reports(
                "Mount", "got getProperties Remote/"
            )  # owned by no one known: asked of the others
            assert inbox.reports(
                "Mount", "got getProperties Mount/COORD"
            )  # the snoop request reached the owner

    run(scenario())


def test_client_blob_policy_never_also_only(tmp_path):
    cam = fake_driver(tmp_path, "fake_cam", "Cam")
    pool = DriverPool([cam])
    is_blob = lambda i: isinstance(i, Message) and i.tag == "setBLOBVector"  # noqa: E731
    acks = lambda i: isinstance(i, Message) and i.tag == "setTextVector" and i.name == "CMD"  # noqa: E731
    blob_command = msg(
        '<newTextVector device="Cam" name="CMD"><oneText name="TEXT">blob</oneText></newTextVector>'
    )

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(defined("Cam", "IMAGE"), "definitions")
            await to_indi.put(blob_command)
            await inbox.wait(acks, "the first command's acknowledgement")
            assert not inbox.matching(is_blob)  # Never by default: the BLOB sent before the ack was withheld

            await to_indi.put(msg('<enableBLOB device="Cam" name="IMAGE">Also</enableBLOB>'))
            await to_indi.put(blob_command)
            await inbox.wait(is_blob, "a BLOB after enableBLOB Also")
            await inbox.wait(acks, "the second acknowledgement", count=2)

            await to_indi.put(msg('<enableBLOB device="Cam">Only</enableBLOB>'))  # device-wide: BLOBs only
            await to_indi.put(blob_command)
            await to_indi.put(blob_command)
            await inbox.wait(is_blob, "the second BLOB", count=2)
            await inbox.wait(is_blob, "the third BLOB", count=3)
            assert len(inbox.matching(acks)) == 2  # the ack between the two BLOBs was withheld

    run(scenario())


def test_killed_driver_is_reported_restarted_and_still_snooped(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    mount = fake_driver(tmp_path, "fake_mount", "Mount")
    cam = fake_driver(tmp_path, "fake_cam", "Cam", snoop="Mount:")
    pool = DriverPool([mount, cam])

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(defined("Mount", "COORD"), "Mount's definitions")
            await inbox.wait(defined("Cam", "COORD"), "Cam's definitions")
            mount_driver = pool.router.owner("Mount")
            old_pid = mount_driver.process.pid
            os.kill(old_pid, signal.SIGKILL)
            await inbox.wait(
                lambda i: isinstance(i, Message) and i.tag == "delProperty" and i.device == "Mount",
                "Mount deleted",
            )
            death = await inbox.wait(
                lambda i: "fake_mount killed by SIGKILL" in text(i), "the death reported"
            )
            assert "devices gone until then: Mount" in text(death)
            await inbox.report("Cam", "got delProperty Mount/")  # the snooper is told too
            await inbox.wait(
                defined("Mount", "COORD"), "Mount's definitions again", since=inbox.items.index(death)
            )
            assert mount_driver.process.pid != old_pid and not alive(old_pid)
            # the snoop record outlived the owner's restart and its delProperty
            await to_indi.put(
                msg(
                    '<newNumberVector device="Mount" name="COORD"><oneNumber name="RA">7</oneNumber>'
                    "</newNumberVector>"
                )
            )
            await inbox.report("Cam", "got setNumberVector Mount/COORD RA=7")
            assert pool.state.connected
            # without forward_snoop_requests (driverstoredis) snoop requests never reach the client side
            assert not [i for i in inbox.items if isinstance(i, Message) and i.tag == "getProperties"]

    run(scenario())
    assert any(
        r.levelno == logging.WARNING and "fake_mount killed by SIGKILL" in r.getMessage()
        for r in caplog.records
    )


def test_stderr_is_logged_line_by_line_under_the_driver_name(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    pool = DriverPool([fake_driver(tmp_path, "fake_cam", "Cam")])

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(defined("Cam", "CMD"), "definitions")
            await to_indi.put(
                msg(
                    '<newTextVector device="Cam" name="CMD"><oneText name="TEXT">stderr</oneText>'
                    "</newTextVector>"
                )
            )
            await inbox.wait(
                lambda i: isinstance(i, Message) and i.tag == "setTextVector", "the acknowledgement"
            )
            loop = asyncio.get_running_loop()
            deadline = loop.time() + TIMEOUT
            # stderr is a separate pipe: its line may follow the stdout acknowledgement by a moment
            while (
                not [r for r in caplog.records if r.name == "indiredis.driver.fake_cam"]
                and loop.time() < deadline
            ):
                await asyncio.sleep(0.02)

    run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.name == "indiredis.driver.fake_cam"]
    assert lines == ["fake_cam: Cam says hello on stderr"]


def test_a_driver_that_cannot_start_is_reported_once_and_the_others_serve(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    pool = DriverPool(["no_such_indi_driver_here", fake_driver(tmp_path, "fake_cam", "Cam")])

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(defined("Cam", "COORD"), "definitions")
            missing = pool.drivers[0]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + TIMEOUT
            while missing.restarts < 3 and loop.time() < deadline:  # back-off 0.5 s, then 1 s
                await asyncio.sleep(0.05)
            assert missing.restarts >= 3
            assert "no_such_indi_driver_here cannot be started" in pool.state.text and pool.state.connected
            assert len([i for i in inbox.items if "cannot be started" in text(i)]) == 1

    run(scenario())
    warnings = [
        r for r in caplog.records if r.levelno >= logging.WARNING and "cannot be started" in r.getMessage()
    ]
    assert len(warnings) == 1


def test_cancelling_the_pool_stops_and_reaps_every_driver(tmp_path):
    pool = DriverPool(
        [fake_driver(tmp_path, "fake_mount", "Mount"), fake_driver(tmp_path, "fake_cam", "Cam")]
    )
    pids: list[int] = []

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(defined("Mount", "COORD"), "Mount's definitions")
            await inbox.wait(defined("Cam", "COORD"), "Cam's definitions")
            pids.extend(pool.child_pids())

    run(scenario())
    assert len(pids) == 2
    assert not [pid for pid in pids if alive(pid)], "a driver (or its zombie) is left"


STUBBORN_DRIVER = r"""#!/bin/sh
# ignores SIGTERM (and so does its child), leaves a child holding its stdout and stderr, and floods
# stdout so that the pipe fills once the pool stops reading it
trap '' TERM
sleep 300 &
echo "<message device=\"Stubborn\" message=\"child $!\"/>"
while :; do echo '<message device="Stubborn" message="flood"/>'; done
"""


def running_not_zombie(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie left to an init that does not reap is dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_stopping_a_driver_that_ignores_sigterm_and_whose_child_holds_its_full_output_pipe(tmp_path):
    """The pool still stops: the driver's output is drained while it stops (asyncio reports a process
    finished only at the end of its pipes), and SIGKILL goes to the driver's whole process group."""
    script = tmp_path / "stubborn_driver"
    script.write_text(STUBBORN_DRIVER)
    script.chmod(0o755)
    pool = DriverPool([str(script)])
    pids: list[int] = []

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            report = await inbox.wait(lambda i: text(i).startswith("child "), "the driver's child pid")
            pids.extend(pool.child_pids())
            pids.append(int(text(report).split()[1]))

    run(scenario())
    assert len(pids) == 2
    # SIGKILL is sent to the group as the pool stops; the kernel ends the processes a moment later
    wait_for(
        lambda: not [pid for pid in pids if running_not_zombie(pid)],
        what="the driver and its child to end (SIGKILL to the group)",
    )


def test_a_cancelled_stop_kills_and_reaps_the_driver_and_leaves_nothing_pending(tmp_path):
    """A stop cut short (the bridge's loop closing) still reaps the process and ends every task it
    started: no "Task was destroyed but it is pending! coro=<Process.wait()>" at the loop's close."""
    script = tmp_path / "deaf_driver"
    script.write_text("#!/bin/sh\ntrap '' TERM\necho deaf\nwhile :; do sleep 1; done\n")
    script.chmod(0o755)
    driver = DriverProcess(str(script))
    left: list[asyncio.Task[object]] = []
    codes: list[int | None] = []

    async def scenario() -> None:
        process = await driver.start()
        assert process.stdout is not None
        assert await process.stdout.readline() == b"deaf\n"  # SIGTERM is ignored from now on
        stopping = asyncio.ensure_future(driver.stop())
        await asyncio.sleep(0)  # a turn of the loop: the stop has sent SIGTERM and waits
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        codes.append(process.returncode)
        left.extend(
            task for task in asyncio.all_tasks() if not task.done() and task is not asyncio.current_task()
        )

    asyncio.run(scenario())  # not under wait_for: its task would be one more pending
    assert left == []
    assert codes == [-signal.SIGKILL]
