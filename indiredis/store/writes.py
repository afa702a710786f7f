"""The store's writes of one batch, gathered so that Redis gets one script call per run of them.

Hash writes (HSET of a hash's fields plus its history entry when the data changed), history entries
and ``from_indi`` publications make up nearly all of the traffic.  :class:`Writes` gathers them
into a JSON array that one Lua script applies in order (``WRITE_BATCH``), instead of one script
call per property and one PUBLISH per message: redis-py then packs a handful of arguments per
batch, not thirty per message.  Any other command (SADD, DEL, SET ...) comes as it comes, after the
writes gathered before it, so order is kept.  :class:`Writes` only makes the list of operations
(:data:`Op`: a :class:`Command` or a :class:`WriteBatch`); :func:`to_commands` makes them Redis
commands, which the store sends (:mod:`.sender`).
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..protocol.xmlout import indi_timestamp

# ARGV[1] = receive time, ARGV[2] = channel, ARGV[3] = a JSON array of writes, applied in order:
#   [hash, log, json, length, [field, value, ...]]: HSET the fields, push the hash's JSON on the log if
#   changed;
#   [log, json, length]: push it on the log if changed;  [data]: PUBLISH data on the channel.
# A history entry is "<time> <json>", pushed only when the newest entry holds other JSON, and the
# list trimmed to its length.
WRITE_BATCH = """
local stamp = ARGV[1]
local function log_if_changed(key, payload, length)
  local newest = redis.call('LINDEX', key, 0)
  if newest then
    local space = string.find(newest, ' ', 1, true)
    if space and string.sub(newest, space + 1) == payload then return end
  end
  redis.call('LPUSH', key, stamp .. ' ' .. payload)
  redis.call('LTRIM', key, 0, length - 1)
end
for _, w in ipairs(cjson.decode(ARGV[3])) do
  if #w == 5 then
    if #w[5] > 0 then redis.call('HSET', w[1], unpack(w[5])) end
    log_if_changed(w[2], w[3], w[4])
  elseif #w == 3 then
    log_if_changed(w[1], w[2], w[3])
  else
    redis.call('PUBLISH', ARGV[2], w[1])
  end
end
return 1
"""

SCRIPTS = {"batch": WRITE_BATCH}
SCRIPT_SHAS = {name: hashlib.sha1(text.encode()).hexdigest() for name, text in SCRIPTS.items()}

#: writes gathered before a script call is cut (a script blocks Redis while it runs)
MAX_WRITES_PER_CALL = 2000

# the JSON of history entries: sorted keys, ", " and ": " separators, ASCII (as json.dumps gives)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(", ", ": "))
_LIST_ENCODER = json.JSONEncoder(separators=(", ", ": "))
# a string as a JSON string literal, UTF-8 left as it is (Lua's cjson passes it through)
quote = json.encoder.encode_basestring


_ascii = json.encoder.encode_basestring_ascii


def to_json(data: Any) -> str:
    """The JSON of a history entry (objects with sorted keys)."""
    return (_ENCODER if isinstance(data, dict) else _LIST_ENCODER).encode(data)


#: text that JSON writes as it is, in a string and in a string holding JSON: printable ASCII but '"'
#: and '\\' (numbers, timestamps, states: nearly every value a set*Vector changes)
_AS_IS = re.compile(r"[ !#-\[\]-~]*\Z")
#: whether a text is written as it is (a match) or needs escaping (None)
as_is = _AS_IS.match


def _printf_literal(text: str) -> str:
    return text.replace("%", "%%")


class JsonTemplate:
    """The JSON of a flat object of strings (exactly as :func:`to_json` writes it) with its fixed
    fields rendered once: only the ``dynamic`` fields are encoded for each write.  Built for one
    hash (``key`` and ``log_key`` given as JSON string literals, and the length of its history)
    with one set of keys and fixed values; its owner builds a new one whenever it writes the hash
    whole (a key added, a fixed value changed, a new Redis connection).
    """

    __slots__ = ("keys", "size", "json_format", "fields_format", "item_format", "values")

    def __init__(
        self, data: dict[str, str], dynamic: frozenset[str], key: str, log_key: str, length: int
    ) -> None:
        self.keys: list[str] = []
        self.size = len(data)
        pieces: list[str] = []  # the JSON, dynamic values as slots for their JSON literals
        quoted: list[str] = []  # the same as a JSON string's contents, slots for values as they are
        for name in sorted(data):
            if name in dynamic:
                self.keys.append(name)
                fixed = _ascii(name) + ": "
                pieces.append(_printf_literal(fixed) + "%s")
                quoted.append(_printf_literal(quote(fixed)[1:-1]) + '\\"%s\\"')
            else:
                fixed = _ascii(name) + ": " + _ascii(data[name])
                pieces.append(_printf_literal(fixed))
                quoted.append(_printf_literal(quote(fixed)[1:-1]))
        #: printf formats taking the dynamic fields' encoded values, in ``keys`` order
        self.json_format = "{" + ", ".join(pieces) + "}"
        self.fields_format = ",".join(_printf_literal(quote(name)) + ",%s" for name in self.keys)
        #: the whole write of :meth:`Writes.hash` (dynamic fields only), taking the values as they
        #: are twice: in the history entry's JSON, then as the fields
        plain_fields = ",".join(_printf_literal(quote(name)) + ',"%s"' for name in self.keys)
        json_literal = '"{' + ", ".join(quoted) + '}"'
        head = _printf_literal(f"[{key},{log_key},")
        self.item_format = f"{head}{json_literal},{length},[{plain_fields}]]"
        #: the dynamic fields' values of a hash, in ``keys`` order, as a tuple in one call
        self.values: Callable[[dict[str, str]], tuple[str, ...]] = _tuple_getter(self.keys)

    def render(self, data: dict[str, str]) -> tuple[str, str]:
        """The JSON of ``data``, and its dynamic fields as :meth:`Writes.hash` takes them."""
        values = [data[key] for key in self.keys]
        encoded = tuple(map(_ascii, values))
        fields = encoded if "".join(values).isascii() else tuple(map(quote, values))
        return self.json_format % encoded, self.fields_format % fields

    def item(self, data: dict[str, str]) -> str | None:
        """What :meth:`Writes.hash` makes of ``data``'s dynamic fields and JSON, in one step; None when
        a value needs escaping (then :meth:`render` it)."""
        values = self.values(data)
        if as_is("".join(values)) is None:
            return None
        return self.item_format % (values + values)


def _tuple_getter(keys: list[str]) -> Callable[[dict[str, str]], tuple[str, ...]]:
    """A function giving the values of ``keys`` in a dict, as a tuple (``itemgetter``'s, always a tuple)."""
    if len(keys) >= 2:
        return operator.itemgetter(*keys)
    if keys:
        only = keys[0]
        return lambda data: (data[only],)
    return lambda data: ()


def flat_fields(data: dict[str, str]) -> str:
    """Every field of a hash, as :meth:`Writes.hash` takes them."""
    return ",".join(f"{quote(name)},{quote(value)}" for name, value in data.items())


@dataclass(frozen=True, slots=True)
class Command:
    """One Redis command (``SADD``, ``DEL``, ``SET`` ...) with its arguments, as redis-py's
    ``execute_command`` takes them."""

    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class WriteBatch:
    """One call of the ``WRITE_BATCH`` script: the receive time, the channel and the JSON array of
    writes (see the script)."""

    stamp: str
    channel: str
    items: str


#: what the key-space model asks of Redis, in order
Op = Command | WriteBatch


class Writes:
    """The writes of one batch as a list of operations (see the module docstring): no connection in
    sight; the store's I/O half sends them as Redis commands (:func:`to_commands`).

    Keys are given as JSON string literals (``quote(key)``), which callers keep for keys they write
    often."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.ops: list[Op] = []
        self._items: list[str] = []

    def hash(self, key: str, log_key: str, payload: str, length: int, fields: str) -> None:
        """Write ``fields`` (JSON strings: name, value, name, value ...) of a hash whose whole content is
        the JSON object ``payload``, and push the object on its history if it changed.
        (:meth:`JsonTemplate.item` makes the same item in one step: the two keep one layout.)"""
        self.add(f"[{key},{log_key},{quote(payload)},{length},[{fields}]]")

    def history(self, log_key: str, payload: str, length: int) -> None:
        """Push JSON data on a history list if it differs from the newest entry."""
        self.add(f"[{log_key},{quote(payload)},{length}]")

    def publish(self, data: bytes) -> None:
        """Publish ``data`` on the channel, after the writes before it."""
        try:
            self.add(f"[{quote(data.decode('utf-8'))}]")
        except UnicodeDecodeError:  # cannot travel as JSON text: published on its own
            self.command("PUBLISH", self.channel, data)

    def command(self, *args: Any) -> None:
        """Any other command, after the writes gathered so far."""
        self.flush()
        self.ops.append(Command(args))

    def flush(self) -> None:
        """Close the gathered writes into one script call."""
        if self._items:
            batch = "[" + ",".join(self._items) + "]"
            self._items = []
            self.ops.append(WriteBatch(indi_timestamp(), self.channel, batch))

    def take(self) -> list[Op]:
        """Every operation gathered so far, in order (the writes gathered closed into a script call);
        the list starts again empty."""
        self.flush()
        ops, self.ops = self.ops, []
        return ops

    def extend(self, items: list[str]) -> None:
        """:meth:`add` each of ``items`` in turn (in one step while no script call is cut)."""
        if len(self._items) + len(items) < MAX_WRITES_PER_CALL:
            self._items.extend(items)
        else:
            for item in items:
                self.add(item)

    def add(self, item: str) -> None:
        """Add a write item made already (by :meth:`JsonTemplate.item`), after the writes before it."""
        items = self._items
        items.append(item)
        if len(items) >= MAX_WRITES_PER_CALL:
            self.flush()


def to_commands(ops: list[Op]) -> list[tuple[Any, ...]]:
    """``ops`` as Redis commands (each the arguments of one), in order."""
    commands: list[tuple[Any, ...]] = []
    for op in ops:
        match op:
            case WriteBatch(stamp=stamp, channel=channel, items=items):
                commands.append(("EVALSHA", SCRIPT_SHAS["batch"], 0, stamp, channel, items))
            case Command(args=args):
                commands.append(args)
    return commands
