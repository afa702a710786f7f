"""A device's current state as JSON, for the page's live updates."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .snapshot import DeviceView


def blob_file(element: dict[str, str]) -> str:
    """The name, in the blob folder, of the newest file received for a BLOB element ('' before any)."""
    return element.get("filepath", "").replace("\\", "/").rsplit("/", 1)[-1]


def element_text(element: dict[str, str]) -> str:
    """What the page shows for an element's value (numbers formatted as their format asks, BLOBs by file
    name)."""
    if "formatted_number" in element:
        return element["formatted_number"].strip()
    if "filepath" in element:
        return blob_file(element)
    return element.get("value", "")


def device_state(view: DeviceView) -> dict[str, Any]:
    """{"properties": {name: {"state", "elements": {element: text}}}, "message": text}."""
    properties = {
        prop.name: {
            "state": prop.attrs.get("state", "Idle"),
            "elements": {e.get("name", ""): element_text(e) for e in prop.elements},
        }
        for prop in view.properties
    }
    return {"properties": properties, "message": view.message}


def as_json(state: dict[str, Any]) -> tuple[bytes, str]:
    """The JSON body and its ETag."""
    body = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
    return body, '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
