"""A bridge: one INDI-side link joined to one client-side link by two channels."""

from __future__ import annotations

import asyncio
import logging

from ..protocol.messages import Message
from .channel import DEFAULT_BUFFER_SIZE, Channel
from .sides import InboundItem, Side
from .tasks import cancel_and_wait

__all__ = ["Bridge", "Side", "run_blocking"]

log = logging.getLogger(__name__)


class Bridge:
    """Runs an INDI side and a client side together and reports their state."""

    def __init__(
        self, name: str, indi_side: Side, client_side: Side, buffer_size: int = DEFAULT_BUFFER_SIZE
    ) -> None:
        self.name = name
        self.indi_side = indi_side
        self.client_side = client_side
        self.from_indi: Channel[InboundItem] = Channel(buffer_size, "from INDI")
        self.to_indi: Channel[Message] = Channel(buffer_size, "to INDI")

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
