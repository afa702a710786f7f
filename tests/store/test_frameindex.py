"""The blob folder's frame index alone: pure bookkeeping, no file touched (the folder's own behaviour is
tested in test_blob_files.py)."""

from __future__ import annotations

from indiredis.store.blobnames import element_prefix
from indiredis.store.frameindex import FrameIndex

CCD = ("CCD", "CCD1", "CCD1")
GUIDER = ("Guider", "CCD1", "CCD1")


def frames(index: FrameIndex, element: tuple[str, str, str], *stamps: str) -> list[str]:
    names = [f"{element_prefix(*element)}{stamp}.fits" for stamp in stamps]
    for name in names:
        index.add(name, element_prefix(*element), 10)
    return names


def test_frames_are_kept_in_order_of_arrival_and_the_newest_and_pinned_never_make_room() -> None:
    index = FrameIndex()
    first, second, third = frames(index, CCD, "3", "1", "2")  # the clock stepped back: arrival decides
    (guide,) = frames(index, GUIDER, "0")
    assert index.newest_first(CCD) == [(third, 10), (second, 10), (first, 10)]
    index.pin(CCD, second)
    assert list(index.oldest_removable()) == [(first, 10)]  # not the pinned, not a newest (guide, third)
    assert index.recorded(CCD) == {first}  # arrived before the file the store points at
    assert list(index.deletable([guide, second, "unknown", first])) == [(guide, 10), (first, 10)]
    index.forget(first)
    assert index.newest_first(CCD) == [(third, 10), (second, 10)] and index.pinned() == {second}


def test_frames_found_at_start_are_recorded_until_the_store_points_at_one() -> None:
    index = FrameIndex()
    old = f"{element_prefix(*CCD)}0.fits"
    index.add(old, element_prefix(*CCD), 5, found=True)
    (new,) = frames(index, CCD, "1")
    assert index.recorded(CCD) == {old}
    index.pin(CCD, new)
    assert index.recorded(CCD) == {old}
    index.forget(old)
    assert index.recorded(CCD) == set()


def test_untagged_frames_of_an_element_found_at_start_count_as_its_oldest() -> None:
    index = FrameIndex()
    element = ("CCD Simulator", "CCD1", "CCD1")
    legacy = "CCD_Simulator_CCD1_CCD1_2026-01-01T00_00_01.fits"
    index.add(legacy, "CCD_Simulator_CCD1_", 7, found=True)  # the prefix its name seemed to have
    (new,) = frames(index, element, "2026-01-02T00_00_01")
    assert index.newest_first(element) == [(new, 10), (legacy, 7)]
    assert [name for name, _size in index.oldest_removable()] == [legacy]
