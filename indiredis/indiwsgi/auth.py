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
  come from the page's own origin (see :mod:`indiredis.indiwsgi.access`).
- Failed logins are limited per client address and per user name: after
  :data:`MAX_FAILURES` within :data:`FAILURE_WINDOW` seconds, logins are
  refused until the window has passed.  The limiter forgets a key once its
  window has passed and holds at most :data:`LIMITER_KEYS` keys (the least
  recently failed go first).  The client address is the WSGI server's
  ``REMOTE_ADDR``: behind a proxy, the one the proxy forwards when the server
  trusts it (see :func:`indiredis.indiwsgi.make_server`).
- An unknown user name costs the same scrypt as a wrong password (against a
  dummy hash), so the time of an answer does not tell which names exist.
- A session remembers a fingerprint of its user's password hash: a changed
  password (or a removed user) ends the user's sessions once the web process
  knows the new users, and ``indiredis-web --add-user`` / ``--remove-user``
  end them in Redis at once (:func:`end_sessions_of`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import redis

from ..errors import InvalidValue
from ..store.keys import KeySpace
from ..tools import _text

ROLES = ("operator", "observer")
SESSION_SECONDS = 12 * 3600
MAX_FAILURES = 5
FAILURE_WINDOW = 300.0
LIMITER_KEYS = 10_000  # addresses and user names the login limiter remembers at most
_SCRYPT = (16384, 8, 1)
_dummy_hash = ""  # made on first use: the hash an unknown user name is checked against


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
        raise InvalidValue("not a scrypt hash made by indiredis-web --add-user")


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


def dummy_hash() -> str:
    """The hash an unknown user name is checked against (made once per process)."""
    global _dummy_hash
    if not _dummy_hash:
        _dummy_hash = hash_password(secrets.token_urlsafe(16))
    return _dummy_hash


def check_login(users: dict[str, User], name: str, password: str) -> User | None:
    """The user ``name`` when ``password`` is theirs, else None; an unknown name costs the same
    scrypt as a known one (checked against a dummy hash), so the answer's time does not tell."""
    user = users.get(name)
    if user is not None:
        return user if verify_password(password, user.password_hash) else None
    verify_password(password, dummy_hash())
    return None


def password_fingerprint(password_hash: str) -> str:
    """What a session keeps of its user's password hash, to end when the password changes."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


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
        raise InvalidValue(f"role must be one of {', '.join(ROLES)}")
    check_hash(password_hash)
    return User(name, role, password_hash)


class LoginLimiter:
    """Counts failed logins per key (address, user name) in a sliding window, bounded: a key is
    forgotten once its window has passed, and at most ``max_keys`` are kept (beyond, the least
    recently failed key is forgotten first)."""

    def __init__(
        self,
        limit: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW,
        max_keys: int = LIMITER_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self.max_keys, self.clock = limit, window, max_keys, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()  # least recently failed first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """The number of keys remembered."""
        with self._lock:
            return len(self._failures)

    def _expire(self, now: float) -> None:
        """Forget the keys whose last failure is older than the window (they are at the front)."""
        while self._failures:
            key, times = next(iter(self._failures.items()))
            if now - times[-1] <= self.window:
                break
            del self._failures[key]

    def blocked(self, *keys: str) -> bool:
        """Whether any of ``keys`` has failed ``limit`` times within the window."""
        now = self.clock()
        with self._lock:
            self._expire(now)
            for key in keys:
                times = self._failures.get(key)
                if times is not None and len(times) >= self.limit and now - times[0] <= self.window:
                    return True
            return False

    def failed(self, *keys: str) -> None:
        """Count one failed login for each of ``keys``."""
        now = self.clock()
        with self._lock:
            self._expire(now)
            for key in keys:
                times = self._failures.pop(key, None)
                if times is None:
                    times = deque(maxlen=self.limit)  # the last ``limit`` failures decide
                times.append(now)
                self._failures[key] = times  # now the most recent
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)


class Sessions:
    """Server-side sessions in Redis, so that logout and expiry end them everywhere and every web
    process behind a proxy shares them.

    The cookie holds a random token; Redis holds, under a hash of it (a reader of Redis cannot
    take over a session), the user's name, the session's CSRF token and a fingerprint of the
    user's password hash (:func:`password_fingerprint`), expiring after ``lifetime`` seconds.
    Logging out deletes the key; a session whose user is gone or whose password changed is over.
    """

    def __init__(
        self, users: dict[str, User], rconn: redis.Redis, keys: KeySpace, lifetime: int = SESSION_SECONDS
    ) -> None:
        self.users = users
        self.rconn, self.keys, self.lifetime = rconn, keys, int(lifetime)
        dummy_hash()  # now, so that even the first unknown name costs no more than a wrong password

    def _key(self, cookie: str) -> str:
        return self.keys.websession(hashlib.sha256(cookie.encode()).hexdigest())

    def issue(self, user: User) -> str:
        """A cookie value for a fresh session of ``user``."""
        cookie = secrets.token_urlsafe(32)
        pipe = self.rconn.pipeline(transaction=True)
        pipe.hset(
            self._key(cookie),
            mapping={
                "user": user.name,
                "csrf": secrets.token_urlsafe(24),
                "password": password_fingerprint(user.password_hash),
            },
        )
        pipe.expire(self._key(cookie), self.lifetime)
        pipe.execute()
        return cookie

    def lookup(self, cookie: str) -> tuple[User, str] | None:
        """The user and CSRF token of a live session (None: no session, expired, or ended, or its
        user removed or given another password since)."""
        if not cookie or len(cookie) > 128:
            return None
        found = {_text(k): _text(v) for k, v in self.rconn.hgetall(self._key(cookie)).items()}
        user = self.users.get(found.get("user", ""))
        if user is None or not hmac.compare_digest(
            found.get("password", "").encode(), password_fingerprint(user.password_hash).encode()
        ):
            return None
        return user, found.get("csrf", "")

    def end(self, cookie: str) -> None:
        """End the session (logout)."""
        if cookie:
            self.rconn.delete(self._key(cookie))


def end_sessions_of(rconn: redis.Redis, keys: KeySpace, name: str) -> int:
    """End every session of user ``name`` in the Redis store (a password changed, a user removed);
    the number ended."""
    ended = 0
    for key in rconn.scan_iter(match=keys.websession("*"), count=500):
        if _text(rconn.hget(key, "user") or b"") == name:
            ended += int(rconn.delete(key))
    return ended


def same_token(given: str, expected: str) -> bool:
    """Whether a CSRF token matches (constant time; an empty one never does)."""
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())
