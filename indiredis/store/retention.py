"""The files of one BLOB element in the blob folder: listing (newest first) and retention.

A BLOB element's files begin with its :func:`~indiredis.store.blobnames.element_prefix`, unambiguous
per element, so they are found by that prefix (:func:`~indiredis.store.blobnames.is_element_file`), with
the frames of the old, untagged names (:func:`~indiredis.store.blobnames.is_legacy_file`).
Retention keeps the newest ``keep_files`` files and at most ``keep_bytes`` bytes per element
(0: no limit), newest by order of arrival as the bridge's :class:`~indiredis.store.blobs.BlobFolder`
indexed them (a clock stepped back cannot make a new frame the oldest), and never deletes the newest
frame of an element nor a file a ``filepath`` points at.  The free space of the whole folder is the
folder's own guard (``blob_min_free_mb``).

Routine retention is quiet in the journal: once the folder is full, a file goes with every frame, so
each removal is a DEBUG line, and an INFO line per element comes with its first removal and then at
most once every :attr:`PruneJournal.period` seconds (an hour), with the count and bytes removed since
the previous one.  The free-space guard's warnings are not affected.

:class:`FolderListing` lists elements' files for the web client with one scan of the folder shared by
every element of a page (made again only when the folder changed).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .blobnames import element_file_matcher
from .blobs import BlobFolder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlobFile:
    """A received file: its name in the folder, size and modification time."""

    name: str
    size: int
    mtime: float


def _scan(folder: str | os.PathLike[str]) -> list[BlobFile]:
    """Every file of the folder (not the ``.incoming-`` ones), newest modified first."""
    found: list[BlobFile] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    if entry.is_file(follow_symlinks=False):
                        stat = entry.stat(follow_symlinks=False)
                        found.append(BlobFile(entry.name, stat.st_size, stat.st_mtime))
                except FileNotFoundError:
                    continue  # removed meanwhile
    except FileNotFoundError:
        return []
    found.sort(key=lambda f: (f.mtime, f.name), reverse=True)
    return found


def element_files(folder: str | os.PathLike[str], device: str, name: str, element: str) -> list[BlobFile]:
    """The element's files, newest modified first ([] when the folder does not exist yet)."""
    matches = element_file_matcher(device, name, element)
    return [file for file in _scan(folder) if matches(file.name)]


class FolderListing:
    """Elements' files from one scan of the folder, shared by every element and made again when the
    folder changed (its modification time) or after ``max_age`` seconds (a change within the file
    system's time granularity is seen then); thread-safe."""

    def __init__(self, folder: str | os.PathLike[str], max_age: float = 1.0) -> None:
        self.folder = Path(folder)
        self.max_age = max_age
        self.scans = 0  #: how many times the folder was scanned
        self._lock = threading.Lock()
        self._version: tuple[int, int] | None = None
        self._scanned = 0.0
        self._files: list[BlobFile] = []

    def files(self) -> list[BlobFile]:
        """Every file of the folder, newest modified first."""
        with self._lock:
            try:
                stat = os.stat(self.folder)
                version: tuple[int, int] | None = (stat.st_ino, stat.st_mtime_ns)
            except FileNotFoundError:
                version = None
            now = time.monotonic()
            if version is None or version != self._version or now - self._scanned > self.max_age:
                self._files = _scan(self.folder) if version is not None else []
                self._version, self._scanned = version, now
                self.scans += 1
            return self._files

    def element_files(self, device: str, name: str, element: str) -> list[BlobFile]:
        """The element's files, newest modified first."""
        matches = element_file_matcher(device, name, element)
        return [file for file in self.files() if matches(file.name)]


class PruneJournal:
    """What retention writes to the log: a DEBUG line per removal, and per element an INFO line at its
    first removal and then at most one every ``period`` seconds summing up the removals since the
    previous INFO line (a steady state of one removal per frame makes a bounded number of lines);
    thread-safe."""

    def __init__(self, period: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period
        self.clock = clock
        self._lock = threading.Lock()
        #: (device, property, element) -> [time of its last INFO line, files and bytes removed since]
        self._elements: dict[tuple[str, str, str], list[float]] = {}

    def removed(self, device: str, name: str, element: str, files: int, size: int) -> None:
        """Log that ``files`` old files (``size`` bytes) of the element were removed."""
        where = f"{device}.{name}.{element}"
        log.debug("blob retention: removed %d old file(s) of %s, %d bytes", files, where, size)
        now = self.clock()
        with self._lock:
            state = self._elements.get((device, name, element))
            if state is None:
                self._elements[(device, name, element)] = [now, 0, 0]
                log.info(
                    "blob retention: removed %d old file(s) of %s (%.1f MiB); from now on its old files "
                    "are removed as frames arrive, summed up here at most once every %s",
                    files,
                    where,
                    size / 1048576,
                    _duration(self.period),
                )
                return
            state[1] += files
            state[2] += size
            if now - state[0] < self.period:
                return
            log.info(
                "blob retention: removed %d old file(s) of %s (%.1f MiB) in the last %s",
                state[1],
                where,
                state[2] / 1048576,
                _duration(now - state[0]),
            )
            state[:] = [now, 0, 0]


def _duration(seconds: float) -> str:
    """``seconds`` for a log line: ``45 s``, ``60 min``, ``1.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class Retention:
    """How many files and bytes to keep per BLOB element (0: no limit), and how many bytes to keep
    free on the blob folder's file system (None: 1 GiB or 5 % of it, whichever is smaller; 0: no
    minimum; see :class:`~indiredis.store.blobs.BlobFolder`)."""

    keep_files: int = 0
    keep_bytes: int = 0
    min_free: int | None = None
    #: the log lines of its removals (one INFO line per element an hour, see PruneJournal)
    journal: PruneJournal = field(default_factory=PruneJournal, compare=False, repr=False)

    @property
    def limited(self) -> bool:
        return self.keep_files > 0 or self.keep_bytes > 0

    def prune(
        self,
        folder: BlobFolder | str | os.PathLike[str],
        device: str,
        name: str,
        element: str,
        incoming: int | None = None,
    ) -> list[str]:
        """Delete the element's recorded files beyond the limits, oldest arrival first; their names.

        Every file of the element counts against the limits, those not recorded yet too, and with
        ``incoming`` (the declared bytes of a frame about to be written; 0 if unknown) that frame as
        its newest; but only recorded files go (:meth:`BlobFolder.recorded`: older than the one its
        ``filepath`` points at), never the newest one nor the one the store points at.  ``folder``
        is the bridge's BlobFolder (a path: the files there, in order of modification)."""
        if not self.limited:
            return []
        blobs = folder if isinstance(folder, BlobFolder) else BlobFolder(folder)
        files = blobs.element_files(device, name, element)
        recorded = blobs.recorded(device, name, element) if isinstance(folder, BlobFolder) else None
        doomed: dict[str, int] = {}
        first = 0 if incoming is None else 1
        total = incoming or 0
        for index, (file, size) in enumerate(files, first):
            total += size
            if index == first or (recorded is not None and file not in recorded):
                continue  # the newest frame stays, whatever becomes of the one being written
            over_count = self.keep_files > 0 and index >= self.keep_files
            over_size = self.keep_bytes > 0 and total > self.keep_bytes
            if over_count or over_size:
                doomed[file] = size
        if not doomed:
            return []
        blobs.remove(list(doomed))
        kept = {file for file, _size in blobs.element_files(device, name, element)}
        removed = [file for file in doomed if file not in kept]
        if removed:
            self.journal.removed(device, name, element, len(removed), sum(doomed[file] for file in removed))
        return removed
