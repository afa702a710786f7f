"""Building INDI XML: generic serialisation, re-serialisation of a message, and timestamps.

Messages a bridge originates are built by :class:`~indiredis.protocol.messages.Message`'s
constructors, which render their ``raw`` bytes with :func:`element_xml`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .vocabulary import BlobInstruction, Tag

if TYPE_CHECKING:  # messages imports this module, to render what its constructors build
    from .messages import Message

INDI_VERSION = "1.7"
BLOB_INSTRUCTIONS = tuple(str(instruction) for instruction in BlobInstruction)


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


def message_xml(message: Message, *, strip_blob_data: bool = False) -> bytes:
    """Re-serialise a message; with ``strip_blob_data`` BLOB payloads are left out."""
    members = (
        (m.tag, m.attrs, "" if (strip_blob_data and message.is_blob) else m.text) for m in message.members
    )
    is_enable_blob = message.tag == Tag.ENABLE_BLOB
    text = message.attrs.get("instruction", "") if is_enable_blob else ""
    attrs = {k: v for k, v in message.attrs.items() if not (is_enable_blob and k == "instruction")}
    return element_xml(message.tag, attrs, members, text)
