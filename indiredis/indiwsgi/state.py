"""What the page shows of a device, as JSON for its live updates (values, states, messages, layout).

Each property carries a ``layout`` fingerprint of what its HTML block is made of
(kind, permission, rule, labels, limits, formats): the page keeps a block as it
is while the fingerprint stays, and fetches a fresh block when it changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from .snapshot import DeviceSummary, DeviceView, PropertyView

#: the notes the bridge writes itself in a device's message log (the driver's messages are the rest)
_BRIDGE_NOTE = re.compile(r"Property \S+ deleted from device .+|Device .+ deleted")


def message_kind(text: str) -> str:
    """ "bridge" for the notes the bridge writes itself ("Property X deleted from device Y"),
    "driver" for the rest."""
    return "bridge" if _BRIDGE_NOTE.fullmatch(text) else "driver"


#: element attributes that shape a property's HTML block (values do not)
LAYOUT_FIELDS = ("name", "label", "format", "min", "max", "step")


def blob_file(element: dict[str, str]) -> str:
    """The name, in the blob folder, of the newest file received for a BLOB element ('' before any)."""
    return element.get("filepath", "").replace("\\", "/").rsplit("/", 1)[-1]


def element_text(element: dict[str, str]) -> str:
    """What the page shows of an element's value (numbers as their format asks, BLOBs by file name)."""
    if "formatted_number" in element:
        return element["formatted_number"].strip()
    if "filepath" in element:
        return blob_file(element)
    return element.get("value", "")


def layout_of(view: PropertyView) -> str:
    """A short fingerprint of what the property's HTML block is made of."""
    fields = view.fields
    parts = [fields.get(key, "") for key in ("vector", "perm", "rule", "label", "group")]
    parts += [element.get(key, "") for element in view.elements for key in LAYOUT_FIELDS]
    return hashlib.sha1("\x00".join(parts).encode()).hexdigest()[:12]


#: the files of a BLOB element, newest first: (device, property, element) -> names
FilesOf = Callable[[str, str, str], list[str]]


def property_state(view: PropertyView, device: str = "", files_of: FilesOf | None = None) -> dict[str, Any]:
    """One property's live part: state, latest message, group, layout, element texts (and the files
    of BLOB elements when ``files_of`` is given)."""
    state = {
        "name": view.name,
        "group": view.group,
        "state": view.fields.get("state", "Idle"),
        "message": view.fields.get("message", ""),
        "timestamp": view.fields.get("timestamp", ""),
        "layout": layout_of(view),
        "elements": {e.get("name", ""): element_text(e) for e in view.elements},
    }
    if files_of is not None and view.fields.get("vector") == "BLOBVector":
        state["files"] = {
            e.get("name", ""): files_of(device, view.name, e.get("name", "")) for e in view.elements
        }
    return state


def device_state(view: DeviceView, files_of: FilesOf | None = None) -> dict[str, Any]:
    """{"device", "properties": {name: state}, "order": [names in the driver's order], "message",
    "messages": [[timestamp, text, kind]...] newest first, kind "driver" or "bridge"}."""
    return {
        "device": view.device,
        "properties": {prop.name: property_state(prop, view.device, files_of) for prop in view.properties},
        "order": [prop.name for prop in view.properties],
        "message": view.message,
        "messages": [[stamp, text, message_kind(text)] for stamp, text in view.messages],
    }


def devices_state(devices: list[DeviceSummary], message: str) -> dict[str, Any]:
    """The device list: names with their connection, and the newest message that named no device."""
    return {
        "devices": [{"name": d.name, "connected": d.connected, "state": d.state} for d in devices],
        "message": message,
    }


def as_json(state: Any) -> tuple[bytes, str]:
    """The JSON body and its ETag (a hash of the body, so that every web process gives the same)."""
    body = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
    return body, '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
