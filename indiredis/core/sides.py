"""The contract between a bridge and its two sides: what a side offers, what it puts on the channels,
and the connection state it reports.

An INDI side (indiserver, the driver pool, or the MQTT link to the instrument sides on a broker,
``MqttIndiSideLink``) and a client side (Redis, the MQTT link to the client sides on a broker,
``MqttClientSideLink``, the TCP port) are both :class:`Side`\\ s.  The INDI side puts
:data:`FromIndiItem`\\ s on the from-INDI channel; the client side puts client requests (messages) on the
to-INDI channel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from ..events import Event, journal_fields
from ..protocol.messages import Message
from .channel import Channel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reset:
    """Put on the from-INDI channel when the INDI side (re)connects: the client side should forget
    everything it holds, since fresh definitions follow."""


#: what travels from the INDI side to the client side
FromIndiItem = Message | Reset


class LinkState:
    """Whether a side is connected, a sentence saying what it is doing, and logging of changes.

    Changed only through :meth:`up`, :meth:`degraded` and :meth:`down`; read through
    :attr:`connected`, :attr:`partial` and :attr:`text`.
    """

    def __init__(self, what: str, link: str = "", peer: str = "") -> None:
        """``link`` and ``peer``: its journal fields INDIREDIS_LINK and INDIREDIS_PEER."""
        self.what = what
        self._connected = False
        self._degraded = False
        self._text = f"connecting to {what}"
        self.fields = journal_fields(link=link, peer=peer)
        self._last_logged: tuple[bool, str] | None = None

    @property
    def connected(self) -> bool:
        """True while the side serves (fully or, when :meth:`degraded`, in part)."""
        return self._connected

    @property
    def partial(self) -> bool:
        """True while the side serves only in part (see :meth:`degraded`)."""
        return self._degraded

    @property
    def text(self) -> str:
        """What the side is doing, for ``STATUS=``."""
        return self._text

    def up(self, text: str, *, quiet: bool = False) -> None:
        """Connected; ``text`` says to what.  ``quiet``: not logged (a link that flaps, already
        reported)."""
        self._connected, self._degraded, self._text = True, False, text
        if not quiet:
            self._log_change(text, logging.INFO, text, connected=True)

    def degraded(self, text: str) -> None:
        """Serving, but not everything it should (some drivers down); ``text`` says what is wrong.
        Not logged here: whoever found the trouble has logged it."""
        self._connected, self._degraded, self._text = True, True, text

    def down(self, text: str, reason: str, *, quiet: bool = False) -> None:
        """Not connected because of ``reason``; ``text`` may change on every retry.  ``quiet``: not
        logged (a link that flaps, already reported)."""
        self._connected, self._degraded, self._text = False, False, text
        if not quiet:
            self._log_change(reason, logging.WARNING, f"{self.what} unavailable: {reason}", connected=False)

    def _log_change(self, key: str, level: int, line: str, *, connected: bool) -> None:
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


class Side(Protocol):
    """Either side of a bridge: what :class:`~indiredis.core.bridge.Bridge` uses of it."""

    @property
    def state(self) -> LinkState:
        """The side's connection state."""

    @property
    def summary(self) -> str:
        """What the side holds or serves, for status lines ('' when it has nothing to say)."""

    async def run(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        """Serve forever (until cancelled); ``from_indi`` carries INDI-side traffic, ``to_indi`` client
        requests.  Never returns and never raises but for cancellation."""
