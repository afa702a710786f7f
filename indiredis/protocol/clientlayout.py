"""Messages as indiserver hands them to its clients: BLOB data as base64 on one unbroken line.

Drivers wrap base64 at 72 characters and give its length as ``enclen``;
indiserver re-serialises what it forwards: its clients get each BLOB's base64
on one line, and ``len`` (the decoded length) instead of ``enclen``.  Clients
are built and tested against that: ``indi_getprop``'s decoder turns each line
break into junk bytes in the file it writes, and indiserver 1.9, taking a port
as a remote driver (``device@host:port``), loses a one-line BLOB that still
carries ``enclen``.
"""

from __future__ import annotations

import re
from typing import TypeAlias
from xml.sax.saxutils import quoteattr

from .messages import Message, SetBLOBVector
from .parser import parse_message

Piece: TypeAlias = bytes | memoryview

_ONE_BLOB_START = re.compile(rb"""<oneBLOB(?:[^"'>]|"[^"]*"|'[^']*')*>""")
_BLANKS = b" \t\r\n"
_SPACE = frozenset(_BLANKS)


def indiserver_layout(message: Message) -> list[Piece]:
    """The message's bytes in indiserver's layout, as pieces to write one after another.

    Anything but a ``setBLOBVector``, or one in indiserver's layout already (as from indiserver), is
    ``[message.raw]``.  Otherwise each ``oneBLOB`` gets its base64 on one line (the blanks around it
    stay) and its start tag says ``len`` instead of ``enclen``: only the base64 of a wrapped BLOB is
    copied (kept once; made with one transient copy, as fast as memory copies); the rest are views on
    ``message.raw``.
    """
    raw = message.raw
    if not isinstance(message, SetBLOBVector):
        return [raw]
    pieces = _relaid(raw)
    if not pieces:
        return [raw]
    # the small views become bytes of their own, so that a wrapped BLOB's bytes as received are not
    # kept alive beside their one-line copy while the message waits for slow clients
    return [
        bytes(piece) if isinstance(piece, memoryview) and len(piece) < _SMALL else piece for piece in pieces
    ]


def _relaid(raw: bytes) -> list[Piece]:
    """The pieces of a ``setBLOBVector``'s bytes with every ``oneBLOB`` not in indiserver's layout
    relaid (its start tag rewritten, its base64 on one line); none when all of them are in it."""
    view = memoryview(raw)
    pieces: list[Piece] = []
    done = 0
    position = 0
    while (start_tag := _ONE_BLOB_START.search(raw, position)) is not None:
        end = raw.find(b"</oneBLOB", start_tag.end())
        if end < 0:
            break
        position = end  # the next element's search starts after this one's data, not inside it
        begin, end = _without_blanks_around(raw, start_tag.end(), end)
        wrapped = any(raw.find(blank, begin, end) >= 0 for blank in (b"\n", b" ", b"\r", b"\t"))
        if not wrapped and b"enclen" not in start_tag.group(0):
            continue  # indiserver's layout already
        # the slice is a transient copy (bytes.translate needs bytes); only the result is kept
        base64: Piece = raw[begin:end].translate(None, _BLANKS) if wrapped else view[begin:end]
        pieces.append(view[done : start_tag.start()])
        pieces.append(_start_tag(start_tag.group(0), base64))
        pieces.append(view[start_tag.end() : begin])
        pieces.append(base64)
        done = end
    if pieces:
        pieces.append(view[done:])
    return pieces


def _without_blanks_around(raw: bytes, begin: int, end: int) -> tuple[int, int]:
    """The span ``raw[begin:end]`` without the blanks at its start and its end."""
    while begin < end and raw[begin] in _SPACE:
        begin += 1
    while end > begin and raw[end - 1] in _SPACE:
        end -= 1
    return begin, end


_SMALL = 64 * 1024  # bytes


def _start_tag(tag: bytes, base64: Piece) -> bytes:
    """The ``oneBLOB`` start tag as indiserver writes it: ``enclen`` dropped, ``len`` the decoded length."""
    element = parse_message(b"<setBLOBVector device='d' name='n'>" + tag + b"</oneBLOB></setBLOBVector>")
    attrs = dict(element.members[0].attrs) if isinstance(element, Message) and element.members else {}
    attrs.pop("enclen", None)
    padding = bytes(base64[-2:]).count(b"=")
    attrs.setdefault("len", str(len(base64) // 4 * 3 - padding))
    return ("<oneBLOB " + " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items()) + ">").encode()
