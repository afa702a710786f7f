"""Incremental INDI XML stream parser.

INDI has no outer document element: a connection carries a sequence of
top-level elements, split at any byte boundary and several per read.  The
parser works in two stages:

1. *Framing*: a small tokenizer finds tag boundaries (honouring quoted
   attribute values, comments and processing instructions) and tracks nesting
   depth, so that each complete top-level element is cut out as bytes.  A
   message larger than ``max_message_size`` is discarded while it streams past,
   keeping memory bounded; DTDs, entity declarations and CDATA are refused, so
   no XML bomb can ever reach an XML parser.
2. *Parsing*: each framed element is parsed with ``xml.etree`` (expat) and
   checked against the INDI 1.7 message model.

``feed(data)`` returns the :class:`Message` objects completed by ``data`` and a
:class:`Malformed` for each piece of the stream that was skipped.  The parser
never raises on bad input and always resynchronises on the next top-level tag.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .messages import MEMBER_TAGS, TOP_LEVEL_TAGS, Malformed, Member, Message

Event = Message | Malformed

DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024 * 1024

# A start or end tag, with quoted attribute values that may contain '>'.  Possessive
# quantifiers and atomic groups keep matching linear however long a hostile tag is.
_TAG = re.compile(rb"""<(/?)([^\s/>"'<]++)(?>[^"'<>/]++|"[^"<]*+"|'[^'<]*+'|/(?!>))*+(/?)>""")
# A tag that is fine so far but not finished by the end of the buffer.
_PARTIAL_TAG = re.compile(rb"""</?[^\s/>"'<]*+(?>[^"'<>]++|"[^"<]*+"|'[^'<]*+')*+(?:"[^"<]*+|'[^'<]*+)?\Z""")
_RESYNC = re.compile(
    rb"<(?:(?:def|set|new)(?:Text|Number|Switch|Light|BLOB)Vector"
    rb"|message|delProperty|getProperties|enableBLOB|pingRequest|pingReply)[\s/>]"
)

_TOP_LEVEL_NAMES = frozenset(tag.encode() for tag in TOP_LEVEL_TAGS)

# Attributes every message must carry.
_REQUIRED: dict[str, tuple[str, ...]] = {tag: ("device", "name") for tag in MEMBER_TAGS}
_REQUIRED["enableBLOB"] = ("device",)
_REQUIRED["delProperty"] = ("device",)


class IndiStreamParser:
    """Turns a byte stream of INDI XML into messages; see the module docstring."""

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self._buf = bytearray()
        self._pos = 0  # scan position in _buf
        self._start: int | None = None  # start of the current message in _buf
        self._depth = 0
        self._discarding = False  # current message is oversized, being skipped
        self._root = b""  # tag of the current message
        self._garbage = 0  # length of the current run of text outside any message
        self._garbage_excerpt = b""
        self._skipped_bytes = 0

    # ------------------------------------------------------------------ public
    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data`` and return the events it completes, in stream order."""
        events: list[Event] = []
        if data:
            self._buf += data
        self._scan(events)
        self._compact()
        return events

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a message."""
        return len(self._buf)

    # ---------------------------------------------------------------- framing
    def _scan(self, events: list[Event]) -> None:
        buf = self._buf
        while True:
            lt = buf.find(b"<", self._pos)
            if self._depth == 0:
                end = lt if lt >= 0 else len(buf)
                text = buf[self._pos : end]
                if text.strip():
                    # text outside any message: drop it now, report the whole run once it ends
                    if not self._garbage:
                        self._garbage_excerpt = bytes(text[:200])
                    self._garbage += len(text)
                self._pos = end
                if lt >= 0 and self._garbage:
                    events.append(
                        Malformed(f"{self._garbage} bytes of text outside any message", self._garbage_excerpt)
                    )
                    self._garbage = 0
            if lt < 0:
                self._pos = len(buf)
                self._check_oversize(events)
                return
            if self._depth > 0:
                self._pos = lt
                self._check_oversize(events)
                lt = self._pos  # discarding may have shifted the buffer
            if not self._token(lt, events):
                return

    def _token(self, lt: int, events: list[Event]) -> bool:
        """Handle the token at ``lt``; False when more data is needed."""
        buf = self._buf
        nxt = buf[lt + 1 : lt + 2]
        if not nxt:
            return False
        if nxt == b"!":
            if buf[lt : lt + 4] == b"<!--":
                return self._skip_to(lt, b"-->", events, "unterminated comment")
            if len(buf) - lt < 4:
                return False
            self._resync(lt, events, "DTD, entity declaration or CDATA refused")
            return True
        if nxt == b"?":
            return self._skip_to(lt, b"?>", events, "unterminated processing instruction")
        match = _TAG.match(buf, lt)
        if match is None:
            if _PARTIAL_TAG.match(buf, lt):
                return self._need_more(lt, events)
            self._resync(lt, events, "malformed tag")
            return True
        closing, name, selfclosing = match.group(1), match.group(2), match.group(3)
        end = match.end()
        if self._depth == 0:
            if closing:
                self._resync(lt, events, "end tag outside any message")
                return True
            if name not in _TOP_LEVEL_NAMES:
                self._resync(lt, events, f"unknown INDI message <{name.decode('utf-8', 'replace')}>")
                return True
            self._start = lt
            self._root = name
            self._discarding = False
        elif not closing and name in _TOP_LEVEL_NAMES:
            # INDI messages never nest: the current one was cut short; start again here
            start = self._start or 0
            excerpt = b"" if self._discarding else bytes(self._buf[start : min(lt, start + 200)])
            events.append(
                Malformed(
                    f"<{self._root.decode('utf-8', 'replace')}> cut short by <{name.decode()}>", excerpt
                )
            )
            self._depth = 0
            self._start = None
            self._discarding = False
            self._pos = lt
            return True
        if closing:
            self._depth -= 1
        elif not selfclosing:
            self._depth += 1
        self._pos = end
        if self._depth == 0:
            self._emit(end, events)
        return True

    def _skip_to(self, lt: int, terminator: bytes, events: list[Event], reason: str) -> bool:
        """Skip a comment or processing instruction; one left open before the next message is malformed."""
        close = self._buf.find(terminator, lt + 2)
        if close >= 0:
            self._pos = close + len(terminator)
            return True
        if _RESYNC.search(self._buf, lt + 1):
            self._resync(lt, events, reason)
            return True
        return self._need_more(lt, events)

    def _need_more(self, lt: int, events: list[Event]) -> bool:
        if len(self._buf) - lt > self.max_message_size:
            self._resync(lt + 1, events, f"unterminated markup longer than {self.max_message_size} bytes")
            return True
        return False

    def _check_oversize(self, events: list[Event]) -> None:
        if self._depth == 0 or self._start is None:
            return
        size = self._pos - self._start
        if not self._discarding and size > self.max_message_size:
            self._discarding = True
            self._skipped_bytes = 0
        if self._discarding:
            # drop what has been scanned; keep only unscanned bytes
            self._skipped_bytes += self._pos - self._start
            del self._buf[: self._pos]
            self._pos = 0
            self._start = 0

    def _emit(self, end: int, events: list[Event]) -> None:
        start = self._start if self._start is not None else 0
        if not self._discarding and end - start > self.max_message_size:
            self._discarding = True
            self._skipped_bytes = 0
        if self._discarding:
            total = self._skipped_bytes + end - start
            events.append(
                Malformed(
                    f"message of {total} bytes exceeds the limit of {self.max_message_size} bytes, skipped"
                )
            )
            self._discarding = False
        else:
            events.append(parse_message(bytes(self._buf[start:end])))
        self._start = None

    def _resync(self, at: int, events: list[Event], reason: str) -> None:
        """Skip to the next top-level INDI tag after ``at``, reporting what was lost."""
        start = self._start if self._start is not None and self._depth > 0 else at
        found = _RESYNC.search(self._buf, at + 1)
        if found:
            stop = found.start()
        else:  # keep a last '<' that may begin a message whose name has not fully arrived
            last = self._buf.rfind(b"<", at + 1)
            stop = last if last >= 0 and len(self._buf) - last < 32 else len(self._buf)
        if self._discarding:
            events.append(Malformed(reason + " inside an oversized message"))
        else:
            events.append(Malformed(reason, bytes(self._buf[start : min(stop, start + 200)])))
        self._pos = stop
        self._depth = 0
        self._start = None
        self._discarding = False

    def _compact(self) -> None:
        keep_from = self._pos if self._start is None else min(self._start, self._pos)
        if keep_from:
            del self._buf[:keep_from]
            self._pos -= keep_from
            if self._start is not None:
                self._start -= keep_from


def parse_message(raw: bytes) -> Event:
    """Parse one complete top-level element into a :class:`Message` (or :class:`Malformed`)."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        return Malformed(f"malformed XML ({exc})", raw)
    tag = root.tag
    if tag not in TOP_LEVEL_TAGS:
        return Malformed(f"unknown INDI message <{tag}>", raw)
    attrs = dict(root.attrib)
    for key in _REQUIRED.get(tag, ()):
        if not attrs.get(key):
            return Malformed(f"<{tag}> lacks the {key!r} attribute", raw)
    members: list[Member] = []
    member_tag = MEMBER_TAGS.get(tag)
    if member_tag is not None:
        for child in root:
            if child.tag != member_tag:
                continue  # unknown children are ignored, as INDI clients do
            if not child.attrib.get("name"):
                return Malformed(f"<{child.tag}> in <{tag}> lacks the 'name' attribute", raw)
            members.append(Member(child.tag, dict(child.attrib), (child.text or "").strip()))
    elif tag == "enableBLOB":
        attrs["instruction"] = (root.text or "").strip()
    return Message(tag, attrs, tuple(members), raw)
