"""Where the driver pool streams a driver's BLOB: to the client side's blob folder, or (when another
driver snoops it) whole in the message, so that the snooper gets it as sent."""

from __future__ import annotations

from pathlib import Path

from indiredis.links.indi_side.drivers import DriverPool
from indiredis.protocol.messages import Message
from indiredis.store.blobs import BlobFolder, BlobStreams
from tests.links.test_driverpool import defined, fake_driver, msg, run, running

BLOB_COMMAND = '<newTextVector device="Cam" name="CMD"><oneText name="TEXT">blob</oneText></newTextVector>'


def is_blob(item: object) -> bool:
    return isinstance(item, Message) and item.tag == "setBLOBVector"


def test_a_blob_nobody_snoops_streams_to_the_folder(tmp_path):
    folder = tmp_path / "blobs"
    pool = DriverPool([fake_driver(tmp_path, "fake_cam", "Cam")], blobs=BlobStreams(BlobFolder(folder)))

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(defined("Cam", "IMAGE"), "definitions")
            await to_indi.put(msg('<enableBLOB device="Cam">Also</enableBLOB>'))
            await to_indi.put(msg(BLOB_COMMAND))
            blob = await inbox.wait(is_blob, "the BLOB")
            assert isinstance(blob, Message)
            member = blob.members[0]
            assert member.text == "" and member.blob is not None and not member.blob.problem
            assert Path(member.blob.path).read_bytes() == b"abc"

    run(scenario())


def test_a_blob_another_driver_snoops_is_held_whole_and_reaches_it(tmp_path):
    folder = tmp_path / "blobs"
    cam = fake_driver(tmp_path, "fake_cam", "Cam")
    guider = fake_driver(tmp_path, "fake_guider", "Guider", snoop="Cam:", snoop_blobs="Cam")
    pool = DriverPool([cam, guider], blobs=BlobStreams(BlobFolder(folder)))

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(defined("Cam", "IMAGE"), "definitions")
            await inbox.wait(defined("Guider", "CMD"), "the snooper's definitions")
            await to_indi.put(msg('<enableBLOB device="Cam">Also</enableBLOB>'))
            await to_indi.put(msg(BLOB_COMMAND))
            blob = await inbox.wait(is_blob, "the BLOB")
            assert isinstance(blob, Message)
            assert blob.members[0].text == "YWJj" and blob.members[0].blob is None  # whole, for the snooper
            assert await inbox.report("Guider", "got setBLOBVector Cam/IMAGE") == (
                "got setBLOBVector Cam/IMAGE FRAME=3"
            )
            assert not folder.exists() or not list(folder.iterdir())  # the store writes it, not the pool

    run(scenario())


def test_a_blob_the_client_side_withholds_is_dropped_as_it_streams(tmp_path):
    folder = tmp_path / "blobs"
    pool = DriverPool([fake_driver(tmp_path, "fake_cam", "Cam")], blobs=BlobStreams(BlobFolder(folder)))
    acks = lambda i: isinstance(i, Message) and i.tag == "setTextVector" and i.name == "CMD"  # noqa: E731

    async def scenario() -> None:
        async with running(pool) as (inbox, to_indi):
            await inbox.wait(defined("Cam", "IMAGE"), "definitions")
            await to_indi.put(msg(BLOB_COMMAND))  # enableBLOB Never, the default
            await inbox.wait(acks, "the command's acknowledgement")
            assert not inbox.matching(is_blob) and not folder.exists()

    run(scenario())
