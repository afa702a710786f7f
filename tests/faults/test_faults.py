"""Fault suite: kill -9 and restart each part of each bridge chain while 2 000 messages/s flow.

Each chain is the real servers plus the bridges, each bridge in its own
process (see ``tests/support/chains.py``).  What must hold after every fault: the
bridges never exit, they said what was wrong in their status, the Redis store
is whole again, and nothing sent while every part was up is lost or
reordered.  ``bench/chaos.py`` runs the same cycles many times and prints the
recovery figures.
"""

from __future__ import annotations

import re

import pytest

from indiredis import bridges
from tests.support.accounting import account
from tests.support.chains import CHAINS, NEEDS, build_chain, cycle_parts
from tests.support.servers import wait_for

CYCLES_PER_PART = 2


#: the status words each part's outage must produce in some bridge's STATUS
OUTAGE_STATUS = {
    "redis": "waiting for Redis",
    "mosquitto": "waiting for",
    "indiserver": "waiting for indiserver",
}


@pytest.mark.parametrize("name", list(CHAINS))
def test_chain_survives_kill_and_restart_of_every_part(name, tmp_path):
    missing = [factory for factory in NEEDS[name] if not hasattr(bridges, factory)]
    if missing:
        pytest.skip(f"not built yet: {missing}")
    chain = build_chain(name, tmp_path)
    try:
        parts = chain.part_names()
        for part in cycle_parts(chain, CYCLES_PER_PART * len(parts)):
            fault = chain.fault(part)
            assert chain.bridges_alive(), f"a bridge exited after {part} was killed"
            wait_for(lambda: all(b.ready for b in chain.bridges), timeout=15, what="bridges ready again")
            wait_for(
                lambda: not chain.store_problem(),
                timeout=10,
                what=f"store whole again after {part} restart ({chain.store_problem()})",
            )
            assert fault.recovery_seconds < 30
        result = account(chain.watcher.snapshot(), chain.outage_windows())
        assert result.lost_while_up == 0, result
        assert result.reordered == 0, result
        assert result.runs >= 1 and result.received > 1000, result
        if chain.mosquitto is not None and chain.redis is not None:
            # detected: every message missing across an outage was reported by a bridge, dropped while
            # its far side was down or lost on the broker as the receiver's sequence numbers showed
            # (repaired: the store was whole again after every fault, above)
            reported = sum(bridge.dropped() + bridge.lost() for bridge in chain.bridges)
            assert result.outage_gap <= reported, (result, reported)
        statuses = [status for bridge in chain.bridges for status in bridge.statuses()]
        for part in set(parts) & set(OUTAGE_STATUS):
            assert any(OUTAGE_STATUS[part] in status for status in statuses), (part, statuses)
        for bridge in chain.bridges:
            # one log line per state change, never one per retry
            outages = len(re.findall(r"unavailable", bridge.log))
            assert outages <= 2 * len(chain.faults), bridge.log[-3000:]
    finally:
        chain.stop()


def test_devices_that_vanished_while_indiserver_was_down_do_not_linger(tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_EPHEMERAL", "Ghost")  # the first indiserver's driver also defines "Ghost"
    chain = build_chain("inditoredis", tmp_path)
    try:
        wait_for(lambda: not chain.store_problem(devices=("Ghost", "Stream")), what="Ghost defined")
        monkeypatch.delenv("STANDIN_EPHEMERAL")  # the restarted one does not
        chain.fault("indiserver")
        wait_for(
            lambda: not chain.store_problem(devices=("Stream",)),
            timeout=10,
            what=f"Ghost's keys gone ({chain.store_problem()})",
        )
    finally:
        chain.stop()
