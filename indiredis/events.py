"""What an operator can ask the journal: a stable ``MESSAGE_ID`` per kind of state change, and the
structured fields a log line carries.

A log call names what it concerns with ``extra=journal_fields(...)``; under systemd
:mod:`indiredis.service.logsetup` sends those fields to the journal with the record, so that
``journalctl MESSAGE_ID=<id>`` lists every reconnect on a host and ``journalctl INDI_DEVICE=CCD``
everything about one camera.  In a terminal they are not shown.  ``docs/journal.md`` and the manual
pages list them; this module is their one definition (low-level: links, store and service use it).
"""

from __future__ import annotations

import enum


class Event(enum.StrEnum):
    """The kinds of state change, each with its ``MESSAGE_ID`` (a UUID, as journalctl shows it)."""

    LINK_LOST = "9d79327acbbe4c3f9ff9f871f05de264"
    LINK_RESTORED = "e4bf9e6d62f94b0a967a33063b61c5cf"
    DRIVER_CRASHED = "c29043d5cedb44bb9f15c0f6c1bf9eb7"
    MESSAGES_DROPPED = "c05f8963cd344476808864ad28d22e23"
    CONFIG_ERROR = "207968f1f7ed432c99edcd9dbf281237"
    REDIS_MASTER = "5b0e4f1c8a7d4e6b9c2f3a1d7e8b6c40"


EVENT_MEANINGS = {
    Event.LINK_LOST: "a link lost its connection (or could not connect)",
    Event.LINK_RESTORED: "a link is connected again after a loss",
    Event.DRIVER_CRASHED: "a driver process ended; it is restarted",
    Event.MESSAGES_DROPPED: "messages were dropped while their consumer was unreachable or not reading",
    Event.CONFIG_ERROR: "a configuration was refused (at start: exit status 78; on reload: kept the old one)",
    Event.REDIS_MASTER: "Redis Sentinel: the master a bridge writes to, when first found and when it changed",
}

FIELD_MEANINGS = {
    "INDIREDIS_BRIDGE": "the bridge: its service name, or the instance name of a template unit (dome2)",
    "INDIREDIS_LINK": "the link concerned: indiserver, redis, mqtt, port or driver",
    "INDIREDIS_PEER": "the host:port that link talks to",
    "INDI_DRIVER": "the driver executable's name",
    "INDI_DEVICE": "the INDI device",
    "INDI_PROPERTY": "the INDI property (vector)",
}


def host_port(host: str, port: int) -> str:
    """``host:port`` for ``INDIREDIS_PEER`` (``[::1]:6379`` for an IPv6 address)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def journal_fields(
    event: Event | None = None,
    *,
    link: str = "",
    peer: str = "",
    driver: str = "",
    device: str = "",
    prop: str = "",
) -> dict[str, str]:
    """The ``extra=`` of a log call: the journal fields that apply (empty ones are left out)."""
    fields = {
        "MESSAGE_ID": event.value if event else "",
        "INDIREDIS_LINK": link,
        "INDIREDIS_PEER": peer,
        "INDI_DRIVER": driver,
        "INDI_DEVICE": device,
        "INDI_PROPERTY": prop,
    }
    return {name: value for name, value in fields.items() if value}
