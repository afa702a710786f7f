"""Turning a submitted property form into the INDI request, honouring the INDI rules.

Requests are always complete, as KStars and indiserver clients send them: a
text or number vector carries every member, those the user left alone at their
current values (a field left empty, or still showing the current value, counts
as unchanged, and then the raw value is sent, not its rounded display).  A
switch is pressed with one click (``press=<element>``) and the rule says what
the other members become; ``switch=<element>`` lists (the On members) are
accepted too.
"""

from __future__ import annotations

import gzip
from typing import Any

import redis

from .. import tools
from ..errors import SetError
from ..hosts import RedisServer
from ..protocol.numbers import number_to_float
from ..protocol.vocabulary import SwitchRule, SwitchState
from .snapshot import PropertyView, read_property
from .state import element_text

Fields = dict[str, list[str]]
Files = dict[str, tuple[str, bytes]]


def _first(fields: Fields, name: str) -> str | None:
    values = fields.get(name)
    return values[0] if values else None


def switch_values(rule: str, current: dict[str, str], fields: Fields) -> dict[str, str]:
    """On/Off for every member: one ``press`` (a click on a switch button) or the ``switch`` list of
    the members to turn On, checked against the switch rule."""
    on, off = SwitchState.ON.value, SwitchState.OFF.value
    switch_rule = SwitchRule.parse(rule)
    pressed = fields.get("press", [])
    if pressed:
        element = pressed[0]
        if element not in current:
            raise SetError(f"unknown switch {element!r}")
        if switch_rule is SwitchRule.ANY_OF_MANY:  # a toggle; the others stay as they are
            return {**current, element: off if current[element] == on else on}
        if switch_rule is SwitchRule.AT_MOST_ONE and current[element] == on:  # pressing the On one: none
            return {name: off for name in current}
        return {name: on if name == element else off for name in current}
    chosen = fields.get("switch", [])
    unknown = [c for c in chosen if c not in current]
    if unknown:
        raise SetError(f"unknown switch {unknown[0]!r}")
    problem = switch_rule.violation(len(chosen))
    if problem:
        raise SetError(problem)
    return {name: on if name in chosen else off for name in current}


def number_values(view: PropertyView, fields: Fields) -> dict[str, str]:
    """Every member's value: typed ones checked (decimal or sexagesimal, within min/max), the others at
    their current raw value."""
    values: dict[str, str] = {}
    for element in view.elements:
        name = element.get("name", "")
        typed = (_first(fields, name) or "").strip()
        if not typed or typed == element_text(element):
            values[name] = element.get("value", "")
            continue
        try:
            number = number_to_float(typed)
        except ValueError:
            raise SetError(
                f"{name}: {typed!r} is not a number (decimal or sexagesimal like 12:30:15)"
            ) from None
        low, high = element.get("float_min", ""), element.get("float_max", "")
        try:
            bounded = float(low) < float(high)
        except ValueError:
            bounded = False
        if bounded and not float(low) <= number <= float(high):
            raise SetError(f"{name}: {typed} is outside {element.get('min')} … {element.get('max')}")
        values[name] = typed
    return values


def text_values(view: PropertyView, fields: Fields) -> dict[str, str]:
    """Every member's value: the submitted ones, the others at their current value."""
    values = {}
    for element in view.elements:
        name = element.get("name", "")
        typed = _first(fields, name)
        values[name] = element.get("value", "") if typed is None else typed
    return values


def blob_values(view: PropertyView, fields: Fields, files: Files) -> list[dict[str, Any]]:
    """The uploaded files as INDI BLOBs (optionally gzip-compressed; the size is the uncompressed one)."""
    blobs = []
    for element in view.elements:
        name = element.get("name", "")
        if name not in files or not files[name][1]:
            continue
        filename, data = files[name]
        suffix = "." + filename.rsplit(".", 1)[1] if "." in filename else ".bin"
        size = len(data)  # INDI: the size is the uncompressed size, whatever the format
        if "gzip" in fields:
            data, suffix = gzip.compress(data), suffix + ".gz"
        blobs.append({"name": name, "size": size, "format": suffix, "value": data})
    if not blobs:
        raise SetError("no file given")
    return blobs


def settable_property(rconn: redis.Redis, server: RedisServer, device: str, name: str) -> PropertyView:
    """The property, or SetError when it is unknown or read-only."""
    view = read_property(rconn, server, device, name)
    if view is None:
        raise SetError("no such property")
    if view.fields.get("perm") == "ro" or view.fields.get("vector") == "LightVector":
        raise SetError("read-only property")
    return view


def submit(
    rconn: redis.Redis,
    server: RedisServer,
    device: str,
    name: str,
    fields: Fields,
    files: Files,
) -> str:
    """Publish the complete new*Vector for a submitted form; the XML sent, or SetError."""
    view = settable_property(rconn, server, device, name)
    vector = view.fields.get("vector")
    sent: Any = None
    if vector == "SwitchVector":
        current = {e.get("name", ""): e.get("value", "Off") for e in view.elements}
        values = switch_values(view.fields.get("rule", "AnyOfMany"), current, fields)
        sent = tools.newswitchvector(rconn, server, name, device, values)
    elif vector == "NumberVector":
        sent = tools.newnumbervector(rconn, server, name, device, number_values(view, fields))
    elif vector == "TextVector":
        sent = tools.newtextvector(rconn, server, name, device, text_values(view, fields))
    elif vector == "BLOBVector":
        sent = tools.newblobvector(rconn, server, name, device, blob_values(view, fields, files))
    else:
        raise SetError("this property cannot be set")
    if not sent:
        raise SetError("the request could not be sent")
    return str(sent)
