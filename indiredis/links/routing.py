"""indiserver's routing rules, without I/O: who owns a device, who snoops what, BLOB policies.

Used by :mod:`.drivers` (which runs driver processes itself) and by the TCP
port link (one BLOB policy per connected client).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Hashable, Iterable, TypeVar

from ..protocol.messages import Message

D = TypeVar("D", bound=Hashable)

NEVER, ALSO, ONLY = "Never", "Also", "Only"


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
        return self.rules.get((device, name)) or self.rules.get((device, "")) or self.default

    def passes(self, message: Message) -> bool:
        """Whether ``message`` goes to this receiver."""
        mode = self.mode(message.device, message.name)
        if message.tag == "setBLOBVector":
            return mode != NEVER
        return mode != ONLY


@dataclass(frozen=True)
class Snoop:
    """A driver asked for another device's traffic (``name`` empty: every property)."""

    device: str
    name: str = ""

    def matches(self, message: Message) -> bool:
        return self.device == message.device and (not self.name or not message.name or self.name == message.name)


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

    def drop_snoops(self, message: Message) -> None:
        """A delProperty ends the matching snoop records (they are made anew by the next getProperties)."""
        if message.tag != "delProperty" or message.name:
            return
        for records in self.snoops.values():
            for record in [r for r in records if r.device == message.device]:
                records.discard(record)

    def snoopers(self, message: Message, exclude: D | None = None) -> Iterable[D]:
        """Drivers that asked for this message's traffic (BLOBs only with their enableBLOB)."""
        for driver, records in self.snoops.items():
            if driver == exclude or not any(r.matches(message) for r in records):
                continue
            policy = self.snoop_blobs.get(driver)
            if message.tag == "setBLOBVector" and (policy is None or not policy.passes(message)):
                continue
            yield driver

    def set_snoop_blobs(self, driver: D, message: Message) -> None:
        self.snoop_blobs.setdefault(driver, BlobPolicy()).update(message)
