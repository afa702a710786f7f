"""Writing received BLOBs to the blob folder (never into Redis).

Names chosen by devices are untrusted: every part of a file name is reduced to
``[A-Za-z0-9._+-]``, cut to 64 characters and never starts with a dot, so a
hostile device cannot escape the folder (``../``, absolute paths, NUL) or
collide with another device's files.  Files are written to a temporary name
and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import binascii
import logging
import os
import re
import tempfile
import zlib
from pathlib import Path

from ..errors import BlobError

log = logging.getLogger(__name__)

DEFAULT_MAX_BLOB_SIZE = 2 * 1024 * 1024 * 1024  # decoded bytes

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_SUFFIX_UNSAFE = re.compile(r"[^A-Za-z0-9.]+")


def safe_name_part(text: str, limit: int = 64) -> str:
    """A file-name-safe rendering of a device-chosen name (see module docstring)."""
    cleaned = _UNSAFE.sub("_", text).lstrip(".")[:limit]
    return cleaned or "_"


def safe_suffix(fmt: str) -> str:
    """The file suffix for a BLOB format: ``.fits.z`` -> ``.fits`` (data is stored decompressed)."""
    if fmt.endswith(".z"):
        fmt = fmt[:-2]
    cleaned = _SUFFIX_UNSAFE.sub("", fmt).strip(".")[:32]
    return "." + cleaned if cleaned else ".blob"


def decode_blob(b64text: str, fmt: str, max_size: int = DEFAULT_MAX_BLOB_SIZE) -> bytes:
    """Base64-decode BLOB text, and zlib-decompress it when the format ends in ``.z``."""
    try:
        data = binascii.a2b_base64(b64text.encode("ascii"))
    except UnicodeEncodeError:
        raise BlobError("broken base64 (non-ASCII characters)") from None
    except binascii.Error as exc:
        raise BlobError(f"broken base64 ({exc})") from None
    if fmt.endswith(".z"):
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(data, max_size + 1)
        except zlib.error as exc:
            raise BlobError(f"corrupt compressed data ({exc})") from None
        if inflater.unconsumed_tail or len(data) > max_size:
            raise BlobError(f"decompressed BLOB exceeds {max_size} bytes")
    elif len(data) > max_size:
        raise BlobError(f"BLOB exceeds {max_size} bytes")
    return data


def blob_folder_problem(folder: str | os.PathLike[str]) -> str | None:
    """Why BLOBs could not be written to ``folder`` (made if missing) by this process, or None.

    Looks without writing anything: the folder, or its nearest existing parent if it does not exist
    yet, must be a folder this process may write in (a read-only mount, as systemd's
    ``ProtectSystem=strict`` makes outside ``ReadWritePaths=``, counts as not writable).
    """
    path = Path(folder).absolute()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "it" if existing == path else f"{existing}, where it would be made,"
        return f"{where} cannot be written by this user (or is on a read-only file system)"
    return None


def write_atomically(
    path: Path, data: bytes, mode: int = 0o644, owner: tuple[int, int] | None = None
) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part:
    into a temporary file beside it (with ``mode``, and ``owner`` as (uid, gid) if given), then renamed
    over it.  The temporary file is removed on any failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        if owner is not None:
            os.chown(tmp, *owner)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


class BlobFolder:
    """The folder received BLOBs are written to; made when the first BLOB arrives (so that building a
    bridge, as ``--check`` does, writes nothing)."""

    def __init__(self, folder: str | os.PathLike[str], max_size: int = DEFAULT_MAX_BLOB_SIZE) -> None:
        self.folder = Path(folder).resolve()
        self.max_size = max_size

    def path_for(self, device: str, name: str, element: str, stamp: str, fmt: str) -> Path:
        """Where a BLOB goes; always directly inside the folder."""
        parts = (
            safe_name_part(device),
            safe_name_part(name),
            safe_name_part(element),
            safe_name_part(stamp, 32),
        )
        path = self.folder / ("_".join(parts) + safe_suffix(fmt))
        if path.parent != self.folder:  # cannot happen with the sanitised parts; belt and braces
            raise BlobError("unsafe BLOB path")
        return path

    def write(
        self, device: str, name: str, element: str, stamp: str, fmt: str, b64text: str
    ) -> tuple[Path, int]:
        """Decode and store one BLOB; returns its path and decoded size."""
        data = decode_blob(b64text, fmt, self.max_size)
        path = self.path_for(device, name, element, stamp, fmt)
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(path, data)
        return path, len(data)
