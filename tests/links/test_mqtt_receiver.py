"""The receiving job of both MQTT links on its own: no link, no broker (docs/mqtt-framing.md)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from indiredis.links.mqttreceiver import PayloadReceiver
from indiredis.protocol.messages import Message
from indiredis.protocol.mqttframing import Framer, Verdict
from indiredis.protocol.parser import DEFAULT_MAX_MESSAGE_SIZE


def test_a_receiver_hands_each_message_over_once_in_order_and_counts_a_gap(
    caplog: pytest.LogCaptureFixture,
) -> None:
    framer = Framer(session="s")
    first, _ = framer.pack([(Message.indi_message(text), ["F/o"]) for text in ("one", "two")])
    framer.skip("F/o", 3)  # three messages the publisher dropped
    after, _ = framer.pack([(Message.indi_message("six"), ["F/o"])])
    receiver = PayloadReceiver(DEFAULT_MAX_MESSAGE_SIZE, {"INDIREDIS_LINK": "mqtt"})
    got: list[str] = []

    async def handle(message: Message) -> None:
        got.append(message.text)

    async def main() -> list[Verdict | None]:
        payloads = [first[0].payload, first[0].payload, after[0].payload]  # the first one resent
        return [await receiver.deliver("F/o", payload, handle) for payload in payloads]

    verdicts = asyncio.run(main())
    assert got == ["one", "two", "six"]
    assert verdicts[:2] == [Verdict(), Verdict(skip=2)]
    gap = verdicts[2]
    assert gap is not None and gap.missing == 3
    with caplog.at_level(logging.WARNING, logger="indiredis.links.mqtt"):
        receiver.report_gap("F/o", gap, "asking again")
    assert receiver.missing == 3
    assert [r.getMessage() for r in caplog.records if "lost 3 messages on MQTT topic F/o" in r.getMessage()]
