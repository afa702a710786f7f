"""The key space of ``docs/redis-keys.md`` as a pure model (sans-IO, as h11's connection): given typed
INDI events, it says which Redis operations to apply.

:class:`KeySpaceModel` keeps what the store knows of every property (attributes, elements, key names,
JSON templates: :class:`~.properties.PropertyModel`) and the clients' BLOB choices, and turns each
message into operations gathered in a :class:`~.writes.Writes` (current-state writes, history pushes,
the ``from_indi`` publication): a list of :data:`~.writes.Op` that the store's I/O half
(:class:`~.redisstore.RedisStore`) sends.  No connection, file or thread here; BLOB data that arrived
whole is written to the folder by the store first (:meth:`KeySpaceModel.blob_targets` says which), so
that the model only records where each BLOB went.

The model's handlers share their writers (a property's hashes, a history push, a line for the user)
in :class:`KeySpaceWriter`; a ``set*Vector`` of a defined property, the message nearly every one is,
takes one flat path (:meth:`KeySpaceModel._on_set`), its rare cases in functions of their own.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from ..events import journal_fields
from ..protocol.messages import (
    Definition,
    DelProperty,
    EnableBLOB,
    IndiMessage,
    Member,
    Message,
    SetBLOBVector,
    SetVector,
    message_xml,
)
from ..protocol.routing import ALSO, NEVER, BlobPolicy
from ..protocol.vocabulary import DEFAULT_PERM, VectorKind
from ..protocol.xmlout import indi_timestamp
from .keys import DEFINITION_KEYS, KeySpace, merged_log_lengths
from .properties import PropertyModel, number_limits, number_value, unsafe_name, write_definition_order
from .writes import Op, Writes, quote, to_json

log = logging.getLogger(__name__)

_BLOB_FIELDS = ("format", "size", "filepath", "timestamp")


class KeySpaceModel:
    """The key space as a model of the properties; see the module docstring."""

    def __init__(
        self,
        keys: KeySpace,
        channel: str,
        log_lengths: dict[str, int] | None = None,
        *,
        blobs_stored: bool = False,
    ) -> None:
        self.keys = keys
        self.channel = channel  #: where each message is published (``from_indi``)
        self.log_lengths = merged_log_lengths(log_lengths)
        self.writer = KeySpaceWriter(keys, self.log_lengths)
        #: device -> property name -> what the store knows of it
        self.properties: dict[str, dict[str, PropertyModel]] = {}
        #: the clients' enableBLOB choices (BLOB data arrives unless they said Never; none when BLOBs
        #: are not stored)
        self.blob_policy = BlobPolicy(default=ALSO if blobs_stored else NEVER)

    # ---------------------------------------------------------------- queries
    @property
    def device_count(self) -> int:
        """How many devices the model holds."""
        return len(self.properties)

    @property
    def property_count(self) -> int:
        """How many properties the model holds."""
        return sum(len(props) for props in self.properties.values())

    def blobs_enabled(self, device: str, name: str) -> bool:
        """Whether BLOB data may arrive for the property (the clients' last enableBLOB)."""
        return self.blob_policy.mode(device, name) != NEVER

    def definition_patterns(self) -> list[str]:
        """The key patterns of every definition key under the prefix (what :meth:`forget` leaves stale
        in Redis: the store deletes what they match)."""
        return list(self.keys.patterns(DEFINITION_KEYS))

    def blob_targets(self, message: Message, now: str) -> tuple[str, list[Member]]:
        """The members of a ``setBLOBVector`` whose data :meth:`apply` would record (the property and
        the element defined, the names fit for keys), and the timestamp their files are named after
        (the message's, else ``now`` when it has none, else the property's last)."""
        if not isinstance(message, SetBLOBVector):
            return "", []
        prop = self.properties.get(message.device, {}).get(message.name)
        if prop is None or prop.kind is not VectorKind.BLOB:
            return "", []
        if not self._known_names(message) and unsafe_name(message):
            return "", []
        stamp = message.changes().get("timestamp")
        if not stamp:  # none sent: now; sent empty: the property's last
            stamp = now if message.timestamp is None else prop.attrs["timestamp"]
        return stamp, [member for member in message.members if member.name in prop.elements]

    # ---------------------------------------------------------------- events
    def writes(self) -> Writes:
        """An empty list of operations for a batch of :meth:`apply`."""
        return Writes(self.channel)

    def apply(self, writes: Writes, message: Message, now: str | None = None) -> None:
        """Add what ``message`` changes in the key space, then its publication, to ``writes``.

        ``now`` is the timestamp a ``set*Vector`` without one gets (the clock's when not given)."""
        if isinstance(message, SetVector) and (prop := self._defined(message)) is not None:
            self._on_set(writes, message, now, prop)  # the hot path: names known, no more checks
            blob = isinstance(message, SetBLOBVector)  # (message.is_blob, without the call)
            writes.publish(message_xml(message, strip_blob_data=True) if blob else message.raw)
            return
        problem = "" if self._known_names(message) else unsafe_name(message)
        if problem:
            where = journal_fields(device=message.device, prop=message.name)
            log.warning("skipped <%s> for the store: %s", message.tag, problem, extra=where)
            _keep_streamed(message, "its names cannot be keys")
            return
        match message:
            case Definition():
                self._on_definition(writes, message)
            case SetVector():
                self._on_set(writes, message, now, self.properties.get(message.device, {}).get(message.name))
            case IndiMessage():
                self.writer.note(writes, message.device, message.text, message.timestamp)
            case DelProperty():
                self._on_del_property(writes, message)
            case _:
                pass  # new*Vector, getProperties, enableBLOB, pings: published only
        published = message_xml(message, strip_blob_data=True) if message.is_blob else message.raw
        writes.publish(published or message_xml(message))

    def note_outgoing(self, message: Message) -> list[PropertyModel]:
        """What a client sent that changes the key space: an ``enableBLOB`` changes whether BLOB data
        may arrive, so the ``blobs`` attribute of the BLOB properties it names changes; the properties
        where it did, whose attributes are to be written again (:meth:`rewrite`, once the batches
        begun before are in Redis)."""
        if not isinstance(message, EnableBLOB):
            return []
        device, name = message.device, message.name
        self.blob_policy.set(device, name, message.instruction)
        changed: list[PropertyModel] = []
        for prop_name, prop in self.properties.get(device, {}).items():
            if prop.kind is VectorKind.BLOB and (not name or prop_name == name):
                value = self._blobs_attribute(device, prop_name)
                if prop.attrs.get("blobs") != value:
                    prop.attrs["blobs"] = value
                    prop.changed("")
                    changed.append(prop)
        return changed

    def rewrite(self, properties: Iterable[PropertyModel]) -> list[Op]:
        """The writes of these properties' attributes hashes as they are now (pushed on their
        histories where changed)."""
        writes = self.writes()
        for prop in properties:
            self.writer.write_property(writes, prop, ())
        return writes.take()

    def new_connection(self) -> None:
        """Redis may have lost anything since the last writes: every hash is written whole next."""
        for properties in self.properties.values():
            for prop in properties.values():
                prop.templates.clear()

    def forget(self) -> None:
        """Forget every property (the definitions come again)."""
        self.properties.clear()

    # ------------------------------------------------------------- handlers
    def _known_names(self, message: Message) -> bool:
        """Whether a set*Vector names a defined property and only its elements (names checked when
        it was defined)."""
        if not isinstance(message, SetVector):
            return False
        return self._defined(message) is not None

    def _defined(self, message: SetVector) -> PropertyModel | None:
        """The property a set*Vector names if it is defined and the message names only its elements
        (names checked when it was defined), else None."""
        prop = self.properties.get(message.device, {}).get(message.name)
        if prop is None:
            return None
        elements = prop.elements
        for member in message.members:
            if member.name not in elements:
                return None
        return prop

    def _on_definition(self, writes: Writes, message: Definition) -> None:
        device, name, keys, kind = message.device, message.name, self.keys, message.KIND
        new_device = device not in self.properties
        properties = self.properties.setdefault(device, {})
        old = properties.get(name)
        blobs = self._blobs_attribute(device, name) if kind is VectorKind.BLOB else ""
        prop = properties[name] = _defined_property(keys, message, blobs, old)
        if old is not None:
            # a redefinition replaces the property: drop fields and elements it no longer has
            gone = set(old.elements) | set(prop.elements)
            stale = [keys.attributes(name, device), keys.elements(name, device)]
            writes.command("DEL", *stale, *(keys.elementattributes(e, name, device) for e in sorted(gone)))
        element_names = list(prop.elements)
        writes.command("SADD", keys.devices(), device)
        writes.command("SADD", keys.properties(device), name)
        if element_names:
            writes.command("SADD", keys.elements(name, device), *element_names)
        self.writer.write_property(writes, prop, element_names)
        write_definition_order(
            writes.command, keys, device, name, element_names, self.writer.next_definition_score()
        )
        self.writer.push_history(writes, keys.elements(name, device), element_names, "elements")
        if new_device:
            self._push_devices(writes)
        if old is None:
            self._push_properties(writes, device)
        if message.text:
            self.writer.note(writes, device, message.text, message.timestamp)

    def _on_set(
        self, writes: Writes, message: SetVector, now: str | None, prop: PropertyModel | None
    ) -> None:
        """A set*Vector of ``prop`` (the property it names, None when undefined)."""
        if prop is None or prop.kind is not message.KIND:
            _ignore_set(message)
            return
        text, timestamp, prop_attrs = message.text, message.timestamp, prop.attrs
        prop_attrs.update(message.changes())
        if timestamp is None:
            prop_attrs["timestamp"] = now or indi_timestamp()
        if text:
            prop_attrs["message"] = text
        changed: list[str] = []
        kind, elements = prop.kind, prop.elements
        for member in message.members:  # the hot path: kept inline
            member_name = member.name
            element = elements.get(member_name)
            if element is None:
                _ignore_element(message, member)
                continue
            if kind is VectorKind.NUMBER:
                if not member.only_named:  # new limits or format
                    _new_number_attributes(prop, element, member)
                elif element["value"] != member.text:  # a value that did not change is not rendered again
                    number_value(element, member.text)
            elif kind is VectorKind.BLOB:
                if not _record_blob(element, member):
                    continue
            else:
                element["value"] = member.text
            changed.append(member_name)
        self.writer.write_property(writes, prop, changed)
        if text:
            self.writer.note(writes, message.device, text, timestamp)

    def _on_del_property(self, writes: Writes, message: DelProperty) -> None:
        device, name = message.device, message.name
        if name:
            _remove_property(writes, self.keys, self.properties, device, name)
            self._push_properties(writes, device)
            text = message.text or f"Property {name} deleted from device {device}"
        else:
            _remove_device(writes, self.keys, self.properties, device)
            self._push_devices(writes)
            text = message.text or f"Device {device} deleted"
        self.writer.note(writes, device, text, message.timestamp)

    def _push_devices(self, writes: Writes) -> None:
        self.writer.push_history(writes, self.keys.devices(), sorted(self.properties), "devices")

    def _push_properties(self, writes: Writes, device: str) -> None:
        names = sorted(self.properties.get(device, {}))
        self.writer.push_history(writes, self.keys.properties(device), names, "properties")

    def _blobs_attribute(self, device: str, name: str) -> str:
        """The ``blobs`` attribute of a BLOB property: ``Enabled`` or ``Disabled``."""
        return "Enabled" if self.blobs_enabled(device, name) else "Disabled"


class KeySpaceWriter:
    """The writes the model's handlers share, in the key space's form: a property's hashes (pushed on
    their histories where changed), a history push, a line for the user, the score of a definition in
    the order of definitions."""

    def __init__(self, keys: KeySpace, log_lengths: dict[str, int]) -> None:
        self.keys = keys
        self.log_lengths = log_lengths
        self._element_lengths: dict[VectorKind, int] = {}  #: the history length of each kind's elements
        self._definition_sequence = 0  # microseconds since the epoch, strictly increasing

    def write_property(self, writes: Writes, prop: PropertyModel, elements: Iterable[str]) -> None:
        """Write the property's attributes and the given elements' hashes, pushing changes on their
        histories."""
        lengths = self.log_lengths
        prop.write_hash(writes, "", lengths["attributes"])
        kind = prop.kind
        length = self._element_lengths.get(kind)
        if length is None:  # once per kind: the enum's name lookups are not free
            length = self._element_lengths[kind] = lengths[kind.vector.lower()]
        prop.write_hashes(writes, elements, length)

    def push_history(self, writes: Writes, key: str, data: Any, length_key: str) -> None:
        """Push ``data``'s JSON on the history list of ``key`` (if it differs from the newest entry)."""
        writes.history(quote(self.keys.log(key)), to_json(data), self.log_lengths[length_key])

    def note(self, writes: Writes, device: str, text: str, timestamp: str | None) -> None:
        """A line for the user: the device's (or the system's) last message, and its history."""
        stamp = timestamp or indi_timestamp()
        key = self.keys.devicemessages(device) if device else self.keys.messages()
        writes.command("SET", key, f"{stamp} {text}")
        self.push_history(writes, key, [stamp, text], "messages")

    def next_definition_score(self) -> float:
        """A score later than every earlier definition's, also across restarts of the bridge."""
        self._definition_sequence = max(self._definition_sequence + 1, time.time_ns() // 1000)
        return float(self._definition_sequence)


def _defined_property(
    keys: KeySpace, message: Definition, blobs: str, old: PropertyModel | None
) -> PropertyModel:
    """The property a definition makes (``old``: the one it replaces, whose BLOBs' elements keep what
    they last received; ``blobs``: the ``blobs`` attribute of a BLOB property)."""
    kind = message.KIND
    prop = PropertyModel(kind, _property_attrs(message, blobs))
    for member in message.members:
        previous = old.elements.get(member.name, {}) if old else {}
        prop.elements[member.name] = _element_attrs(kind, member, previous)
    prop.keys = _model_keys(keys, message.device, message.name, prop.elements)
    return prop


def _property_attrs(message: Definition, blobs: str) -> dict[str, str]:
    """The attributes hash of a defined property, INDI's defaults filled in (``blobs``: the ``blobs``
    attribute of a BLOB property)."""
    kind, device, name = message.KIND, message.device, message.name
    attrs = {
        "device": device,
        "name": name,
        "label": message.label,
        "group": message.group,
        "timestamp": message.timestamp or indi_timestamp(),
        "vector": kind.vector,
    }
    attrs.update(message.attributes())
    if not kind.writable:
        attrs["perm"] = str(DEFAULT_PERM)  # lights are read-only whatever they say
    if kind is VectorKind.BLOB:
        attrs["blobs"] = blobs
    if message.text:
        attrs["message"] = message.text
    return attrs


def _model_keys(
    keys: KeySpace, device: str, name: str, elements: Iterable[str]
) -> dict[str, tuple[str, str]]:
    """The JSON literals of a property's keys and history keys ("" for the attributes hash)."""
    pairs = {"": keys.attributes(name, device)}
    pairs.update((element, keys.elementattributes(element, name, device)) for element in elements)
    return {part: (quote(key), quote(keys.log(key))) for part, key in pairs.items()}


def _remove_property(
    writes: Writes, keys: KeySpace, properties: dict[str, dict[str, PropertyModel]], device: str, name: str
) -> None:
    """Forget a property, and delete its keys (its order and history stay)."""
    prop = properties.get(device, {}).pop(name, None)
    elements = list(prop.elements) if prop else []
    stale = [keys.attributes(name, device), keys.elements(name, device)]
    writes.command("DEL", *stale, *(keys.elementattributes(e, name, device) for e in elements))
    writes.command("SREM", keys.properties(device), name)
    writes.command("ZREM", keys.propertyorder(device), name)
    writes.command("DEL", keys.elementorder(name, device))


def _remove_device(
    writes: Writes, keys: KeySpace, properties: dict[str, dict[str, PropertyModel]], device: str
) -> None:
    """Forget a device and its properties, and delete their keys."""
    for name in list(properties.get(device, {})):
        _remove_property(writes, keys, properties, device, name)
    writes.command("DEL", keys.properties(device), keys.propertyorder(device))
    writes.command("SREM", keys.devices(), device)
    properties.pop(device, None)


def _element_attrs(kind: VectorKind, member: Member, previous: dict[str, str]) -> dict[str, str]:
    """The attributes hash of a defined element (a BLOB keeps what it last received)."""
    element = {"name": member.name, "label": member.label}
    if kind is VectorKind.NUMBER:
        element["format"] = member.format
        element.update(member.number_limits)
        number_value(element, member.text)
        number_limits(element)
    elif kind is VectorKind.BLOB:
        for key in _BLOB_FIELDS:
            element[key] = previous.get(key, "")
    else:
        element["value"] = member.text
    return element


def _ignore_set(message: SetVector) -> None:
    """A set*Vector of a property not defined (or defined as another kind): nothing to record."""
    log.debug("ignoring %s for undefined property %s of %s", message.tag, message.name, message.device)
    _keep_streamed(message, "its property is not defined (yet)")


def _ignore_element(message: SetVector, member: Member) -> None:
    """A member of a set*Vector naming no element of its property: nothing to record of it."""
    log.debug("ignoring unknown element %s of %s.%s", member.name, message.device, message.name)
    _keep_streamed(message, "its element is not defined (yet)", member)


def _new_number_attributes(prop: PropertyModel, element: dict[str, str], member: Member) -> None:
    """A member of a setNumberVector with new limits or format besides its value: the element's hash
    rendered again, whole."""
    element.update(member.number_changes)
    number_limits(element)
    prop.changed(member.name)
    number_value(element, member.text)


def _record_blob(element: dict[str, str], member: Member) -> bool:
    """Take where a BLOB's data went into its element; False when it was not stored (the store said
    why, or the folder counts refusals)."""
    blob = member.blob
    if blob is None or blob.problem:
        return False
    element.update(format=member.blob_format, size=str(blob.size), filepath=blob.path, timestamp=blob.stamp)
    return True


def _keep_streamed(message: Message, why: str, member: Member | None = None) -> None:
    """Streamed BLOBs the store does not record (a frame arriving just before its property is defined
    again, after a reconnection): their files stay in the folder, where the web client lists them
    once the element is defined, and each is named in a warning."""
    for each in (member,) if member is not None else message.members:
        if each.blob is not None and each.blob.path:
            log.warning(
                "BLOB file %s kept in the blob folder but not recorded: %s",
                os.path.basename(each.blob.path),
                why,
                extra=journal_fields(device=message.device, prop=message.name),
            )
