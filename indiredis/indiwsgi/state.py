"""A device's current state as JSON, for the page's live updates."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis

from .. import tools
from ..hosts import RedisServer


def element_text(element: dict[str, str]) -> str:
    """What the page shows for an element's value (numbers formatted as their format asks)."""
    if "formatted_number" in element:
        return element["formatted_number"].strip()
    return element.get("value", "")


def device_state(rconn: redis.Redis, server: RedisServer, device: str) -> dict[str, Any]:
    """{"properties": {name: {"state", "elements": {element: text}}}, "message": text}."""
    properties: dict[str, Any] = {}
    for name in tools.properties(rconn, server, device):
        attrs = tools.attributes_dict(rconn, server, name, device)
        elements = {e.get("name", ""): element_text(e)
                    for e in tools.property_elements(rconn, server, name, device)}
        properties[name] = {"state": attrs.get("state", "Idle"), "elements": elements}
    return {"properties": properties, "message": tools.last_message(rconn, server, device) or ""}


def as_json(state: dict[str, Any]) -> tuple[bytes, str]:
    """The JSON body and its ETag."""
    body = json.dumps(state, sort_keys=True, separators=(",", ":")).encode()
    return body, '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
