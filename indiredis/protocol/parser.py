"""Incremental INDI XML stream parser.

INDI has no outer document element: a connection carries a sequence of
top-level elements, split at any byte boundary and several per read.  The
parser works in two stages:

1. *Framing*: a small tokenizer finds tag boundaries (honouring quoted
   attribute values, comments and processing instructions) and tracks nesting
   depth, so that each complete top-level element is cut out as bytes.  A
   message larger than ``max_message_size`` is discarded while it streams past,
   keeping memory bounded; DTDs, entity declarations and CDATA are refused, so
   no XML bomb can ever reach an XML parser.  :class:`IndiStreamParser` is the
   framer; all of its state is one :class:`FramingState`, which also makes the
   changes of it that need nothing else.
2. *Parsing*: a ``set*Vector`` of numbers, switches, texts or lights in the
   plain shape drivers send (no entities, comments or unusual whitespace) is
   read by a strict pattern, without building a tree (:func:`read_plain_set`,
   the per-message hot path: tried first, before any tag is framed); anything
   else is parsed with ``xml.etree`` (expat) and checked against the INDI 1.7
   message model, so malformed input is still rejected with a clear
   :class:`Malformed`.

BLOBs stream (:class:`BlobStreaming`): given a :class:`~.messages.BlobSinks` (an injected
interface: the parser itself does no I/O), the base64 text inside each ``oneBLOB`` of a
``setBLOBVector`` / ``newBLOBVector`` is handed to a :class:`~.messages.BlobSink` chunk by
chunk as it arrives instead of being buffered, and the member the message then
carries has empty text and a :class:`~.messages.StreamedBlob` saying where the
data went.  ``max_message_size`` then bounds the message *without* its BLOB
data; what bounds BLOB data is the sink's business (the blob folder's size
limit).  A sink may decline a BLOB (``open`` returns None), which is then
buffered as before.

With ``defer_close`` the parser does not close a finished sink itself (closing makes the file durable:
an fsync that can take seconds): the member's :class:`~.messages.StreamedBlob` holds the sink as
``pending``, and whoever takes the message calls :func:`settle` (in a thread, in stream order) before
handing it on, or :func:`abandon` if it never will.

``feed(data)`` returns the :class:`Message` objects completed by ``data`` and a
:class:`Malformed` for each piece of the stream that was skipped; ``close()``
ends the stream (a message cut off by the end of the stream is reported, and
its open BLOB sink aborted).  The parser never raises on bad input and always
resynchronises on the next top-level tag.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import NamedTuple

from ..errors import BlobError
from .messages import (
    MEMBER_TAGS,
    TOP_LEVEL_TAGS,
    BlobSink,
    BlobSinks,
    Malformed,
    Member,
    Message,
    StreamedBlob,
)
from .vocabulary import Action, Tag, VectorKind

Event = Message | Malformed

DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024 * 1024

# A start or end tag, with quoted attribute values that may contain '>'.  Possessive
# quantifiers and atomic groups keep matching linear however long a hostile tag is.
_TAG = re.compile(rb"""<(/?)([^\s/>"'<]++)(?>[^"'<>/]++|"[^"<]*+"|'[^'<]*+'|/(?!>))*+(/?)>""")
# A tag that is fine so far but not finished by the end of the buffer.
_PARTIAL_TAG = re.compile(rb"""</?[^\s/>"'<]*+(?>[^"'<>]++|"[^"<]*+"|'[^'<]*+')*+(?:"[^"<]*+|'[^'<]*+)?\Z""")
# The start of a set*Vector that may be read whole by its pattern (framing then skips the tag by tag way)
_PLAIN_START = re.compile(rb"<(set(?:Number|Switch|Text|Light)Vector)[ \t\n>]")
_RESYNC = re.compile(
    rb"<(?:(?:def|set|new)(?:Text|Number|Switch|Light|BLOB)Vector"
    rb"|message|delProperty|getProperties|enableBLOB|pingRequest|pingReply)[\s/>]"
)

_TOP_LEVEL_NAMES = frozenset(tag.encode() for tag in TOP_LEVEL_TAGS)
_BLOB_VECTORS = frozenset(tag.encode() for tag in (Tag.SET_BLOB_VECTOR, Tag.NEW_BLOB_VECTOR))
_EXCERPT = 200

# Attributes every message must carry.
_REQUIRED: dict[str, tuple[str, ...]] = {tag: ("device", "name") for tag in MEMBER_TAGS}
_REQUIRED["enableBLOB"] = ("device",)
_REQUIRED["delProperty"] = ("device",)


@dataclass
class _OpenBlob:
    """A ``oneBLOB`` whose text is streaming to a sink; a sink's failure never ends the stream (the
    rest of the text is then skipped, and the member says why)."""

    name: str
    sink: BlobSink | None  # None once the sink rejected the data: the rest is skipped
    problem: str = ""

    def write(self, text: bytes) -> None:
        """Hand the next piece of text to the sink."""
        sink = self.sink
        if sink is not None:
            try:
                sink.write(text)
            except (BlobError, OSError) as exc:
                sink.abort()
                self.sink, self.problem = None, str(exc)

    def finish(self, *, defer_close: bool) -> StreamedBlob:
        """``</oneBLOB>`` has arrived: where the data went (the sink still to be closed with
        ``defer_close``)."""
        if self.sink is None:
            return StreamedBlob(problem=self.problem)
        if defer_close:
            return StreamedBlob(pending=self.sink)
        return _close_sink(self.sink)

    def abort(self) -> None:
        """The element will not end: the sink drops what it was given."""
        if self.sink is not None:
            self.sink.abort()


class Phase(Enum):
    """Where the framer stands between two reads (computed from :class:`FramingState`'s fields by
    :attr:`FramingState.phase`).

    ============  ===========================================  =========================================
    phase         fields                                       next phase, on
    ============  ===========================================  =========================================
    BETWEEN       ``start`` None (text here is garbage)        IN_MESSAGE: a top-level start tag;
                                                               BETWEEN: a whole plain ``set*Vector``,
                                                               a self-closed message, a resync
    IN_MESSAGE    ``start`` set, ``depth`` > 0                 BETWEEN: its end tag (emitted), a nested
                                                               top-level tag (cut short), a resync;
                                                               IN_BLOB: a ``oneBLOB`` a sink takes;
                                                               DISCARDING: over ``max_message_size``
    IN_BLOB       ``blob`` set (text streams to its sink)      IN_MESSAGE: ``</oneBLOB>`` (or markup:
                                                               the sink aborted); BETWEEN: a resync
    DISCARDING    ``discarding`` (bytes counted in             BETWEEN: its end tag (reported as
                  ``skipped``, not kept)                       oversized), a resync
    ============  ===========================================  =========================================

    ``close()`` brings every phase back to BETWEEN (an open message reported, its sink aborted).
    """

    BETWEEN = "between messages"
    IN_MESSAGE = "inside a message"
    IN_BLOB = "inside a streamed oneBLOB"
    DISCARDING = "discarding an oversized message"


@dataclass
class FramingState:
    """Everything the framer knows between two reads (its :class:`Phase` is :attr:`phase`), and the
    changes of it that need nothing else.

    ``buf[pos:]`` is unscanned input.  While a message is open, ``start`` is where it begins in
    ``buf``, ``root`` its tag, ``depth`` its nesting depth and ``vector`` the attributes of a BLOB
    vector; an oversized message is ``discarding`` (what was dropped counted in ``skipped``).
    ``blob`` is the ``oneBLOB`` whose text is streaming to a sink and ``streamed`` what each
    finished one of this message became.  ``garbage`` counts a run of text outside any message,
    reported once it ends.
    """

    buf: bytearray = field(default_factory=bytearray)
    pos: int = 0
    start: int | None = None
    root: bytes = b""
    depth: int = 0
    discarding: bool = False
    skipped: int = 0
    vector: dict[str, str] | None = None
    blob: _OpenBlob | None = None
    streamed: dict[str, StreamedBlob] = field(default_factory=dict)
    garbage: int = 0
    garbage_excerpt: bytes = b""

    @property
    def phase(self) -> Phase:
        """The framer's phase, from the fields (see :class:`Phase`)."""
        if self.start is None or self.depth == 0:
            return Phase.BETWEEN
        if self.discarding:
            return Phase.DISCARDING
        return Phase.IN_BLOB if self.blob is not None else Phase.IN_MESSAGE

    def open_message(self, at: int, root: bytes) -> None:
        self.drop_streamed()
        self.start, self.root, self.depth = at, root, 0
        self.discarding, self.skipped = False, 0
        self.vector = None

    def close_message(self) -> None:
        self.drop_streamed()
        self.start, self.depth, self.discarding = None, 0, False
        self.vector = None

    def drop_streamed(self) -> None:
        """The message the finished BLOBs belong to is not emitted: drop the ones not yet closed."""
        for streamed in self.streamed.values():
            if streamed.pending is not None:
                streamed.pending.abort()
        self.streamed = {}

    def outside(self, lt: int, events: list[Event]) -> None:
        """Text between messages up to ``lt`` (-1: all): dropped, and the whole run reported once it
        ends."""
        end = lt if lt >= 0 else len(self.buf)
        text = self.buf[self.pos : end]
        if text.strip():
            if not self.garbage:
                self.garbage_excerpt = bytes(text[:_EXCERPT])
            self.garbage += len(text)
        self.pos = end
        if lt >= 0 and self.garbage:
            events.append(
                Malformed(f"{self.garbage} bytes of text outside any message", self.garbage_excerpt)
            )
            self.garbage = 0

    def discard(self, skipped: int = 0) -> None:
        """The open message is over the size limit: it is skipped from here (``skipped`` bytes of it
        dropped already), its BLOB sink aborted."""
        self.abort_blob()
        self.discarding, self.skipped = True, skipped

    def drop_scanned(self) -> None:
        """Drop what has been scanned of the message being discarded (counted); keep unscanned bytes."""
        assert self.start is not None
        self.skipped += self.pos - self.start
        del self.buf[: self.pos]
        self.pos = self.start = 0

    def abort_blob(self) -> None:
        """The ``oneBLOB`` streaming (if any) will not end: its sink drops what it was given."""
        blob, self.blob = self.blob, None
        if blob is not None:
            blob.abort()

    def excerpt(self, stop: int | None = None) -> bytes:
        """The beginning of the open message (up to ``stop``), for a report."""
        start = self.start or 0
        end = len(self.buf) if stop is None else stop
        return bytes(self.buf[start : min(end, start + _EXCERPT)])

    def compact(self) -> None:
        """Drop the input scanned and no longer needed (all but the open message's)."""
        keep_from = self.pos if self.start is None else min(self.start, self.pos)
        if keep_from:
            del self.buf[:keep_from]
            self.pos -= keep_from
            if self.start is not None:
                self.start -= keep_from


class BlobStreaming:
    """The framer's BLOB half: hands the base64 text of each ``oneBLOB`` of a BLOB vector to a sink
    of ``sinks`` as it arrives (see the module docstring); None for ``sinks``: nothing streams."""

    def __init__(self, sinks: BlobSinks | None, *, defer_close: bool) -> None:
        self.sinks = sinks
        self.defer_close = defer_close

    def open(self, state: FramingState, tag: bytes) -> None:
        """A ``oneBLOB`` starts with the start tag ``tag``: its text goes to a sink if one takes it."""
        if self.sinks is None or state.discarding or state.start is None:
            return
        vector = state.vector
        element = _tag_attributes(tag)
        if vector is None or element is None or not element.get("name"):
            return  # left to parse_message, which reports it
        sink = self.sinks.open(Message(state.root.decode(), vector), element)
        if sink is not None:
            state.blob = _OpenBlob(element["name"], sink)

    def stream(self, state: FramingState) -> bool:
        """Pass the text up to the next '<' to the sink and drop it; False when more data is needed."""
        blob = state.blob
        assert blob is not None
        buf = state.buf
        lt = buf.find(b"<", state.pos)
        stop = len(buf) if lt < 0 else lt
        if stop > state.pos:
            blob.write(bytes(buf[state.pos : stop]))
            del buf[state.pos : stop]
        if lt < 0:
            return False
        match = _TAG.match(buf, state.pos)
        if match is None and _PARTIAL_TAG.match(buf, state.pos):
            return False  # the end tag has not fully arrived
        state.blob = None
        if match is not None and match.group(1) and match.group(2) == b"oneBLOB":
            state.streamed[blob.name] = blob.finish(defer_close=self.defer_close)
        elif blob.sink is not None:  # markup inside the BLOB: the framer reports what follows
            blob.sink.abort()
            state.streamed[blob.name] = StreamedBlob(problem="markup inside <oneBLOB>")
        return True


class IndiStreamParser:
    """Turns a byte stream of INDI XML into messages; see the module docstring.

    This class is the framer; the BLOB data goes through :class:`BlobStreaming`, and the usual message
    is read whole by :func:`read_plain_set`."""

    def __init__(
        self,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        blobs: BlobSinks | None = None,
        *,
        defer_close: bool = False,
    ) -> None:
        self.max_message_size = max_message_size
        self.streaming = BlobStreaming(blobs, defer_close=defer_close)
        self.state = FramingState()

    # ------------------------------------------------------------------ public
    def feed(self, data: bytes) -> list[Event]:
        """Consume ``data`` and return the events it completes, in stream order."""
        events: list[Event] = []
        state = self.state
        if state.blob is not None and state.pos == len(state.buf) and b"<" not in data:
            state.blob.write(data)  # the middle of a BLOB: straight to its sink, never buffered
            return events
        if data:
            state.buf += data
        self._scan(events)
        state.compact()
        return events

    def close(self) -> list[Malformed]:
        """End of the stream: report a message left incomplete (aborting its BLOB sink) and reset."""
        state = self.state
        events: list[Malformed] = []
        if state.start is not None and state.depth > 0:
            state.abort_blob()
            what = f"<{state.root.decode('utf-8', 'replace')}>"
            events.append(Malformed(f"stream ended inside {what}; message dropped", state.excerpt()))
        state.drop_streamed()
        self.state = FramingState()
        return events

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a message."""
        return len(self.state.buf)

    # ---------------------------------------------------------------- framing
    def _scan(self, events: list[Event]) -> None:
        """Frame the input from ``pos`` on, adding each event it completes to ``events``."""
        state = self.state
        buf = state.buf
        while True:
            if state.blob is not None and not self.streaming.stream(state):
                return
            lt = buf.find(b"<", state.pos)
            if state.depth == 0:
                if lt > state.pos and not state.garbage and buf[state.pos : lt].isspace():
                    state.pos = lt  # the usual line break between messages: nothing to report
                else:
                    state.outside(lt, events)
            if lt < 0:
                state.pos = len(buf)
                self._check_oversize()
                return
            if state.depth > 0:
                state.pos = lt
                self._check_oversize()
                lt = state.pos  # discarding may have shifted the buffer
            elif (plain := _PLAIN_START.match(buf, lt)) is not None and (
                message := read_plain_set(state, lt, plain.group(1), plain.end(), self.max_message_size)
            ) is not None:
                events.append(message)  # the usual message, read whole by its pattern
                continue
            if not self._token(lt, events):
                return

    def _token(self, lt: int, events: list[Event]) -> bool:
        """Handle the token at ``lt`` (a tag, comment, processing instruction or something refused);
        False when more data is needed."""
        state = self.state
        buf = state.buf
        nxt = buf[lt + 1 : lt + 2]
        if not nxt:
            return False
        if nxt == b"!" or nxt == b"?":
            return self._markup(lt, events)
        match = _TAG.match(buf, lt)
        if match is None:
            if _PARTIAL_TAG.match(buf, lt):
                return self._need_more(lt, events)
            self._resync(lt, events, "malformed tag")
            return True
        closing, name, selfclosing = match.group(1), match.group(2), match.group(3)
        end = match.end()
        if state.depth == 0:
            if not self._open(lt, match, events):
                return True
        elif not closing and name in _TOP_LEVEL_NAMES:
            self._cut_short(lt, name, events)
            return True
        if closing:
            state.depth -= 1
        elif not selfclosing:
            state.depth += 1
            if state.depth == 2 and name == b"oneBLOB" and state.root in _BLOB_VECTORS:
                self.streaming.open(state, bytes(buf[lt:end]))
        state.pos = end
        if state.depth == 0:
            self._emit(end, events)
        return True

    def _open(self, lt: int, tag: re.Match[bytes], events: list[Event]) -> bool:
        """A tag between messages: True when it opens a message (framed tag by tag from here), False
        when it was dealt with whole (a plain ``set*Vector`` read, a stray tag skipped)."""
        state = self.state
        closing, name, selfclosing = tag.group(1), tag.group(2), tag.group(3)
        if closing:
            self._resync(lt, events, "end tag outside any message")
            return False
        if name not in _TOP_LEVEL_NAMES:
            self._resync(lt, events, f"unknown INDI message <{name.decode('utf-8', 'replace')}>")
            return False
        end = tag.end()
        if (
            not selfclosing
            and (message := read_plain_set(state, lt, name, end, self.max_message_size)) is not None
        ):
            events.append(message)
            return False
        state.open_message(lt, name)
        if name in _BLOB_VECTORS and self.streaming.sinks is not None:
            state.vector = _tag_attributes(bytes(state.buf[lt:end]))
        return True

    def _cut_short(self, lt: int, name: bytes, events: list[Event]) -> None:
        """A top-level tag ``name`` at ``lt`` inside a message: INDI messages never nest, so the current
        one was cut short; it is reported and framing starts again here."""
        state = self.state
        excerpt = b"" if state.discarding else state.excerpt(lt)
        state.abort_blob()
        root = state.root.decode("utf-8", "replace")
        events.append(Malformed(f"<{root}> cut short by <{name.decode()}>", excerpt))
        state.close_message()
        state.pos = lt

    def _markup(self, lt: int, events: list[Event]) -> bool:
        """A comment or processing instruction at ``lt`` skipped; a DTD, entity declaration or CDATA
        refused; False when more data is needed."""
        buf = self.state.buf
        if buf[lt + 1 : lt + 2] == b"?":
            return self._skip_to(lt, b"?>", events, "unterminated processing instruction")
        if buf[lt : lt + 4] == b"<!--":
            return self._skip_to(lt, b"-->", events, "unterminated comment")
        if len(buf) - lt < 4:
            return False
        self._resync(lt, events, "DTD, entity declaration or CDATA refused")
        return True

    def _skip_to(self, lt: int, terminator: bytes, events: list[Event], reason: str) -> bool:
        """Skip a comment or processing instruction; one left open before the next message is malformed."""
        close = self.state.buf.find(terminator, lt + 2)
        if close >= 0:
            self.state.pos = close + len(terminator)
            return True
        if _RESYNC.search(self.state.buf, lt + 1):
            self._resync(lt, events, reason)
            return True
        return self._need_more(lt, events)

    def _need_more(self, lt: int, events: list[Event]) -> bool:
        """The markup at ``lt`` is not whole yet: False to wait for more data, True when it was skipped
        (longer than the size limit already)."""
        state = self.state
        if (
            state.depth > 0
            and state.start is not None
            and not state.discarding
            and len(state.buf) - state.start > self.max_message_size
        ):
            # the message is over the limit before this tag is whole: it is skipped from here, and only
            # the unscanned tag stays held (else the message so far and the tag were held together)
            state.discard(lt - state.start)
            del state.buf[:lt]
            state.pos = state.start = lt = 0
        if len(self.state.buf) - lt > self.max_message_size:
            self._resync(lt + 1, events, f"unterminated markup longer than {self.max_message_size} bytes")
            return True
        return False

    def _check_oversize(self) -> None:
        """The open message is over the size limit: discarded, the part scanned dropped."""
        state = self.state
        if state.depth == 0 or state.start is None:
            return
        if not state.discarding and state.pos - state.start > self.max_message_size:
            state.discard()
        if state.discarding:
            state.drop_scanned()

    def _emit(self, end: int, events: list[Event]) -> None:
        state = self.state
        start = state.start if state.start is not None else 0
        if not state.discarding and end - start > self.max_message_size:
            state.discard()
        if state.discarding:
            total = state.skipped + end - start
            events.append(
                Malformed(
                    f"message of {total} bytes exceeds the limit of {self.max_message_size} bytes, skipped"
                )
            )
        else:
            event = parse_message(bytes(state.buf[start:end]))
            if state.streamed and isinstance(event, Message):
                event = _with_streamed(event, state.streamed)
                state.streamed = {}  # the message carries them now
            events.append(event)
        state.close_message()

    def _resync(self, at: int, events: list[Event], reason: str) -> None:
        """Skip to the next top-level INDI tag after ``at``, reporting what was lost."""
        state = self.state
        start = state.start if state.start is not None and state.depth > 0 else at
        found = _RESYNC.search(state.buf, at + 1)
        if found:
            stop = found.start()
        else:  # keep a last '<' that may begin a message whose name has not fully arrived
            last = state.buf.rfind(b"<", at + 1)
            stop = last if last >= 0 and len(state.buf) - last < 32 else len(state.buf)
        state.abort_blob()
        if state.discarding:
            events.append(Malformed(reason + " inside an oversized message"))
        else:
            events.append(Malformed(reason, bytes(state.buf[start : min(stop, start + _EXCERPT)])))
        state.pos = stop
        state.close_message()


def _close_sink(sink: BlobSink) -> StreamedBlob:
    try:
        return sink.close()
    except (BlobError, OSError) as exc:
        sink.abort()
        return StreamedBlob(problem=str(exc))


def unsettled(message: Message) -> bool:
    """Whether ``message`` has a streamed BLOB whose sink is still to be closed (see :func:`settle`)."""
    if not message.is_blob:  # only BLOB vectors stream (quick: asked of every message)
        return False
    return any(member.blob is not None and member.blob.pending is not None for member in message.members)


def settle(message: Message) -> Message:
    """Close the pending BLOB sinks of a message from a parser with ``defer_close`` (this blocks on
    the disk: call it in a thread) and return the message with where each BLOB's data went."""
    members = tuple(
        replace(member, blob=_close_sink(member.blob.pending))
        if member.blob is not None and member.blob.pending is not None
        else member
        for member in message.members
    )
    return replace(message, members=members)


def abandon(message: Message) -> None:
    """The message will not be handed on: drop its pending BLOB sinks (their temporary files)."""
    for member in message.members:
        if member.blob is not None and member.blob.pending is not None:
            member.blob.pending.abort()


def _with_streamed(message: Message, streamed: dict[str, StreamedBlob]) -> Message:
    members = tuple(
        replace(member, blob=streamed[member.name]) if member.name in streamed else member
        for member in message.members
    )
    return replace(message, members=members)


def _tag_attributes(tag: bytes) -> dict[str, str] | None:
    """The attributes of one start tag, or None if it is not well-formed."""
    try:
        return dict(ET.fromstring(tag.rstrip(b">").rstrip(b"/") + b"/>").attrib)
    except ET.ParseError:
        return None


# ------------------------------------------------------------------ plain set*Vector
_NAME = r"[A-Za-z_][-A-Za-z0-9_.]*"
_VALUE = r"""(?:"[^"<&\t\n\r]*"|'[^'<&\t\n\r]*')"""
_ATTRS = rf"(?:[ \t\n]+{_NAME}[ \t\n]*=[ \t\n]*{_VALUE})*"
_ATTR = re.compile(rf"""[ \t\n]+({_NAME})[ \t\n]*=[ \t\n]*(?:"([^"]*)"|'([^']*)')""")
_DOUBLE_QUOTED_ATTR = re.compile(rf'[ \t\n]+({_NAME})[ \t\n]*=[ \t\n]*"([^"]*)"')
_NAME_ONLY = re.compile(r"""[ \t\n]+name[ \t\n]*=[ \t\n]*"([^"]*)"\Z""")
# what expat would refuse or rewrite (control characters, CR, non-characters), or
# what the pattern does not decode (entities), or "]]>" that expat refuses in text: such messages
# take the full parser.  White space is XML's own (space, tab, newline), never Unicode's wider \s
_NOT_PLAIN = re.compile("[\x00-\x08\x0b\x0c\x0d\x0e-\x1f&\ufffe\uffff]|]]>")
# the same for ASCII text, checked quicker: the bytes that are not plain (deleted, the length changes)
_NOT_PLAIN_BYTES = bytes(range(0x20)).replace(b"\t", b"").replace(b"\n", b"") + b"&"


class PlainShape(NamedTuple):
    """The pattern of one kind of plain ``set*Vector`` and of its members."""

    tag: str
    cls: type[Message]  #: the class of its messages
    member_tag: str
    whole: re.Pattern[str]
    member: re.Pattern[str]
    #: a member carrying only its name (in double quotes) and a text: (name, text) in one call
    named: re.Pattern[str]
    member_start: str  #: ``<oneNumber`` ...: how often it occurs in the members is how many there are


def _plain_shape(kind: VectorKind) -> PlainShape:
    tag, member_tag = kind.tag(Action.SET), kind.member_tag(Action.SET)
    member = rf"<{member_tag}({_ATTRS})[ \t\n]*(?:/>|>([^<]*)</{member_tag}[ \t\n]*>)"
    whole = re.compile(rf"<{tag}({_ATTRS})[ \t\n]*>((?:[ \t\n]*{member})*)[ \t\n]*</{tag}>\Z")
    name_only = r'[ \t\n]+name[ \t\n]*=[ \t\n]*"([^"<&\t\n\r]+)"[ \t\n]*'
    named = rf"<{member_tag}{name_only}>([^<]*)</{member_tag}[ \t\n]*>"
    return PlainShape(
        str(tag),
        type(Message(str(tag), {})),
        member_tag,
        whole,
        re.compile(member),
        re.compile(named),
        f"<{member_tag}",
    )


#: the set*Vector tags read without a tree (BLOBs are framed tag by tag, to stream their data)
_PLAIN_SETS = {
    kind.tag(Action.SET).encode(): _plain_shape(kind) for kind in VectorKind if kind is not VectorKind.BLOB
}


def _plain_attributes(text: str) -> dict[str, str] | None:
    only_name = _NAME_ONLY.match(text)  # most members: quicker than the general pattern
    if only_name is not None:
        return {"name": only_name.group(1)}
    if "'" not in text:  # every value in double quotes (as drivers write them): pairs in one call
        pairs = _DOUBLE_QUOTED_ATTR.findall(text)
    else:
        pairs = [(m[1], m[2] if m[2] is not None else m[3]) for m in _ATTR.finditer(text)]
    attrs = dict(pairs)
    return attrs if len(attrs) == len(pairs) else None  # a repeated attribute is malformed


def parse_plain_set(raw: bytes, shape: PlainShape) -> Message | None:
    """A ``set*Vector`` in the plain shape drivers send, read without building a tree; None when the
    message is not in that shape (and must go to :func:`parse_message`, which gives the same result
    for every message this accepts)."""
    if raw.isascii():  # nearly always: the quick check
        if len(raw.translate(None, _NOT_PLAIN_BYTES)) != len(raw) or b"]]>" in raw:
            return None
        text = raw.decode("ascii")
    else:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if _NOT_PLAIN.search(text):
            return None
    match = shape.whole.match(text)
    if match is None:
        return None
    attrs = _plain_attributes(match.group(1))
    if attrs is None or not attrs.get("device") or not attrs.get("name"):
        return None
    body, member_tag = match.group(2), shape.member_tag
    named = shape.named.findall(body)
    if len(named) == body.count(shape.member_start):  # every member only named, as drivers send them
        members = [Member(member_tag, {"name": name}, value.strip()) for name, value in named]
        return shape.cls(shape.tag, attrs, tuple(members), raw)
    members = []
    for found in shape.member.finditer(body):
        member_attrs = _plain_attributes(found.group(1))
        if member_attrs is None or not member_attrs.get("name"):
            return None
        members.append(Member(member_tag, member_attrs, (found.group(2) or "").strip()))
    return shape.cls(shape.tag, attrs, tuple(members), raw)


def read_plain_set(state: FramingState, lt: int, name: bytes, tag_end: int, limit: int) -> Message | None:
    """The ``set*Vector`` whose start tag ``<name ...>`` is ``state.buf[lt:tag_end]``, read whole in one
    step (``state.pos`` then past it); None when it is to be framed tag by tag (not all arrived yet,
    over ``limit`` bytes, or not in the plain shape)."""
    shape = _PLAIN_SETS.get(name)
    if shape is None:
        return None
    close = b"</" + name + b">"
    buf = state.buf
    stop = buf.find(close, tag_end)
    if stop < 0 or stop - lt > limit:
        return None
    stop += len(close)
    message = parse_plain_set(bytes(buf[lt:stop]), shape)
    if message is not None:
        state.pos = stop
    return message


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
