"""What the key-space model knows of one property, and the rules for the names and numbers it stores.

No I/O here: :class:`PropertyModel` renders its hashes into a :class:`~.writes.Writes`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..protocol.messages import Message
from ..protocol.numbers import number_formatter, number_to_float, usual_sexagesimal
from ..protocol.vocabulary import DEFAULT_NUMBER_FORMAT, NUMBER_FIELDS, VectorKind
from .keys import KeySpace
from .writes import JsonTemplate, Writes, as_is, flat_fields, to_json

# the fields a set*Vector changes, rendered on every write (the others are kept in JSON templates)
_DYNAMIC_ATTRS = frozenset({"state", "timestamp", "timeout", "message"})
_DYNAMIC_NUMBER = frozenset({"value", "float_number", "formatted_number"})
_DYNAMIC_VALUE = frozenset({"value"})

MAX_NAME_LENGTH = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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

    def write_hashes(self, writes: Writes, parts: Iterable[str], length: int) -> None:
        """:meth:`write_hash` of each element in ``parts`` (their history lists are ``length`` long), the
        usual case (a template's item, no value to escape) done in the loop: the hot path of a
        ``set*Vector``."""
        templates, elements = self.templates, self.elements
        blob = self.kind is VectorKind.BLOB
        items: list[str] = []  # made in one step each, added together (in order, before the others)
        for part in parts:
            template = templates.get(part)
            if template is not None and not blob:
                data = elements[part]
                if template.size == len(data):
                    values = template.values(data)  # JsonTemplate.item, inline: the hottest loop
                    if as_is("".join(values)) is not None:
                        items.append(template.item_format % (values + values))
                        continue
            writes.extend(items)
            items = []
            self.write_hash(writes, part, length)
        writes.extend(items)

    def changed(self, part: str) -> None:
        """A fixed value of a hash changed: render it again, and write it whole."""
        self.templates.pop(part, None)


def number_limits(attrs: dict[str, str]) -> None:
    """Fill the ``float_`` fields of min, max and step (done when they change, not on every value)."""
    for name in NUMBER_FIELDS:
        try:
            attrs["float_" + name] = repr(number_to_float(attrs.get(name, "0")))
        except ValueError:
            attrs["float_" + name] = ""


def number_value(attrs: dict[str, str], raw_value: str) -> None:
    """Fill value, formatted_number and float_number of a number element."""
    attrs["value"] = raw_value
    usual = usual_sexagesimal(raw_value)
    if usual is not None:  # number_to_float's reading of the usual form, without a call (hot path)
        sign, degrees, minutes, seconds = usual.groups()
        number = float(degrees) + float(minutes) / 60.0
        if seconds is not None:
            number += float(seconds) / 3600.0
        if sign:
            number = -number
    else:
        try:
            number = number_to_float(raw_value)
        except ValueError:
            attrs["float_number"] = ""
            attrs["formatted_number"] = raw_value
            return
    attrs["float_number"] = repr(number)
    attrs["formatted_number"] = number_formatter(attrs.get("format", DEFAULT_NUMBER_FORMAT))(number)


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
    ``keyspace._remove_property``)."""
    command("ZADD", keys.propertyorder(device), "NX", score, name)
    command("DEL", keys.elementorder(name, device))
    if element_names:
        command("RPUSH", keys.elementorder(name, device), *element_names)
