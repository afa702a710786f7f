"""Turning a submitted property form into the INDI request, honouring the INDI rules."""

from __future__ import annotations

import gzip
from typing import Any

import redis

from .. import tools
from ..errors import SetError
from ..hosts import RedisServer
from ..protocol.numbers import number_to_float
from ..protocol.vocabulary import SwitchRule


def switch_values(rule: str, elements: list[str], chosen: list[str]) -> dict[str, str]:
    """On/Off for every element from the chosen ones, checked against the switch rule."""
    unknown = [c for c in chosen if c not in elements]
    if unknown:
        raise SetError(f"unknown switch {unknown[0]!r}")
    problem = SwitchRule.parse(rule).violation(len(chosen))
    if problem:
        raise SetError(problem)
    return {element: "On" if element in chosen else "Off" for element in elements}


def submit(
    rconn: redis.Redis,
    server: RedisServer,
    device: str,
    name: str,
    fields: dict[str, list[str]],
    files: dict[str, tuple[str, bytes]],
) -> str:
    """Publish the new*Vector for a submitted form; the XML sent, or SetError."""
    if name not in tools.properties(rconn, server, device):
        raise SetError("no such property")
    attrs = tools.attributes_dict(rconn, server, name, device)
    if attrs.get("perm") == "ro":
        raise SetError("read-only property")
    elements = tools.elements(rconn, server, name, device)
    vector = attrs.get("vector")
    sent: Any = None
    if vector == "SwitchVector":
        values = switch_values(attrs.get("rule", "AnyOfMany"), elements, fields.get("switch", []))
        sent = tools.newswitchvector(rconn, server, name, device, values)
    elif vector == "NumberVector":
        values = {e: fields[e][0].strip() for e in elements if e in fields and fields[e][0].strip()}
        for element, value in values.items():
            try:
                number_to_float(value)
            except ValueError:
                raise SetError(
                    f"{element}: {value!r} is not a number (decimal or sexagesimal like 12:30:15)"
                ) from None
        if not values:
            raise SetError("no value given")
        sent = tools.newnumbervector(rconn, server, name, device, values)
    elif vector == "TextVector":
        values = {e: fields[e][0] for e in elements if e in fields}
        if not values:
            raise SetError("no value given")
        sent = tools.newtextvector(rconn, server, name, device, values)
    elif vector == "BLOBVector":
        blobs = []
        compress = "gzip" in fields
        for element in elements:
            if element not in files or not files[element][1]:
                continue
            filename, data = files[element]
            suffix = "." + filename.rsplit(".", 1)[1] if "." in filename else ".bin"
            size = len(data)  # INDI: the size is the uncompressed size, whatever the format
            if compress:
                data, suffix = gzip.compress(data), suffix + ".gz"
            blobs.append({"name": element, "size": size, "format": suffix, "value": data})
        if not blobs:
            raise SetError("no file given")
        sent = tools.newblobvector(rconn, server, name, device, blobs)
    else:
        raise SetError("this property cannot be set")
    if not sent:
        raise SetError("the request could not be sent")
    return str(sent)
