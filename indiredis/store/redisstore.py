"""The Redis store: applies INDI messages to the key space of ``docs/redis-keys.md``.

:class:`RedisStore` keeps a model of the property definitions with what only a
definition changes (parsed limits, formats, key names, JSON templates; see
``docs/datapath.md``) and turns each batch of messages into one pipelined round
trip: current-state writes, history-list pushes (pushed only when the data
differs from the newest entry) and the ``from_indi`` publications, in order,
mostly in one Lua script call (:mod:`.writes`).  A hash is written whole the
first time on each Redis connection and whenever a fixed value changes, then
only the fields that change; a Redis that came back empty is a new connection,
so the next message of each property rebuilds its hashes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import redis.exceptions

from ..errors import BlobError
from ..events import journal_fields
from ..hosts import RedisServer
from ..protocol.messages import Member, Message
from ..protocol.numbers import number_formatter, number_to_float
from ..protocol.vocabulary import (
    DEFAULT_NUMBER_FORMAT,
    NUMBER_FIELDS,
    Action,
    BlobInstruction,
    Tag,
    VectorKind,
    definition_defaults,
)
from ..protocol.xmlout import indi_timestamp, message_xml
from .blobs import DEFAULT_MAX_BLOB_SIZE, BlobFolder, BlobStreams, is_refusal
from .keys import DEFINITION_KEYS, KeySpace, merged_log_lengths
from .writes import SCRIPTS, JsonTemplate, Writes, flat_fields, quote, to_json

log = logging.getLogger(__name__)

_BLOB_FIELDS = ("format", "size", "filepath", "timestamp")
# the fields a set*Vector changes, rendered on every write (the others are kept in JSON templates)
_DYNAMIC_ATTRS = frozenset({"state", "timestamp", "timeout", "message"})
_DYNAMIC_NUMBER = frozenset({"value", "float_number", "formatted_number"})
_DYNAMIC_VALUE = frozenset({"value"})
#: messages prepared between two yields to the event loop (see :meth:`RedisStore.prepare`)
PREPARE_SLICE = 50


class PreparedBatch(NamedTuple):
    """A batch of writes :meth:`RedisStore.prepare` made, to be sent with :meth:`RedisStore.send`."""

    pipe: Any  #: the redis-py pipeline holding the writes
    number: int  #: the batch's place in the order batches are prepared (and sent) in


@dataclass
class PropertyModel:
    """What the store knows of one property: attributes and element attributes, and (kept from the
    definition, as only a definition changes them) the JSON literals of its keys."""

    kind: VectorKind
    attrs: dict[str, str]
    elements: dict[str, dict[str, str]] = field(default_factory=dict)
    #: "" for the attributes hash, else an element name -> (key, history key) as JSON string literals
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: the JSON templates of its hashes ("" for the attributes), each made when its hash was last
    #: written whole on this Redis connection: while it lasts, writes set only the fields a set*Vector
    #: changes; dropped when a fixed value changes, cleared on a new connection
    templates: dict[str, JsonTemplate] = field(default_factory=dict)

    @property
    def vector(self) -> str:
        """``NumberVector``, ``BLOBVector`` ... as the attributes hash names it."""
        return self.kind.vector

    def write_hash(self, writes: Writes, part: str, length: int) -> None:
        """Write the attributes hash (part "") or an element's hash, with its history entry (as JSON,
        through the hash's template): all of its fields the first time on a connection and whenever a
        fixed value changed, else only those a set*Vector changes (the others are in Redis already).
        """
        data = self.attrs if part == "" else self.elements[part]
        key, log_key = self.keys[part]
        if part and self.kind is VectorKind.BLOB:
            writes.hash(key, log_key, to_json(data), length, flat_fields(data))
            return
        template = self.templates.get(part)
        if template is not None and template.size == len(data):
            item = template.item(data)
            if item is None:
                payload, fields = template.render(data)
                writes.hash(key, log_key, payload, length, fields)
            else:
                writes.add(item)
            return
        if part == "":
            dynamic = _DYNAMIC_ATTRS
        else:
            dynamic = _DYNAMIC_NUMBER if self.kind is VectorKind.NUMBER else _DYNAMIC_VALUE
        template = self.templates[part] = JsonTemplate(data, dynamic, key, log_key, length)
        writes.hash(key, log_key, template.render(data)[0], length, flat_fields(data))

    def changed(self, part: str) -> None:
        """A fixed value of a hash changed: render it again, and write it whole."""
        self.templates.pop(part, None)


def _number_limits(attrs: dict[str, str]) -> None:
    """Fill the float_ fields of min, max and step (done when they change, not on every value)."""
    for name in NUMBER_FIELDS:
        try:
            attrs["float_" + name] = repr(number_to_float(attrs.get(name, "0")))
        except ValueError:
            attrs["float_" + name] = ""


def _number_value(attrs: dict[str, str], raw_value: str) -> None:
    """Fill value, formatted_number and float_number of a number element."""
    attrs["value"] = raw_value
    try:
        number = number_to_float(raw_value)
    except ValueError:
        attrs["float_number"] = ""
        attrs["formatted_number"] = raw_value
        return
    attrs["float_number"] = repr(number)
    attrs["formatted_number"] = number_formatter(attrs.get("format", DEFAULT_NUMBER_FORMAT))(number)


MAX_NAME_LENGTH = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def unsafe_name(message: Message) -> str:
    """Why the message's device, property or element names cannot be keys, or ''.

    Names are glued into keys with ':' (``attributes:<property>:<device>``), so a
    name containing ':' could impersonate another device's keys; such names, and
    names with control characters or longer than 256 characters, are refused.
    """
    names = [("device", message.device), ("property", message.name)]
    names += [("element", member.name) for member in message.members]
    for what, name in names:
        if ":" in name:
            return f"{what} name {name[:80]!r} contains ':', which would make Redis keys ambiguous"
        if _CONTROL.search(name):
            return f"{what} name {name[:80]!r} contains control characters"
        if len(name) > MAX_NAME_LENGTH:
            return f"{what} name is longer than {MAX_NAME_LENGTH} characters"
    return ""


def write_definition_order(
    command: Callable[..., Any],
    keys: KeySpace,
    device: str,
    name: str,
    element_names: Sequence[str],
    score: float,
) -> None:
    """Keep the driver's order beside the original's keys: the property joins the device's
    ``propertyorder`` sorted set at ``score`` unless already there (its first definition counts), and
    its ``elementorder`` list is rewritten (a deleted property leaves both:
    :meth:`RedisStore._delete_property`)."""
    command("ZADD", keys.propertyorder(device), "NX", score, name)
    command("DEL", keys.elementorder(name, device))
    if element_names:
        command("RPUSH", keys.elementorder(name, device), *element_names)


class RedisStore:
    """Applies INDI messages to Redis; see the module docstring."""

    def __init__(
        self,
        redisserver: RedisServer,
        log_lengths: dict[str, int] | None = None,
        blob_folder: str | None = None,
        max_blob_size: int = DEFAULT_MAX_BLOB_SIZE,
    ) -> None:
        self.server = redisserver
        self.keys = KeySpace(redisserver.keyprefix)
        self.log_lengths = merged_log_lengths(log_lengths)
        self.blobs = BlobFolder(blob_folder, max_blob_size) if blob_folder else None
        #: what the INDI side's parser streams BLOB data into (files in the blob folder)
        self.blob_streams = BlobStreams(self.blobs)
        self.model: dict[str, dict[str, PropertyModel]] = {}
        #: (device, property) -> True/False from enableBLOB instructions; (device, "") for a whole device
        self.blob_policy: dict[tuple[str, str], bool] = {}
        self._scripts_loaded_on: Any = None
        # batches numbered as :meth:`prepare` begins them, and the newest Redis confirmed (they are sent
        # one at a time, in order): writes made outside them wait for those begun before (note_outgoing)
        self._begun = 0
        self._confirmed = 0
        self._confirmation = asyncio.Event()
        self._definition_sequence = 0  # microseconds since the epoch, strictly increasing

    def _next_definition_score(self) -> float:
        """A score later than every earlier definition's, also across restarts of the bridge."""
        self._definition_sequence = max(self._definition_sequence + 1, time.time_ns() // 1000)
        return float(self._definition_sequence)

    # ------------------------------------------------------------ statistics
    @property
    def device_count(self) -> int:
        """How many devices the store holds."""
        return len(self.model)

    @property
    def property_count(self) -> int:
        """How many properties the store holds."""
        return sum(len(props) for props in self.model.values())

    # ---------------------------------------------------------------- public
    async def apply(self, rconn: Any, messages: Sequence[Message]) -> None:
        """Apply ``messages`` in order in one pipelined round trip, then publish each.

        Re-applying a batch is harmless (hash writes are idempotent and history
        entries are pushed only when different), so a batch that fails half-way
        may simply be applied again.
        """
        await self.send(rconn, await self.prepare(rconn, messages))

    async def prepare(self, rconn: Any, messages: Sequence[Message]) -> PreparedBatch:
        """The first half of :meth:`apply`: update the model and return the pipeline of writes, not
        sent yet (so that the next batch can be prepared while Redis runs this one).  Batches must be
        sent in the order they were prepared, one at a time.

        Every PREPARE_SLICE messages it yields to the event loop: the batch sent before goes on
        being written to Redis's socket meanwhile (otherwise Redis would only get it once this one
        is ready, and Python and Redis would take turns instead of working at once), and client
        commands and the heartbeat are not held up by a long batch.

        A batch given up half prepared (its connection failed, the task was cancelled) leaves the
        model ahead of Redis, with hashes taken as written whole that never were: harmless, as its
        messages go back to the channel and the next connection writes every hash whole again
        (:meth:`load_scripts`)."""

        async def fill(writes: Writes) -> None:
            for index, message in enumerate(messages, 1):
                await self._apply_one(writes, message)
                if index % PREPARE_SLICE == 0:
                    await asyncio.sleep(0)  # let the loop send the batch before and serve the rest

        self._begun += 1
        number = self._begun
        return PreparedBatch(await self._fill(rconn, fill), number)

    async def _fill(self, rconn: Any, fill: Callable[[Writes], Awaitable[None]]) -> Any:
        if self._scripts_loaded_on is not rconn:
            await self.load_scripts(rconn)
        pipe = rconn.pipeline(transaction=False)
        writes = Writes(pipe, self.server.from_indi_channel)
        await fill(writes)
        writes.flush()
        return pipe

    async def send(self, rconn: Any, batch: PreparedBatch) -> None:
        """The second half of :meth:`apply`: run a prepared batch in one round trip."""
        await self._send(rconn, batch.pipe)
        self._confirmed = max(self._confirmed, batch.number)
        self._confirmation.set()

    def forget_unconfirmed(self) -> None:
        """Batches prepared and not confirmed were abandoned (a connection ended; their messages go
        back to the channel and are prepared again): nothing waits for them any more."""
        self._confirmed = self._begun
        self._confirmation.set()

    async def _after_begun_batches(self) -> None:
        """Wait until Redis confirmed every batch begun so far (the writes of a batch being prepared
        may hold what the model held before)."""
        begun = self._begun
        while self._confirmed < begun:
            self._confirmation.clear()
            await self._confirmation.wait()

    async def _send(self, rconn: Any, pipe: Any) -> None:
        """Run a pipeline in one round trip (loading the scripts again and repeating what failed if
        Redis flushed them meanwhile)."""
        commands = list(pipe.command_stack)
        results = await pipe.execute(raise_on_error=False)
        pairs = zip(commands, results, strict=True)
        failed = [command for command, result in pairs if isinstance(result, Exception)]
        if not failed:
            return
        errors = [result for result in results if isinstance(result, Exception)]
        if not all(isinstance(error, redis.exceptions.NoScriptError) for error in errors):
            raise errors[0]
        # the scripts were flushed since they were loaded: load them and run what failed again
        await self.load_scripts(rconn)
        pipe = rconn.pipeline(transaction=False)
        for args, options in failed:
            pipe.execute_command(*args, **options)
        await pipe.execute()

    async def load_scripts(self, rconn: Any) -> None:
        """Load the store's Lua scripts into Redis (done once per connection, and again if Redis lost
        them).  Redis may have lost more meanwhile: the next write of every hash is whole again."""
        for text in SCRIPTS.values():
            await rconn.script_load(text)
        self._scripts_loaded_on = rconn
        await self.start_blobs()
        for properties in self.model.values():
            for prop in properties.values():
                prop.templates.clear()

    async def start_blobs(self) -> None:
        """Start the blob folder (left-overs removed, index read: :meth:`BlobFolder.start`), once; done
        on the first connection to Redis, or by the first BLOB if it comes before."""
        if self.blobs is None:
            return
        try:
            await asyncio.to_thread(self.blobs.start)
        except OSError as exc:
            log.error("blob folder %s cannot be read: %s", self.blobs.folder, exc)

    def blobs_enabled(self, device: str, name: str) -> bool:
        """Whether BLOB data may arrive on this connection for the property."""
        if (device, name) in self.blob_policy:
            return self.blob_policy[(device, name)]
        return self.blob_policy.get((device, ""), self.blobs is not None)

    def _blobs_attribute(self, device: str, name: str) -> str:
        """The ``blobs`` attribute of a BLOB property: ``Enabled`` or ``Disabled``."""
        return "Enabled" if self.blobs_enabled(device, name) else "Disabled"

    async def note_outgoing(self, rconn: Any, message: Message) -> None:
        """Record what a client sent that changes the store's view: an ``enableBLOB`` changes whether
        BLOB data may arrive, so the ``blobs`` attribute of the BLOB properties it names is rewritten
        (and logged) where it changed."""
        if message.tag != Tag.ENABLE_BLOB:
            return
        enabled = BlobInstruction.parse(message.attrs.get("instruction", "")).sends_blobs
        device, name = message.device, message.name
        if not name:
            for key in [k for k in self.blob_policy if k[0] == device]:
                del self.blob_policy[key]
        self.blob_policy[(device, name)] = enabled
        changed: list[PropertyModel] = []
        for prop_name, prop in self.model.get(device, {}).items():
            if prop.kind is VectorKind.BLOB and (not name or prop_name == name):
                value = self._blobs_attribute(device, prop_name)
                if prop.attrs.get("blobs") != value:
                    prop.attrs["blobs"] = value
                    prop.changed("")
                    changed.append(prop)
        if changed:

            async def fill(writes: Writes) -> None:
                for prop in changed:
                    self._write_property(writes, prop, ())

            # a batch begun before the change may write the attributes with the old value: after it
            await self._after_begun_batches()
            await self._send(rconn, await self._fill(rconn, fill))

    async def clear(self, rconn: Any) -> None:
        """Remove every definition key under the prefix and forget the model (logs, last messages and
        getProperties records stay).

        Every key, not only those this store wrote: keys left by an earlier run (a bridge restarted,
        a device that lost a property meanwhile) would otherwise merge with the fresh definitions.
        """
        found: list[Any] = []
        for pattern in self.keys.patterns(DEFINITION_KEYS):
            found += [key async for key in rconn.scan_iter(match=pattern, count=1000)]
        pipe = rconn.pipeline(transaction=False)
        for start in range(0, len(found), 1000):
            pipe.delete(*found[start : start + 1000])
        await pipe.execute()
        self.model.clear()

    # ------------------------------------------------------------- dispatch
    async def _apply_one(self, writes: Writes, message: Message) -> None:
        problem = "" if self._known_names(message) else unsafe_name(message)
        if problem:
            where = journal_fields(device=message.device, prop=message.name)
            log.warning("skipped <%s> for the store: %s", message.tag, problem, extra=where)
            _keep_streamed(message, "its names cannot be keys")
            return
        action = message.action
        if action is Action.DEF:
            self._define(writes, message)
        elif action is Action.SET:
            await self._set(writes, message)
        elif message.tag == Tag.MESSAGE:
            self._message(
                writes, message.device, message.attrs.get("message", ""), message.attrs.get("timestamp")
            )
        elif message.tag == Tag.DEL_PROPERTY:
            self._del_property(writes, message)
        else:
            pass  # new*Vector, getProperties, enableBLOB, pings: published only
        published = message_xml(message, strip_blob_data=True) if message.is_blob else message.raw
        writes.publish(published or message_xml(message))

    def _known_names(self, message: Message) -> bool:
        """Whether a set*Vector names a defined property and only its elements (names checked when
        it was defined)."""
        if message.action is not Action.SET:
            return False
        prop = self.model.get(message.device, {}).get(message.name)
        return prop is not None and all(member.name in prop.elements for member in message.members)

    # ------------------------------------------------------------ history
    def _log(self, writes: Writes, key: str, data: Any, length_key: str) -> None:
        writes.log(quote(self.keys.log(key)), to_json(data), self.log_lengths[length_key])

    def _log_devices(self, writes: Writes) -> None:
        self._log(writes, self.keys.devices(), sorted(self.model), "devices")

    def _log_properties(self, writes: Writes, device: str) -> None:
        self._log(writes, self.keys.properties(device), sorted(self.model.get(device, {})), "properties")

    # ------------------------------------------------------------- writers
    def _write_property(self, writes: Writes, prop: PropertyModel, elements: Iterable[str]) -> None:
        """Write the property's attributes and the given elements' hashes, logging changes."""
        prop.write_hash(writes, "", self.log_lengths["attributes"])
        length = self.log_lengths[prop.vector.lower()]
        for element in elements:
            prop.write_hash(writes, element, length)

    def _property_attrs(self, message: Message, kind: VectorKind) -> dict[str, str]:
        """The attributes hash of a defined property, INDI's defaults filled in."""
        device, name, a = message.device, message.name, message.attrs
        attrs = {
            "device": device,
            "name": name,
            "label": a.get("label") or name,
            "group": a.get("group", ""),
            "timestamp": a.get("timestamp") or indi_timestamp(),
            "vector": kind.vector,
        }
        defaults = definition_defaults(kind)
        attrs.update((key, a.get(key, default)) for key, default in defaults.items())
        if not kind.writable:
            attrs["perm"] = defaults["perm"]  # lights are read-only whatever they say
        if kind is VectorKind.BLOB:
            attrs["blobs"] = self._blobs_attribute(device, name)
        if a.get("message"):
            attrs["message"] = a["message"]
        return attrs

    @staticmethod
    def _element_attrs(kind: VectorKind, member: Member, previous: dict[str, str]) -> dict[str, str]:
        """The attributes hash of a defined element (a BLOB keeps what it last received)."""
        element = {"name": member.name, "label": member.attrs.get("label") or member.name}
        if kind is VectorKind.NUMBER:
            element["format"] = member.attrs.get("format", DEFAULT_NUMBER_FORMAT)
            for key in NUMBER_FIELDS:
                element[key] = member.attrs.get(key, "0")
            _number_value(element, member.text)
            _number_limits(element)
        elif kind is VectorKind.BLOB:
            for key in _BLOB_FIELDS:
                element[key] = previous.get(key, "")
        else:
            element["value"] = member.text
        return element

    def _model_keys(self, device: str, name: str, elements: Iterable[str]) -> dict[str, tuple[str, str]]:
        keys = self.keys
        pairs = {"": keys.attributes(name, device)}
        pairs.update((element, keys.elementattributes(element, name, device)) for element in elements)
        return {part: (quote(key), quote(keys.log(key))) for part, key in pairs.items()}

    def _define(self, writes: Writes, message: Message) -> None:
        device, name, keys, kind = message.device, message.name, self.keys, message.kind
        assert kind is not None  # a definition
        new_device = device not in self.model
        properties = self.model.setdefault(device, {})
        old = properties.get(name)
        prop = PropertyModel(kind, self._property_attrs(message, kind))
        for member in message.members:
            previous = old.elements.get(member.name, {}) if old else {}
            prop.elements[member.name] = self._element_attrs(kind, member, previous)
        prop.keys = self._model_keys(device, name, prop.elements)
        properties[name] = prop
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
        self._write_property(writes, prop, element_names)
        write_definition_order(
            writes.command, keys, device, name, element_names, self._next_definition_score()
        )
        self._log(writes, keys.elements(name, device), element_names, "elements")
        if new_device:
            self._log_devices(writes)
        if old is None:
            self._log_properties(writes, device)
        if message.attrs.get("message"):
            self._message(writes, device, message.attrs["message"], message.attrs.get("timestamp"))

    async def _set(self, writes: Writes, message: Message) -> None:
        device, name = message.device, message.name
        prop = self.model.get(device, {}).get(name)
        if prop is None or prop.kind is not message.kind:
            log.debug("ignoring %s for undefined property %s of %s", message.tag, name, device)
            _keep_streamed(message, "its property is not defined (yet)")
            return
        a = message.attrs
        for key in ("state", "timeout", "timestamp"):
            if a.get(key):
                prop.attrs[key] = a[key]
        if "timestamp" not in a:
            prop.attrs["timestamp"] = indi_timestamp()
        if a.get("message"):
            prop.attrs["message"] = a["message"]
        changed: list[str] = []
        for member in message.members:
            element = prop.elements.get(member.name)
            if element is None:
                log.debug("ignoring unknown element %s of %s.%s", member.name, device, name)
                _keep_streamed(message, "its element is not defined (yet)", member)
                continue
            if prop.kind is VectorKind.NUMBER:
                if len(member.attrs) > 1:  # new limits or format
                    for key in NUMBER_FIELDS + ("format",):
                        if member.attrs.get(key):
                            element[key] = member.attrs[key]
                    _number_limits(element)
                    prop.changed(member.name)
                _number_value(element, member.text)
            elif prop.kind is VectorKind.BLOB:
                if not await self._store_blob(device, name, element, member, prop.attrs["timestamp"]):
                    continue
            else:
                element["value"] = member.text
            changed.append(member.name)
        self._write_property(writes, prop, changed)
        if a.get("message"):
            self._message(writes, device, a["message"], a.get("timestamp"))

    async def _store_blob(
        self, device: str, name: str, element: dict[str, str], member: Member, stamp: str
    ) -> bool:
        """Note a BLOB the parser streamed to the folder, or write one that arrived whole."""
        label = f"{device}.{name}.{element['name']}"
        where = journal_fields(device=device, prop=name)
        fmt = member.attrs.get("format", "")
        streamed = member.blob
        if streamed is not None:
            if is_refusal(streamed.problem):  # counted, and logged once a minute, by the folder
                log.debug("BLOB %s not stored: %s", label, streamed.problem, extra=where)
                return False
            if streamed.problem:
                log.error("BLOB %s not stored: %s", label, streamed.problem, extra=where)
                return False
            path, size, stamp = streamed.path, streamed.size, streamed.stamp
        elif self.blobs is None:
            log.warning(
                "BLOB %s received but no blob folder is configured; data discarded", label, extra=where
            )
            return False
        else:
            try:
                written, size = await asyncio.to_thread(
                    self.blobs.write,
                    device,
                    name,
                    element["name"],
                    stamp,
                    fmt,
                    member.text,
                    member.attrs.get("size", ""),
                )
            except (BlobError, OSError) as exc:
                level = logging.DEBUG if is_refusal(str(exc)) else logging.ERROR
                log.log(level, "BLOB %s not stored: %s", label, exc, extra=where)
                return False
            path = str(written)
        element.update(format=fmt, size=str(size), filepath=path, timestamp=stamp)
        if self.blobs is not None:
            self.blobs.pin(device, name, element["name"], path)
        return True

    def _message(self, writes: Writes, device: str, text: str, timestamp: str | None) -> None:
        stamp = timestamp or indi_timestamp()
        key = self.keys.devicemessages(device) if device else self.keys.messages()
        writes.command("SET", key, f"{stamp} {text}")
        self._log(writes, key, [stamp, text], "messages")

    def _delete_property(self, writes: Writes, device: str, name: str) -> None:
        keys = self.keys
        prop = self.model.get(device, {}).pop(name, None)
        elements = list(prop.elements) if prop else []
        stale = [keys.attributes(name, device), keys.elements(name, device)]
        writes.command("DEL", *stale, *(keys.elementattributes(e, name, device) for e in elements))
        writes.command("SREM", keys.properties(device), name)
        writes.command("ZREM", keys.propertyorder(device), name)
        writes.command("DEL", keys.elementorder(name, device))

    def _delete_device(self, writes: Writes, device: str) -> None:
        for name in list(self.model.get(device, {})):
            self._delete_property(writes, device, name)
        writes.command("DEL", self.keys.properties(device), self.keys.propertyorder(device))
        writes.command("SREM", self.keys.devices(), device)
        self.model.pop(device, None)

    def _del_property(self, writes: Writes, message: Message) -> None:
        device, name = message.device, message.name
        if name:
            self._delete_property(writes, device, name)
            self._log_properties(writes, device)
            text = message.attrs.get("message") or f"Property {name} deleted from device {device}"
        else:
            self._delete_device(writes, device)
            self._log_devices(writes)
            text = message.attrs.get("message") or f"Device {device} deleted"
        self._message(writes, device, text, message.attrs.get("timestamp"))


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
