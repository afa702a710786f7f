"""The head of an INDI message: its tag, device and property, read from the opening tag alone.

A reader that only has to know *which* device and property a published message concerns (the web
client's watcher, told of every message on ``from_indi``) reads the opening tag, from the first 2 kB
at most, instead of parsing the message (a BLOB's megabytes with it).
"""

from __future__ import annotations

import html
import re
from typing import NamedTuple

from .vocabulary import LAYOUT_TAGS

__all__ = ["MessageHead", "message_head"]

_HEAD = re.compile(rb"<\s*([A-Za-z]+)([^>]{0,2000})")
_ATTRIBUTE = re.compile(r"""([A-Za-z]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


class MessageHead(NamedTuple):
    """What a message's opening tag says (all '' when there is none)."""

    tag: str
    device: str
    name: str  #: the property's name

    @property
    def changes_layout(self) -> bool:
        """Whether the message defines or deletes properties (a device's set of properties changes),
        rather than setting values."""
        return self.tag in LAYOUT_TAGS


def message_head(xml: bytes) -> MessageHead:
    """The head of an INDI message, read from its opening tag (in its first 2 kB only)."""
    match = _HEAD.search(xml[:2100])
    if not match:
        return MessageHead("", "", "")
    attributes = {  # (finditer: a value in single quotes is the third group, the second being None)
        found[1]: html.unescape(found[2] if found[2] is not None else found[3])
        for found in _ATTRIBUTE.finditer(match.group(2).decode("utf-8", "replace"))
    }
    return MessageHead(
        match.group(1).decode("ascii"), attributes.get("device", ""), attributes.get("name", "")
    )
