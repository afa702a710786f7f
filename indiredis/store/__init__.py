"""The Redis key space: key names, the message-applying store and BLOB files."""

from .blobs import BlobFolder, safe_name_part
from .keys import DEFAULT_LOG_LENGTHS, KeySpace
from .redisstore import RedisStore

__all__ = ["BlobFolder", "DEFAULT_LOG_LENGTHS", "KeySpace", "RedisStore", "safe_name_part"]
