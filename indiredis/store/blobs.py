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
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from ..errors import BlobError
from ..protocol.messages import StreamedBlob
from ..protocol.parser import BlobSink
from ..protocol.vocabulary import Tag
from ..protocol.xmlout import indi_timestamp

log = logging.getLogger(__name__)

DEFAULT_MAX_BLOB_SIZE = 2 * 1024 * 1024 * 1024  # decoded bytes

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_SUFFIX_UNSAFE = re.compile(r"[^A-Za-z0-9.]+")


def safe_name_part(text: str, limit: int = 64) -> str:
    """A file-name-safe rendering of a device-chosen name (see module docstring)."""
    cleaned = _UNSAFE.sub("_", text).lstrip(".")[:limit]
    return cleaned or "_"


def element_prefix(device: str, name: str, element: str) -> str:
    """The file-name prefix of the element's BLOB files (what :meth:`BlobFolder.path_for` names them
    with, and what the retention looks for)."""
    return "_".join(safe_name_part(part) for part in (device, name, element)) + "_"


def safe_suffix(fmt: str) -> str:
    """The file suffix for a BLOB format: ``.fits.z`` -> ``.fits`` (data is stored decompressed)."""
    if fmt.endswith(".z"):
        fmt = fmt[:-2]
    cleaned = _SUFFIX_UNSAFE.sub("", fmt).strip(".")[:32]
    return "." + cleaned if cleaned else ".blob"


WRITE_CHUNK = 1024 * 1024  # base64 characters decoded per step of a whole-payload BLOB
INFLATE_CHUNK = 1024 * 1024  # decompressed bytes produced per step (bounds a zlib bomb's memory)
_WHITESPACE = b" \t\r\n"


class Base64Stream:
    """Decodes base64 text that arrives in pieces of any length (line breaks anywhere); strict, so that
    a character outside the alphabet or padding in the middle is refused rather than skipped."""

    def __init__(self) -> None:
        self._carry = b""  # the last 0-3 characters of a group of four not yet complete
        self._ended = False  # padding seen: nothing may follow

    def decode(self, text: bytes) -> list[bytes]:
        """The bytes of every complete group of four characters received so far (in one or two
        pieces, so that the text is not copied to join a group split across two calls)."""
        text = text.replace(b"\n", b"")  # drivers wrap lines with \n; much quicker than translate
        if b"\r" in text or b" " in text or b"\t" in text:
            text = text.translate(None, _WHITESPACE)
        view = memoryview(text)
        pieces = []
        if self._carry and view:
            group = self._carry + bytes(view[: 4 - len(self._carry)])
            view = view[4 - len(self._carry) :]
            self._carry = b""
            if len(group) < 4:
                self._carry = group
                return []
            pieces.append(self._strict(group))
        usable = len(view) - len(view) % 4
        if usable:
            pieces.append(self._strict(view[:usable]))
        self._carry += bytes(view[usable:])
        return pieces

    def _strict(self, groups: bytes | memoryview) -> bytes:
        if self._ended:
            raise BlobError("broken base64 (data after the padding)")
        try:
            data = binascii.a2b_base64(groups, strict_mode=True)
        except binascii.Error as exc:
            raise BlobError(f"broken base64 ({exc})") from None
        self._ended = groups[-1:] == b"="
        return data

    def finish(self) -> None:
        """The text has ended: a group left incomplete is an error."""
        if self._carry:
            raise BlobError(f"broken base64 ({len(self._carry)} characters left over)")


class BlobFile:
    """One BLOB being written: base64 text in, decoded (and, for ``.z``, decompressed) bytes to a
    temporary file in the folder, renamed into place by :meth:`close` (a :class:`BlobSink`).

    Errors raise :class:`BlobError` and remove the temporary file; so does :meth:`abort`.  The
    declared ``size`` (decoded, uncompressed bytes), when given, must be the real one: a BLOB that
    grows beyond it is refused as soon as it does.
    """

    def __init__(
        self, folder: BlobFolder, device: str, name: str, element: str, stamp: str, fmt: str, size: str
    ) -> None:
        self.path = folder.path_for(device, name, element, stamp, fmt)
        self.stamp = stamp
        self.max_size = folder.max_size
        declared = size.strip()  # ASCII digits only: '²'.isdigit() is True, but int('²') raises
        self.declared = int(declared) if declared.isascii() and declared.isdigit() else None
        self.size = 0
        self._base64 = Base64Stream()
        self._inflater = zlib.decompressobj() if fmt.endswith(".z") else None
        folder.folder.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=folder.folder, prefix=".incoming-")
        self._file: BinaryIO | None = os.fdopen(fd, "wb")

    def write(self, text: bytes) -> None:
        """Decode and write the next piece of base64 text."""
        try:
            for data in self._base64.decode(text):
                if self._inflater is None:
                    self._put(data)
                else:
                    self._inflate(data)
        except BaseException:
            self.abort()
            raise

    def _inflate(self, data: bytes) -> None:
        assert self._inflater is not None
        try:
            while data:
                self._put(self._inflater.decompress(data, INFLATE_CHUNK))
                data = self._inflater.unconsumed_tail
        except zlib.error as exc:
            raise BlobError(f"corrupt compressed data ({exc})") from None

    def _put(self, data: bytes) -> None:
        self.size += len(data)
        if self.declared is not None and self.size > self.declared:
            raise BlobError(f"more data than its declared size of {self.declared} bytes")
        if self.size > self.max_size:
            raise BlobError(f"BLOB exceeds {self.max_size} bytes")
        if self._file is not None:
            self._file.write(data)

    def close(self) -> StreamedBlob:
        """The text has ended: check it, and rename the file into place."""
        try:
            self._base64.finish()
            if self._inflater is not None:
                self._put(self._inflater.flush())
                if not self._inflater.eof:
                    raise BlobError("corrupt compressed data (incomplete stream)")
            if self.declared is not None and self.size != self.declared:
                raise BlobError(f"declared size {self.declared} bytes but decoded to {self.size} bytes")
            assert self._file is not None
            self._file.close()
            self._file = None
            os.chmod(self._tmp, 0o644)
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return StreamedBlob(str(self.path), self.size, self.stamp)

    def abort(self) -> None:
        """Drop the temporary file (nothing partial is ever visible under the BLOB's name)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


class DiscardedBlob:
    """A sink that drops a BLOB's data, saying why (:class:`BlobSink`)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def write(self, text: bytes) -> None:
        """Drop the text."""

    def close(self) -> StreamedBlob:
        return StreamedBlob(problem=self.reason)

    def abort(self) -> None:
        """Nothing to undo."""


class BlobStreams:
    """Opens, for the parser, a :class:`BlobFile` in the folder for every streamed ``oneBLOB`` of a
    ``setBLOBVector`` (a :class:`BlobSinks`); with no folder the data is discarded and said to be."""

    def __init__(self, folder: BlobFolder | None) -> None:
        self.folder = folder

    def open(self, tag: str, vector: Mapping[str, str], element: Mapping[str, str]) -> BlobSink | None:
        if tag != Tag.SET_BLOB_VECTOR:
            return None
        if self.folder is None:
            return DiscardedBlob("received but no blob folder is configured; data discarded")
        stamp = vector.get("timestamp") or indi_timestamp()
        try:
            return BlobFile(
                self.folder,
                vector.get("device", ""),
                vector.get("name", ""),
                element.get("name", ""),
                stamp,
                element.get("format", ""),
                element.get("size", ""),
            )
        except OSError as exc:
            return DiscardedBlob(f"cannot be written: {exc}")


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
        path = self.folder / (
            element_prefix(device, name, element) + safe_name_part(stamp, 32) + safe_suffix(fmt)
        )
        if path.parent != self.folder:  # cannot happen with the sanitised parts; belt and braces
            raise BlobError("unsafe BLOB path")
        return path

    def write(
        self, device: str, name: str, element: str, stamp: str, fmt: str, b64text: str, size: str = ""
    ) -> tuple[Path, int]:
        """Decode and store one BLOB whose base64 text arrived whole (as an MQTT payload does); returns
        its path and decoded size.  The text is decoded piece by piece, so that no more than the text
        and the file being written are held."""
        sink = BlobFile(self, device, name, element, stamp, fmt, size)
        for start in range(0, len(b64text), WRITE_CHUNK):
            try:
                piece = b64text[start : start + WRITE_CHUNK].encode("ascii")
            except UnicodeEncodeError:
                sink.abort()
                raise BlobError("broken base64 (non-ASCII characters)") from None
            sink.write(piece)
        stored = sink.close()
        return Path(stored.path), stored.size
