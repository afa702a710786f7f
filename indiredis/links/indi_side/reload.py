"""The driver pool's reload, as a pure function: which drivers stay, which start, which stop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import InvalidValue
from .manager import driver_key
from .process import DriverProcess


@dataclass(frozen=True)
class DriverPlan:
    """A new list of drivers: ``drivers`` in the configured order (those kept are the same objects),
    ``added`` (new, not started) and ``removed`` (to stop)."""

    drivers: list[DriverProcess]
    added: list[DriverProcess]
    removed: list[DriverProcess]


def plan_drivers(current: Sequence[DriverProcess], executables: Sequence[str]) -> DriverPlan:
    """Match ``executables`` against the ``current`` drivers, by executable, as many times as each is
    listed: the drivers that stay keep running untouched.  A new driver gets a key no other driver has
    (``indi_x``, ``indi_x_2`` ...); ValueError when ``executables`` is empty."""
    if not executables:
        raise InvalidValue("driverstoredis needs at least one driver executable")
    drivers: list[DriverProcess] = []
    unmatched = list(current)
    added: list[DriverProcess] = []
    for executable in executables:
        same = next((d for d in unmatched if d.executable == executable), None)
        if same is not None:
            unmatched.remove(same)
            drivers.append(same)
        else:
            taken = [d.key for d in current] + [d.key for d in added]
            fresh = DriverProcess(executable, driver_key(Path(executable).name, taken))
            added.append(fresh)
            drivers.append(fresh)
    return DriverPlan(drivers, added, unmatched)
