"""Typed INDI messages: what the stream parser yields and the bridges pass around.

One immutable :class:`Message` per top-level INDI element (values: nothing assigns to their
fields, which the type checker enforces; see ``_value``).  A message keeps
the exact bytes it arrived as (``raw``) so that bridges can forward it
unchanged, and its parsed attributes and members for the store.

Messages a bridge originates itself are built by the constructors
(:meth:`Message.get_properties`, :meth:`Message.enable_blob`, :meth:`Message.new_vector` ...), which
fill in ``raw`` too: nothing renders XML only to parse it back.

Every message is an instance of the class of its kind (as h11 has one class per event): a
``setNumberVector`` is a :class:`SetNumberVector`, which is a :class:`SetVector` and a :class:`Vector`;
a ``delProperty`` a :class:`DelProperty` ... so that code dispatches with ``match`` on the type and
reads typed fields (the vocabulary's enums) instead of comparing tag strings and looking attributes
up.  ``Message(tag, attrs, ...)`` itself makes the class of ``tag``; the fields are computed from the
attributes when read, so the parser's hot path builds nothing more than before.

=========================  ====================================================================
class                      tags
=========================  ====================================================================
:class:`Definition`        ``def{Text,Number,Switch,Light,BLOB}Vector`` (one subclass each)
:class:`SetVector`         ``set{Text,Number,Switch,Light,BLOB}Vector`` (one subclass each)
:class:`NewVector`         ``new{Text,Number,Switch,BLOB}Vector`` (one subclass each)
:class:`IndiMessage`       ``message``
:class:`DelProperty`       ``delProperty``
:class:`GetProperties`     ``getProperties``
:class:`EnableBLOB`        ``enableBLOB``
:class:`PingRequest`       ``pingRequest``
:class:`PingReply`         ``pingReply``
=========================  ====================================================================
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Protocol, TypeVar, dataclass_transform

from ..errors import InvalidValue
from .vocabulary import (
    DEFAULT_NUMBER_FORMAT,
    FROM_DEVICE_TAGS,
    NUMBER_FIELDS,
    VECTOR_TAGS,
    Action,
    BlobInstruction,
    Permission,
    PropertyState,
    SwitchRule,
    SwitchState,
    Tag,
    VectorKind,
    definition_defaults,
)
from .xmlout import INDI_VERSION, element_xml, indi_timestamp

_T = TypeVar("_T")


@dataclass_transform(frozen_default=True)
def _value(cls: type[_T]) -> type[_T]:
    """An immutable value class: a dataclass frozen for the type checker (``mypy --strict`` refuses
    any assignment to a field), not at run time, where a frozen dataclass's ``__init__`` sets each
    field through ``object.__setattr__``, four times slower; the parser makes a member for each element
    of every message (a tenth of a mount stream's CPU per message went to it).  Changed copies are
    made with :func:`dataclasses.replace`."""
    return dataclass(slots=True)(cls)


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
    "Definition",
    "DefTextVector",
    "DefNumberVector",
    "DefSwitchVector",
    "DefLightVector",
    "DefBLOBVector",
    "SetTextVector",
    "SetNumberVector",
    "SetSwitchVector",
    "SetLightVector",
    "SetBLOBVector",
    "NewTextVector",
    "NewNumberVector",
    "NewSwitchVector",
    "NewBLOBVector",
    "DelProperty",
    "EnableBLOB",
    "GetProperties",
    "IndiMessage",
    "Malformed",
    "Member",
    "Message",
    "NewVector",
    "PingReply",
    "PingRequest",
    "SetVector",
    "Vector",
]

_E = TypeVar("_E", bound=Enum)


def _enum(enum: type[_E], text: str | None) -> _E | None:
    """The member of ``enum`` that ``text`` spells, or None when it spells none (or is absent)."""
    if text is None:
        return None
    try:
        return enum(text)
    except ValueError:
        return None


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


class BlobSink(Protocol):
    """Where one ``oneBLOB``'s base64 text goes while it streams in."""

    def write(self, text: bytes) -> None:
        """Take the next piece of base64 text (any length, line breaks included); may raise BlobError."""

    def close(self) -> StreamedBlob:
        """The element has ended: finish and say where the data went (or why it was not stored)."""

    def abort(self) -> None:
        """The element will not end (stream cut, message cut short): drop whatever was written."""


class BlobSinks(Protocol):
    """Opens a :class:`BlobSink` for each ``oneBLOB`` of a BLOB vector."""

    def open(self, vector: Message, element: Mapping[str, str]) -> BlobSink | None:
        """A sink for the element, or None to have its text buffered in the message as usual.

        ``vector``: the BLOB vector being received, its attributes only (no members yet)."""


@_value
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

    @property
    def label(self) -> str:
        """The element's label, its name when it has none."""
        return self.attrs.get("label") or self.name

    @property
    def format(self) -> str:
        """A number's printf-style format (INDI's ``%g`` when absent)."""
        return self.attrs.get("format", DEFAULT_NUMBER_FORMAT)

    @property
    def blob_format(self) -> str:
        """A BLOB's format (``.fits`` ...), '' when absent."""
        return self.attrs.get("format", "")

    @property
    def size(self) -> str:
        """A BLOB's declared decoded size as sent, '' when absent."""
        return self.attrs.get("size", "")

    @property
    def number_limits(self) -> dict[str, str]:
        """A number definition's ``min``, ``max`` and ``step`` as sent ("0" when absent)."""
        return {key: self.attrs.get(key, "0") for key in NUMBER_FIELDS}

    @property
    def only_named(self) -> bool:
        """Whether the element carries no attribute but its name (a plain value)."""
        return len(self.attrs) <= 1

    @property
    def number_changes(self) -> dict[str, str]:
        """The limits and format a ``oneNumber`` changes: those it carries, not empty."""
        return {key: value for key in (*NUMBER_FIELDS, "format") if (value := self.attrs.get(key, ""))}

    @property
    def switch(self) -> SwitchState | None:
        """A switch's value, None when the text is no switch state."""
        return _enum(SwitchState, self.text)


@_value
class Message:
    """One complete top-level INDI message; ``Message(tag, ...)`` makes the class of ``tag``."""

    tag: str
    attrs: Mapping[str, str]
    members: tuple[Member, ...] = ()
    raw: bytes = field(default=b"", repr=False, compare=False)

    def __new__(cls, tag: str = "", *args: Any, **kwargs: Any) -> Message:
        """``Message(tag, ...)`` is an instance of the class of ``tag`` (:class:`SetNumberVector` ...)."""
        return object.__new__(_CLASSES.get(tag, cls) if cls is Message else cls)

    @property
    def timestamp(self) -> str | None:
        """The ``timestamp`` attribute as sent, None when absent."""
        return self.attrs.get("timestamp")

    @property
    def text(self) -> str:
        """The ``message`` attribute: a line for the user ('' when none)."""
        return self.attrs.get("message", "")

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
    def get_properties(cls, device: str = "", name: str = "") -> GetProperties:
        """A getProperties request for everything, one device, or one property of it."""
        attrs = {"version": INDI_VERSION}
        if device:
            attrs["device"] = device
            if name:
                attrs["name"] = name
        return _typed(GetProperties, cls.build(Tag.GET_PROPERTIES, attrs))

    @classmethod
    def enable_blob(
        cls, device: str, name: str = "", policy: BlobInstruction | str = BlobInstruction.ALSO
    ) -> EnableBLOB:
        """An enableBLOB instruction (Never/Also/Only) for a device or one of its properties.

        Raises ValueError for an instruction INDI does not know.
        """
        instruction = BlobInstruction(policy)
        attrs = {"device": device}
        if name:
            attrs["name"] = name
        attrs["instruction"] = instruction
        return _typed(EnableBLOB, cls.build(Tag.ENABLE_BLOB, attrs))

    @classmethod
    def new_vector(
        cls, kind: VectorKind | str, device: str, name: str, values: Mapping[str, str], timestamp: str = ""
    ) -> NewVector:
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
        return _typed(NewVector, cls.build(vector_kind.tag(Action.NEW), attrs, members))

    @classmethod
    def new_blob_vector(
        cls, device: str, name: str, blobs: Iterable[tuple[str, int, str, bytes]], timestamp: str = ""
    ) -> NewVector:
        """A newBLOBVector; ``blobs`` holds (element, size, format, data) with the raw bytes."""
        members = (
            ("oneBLOB", {"name": element, "size": str(size), "format": fmt}, base64.b64encode(data).decode())
            for element, size, fmt, data in blobs
        )
        attrs = {"device": device, "name": name, "timestamp": timestamp or indi_timestamp()}
        return _typed(NewVector, cls.build(Tag.NEW_BLOB_VECTOR, attrs, members))

    @classmethod
    def indi_message(cls, text: str, device: str = "", timestamp: str = "") -> IndiMessage:
        """An INDI ``message``: a line of text for the user, from a device or (no device) the system."""
        attrs = {"device": device} if device else {}
        attrs.update(message=text, timestamp=timestamp or indi_timestamp())
        return _typed(IndiMessage, cls.build(Tag.MESSAGE, attrs))

    @classmethod
    def del_property(cls, device: str, name: str = "", timestamp: str = "") -> DelProperty:
        """A ``delProperty``: the property (or, without ``name``, the whole device) is gone."""
        attrs = {"device": device}
        if name:
            attrs["name"] = name
        attrs["timestamp"] = timestamp or indi_timestamp()
        return _typed(DelProperty, cls.build(Tag.DEL_PROPERTY, attrs))

    @classmethod
    def ping_request(cls, uid: str) -> PingRequest:
        """A ``pingRequest`` with the ``uid`` its reply must carry."""
        return _typed(PingRequest, cls.build(Tag.PING_REQUEST, {"uid": uid}))

    @classmethod
    def ping_reply(cls, uid: str) -> PingReply:
        """The ``pingReply`` to a ``pingRequest`` carrying ``uid``."""
        return _typed(PingReply, cls.build(Tag.PING_REPLY, {"uid": uid}))


_M = TypeVar("_M", bound=Message)


def _typed(cls: type[_M], message: Message) -> _M:
    """``message``, which the constructors made of the class of its tag."""
    assert isinstance(message, cls)
    return message


class Vector(Message):
    """A property vector message: a definition, new values from a device, or values a client asks for."""

    __slots__ = ()
    KIND: ClassVar[VectorKind]
    ACTION: ClassVar[Action]

    @property
    def state(self) -> PropertyState | None:
        """The property's state, None when absent or not one of INDI's."""
        return _enum(PropertyState, self.attrs.get("state"))

    @property
    def timeout(self) -> str:
        """The ``timeout`` attribute as sent ('' when absent)."""
        return self.attrs.get("timeout", "")


class Definition(Vector):
    """A ``def*Vector``: a property and its elements are (re)defined."""

    __slots__ = ()
    ACTION = Action.DEF

    @property
    def label(self) -> str:
        """The property's label, its name when it has none."""
        return self.attrs.get("label") or self.name

    @property
    def group(self) -> str:
        """The group it is shown in ('' when none)."""
        return self.attrs.get("group", "")

    @property
    def perm(self) -> Permission:
        """Whether clients may write it (lights, and anything unknown, read-only)."""
        perm = _enum(Permission, self.attrs.get("perm")) if self.KIND.writable else None
        return perm or Permission.RO

    @property
    def rule(self) -> SwitchRule | None:
        """A switch vector's rule (INDI's default when absent or unknown); None for other kinds."""
        return SwitchRule.parse(self.attrs.get("rule", "")) if self.KIND.has_rule else None

    def attributes(self) -> dict[str, str]:
        """The attributes as sent, INDI's defaults filled in for those left out (state, perm, timeout,
        rule, as :func:`~.vocabulary.definition_defaults` has them for the kind)."""
        defaults = definition_defaults(self.KIND)
        return {key: self.attrs.get(key, default) for key, default in defaults.items()}


class SetVector(Vector):
    """A ``set*Vector``: a device's new values (and state) of a defined property."""

    __slots__ = ()
    ACTION = Action.SET

    def changes(self) -> dict[str, str]:
        """The attributes it changes: ``state``, ``timeout`` and ``timestamp`` where sent, not empty."""
        attrs = self.attrs
        return {key: value for key in ("state", "timeout", "timestamp") if (value := attrs.get(key, ""))}


class NewVector(Vector):
    """A ``new*Vector``: values a client asks a device to take."""

    __slots__ = ()
    ACTION = Action.NEW


class IndiMessage(Message):
    """An INDI ``message``: a line of text for the user, from a device or (no device) the system."""

    __slots__ = ()


class DelProperty(Message):
    """A ``delProperty``: a property (or, with no name, the whole device) is gone."""

    __slots__ = ()


class GetProperties(Message):
    """A ``getProperties``: a request for definitions (everything, a device, or one property)."""

    __slots__ = ()


class EnableBLOB(Message):
    """An ``enableBLOB``: whether the sender wants BLOB data of a device or of one property."""

    __slots__ = ()

    @property
    def instruction(self) -> BlobInstruction:
        """The instruction (``Never`` for anything INDI does not know, as indiserver takes it)."""
        return BlobInstruction.parse(self.attrs.get("instruction", ""))


class PingRequest(Message):
    """A ``pingRequest``; its reply must carry its ``uid``."""

    __slots__ = ()

    @property
    def uid(self) -> str:
        """The identifier the reply carries back."""
        return self.attrs.get("uid", "")


class PingReply(Message):
    """The ``pingReply`` to a ``pingRequest``."""

    __slots__ = ()

    @property
    def uid(self) -> str:
        """The identifier of the request it answers."""
        return self.attrs.get("uid", "")


class DefTextVector(Definition):
    """A ``defTextVector``."""

    __slots__ = ()
    KIND = VectorKind.TEXT


class DefNumberVector(Definition):
    """A ``defNumberVector``."""

    __slots__ = ()
    KIND = VectorKind.NUMBER


class DefSwitchVector(Definition):
    """A ``defSwitchVector``."""

    __slots__ = ()
    KIND = VectorKind.SWITCH


class DefLightVector(Definition):
    """A ``defLightVector``."""

    __slots__ = ()
    KIND = VectorKind.LIGHT


class DefBLOBVector(Definition):
    """A ``defBLOBVector``."""

    __slots__ = ()
    KIND = VectorKind.BLOB


class SetTextVector(SetVector):
    """A ``setTextVector``."""

    __slots__ = ()
    KIND = VectorKind.TEXT


class SetNumberVector(SetVector):
    """A ``setNumberVector``."""

    __slots__ = ()
    KIND = VectorKind.NUMBER


class SetSwitchVector(SetVector):
    """A ``setSwitchVector``."""

    __slots__ = ()
    KIND = VectorKind.SWITCH


class SetLightVector(SetVector):
    """A ``setLightVector``."""

    __slots__ = ()
    KIND = VectorKind.LIGHT


class SetBLOBVector(SetVector):
    """A ``setBLOBVector``."""

    __slots__ = ()
    KIND = VectorKind.BLOB


class NewTextVector(NewVector):
    """A ``newTextVector``."""

    __slots__ = ()
    KIND = VectorKind.TEXT


class NewNumberVector(NewVector):
    """A ``newNumberVector``."""

    __slots__ = ()
    KIND = VectorKind.NUMBER


class NewSwitchVector(NewVector):
    """A ``newSwitchVector``."""

    __slots__ = ()
    KIND = VectorKind.SWITCH


class NewBLOBVector(NewVector):
    """A ``newBLOBVector``."""

    __slots__ = ()
    KIND = VectorKind.BLOB


#: tag -> the class of its messages
_CLASSES: dict[str, type[Message]] = {
    str(Tag.MESSAGE): IndiMessage,
    str(Tag.DEL_PROPERTY): DelProperty,
    str(Tag.GET_PROPERTIES): GetProperties,
    str(Tag.ENABLE_BLOB): EnableBLOB,
    str(Tag.PING_REQUEST): PingRequest,
    str(Tag.PING_REPLY): PingReply,
}
_CLASSES.update(
    {
        str(Tag.DEF_TEXT_VECTOR): DefTextVector,
        str(Tag.DEF_NUMBER_VECTOR): DefNumberVector,
        str(Tag.DEF_SWITCH_VECTOR): DefSwitchVector,
        str(Tag.DEF_LIGHT_VECTOR): DefLightVector,
        str(Tag.DEF_BLOB_VECTOR): DefBLOBVector,
        str(Tag.SET_TEXT_VECTOR): SetTextVector,
        str(Tag.SET_NUMBER_VECTOR): SetNumberVector,
        str(Tag.SET_SWITCH_VECTOR): SetSwitchVector,
        str(Tag.SET_LIGHT_VECTOR): SetLightVector,
        str(Tag.SET_BLOB_VECTOR): SetBLOBVector,
        str(Tag.NEW_TEXT_VECTOR): NewTextVector,
        str(Tag.NEW_NUMBER_VECTOR): NewNumberVector,
        str(Tag.NEW_SWITCH_VECTOR): NewSwitchVector,
        str(Tag.NEW_BLOB_VECTOR): NewBLOBVector,
    }
)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A piece of the stream that was skipped, and why (one log line's worth)."""

    reason: str
    excerpt: bytes = b""

    def __str__(self) -> str:
        snippet = self.excerpt[:80].decode("utf-8", "replace")
        return f"{self.reason}: {snippet!r}" if snippet else self.reason


def message_xml(message: Message, *, strip_blob_data: bool = False) -> bytes:
    """Re-serialise a message; with ``strip_blob_data`` BLOB payloads are left out."""
    members = (
        (m.tag, m.attrs, "" if (strip_blob_data and message.is_blob) else m.text) for m in message.members
    )
    is_enable_blob = message.tag == Tag.ENABLE_BLOB
    text = message.attrs.get("instruction", "") if is_enable_blob else ""
    attrs = {k: v for k, v in message.attrs.items() if not (is_enable_blob and k == "instruction")}
    return element_xml(message.tag, attrs, members, text)
