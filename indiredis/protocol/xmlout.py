"""Building INDI XML: generic serialisation, re-serialisation of a message, and timestamps.

Messages a bridge originates are built by :class:`~indiredis.protocol.messages.Message`'s
constructors, which render their ``raw`` bytes with :func:`element_xml`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from .vocabulary import BlobInstruction

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
