"""Building INDI XML: client requests, generic re-serialisation and timestamps."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from .messages import Message

INDI_VERSION = "1.7"
BLOB_INSTRUCTIONS = ("Never", "Also", "Only")


def indi_timestamp(moment: datetime | None = None) -> str:
    """An INDI timestamp (UTC, ``YYYY-MM-DDTHH:MM:SS.ffffff``, no zone suffix)."""
    moment = moment or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(sep="T", timespec="microseconds")


def element_xml(
    tag: str,
    attrs: Mapping[str, str],
    members: Iterable[tuple[str, Mapping[str, str], str]] = (),
    text: str = "",
) -> bytes:
    """Serialise one top-level element with its members as UTF-8 bytes."""
    root = ET.Element(tag, {k: str(v) for k, v in attrs.items()})
    if text:
        root.text = text
    for member_tag, member_attrs, member_text in members:
        child = ET.SubElement(root, member_tag, {k: str(v) for k, v in member_attrs.items()})
        child.text = member_text
    return ET.tostring(root, encoding="unicode").encode("utf-8")


def message_xml(message: Message, strip_blob_data: bool = False) -> bytes:
    """Re-serialise a message; with ``strip_blob_data`` BLOB payloads are left out."""
    members = (
        (m.tag, m.attrs, "" if (strip_blob_data and message.is_blob) else m.text) for m in message.members
    )
    text = message.attrs.get("instruction", "") if message.tag == "enableBLOB" else ""
    attrs = {
        k: v for k, v in message.attrs.items() if not (message.tag == "enableBLOB" and k == "instruction")
    }
    return element_xml(message.tag, attrs, members, text)


def getproperties_xml(device: str = "", name: str = "") -> bytes:
    """A getProperties request for everything, one device, or one property."""
    attrs = {"version": INDI_VERSION}
    if device:
        attrs["device"] = device
        if name:
            attrs["name"] = name
    return element_xml("getProperties", attrs)


def enableblob_xml(device: str, name: str, instruction: str) -> bytes:
    """An enableBLOB instruction (Never/Also/Only) for a device or one property."""
    if instruction not in BLOB_INSTRUCTIONS:
        raise ValueError(f"instruction must be one of {BLOB_INSTRUCTIONS}")
    attrs = {"device": device}
    if name:
        attrs["name"] = name
    return element_xml("enableBLOB", attrs, text=instruction)


def new_vector_xml(kind: str, device: str, name: str, values: Mapping[str, str], timestamp: str) -> bytes:
    """A new{Text,Number,Switch}Vector with one member per ``values`` item."""
    members = ((f"one{kind}", {"name": element}, str(value)) for element, value in values.items())
    return element_xml(f"new{kind}Vector", {"device": device, "name": name, "timestamp": timestamp}, members)


def new_blob_vector_xml(
    device: str, name: str, blobs: Iterable[tuple[str, int, str, bytes]], timestamp: str
) -> bytes:
    """A newBLOBVector; ``blobs`` holds (element, size, format, data) with raw bytes."""
    members = (
        (
            "oneBLOB",
            {"name": element, "size": str(size), "format": fmt},
            base64.b64encode(data).decode("ascii"),
        )
        for element, size, fmt, data in blobs
    )
    return element_xml("newBLOBVector", {"device": device, "name": name, "timestamp": timestamp}, members)
