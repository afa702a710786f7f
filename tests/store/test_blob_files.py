"""Frames are never lost: every BLOB its own file, unambiguous per element, kept by order of arrival,
left-overs removed, a full disk refusing frames (counted) without ending anything.

Real files (and a real tmpfs where a full disk is needed), a real redis-server and a real inditoredis
behind a stand-in indiserver that sends what no simulator sends.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import os
import time
from pathlib import Path

import indiredis
from indiredis.bridges import make_inditoredis
from indiredis.protocol import IndiStreamParser, Message
from indiredis.store.blobnames import element_prefix
from indiredis.store.blobs import BlobFolder, BlobStreams
from indiredis.store.freespace import is_refusal
from indiredis.store.retention import FolderListing, Retention, element_files
from tests.support.bridgethread import run_bridge
from tests.support.fakeindi import FakeIndiServer
from tests.support.servers import wait_for
from tests.support.smallfs import fill, small_tmpfs

KIB = 1024
STAMP = "2026-01-01T00:00:01"
DEFINE = (
    b'<defBLOBVector device="Cam" name="CCD1" state="Idle" perm="ro"><defBLOB name="IMG"/></defBLOBVector>\n'
)
FILEPATH_KEY = "indi_elementattributes:IMG:CCD1:Cam"


def blob_xml(data: bytes, stamp: str = STAMP, device: str = "Cam", name: str = "CCD1") -> bytes:
    text = base64.b64encode(data)
    return (
        (
            f'<setBLOBVector device="{device}" name="{name}" state="Ok" timestamp="{stamp}">'
            f'<oneBLOB name="IMG" size="{len(data)}" format=".fits">\n'
        ).encode()
        + text
        + b"\n</oneBLOB></setBLOBVector>\n"
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def frames(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


# ------------------------------------------------------------------ names
AMBIGUOUS = [
    ("CCD 1", "IMAGE", "IMG"),
    ("CCD_1", "IMAGE", "IMG"),
    ("CCD:1", "IMAGE", "IMG"),
    ("X", "CCD", "A_B"),
    ("X", "CCD_A", "B"),
    ("X", "CCD", "A"),
    ("X", "CCD", "A.B"),
    ("X", "CCD.A", "B"),
]


def test_every_frame_of_one_second_gets_its_own_file(tmp_path):
    folder = BlobFolder(tmp_path)
    payloads = [os.urandom(1000 + n) for n in range(5)]
    paths = [folder.write("Cam", "CCD1", "IMG", STAMP, ".fits", b64(data))[0] for data in payloads]
    assert len(set(paths)) == 5
    assert [p.read_bytes() for p in paths] == payloads
    assert paths[0].name == f"Cam_CCD1_IMG_{STAMP.replace(':', '_')}.fits"  # the free name: as before
    assert paths[1].name == f"Cam_CCD1_IMG_{STAMP.replace(':', '_')}-2.fits"


def test_a_name_taken_by_another_process_is_never_replaced(tmp_path):
    folder = BlobFolder(tmp_path)
    taken = folder.path_for("Cam", "CCD1", "IMG", STAMP, ".fits")
    taken.write_bytes(b"someone else's frame")
    path, _size = folder.write("Cam", "CCD1", "IMG", STAMP, ".fits", b64(b"mine"))
    assert path != taken and path.read_bytes() == b"mine"
    assert taken.read_bytes() == b"someone else's frame"


def test_element_names_are_unambiguous_whatever_characters_they_hold(tmp_path):
    assert len({element_prefix(*triple) for triple in AMBIGUOUS}) == len(AMBIGUOUS)
    folder = BlobFolder(tmp_path)
    for triple in AMBIGUOUS:
        for n in range(2):
            folder.write(*triple, STAMP, ".fits", b64(f"{triple} {n}".encode()))
    assert len(frames(tmp_path)) == 2 * len(AMBIGUOUS)
    listing = FolderListing(tmp_path)
    for triple in AMBIGUOUS:
        for files in (element_files(tmp_path, *triple), listing.element_files(*triple)):
            assert len(files) == 2, (triple, [f.name for f in files])
            assert {(tmp_path / f.name).read_bytes() for f in files} == {
                f"{triple} {n}".encode() for n in range(2)
            }
    # retention of one element never touches another's files, in the bridge's index or from a scan
    folder.pin(*AMBIGUOUS[0], str(tmp_path / folder.element_files(*AMBIGUOUS[0])[0][0]))  # recorded
    Retention(keep_files=1).prune(folder, *AMBIGUOUS[0])
    Retention(keep_files=1).prune(tmp_path, *AMBIGUOUS[5])
    assert len(frames(tmp_path)) == 2 * len(AMBIGUOUS) - 2
    for triple in AMBIGUOUS[1:5] + AMBIGUOUS[6:]:
        assert len(element_files(tmp_path, *triple)) == 2, triple


def test_ordinary_names_stay_readable():
    assert element_prefix("CCD Simulator", "CCD1", "CCD1").startswith("CCD_Simulator_CCD1_CCD1~")
    assert element_prefix("Guider-2", "CCD1", "CCD1") == "Guider-2_CCD1_CCD1_"


def test_the_web_list_scans_the_folder_once_for_every_element(tmp_path):
    folder = BlobFolder(tmp_path)
    for triple in AMBIGUOUS:
        folder.write(*triple, STAMP, ".fits", b64(b"x"))
    listing = FolderListing(tmp_path, max_age=3600)
    for triple in AMBIGUOUS:
        assert len(listing.element_files(*triple)) == 1
    assert listing.scans == 1
    folder.write(*AMBIGUOUS[0], STAMP, ".fits", b64(b"y"))
    folder_mtime = os.stat(tmp_path).st_mtime_ns
    os.utime(tmp_path, ns=(folder_mtime, folder_mtime + 1))  # the folder changed (whatever its clock)
    assert len(listing.element_files(*AMBIGUOUS[0])) == 2
    assert listing.scans == 2


def test_frames_of_the_old_untagged_names_stay_their_elements_oldest(tmp_path):
    """Upgrading: frames named before names were tagged (``CCD_Simulator_CCD1_CCD1_<stamp>.fits``) are
    the element's oldest frames, listed and pruned like the others; other files are left alone."""
    old = [tmp_path / f"CCD_Simulator_CCD1_CCD1_2026-01-01T00_00_0{n}.fits" for n in range(3)]
    others = [
        tmp_path / "CCD_Simulator_CCD1_CCD1_notes.txt",  # no timestamp: not a frame
        tmp_path / "Guider-2_CCD1_CCD1_2026-01-01T00_00_00.fits",  # another element
    ]
    for n, path in enumerate(old + others):
        path.write_bytes(b"%d" % n)
        os.utime(path, (1_000_000 + n, 1_000_000 + n))
    folder = BlobFolder(tmp_path)
    folder.start()
    new, _ = folder.write("CCD Simulator", "CCD1", "CCD1", STAMP, ".fits", b64(b"new"))
    names = [name for name, _size in folder.element_files("CCD Simulator", "CCD1", "CCD1")]
    assert names == [new.name] + [path.name for path in reversed(old)]  # newest arrival first
    listed = FolderListing(tmp_path).element_files("CCD Simulator", "CCD1", "CCD1")
    assert sorted(file.name for file in listed) == sorted(names)
    assert sorted(f.name for f in element_files(tmp_path, "CCD Simulator", "CCD1", "CCD1")) == sorted(names)
    folder.pin("CCD Simulator", "CCD1", "CCD1", str(new))
    removed = Retention(keep_files=2).prune(folder, "CCD Simulator", "CCD1", "CCD1")
    assert removed == [old[1].name, old[0].name]
    assert frames(tmp_path) == sorted([new, old[2], *others])
    assert [name for name, _ in folder.element_files("Guider-2", "CCD1", "CCD1")] == [others[1].name]


# ------------------------------------------------------------------ retention by arrival
def test_retention_keeps_the_newest_arrivals_whatever_the_clock(tmp_path):
    folder = BlobFolder(tmp_path)
    written = []
    for n in range(4):
        path, _ = folder.write("Cam", "CCD1", "IMG", f"2026-01-01T00:00:0{n}", ".fits", b64(b"%d" % n))
        written.append(path)
        later = time.time() - 3600 * (n + 1)  # the clock stepped back an hour before each frame
        os.utime(path, (later, later))
    folder.pin("Cam", "CCD1", "IMG", str(written[-1]))
    assert Retention(keep_files=2).prune(folder, "Cam", "CCD1", "IMG") == [p.name for p in written[1::-1]]
    assert frames(tmp_path) == sorted(written[2:])


def test_steady_retention_logs_a_bounded_number_of_lines(tmp_path, caplog):
    """Once the folder is full a file goes with every frame: a DEBUG line each, and per element one
    INFO line at the first removal, then a summary at most once a period (issue 24: bounded journal
    lines per minute in steady state)."""
    folder = BlobFolder(tmp_path)
    retention = Retention(keep_files=3)
    caplog.set_level(logging.DEBUG, logger="indiredis.store.retention")

    def frames_arrive(count: int) -> None:
        for n in range(count):
            for element in ("IMG", "IMG2"):
                path, _ = folder.write("Cam", "CCD1", element, STAMP, ".fits", b64(b"%d" % n))
                folder.pin("Cam", "CCD1", element, str(path))
                assert len(retention.prune(folder, "Cam", "CCD1", element)) <= 1

    def infos() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]

    frames_arrive(500)
    assert len(infos()) == 2  # the first removal of each element
    assert "removed 1 old file(s) of Cam.CCD1.IMG " in infos()[0]
    debugs = [r for r in caplog.records if r.levelno == logging.DEBUG and "blob retention" in r.message]
    assert len(debugs) == 2 * 497
    caplog.clear()
    later = time.monotonic() + retention.journal.period
    retention.journal.clock = lambda: later  # an hour later: one summary per element, with the count
    frames_arrive(1)
    assert len(infos()) == 2
    assert "removed 497 old file(s) of Cam.CCD1.IMG (0.0 MiB) in the last 60 min" in infos()[0]
    assert len(frames(tmp_path)) == 6


def test_never_the_file_a_filepath_points_at_nor_one_not_recorded_yet(tmp_path):
    folder = BlobFolder(tmp_path)
    written = [folder.write("Cam", "CCD1", "IMG", STAMP, ".fits", b64(b"%d" % n))[0] for n in range(4)]
    folder.pin("Cam", "CCD1", "IMG", str(written[1]))  # the store points at the second; 3, 4 on their way
    assert Retention(keep_files=1).prune(folder, "Cam", "CCD1", "IMG") == [written[0].name]
    assert frames(tmp_path) == sorted(written[1:])  # the old code deleted the third, not recorded yet
    folder.pin("Cam", "CCD1", "IMG", str(written[3]))  # the last one recorded: the others may go
    assert Retention(keep_files=1).prune(folder, "Cam", "CCD1", "IMG") == [written[2].name, written[1].name]
    assert frames(tmp_path) == [written[3]]


def test_the_bound_holds_while_a_frame_is_written(tmp_path):
    """Retention runs as a frame is opened, counting it (its declared size) and the frames not
    recorded yet, so the folder never holds more than the bound, a frame being written included,
    beyond frames not recorded yet (docs/datapath.md; the old code pruned once the frame was
    recorded, so the folder held the bound plus the frame being written, and the soak's mqtt chain
    went above its bound)."""
    size = 10 * KIB
    for retention in (Retention(keep_files=3), Retention(keep_bytes=3 * size)):
        folder = BlobFolder(tmp_path / str(retention.keep_files))
        folder.retention = retention
        for n in range(8):
            data = os.urandom(size)
            sink = folder.open("Cam", "CCD1", "IMG", STAMP, ".fits", str(size))
            on_disk = list(folder.folder.iterdir())  # the frame being written included
            assert len(on_disk) <= 3 and sum(p.stat().st_size for p in on_disk) <= 3 * size, n
            sink.write(base64.b64encode(data))
            stored = sink.close()
            assert Path(stored.path).read_bytes() == data
            folder.pin("Cam", "CCD1", "IMG", stored.path)  # the store recorded it
        # a frame not recorded yet is never deleted for the next one: the bound waits for it
        unrecorded = folder.write("Cam", "CCD1", "IMG", STAMP, ".fits", b64(os.urandom(size)))[0]
        sink = folder.open("Cam", "CCD1", "IMG", STAMP, ".fits", str(size))
        assert unrecorded.exists() and len(frames(folder.folder)) == 2  # the recorded one and it
        sink.abort()
        folder.close()


def test_a_clock_stepped_back_never_deletes_new_frames_in_a_bridge(redis_host, rconn, tmp_path):
    """Two frames written before the clock went back an hour (their mtimes ahead of now), then two
    new ones: retention of 2 keeps the two new ones, and the file Redis points at exists."""
    folder = tmp_path / "blobs"
    folder.mkdir()
    future = time.time() + 3600
    for n in range(2):
        old = folder / f"Cam_CCD1_IMG_2026-01-01T09_00_0{n}.fits"
        old.write_bytes(b"before the step")
        os.utime(old, (future + n, future + n))
    with FakeIndiServer() as fake:
        bridge = make_inditoredis(
            indiredis.indi_server("127.0.0.1", fake.port),
            redis_host,
            blob_folder=str(folder),
            blob_retention=Retention(keep_files=2),
        )
        with run_bridge(bridge):
            wait_for(lambda: b"getProperties" in fake.received and bridge.ready, what="the bridge")
            fake.send(DEFINE)
            wait_for(lambda: b"enableBLOB" in fake.received, what="enableBLOB")
            sent = [os.urandom(500), os.urandom(600)]
            for data in sent:
                fake.send(blob_xml(data))
            wait_for(
                lambda: rconn.hget(FILEPATH_KEY, "size") == b"600" and len(frames(folder)) == 2,
                what="the second frame stored and the old files removed",
            )
            assert sorted(p.read_bytes() for p in frames(folder)) == sorted(sent)
            assert Path(rconn.hget(FILEPATH_KEY, "filepath").decode()).read_bytes() == sent[1]


# ------------------------------------------------------------------ left-overs and early frames
def test_leftover_incoming_files_are_removed_at_start(redis_host, tmp_path, caplog):
    folder = tmp_path / "blobs"
    folder.mkdir()
    (folder / ".incoming-killed1").write_bytes(b"half a frame")
    (folder / ".incoming-killed2").write_bytes(b"")
    held = folder / ".incoming-being-written"
    held.write_bytes(b"another bridge writes this one")
    caplog.set_level(logging.INFO)
    with open(held, "rb") as lock, FakeIndiServer() as fake:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a bridge sharing the folder is writing it
        bridge = make_inditoredis(
            indiredis.indi_server("127.0.0.1", fake.port), redis_host, blob_folder=str(folder)
        )
        with run_bridge(bridge):
            wait_for(lambda: not (folder / ".incoming-killed1").exists(), what="left-overs removed")
            assert not (folder / ".incoming-killed2").exists()
            assert held.exists()
    lines = [r.getMessage() for r in caplog.records if "left-over" in r.getMessage()]
    assert len(lines) == 1 and "removed 2 left-over .incoming- file(s)" in lines[0], lines


def test_a_frame_before_its_redefinition_is_kept_and_named(redis_host, rconn, tmp_path, caplog):
    folder = tmp_path / "blobs"
    caplog.set_level(logging.INFO)
    with FakeIndiServer() as fake:
        bridge = make_inditoredis(
            indiredis.indi_server("127.0.0.1", fake.port), redis_host, blob_folder=str(folder)
        )
        with run_bridge(bridge):
            wait_for(lambda: b"getProperties" in fake.received and bridge.ready, what="the bridge")
            early = os.urandom(700)
            fake.send(blob_xml(early))  # (the model was just cleared: a reconnection)
            fake.send(b'<message device="Cam" message="marker"/>\n')
            wait_for(lambda: rconn.get("indi_devicemessages:Cam"), what="the frame handled")
            fake.send(DEFINE)
            wait_for(lambda: rconn.exists("indi_attributes:CCD1:Cam"), what="the definition")
    kept = frames(folder)
    assert [p.read_bytes() for p in kept] == [early]
    assert [f.name for f in FolderListing(folder).element_files("Cam", "CCD1", "IMG")] == [kept[0].name]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and kept[0].name in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]


# ------------------------------------------------------------------ a disk that cannot fill
def test_a_full_disk_while_a_frame_streams_is_a_refusal_never_an_exception(tmp_path, caplog):
    with small_tmpfs(tmp_path / "small", "1m") as small:
        folder = BlobFolder(small, min_free=0)  # no minimum: the disk fills in the middle of the frame
        fill(small, leave=64 * KIB)
        parser = IndiStreamParser(blobs=BlobStreams(folder))
        events = parser.feed(blob_xml(os.urandom(300 * KIB)))
        (message,) = [e for e in events if isinstance(e, Message)]
        problem = message.members[0].blob.problem
        assert is_refusal(problem), problem
        assert folder.refused == 1
        assert [p.name for p in small.iterdir()] == ["filler.bin"]  # nothing half-written left
        (small / "filler.bin").unlink()
        (message,) = [e for e in parser.feed(blob_xml(b"back")) if isinstance(e, Message)]
        assert Path(message.members[0].blob.path).read_bytes() == b"back"


def test_the_oldest_frames_make_room_then_blobs_are_refused_and_counted(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    with small_tmpfs(tmp_path / "small", "4m") as small:
        folder = BlobFolder(small, min_free=1024 * KIB)
        a = [
            folder.write("Cam", "CCD1", "A", STAMP, ".fits", b64(os.urandom(300 * KIB)))[0] for _ in range(3)
        ]
        (b,) = [folder.write("Cam", "CCD1", "B", STAMP, ".fits", b64(os.urandom(300 * KIB)))[0]]
        folder.pin("Cam", "CCD1", "A", str(a[0]))  # Redis points at A's oldest frame
        fill(small, leave=1200 * KIB)
        sink = folder.open("Cam", "CCD1", "B", STAMP, ".fits", str(400 * KIB))  # room made
        sink.abort()
        assert not a[1].exists()  # the oldest frame neither pinned nor the newest of its element
        assert a[0].exists() and a[2].exists() and b.exists()
        freed = [r.getMessage() for r in caplog.records if "MiB freed" in r.getMessage()]
        assert len(freed) == 1 and "removed the 1 oldest frame(s), 0.3 MiB freed" in freed[0], freed
        fill(small, leave=100 * KIB)  # filled by something else: nothing more may go
        streams = BlobStreams(folder)
        for _ in range(3):
            assert is_refusal(
                streams.open(Message("setBLOBVector", {"device": "Cam", "name": "CCD1"}), {"name": "A"})
                .close()
                .problem
            )
        assert folder.refused == 3
        refusals = [r.getMessage() for r in caplog.records if "refused for lack of space" in r.getMessage()]
        assert len(refusals) == 1, refusals  # once a minute, not once a frame
        (small / "filler.bin").unlink()
        path, _ = folder.write("Cam", "CCD1", "A", STAMP, ".fits", b64(b"again"))
        assert path.read_bytes() == b"again"
        assert any("space returned" in r.getMessage() for r in caplog.records)
