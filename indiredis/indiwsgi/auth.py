"""Logins for the web client: password hashes, signed session cookies, CSRF tokens, login rate limit.

- Users live in the web configuration's ``[users]`` section as
  ``name = role:hash``; role ``operator`` may set values, ``observer`` only
  watches.  ``indiredis-web --add-user NAME`` writes such a line.
- Hashes are scrypt (stdlib ``hashlib.scrypt``) with a random salt:
  ``scrypt$16384$8$1$<salt>$<hash>`` in base64.
- Sessions are cookies signed with HMAC-SHA256 under a key made at start-up
  (a restart logs everyone out); HttpOnly, SameSite=Strict, and Secure when
  the request came over HTTPS (directly or through a proxy saying so).
- Every request that sends to an instrument must carry the session's CSRF
  token (a hidden form field, or the ``X-CSRF-Token`` header).
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
    """Signed session cookies and their CSRF tokens."""

    def __init__(self, users: dict[str, User]) -> None:
        self.users = users
        self._key = secrets.token_bytes(32)

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def issue(self, user: User) -> str:
        """A cookie value for a fresh session of ``user``."""
        body = (
            f"{_b64(user.name.encode())}.{int(time.time()) + SESSION_SECONDS}.{_b64(secrets.token_bytes(12))}"
        )
        return f"{body}.{self._sign(body)}"

    def user(self, cookie: str) -> User | None:
        """The user of a valid, unexpired session cookie."""
        body, _, signature = cookie.rpartition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            name_b64, expiry, _nonce = body.split(".")
            name = _unb64(name_b64).decode()
        except ValueError:
            return None
        if not expiry.isdigit() or int(expiry) < time.time():
            return None
        return self.users.get(name)

    def csrf_token(self, cookie: str) -> str:
        return self._sign("csrf:" + cookie)

    def csrf_ok(self, cookie: str, token: str) -> bool:
        return bool(token) and hmac.compare_digest(token, self.csrf_token(cookie))
