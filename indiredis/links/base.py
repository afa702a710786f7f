"""What every link shares: connection state, capped back-off and the reconnect loop.

A *link* is one side of a bridge.  It runs forever in :meth:`Link.run`,
connecting, serving until the connection fails, then waiting with capped
exponential back-off and trying again.  State changes (not every retry) are
logged once, and the current state is kept as a sentence for ``STATUS=``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
from dataclasses import dataclass
from typing import Any, Union

from ..core.channel import Channel
from ..events import Event, journal_fields
from ..protocol.messages import Malformed, Message

log = logging.getLogger("indiredis")

MAX_BACKOFF = 5.0


@dataclass(frozen=True)
class Reset:
    """Put on the from-INDI channel when the INDI side (re)connects: the client side
    should forget what it holds for ``devices`` (None: everything), since fresh
    definitions follow."""

    devices: tuple[str, ...] | None = None


InboundItem = Union[Message, Reset]


class Backoff:
    """Capped exponential back-off: 0.5 s, 1 s, 2 s, 4 s, 5 s, 5 s ..."""

    def __init__(self, initial: float = 0.5, cap: float = MAX_BACKOFF) -> None:
        self.initial = initial
        self.cap = cap
        self._next = initial

    def next(self) -> float:
        """The delay before the next try."""
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        """Start again from the shortest delay (after a success)."""
        self._next = self.initial


class LinkState:
    """Whether a link is connected, a sentence saying what it is doing, and logging of changes."""

    def __init__(self, what: str, link: str = "", peer: str = "") -> None:
        """``link`` and ``peer``: its journal fields INDIREDIS_LINK and INDIREDIS_PEER."""
        self.what = what
        self.connected = False
        self.text = f"connecting to {what}"
        self.fields = journal_fields(link=link, peer=peer)
        self._last_logged: tuple[bool, str] | None = None

    def up(self, text: str) -> None:
        """Connected; ``text`` says to what."""
        self.connected = True
        self.text = text
        self._log_change(True, text, logging.INFO, text)

    def down(self, text: str, reason: str) -> None:
        """Not connected because of ``reason``; ``text`` may change on every retry."""
        self.connected = False
        self.text = text
        self._log_change(False, reason, logging.WARNING, f"{self.what} unavailable: {reason}")

    def _log_change(self, connected: bool, key: str, level: int, line: str) -> None:
        """Log a change: a loss with LINK_LOST, a recovery from one with LINK_RESTORED (a new reason
        while down, or the first connection, is no such event)."""
        if self._last_logged == (connected, key):
            return
        was_down = self._last_logged is not None and not self._last_logged[0]
        if connected:
            event = Event.LINK_RESTORED if was_down else None
        else:
            event = None if was_down else Event.LINK_LOST
        self._last_logged = (connected, key)
        log.log(level, "%s", line, extra=self.fields | journal_fields(event))


_ERRNO_IN_TEXT = re.compile(r"^Error (\d+) ")


def describe_error(exc: BaseException) -> str:
    """A short, secret-free description of a connection error ("connection refused")."""
    seen: BaseException | None = exc
    while seen is not None:  # the OSError behind a library's wrapper says it best
        if isinstance(seen, ssl.SSLError):  # "certificate verify failed", without the "[SSL: ...]" tag
            text = seen.strerror or str(seen)
            return re.sub(r"^\[[^\]]*\]\s*", "", text).split(" (_ssl")[0].lower()
        if isinstance(seen, OSError) and isinstance(seen.errno, int) and seen.errno > 0:
            return os.strerror(
                seen.errno
            ).lower()  # "connection refused", not asyncio's "connect call failed (...)"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    text = str(exc) or type(exc).__name__
    match = _ERRNO_IN_TEXT.match(text)
    if match:
        return os.strerror(int(match.group(1))).lower()
    return text.splitlines()[0][:200]


def resume_consuming(channel: Channel[Any], what: str, state: LinkState | None = None) -> None:
    """The consumer of ``channel`` (the link of ``state``) is connected again: back-pressure instead of
    dropping, and one log line for what was dropped meanwhile."""
    channel.set_consumer_up(True)
    dropped = channel.take_dropped()
    if dropped:
        fields = (state.fields if state else {}) | journal_fields(Event.MESSAGES_DROPPED)
        log.warning("dropped %d messages while %s was unreachable", dropped, what, extra=fields)


def report_malformed(source: str, event: Malformed) -> None:
    """One log line for a skipped piece of an INDI stream."""
    log.warning("skipped bad input from %s: %s", source, event)


class Link:
    """Base of every link: subclasses implement :meth:`session`."""

    what = "link"
    link = ""  # INDIREDIS_LINK in the journal: indiserver, redis, mqtt or port

    def __init__(self, peer: str = "") -> None:
        """``peer``: the ``host:port`` it talks to (:func:`~indiredis.events.host_port`)."""
        self.state = LinkState(self.what, self.link, peer)
        self.backoff = Backoff()

    async def session(self, inbound: Channel[InboundItem], outbound: Channel[Message]) -> None:
        """Connect and serve until the connection ends (return) or fails (raise)."""
        raise NotImplementedError

    def connected(self, text: str) -> None:
        """Called by a session once its connection is up."""
        self.backoff.reset()
        self.state.up(text)

    async def run(self, inbound: Channel[InboundItem], outbound: Channel[Message]) -> None:
        """Serve forever, reconnecting with back-off; never returns or raises (but for cancellation)."""
        while True:
            try:
                await self.session(inbound, outbound)
                reason = "connection closed"
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is retried; the unexpected ones logged in full
                if not isinstance(
                    exc, (OSError, EOFError, ConnectionError)
                ) and not _is_library_connection_error(exc):
                    log.exception("unexpected error in %s link", self.what)
                reason = describe_error(exc)
            delay = self.backoff.next()
            self.state.down(f"waiting for {self.what}: {reason}, retry in {delay:g} s", reason)
            await asyncio.sleep(delay)


def _is_library_connection_error(exc: BaseException) -> bool:
    try:
        import redis.exceptions
    except ImportError:  # pragma: no cover
        return False
    return isinstance(
        exc,
        (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.AuthenticationError,
        ),
    )
