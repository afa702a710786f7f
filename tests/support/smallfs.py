"""A small file system of its own for a test (a tmpfs mounted on a folder), to fill up on purpose."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` (``4m``) on ``folder`` (made if missing) for the block; the test is
    skipped where mounting is not possible (not root, no CAP_SYS_ADMIN in a container)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def free_bytes(folder: Path) -> int:
    """Bytes an unprivileged writer may still use on ``folder``'s file system."""
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize


def fill(folder: Path, leave: int, name: str = "filler.bin") -> Path:
    """Write a file outside the BLOB names (``filler.bin``: no element prefix) so that about ``leave``
    bytes stay free."""
    filler = folder / name
    with open(filler, "ab") as out:
        size = free_bytes(folder) - leave
        chunk = b"\0" * (64 * 1024)
        while size > 0:
            out.write(chunk[: min(size, len(chunk))])
            size -= len(chunk)
        out.flush()
        os.fsync(out.fileno())
    return filler
