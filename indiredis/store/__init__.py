"""The Redis key space: key names, the message-applying store and BLOB files."""

from .blobnames import safe_name_part
from .blobs import BlobFolder
from .keys import DEFAULT_LOG_LENGTHS, KeySpace
from .redisstore import RedisStore

__all__ = ["BlobFolder", "DEFAULT_LOG_LENGTHS", "KeySpace", "RedisStore", "safe_name_part"]
