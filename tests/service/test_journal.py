"""What the daemons send to the journal, read back from a real systemd-journald.

The daemons run under a private journal (:mod:`tests.support.journald`) with stderr a file that
``$JOURNAL_STREAM`` names, as systemd starts them: each record goes through
``systemd.journal.JournalHandler`` with its priority, MESSAGE_ID and fields, which journalctl
reads back.  Without systemd-python (a developer's venv) logging and notification degrade to plain
lines on stderr and no notification.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
from pathlib import Path

from indiredis.core.sides import LinkState
from indiredis.events import FIELD_MEANINGS, Event
from tests.support.daemons import BIN, inditoredis_common, start_daemon, stop_daemon, write_config
from tests.support.servers import wait_for


def test_redis_outage_is_logged_as_link_lost_then_restored_with_its_fields(
    journal, simulators, redis_proc, notify, tmp_path
):
    common = inditoredis_common(simulators.port, redis_proc.port)
    config = write_config(tmp_path, "inditoredis-dome2", common, "[service]\nblob_folder =\n")
    proc = start_daemon("inditoredis", config, notify, journal)
    redis = {"INDIREDIS_LINK": "redis", "INDIREDIS_PEER": f"127.0.0.1:{redis_proc.port}"}
    try:
        wait_for(lambda: notify.has("READY=1"), timeout=20, what="READY=1")
        redis_proc.stop()
        lost = journal.wait_for_entry("the loss of Redis", MESSAGE_ID=Event.LINK_LOST, **redis)
        redis_proc.start()
        restored = journal.wait_for_entry("Redis back", MESSAGE_ID=Event.LINK_RESTORED, **redis)
        assert lost["MESSAGE"] == "Redis unavailable: connection refused" and lost["PRIORITY"] == "4"
        assert restored["MESSAGE"].startswith("connected to Redis 127.0.0.1:") and restored["PRIORITY"] == "6"
        ours = journal.entries(f"_PID={proc.pid}")
        assert all(e["SYSLOG_IDENTIFIER"] == "indiredis-inditoredis" for e in ours)
        assert all(e["INDIREDIS_BRIDGE"] == "dome2" for e in ours)  # the template unit's instance name
        indiserver = [e for e in ours if e.get("INDIREDIS_LINK") == "indiserver"]
        assert indiserver[0]["INDIREDIS_PEER"] == f"127.0.0.1:{simulators.port}"
        assert "MESSAGE_ID" not in indiserver[0]  # the first connection is not a recovery
        assert sum(e.get("MESSAGE_ID") == Event.LINK_LOST for e in ours) == 1
    finally:
        assert stop_daemon(proc) == 0
    assert (tmp_path / "inditoredis.log").read_bytes() == b""  # everything went to the journal


def test_a_driver_crash_carries_the_driver_name(journal, redis_proc, notify, tmp_path):
    common = f"[redis]\nhost = 127.0.0.1\nport = {redis_proc.port}\n"
    own = "[service]\ndrivers = indi_simulator_telescope\nblob_folder =\n"
    proc = start_daemon(
        "driverstoredis", write_config(tmp_path, "driverstoredis", common, own), notify, journal
    )
    driver = {"INDIREDIS_LINK": "driver", "INDI_DRIVER": "indi_simulator_telescope"}
    try:
        wait_for(lambda: notify.has("READY=1"), timeout=20, what="READY=1")
        started = journal.wait_for_entry("the driver's start", **driver)
        os.kill(int(re.search(r"\(pid (\d+)\)", started["MESSAGE"]).group(1)), signal.SIGKILL)
        crash = journal.wait_for_entry("the crash", MESSAGE_ID=Event.DRIVER_CRASHED, **driver)
        assert "indi_simulator_telescope killed by SIGKILL" in crash["MESSAGE"] and crash["PRIORITY"] == "4"
        assert crash["INDIREDIS_BRIDGE"] == "driverstoredis"
    finally:
        assert stop_daemon(proc) == 0


def test_a_configuration_error_reaches_the_journal_with_priority_3_and_its_message_id(
    journal, notify, tmp_path
):
    config = write_config(tmp_path, "inditoredis", "", "[service]\nlog_level = chatty\n")
    proc = start_daemon("inditoredis", config, notify, journal)
    assert proc.wait(30) == 78
    error = journal.wait_for_entry("the error", MESSAGE_ID=Event.CONFIG_ERROR)
    assert error["MESSAGE"].startswith("configuration error: ") and error["PRIORITY"] == "3"


def test_without_systemd_python_logging_is_plain_and_notification_off(
    journal, simulators, redis_proc, notify, tmp_path
):
    """Under systemd but with the module unimportable: the daemon still serves, logs plain lines to stderr
    (nothing to the journal) and tells systemd nothing."""
    hide = tmp_path / "hide"
    (hide / "systemd").mkdir(parents=True)
    (hide / "systemd" / "__init__.py").write_text("raise ImportError('systemd-python hidden by the test')\n")
    # no blob folder: the default, /var/lib/indiredis/blobs, is the installed package's (a test making
    # it raced tests/deb, whose purge removes it)
    common = inditoredis_common(simulators.port, redis_proc.port)
    config = write_config(tmp_path, "inditoredis", common, "[service]\nblob_folder =\n")
    proc = start_daemon("inditoredis", config, notify, journal, PYTHONPATH=str(hide))
    stderr = tmp_path / "inditoredis.log"
    try:
        wait_for(lambda: " INFO inditoredis ready: " in stderr.read_text(), timeout=20, what="ready")
    finally:
        assert stop_daemon(proc) == 0
    assert notify.snapshot() == [] and journal.entries(f"_PID={proc.pid}") == []
    first = stderr.read_text().splitlines()[0]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO indiredis-inditoredis starting", first)


def test_every_message_id_and_field_is_in_the_help_and_so_the_manual_page_and_in_the_docs():
    text = subprocess.run(
        [str(BIN / "indiredis-inditoredis"), "--help"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    docs = (Path(__file__).parents[2] / "docs" / "journal.md").read_text()
    for event in Event:
        assert f"  {event.value}  {event.name}: " in text and event.value in docs and event.name in docs
    for field in FIELD_MEANINGS:
        assert f"  {field} " in text and f"`{field}`" in docs


def test_link_state_marks_losses_and_recoveries_only(caplog):
    """LINK_LOST on a loss (or a failed first connection), LINK_RESTORED on the recovery from one; neither
    on the first connection nor on a new reason while down.  Every line carries the link's fields."""
    first = LinkState("indiserver", "indiserver", "127.0.0.1:7624")
    state = LinkState("Redis", "redis", "[::1]:6379")
    with caplog.at_level(logging.INFO, logger="indiredis"):
        first.up("connected to indiserver")
        state.down("waiting for Redis", "connection refused")
        state.down("waiting for Redis", "connection reset by peer")
        state.up("connected to Redis")
        state.up("connected to Redis")  # no change: no line
        state.down("waiting for Redis", "connection refused")
    ids = [getattr(record, "MESSAGE_ID", None) for record in caplog.records]
    assert ids == [None, Event.LINK_LOST, None, Event.LINK_RESTORED, Event.LINK_LOST]
    assert [record.INDIREDIS_PEER for record in caplog.records[1:]] == ["[::1]:6379"] * 4
    assert {record.INDIREDIS_LINK for record in caplog.records[1:]} == {"redis"}
