"""A bridge: one INDI-side link joined to one client-side link by two channels."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from ..protocol.messages import Message
from .channel import DEFAULT_BUFFER_SIZE, Channel
from .sides import FromIndiItem, Side
from .tasks import cancel_and_wait

__all__ = ["DEFAULT_MEMORY_BUDGET", "Bridge", "MemoryShares", "Side", "run_blocking"]

log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: bytes a bridge's queues may hold together, BLOB data included (``[service] memory_budget_mb``)
DEFAULT_MEMORY_BUDGET = 256 * MIB


@dataclass(frozen=True)
class MemoryShares:
    """How a bridge's memory budget is split between the places where messages wait
    (``docs/datapath.md``): the two channels, and the link that queues on its own (the MQTT
    publisher's payloads, or each client of the INDI port)."""

    from_indi: int
    to_indi: int
    link: int

    @classmethod
    def split(cls, budget: int = DEFAULT_MEMORY_BUDGET, *, link_queues: bool = False) -> MemoryShares:
        """Half to the from-INDI channel, a quarter each to the to-INDI channel and the link; with
        ``link_queues`` (the INDI port, whose from-INDI channel empties into its clients' queues at
        once) half to the link and a quarter to the from-INDI channel."""
        half, quarter = budget // 2, budget // 4
        if link_queues:
            return cls(quarter, quarter, half)
        return cls(half, quarter, quarter)


class Bridge:
    """Runs an INDI side and a client side together and reports their state."""

    def __init__(
        self,
        name: str,
        indi_side: Side,
        client_side: Side,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        shares: MemoryShares | None = None,
    ) -> None:
        """``buffer_size``: messages each channel holds; ``shares``: the channels' byte bounds (the
        default budget's when None)."""
        self.name = name
        self.indi_side = indi_side
        self.client_side = client_side
        self.shares = shares or MemoryShares.split()
        self.from_indi: Channel[FromIndiItem] = Channel(buffer_size, "from INDI", self.shares.from_indi)
        self.to_indi: Channel[Message] = Channel(buffer_size, "to INDI", self.shares.to_indi)

    @property
    def ready(self) -> bool:
        """True while both sides are connected."""
        return self.indi_side.state.connected and self.client_side.state.connected

    @property
    def status(self) -> str:
        """One sentence for ``STATUS=``: both sides' states and what the client side holds."""
        parts = [self.indi_side.state.text, self.client_side.state.text]
        summary = self.client_side.summary or self.indi_side.summary
        if summary:
            parts.append(summary)
        return "; ".join(parts)

    async def run(self) -> None:
        """Run both sides until cancelled."""
        log.info("%s starting", self.name)
        tasks = [
            asyncio.ensure_future(self.indi_side.run(self.from_indi, self.to_indi)),
            asyncio.ensure_future(self.client_side.run(self.from_indi, self.to_indi)),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            # gather gives up at the first cancelled side: wait for both to finish their
            # clean-up (closing connections, stopping driver processes) before returning
            await cancel_and_wait(tasks)


def run_blocking(bridge: Bridge) -> None:
    """Run ``bridge`` in a new event loop until interrupted (the classic blocking API)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(bridge.run())
    except KeyboardInterrupt:
        pass
