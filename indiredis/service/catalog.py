"""The services: each one's bridge, built from its validated settings by key name.

A service's settings become its bridge's one settings object (:mod:`indiredis.bridgeconfig`): every
field takes the value of the configuration key of the same name (the hosts as ``indi_host``,
``redis_host`` and ``mqtt_host``; a few values derived from keys of other names, see :func:`values`),
and parts such as :class:`~indiredis.bridgeconfig.Queues` are filled the same way.  Nothing restates
a bridge's signature: adding a key to a bridge means a field there and a key in the schema.

The bridges are imported when a bridge is built, not when this module is imported, so a service whose
bridge (or whose links) cannot be imported fails alone, with one line.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.bridge import Bridge
from ..errors import ServiceUnavailable
from .config import Settings

if TYPE_CHECKING:
    from ..bridgeconfig import BridgeConfig
    from ..links.indi_side.manager import GiveUp

T = TypeVar("T")
MIB = 1024 * 1024

#: options a running driver pool takes on reload without being rebuilt (see :func:`apply_in_place`)
POOL_RELOADABLE = ("drivers", "give_up_crashes", "give_up_seconds")


def give_up_policy(options: Mapping[str, Any]) -> GiveUp | None:
    """The give-up policy of ``[service] give_up_crashes`` and ``give_up_seconds`` (None: never)."""
    from ..links.indi_side.manager import GiveUp

    crashes = options["give_up_crashes"]
    return GiveUp(crashes, options["give_up_seconds"]) if crashes else None


def _retention(options: Mapping[str, Any]) -> Any:
    """The blob retention of ``blob_keep_files``, ``blob_keep_mb`` and ``blob_min_free_mb``."""
    from ..store.retention import Retention

    min_free = options["blob_min_free_mb"]
    return Retention(
        options["blob_keep_files"], options["blob_keep_mb"] * MIB, None if min_free < 0 else min_free * MIB
    )


def values(settings: Settings) -> dict[str, Any]:
    """Every value a bridge's settings may take, by field name: the ``[service]`` keys as they are,
    the hosts, and the values derived from keys of other names (only when the service has them)."""
    o = settings.options
    derived: dict[str, Any] = {
        "indi_host": settings.indi,
        "redis_host": settings.redis,
        "mqtt_host": settings.mqtt,
        "log_lengths": settings.log_lengths,
        "memory_budget": o["memory_budget_mb"] * MIB if "memory_budget_mb" in o else None,
        "blob_folder": o.get("blob_folder") or None,
        "blob_retention": _retention(o) if "blob_keep_files" in o else None,
        "manager_device": o.get("manager_device") or None,
        "give_up": give_up_policy(o) if "give_up_crashes" in o else None,
    }
    return {**o, **{name: value for name, value in derived.items() if value is not None}}


def by_name(kind: type[T], given: Mapping[str, Any]) -> T:
    """A settings dataclass ``kind`` with each field from ``given`` by name (a field missing there keeps
    its default); a field that is a part (:data:`~indiredis.bridgeconfig.PARTS`) is filled the same way."""
    from ..bridgeconfig import PARTS

    hints = typing.get_type_hints(kind)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(kind):  # type: ignore[arg-type]
        if not field.init:
            continue
        hint = hints[field.name]
        if hint in PARTS:
            fields[field.name] = by_name(hint, given)
        elif field.name in given:
            fields[field.name] = given[field.name]
    return kind(**fields)


def bridge_config(settings: Settings) -> BridgeConfig:
    """The settings object of the bridge ``settings.service`` runs."""
    from ..bridgeconfig import BRIDGE_CONFIGS

    return by_name(BRIDGE_CONFIGS[settings.service], values(settings))


def build_bridge(settings: Settings) -> Bridge:
    """The bridge a bridge service runs (nothing connects until it runs)."""
    try:
        from .. import bridges
    except ImportError as exc:
        raise ServiceUnavailable(f"the bridges cannot be imported: {exc}") from None
    return bridges.build(bridge_config(settings))


def apply_in_place(service: object, old: Settings, new: Settings) -> str | None:
    """On reload: when ``new`` differs from ``old`` only in what a running driver pool can take without
    being rebuilt (its drivers, its give-up policy; ``log_level`` aside), apply it to the running
    ``service`` and return a sentence for the log; else None (the service must be rebuilt).

    The drivers that stay keep running (same processes), and their devices stay connected.
    """
    from ..links.indi_side.drivers import DriverPool

    pool = getattr(service, "indi_side", None)
    if (
        old.same_service(new)
        or not isinstance(pool, DriverPool)
        or not set(POOL_RELOADABLE) <= set(old.options)
    ):
        return None
    carried = replace(old, options={**old.options, **{k: new.options[k] for k in POOL_RELOADABLE}})
    if not carried.same_service(new):
        return None
    pool.give_up = give_up_policy(new.options)
    added, removed = pool.set_drivers(list(new.options["drivers"]))
    changes = [f"started {' '.join(added)}"] * bool(added) + [f"stopped {' '.join(removed)}"] * bool(removed)
    return (
        f"drivers changed in place: {'; '.join(changes) or 'give-up policy updated'}; the others keep running"
    )
