"""Where each message of the driver pool goes, without I/O: indiserver's rules (:mod:`...protocol.routing`)
applied to the pool's drivers, its clients and its own Driver Manager device.

:class:`DriverRoutes` answers, for a message from a driver or from the client side, with a :class:`Route`
the pool carries out; the message's class (:mod:`...protocol.messages`) decides its route.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ...protocol.messages import (
    Definition,
    DelProperty,
    EnableBLOB,
    GetProperties,
    IndiMessage,
    Message,
    NewVector,
    PingRequest,
    SetVector,
)
from ...protocol.routing import BlobPolicy, Router

D = TypeVar("D", bound=Hashable)


@dataclass(frozen=True)
class Route(Generic[D]):
    """What to do with one message."""

    drivers: tuple[D, ...] = ()  # the drivers it goes to
    clients: bool = False  # it goes to the client side (``from_indi``)
    definitions: bool = False  # the Driver Manager device's definitions answer it
    manager: bool = False  # a request to the Driver Manager device
    ping_reply: bool = False  # the sender gets a pingReply
    unowned: bool = False  # a request for a device no driver owns: dropped (and logged)
    unexpected: bool = False  # a message drivers do not send: ignored (and logged)


class BlobRoute(enum.Enum):
    """Where the data of a BLOB a driver sends goes."""

    WHOLE = enum.auto()  # a snooping driver wants it: buffered whole in the message, as sent
    WITHHELD = enum.auto()  # the client side's enableBLOB withholds it: dropped as it streams
    STREAMED = enum.auto()  # streamed to the client side's sink (the blob folder)


class DriverRoutes(Generic[D]):
    """Device ownership, snoop records and the client side's BLOB policy of a pool of drivers ``D``.

    ``forward_snoop_requests``: a driver's getProperties for a device no local driver owns is also
    put on ``from_indi`` (the MQTT instrument side asks the rest of the network for it).
    """

    def __init__(self, manager_device: str, *, forward_snoop_requests: bool) -> None:
        self.router: Router[D] = Router()
        self.client_blobs = BlobPolicy()  # the client side's enableBLOB choices (Never by default)
        self.manager_device = manager_device
        self.forward_snoop_requests = forward_snoop_requests

    def from_driver(self, sender: D, message: Message, drivers: Sequence[D]) -> Route[D]:
        """Where a message from the driver ``sender`` goes (``drivers``: every configured driver)."""
        match message:
            case GetProperties():
                return self._snoop_request(sender, message, drivers)
            case PingRequest():  # drivers wait for the reply before sending more BLOB data
                return Route(ping_reply=True)
            case EnableBLOB():
                self.router.set_snoop_blobs(sender, message)
                return Route()
            case Definition() | SetVector() | IndiMessage() | DelProperty():
                self.router.learn(sender, message)
                return Route(self.snoopers(message), clients=self.client_blobs.passes(message))
            case _:
                return Route(unexpected=True)

    def _snoop_request(self, sender: D, message: Message, drivers: Sequence[D]) -> Route[D]:
        """A driver's getProperties: recorded as a snoop, passed to the device's owner; while no local
        driver owns the device, to every other driver (and forwarded, see the class)."""
        targets = self.router.snoop_request(sender, message)
        if message.device and message.device == self.manager_device:  # the pool's own device answers
            return Route(definitions=True)
        if targets is None:  # perhaps a driver that has not spoken yet, or another observatory
            others = tuple(driver for driver in drivers if driver != sender)
            return Route(others, clients=self.forward_snoop_requests)
        return Route(tuple(targets))

    def from_client(self, message: Message, drivers: Sequence[D]) -> Route[D]:
        """Where a message from the client side goes (``drivers``: every configured driver)."""
        owner = self.router.owner(message.device) if message.device else None
        match message:
            case EnableBLOB():
                self.client_blobs.update(message)
                return Route()
            case GetProperties() if message.device == self.manager_device:
                return Route(definitions=True)
            case _ if message.device == self.manager_device:
                return Route(manager=True)
            case GetProperties():  # without a device, the Driver Manager answers too
                targets = (owner,) if owner is not None else tuple(drivers)
                return Route(targets, definitions=not message.device, unowned=not targets)
            case NewVector():
                return Route((owner,)) if owner is not None else Route(unowned=True)
            case Definition() | SetVector() | IndiMessage() | DelProperty() if owner is None:  # snoop data
                return Route(self.snoopers(message))
            case _:
                return Route()

    def snoopers(self, message: Message) -> tuple[D, ...]:
        """The drivers that snoop this message (see :meth:`Router.snoopers`)."""
        return tuple(self.router.snoopers(message))

    def blob_route(self, message: Message) -> BlobRoute:
        """Where the data of a BLOB vector a driver is sending goes (``message``: its attributes)."""
        if self.snoopers(message):
            return BlobRoute.WHOLE
        return BlobRoute.STREAMED if self.client_blobs.passes(message) else BlobRoute.WITHHELD

    def forget(self, driver: D) -> list[str]:
        """The driver is gone: its devices (no longer owned) and its snoop records are dropped."""
        return self.router.forget(driver)
