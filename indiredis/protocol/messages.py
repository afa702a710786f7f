"""Typed INDI messages: what the stream parser yields and the bridges pass around.

One immutable :class:`Message` per top-level INDI element.  A message keeps
the exact bytes it arrived as (``raw``) so that bridges can forward it
unchanged, and its parsed attributes and members for the store.

Messages a bridge originates itself are built by the constructors
(:meth:`Message.get_properties`, :meth:`Message.enable_blob`, :meth:`Message.new_vector` ...), which
fill in ``raw`` too: nothing renders XML only to parse it back.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import InvalidValue
from .vocabulary import (
    FROM_DEVICE_TAGS,
    VECTOR_TAGS,
    Action,
    BlobInstruction,
    Tag,
    VectorKind,
)
from .xmlout import INDI_VERSION, element_xml, indi_timestamp

if TYPE_CHECKING:
    from .parser import BlobSink

#: the vector kinds' names, in INDI's order
VECTOR_KINDS = tuple(kind.value for kind in VectorKind)

#: top-level tag -> tag its members must have
MEMBER_TAGS: dict[str, str] = {tag: kind.member_tag(action) for tag, (kind, action) in VECTOR_TAGS.items()}

#: top-level tags with no members
PLAIN_TAGS = frozenset(str(tag) for tag in Tag if tag not in MEMBER_TAGS)
TOP_LEVEL_TAGS = frozenset(MEMBER_TAGS) | PLAIN_TAGS

__all__ = [
    "FROM_DEVICE_TAGS",
    "MEMBER_TAGS",
    "PLAIN_TAGS",
    "TOP_LEVEL_TAGS",
    "VECTOR_KINDS",
    "Malformed",
    "Member",
    "Message",
]


@dataclass(frozen=True, slots=True)
class StreamedBlob:
    """Where a ``oneBLOB``'s data went while it streamed in (the member's text is then empty):
    the file now in place and its decoded size, or why nothing was stored."""

    path: str = ""
    size: int = 0
    stamp: str = ""  #: the timestamp the file is named after
    problem: str = ""  #: why the data was not stored ('' when it was)
    #: a sink whose data has all arrived but which is not closed yet (the parser's ``defer_close``):
    #: :func:`~.parser.settle` closes it, off the event loop, before the message goes on
    pending: BlobSink | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Member:
    """One element of a vector (``defNumber``, ``oneSwitch`` ...)."""

    tag: str
    attrs: Mapping[str, str]
    text: str
    #: for a streamed ``oneBLOB``: where its data went (``text`` is then empty)
    blob: StreamedBlob | None = field(default=None, compare=False)

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
    def action(self) -> Action | None:
        """``def``, ``set`` or ``new`` for vectors; None for the other messages."""
        kind_action = VECTOR_TAGS.get(self.tag)
        return kind_action[1] if kind_action else None

    @property
    def kind(self) -> VectorKind | None:
        """The vector kind (``Text``, ``Number`` ...) for vectors; None for the other messages."""
        kind_action = VECTOR_TAGS.get(self.tag)
        return kind_action[0] if kind_action else None

    @property
    def vector(self) -> str:
        """'TextVector', 'NumberVector' ... for vectors, '' otherwise."""
        kind_action = VECTOR_TAGS.get(self.tag)
        return kind_action[0].vector if kind_action else ""

    @property
    def is_blob(self) -> bool:
        """True for BLOB vectors, whose member text is base64 data."""
        return self.tag.endswith("BLOBVector")

    @property
    def from_device(self) -> bool:
        """True for what devices send towards clients: definitions, values, messages, deletions."""
        return self.tag in FROM_DEVICE_TAGS

    # ------------------------------------------------------------------ constructors
    @classmethod
    def build(
        cls, tag: Tag, attrs: Mapping[str, str], members: Iterable[tuple[str, Mapping[str, str], str]] = ()
    ) -> Message:
        """A message with these attributes and (tag, attributes, text) members, its ``raw`` rendered.

        For ``enableBLOB`` the ``instruction`` attribute is the element's text, as the parser reads it.
        """
        attrs = {key: str(value) for key, value in attrs.items()}
        parts = tuple(Member(t, dict(a), text.strip()) for t, a, text in members)
        text = attrs.pop("instruction", "") if tag is Tag.ENABLE_BLOB else ""
        raw = element_xml(str(tag), attrs, ((m.tag, m.attrs, m.text) for m in parts), text)
        if tag is Tag.ENABLE_BLOB:
            attrs["instruction"] = text
        return cls(str(tag), attrs, parts, raw)

    @classmethod
    def get_properties(cls, device: str = "", name: str = "") -> Message:
        """A getProperties request for everything, one device, or one property of it."""
        attrs = {"version": INDI_VERSION}
        if device:
            attrs["device"] = device
            if name:
                attrs["name"] = name
        return cls.build(Tag.GET_PROPERTIES, attrs)

    @classmethod
    def enable_blob(
        cls, device: str, name: str = "", policy: BlobInstruction | str = BlobInstruction.ALSO
    ) -> Message:
        """An enableBLOB instruction (Never/Also/Only) for a device or one of its properties.

        Raises ValueError for an instruction INDI does not know.
        """
        instruction = BlobInstruction(policy)
        attrs = {"device": device}
        if name:
            attrs["name"] = name
        attrs["instruction"] = instruction
        return cls.build(Tag.ENABLE_BLOB, attrs)

    @classmethod
    def new_vector(
        cls, kind: VectorKind | str, device: str, name: str, values: Mapping[str, str], timestamp: str = ""
    ) -> Message:
        """A new{Text,Number,Switch}Vector with one member per ``values`` item (element -> value).

        ``timestamp`` defaults to now.  Raises ValueError for lights, which clients cannot set, and for
        an unknown kind.
        """
        vector_kind = VectorKind(kind)
        if not vector_kind.writable:
            raise InvalidValue(f"a {vector_kind.vector} cannot be set by a client")
        member_tag = vector_kind.member_tag(Action.NEW)
        members = ((member_tag, {"name": element}, str(value)) for element, value in values.items())
        attrs = {"device": device, "name": name, "timestamp": timestamp or indi_timestamp()}
        return cls.build(vector_kind.tag(Action.NEW), attrs, members)

    @classmethod
    def new_blob_vector(
        cls, device: str, name: str, blobs: Iterable[tuple[str, int, str, bytes]], timestamp: str = ""
    ) -> Message:
        """A newBLOBVector; ``blobs`` holds (element, size, format, data) with the raw bytes."""
        members = (
            ("oneBLOB", {"name": element, "size": str(size), "format": fmt}, base64.b64encode(data).decode())
            for element, size, fmt, data in blobs
        )
        attrs = {"device": device, "name": name, "timestamp": timestamp or indi_timestamp()}
        return cls.build(Tag.NEW_BLOB_VECTOR, attrs, members)

    @classmethod
    def indi_message(cls, text: str, device: str = "", timestamp: str = "") -> Message:
        """An INDI ``message``: a line of text for the user, from a device or (no device) the system."""
        attrs = {"device": device} if device else {}
        attrs.update(message=text, timestamp=timestamp or indi_timestamp())
        return cls.build(Tag.MESSAGE, attrs)

    @classmethod
    def del_property(cls, device: str, name: str = "", timestamp: str = "") -> Message:
        """A ``delProperty``: the property (or, without ``name``, the whole device) is gone."""
        attrs = {"device": device}
        if name:
            attrs["name"] = name
        attrs["timestamp"] = timestamp or indi_timestamp()
        return cls.build(Tag.DEL_PROPERTY, attrs)

    @classmethod
    def ping_request(cls, uid: str) -> Message:
        """A ``pingRequest`` with the ``uid`` its reply must carry."""
        return cls.build(Tag.PING_REQUEST, {"uid": uid})

    @classmethod
    def ping_reply(cls, uid: str) -> Message:
        """The ``pingReply`` to a ``pingRequest`` carrying ``uid``."""
        return cls.build(Tag.PING_REPLY, {"uid": uid})


@dataclass(frozen=True, slots=True)
class Malformed:
    """A piece of the stream that was skipped, and why (one log line's worth)."""

    reason: str
    excerpt: bytes = b""

    def __str__(self) -> str:
        snippet = self.excerpt[:80].decode("utf-8", "replace")
        return f"{self.reason}: {snippet!r}" if snippet else self.reason
