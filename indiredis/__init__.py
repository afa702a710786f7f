"""indiredis: bridges between INDI instruments, Redis and MQTT.

Public API: the host tuples and the bridge functions.
"""

from .bridges import driverstomqtt, driverstoredis, inditomqtt, inditoredis, mqtttoport, mqtttoredis
from .hosts import indi_server, mqtt_server, redis_server

__version__ = "0.1.0"

__all__ = [
    "driverstomqtt",
    "driverstoredis",
    "indi_server",
    "inditomqtt",
    "mqtttoport",
    "mqtttoredis",
    "inditoredis",
    "mqtt_server",
    "redis_server",
    "__version__",
]
