"""The files of one BLOB element in the blob folder: listing (newest first) and retention.

A BLOB element's files are named ``<device>_<property>_<element>_<timestamp><suffix>``
(each part made file-name safe by :func:`~indiredis.store.blobs.safe_name_part`),
so they are found by that prefix.  Retention keeps the newest ``keep_files``
files and at most ``keep_bytes`` bytes per element (0: no limit), so that a
camera left running never fills the disk.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .blobs import element_prefix

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlobFile:
    """A received file: its name in the folder, size and modification time."""

    name: str
    size: int
    mtime: float


def element_files(folder: str | os.PathLike[str], device: str, name: str, element: str) -> list[BlobFile]:
    """The element's files, newest first ([] when the folder does not exist yet)."""
    prefix = element_prefix(device, name, element)
    found: list[BlobFile] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.name.startswith(prefix):
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


@dataclass(frozen=True)
class Retention:
    """How many files and bytes to keep per BLOB element (0: no limit)."""

    keep_files: int = 0
    keep_bytes: int = 0

    @property
    def limited(self) -> bool:
        return self.keep_files > 0 or self.keep_bytes > 0

    def prune(self, folder: str | os.PathLike[str], device: str, name: str, element: str) -> list[str]:
        """Delete the element's files beyond the limits (the newest is always kept); their names."""
        if not self.limited:
            return []
        removed = []
        total = 0
        for index, file in enumerate(element_files(folder, device, name, element)):
            total += file.size
            over_count = self.keep_files > 0 and index >= self.keep_files
            over_size = self.keep_bytes > 0 and total > self.keep_bytes and index > 0
            if over_count or over_size:
                try:
                    (Path(folder) / file.name).unlink()
                    removed.append(file.name)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("could not remove old BLOB file %s: %s", file.name, exc)
        if removed:
            log.info(
                "blob retention: removed %d old file(s) of %s.%s.%s", len(removed), device, name, element
            )
        return removed
