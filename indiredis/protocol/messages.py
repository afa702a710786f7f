"""Typed INDI messages: what the stream parser yields and the bridges pass around.

One immutable :class:`Message` per top-level INDI element.  A message keeps
the exact bytes it arrived as (``raw``) so that bridges can forward it
unchanged, and its parsed attributes and members for the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

VECTOR_KINDS = ("Text", "Number", "Switch", "Light", "BLOB")

#: top-level tag -> tag its members must have
MEMBER_TAGS: dict[str, str] = {}
for _kind in VECTOR_KINDS:
    MEMBER_TAGS[f"def{_kind}Vector"] = f"def{_kind}"
    MEMBER_TAGS[f"set{_kind}Vector"] = f"one{_kind}"
    if _kind != "Light":
        MEMBER_TAGS[f"new{_kind}Vector"] = f"one{_kind}"

#: top-level tags with no members
PLAIN_TAGS = frozenset({"message", "delProperty", "getProperties", "enableBLOB", "pingRequest", "pingReply"})
TOP_LEVEL_TAGS = frozenset(MEMBER_TAGS) | PLAIN_TAGS

#: messages a driver / indiserver sends towards clients
FROM_DEVICE_TAGS = frozenset(
    t for t in TOP_LEVEL_TAGS if t.startswith(("def", "set")) or t in ("message", "delProperty")
)


@dataclass(frozen=True, slots=True)
class Member:
    """One element of a vector (``defNumber``, ``oneSwitch`` ...)."""

    tag: str
    attrs: Mapping[str, str]
    text: str

    @property
    def name(self) -> str:
        """The element name."""
        return self.attrs.get("name", "")


@dataclass(frozen=True, slots=True)
class Message:
    """One complete top-level INDI message."""

    tag: str
    attrs: Mapping[str, str]
    members: tuple[Member, ...] = ()
    raw: bytes = field(default=b"", repr=False, compare=False)

    @property
    def device(self) -> str:
        """The device the message names, or '' when it names none."""
        return self.attrs.get("device", "")

    @property
    def name(self) -> str:
        """The property the message names, or '' when it names none."""
        return self.attrs.get("name", "")

    @property
    def action(self) -> str:
        """'def', 'set' or 'new' for vectors; the tag itself otherwise."""
        if self.tag in MEMBER_TAGS:
            return self.tag[:3]
        return self.tag

    @property
    def vector(self) -> str:
        """'TextVector', 'NumberVector' ... for vectors, '' otherwise."""
        if self.tag in MEMBER_TAGS:
            return self.tag[3:]
        return ""

    @property
    def is_blob(self) -> bool:
        """True for BLOB vectors, whose member text is base64 data."""
        return self.tag.endswith("BLOBVector")


@dataclass(frozen=True, slots=True)
class Malformed:
    """A piece of the stream that was skipped, and why (one log line's worth)."""

    reason: str
    excerpt: bytes = b""

    def __str__(self) -> str:
        snippet = self.excerpt[:80].decode("utf-8", "replace")
        return f"{self.reason}: {snippet!r}" if snippet else self.reason
