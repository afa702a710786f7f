"""The blob folder's free-space guard: ``min_free`` bytes are kept free on the folder's file system by
deleting the oldest frames, and when that is not enough new BLOBs are refused until space returns.

A refusal is a :class:`~indiredis.errors.BlobError` whose text begins with :data:`REFUSED`; the store
does not log each one: the guard counts them and logs a warning when refusals begin, then at most once
every :attr:`FreeSpaceGuard.REFUSAL_LOG_PERIOD` seconds with the count, and once when space returns.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import BlobError

log = logging.getLogger("indiredis.store.blobs")  # the blob folder's lines keep their logger name

MIB = 1024 * 1024

#: how the problem of a BLOB refused for lack of space begins (the store does not log each one)
REFUSED = "refused: "


def is_refusal(problem: str) -> bool:
    """Whether a BLOB's problem is a refusal for lack of space (counted and logged by the folder)."""
    return problem.startswith(REFUSED)


def oldest_enough(frames: Iterable[tuple[str, int]], short: int) -> list[str]:
    """The first of ``frames`` (name, size) whose sizes add up to ``short`` bytes, or all of them."""
    doomed: list[str] = []
    total = 0
    for name, size in frames:
        if total >= short:
            break
        doomed.append(name)
        total += size
    return doomed


class FreeSpaceGuard:
    """Keeps ``min_free`` bytes free on the file system of ``folder`` (None: 1 GiB or 5 % of the file
    system, whichever is smaller; 0: no minimum), and counts and logs the BLOBs refused for lack of
    space.  The blob folder holds its lock around every call."""

    #: seconds between two warnings that BLOBs are being refused for lack of space
    REFUSAL_LOG_PERIOD = 60.0

    def __init__(self, folder: Path, min_free: int | None = None) -> None:
        self.folder = folder
        self.min_free = min_free
        self.refused = 0  #: BLOBs refused for lack of space since the bridge started
        self._refused_unlogged = 0
        self._refusing = False
        self._refusal_logged = 0.0

    def minimum_free(self, stat: os.statvfs_result) -> int:
        """Bytes to keep free on the folder's file system."""
        if self.min_free is not None:
            return self.min_free
        return min(1024 * 1024 * 1024, stat.f_blocks * stat.f_frsize // 20)

    def make_room(
        self, needed: int, oldest: Iterable[tuple[str, int]], remove: Callable[[list[str]], int]
    ) -> None:
        """See that ``needed`` bytes more leave the minimum free: ``remove`` the first of the ``oldest``
        frames (name, size) if that helps (one warning saying how much was freed), else raise a
        BlobError (a refusal)."""
        if self.min_free == 0:
            return
        stat = os.statvfs(self.folder)
        minimum = self.minimum_free(stat)
        short = minimum + needed - stat.f_bavail * stat.f_frsize
        if short <= 0:
            self._space_returned()
            return
        doomed = oldest_enough(oldest, short)
        freed = remove(doomed) if doomed else 0
        if freed:
            log.warning(
                "blob folder %s: less than %d MiB free; removed the %d oldest frame(s), %.1f MiB freed",
                self.folder,
                minimum // MIB,
                len(doomed),
                freed / MIB,
            )
        if freed < short:
            raise self.refuse(
                f"{(stat.f_bavail * stat.f_frsize + freed) // MIB} MiB free on the file system of "
                f"{self.folder}, {(minimum + needed) // MIB} MiB needed"
            )
        self._space_returned()

    def refuse(self, why: str) -> BlobError:
        """Count a BLOB refused for lack of space; a warning when refusals begin and then at most once
        every REFUSAL_LOG_PERIOD seconds, with the count."""
        self.refused += 1
        self._refused_unlogged += 1
        now = time.monotonic()
        if not self._refusing or now - self._refusal_logged >= self.REFUSAL_LOG_PERIOD:
            log.warning(
                "blob folder %s: BLOBs refused for lack of space: %d refused (%d since the bridge "
                "started); %s",
                self.folder,
                self._refused_unlogged,
                self.refused,
                why,
            )
            self._refusal_logged, self._refused_unlogged = now, 0
        self._refusing = True
        return BlobError(REFUSED + why)

    def _space_returned(self) -> None:
        if self._refusing:
            self._refusing = False
            log.warning(
                "blob folder %s: space returned, BLOBs stored again (%d refused since the bridge started)",
                self.folder,
                self.refused,
            )
            self._refused_unlogged = 0
