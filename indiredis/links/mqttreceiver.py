"""Receiving, for both MQTT links: from a payload received on a topic to the new INDI messages in it.

Each MQTT link (:mod:`indiredis.links.mqtt`) hands every payload it receives to its own
:class:`PayloadReceiver`: an instrument side's link (:class:`~indiredis.links.mqtt.MqttClientSideLink`,
its bridge's client side, facing the client sides) the client sides' requests and the other instrument
sides' snoop traffic; a client side's link (:class:`~indiredis.links.mqtt.MqttIndiSideLink`, its
bridge's INDI side, facing the instrument sides) what the instrument sides publish.

The receiver decodes the payload's frame (:mod:`indiredis.protocol.mqttframing`), judges its sequence
numbers with its :class:`~indiredis.protocol.mqttframing.SequenceTracker` (what was delivered before is
left out; implausible numbers are held back and logged, rate-limited), parses the messages (a BLOB's
data streams to the blob folder, in a thread when the payload may carry one) and hands each new one
over, in order.  A gap is the link's to repair (it knows what to ask for again); the receiver counts it
and logs it (:meth:`PayloadReceiver.report_gap`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable

from ..events import Event, journal_fields
from ..protocol.document import parse_document
from ..protocol.messages import BlobSinks, Malformed, Message
from ..protocol.mqttframing import (
    SEQUENCE_WINDOW,
    FrameError,
    FrameHeader,
    SequenceTracker,
    Verdict,
    decode_frame,
)
from .base import report_malformed
from .loglimit import LogLimiter

log = logging.getLogger("indiredis.links.mqtt")  # the MQTT links' logger, as before the split

#: payloads at least this large are unpacked in a thread when they carry BLOB data to a blob folder
THREAD_PAYLOAD = 64 * 1024
#: at most one line per this many seconds for each kind of suspicious payload (the rest are counted)
SUSPECT_LOG_SECONDS = 60.0

#: what :meth:`PayloadReceiver.unpack` returns: the new messages, what the sequence says, and the
#: session and sequence number of the first message returned
Unpacked = tuple[list[Message], Verdict | None, tuple[str, int]]


def carries_blob(payload: bytes) -> bool:
    """Whether a received payload may hold a ``setBLOBVector`` (a large one is taken to: looking
    through megabytes for the tag would itself hold the loop)."""
    return len(payload) >= THREAD_PAYLOAD or b"<setBLOBVector" in payload


class PayloadReceiver:
    """The new messages in the payloads one MQTT link receives, in order, with the counts of those lost
    and of the payloads held back (see the module docstring)."""

    def __init__(self, max_message_size: int, fields: dict[str, str], blobs: BlobSinks | None = None) -> None:
        """``fields``: the link's journal fields, on the lines logged; ``blobs``: where received BLOB data
        streams to (None: BLOBs stay in their messages, to be forwarded)."""
        self.max_message_size = max_message_size
        self.fields = fields
        self.blobs = blobs
        self.tracker = SequenceTracker()
        #: messages lost on the way to this link, as counted from the publishers' sequence numbers
        self.missing = 0
        #: payloads held back because their numbers were implausible (forged headers, mostly)
        self.implausible = 0
        self._implausible_log = LogLimiter(
            log, "payloads numbered implausibly", fields, burst=1, window=SUSPECT_LOG_SECONDS
        )
        #: a payload being unpacked in a thread (see :meth:`_unpack_in_thread`)
        self._unpacking: asyncio.Future[Unpacked] | None = None

    def unpack(self, topic: str, payload: bytes) -> Unpacked:
        """The messages of a received payload not delivered before, what its sequence says (None for
        the original's single form, which has none) and the session and sequence number of the first
        message returned (("", 0) when unnumbered)."""
        try:
            header, body = decode_frame(payload)
        except FrameError as exc:
            report_malformed(f"MQTT topic {topic}", Malformed(str(exc), payload[:80]))
            return [], None, ("", 0)
        if header is None:
            message = self._parse_single(topic, payload)
            return ([message] if message is not None else []), None, ("", 0)
        verdict = self.tracker.accept(topic, header)
        if verdict.implausible:
            self._report_implausible(topic, header, verdict)
        if verdict.skip >= header.count:
            return [], verdict, ("", 0)
        messages = self._parse_body(topic, body, header)
        if len(messages) != header.count:
            # a malformed message was left out (and reported): positions no longer line up with the
            # numbers, so deliver every one (a repeat is harmless where a skip could lose one)
            return messages, verdict, (header.session, header.first)
        return messages[verdict.skip :], verdict, (header.session, header.first + verdict.skip)

    async def deliver(
        self, topic: str, payload: bytes, handle: Callable[[Message], Awaitable[None]]
    ) -> Verdict | None:
        """Unpack ``payload`` and hand each new message to ``handle``, in order; return what its
        sequence says.  Cancelled part-way (the connection ended while ``handle`` waited for room),
        the messages not handed over count as not received: the next payload shows them as a gap."""
        if self.blobs is not None and carries_blob(payload):
            messages, verdict, (session, first) = await self._unpack_in_thread(topic, payload)
        else:
            await self._unpacked()
            messages, verdict, (session, first) = self.unpack(topic, payload)
        handed = 0
        try:
            for message in messages:
                await handle(message)
                handed += 1
        except asyncio.CancelledError:
            if first and handed < len(messages):
                self.tracker.rewind(topic, session, first + handed)
            raise
        return verdict

    async def _unpack_in_thread(self, topic: str, payload: bytes) -> Unpacked:
        """:meth:`unpack` in a thread: a BLOB's data is decoded into its file and made durable (an fsync
        that takes seconds on a slow disk) while the loop serves everything else.  Payloads stay in
        order: the receiver waits for it.  Cancelled meanwhile (the connection ended), the thread cannot
        be stopped: the next payload waits for it, and its messages count as not received (a gap);
        their files, never recorded, go with the element's older frames."""
        await self._unpacked()
        work = asyncio.ensure_future(asyncio.to_thread(self.unpack, topic, payload))
        self._unpacking = work
        try:
            unpacked = await asyncio.shield(work)
            self._unpacking = None
            return unpacked
        except asyncio.CancelledError:
            work.add_done_callback(functools.partial(self._not_handed, topic))
            raise

    async def _unpacked(self) -> None:
        """Wait for a payload still being unpacked in a thread (its receiver was cancelled)."""
        if self._unpacking is not None:
            await asyncio.wait([self._unpacking])
            self._unpacking = None

    def _not_handed(self, topic: str, work: asyncio.Future[Unpacked]) -> None:
        if work.cancelled() or work.exception() is not None:
            return
        _messages, _verdict, (session, first) = work.result()
        if first:
            self.tracker.rewind(topic, session, first)

    def _parse(self, topic: str, data: bytes | memoryview) -> tuple[list[Message], bool]:
        """The complete messages in ``data``, and whether anything in it was malformed (logged)."""
        messages, problems = parse_document(data, self.max_message_size, self.blobs)
        for problem in problems:
            report_malformed(f"MQTT topic {topic}", problem)
        return messages, bool(problems)

    def _parse_body(self, topic: str, body: memoryview, header: FrameHeader) -> list[Message]:
        messages, _ = self._parse(topic, body)
        if len(messages) != header.count:
            report_malformed(
                f"MQTT topic {topic}",
                Malformed(f"a payload announcing {header.count} messages held {len(messages)} complete ones"),
            )
        return messages

    def _parse_single(self, topic: str, payload: bytes) -> Message | None:
        messages, malformed = self._parse(topic, payload)
        if len(messages) != 1 or malformed:
            if not malformed:
                report_malformed(
                    f"MQTT topic {topic}", Malformed("not one complete INDI message", payload[:80])
                )
            return messages[0] if len(messages) == 1 else None
        return messages[0]

    def _report_implausible(self, topic: str, header: FrameHeader, verdict: Verdict) -> None:
        """One line (at most one per :data:`SUSPECT_LOG_SECONDS`) for a payload numbered implausibly."""
        self.implausible += 1
        self._implausible_log.warning(
            "ignored the sequence number of a payload on MQTT topic %s: session %s seq=%d is more than %d "
            "from the %d expected (a forged header? the broker's ACL should keep strangers off this "
            "topic); held it back",
            topic,
            header.session,
            header.first,
            SEQUENCE_WINDOW,
            verdict.expected,
        )

    def report_gap(self, topic: str, verdict: Verdict, repair: str) -> None:
        """Count and log, in one line, the messages that went missing on ``topic``; ``repair`` says what
        the link does about it."""
        self.missing += verdict.missing
        cause = "before the first one of its new session" if verdict.restarted else "in its sequence"
        log.warning(
            "lost %d messages on MQTT topic %s (missing %s: broker restarted without persistence, "
            "queue overflow or this bridge away); %s",
            verdict.missing,
            topic,
            cause,
            repair,
            extra=self.fields | journal_fields(Event.MESSAGES_DROPPED),
        )
