"""Loss accounting for the fault chains: the numbered messages a watcher saw, and what they say.

Within one run of the stand-in driver (``standin_driver.py``) the numbers are dense, and each message
carries its send time.  A number that never arrived, whose nearest received neighbours were both sent
while every part was up, was *lost while up*: the one figure that must be zero.  Numbers missing across
a fault window are *outage gaps*; the bridges must either deliver them later or count them in their log
("dropped N messages ...").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise

#: Before a kill, messages sent this close to it may be in flight inside the killed part (and so may
#: every one sent after the newest delivered before it: :func:`in_flight_since`).
IN_FLIGHT_MARGIN = 0.25

_MESSAGE = re.compile(rb"<setNumberVector[^>]*>.*?</setNumberVector>", re.S)
_TIMESTAMP = re.compile(rb'timestamp="([^"]+)"')
_RUN = re.compile(rb'name="RUN"\s*>\s*([0-9.]+)')
_SEQ = re.compile(rb'name="N"\s*>\s*([0-9.]+)')


@dataclass(frozen=True)
class Arrival:
    """One numbered message seen by the watcher."""

    run: int
    number: int
    sent: float  # epoch seconds, from the INDI timestamp
    arrived: float  # epoch seconds


def parse_arrivals(data: bytes, now: float) -> list[Arrival]:
    """The numbered stand-in messages in ``data`` (whole messages only)."""
    arrivals = []
    for match in _MESSAGE.finditer(data):
        text = match.group(0)
        stamp, run, number = _TIMESTAMP.search(text), _RUN.search(text), _SEQ.search(text)
        if not (stamp and run and number):
            continue
        sent = datetime.fromisoformat(stamp.group(1).decode()).replace(tzinfo=UTC).timestamp()
        arrivals.append(Arrival(int(float(run.group(1))), int(float(number.group(1))), sent, now))
    return arrivals


def in_flight_since(arrivals: Sequence[Arrival], killed: float) -> float:
    """When the oldest message that may have been inside the chain at ``killed`` was sent: the chain
    delivers in order, so every message sent after the newest one delivered by then was still in one of
    its parts, perhaps the killed one; and those sent within :data:`IN_FLIGHT_MARGIN` of the kill may
    have been on their way into it.  A chain that keeps up gives ``killed - IN_FLIGHT_MARGIN``; one still
    catching up (the backlog of a start or of the fault before) an earlier time, by its lag."""
    delivered = max((a.sent for a in arrivals if a.arrived <= killed), default=killed)
    return min(killed - IN_FLIGHT_MARGIN, delivered)


def _in_outage(moment: float, windows: Sequence[tuple[float, float]]) -> bool:
    return any(start <= moment <= end for start, end in windows)


@dataclass
class Account:
    """What the watcher's record says about loss and order."""

    received: int = 0
    runs: int = 0
    lost_while_up: int = 0
    outage_gap: int = 0
    reordered: int = 0
    duplicates: int = 0
    lost_examples: list[tuple[int, int]] = field(default_factory=list)


def account(arrivals: Sequence[Arrival], windows: Sequence[tuple[float, float]]) -> Account:
    """Count losses while every part was up, outage gaps, reorderings and duplicates."""
    result = Account(received=len(arrivals))
    by_run: dict[int, list[Arrival]] = {}
    for arrival in arrivals:
        by_run.setdefault(arrival.run, []).append(arrival)
    result.runs = len(by_run)
    for run, items in by_run.items():
        highest = 0
        delivered: set[int] = set()
        for item in items:  # arrival order
            if item.number in delivered:
                # a repeat: what was in flight at a kill is delivered again during the recovery (Redis ran
                # the pipeline but its answer was lost with it); out of order only arriving while all was up
                if not _in_outage(item.arrived, windows):
                    result.reordered += 1
            elif item.number < highest and not _in_outage(item.sent, windows):
                result.reordered += 1
            highest = max(highest, item.number)
            delivered.add(item.number)
        sent_at: dict[int, float] = {}
        for item in items:
            if item.number in sent_at:
                result.duplicates += 1
            sent_at[item.number] = item.sent
        numbers = sorted(sent_at)
        for low, high in pairwise(numbers):
            missing = high - low - 1
            if missing <= 0:
                continue
            start, end = sent_at[low], sent_at[high]
            crosses_outage = any(s <= end and start <= e for s, e in windows)
            if crosses_outage:
                result.outage_gap += missing
            else:
                result.lost_while_up += missing
                if len(result.lost_examples) < 5:
                    result.lost_examples.append((run, low + 1))
    return result
