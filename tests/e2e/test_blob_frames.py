"""Frames are never lost, with Debian's real CCD simulator: back-to-back short exposures give one file
each, byte-identical to what the driver sent, through driverstoredis and through inditoredis behind a
real indiserver; and a full blob folder refuses frames (counted) without restarting the driver.

What the driver sent is read from a copy of its output: the driver runs under a two-line wrapper
that passes its output through ``tee`` to a file.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from pathlib import Path

import pytest

import indiredis
from indiredis import tools
from indiredis.bridges import make_driverstoredis, make_inditoredis
from indiredis.protocol import IndiStreamParser, Message
from tests.support.bridgethread import run_bridge
from tests.support.indiclient import connect_device, prefixed
from tests.support.servers import IndiServerProcess, wait_for
from tests.support.smallfs import fill, small_tmpfs
from tests.support.subscriber import Subscriber

CCD = "CCD Simulator"
FRAMES = 20
HISTORY = {"blobvector": FRAMES}  # history entries kept per BLOB element (5 by default)
pytestmark = pytest.mark.timeout(300)


def teeing_driver(folder: Path) -> tuple[Path, Path]:
    """A driver executable that runs indi_simulator_ccd with its output copied to a file; both paths."""
    capture = folder / "ccd-output.xml"
    driver = folder / "indi_tee_ccd"
    driver.write_text(f'#!/bin/sh\nindi_simulator_ccd | tee "{capture}"\n')
    driver.chmod(0o755)
    return driver, capture


def sent_frames(capture: Path) -> list[bytes]:
    """The CCD1 frames the driver wrote, decoded, in order."""
    parser = IndiStreamParser(max_message_size=1 << 30)
    found = []
    for event in parser.feed(capture.read_bytes()):
        if isinstance(event, Message) and event.tag == "setBLOBVector" and event.name == "CCD1":
            found += [base64.b64decode(member.text) for member in event.members]
    return found


def prepare_ccd(rconn, server) -> None:
    """Connect the CCD, bin 4x4 (small frames) and wait until its BLOBs are enabled for the bridge."""
    connect_device(rconn, server, CCD)
    wait_for(lambda: "CCD_BINNING" in tools.properties(rconn, server, CCD), timeout=20, what="binning")
    tools.newnumbervector(rconn, server, "CCD_BINNING", CCD, {"HOR_BIN": "4", "VER_BIN": "4"})
    wait_for(
        lambda: (
            tools.elements_dict(rconn, server, "HOR_BIN", "CCD_BINNING", CCD).get("value", "").startswith("4")
        ),
        what="binning 4x4",
    )
    wait_for(
        lambda: tools.attributes_dict(rconn, server, "CCD1", CCD).get("blobs") == "Enabled", what="BLOBs on"
    )


def expose(rconn, server, subscriber: Subscriber, count: int) -> None:
    """Take ``count`` exposures of 0.05 s one after the other (each once the previous frame was
    published on from_indi)."""
    start = blob_publications(subscriber)
    for n in range(1, count + 1):
        tools.newnumbervector(rconn, server, "CCD_EXPOSURE", CCD, {"CCD_EXPOSURE_VALUE": "0.05"})
        wanted = start + n
        wait_for(lambda: blob_publications(subscriber) >= wanted, timeout=30, what=f"frame {n}")  # noqa: B023


def blob_publications(subscriber: Subscriber) -> int:
    return sum(1 for _, data in list(subscriber.items) if b"<setBLOBVector" in data and b'"CCD1"' in data)


def check_frames(rconn, server, folder: Path, capture: Path) -> None:
    """FRAMES distinct files, each byte-identical to a frame the driver sent, and the newest FRAMES
    history entries of the element pointing at FRAMES distinct files."""
    files = [p for p in folder.iterdir() if not p.name.startswith(".")]
    assert len(files) == FRAMES, sorted(p.name for p in files)
    sent = sent_frames(capture)
    assert len(sent) == FRAMES
    digest = lambda data: hashlib.sha256(data).hexdigest()  # noqa: E731
    assert sorted(digest(p.read_bytes()) for p in files) == sorted(digest(data) for data in sent)
    entries = tools.logs(rconn, server, FRAMES, "elementattributes", "CCD1", "CCD1", CCD) or []
    paths = {entry[1]["filepath"] for entry in entries}
    assert len(paths) == FRAMES and paths == {str(p) for p in files}


def test_twenty_short_exposures_are_twenty_files_with_driverstoredis(redis_proc, rconn, tmp_path):
    server = prefixed(redis_proc, "frames")
    driver, capture = teeing_driver(tmp_path)
    folder = tmp_path / "blobs"
    bridge = make_driverstoredis([str(driver)], server, blob_folder=str(folder), log_lengths=HISTORY)
    subscriber = Subscriber(rconn, server.from_indi_channel)
    try:
        with run_bridge(bridge):
            wait_for(lambda: bridge.ready, timeout=20, what="the driver running and Redis connected")
            prepare_ccd(rconn, server)
            expose(rconn, server, subscriber, FRAMES)
            check_frames(rconn, server, folder, capture)
    finally:
        subscriber.close()


def test_twenty_short_exposures_are_twenty_files_with_inditoredis(redis_proc, rconn, tmp_path):
    server = prefixed(redis_proc, "srvframes")
    driver, capture = teeing_driver(tmp_path)
    folder = tmp_path / "blobs"
    subscriber = Subscriber(rconn, server.from_indi_channel)
    try:
        with IndiServerProcess([str(driver)]) as indiserver:
            bridge = make_inditoredis(
                indiredis.indi_server("127.0.0.1", indiserver.port),
                server,
                blob_folder=str(folder),
                log_lengths=HISTORY,
            )
            with run_bridge(bridge):
                wait_for(lambda: bridge.ready, timeout=20, what="inditoredis connected")
                prepare_ccd(rconn, server)
                expose(rconn, server, subscriber, FRAMES)
                check_frames(rconn, server, folder, capture)
    finally:
        subscriber.close()


def test_a_full_blob_folder_refuses_frames_and_the_driver_goes_on(redis_proc, rconn, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    server = prefixed(redis_proc, "full")
    with small_tmpfs(tmp_path / "blobs", "8m") as folder:
        bridge = make_driverstoredis(["indi_simulator_ccd"], server, blob_folder=str(folder))
        subscriber = Subscriber(rconn, server.from_indi_channel)
        try:
            with run_bridge(bridge):
                wait_for(lambda: bridge.ready, timeout=20, what="the driver running and Redis connected")
                prepare_ccd(rconn, server)
                driver = bridge.indi_side.router.owner(CCD)
                pid = driver.process.pid
                expose(rconn, server, subscriber, 1)
                first = tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD)["filepath"]
                assert Path(first).stat().st_size > 100_000

                filler = fill(folder, leave=50_000)  # filled by something else
                expose(rconn, server, subscriber, 3)  # each frame still published (its data refused)
                blobs = bridge.client_side.store.blobs
                assert blobs.refused == 3
                assert tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD)["filepath"] == first
                refusals = [
                    r.getMessage() for r in caplog.records if "refused for lack of space" in r.getMessage()
                ]
                assert len(refusals) == 1, refusals  # logged once a minute with the count, not per frame

                filler.unlink()  # space returns: frames are stored again, nothing restarted
                expose(rconn, server, subscriber, 1)
                wait_for(
                    lambda: tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD)["filepath"] != first,
                    what="the next frame stored",
                )
                latest = Path(tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD)["filepath"])
                assert latest.read_bytes()[:6] == b"SIMPLE"
                assert driver.process.pid == pid and driver.running
                assert tools.elements_dict(rconn, server, "CONNECT", "CONNECTION", CCD).get("value") == "On"
                assert not any("restart" in r.getMessage() for r in caplog.records)
        finally:
            subscriber.close()
