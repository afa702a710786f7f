"""Messages as indiserver hands them to its clients: BLOB data as base64 on one unbroken line.

Drivers wrap base64 at 72 characters; indiserver re-serialises what it
forwards, and its clients get each BLOB's base64 on one line.  Clients are
built and tested against that: ``indi_getprop``'s decoder, for one, turns each
line break into junk bytes in the file it writes.
"""

from __future__ import annotations

import re

from .messages import Message

Piece = bytes | memoryview

_ONE_BLOB_START = re.compile(rb"""<oneBLOB(?:[^"'>]|"[^"]*"|'[^']*')*>""")
_WHITESPACE = re.compile(rb"[ \t\r\n]+")
_SPACE = frozenset(b" \t\r\n")


def indiserver_layout(message: Message) -> list[Piece]:
    """The message's bytes in indiserver's layout, as pieces to write one after another.

    Anything but a ``setBLOBVector``, or one whose base64 is on one line already (as from
    indiserver), is ``[message.raw]``.  Otherwise line breaks and blanks inside each ``oneBLOB``'s
    base64 are removed: only that base64 is copied, once; the rest are views on ``message.raw``.
    """
    raw = message.raw
    if message.tag != "setBLOBVector":
        return [raw]
    view = memoryview(raw)
    pieces: list[Piece] = []
    done = 0
    for start_tag in _ONE_BLOB_START.finditer(raw):
        end = raw.find(b"</oneBLOB", start_tag.end())
        if end < 0:
            break
        begin = start_tag.end()
        while begin < end and raw[begin] in _SPACE:  # leading and trailing blanks stay as they are
            begin += 1
        while end > begin and raw[end - 1] in _SPACE:
            end -= 1
        if _WHITESPACE.search(raw, begin, end) is None:
            continue  # one line already
        pieces.append(view[done:begin])
        pieces.append(_WHITESPACE.sub(b"", view[begin:end]))
        done = end
    if not pieces:
        return [raw]
    pieces.append(view[done:])
    return pieces
