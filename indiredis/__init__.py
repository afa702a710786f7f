"""indiredis: bridges between INDI instruments, Redis and MQTT.

Public API: the host tuples and the bridge functions.
"""

from .bridges import driverstoredis, inditoredis
from .hosts import indi_server, mqtt_server, redis_server

__version__ = "0.1.0"

__all__ = ["driverstoredis", "indi_server", "inditoredis", "mqtt_server", "redis_server", "__version__"]
