"""The services: each one's bridge, built from its validated settings."""

from __future__ import annotations

from typing import Callable

from .. import bridges
from ..bridge import Bridge
from .config import Settings


def _blob_folder(settings: Settings) -> str | None:
    return settings.options.get("blob_folder") or None


BUILDERS: dict[str, Callable[[Settings], Bridge]] = {
    "inditoredis": lambda s: bridges.make_inditoredis(
        s.indi, s.redis, s.log_lengths, _blob_folder(s), s.options["max_message_size"]),  # type: ignore[arg-type]
    "driverstoredis": lambda s: bridges.make_driverstoredis(
        s.options["drivers"], s.redis, s.log_lengths, _blob_folder(s), s.options["max_message_size"]),  # type: ignore[arg-type]
    "inditomqtt": lambda s: bridges.make_inditomqtt(
        s.indi, s.options["mqtt_id"], s.mqtt, s.options["subscribe_list"], s.options["max_message_size"]),  # type: ignore[arg-type]
    "driverstomqtt": lambda s: bridges.make_driverstomqtt(
        s.options["drivers"], s.options["mqtt_id"], s.mqtt, s.options["subscribe_list"],  # type: ignore[arg-type]
        s.options["max_message_size"]),
    "mqtttoredis": lambda s: bridges.make_mqtttoredis(
        s.options["mqtt_id"], s.mqtt, s.redis, s.log_lengths, _blob_folder(s),  # type: ignore[arg-type]
        s.options["max_message_size"], s.options["subscribe_list"]),
    "mqtttoport": lambda s: bridges.make_mqtttoport(
        s.options["mqtt_id"], s.mqtt, s.options["listen_port"], s.options["listen_host"],  # type: ignore[arg-type]
        s.options["max_message_size"], s.options["subscribe_list"]),
}


def build_bridge(settings: Settings) -> Bridge:
    """The bridge a bridge service runs."""
    return BUILDERS[settings.service](settings)
