"""The services: each one's bridge, built from its validated settings.

The bridge factories are looked up in :mod:`indiredis.bridges` when a bridge
is built, not when this module is imported, so a service whose factory is
missing (or whose links cannot be imported) fails alone, with one line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..core.bridge import Bridge
from ..errors import ServiceUnavailable
from .config import Settings

if TYPE_CHECKING:
    from ..links.instrument.manager import GiveUp

#: options a running driver pool takes on reload without being rebuilt (see :func:`apply_in_place`)
POOL_RELOADABLE = ("drivers", "give_up_crashes", "give_up_seconds")


def _blob_folder(settings: Settings) -> str | None:
    return settings.options.get("blob_folder") or None


def _blob_limit(settings: Settings) -> dict[str, Any]:
    return {"max_blob_size": settings.options["max_blob_size"]}


def _retention(options: dict[str, Any]) -> dict[str, Any]:
    """The blob retention keyword of the bridges into Redis (``blob_keep_files``, ``blob_keep_mb``,
    ``blob_min_free_mb``)."""
    from ..store.retention import Retention

    min_free = options["blob_min_free_mb"]
    return {
        "blob_retention": Retention(
            options["blob_keep_files"],
            options["blob_keep_mb"] * 1024 * 1024,
            None if min_free < 0 else min_free * 1024 * 1024,
        )
    }


def _pool(options: dict[str, Any]) -> dict[str, Any]:
    """The driver pool's keywords: its device name and give-up policy."""
    return {
        "manager_device": options["manager_device"] or None,
        "give_up": give_up_policy(options),
    }


def give_up_policy(options: dict[str, Any]) -> GiveUp | None:
    """The give-up policy of ``[service] give_up_crashes`` and ``give_up_seconds`` (None: never)."""
    from ..links.instrument.manager import GiveUp

    crashes = options["give_up_crashes"]
    return GiveUp(crashes, options["give_up_seconds"]) if crashes else None


def _arguments(settings: Settings) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The factory's arguments for ``settings.service``, in the agreed signatures (see bridges.py)."""
    s, o = settings, settings.options
    every = {
        "max_message_size": o["max_message_size"],
        "buffer_size": o["buffer_size"],
        "memory_budget": o["memory_budget_mb"] * 1024 * 1024,
    }  # keywords of every bridge
    table: dict[str, Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]] = {
        "inditoredis": lambda: (
            (s.indi, s.redis, s.log_lengths, _blob_folder(s)),
            {**_blob_limit(s), **_retention(o)},
        ),
        "driverstoredis": lambda: (
            (o["drivers"], s.redis, s.log_lengths, _blob_folder(s)),
            {**_pool(o), **_blob_limit(s), **_retention(o)},
        ),
        "inditomqtt": lambda: ((s.indi, o["mqtt_id"], s.mqtt, o["subscribe_list"]), {}),
        "driverstomqtt": lambda: ((o["drivers"], o["mqtt_id"], s.mqtt, o["subscribe_list"]), _pool(o)),
        "mqtttoredis": lambda: (
            (o["mqtt_id"], s.mqtt, s.redis, s.log_lengths, _blob_folder(s)),
            {"subscribe_list": o["subscribe_list"], **_blob_limit(s), **_retention(o)},
        ),
        "mqtttoport": lambda: (
            (o["mqtt_id"], s.mqtt, o["listen_port"], o["listen_host"]),
            {"subscribe_list": o["subscribe_list"], "max_clients": o["max_clients"]},
        ),
    }
    args, own = table[settings.service]()
    if "mqtt_batching" in o:  # the MQTT bridges
        own = {**own, "mqtt_batching": o["mqtt_batching"]}
    return args, {**every, **own}


def factory(service: str) -> Callable[..., Bridge]:
    """``indiredis.bridges.make_<service>``, imported now; :class:`ServiceUnavailable` when it is missing."""
    try:
        bridges = importlib.import_module("indiredis.bridges")
    except ImportError as exc:
        raise ServiceUnavailable(f"the bridges cannot be imported: {exc}") from None
    make: Callable[..., Bridge] | None = getattr(bridges, f"make_{service}", None)
    if make is None:
        raise ServiceUnavailable(
            f"this installation has no {service} bridge (indiredis.bridges.make_{service})"
        )
    return make


def build_bridge(settings: Settings) -> Bridge:
    """The bridge a bridge service runs (nothing connects until it runs)."""
    args, kwargs = _arguments(settings)
    return factory(settings.service)(*args, **kwargs)


def apply_in_place(service: object, old: Settings, new: Settings) -> str | None:
    """On reload: when ``new`` differs from ``old`` only in what a running driver pool can take without
    being rebuilt (its drivers, its give-up policy; ``log_level`` aside), apply it to the running
    ``service`` and return a sentence for the log; else None (the service must be rebuilt).

    The drivers that stay keep running (same processes), and their devices stay connected.
    """
    from ..links.instrument.drivers import DriverPool

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
