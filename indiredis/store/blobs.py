"""Writing received BLOBs to the blob folder (never into Redis).

Every frame gets a file of its own, named by :mod:`~indiredis.store.blobnames` (device-chosen names
made safe, and unambiguous per element); a name already taken gets ``-2``, ``-3`` ... before its
suffix.  A file is written under a temporary ``.incoming-`` name (locked while written), fsync'ed,
then linked to its name (which never replaces a file) and its folder fsync'ed, all before anyone is
told of it.

:class:`BlobFolder` keeps an index of the folder's frames in the order they arrived (what
retention and the free-space guard delete by, never the clock; :mod:`~indiredis.store.frameindex`),
the files the store points at, and the free-space guard (:mod:`~indiredis.store.freespace`):
``min_free`` bytes are kept free on the folder's file system by deleting the oldest frames, and when
that is not enough new BLOBs are refused (counted and logged once a minute) until space returns.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import os
import tempfile
import threading
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from ..errors import BlobError
from ..protocol.messages import BlobSink, Message, SetBLOBVector, StreamedBlob
from ..protocol.xmlout import indi_timestamp
from . import base64strict
from .blobnames import element_prefix, prefix_of, safe_name_part, safe_suffix
from .frameindex import FrameIndex
from .freespace import FreeSpaceGuard

log = logging.getLogger(__name__)


class FrameRetention(Protocol):
    """What the folder asks of the blob retention (:class:`~indiredis.store.retention.Retention`,
    which imports this module) as a frame is opened: room for it within the element's bounds."""

    def prune(
        self, folder: BlobFolder, device: str, name: str, element: str, incoming: int | None = None
    ) -> list[str]:
        """Delete the element's recorded files beyond its bounds, ``incoming`` bytes counted as its
        newest frame; their names."""
        ...


DEFAULT_MAX_BLOB_SIZE = 2 * 1024 * 1024 * 1024  # decoded bytes
INCOMING = ".incoming-"  #: the prefix of files being written


WRITE_CHUNK = 1024 * 1024  # base64 characters decoded per step of a whole-payload BLOB
SYNC_EVERY = 8 * 1024 * 1024  # bytes written between two fdatasync calls made in the background
MAX_COPIES = 100_000  # names tried for frames of one element and timestamp
INFLATE_CHUNK = 1024 * 1024  # decompressed bytes produced per step (bounds a zlib bomb's memory)
_WHITESPACE = b" \t\r\n"


class Base64Stream:
    """Decodes base64 text that arrives in pieces of any length (line breaks anywhere); strict, so that
    a character outside the alphabet or padding in the middle is refused rather than skipped.  The
    decoding itself is :func:`base64strict.decode` (pybase64 when installed)."""

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
            data = base64strict.decode(groups)
        except ValueError as exc:  # binascii.Error
            raise BlobError(f"broken base64 ({exc})") from None
        self._ended = groups[-1:] == b"="
        return data

    def finish(self) -> None:
        """The text has ended: a group left incomplete is an error."""
        if self._carry:
            raise BlobError(f"broken base64 ({len(self._carry)} characters left over)")


class BlobFile:
    """One BLOB being written: base64 text in, decoded (and, for ``.z``, decompressed) bytes to a
    temporary file in the folder, given its own name by :meth:`close` (a :class:`BlobSink`).

    Errors raise :class:`BlobError` (a file system error too: a full disk never escapes as an
    OSError) and remove the temporary file; so does :meth:`abort`.  The declared ``size`` (decoded,
    uncompressed bytes), when given, must be the real one: a BLOB that grows beyond it is refused as
    soon as it does.  While it is written, every SYNC_EVERY bytes written are handed to the
    kernel's writeback from the folder's fsync thread (:func:`start_writeback`) as decoding goes on;
    that only starts the writeback, so :meth:`close` (the fsync, the link, the folder's fsync) can
    still wait long on a slow disk: a reader on the event loop runs it in a thread (see
    :func:`~indiredis.protocol.parser.settle`).
    """

    def __init__(
        self, folder: BlobFolder, device: str, name: str, element: str, stamp: str, fmt: str, size: str
    ) -> None:
        self.folder = folder
        self.prefix = element_prefix(device, name, element)
        self.base = folder.path_for(device, name, element, stamp, fmt)
        self.suffix = safe_suffix(fmt)
        self.path = self.base
        self.stamp = stamp
        self.max_size = folder.max_size
        declared = size.strip()  # ASCII digits only: '²'.isdigit() is True, but int('²') raises
        self.declared = int(declared) if declared.isascii() and declared.isdigit() else None
        self.size = 0
        self._unsynced = 0
        self._synced = 0  # bytes of the file handed to the writeback so far
        self._syncing: Future[None] | None = None
        self._base64 = Base64Stream()
        self._inflater = zlib.decompressobj() if fmt.endswith(".z") else None
        folder.folder.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=folder.folder, prefix=INCOMING)
        fcntl.flock(fd, fcntl.LOCK_EX)  # being written: a starting bridge leaves it alone
        self._file: BinaryIO | None = os.fdopen(fd, "wb")

    def write(self, text: bytes) -> None:
        """Decode and write the next piece of base64 text."""
        try:
            for data in self._base64.decode(text):
                if self._inflater is None:
                    self._put(data)
                else:
                    self._inflate(data)
        except OSError as exc:
            self.abort()
            raise self.folder.write_failed(exc) from None
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
            self._unsynced += len(data)
            if self._unsynced >= SYNC_EVERY and (self._syncing is None or self._syncing.done()):
                self._wait_sync()
                self._file.flush()
                start, self._synced = self._synced, self._file.tell()
                self._unsynced = 0
                self._syncing = self.folder.syncer.submit(
                    start_writeback, self._file.fileno(), start, self._synced - start
                )

    def _wait_sync(self) -> None:
        syncing, self._syncing = self._syncing, None
        if syncing is not None:
            syncing.result()

    def close(self) -> StreamedBlob:
        """The text has ended: check it, make it durable, and give it its own name."""
        try:
            self._base64.finish()
            if self._inflater is not None:
                self._put(self._inflater.flush())
                if not self._inflater.eof:
                    raise BlobError("corrupt compressed data (incomplete stream)")
            if self.declared is not None and self.size != self.declared:
                raise BlobError(f"declared size {self.declared} bytes but decoded to {self.size} bytes")
            assert self._file is not None
            self._file.flush()
            self._wait_sync()
            os.fchmod(self._file.fileno(), 0o644)
            os.fsync(self._file.fileno())
            self.path = self.folder.publish(self._tmp, self.base, self.suffix, self.prefix, self.size)
            self._file.close()
            self._file = None
        except OSError as exc:
            self.abort()
            raise self.folder.write_failed(exc) from None
        except BaseException:
            self.abort()
            raise
        return StreamedBlob(str(self.path), self.size, self.stamp)

    def abort(self) -> None:
        """Drop the temporary file (nothing partial is ever visible under the BLOB's name)."""
        try:
            self._wait_sync()
        except OSError:
            pass
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass  # a full disk fails the last flush; the descriptor is closed all the same
            self._file = None
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's sync_file_range(2) from the C library, or None where there is none."""
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


_SYNC_FILE_RANGE = _sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2  # start writing the range's dirty pages, without waiting for them


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel start writing a range of a file to disk, without a cache flush of the device
    (the fsync at the end makes it durable): sync_file_range(2) where the C library has it, else
    fdatasync."""
    if _SYNC_FILE_RANGE is None or _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE) != 0:
        os.fdatasync(fd)


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
    ``setBLOBVector`` (a :class:`BlobSinks`); with no folder, or no room in it, the data is discarded
    and said to be."""

    def __init__(self, folder: BlobFolder | None) -> None:
        self.folder = folder

    def open(self, vector: Message, element: Mapping[str, str]) -> BlobSink | None:
        if not isinstance(vector, SetBLOBVector):
            return None
        if self.folder is None:
            return DiscardedBlob("received but no blob folder is configured; data discarded")
        stamp = vector.timestamp or indi_timestamp()
        try:
            return self.folder.open(
                vector.device,
                vector.name,
                element.get("name", ""),
                stamp,
                element.get("format", ""),
                element.get("size", ""),
            )
        except (BlobError, OSError) as exc:
            return DiscardedBlob(str(exc))


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


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """fsync a folder, so that the names made or removed in it survive a power cut."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(
    path: Path, data: bytes, mode: int = 0o644, owner: tuple[int, int] | None = None
) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part,
    also after a power cut: into a temporary file beside it (with ``mode``, and ``owner`` as
    (uid, gid) if given), fsync'ed, renamed over it, and the folder fsync'ed.  The temporary file is
    removed on any failure."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=INCOMING)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
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
    fsync_folder(path.parent)


class BlobFolder:
    """The folder received BLOBs are written to (see the module docstring).  It names the frames, links
    their files and deletes them; two parts keep the rest, each called under the folder's one lock: the
    :class:`~indiredis.store.frameindex.FrameIndex` (its frames in order of arrival, and the files the
    store points at) and the :class:`~indiredis.store.freespace.FreeSpaceGuard` (``min_free`` bytes
    kept free, None: 1 GiB or 5 % of the file system, whichever is smaller, 0: no minimum; and the
    BLOBs refused, counted).

    Nothing is written when it is built (as ``--check`` does): the folder is made, left-over
    ``.incoming-`` files removed and the index read at :meth:`start`, or when the first BLOB arrives.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        max_size: int = DEFAULT_MAX_BLOB_SIZE,
        min_free: int | None = None,
    ) -> None:
        self.folder = Path(folder).resolve()
        self.max_size = max_size
        self.free_space = FreeSpaceGuard(self.folder, min_free)
        self._lock = threading.RLock()
        self._started = False
        self._index = FrameIndex()
        self._copies: dict[str, int] = {}  # base name -> the last copy number given
        #: per element retention applied as a frame is opened (set by the store's link; None: none)
        self.retention: FrameRetention | None = None
        self._syncer: ThreadPoolExecutor | None = None

    @property
    def min_free(self) -> int | None:
        """Bytes kept free on the folder's file system (the guard's; set by the store's link)."""
        return self.free_space.min_free

    @min_free.setter
    def min_free(self, value: int | None) -> None:
        self.free_space.min_free = value

    @property
    def refused(self) -> int:
        """BLOBs refused for lack of space since the bridge started."""
        return self.free_space.refused

    @property
    def syncer(self) -> ThreadPoolExecutor:
        """The thread that fdatasyncs files while they are written."""
        if self._syncer is None:
            self._syncer = ThreadPoolExecutor(1, thread_name_prefix="blob-fsync")
        return self._syncer

    # ------------------------------------------------------------ start
    def start(self) -> None:
        """Make the folder, remove left-over ``.incoming-`` files (of a bridge killed or a power cut
        while one was written; one log line with the count) and read the index (the frames there,
        oldest modified first, come before every frame that arrives from now on).  Done once."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self.folder.mkdir(parents=True, exist_ok=True)
            found, leftovers = _scan_folder(self.folder)
            for _mtime, name, prefix, size in sorted(found):
                self._index.add(name, prefix, size, found=True)
            if leftovers:
                log.warning(
                    "blob folder %s: removed %d left-over .incoming- file(s) of BLOBs never finished",
                    self.folder,
                    leftovers,
                )

    # ------------------------------------------------------------ writing
    def path_for(self, device: str, name: str, element: str, stamp: str, fmt: str) -> Path:
        """The name a BLOB gets when it is free; always directly inside the folder."""
        path = self.folder / (
            element_prefix(device, name, element) + safe_name_part(stamp, 32) + safe_suffix(fmt)
        )
        if path.parent != self.folder:  # cannot happen with the sanitised parts; belt and braces
            raise BlobError("unsafe BLOB path")
        return path

    def open(self, device: str, name: str, element: str, stamp: str, fmt: str, size: str) -> BlobFile:
        """A :class:`BlobFile` for a new BLOB, when there is room for it (else :class:`BlobError`
        whose text begins with REFUSED)."""
        declared = size.strip()
        needed = int(declared) if declared.isascii() and declared.isdigit() else 0
        try:
            self.start()
            if self.retention is not None:  # the element's bound holds with this frame counted
                self.retention.prune(self, device, name, element, incoming=needed)
            self.make_room(needed)
            return BlobFile(self, device, name, element, stamp, fmt, size)
        except OSError as exc:
            raise self.write_failed(exc) from None

    def publish(self, tmp: str, base: Path, suffix: str, prefix: str, size: int) -> Path:
        """Give a finished (fsync'ed) temporary file its own name: ``base``, or when that is taken
        ``base`` with ``-2``, ``-3`` ... before its ``suffix``; a hard link never replaces a file.  The
        folder is fsync'ed before the name is returned, and the frame joins the index."""
        with self._lock:
            target, linked = self._link_under_free_name(tmp, base, suffix)
            self._index.add(target.name, prefix, size)
        if linked:
            os.unlink(tmp)
        fsync_folder(self.folder)
        return target

    def _link_under_free_name(self, tmp: str, base: Path, suffix: str) -> tuple[Path, bool]:
        """Link ``tmp`` to the first free copy name of ``base`` (:func:`_link_no_replace`'s bool too),
        trying first the number after the last one given for it."""
        stem = base.name[: -len(suffix)]
        first = self._copies.get(base.name, 1)
        for number in range(first, MAX_COPIES):
            target = base if number == 1 else base.with_name(f"{stem}-{number}{suffix}")
            try:
                linked = _link_no_replace(tmp, target)
            except FileExistsError:
                continue
            break
        else:
            raise BlobError(f"{MAX_COPIES} files named {base.name} already")
        if len(self._copies) > 1000:
            self._copies.clear()
        self._copies[base.name] = number + 1
        return target, linked

    def write_failed(self, exc: OSError) -> BlobError:
        """The BlobError for a file system error while a BLOB was written; a full disk is a refusal
        (counted, logged once a minute)."""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            with self._lock:
                return self.free_space.refuse(f"the file system of {self.folder} is full")
        return BlobError(f"cannot be written: {exc}")

    def write(
        self, device: str, name: str, element: str, stamp: str, fmt: str, b64text: str, size: str = ""
    ) -> tuple[Path, int]:
        """Decode and store one BLOB whose base64 text arrived whole (as an MQTT payload does); returns
        its path and decoded size.  The text is decoded piece by piece, so that no more than the text
        and the file being written are held."""
        sink = self.open(device, name, element, stamp, fmt, size)
        for start in range(0, len(b64text), WRITE_CHUNK):
            try:
                piece = b64text[start : start + WRITE_CHUNK].encode("ascii")
            except UnicodeEncodeError:
                sink.abort()
                raise BlobError("broken base64 (non-ASCII characters)") from None
            sink.write(piece)
        stored = sink.close()
        return Path(stored.path), stored.size

    # ------------------------------------------------------------ what the store points at
    def pin(self, device: str, name: str, element: str, path: str) -> None:
        """The element's ``filepath`` now points at ``path``: never delete it."""
        with self._lock:
            self._index.pin((device, name, element), Path(path).name)

    def recorded(self, device: str, name: str, element: str) -> set[str]:
        """The element's frames the store has moved past, which retention may delete: those that
        arrived before the file its ``filepath`` points at (and the frames found at start).  Frames
        that arrived after it are not recorded yet (on their way to the store, or for a property not
        defined again yet): the store may still point at them.  They become recorded once a newer
        frame of the element is (before that, only the free-space guard may delete them)."""
        self.start()
        with self._lock:
            return self._index.recorded((device, name, element))

    def pinned(self) -> set[str]:
        """The names of the files the store points at."""
        with self._lock:
            return self._index.pinned()

    # ------------------------------------------------------------ retention and free space
    def element_files(self, device: str, name: str, element: str) -> list[tuple[str, int]]:
        """The element's frames (file name, size), newest arrival first (frames written before
        names were tagged, found at start, count as its oldest)."""
        self.start()
        with self._lock:
            return self._index.newest_first((device, name, element))

    def remove(self, names: list[str]) -> int:
        """Delete frames of the index (never one the store points at); the bytes freed."""
        freed = 0
        with self._lock:
            for name, size in self._index.deletable(names):
                try:
                    os.unlink(self.folder / name)
                    freed += size
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("could not remove old BLOB file %s: %s", name, exc)
                    continue
                self._index.forget(name)
        return freed

    def make_room(self, needed: int = 0) -> None:
        """See that ``needed`` bytes more leave the minimum free: delete the oldest frames if that
        helps (one warning saying how much was freed), else raise a BlobError (a refusal)."""
        with self._lock:
            self.free_space.make_room(needed, self._index.oldest_removable(), self.remove)

    def close(self) -> None:
        """Stop the fsync thread (the bridge stops)."""
        if self._syncer is not None:
            self._syncer.shutdown(wait=True)
            self._syncer = None


def _scan_folder(folder: Path) -> tuple[list[tuple[float, str, str, int]], int]:
    """The frames in ``folder`` (modification time, name, element prefix, size) and the count of the
    left-over ``.incoming-`` files removed (:func:`_remove_leftover`)."""
    found: list[tuple[float, str, str, int]] = []
    leftovers = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            try:
                if not entry.is_file(follow_symlinks=False):
                    continue
                if entry.name.startswith(INCOMING):
                    leftovers += _remove_leftover(entry.path)
                    continue
                prefix = prefix_of(entry.name)
                if prefix is not None:
                    stat = entry.stat(follow_symlinks=False)
                    found.append((stat.st_mtime, entry.name, prefix, stat.st_size))
            except FileNotFoundError:
                continue
    return found, leftovers


def _link_no_replace(source: str, target: Path) -> bool:
    """Make ``target`` name the file ``source`` names, raising FileExistsError when it is taken;
    True when ``source`` is still there to be removed.  On a file system without hard links the
    name is reserved with O_EXCL and the file renamed onto that (empty) reservation of ours."""
    try:
        os.link(source, target)
        return True
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    os.rename(source, target)
    return False


def _remove_leftover(path: str) -> int:
    """Remove an ``.incoming-`` file unless a live writer holds its lock; 1 if removed."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # being written by a bridge sharing the folder
        os.unlink(path)
        return 1
    except FileNotFoundError:
        return 0
    finally:
        os.close(fd)
