"""The names of BLOB files in the blob folder: what a frame is called, and which element a file is of.

Names chosen by devices are untrusted: every part of a file name is reduced to
``[A-Za-z0-9._+-]``, cut to 64 characters and never starts with a dot, so a
hostile device cannot escape the folder (``../``, absolute paths, NUL).

Every frame gets a file of its own, named ``<device>_<property>_<element>_<timestamp><suffix>``
(:func:`element_prefix` and ``docs/redis-keys.md``): when a device, property or element name
is not rendered as it is (a space, ``_``, ``:`` ...), the element's part ends with ``~`` and a
tag of eight hex digits hashed from the exact names, so that elements never share a prefix.
Frames written before names were tagged are recognised by :func:`legacy_prefix` and
:func:`is_legacy_file`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
_SUFFIX_UNSAFE = re.compile(r"[^A-Za-z0-9.]+")


def safe_name_part(text: str, limit: int = 64) -> str:
    """A file-name-safe rendering of a device-chosen name (see module docstring)."""
    cleaned = _UNSAFE.sub("_", text).lstrip(".")[:limit]
    return cleaned or "_"


_PLAIN = re.compile(r"[A-Za-z0-9+-][A-Za-z0-9.+-]{0,63}")
TAG_MARK = "~"  #: begins an element's tag in a file name; no rendered part ever holds it
_TAGGED = re.compile(r"(.*?~[0-9a-f]{8}_)")


def element_tag(device: str, name: str, element: str) -> str:
    """Eight hex digits hashed from the exact names of a BLOB element (its file names carry it when
    their rendering is not the names themselves)."""
    exact = "\0".join((device, name, element)).encode("utf-8", "surrogatepass")
    return hashlib.blake2s(exact, digest_size=4).hexdigest()


def element_prefix(device: str, name: str, element: str) -> str:
    """The file-name prefix of the element's BLOB files, unambiguous per element: ``D_P_E_`` when
    each name is file-name safe as it is and holds no ``_`` (``CCD1``, ``Guide-2``), else the safe
    renderings followed by ``~`` and :func:`element_tag` (``CCD_Simulator_CCD1_CCD1~1a2b3c4d_``)."""
    parts = (device, name, element)
    if all(_PLAIN.fullmatch(part) for part in parts):
        return "_".join(parts) + "_"
    return "_".join(safe_name_part(part) for part in parts) + TAG_MARK + element_tag(*parts) + "_"


def is_element_file(filename: str, prefix: str) -> bool:
    """Whether ``filename`` is a frame of the element whose :func:`element_prefix` is ``prefix``
    (a plain prefix ``D_P_E_`` is also the start of the tagged names of ``D``, ``P``, ``E_x``)."""
    return filename.startswith(prefix) and (TAG_MARK in prefix or TAG_MARK not in filename)


#: what follows the prefix in the name of a frame written before names were tagged: its timestamp
_LEGACY_STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T")


def legacy_prefix(device: str, name: str, element: str) -> str | None:
    """The prefix the element's files had before names were tagged (``D_P_E_`` of the safe renderings,
    ``CCD_Simulator_CCD1_CCD1_``), when it is not its :func:`element_prefix` now; None otherwise."""
    parts = (device, name, element)
    if all(_PLAIN.fullmatch(part) for part in parts):
        return None
    return "_".join(safe_name_part(part) for part in parts) + "_"


def is_legacy_file(filename: str, legacy: str) -> bool:
    """Whether ``filename`` is a frame written before names were tagged whose old prefix is ``legacy``
    (see :func:`legacy_prefix`): no tag, and the old prefix directly followed by a timestamp.  The
    old names were ambiguous: such a file is attributed to every element with that old prefix."""
    return (
        filename.startswith(legacy)
        and TAG_MARK not in filename
        and _LEGACY_STAMP.match(filename, len(legacy)) is not None
    )


def element_file_matcher(device: str, name: str, element: str) -> Callable[[str], bool]:
    """Whether a file name is a frame of the element: :func:`is_element_file` of its prefix, or a
    frame of the element written before names were tagged (:func:`is_legacy_file`)."""
    prefix = element_prefix(device, name, element)
    legacy = legacy_prefix(device, name, element)
    if legacy is None:
        return lambda filename: is_element_file(filename, prefix)
    return lambda filename: is_element_file(filename, prefix) or is_legacy_file(filename, legacy)


def prefix_of(filename: str) -> str | None:
    """The element prefix a frame's file name begins with, or None for a file that is not a frame."""
    if filename.startswith(".") or "_" not in filename:
        return None
    if TAG_MARK in filename:
        match = _TAGGED.match(filename)
        return match.group(1) if match else None
    parts = filename.split("_", 3)
    return "_".join(parts[:3]) + "_" if len(parts) == 4 else None


def safe_suffix(fmt: str) -> str:
    """The file suffix for a BLOB format: ``.fits.z`` -> ``.fits`` (data is stored decompressed)."""
    if fmt.endswith(".z"):
        fmt = fmt[:-2]
    cleaned = _SUFFIX_UNSAFE.sub("", fmt).strip(".")[:32]
    return "." + cleaned if cleaned else ".blob"
