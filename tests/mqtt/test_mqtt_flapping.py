"""Two client sides given one MQTT id on a real mosquitto: once they are known to flap, a reconnection
no longer clears what the client side holds (no Reset per cycle)."""

from __future__ import annotations

import asyncio

import indiredis
from indiredis.core.channel import Channel
from indiredis.core.sides import Reset
from indiredis.links.base import FLAP_REPORT_AT
from indiredis.links.mqtt import MqttIndiSideLink
from tests.support.bridgethread import LoopThread
from tests.support.servers import wait_for


def test_a_flapping_client_side_does_not_reset_on_every_reconnection(mosquitto_proc):
    host = indiredis.mqtt_server("127.0.0.1", mosquitto_proc.port)
    links: list[MqttIndiSideLink] = []
    from_indi: list[Channel] = []

    async def main() -> None:
        for _ in range(2):
            links.append(MqttIndiSideLink("twin", host))
            from_indi.append(Channel(100_000))
        await asyncio.gather(
            *(link.run(channel, Channel(100_000)) for link, channel in zip(links, from_indi, strict=True))
        )

    def resets() -> list[int]:  # run on the loop's thread: the channels are the loop's
        return [sum(isinstance(entry[0], Reset) for entry in channel._items) for channel in from_indi]

    with LoopThread(main) as thread:
        wait_for(
            lambda: len(links) == 2 and all(link.flapping for link in links), timeout=60, what="flapping"
        )
        before = thread.call(resets)
        takeovers = mosquitto_proc.output().count("already connected")
        wait_for(
            lambda: mosquitto_proc.output().count("already connected") >= takeovers + 4,
            timeout=60,
            what="more takeovers",
        )
        after = thread.call(resets)
    assert after == before and all(1 <= count <= FLAP_REPORT_AT for count in after), (before, after)
