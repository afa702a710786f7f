"""Logins for the web client: password hashes, signed session cookies, CSRF tokens, login rate limit.

- Users live in the web configuration's ``[users]`` section as
  ``name = role:hash``; role ``operator`` may set values, ``observer`` only
  watches.  ``indiredis-web --add-user NAME`` writes such a line.
- Hashes are scrypt (stdlib ``hashlib.scrypt``) with a random salt:
  ``scrypt$16384$8$1$<salt>$<hash>`` in base64.
- Sessions live in Redis (:class:`Sessions`): the cookie is a random token,
  HttpOnly, SameSite=Strict, and Secure when the request came over HTTPS
  (directly or through a proxy saying so); logout and expiry end them on the
  server, and every web process sharing the Redis store shares them.
- Every POST must carry a CSRF token (a hidden form field, or the
  ``X-CSRF-Token`` header) and, when the browser says where it comes from,
  come from the page's own origin (see :mod:`indiredis.indiwsgi.app`).
- Failed logins are limited per client address and per user name: after
  :data:`MAX_FAILURES` within :data:`FAILURE_WINDOW` seconds, logins are
  refused until the window has passed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

import redis

from ..store.keys import KeySpace
from ..tools import _text

ROLES = ("operator", "observer")
SESSION_SECONDS = 12 * 3600
MAX_FAILURES = 5
FAILURE_WINDOW = 300.0
_SCRYPT = (16384, 8, 1)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` for the configuration file."""
    salt = secrets.token_bytes(16)
    n, r, p = _SCRYPT
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def check_hash(text: str) -> None:
    """Raise ValueError unless ``text`` is a hash made by :func:`hash_password`."""
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(p.isdigit() for p in parts[1:4]):
        raise ValueError("not a scrypt hash made by indiredis-web --add-user")


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the stored hash (constant time)."""
    try:
        check_hash(stored)
        _, n, r, p, salt, digest = stored.split("$")
        candidate = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(_unb64(digest))
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(candidate, _unb64(digest))


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str

    @property
    def may_set(self) -> bool:
        return self.role == "operator"


def parse_user(name: str, value: str) -> User:
    """A ``[users]`` line: ``name = role:hash``; ValueError when malformed."""
    role, _, password_hash = value.strip().partition(":")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    check_hash(password_hash)
    return User(name, role, password_hash)


class LoginLimiter:
    """Counts failed logins per key (address, user name) in a sliding window."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW) -> None:
        self.limit, self.window = limit, window
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures[key]
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(len(self._recent(key, now)) >= self.limit for key in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)


class Sessions:
    """Server-side sessions in Redis, so that logout and expiry end them everywhere and every web
    process behind a proxy shares them.

    The cookie holds a random token; Redis holds, under a hash of it (a reader of Redis cannot
    take over a session), the user's name and the session's CSRF token, expiring after
    ``lifetime`` seconds.  Logging out deletes the key.
    """

    def __init__(
        self, users: dict[str, User], rconn: redis.Redis, keys: KeySpace, lifetime: int = SESSION_SECONDS
    ) -> None:
        self.users = users
        self.rconn, self.keys, self.lifetime = rconn, keys, int(lifetime)

    def _key(self, cookie: str) -> str:
        return self.keys.websession(hashlib.sha256(cookie.encode()).hexdigest())

    def issue(self, user: User) -> str:
        """A cookie value for a fresh session of ``user``."""
        cookie = secrets.token_urlsafe(32)
        pipe = self.rconn.pipeline(transaction=True)
        pipe.hset(self._key(cookie), mapping={"user": user.name, "csrf": secrets.token_urlsafe(24)})
        pipe.expire(self._key(cookie), self.lifetime)
        pipe.execute()
        return cookie

    def lookup(self, cookie: str) -> tuple[User, str] | None:
        """The user and CSRF token of a live session (None: no session, expired, or ended)."""
        if not cookie or len(cookie) > 128:
            return None
        found = {_text(k): _text(v) for k, v in self.rconn.hgetall(self._key(cookie)).items()}
        user = self.users.get(found.get("user", ""))
        if user is None:
            return None
        return user, found.get("csrf", "")

    def end(self, cookie: str) -> None:
        """End the session (logout)."""
        if cookie:
            self.rconn.delete(self._key(cookie))


def same_token(given: str, expected: str) -> bool:
    """Whether a CSRF token matches (constant time; an empty one never does)."""
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())
