"""indiserver's routing rules, without I/O: who owns a device, who snoops what, BLOB policies.

Used by :mod:`.drivers` (which runs driver processes itself) and by the TCP
port link (one BLOB policy per connected client).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .messages import Message
from .vocabulary import BlobInstruction

D = TypeVar("D", bound=Hashable)

NEVER, ALSO, ONLY = BlobInstruction.NEVER, BlobInstruction.ALSO, BlobInstruction.ONLY


@dataclass
class BlobPolicy:
    """One receiver's enableBLOB choices, per device and per property (indiserver semantics).

    Default ``Never``: BLOB messages are withheld, everything else passes;
    ``Also``: everything passes; ``Only``: BLOB messages only.
    """

    default: str = NEVER
    rules: dict[tuple[str, str], str] = field(default_factory=dict)

    def update(self, message: Message) -> None:
        """Apply an ``enableBLOB`` message."""
        instruction = message.attrs.get("instruction", NEVER)
        if instruction not in (NEVER, ALSO, ONLY):
            instruction = NEVER
        if not message.name:  # a device-wide choice replaces the property ones
            for key in [k for k in self.rules if k[0] == message.device]:
                del self.rules[key]
        self.rules[(message.device, message.name)] = instruction

    def mode(self, device: str, name: str) -> str:
        """The choice for one property: its own, else its device's, else the default."""
        return self.rules.get((device, name)) or self.rules.get((device, "")) or self.default

    def passes(self, message: Message) -> bool:
        """Whether ``message`` goes to this receiver.

        BLOB data (``setBLOBVector``) follows the property's choice; every other message is
        withheld only by a device-wide ``Only`` (a property's ``Only`` never hides the device's
        other traffic, as in indiserver).
        """
        if message.tag == "setBLOBVector":
            return self.mode(message.device, message.name) != NEVER
        return (self.rules.get((message.device, "")) or self.default) != ONLY


@dataclass(frozen=True)
class Snoop:
    """A driver asked for another device's traffic (``name`` empty: every property)."""

    device: str
    name: str = ""

    def matches(self, message: Message) -> bool:
        return self.device == message.device and (
            not self.name or not message.name or self.name == message.name
        )


_NEVER = BlobPolicy()  # the choice of a snooper that sent no enableBLOB; never updated


class Router(Generic[D]):
    """Device ownership and snoop records for a set of drivers of type ``D``."""

    def __init__(self) -> None:
        self.owners: dict[str, D] = {}
        self.snoops: dict[D, set[Snoop]] = {}
        self.snoop_blobs: dict[D, BlobPolicy] = {}

    def learn(self, driver: D, message: Message) -> None:
        """Note that ``driver`` speaks for the message's device."""
        if message.device and message.device not in self.owners:
            self.owners[message.device] = driver
            # a driver may ask for its own device before defining it: that is no snoop
            own = {r for r in self.snoops.get(driver, set()) if r.device == message.device}
            self.snoops.get(driver, set()).difference_update(own)

    def owner(self, device: str) -> D | None:
        return self.owners.get(device)

    def owned_by(self, driver: D) -> list[str]:
        return sorted(device for device, owner in self.owners.items() if owner == driver)

    def forget(self, driver: D) -> list[str]:
        """The driver is gone: drop its devices and its snoop records; return the devices."""
        devices = self.owned_by(driver)
        for device in devices:
            del self.owners[device]
        self.snoops.pop(driver, None)
        self.snoop_blobs.pop(driver, None)
        return devices

    def add_snoop(self, driver: D, device: str, name: str) -> None:
        self.snoops.setdefault(driver, set()).add(Snoop(device, name))

    def snoopers(self, message: Message, exclude: D | None = None) -> Iterable[D]:
        """Drivers that asked for this message's traffic, filtered by their own enableBLOB choices
        (BLOB data only after an ``Also`` or ``Only``).

        Snoop records outlive a ``delProperty`` of the snooped device and a restart of its driver,
        as in indiserver: drivers ask once, at start, and expect the traffic whenever it flows.
        """
        for driver, records in self.snoops.items():
            if driver == exclude or not any(r.matches(message) for r in records):
                continue
            if self.snoop_blobs.get(driver, _NEVER).passes(message):
                yield driver

    def set_snoop_blobs(self, driver: D, message: Message) -> None:
        """Apply a snooping driver's own ``enableBLOB`` (which BLOBs of other devices it wants)."""
        self.snoop_blobs.setdefault(driver, BlobPolicy()).update(message)
