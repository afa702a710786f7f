"""BLOBs stream to the blob folder in bounded memory, and broken ones leave nothing behind.

Real files, a real redis-server and real bridges (in this process, or in a child process whose
peak memory is read from /proc); a stand-in indiserver sends what no simulator sends.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

import indiredis
from indiredis.bridges import make_inditoredis
from indiredis.indiwsgi.responses import FileResponse
from indiredis.protocol import IndiStreamParser, Message
from indiredis.store.blobs import Base64Stream, BlobError, BlobFolder, BlobStreams
from tests.support.bridgethread import run_bridge
from tests.support.fakeindi import FakeIndiServer
from tests.support.procstats import peak_rss_mib
from tests.support.servers import wait_for

MIB = 1024 * 1024
DEFINE = (
    b'<defBLOBVector device="Cam" name="CCD1" state="Idle" perm="ro">'
    b'<defBLOB name="IMG"/></defBLOBVector>\n'
    b'<defNumberVector device="Cam" name="SEQ" state="Idle" perm="ro">'
    b'<defNumber name="N" format="%.0f" min="0" max="0" step="0">0</defNumber></defNumberVector>\n'
)


def wrapped(data: bytes) -> bytes:
    text = base64.b64encode(data)
    return b"\n".join(text[i : i + 72] for i in range(0, len(text), 72))


def blob_xml(body: bytes, size: int | str, fmt: str = ".fits", stamp: str = "2026-01-01T00:00:01") -> bytes:
    return (
        (
            f'<setBLOBVector device="Cam" name="CCD1" state="Ok" timestamp="{stamp}">'
            f'<oneBLOB name="IMG" size="{size}" format="{fmt}">\n'
        ).encode()
        + body
        + b"\n</oneBLOB></setBLOBVector>\n"
    )


def seq(n: int) -> bytes:
    return (
        f'<setNumberVector device="Cam" name="SEQ" state="Ok"><oneNumber name="N">{n}</oneNumber>'
        f"</setNumberVector>\n"
    ).encode()


def folder_listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


# ------------------------------------------------------------------------------- the parser
def test_the_parser_never_buffers_a_blob(tmp_path):
    """Structural bound: whatever the BLOB's size, the parser holds no more than one read."""
    data = random.Random(1).randbytes(12 * MIB + 7)
    stream = blob_xml(wrapped(data), len(data)) + seq(1)
    parser = IndiStreamParser(max_message_size=64 * 1024, blobs=BlobStreams(BlobFolder(tmp_path)))
    events, peak = [], 0
    for start in range(0, len(stream), 65536):
        events += parser.feed(stream[start : start + 65536])
        peak = max(peak, parser.buffered)
    assert peak <= 65536 + 512  # a read, plus the message's head
    message = events[0]
    assert isinstance(message, Message) and message.members[0].text == ""
    stored = message.members[0].blob
    assert stored is not None and stored.size == len(data) and not stored.problem
    assert Path(stored.path).read_bytes() == data
    assert isinstance(events[1], Message) and events[1].tag == "setNumberVector"


def test_a_size_of_non_ascii_digits_is_no_size_and_never_raises(tmp_path):
    """'\u00b2'.isdigit() is True but int() refuses it: the parser must not raise on such input."""
    stream = (
        b'<setBLOBVector device="d" name="n"><oneBLOB name="e" size="\xc2\xb2" format=".fits">QUFB'
        b"</oneBLOB></setBLOBVector>" + seq(1)
    )
    parser = IndiStreamParser(blobs=BlobStreams(BlobFolder(tmp_path)))
    events = parser.feed(stream)
    assert isinstance(events[-1], Message) and events[-1].tag == "setNumberVector"


@pytest.mark.parametrize("read", [1, 3, 7, 4096])
def test_compressed_blob_streams_at_any_split(tmp_path, read, decoder):
    data = b"SIMPLE  = T / a FITS header line" * 500
    stream = blob_xml(wrapped(zlib.compress(data)), len(data), ".fits.z")
    parser = IndiStreamParser(blobs=BlobStreams(BlobFolder(tmp_path)))
    events = []
    for start in range(0, len(stream), read):
        events += parser.feed(stream[start : start + read])
    stored = events[0].members[0].blob
    assert stored.path.endswith(".fits") and Path(stored.path).read_bytes() == data


def test_base64_stream_decodes_like_one_shot_at_any_split(decoder):
    rng = random.Random(2)
    for _ in range(200):
        data = rng.randbytes(rng.randrange(0, 300))
        text = wrapped(data) + b"\n"
        decoder, out, at = Base64Stream(), [], 0
        while at < len(text):
            step = rng.randrange(1, 9)
            out += decoder.decode(text[at : at + step])
            at += step
        decoder.finish()
        assert b"".join(out) == data


@pytest.mark.parametrize("text", [b"QUJD*EFC", b"QQ==QUJD", b"QUJDR", b"QU=D"])
def test_base64_stream_refuses_broken_text(text, decoder):
    decoder = Base64Stream()
    with pytest.raises(BlobError):
        decoder.decode(text)
        decoder.finish()


# ------------------------------------------------------------- a bridge in a child process
CHILD = """
import logging, signal, sys, indiredis
from indiredis.bridges import make_inditoredis
from indiredis.core.bridge import run_blocking
logging.basicConfig(level=logging.WARNING)
signal.signal(signal.SIGTERM, signal.default_int_handler)
run_blocking(make_inditoredis(indiredis.indi_server("127.0.0.1", {indi}),
             indiredis.redis_server("127.0.0.1", {redis}), blob_folder={folder!r}))
"""
MEMORY_BOUND_MIB = 100


def pieces(size: int, digest: hashlib._Hash) -> Iterator[bytes]:
    """Line-wrapped base64 of ``size`` pseudo-random bytes, made (and hashed) piece by piece."""
    rng = random.Random(3)
    left = size
    while left:
        chunk = rng.randbytes(min(left, 54 * 20_000))
        digest.update(chunk)
        left -= len(chunk)
        yield wrapped(chunk) + b"\n"


@pytest.mark.timeout(300)
def test_a_blob_larger_than_the_memory_bound_is_written_in_bounded_memory(redis_proc, rconn, tmp_path):
    size = (MEMORY_BOUND_MIB + 50) * MIB
    folder = tmp_path / "blobs"
    with FakeIndiServer() as fake:
        program = CHILD.format(indi=fake.port, redis=redis_proc.port, folder=str(folder))
        bridge = subprocess.Popen([sys.executable, "-c", program], cwd=Path(__file__).parents[2])
        try:
            wait_for(lambda: b"getProperties" in fake.received, timeout=30, what="the bridge")
            fake.send(DEFINE)
            wait_for(lambda: b"enableBLOB" in fake.received, what="enableBLOB")
            digest = hashlib.sha256()
            fake.send(b'<setBLOBVector device="Cam" name="CCD1" state="Ok" timestamp="2026-01-01T00:00:01">')
            fake.send(f'<oneBLOB name="IMG" size="{size}" format=".fits">\n'.encode())
            for piece in pieces(size, digest):
                fake.send(piece)
            fake.send(b"</oneBLOB></setBLOBVector>\n")
            key = "indi_elementattributes:IMG:CCD1:Cam"
            wait_for(lambda: rconn.hget(key, "filepath"), timeout=240, what="the BLOB's file")
            peak = peak_rss_mib(bridge.pid)
        finally:
            bridge.terminate()
            bridge.wait(30)
    path = Path(rconn.hget(key, "filepath").decode())
    assert rconn.hget(key, "size") == str(size).encode()
    written = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(MIB), b""):
            written.update(block)
    assert written.hexdigest() == digest.hexdigest()
    assert peak <= MEMORY_BOUND_MIB, f"bridge peak RSS {peak:.0f} MiB for a {size // MIB} MiB BLOB"


# ------------------------------------------------------------------ broken BLOBs, in a bridge
@pytest.fixture
def bridge_world(redis_host, rconn, tmp_path):
    folder = tmp_path / "blobs"
    with FakeIndiServer() as fake:
        bridge = make_inditoredis(
            indiredis.indi_server("127.0.0.1", fake.port), redis_host, blob_folder=str(folder)
        )
        with run_bridge(bridge):
            wait_for(lambda: b"getProperties" in fake.received and bridge.ready, what="the bridge")
            fake.send(DEFINE)
            wait_for(lambda: b"enableBLOB" in fake.received, what="enableBLOB")
            yield fake, folder


def value_of_n(rconn) -> bytes | None:
    return rconn.hget("indi_elementattributes:N:SEQ:Cam", "value")


DATA = bytes(range(256)) * 40
BROKEN = {
    "size larger than the data": (blob_xml(wrapped(DATA), len(DATA) + 1), "declared size"),
    "size smaller than the data": (blob_xml(wrapped(DATA), len(DATA) - 100), "declared size"),
    "broken base64": (blob_xml(wrapped(DATA)[:500] + b"*!*" + wrapped(DATA)[500:], len(DATA)), "base64"),
    "truncated base64": (blob_xml(wrapped(DATA)[:-1], len(DATA)), "base64"),
    "corrupt compressed data": (
        blob_xml(wrapped(b"\x78\x9c" + bytes(range(200))), 5000, ".fits.z"),
        "corrupt compressed data",
    ),
    "compressed stream cut short": (
        blob_xml(wrapped(zlib.compress(DATA)[:-20]), len(DATA), ".fits.z"),
        "corrupt compressed data",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_blob_is_logged_once_leaves_no_file_and_the_stream_goes_on(
    bridge_world, rconn, caplog, case, decoder
):
    fake, folder = bridge_world
    caplog.set_level(logging.WARNING)
    xml, reason = BROKEN[case]
    fake.send(xml + seq(1))
    wait_for(lambda: value_of_n(rconn) == b"1", what="the message after the broken BLOB")
    logged = [r for r in caplog.records if "IMG" in r.getMessage() and r.levelno >= logging.WARNING]
    assert len(logged) == 1 and reason in logged[0].getMessage(), [r.getMessage() for r in logged]
    assert folder_listing(folder) == []  # no file in place, no temporary file left
    assert rconn.hget("indi_elementattributes:IMG:CCD1:Cam", "filepath") == b""
    # and a good BLOB still gets through
    fake.send(blob_xml(wrapped(DATA), len(DATA)) + seq(2))
    wait_for(lambda: value_of_n(rconn) == b"2", what="the next messages")
    assert [path.read_bytes() for path in folder.iterdir()] == [DATA]


def test_a_stream_cut_in_the_middle_of_a_blob_leaves_no_file(bridge_world, rconn, caplog):
    fake, folder = bridge_world
    caplog.set_level(logging.WARNING)
    head = blob_xml(wrapped(DATA * 50), len(DATA) * 50)
    fake.send(head[: len(head) // 2])
    wait_for(lambda: any(p.name.startswith(".incoming-") for p in folder.iterdir()), what="a temporary file")
    fake.drop_clients()
    wait_for(lambda: "stream ended inside <setBLOBVector>" in caplog.text, what="the log line")
    wait_for(lambda: folder_listing(folder) == [], what="the temporary file to go")
    wait_for(lambda: fake.clients and b"getProperties" in fake.received, what="the bridge to reconnect")
    fake.send(DEFINE + seq(3))
    wait_for(lambda: value_of_n(rconn) == b"3", what="messages after the reconnection")
    assert caplog.text.count("stream ended inside") == 1


# --------------------------------------------------------------------------- web download
def test_a_download_streams_through_the_servers_file_wrapper(tmp_path):
    path = tmp_path / "image.fits"
    path.write_bytes(b"SIMPLE" * 1000)
    seen: list[tuple[object, int]] = []

    def file_wrapper(handle, block_size):
        seen.append((handle, block_size))
        return iter(lambda: handle.read(block_size), b"")

    headers: list = []
    response = FileResponse(path, [])
    body = response.stream({"wsgi.file_wrapper": file_wrapper}, lambda status, h: headers.extend(h))
    assert b"".join(body) == path.read_bytes()
    assert seen and ("Content-Length", "6000") in headers
    plain = FileResponse(path, []).stream({}, lambda status, h: None)
    assert b"".join(plain) == path.read_bytes()
