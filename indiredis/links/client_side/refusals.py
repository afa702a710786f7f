"""Redis refusing writes: which errors say so, and the words that name the cause.

Redis can be up and answering while it refuses every write:

- ``MISCONF``: it could not save its snapshot (a full or read-only disk, a ``dir`` it cannot write)
  and ``stop-writes-on-bgsave-error`` is on (the default); it then refuses PING too;
- ``OOM``: ``maxmemory`` is reached under the ``noeviction`` policy;
- ``READONLY``: it was made a replica (``REPLICAOF``).

These arrive as :class:`redis.exceptions.ResponseError` (OOM and READONLY as its subclasses, whose
text redis-py gives without the code), not as connection errors: the connection is fine and the
refusal ends by itself once the disk, the memory or the replication is put right.  The Redis link
(:mod:`.redisside`) says so in one log line and waits for writes to be accepted again, probing with
:data:`PROBE`'s no-op write, instead of reconnecting.
"""

from __future__ import annotations

import re

import redis.exceptions

__all__ = ["CAUSES", "refusal"]

#: the error codes by which Redis refuses writes
CAUSES = ("MISCONF", "OOM", "READONLY")

#: the longest text of Redis's kept in the cause (MISCONF's is about 330 characters)
MAX_TEXT = 400

# at the start, or after the "-" of an error reply quoted inside a script's error (Redis 6)
_CODE = re.compile(r"(?:^|-)(MISCONF|OOM|READONLY)\s")
# what redis-py puts before an error of a pipeline, and Redis 7 after an error inside a script
_PIPELINE_HEAD = re.compile(r"^Command # \d+ \(.*?\) of pipeline caused error: ", re.DOTALL)
_SCRIPT_TAIL = re.compile(r"\s*script: \w+, on @user_script:\d+\.?\s*$")


def _class_code(exc: BaseException) -> str | None:
    """The code of redis-py's own classes for OOM and READONLY (OutOfMemoryError is missing before
    redis-py 4.1: the text then still starts with the code)."""
    for code, name in (("OOM", "OutOfMemoryError"), ("READONLY", "ReadOnlyError")):
        cls = getattr(redis.exceptions, name, None)
        if isinstance(cls, type) and isinstance(exc, cls):
            return code
    return None


def refusal(exc: BaseException) -> str | None:
    """``"<CODE> <Redis's text>"`` when ``exc`` is Redis refusing a write (``"OOM command not allowed
    when used memory > 'maxmemory'."``), else None."""
    if not isinstance(exc, redis.exceptions.ResponseError):
        return None
    text = (str(exc).strip().splitlines() or [""])[0]
    text = _SCRIPT_TAIL.sub("", _PIPELINE_HEAD.sub("", text)).strip()
    code = _class_code(exc)
    found = _CODE.search(text + " ")
    if found is not None and (code is None or found.group(1) == code):
        code = found.group(1)
        text = text[found.end(1) :].strip()  # the text after the code (inside a script's error too)
    if code is None:
        return None
    return f"{code} {text}"[:MAX_TEXT].rstrip()
