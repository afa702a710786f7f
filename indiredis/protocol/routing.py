"""indiserver's routing rules, without I/O: who owns a device, who snoops what, BLOB policies.

Used by the driver pool (``links/indi_side/drivers.py``, which runs driver
processes itself), by the TCP port link (one BLOB policy per connected
client, and :class:`BlobDemand`: what the port asks of the single upstream
on behalf of all of them) and by the MQTT instrument side (one BLOB policy per
client side, :class:`ClientBlobPolicies`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .messages import EnableBLOB, Message, SetBLOBVector
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
        instruction = message.instruction if isinstance(message, EnableBLOB) else NEVER
        self.set(message.device, message.name, instruction)

    def set(self, device: str, name: str, instruction: str) -> None:
        """Set the choice for a device (``name`` empty: it replaces the property ones) or one property."""
        if not name:
            for key in [k for k in self.rules if k[0] == device]:
                del self.rules[key]
        self.rules[(device, name)] = instruction

    def mode(self, device: str, name: str) -> str:
        """The choice for one property: its own, else its device's, else the default."""
        return self.rules.get((device, name)) or self.device_mode(device)

    def device_mode(self, device: str) -> str:
        """The choice for a device as a whole: its device-wide rule, else the default."""
        return self.rules.get((device, "")) or self.default

    def passes(self, message: Message) -> bool:
        """Whether ``message`` goes to this receiver.

        BLOB data (``setBLOBVector``) follows the property's choice; every other message is
        withheld only by a device-wide ``Only`` (a property's ``Only`` never hides the device's
        other traffic, as in indiserver).
        """
        if isinstance(message, SetBLOBVector):
            return self.mode(message.device, message.name) != NEVER
        return self.device_mode(message.device) != ONLY


def _union(modes: Iterable[str]) -> str:
    """``Also`` when any receiver wants BLOBs (``Also`` or ``Only``), else ``Never``."""
    return ALSO if any(mode != NEVER for mode in modes) else NEVER


BlobRequest = tuple[str, str, str]  # (device, property or '' for the whole device, instruction)


class BlobDemand:
    """What one upstream is asked for, on behalf of many receivers each with its own :class:`BlobPolicy`.

    The port has one upstream (one shared connection) and many clients.  The upstream is asked for
    ``Also`` wherever at least one client wants BLOBs (its ``Also`` or its ``Only``), ``Never``
    everywhere else, and never for ``Only``: every client's other traffic still has to flow, each
    client's own choice is applied locally.  :meth:`requests` gives the enableBLOB requests that
    bring the upstream from what was asked before to what the clients want now (so the last client
    to leave brings it back to ``Never``); :meth:`restore` repeats what is asked for a device, for an
    upstream that restarted and forgot it.  The upstream applies requests as :class:`BlobPolicy`
    does (a device-wide request replaces the device's property rules).
    """

    def __init__(self) -> None:
        self.asked: dict[tuple[str, str], str] = {}  # what the upstream holds, as we asked it

    def requests(self, policies: list[BlobPolicy]) -> list[BlobRequest]:
        """The enableBLOB requests that make the upstream match ``policies``; noted as asked."""
        keys = set(self.asked) | {key for policy in policies for key in policy.rules}
        requests: list[BlobRequest] = []
        for device in sorted({device for device, _ in keys}):
            wanted = _union(p.device_mode(device) for p in policies)
            if wanted != self.asked.get((device, ""), NEVER):
                requests.append((device, "", wanted))  # this clears the device's property rules upstream
                for key in [k for k in self.asked if k[0] == device]:
                    del self.asked[key]
            for name in sorted(name for d, name in keys if d == device and name):
                instruction = _union(p.mode(device, name) for p in policies)
                if instruction != self.asked.get((device, name), wanted):
                    requests.append((device, name, instruction))
                if instruction == wanted:  # a property rule equal to the device's says nothing
                    self.asked.pop((device, name), None)
                else:
                    self.asked[(device, name)] = instruction
            if wanted == NEVER and not any(d == device and n for d, n in self.asked):
                self.asked.pop((device, ""), None)  # back to the upstream's default
            else:
                self.asked[(device, "")] = wanted
        return requests

    def wants(self, device: str, name: str) -> bool:
        """Whether BLOBs of this property are asked of the upstream."""
        return (self.asked.get((device, name)) or self.asked.get((device, ""), NEVER)) != NEVER

    def restore(self, device: str | None = None) -> list[BlobRequest]:
        """What was asked for ``device`` (None: every device), device-wide requests first, for an
        upstream that restarted (a device-wide ``Never`` is its default: not repeated)."""
        ordered = sorted(self.asked.items(), key=lambda item: (item[0][0], item[0][1] != "", item[0][1]))
        return [(d, n, i) for (d, n), i in ordered if (device is None or d == device) and (n or i != NEVER)]


#: client sides whose BLOB policies an instrument side remembers (see :class:`ClientBlobPolicies`)
CLIENT_SIDES_KEPT = 256


class ClientBlobPolicies:
    """The BLOB policies of the client sides behind one upstream, each kept under its own name (the MQTT
    instrument side keys them by the MQTT id of the client side, from the ``T/<id>`` topic it asks on).

    A client side's ``enableBLOB`` changes only its own :class:`BlobPolicy`; the upstream is asked for the
    union (:class:`BlobDemand`: ``Also`` wherever one of them wants BLOBs, ``Never`` elsewhere, never
    ``Only``), so one client side that stops wanting BLOBs never stops them for another.  A client side
    whose choices are all ``Never`` again asks for nothing and is forgotten; one that leaves wanting
    BLOBs is remembered (nothing on MQTT says a client side left for good), which costs bandwidth and
    never a frame.  At most :data:`CLIENT_SIDES_KEPT` client sides are remembered: beyond that (many
    ids, as from a stranger on a shared broker without an ACL) the one that asked least recently is
    forgotten.
    """

    def __init__(self, kept: int | None = None) -> None:
        self.policies: dict[str, BlobPolicy] = {}  # in the order they last asked
        self.kept = CLIENT_SIDES_KEPT if kept is None else kept
        self.demand = BlobDemand()

    def update(self, client: str, message: Message) -> tuple[list[BlobRequest], list[str]]:
        """Apply ``client``'s ``enableBLOB``; return the requests that bring the upstream to the union,
        and the client sides forgotten to make room (beyond :attr:`kept`: the caller logs them)."""
        policy = self.policies.pop(client, None) or BlobPolicy()
        policy.update(message)
        evicted: list[str] = []
        if policy.default != NEVER or any(mode != NEVER for mode in policy.rules.values()):
            self.policies[client] = policy  # remembered, as the newest; back to the default: forgotten
            while len(self.policies) > self.kept:
                oldest = next(iter(self.policies))
                del self.policies[oldest]
                evicted.append(oldest)
        return self.demand.requests(list(self.policies.values())), evicted

    def wanted(self, message: Message) -> bool:
        """Whether some client side wants ``message``: BLOB data (``setBLOBVector``) when one of them
        asked for that property's BLOBs; every other message always (whoever asked ``Only`` still shares
        the topic with the others)."""
        if not isinstance(message, SetBLOBVector):
            return True
        return any(policy.passes(message) for policy in self.policies.values())

    def restore(self, device: str | None = None) -> list[BlobRequest]:
        """What the upstream was asked for ``device`` (None: every device), for an upstream that
        restarted or reconnected and forgot it."""
        return self.demand.restore(device)


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

    def add_snoop(self, driver: D, device: str, name: str) -> bool:
        """Record that ``driver`` snoops ``device`` (``name`` empty: every property); True if new."""
        records = self.snoops.setdefault(driver, set())
        new = Snoop(device, name) not in records
        records.add(Snoop(device, name))
        return new

    def snoop_request(self, driver: D, message: Message) -> list[D] | None:
        """Record a driver's ``getProperties`` as a snoop and say which drivers the request goes to.

        To the device's owner, the asking driver included: indiserver echoes a driver's request
        for its own device, and the answer (its own definitions) is then its own snoop data.  A
        driver gets its own request back only the first time it asks for that device and property,
        so one that asks again on every getProperties it receives cannot loop.  ``[]``: nothing to
        pass on; None: no local driver owns the device (perhaps one that has not spoken yet, or
        another observatory's).
        """
        if not message.device:
            return []
        new = self.add_snoop(driver, message.device, message.name)
        owner = self.owners.get(message.device)
        if owner is None:
            return None
        return [owner] if owner != driver or new else []

    def snoopers(self, message: Message) -> Iterable[D]:
        """Drivers that asked for this message's traffic, filtered by their own enableBLOB choices
        (BLOB data only after an ``Also`` or ``Only``).

        The driver that sent the message is one of them when it snoops its own device (the CCD
        simulator's filter wheel is the camera device itself): indiserver sends it its own traffic.
        What a driver receives this way is never routed again, so this cannot loop.  Snoop records
        outlive a ``delProperty`` of the snooped device and a restart of its driver, as in
        indiserver: drivers ask once, at start, and expect the traffic whenever it flows.
        """
        for driver, records in self.snoops.items():
            if not any(r.matches(message) for r in records):
                continue
            if self.snoop_blobs.get(driver, _NEVER).passes(message):
                yield driver

    def set_snoop_blobs(self, driver: D, message: Message) -> None:
        """Apply a snooping driver's own ``enableBLOB`` (which BLOBs of other devices it wants)."""
        self.snoop_blobs.setdefault(driver, BlobPolicy()).update(message)
