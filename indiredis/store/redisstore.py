"""The Redis store: applies INDI messages to the key space of ``docs/redis-keys.md``.

:class:`RedisStore` keeps a small in-memory model of the property definitions
(formats are needed to render numbers; complete hashes are rewritten on every
update so that a Redis which came back empty is rebuilt by the next message)
and turns each batch of messages into one pipelined round trip: current-state
writes, history-list pushes (a tiny Lua script pushes only when the data
differs from the newest entry) and the ``from_indi`` publication, in that order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.exceptions

from ..errors import BlobError
from ..events import journal_fields
from ..hosts import RedisServer
from ..protocol.messages import Message
from ..protocol.numbers import format_number, number_to_float
from ..protocol.vocabulary import Action, BlobInstruction, Tag
from ..protocol.xmlout import indi_timestamp, message_xml
from .blobs import BlobFolder
from .keys import DEFINITION_KEYS, KeySpace, merged_log_lengths

log = logging.getLogger(__name__)

# Push "<time> <json>" onto a history list unless the newest entry holds the same JSON.
LOG_IF_CHANGED = """
local newest = redis.call('LINDEX', KEYS[1], 0)
if newest then
  local space = string.find(newest, ' ', 1, true)
  if space and string.sub(newest, space + 1) == ARGV[2] then return 0 end
end
redis.call('LPUSH', KEYS[1], ARGV[1] .. ' ' .. ARGV[2])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
return 1
"""

# Write several hashes from JSON objects and log each one that changed, in one call:
# KEYS = hash1, log1, hash2, log2 ...; ARGV = receive time, then json1, length1, json2, length2 ...
WRITE_HASHES = """
local stamp = ARGV[1]
for i = 1, #KEYS, 2 do
  local payload = ARGV[i + 1]
  local fields = cjson.decode(payload)
  local flat = {}
  for field, value in pairs(fields) do
    flat[#flat + 1] = field
    flat[#flat + 1] = value
  end
  if #flat > 0 then redis.call('HSET', KEYS[i], unpack(flat)) end
  local newest = redis.call('LINDEX', KEYS[i + 1], 0)
  local same = false
  if newest then
    local space = string.find(newest, ' ', 1, true)
    same = space and string.sub(newest, space + 1) == payload
  end
  if not same then
    redis.call('LPUSH', KEYS[i + 1], stamp .. ' ' .. payload)
    redis.call('LTRIM', KEYS[i + 1], 0, tonumber(ARGV[i + 2]) - 1)
  end
end
return 1
"""

SCRIPTS = {"log": LOG_IF_CHANGED, "hashes": WRITE_HASHES}
SCRIPT_SHAS = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in SCRIPTS.items()}


def _json(data: Any) -> str:
    return json.dumps(data, sort_keys=isinstance(data, dict), separators=(", ", ": "))


_NUMBER_FIELDS = ("min", "max", "step")


def receive_time() -> str:
    """The receive time written in history entries (ISO 8601, UTC)."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(sep="T", timespec="microseconds")


@dataclass
class PropertyModel:
    """What the store knows of one property: attributes and element attributes."""

    vector: str
    attrs: dict[str, str]
    elements: dict[str, dict[str, str]] = field(default_factory=dict)


def _number_attrs(attrs: dict[str, str], raw_value: str) -> None:
    """Fill value, formatted_number and the float_ fields of a number element."""
    attrs["value"] = raw_value
    fmt = attrs.get("format", "%g")
    try:
        attrs["float_number"] = repr(number_to_float(raw_value))
        attrs["formatted_number"] = format_number(raw_value, fmt)
    except ValueError:
        attrs["float_number"] = ""
        attrs["formatted_number"] = raw_value
    for name in _NUMBER_FIELDS:
        try:
            attrs["float_" + name] = repr(number_to_float(attrs.get(name, "0")))
        except ValueError:
            attrs["float_" + name] = ""


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
    pipe: Any, keys: KeySpace, device: str, name: str, element_names: Sequence[str] | None, score: float
) -> None:
    """Keep the driver's order beside the original's keys: the property joins the device's
    ``propertyorder`` sorted set at ``score`` unless already there (its first definition counts), and
    its ``elementorder`` list is rewritten; ``element_names`` None forgets the property instead."""
    if element_names is None:
        pipe.zrem(keys.propertyorder(device), name)
        pipe.delete(keys.elementorder(name, device))
        return
    pipe.zadd(keys.propertyorder(device), {name: score}, nx=True)
    pipe.delete(keys.elementorder(name, device))
    if element_names:
        pipe.rpush(keys.elementorder(name, device), *element_names)


class RedisStore:
    """Applies INDI messages to Redis; see the module docstring."""

    def __init__(
        self,
        redisserver: RedisServer,
        log_lengths: dict[str, int] | None = None,
        blob_folder: str | None = None,
    ) -> None:
        self.server = redisserver
        self.keys = KeySpace(redisserver.keyprefix)
        self.log_lengths = merged_log_lengths(log_lengths)
        self.blobs = BlobFolder(blob_folder) if blob_folder else None
        self.model: dict[str, dict[str, PropertyModel]] = {}
        #: (device, property) -> True/False from enableBLOB instructions; (device, "") for a whole device
        self.blob_policy: dict[tuple[str, str], bool] = {}
        self._scripts_loaded_on: Any = None
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

        async def fill(pipe: Any) -> None:
            for message in messages:
                await self._apply_one(pipe, message)

        await self._execute(rconn, fill)

    async def _execute(self, rconn: Any, fill: Callable[[Any], Awaitable[None]]) -> None:
        """Run the commands ``fill`` puts in a pipeline, in one round trip (loading the scripts first
        if this connection has not got them, and again if Redis flushed them meanwhile)."""
        if self._scripts_loaded_on is not rconn:
            await self.load_scripts(rconn)
        pipe = rconn.pipeline(transaction=False)
        await fill(pipe)
        commands = list(pipe.command_stack)
        results = await pipe.execute(raise_on_error=False)
        failed = [
            command
            for command, result in zip(commands, results, strict=False)
            if isinstance(result, Exception)
        ]
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
        """Load the store's Lua scripts into Redis (done once per connection)."""
        for text in SCRIPTS.values():
            await rconn.script_load(text)
        self._scripts_loaded_on = rconn

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
        changed: list[tuple[str, PropertyModel]] = []
        for prop_name, prop in self.model.get(device, {}).items():
            if prop.vector == "BLOBVector" and (not name or prop_name == name):
                value = self._blobs_attribute(device, prop_name)
                if prop.attrs.get("blobs") != value:
                    prop.attrs["blobs"] = value
                    changed.append((prop_name, prop))
        if changed:

            async def fill(pipe: Any) -> None:
                for prop_name, prop in changed:
                    self._write_property(pipe, device, prop_name, prop, ())

            await self._execute(rconn, fill)

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
    async def _apply_one(self, pipe: Any, message: Message) -> None:
        problem = unsafe_name(message)
        if problem:
            where = journal_fields(device=message.device, prop=message.name)
            log.warning("skipped <%s> for the store: %s", message.tag, problem, extra=where)
            return
        action = message.action
        if action is Action.DEF:
            self._define(pipe, message)
        elif action is Action.SET:
            await self._set(pipe, message)
        elif message.tag == Tag.MESSAGE:
            self._message(
                pipe, message.device, message.attrs.get("message", ""), message.attrs.get("timestamp")
            )
        elif message.tag == Tag.DEL_PROPERTY:
            self._del_property(pipe, message)
        else:
            pass  # new*Vector, getProperties, enableBLOB, pings: published only
        published = message_xml(message, strip_blob_data=True) if message.is_blob else message.raw
        pipe.publish(self.server.from_indi_channel, published or message_xml(message))

    # ------------------------------------------------------------ history
    def _log(self, pipe: Any, key: str, data: Any, length_key: str) -> None:
        pipe.evalsha(
            SCRIPT_SHAS["log"],
            1,
            self.keys.log(key),
            receive_time(),
            _json(data),
            self.log_lengths[length_key],
        )

    def _log_devices(self, pipe: Any) -> None:
        self._log(pipe, self.keys.devices(), sorted(self.model), "devices")

    def _log_properties(self, pipe: Any, device: str) -> None:
        self._log(pipe, self.keys.properties(device), sorted(self.model.get(device, {})), "properties")

    # ------------------------------------------------------------- writers
    def _write_property(
        self, pipe: Any, device: str, name: str, prop: PropertyModel, elements: Iterable[str]
    ) -> None:
        """Write the property's attributes and the given elements' hashes, logging changes, in one call."""
        keys = self.keys
        attributes_key = keys.attributes(name, device)
        hash_keys = [attributes_key, keys.log(attributes_key)]
        args: list[Any] = [receive_time(), _json(prop.attrs), self.log_lengths["attributes"]]
        length = self.log_lengths[prop.vector.lower()]
        for element in elements:
            element_key = keys.elementattributes(element, name, device)
            hash_keys += [element_key, keys.log(element_key)]
            args += [_json(prop.elements[element]), length]
        pipe.evalsha(SCRIPT_SHAS["hashes"], len(hash_keys), *hash_keys, *args)

    def _define(self, pipe: Any, message: Message) -> None:
        device, name, vector = message.device, message.name, message.vector
        a = message.attrs
        attrs = {
            "device": device,
            "name": name,
            "label": a.get("label") or name,
            "group": a.get("group", ""),
            "state": a.get("state", "Idle"),
            "timestamp": a.get("timestamp") or indi_timestamp(),
            "vector": vector,
        }
        if vector != "LightVector":
            attrs["perm"] = a.get("perm", "ro")
            attrs["timeout"] = a.get("timeout", "0")
        else:
            attrs["perm"] = "ro"
        if vector == "SwitchVector":
            attrs["rule"] = a.get("rule", "AnyOfMany")
        if vector == "BLOBVector":
            attrs["blobs"] = self._blobs_attribute(device, name)
        if a.get("message"):
            attrs["message"] = a["message"]

        new_device = device not in self.model
        properties = self.model.setdefault(device, {})
        old = properties.get(name)
        new_property = old is None
        prop = PropertyModel(vector, attrs)
        for member in message.members:
            element = {"name": member.name, "label": member.attrs.get("label") or member.name}
            if vector == "NumberVector":
                element["format"] = member.attrs.get("format", "%g")
                for key in _NUMBER_FIELDS:
                    element[key] = member.attrs.get(key, "0")
                _number_attrs(element, member.text)
            elif vector == "BLOBVector":
                previous = old.elements.get(member.name, {}) if old else {}
                for key in ("format", "size", "filepath", "timestamp"):
                    element[key] = previous.get(key, "")
            else:
                element["value"] = member.text
            prop.elements[member.name] = element
        properties[name] = prop

        keys = self.keys
        if old is not None:
            # a redefinition replaces the property: drop fields and elements it no longer has
            pipe.delete(keys.attributes(name, device), keys.elements(name, device))
            for gone in set(old.elements) - set(prop.elements):
                pipe.delete(keys.elementattributes(gone, name, device))
            for kept in prop.elements:
                pipe.delete(keys.elementattributes(kept, name, device))
        element_names = list(prop.elements)
        pipe.sadd(keys.devices(), device)
        pipe.sadd(keys.properties(device), name)
        if element_names:
            pipe.sadd(keys.elements(name, device), *element_names)
        self._write_property(pipe, device, name, prop, element_names)
        write_definition_order(pipe, keys, device, name, element_names, self._next_definition_score())
        self._log(pipe, keys.elements(name, device), element_names, "elements")
        if new_device:
            self._log_devices(pipe)
        if new_property:
            self._log_properties(pipe, device)
        if a.get("message"):
            self._message(pipe, device, a["message"], a.get("timestamp"))

    async def _set(self, pipe: Any, message: Message) -> None:
        device, name = message.device, message.name
        prop = self.model.get(device, {}).get(name)
        if prop is None or prop.vector != message.vector:
            log.debug("ignoring %s for undefined property %s of %s", message.tag, name, device)
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
                continue
            if prop.vector == "NumberVector":
                for key in _NUMBER_FIELDS + ("format",):
                    if member.attrs.get(key):
                        element[key] = member.attrs[key]
                _number_attrs(element, member.text)
            elif prop.vector == "BLOBVector":
                if not await self._store_blob(
                    device, name, element, member.attrs, member.text, prop.attrs["timestamp"]
                ):
                    continue
            else:
                element["value"] = member.text
            changed.append(member.name)
        self._write_property(pipe, device, name, prop, changed)
        if a.get("message"):
            self._message(pipe, device, a["message"], a.get("timestamp"))

    async def _store_blob(
        self, device: str, name: str, element: dict[str, str], attrs: Any, text: str, stamp: str
    ) -> bool:
        if self.blobs is None:
            log.warning(
                "BLOB %s.%s.%s received but no blob folder is configured; data discarded",
                device,
                name,
                element["name"],
                extra=journal_fields(device=device, prop=name),
            )
            return False
        fmt = attrs.get("format", "")
        try:
            path, size = await asyncio.to_thread(
                self.blobs.write, device, name, element["name"], stamp, fmt, text
            )
        except (BlobError, OSError) as exc:
            where = journal_fields(device=device, prop=name)
            log.error("BLOB %s.%s.%s not stored: %s", device, name, element["name"], exc, extra=where)
            return False
        declared = attrs.get("size", "")
        if declared and declared != str(size):
            log.warning(
                "BLOB %s.%s.%s declared size %s but decoded to %d bytes",
                device,
                name,
                element["name"],
                declared,
                size,
                extra=journal_fields(device=device, prop=name),
            )
        element.update(format=fmt, size=str(size), filepath=str(path), timestamp=stamp)
        return True

    def _message(self, pipe: Any, device: str, text: str, timestamp: str | None) -> None:
        stamp = timestamp or indi_timestamp()
        key = self.keys.devicemessages(device) if device else self.keys.messages()
        pipe.set(key, f"{stamp} {text}")
        self._log(pipe, key, [stamp, text], "messages")

    def _delete_property(self, pipe: Any, device: str, name: str) -> None:
        keys = self.keys
        prop = self.model.get(device, {}).pop(name, None)
        elements = list(prop.elements) if prop else []
        pipe.delete(keys.attributes(name, device), keys.elements(name, device))
        for element in elements:
            pipe.delete(keys.elementattributes(element, name, device))
        pipe.srem(keys.properties(device), name)
        write_definition_order(pipe, keys, device, name, None, 0.0)

    def _delete_device(self, pipe: Any, device: str) -> None:
        for name in list(self.model.get(device, {})):
            self._delete_property(pipe, device, name)
        pipe.delete(self.keys.properties(device), self.keys.propertyorder(device))
        pipe.srem(self.keys.devices(), device)
        self.model.pop(device, None)

    def _del_property(self, pipe: Any, message: Message) -> None:
        device, name = message.device, message.name
        if name:
            self._delete_property(pipe, device, name)
            self._log_properties(pipe, device)
            text = message.attrs.get("message") or f"Property {name} deleted from device {device}"
        else:
            self._delete_device(pipe, device)
            self._log_devices(pipe)
            text = message.attrs.get("message") or f"Device {device} deleted"
        self._message(pipe, device, text, message.attrs.get("timestamp"))
