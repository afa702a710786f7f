"""The blob folder's frames in the order they arrived, per element, and the files the store points at.

Pure bookkeeping for :class:`~indiredis.store.blobs.BlobFolder`, which does the file system's side and
holds its lock around every call: nothing here touches a file.  Retention and the free-space guard
delete by this order of arrival, never by the clock (a clock stepped back cannot make a new frame the
oldest); frames found in the folder when the bridge starts come first, oldest modified first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .blobnames import TAG_MARK, element_prefix, is_legacy_file, legacy_prefix

#: a BLOB element: (device, property, element)
Element = tuple[str, str, str]


class FrameIndex:
    """Which frames the folder holds (file name and size), in order of arrival, grouped by the element
    prefix their name begins with; which file each element's ``filepath`` points at (never deleted);
    and which frames were found at start (the store has moved past them, or never will point at them).
    """

    def __init__(self) -> None:
        #: prefix -> {file name: size}, in order of arrival (the oldest first)
        self._by_prefix: dict[str, dict[str, int]] = {}
        #: every indexed frame, file name -> prefix, in order of arrival
        self._arrival: dict[str, str] = {}
        #: (device, property, element) -> the file its filepath points at
        self._pinned: dict[Element, str] = {}
        self._adopted: set[str] = set()  # prefixes whose old, untagged frames were looked for
        self._found: set[str] = set()  # frames found at start (recorded, or never to be)

    def add(self, name: str, prefix: str, size: int, *, found: bool = False) -> None:
        """A frame arrived (``found``: was there when the bridge started); it is the newest."""
        self._by_prefix.setdefault(prefix, {})[name] = size
        self._arrival[name] = prefix
        if found:
            self._found.add(name)

    def forget(self, name: str) -> None:
        """The frame's file is gone."""
        self._found.discard(name)
        prefix = self._arrival.pop(name, None)
        if prefix is not None:
            files = self._by_prefix.get(prefix, {})
            files.pop(name, None)
            if not files:
                self._by_prefix.pop(prefix, None)

    def pin(self, element: Element, name: str) -> None:
        """The element's ``filepath`` now points at the file ``name``."""
        self._pinned[element] = name

    def pinned(self) -> set[str]:
        """The names of the files the store points at."""
        return set(self._pinned.values())

    def deletable(self, names: Iterable[str]) -> Iterator[tuple[str, int]]:
        """Those of ``names`` that are indexed and not pointed at, with their sizes (looked up as the
        caller goes, so a name it has forgotten meanwhile is passed over)."""
        keep = self.pinned()
        for name in names:
            if name not in keep and name in self._arrival:
                yield name, self._by_prefix[self._arrival[name]][name]

    def oldest_removable(self) -> Iterator[tuple[str, int]]:
        """Frames that may go to make room, the oldest arrival first: never the newest of an
        element, never one the store points at (one being written is not in the index yet)."""
        keep = self.pinned()
        for name, prefix in list(self._arrival.items()):
            files = self._by_prefix[prefix]
            if name in keep or name == next(reversed(files)):
                continue
            yield name, files[name]

    def recorded(self, element: Element) -> set[str]:
        """The element's frames the store has moved past: those that arrived before the file its
        ``filepath`` points at, or with none pointed at, the frames found at start."""
        files = self._by_prefix.get(element_prefix(*element), {})
        pinned = self._pinned.get(element)
        if pinned is None or pinned not in files:
            return {file for file in files if file in self._found}
        older = set()
        for file in files:
            if file == pinned:
                break
            older.add(file)
        return older

    def newest_first(self, element: Element) -> list[tuple[str, int]]:
        """The element's frames (file name, size), newest arrival first (frames written before names
        were tagged, found at start, count as its oldest: :meth:`_adopt_legacy`)."""
        prefix = element_prefix(*element)
        self._adopt_legacy(prefix, legacy_prefix(*element))
        return list(reversed(self._by_prefix.get(prefix, {}).items()))

    def _adopt_legacy(self, prefix: str, legacy: str | None) -> None:
        """Move the element's frames of the old, untagged form (indexed at start under the prefix
        their name seemed to have) to its prefix, before its newer frames; once per element."""
        if legacy is None or prefix in self._adopted:
            return
        self._adopted.add(prefix)
        found: dict[str, int] = {}
        for key in [key for key in self._by_prefix if TAG_MARK not in key and legacy.startswith(key)]:
            files = self._by_prefix[key]
            for filename in [f for f in files if is_legacy_file(f, legacy)]:
                found[filename] = files.pop(filename)
                self._arrival[filename] = prefix
            if not files:
                del self._by_prefix[key]
        if found:
            self._by_prefix[prefix] = found | self._by_prefix.get(prefix, {})
