"""What every link shares: connection state, capped back-off and the reconnect loop.

A *link* is one side of a bridge.  It runs forever in :meth:`Link.run`,
connecting, serving until the connection fails, then waiting with capped
exponential back-off and trying again.  State changes (not every retry) are
logged once, and the current state is kept as a sentence for ``STATUS=``.

The back-off starts again from its shortest delay only once a connection has
stayed up :data:`STABLE_SECONDS`: a peer that accepts the connection and drops
it at once (an MQTT broker handing our client id to another client, a proxy
in front of a dead server) is retried at most every :data:`MAX_BACKOFF`
seconds, not twice a second.  The :data:`FLAP_REPORT_AT`-th such short-lived
connection in a row is logged once, with the count and a likely cause
(:meth:`Link.flap_cause`); the reconnections after it are not logged until a
connection stays up again, which is logged as the link being restored.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
from abc import ABC, abstractmethod
from typing import Any

from ..core.backoff import MAX_BACKOFF, Backoff
from ..core.channel import Channel
from ..core.sides import FromIndiItem, LinkState
from ..events import Event, journal_fields
from ..protocol.messages import Malformed, Message

__all__ = [
    "FLAP_REPORT_AT",
    "MAX_BACKOFF",
    "STABLE_SECONDS",
    "Backoff",
    "Link",
    "describe_error",
    "report_malformed",
    "resume_consuming",
]

log = logging.getLogger(__name__)

#: a connection that stayed up this long is stable: the back-off starts again from its shortest delay.
#: Longer than MAX_BACKOFF, so that two clients that take one connection from each other (one MQTT id
#: twice) never look stable and retry at most every MAX_BACKOFF seconds
STABLE_SECONDS = 10.0
#: short-lived connections in a row (each dropped within STABLE_SECONDS) after which the link is
#: reported as flapping, once, and its reconnections are no longer logged one by one
FLAP_REPORT_AT = 3


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


def resume_consuming(channel: Channel[Any], what: str, state: LinkState | None = None) -> int:
    """The consumer of ``channel`` (the link of ``state``) is connected again: back-pressure instead of
    dropping, and one log line for what was dropped meanwhile (BLOBs, dropped first beyond the
    channel's byte bound, named apart); return how many messages were dropped."""
    channel.set_consumer_up(True)
    drops = channel.take_drops()
    if drops.messages:
        fields = (state.fields if state else {}) | journal_fields(Event.MESSAGES_DROPPED)
        blobs = (
            f" ({drops.blobs} of them BLOBs, {drops.blob_bytes / 2**20:.1f} MiB, beyond the memory budget)"
            if drops.blobs
            else ""
        )
        log.warning(
            "dropped %d messages%s while %s was unreachable", drops.messages, blobs, what, extra=fields
        )
    return drops.messages


def report_malformed(source: str, event: Malformed) -> None:
    """One log line for a skipped piece of an INDI stream."""
    log.warning("skipped bad input from %s: %s", source, event)


class Link(ABC):
    """Base of every link: a :class:`~indiredis.core.sides.Side` that reconnects; subclasses implement
    :meth:`session`."""

    what = "link"
    link = ""  # INDIREDIS_LINK in the journal: indiserver, redis, mqtt or port

    #: seconds a connection must stay up to count as stable (see the module docstring)
    stable_seconds = STABLE_SECONDS

    def __init__(self, peer: str = "") -> None:
        """``peer``: the ``host:port`` it talks to (:func:`~indiredis.events.host_port`)."""
        self.state = LinkState(self.what, self.link, peer)
        self.backoff = Backoff()
        #: connections in a row that dropped within :attr:`stable_seconds` of being made
        self.short_lived = 0
        #: True once those were reported (until a connection stays up): reconnections are not logged
        self.flapping = False
        self._stable_timer: asyncio.TimerHandle | None = None

    @property
    def summary(self) -> str:
        """What the link holds or serves, for status lines; '' unless a subclass has something to say."""
        return ""

    @abstractmethod
    async def session(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        """Connect and serve until the connection ends (return) or fails (raise)."""

    def connection_error(self, exc: BaseException) -> bool:
        """True when ``exc``, not one of Python's own connection errors, is still one of the connection
        (a client library's own class): retried without a traceback.  A link of a library says which."""
        return False

    def flap_cause(self) -> str:
        """The likely cause of connections that drop right after they are made, for the log."""
        return f"{self.what} closes the connection right after accepting it"

    def stayed_up(self) -> None:
        """Called once a connection has stayed up :attr:`stable_seconds`: the back-off starts again
        from its shortest delay, and a link reported as flapping is logged as restored.  Subclasses
        extend it (what was put off while the link flapped)."""
        self._stable_timer = None
        self.backoff.reset()
        self.short_lived = 0
        if self.flapping:
            self.flapping = False
            self.state.up(self.state.text)  # logged: restored after the flapping

    def connected(self, text: str) -> None:
        """Called by a session once its connection is up."""
        self.state.up(text, quiet=self.flapping)
        if self._stable_timer is not None:
            self._stable_timer.cancel()
        self._stable_timer = asyncio.get_running_loop().call_later(self.stable_seconds, self.stayed_up)

    def _session_ended(self, reason: str) -> tuple[str, bool]:
        """Count a connection that dropped before it was stable; the reason to show and whether to log
        the loss."""
        if self._stable_timer is None:  # never came up, or stayed up: an ordinary loss or failure
            if self.flapping:  # a failure to connect ends the flapping: an outage, logged as one
                self.flapping, self.short_lived = False, 0
            return reason, True
        self._stable_timer.cancel()
        self._stable_timer = None
        self.short_lived += 1
        if self.short_lived < FLAP_REPORT_AT:
            return reason, not self.flapping
        reason = (
            f"{reason} {self.short_lived} times in a row within {self.stable_seconds:g} s of connecting "
            f"(likely cause: {self.flap_cause()})"
        )
        report = not self.flapping
        self.flapping = True
        return reason, report

    async def run(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        """Serve forever, reconnecting with back-off; never returns or raises (but for cancellation)."""
        try:
            while True:
                try:
                    await self.session(from_indi, to_indi)
                    reason = "connection closed"
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # every failure is retried; the unexpected ones logged in full
                    if not isinstance(
                        exc, (OSError, EOFError, ConnectionError)
                    ) and not self.connection_error(exc):
                        log.exception("unexpected error in %s link", self.what)
                    reason = describe_error(exc)
                reason, report = self._session_ended(reason)
                delay = self.backoff.next()
                self.state.down(
                    f"waiting for {self.what}: {reason}, retry in {delay:g} s", reason, quiet=not report
                )
                await asyncio.sleep(delay)
        finally:
            if self._stable_timer is not None:
                self._stable_timer.cancel()
                self._stable_timer = None
