"""The services: each one's bridge, built from its validated settings.

The bridge factories are looked up in :mod:`indiredis.bridges` when a bridge
is built, not when this module is imported, so a service whose factory is
missing (or whose links cannot be imported) fails alone, with one line.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from ..core.bridge import Bridge
from ..errors import ServiceUnavailable
from .config import Settings


def _blob_folder(settings: Settings) -> str | None:
    return settings.options.get("blob_folder") or None


def _arguments(settings: Settings) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The factory's arguments for ``settings.service``, in the agreed signatures (see bridges.py)."""
    s, o = settings, settings.options
    every = {
        "max_message_size": o["max_message_size"],
        "buffer_size": o["buffer_size"],
    }  # keywords of every bridge
    table: dict[str, Callable[[], tuple[tuple[Any, ...], dict[str, Any]]]] = {
        "inditoredis": lambda: ((s.indi, s.redis, s.log_lengths, _blob_folder(s)), {}),
        "driverstoredis": lambda: ((o["drivers"], s.redis, s.log_lengths, _blob_folder(s)), {}),
        "inditomqtt": lambda: ((s.indi, o["mqtt_id"], s.mqtt, o["subscribe_list"]), {}),
        "driverstomqtt": lambda: ((o["drivers"], o["mqtt_id"], s.mqtt, o["subscribe_list"]), {}),
        "mqtttoredis": lambda: (
            (o["mqtt_id"], s.mqtt, s.redis, s.log_lengths, _blob_folder(s)),
            {"subscribe_list": o["subscribe_list"]},
        ),
        "mqtttoport": lambda: (
            (o["mqtt_id"], s.mqtt, o["listen_port"], o["listen_host"]),
            {"subscribe_list": o["subscribe_list"]},
        ),
    }
    args, own = table[settings.service]()
    return args, {**every, **own}


def factory(service: str) -> Callable[..., Bridge]:
    """``indiredis.bridges.make_<service>``, imported now; :class:`ServiceUnavailable` when it is missing."""
    try:
        bridges = importlib.import_module("indiredis.bridges")
    except ImportError as exc:
        raise ServiceUnavailable(f"the bridges cannot be imported: {exc}") from None
    make = getattr(bridges, f"make_{service}", None)
    if make is None:
        raise ServiceUnavailable(
            f"this installation has no {service} bridge (indiredis.bridges.make_{service})"
        )
    return make  # type: ignore[no-any-return]


def build_bridge(settings: Settings) -> Bridge:
    """The bridge a bridge service runs (nothing connects until it runs)."""
    args, kwargs = _arguments(settings)
    return factory(settings.service)(*args, **kwargs)
