"""How INDI messages travel in MQTT payloads: the framing codec and per-publisher gap tracking (no I/O).

Two payload forms share the topics of ``docs/mqtt-framing.md``:

* **single**: one complete INDI message and nothing else, the original 0.1.4
  package's framing.  Receivers always accept it; it carries no sequence
  number, so a gap in such a stream cannot be seen.
* **sequenced**: a processing instruction naming the publisher's session and
  the sequence number of the first message, then ``count`` complete INDI
  messages back to back::

      <?indiredis-frame v="1" session="5f3a09c1" seq="1201" count="3"?><setNumberVector ...>...

  Sequence numbers count INDI messages, per publisher session and topic,
  from 1.  An idle publisher sends a header with ``count="0"`` now and then
  (a heartbeat naming its next number), so that a loss at the end of a stream
  shows too.  An XML parser skips a processing instruction before the root
  element, so a sequenced payload holding one message is still understood by
  a receiver that does one ``ET.fromstring(payload)`` (the original's); one
  holding several is not, which is why the sending side has a setting that
  sends single payloads only (``mqtt_batching = no``).

:class:`Framer` packs a publisher's messages into payloads (several into one
while they wait, a BLOB always alone); :func:`decode_frame` splits a payload
into its header and body; :class:`SequenceTracker` follows every publisher's
sequence on the receiving side and says, for each payload, how many messages
went missing before it and how many at its head were already seen.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..errors import IndiredisError
from .messages import Message

#: processing instruction target of the sequenced form
FRAME_TARGET = b"indiredis-frame"
FRAME_VERSION = 1
#: a sequenced payload holds at most this many bytes of INDI messages, unless one message is larger
DEFAULT_MAX_FRAME_BYTES = 128 * 1024
#: MQTT's limit for one message (remaining length of a PUBLISH packet)
MAX_MQTT_PAYLOAD = 268_435_455

_HEADER = re.compile(
    rb'<\?indiredis-frame\s+v="(\d+)"\s+session="([0-9A-Za-z_-]{1,64})"\s+seq="(\d{1,19})"'
    rb'\s+count="(\d{1,9})"\s*\?>\n?'
)
_HEADER_SCAN = 256  # a header is never longer than this


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """What a sequenced payload says about itself."""

    session: str
    first: int  # sequence number of its first message
    count: int  # how many messages it holds

    @property
    def next(self) -> int:
        """The sequence number of the message after this payload's last."""
        return self.first + self.count


@dataclass(frozen=True, slots=True)
class Frame:
    """One MQTT payload ready to publish."""

    topic: str
    payload: bytes
    header: FrameHeader | None  # None: a single payload of the original framing


class FrameError(IndiredisError, ValueError):
    """A payload that starts like a sequenced one but whose header is malformed."""


def new_session_id() -> str:
    """A fresh publisher session id: a restarted publisher is told apart from a gap by it."""
    return secrets.token_hex(4)


def encode_header(header: FrameHeader) -> bytes:
    """The processing instruction that opens a sequenced payload."""
    return (
        f'<?indiredis-frame v="{FRAME_VERSION}" session="{header.session}" seq="{header.first}" '
        f'count="{header.count}"?>\n'
    ).encode("ascii")


def decode_frame(payload: bytes) -> tuple[FrameHeader | None, memoryview]:
    """Split a payload into its header (None for the original's single form) and its INDI body.

    The body is a view into ``payload`` (no copy).  Raises :class:`FrameError` when the payload
    opens with this codec's processing instruction but the header cannot be read.
    """
    view = memoryview(payload)
    if not payload.startswith(b"<?" + FRAME_TARGET):
        return None, view
    match = _HEADER.match(payload, 0, _HEADER_SCAN)
    if match is None:
        raise FrameError("unreadable indiredis-frame header")
    version, session, first, count = match.groups()
    if int(version) != FRAME_VERSION:
        raise FrameError(
            f"indiredis-frame version {int(version)} is not understood (expected {FRAME_VERSION})"
        )
    header = FrameHeader(session.decode("ascii"), int(first), int(count))
    if header.first < 1:
        raise FrameError("indiredis-frame header with a sequence number below 1")
    return header, view[match.end() :]


def is_bulky(message: Message) -> bool:
    """True for a BLOB vector that carries data: it always travels alone in its payload."""
    return message.is_blob and message.action in ("set", "new")


class Framer:
    """Packs one publisher's outgoing messages into payloads, per topic.

    With ``batching`` the messages given in one call to :meth:`pack` that go to
    the same topic share payloads of at most ``max_frame_bytes`` (a message
    larger than that, or a BLOB with data, gets a payload of its own), each
    payload sequenced; without it every message is a single payload, as the
    original package sends them.  Messages larger than MQTT can carry are
    returned by :meth:`pack` as refused, never numbered (so they make no gap).
    """

    def __init__(
        self,
        *,
        batching: bool = True,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        session: str | None = None,
        max_payload: int = MAX_MQTT_PAYLOAD,
    ) -> None:
        self.batching = batching
        self.max_frame_bytes = max_frame_bytes
        self.session = session or new_session_id()
        self.max_payload = max_payload
        self._next: dict[str, int] = {}

    def new_session(self) -> None:
        """Number from 1 again under a fresh session id: what follows is a new run of the publisher's
        INDI side (it reconnected; fresh definitions follow), which receivers see as a restart.  A
        session that numbered nothing yet is kept: it has nothing for receivers to forget, and they
        may have heard of it already (the announcement after connecting), so a fresh id would make
        them see a restart that was none (the INDI side's first connection), and hold back as too
        soon the real one that follows (``SequenceTracker``: one restart acted on per
        ``SESSION_LIVE_SECONDS``)."""
        if not self._next:
            return
        self.session = new_session_id()
        self._next.clear()

    def heartbeats(self) -> list[Frame]:
        """A header-only payload (``count="0"``) for every topic numbered so far, naming the next number:
        sent while the publisher is idle, it shows receivers a loss at the end of a stream."""
        if not self.batching:
            return []
        return [
            Frame(topic, encode_header(header), header)
            for topic, first in self._next.items()
            for header in [FrameHeader(self.session, first, 0)]
        ]

    def skip(self, topic: str, count: int) -> None:
        """Leave ``count`` numbers of ``topic`` unused (messages dropped before they were packed):
        receivers see them as missing, as a gap, and resynchronise."""
        self._next[topic] = self._next.get(topic, 1) + count

    def numbered(self, topic: str) -> int:
        """How many messages have been numbered for ``topic`` so far (this session)."""
        return self._next.get(topic, 1) - 1

    def pack(self, routed: Iterable[tuple[Message, Sequence[str]]]) -> tuple[list[Frame], list[Message]]:
        """Payloads for ``routed`` (each message with the topics it goes to), in order per topic, and
        the messages refused as too large for MQTT."""
        refused: list[Message] = []
        by_topic: dict[str, list[Message]] = {}
        header_room = 0 if not self.batching else _HEADER_SCAN
        for message, topics in routed:
            if len(message.raw) + header_room > self.max_payload:
                refused.append(message)
                continue
            for topic in topics:
                by_topic.setdefault(topic, []).append(message)
        frames: list[Frame] = []
        for topic, messages in by_topic.items():
            if not self.batching:
                frames.extend(Frame(topic, message.raw, None) for message in messages)
                continue
            for group in self._groups(messages):
                frames.append(self._sequenced(topic, group))
        return frames, refused

    def _groups(self, messages: list[Message]) -> Iterable[list[Message]]:
        group: list[Message] = []
        size = 0
        for message in messages:
            length = len(message.raw)
            if group and (is_bulky(message) or size + length > self.max_frame_bytes):
                yield group
                group, size = [], 0
            group.append(message)
            size += length
            if is_bulky(message):
                yield group
                group, size = [], 0
        if group:
            yield group

    def _sequenced(self, topic: str, messages: list[Message]) -> Frame:
        first = self._next.get(topic, 1)
        header = FrameHeader(self.session, first, len(messages))
        self._next[topic] = header.next
        return Frame(topic, encode_header(header) + b"".join(m.raw for m in messages), header)


#: how far from the next expected number a payload of a known session may start and still be taken as
#: that publisher's (a gap, or a payload resent after a reconnection): a resend goes back at most some
#: 40 000 messages (MAX_IN_FLIGHT payloads and one batch) and a gap while connected is bounded by the
#: broker's queue; a payload beyond is held back and logged, and the record is not moved (a forged header)
SEQUENCE_WINDOW = 1_000_000
#: a session heard within this many seconds is live (its publisher heartbeats every 5 s): it is never
#: evicted, and payloads of its session numbered outside the window are not taken over its record
SESSION_LIVE_SECONDS = 15.0
#: a session (and a topic) not heard for this long is forgotten
RECORD_EXPIRY_SECONDS = 3600.0
#: topics tracked at most; beyond, a new topic evicts the one heard least recently if it is not live
TOPICS_KEPT = 1024
_SWEEP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the tracker makes of one sequenced payload."""

    missing: int = 0  # messages of this publisher that never arrived before this payload
    skip: int = 0  # messages at the head of this payload already delivered (a resent payload)
    restarted: bool = False  # the publisher has a new session (restarted): not a gap
    #: numbered implausibly far from its session's record (more than SEQUENCE_WINDOW away): held back
    #: (``skip`` covers it), the record not moved; ``expected`` says where the record stands
    implausible: bool = False
    expected: int = 0
    untracked: bool = False  # no room for its record (every one live): delivered without checks
    #: a restart not to act on (no Reset): the topic saw another one within SESSION_LIVE_SECONDS while
    #: another of its sessions was live (forged sessions, mostly; a genuine restart is one at a time)
    reset_held: bool = False


@dataclass(slots=True)
class _Session:
    """One publisher session's record on one topic."""

    expected: int  # the next sequence number
    heard: float  # when a payload of it was last taken (tracker time)
    #: (first, next, since) of the implausible payloads held back in a row, and when the run began
    held: tuple[int, int, float] | None = None


class SequenceTracker:
    """The receiving side's record of every publisher's sequence, by topic and session.

    A publisher's topic (``from_indi/<id>`` ...) carries one sequence per session.
    A payload whose first message comes after the next one expected means
    messages were lost between (broker restarted without persistence, a queue
    overflow, this subscriber away); one that starts before it was partly or
    wholly delivered already (the publisher resent it after a reconnection).  A session
    not seen before on a topic that has a record is a restarted publisher (or, on a topic
    several publishers share, such as ``snoop_data/<asker>``, another one): its numbering
    starts at 1, and any of its messages before the first one seen were lost.  Each
    session keeps its own record, so that publishers taking turns on one topic are
    never mistaken for gaps.  The first payload heard from a topic starts its record
    (nothing is known before it).

    Bounded against hostile publishers (the broker's ACL is the real defence, ``docs/mqtt.md``):

    * a payload numbered more than :data:`SEQUENCE_WINDOW` from its session's next number is held
      back (``implausible``) and does not move the record, so a forged ``seq=10**18`` cannot make
      the genuine publisher's later payloads look like repeats.  Should such payloads continue one
      another for :data:`SESSION_LIVE_SECONDS` with none of the record's own numbers between (a
      genuine jump: a long stall, or this side away while over a million messages went by), they take
      the record over, as a gap.  A live genuine publisher (heartbeats every 5 s) thus keeps its
      record whoever else writes its session, also right after this side reconnected;
    * at most :attr:`SESSIONS_KEPT` sessions per topic and :data:`TOPICS_KEPT` topics: room is made
      by evicting the one heard least recently, never a live one (heard within
      :data:`SESSION_LIVE_SECONDS`), so forged sessions cannot push a live publisher out; with no
      room, a payload is delivered ``untracked``;
    * a new session is a restart to act on (``reset_held`` False) at most once per topic per
      :data:`SESSION_LIVE_SECONDS` while another session of the topic is live: forged sessions
      cannot make a client side start over on each payload, and a genuine restart (one new session,
      numbered from 1) still is one.  A new session numbered beyond the window from 1 is held back
      as implausible (and taken, as a gap, once its numbers go on for SESSION_LIVE_SECONDS);
    * records not heard for :data:`RECORD_EXPIRY_SECONDS` are forgotten.

    Times are the ``now`` given to :meth:`accept` (``time.monotonic()`` by default).
    """

    #: sessions remembered per topic (a restarted publisher leaves its old session behind)
    SESSIONS_KEPT = 32

    def __init__(self) -> None:
        self._expected: dict[str, dict[str, _Session]] = {}
        self._reset_at: dict[str, float] = {}  # topic -> when a restart on it was last to be acted on
        self._swept = float("-inf")

    def accept(self, topic: str, header: FrameHeader, now: float | None = None) -> Verdict:
        """Record ``header`` as received on ``topic`` (at time ``now``) and judge it."""
        now = time.monotonic() if now is None else now
        if now - self._swept >= _SWEEP_SECONDS:
            self._sweep(now)
        sessions = self._expected.get(topic)
        if sessions is None:
            if len(self._expected) >= TOPICS_KEPT and not self._evict_topic(now):
                return Verdict(untracked=True)
            self._expected[topic] = {header.session: _Session(header.next, now)}
            return Verdict()
        record = sessions.get(header.session)
        if record is None:
            return self._new_session(topic, sessions, header, now)
        ahead = header.first - record.expected
        if -SEQUENCE_WINDOW <= ahead <= SEQUENCE_WINDOW:
            record.heard, record.held = now, None
            return _judge(record, header)
        return _out_of_window(record, header, now)

    def _new_session(
        self, topic: str, sessions: dict[str, _Session], header: FrameHeader, now: float
    ) -> Verdict:
        """The verdict on the first payload of a session new to an already recorded ``topic``: a restarted
        publisher (or another one sharing the topic), a restart to act on at most once per
        SESSION_LIVE_SECONDS while another session of the topic is live."""
        if len(sessions) >= self.SESSIONS_KEPT and not _evict_session(sessions, now):
            return Verdict(untracked=True)
        if header.first - 1 > SEQUENCE_WINDOW:
            # a new session does not start this far on (a restarted publisher numbers from 1): held
            # back as implausible; should its numbers go on for SESSION_LIVE_SECONDS, they are taken
            sessions[header.session] = _Session(1, now, (header.first, header.next, now))
            return Verdict(skip=header.count, implausible=True, expected=1)
        live = any(now - r.heard < SESSION_LIVE_SECONDS for r in sessions.values())
        sessions[header.session] = _Session(header.next, now)
        last = self._reset_at.get(topic)
        if live and last is not None and now - last < SESSION_LIVE_SECONDS:
            return Verdict(missing=header.first - 1, restarted=True, reset_held=True)
        self._reset_at[topic] = now
        return Verdict(missing=header.first - 1, restarted=True)

    def rewind(self, topic: str, session: str, first_missing: int) -> None:
        """Messages of ``session`` on ``topic`` from ``first_missing`` on, though received, were not
        delivered: the next payload shows them as missing."""
        record = self._expected.get(topic, {}).get(session)
        if record is not None and first_missing < record.expected:
            record.expected = first_missing

    def forget(self, topic: str) -> None:
        """Drop the record of ``topic``."""
        self._expected.pop(topic, None)
        self._reset_at.pop(topic, None)

    def topics(self) -> list[str]:
        """The topics with a record."""
        return list(self._expected)

    def sessions(self, topic: str) -> list[str]:
        """The sessions recorded on ``topic``."""
        return list(self._expected.get(topic, {}))

    def _sweep(self, now: float) -> None:
        """Forget the sessions, and topics, not heard for RECORD_EXPIRY_SECONDS."""
        self._swept = now
        for topic in list(self._expected):
            sessions = self._expected[topic]
            for session in [s for s, r in sessions.items() if now - r.heard >= RECORD_EXPIRY_SECONDS]:
                del sessions[session]
            if not sessions:
                self.forget(topic)

    def _evict_topic(self, now: float) -> bool:
        """Make room for a topic: forget the one heard least recently, unless it is live."""
        topic, heard = min(
            ((t, max(r.heard for r in s.values())) for t, s in self._expected.items()), key=lambda x: x[1]
        )
        if now - heard < SESSION_LIVE_SECONDS:
            return False
        self.forget(topic)
        return True


def _evict_session(sessions: dict[str, _Session], now: float) -> bool:
    """Make room for a session: forget the one heard least recently, unless it is live."""
    session = min(sessions, key=lambda s: sessions[s].heard)
    if now - sessions[session].heard < SESSION_LIVE_SECONDS:
        return False
    del sessions[session]
    return True


def _judge(record: _Session, header: FrameHeader) -> Verdict:
    """The verdict on a payload numbered within the window of its session's record (and moving it)."""
    expected = record.expected
    if header.first > expected:
        record.expected = header.next
        return Verdict(missing=header.first - expected)
    if header.next <= expected:
        return Verdict(skip=header.count)
    record.expected = header.next
    return Verdict(skip=expected - header.first)


def _out_of_window(record: _Session, header: FrameHeader, now: float) -> Verdict:
    """The verdict on a payload numbered more than SEQUENCE_WINDOW from its session's record: held back
    as implausible, the record not moved, unless it continues such payloads held for
    SESSION_LIVE_SECONDS (then it moves the record, as a gap)."""
    held = record.held
    if held is not None and header.first == held[1] and now - held[2] >= SESSION_LIVE_SECONDS:
        # held payloads that followed one another for SESSION_LIVE_SECONDS with no payload of the
        # record's own numbers between (a genuine publisher heartbeats every 5 s): a genuine jump (a
        # long stall, this side away); take them over as a gap (what was held is part of it)
        missing = header.first - min(held[0], record.expected)
        record.expected, record.heard, record.held = header.next, now, None
        return Verdict(missing=missing)
    if held is not None and header.first == held[1]:
        record.held = (held[0], header.next, held[2])
    else:
        record.held = (header.first, header.next, now)
    return Verdict(skip=header.count, implausible=True, expected=record.expected)
