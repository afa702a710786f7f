"""The WSGI application: routes, responses, and the one place requests are authorised."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import redis

from .. import tools
from ..errors import FormError, SetError
from ..events import journal_fields
from ..hosts import RedisServer, redis_connection_options
from ..store.keys import KeySpace
from . import pages
from .auth import LoginLimiter, Sessions, User, verify_password
from .forms import read_form
from .setting import submit
from .snapshot import read_device
from .state import as_json, device_state

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'"),
]


class Response:
    """Status, headers and body of one answer."""

    def __init__(
        self,
        status: str,
        body: bytes = b"",
        content_type: str = "text/html; charset=utf-8",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status, self.body = status, body
        self.headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        self.headers += SECURITY_HEADERS + (headers or [])

    def __call__(self, start_response: StartResponse) -> list[bytes]:
        start_response(self.status, self.headers)
        return [self.body]


def not_found(root: str = "") -> Response:
    return Response(
        "404 Not Found", pages.page("Not found", pages.message_page("Nothing here.", root), root=root)
    )


def mount_parts(url: str) -> list[str]:
    """The path segments of a mount URL such as "/" or "/indi/"."""
    return [part for part in url.split("/") if part]


def request_parts(environ: dict[str, Any]) -> list[str]:
    """The segments of the request path, including SCRIPT_NAME's, each percent-decoded exactly once.

    The raw request target (``REQUEST_URI``, or gunicorn's ``RAW_URI``) is split before
    decoding, so a device name holding "/" or "%" stays one segment; without it,
    the already decoded SCRIPT_NAME + PATH_INFO of PEP 3333 are split (never decoded again).
    """
    raw = environ.get("REQUEST_URI") or environ.get("RAW_URI")
    if raw:
        segments = [unquote(part) for part in urlsplit(raw).path.split("/")]
    else:
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        try:  # PEP 3333 strings are bytes as latin-1; URLs carry UTF-8
            path = path.encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass
        segments = path.split("/")
    return [segment for segment in segments if segment]


class WebApp:
    """The web client (see :mod:`indiredis.indiwsgi`)."""

    def __init__(
        self,
        redis_host: RedisServer,
        blob_folder: str | None = None,
        users: dict[str, User] | None = None,
        url: str = "/",
    ) -> None:
        self.redis_host = redis_host
        self.mount = mount_parts(url)
        self.sessions = Sessions(users) if users is not None else None
        self.limiter = LoginLimiter()
        self.blob_folder = Path(blob_folder).resolve() if blob_folder else None
        self.rconn = redis.Redis(**redis_connection_options(redis_host), socket_timeout=5)
        self.script = resources.files(__package__).joinpath("live.js").read_bytes()

    # -- access: the single place where requests are let through ----------------------------------
    @staticmethod
    def _cookie(environ: dict[str, Any]) -> str:
        try:
            morsel = SimpleCookie(environ.get("HTTP_COOKIE", "")).get("indiredis_session")
        except CookieError:
            return ""
        return morsel.value if morsel else ""

    def user(self, environ: dict[str, Any]) -> User | None:
        """The logged-in user, or None (always None without logins)."""
        return self.sessions.user(self._cookie(environ)) if self.sessions else None

    def root(self, environ: dict[str, Any]) -> str:
        """Where the app is mounted, for links: SCRIPT_NAME plus the ``url`` given to make_wsgi_app."""
        parts = mount_parts(environ.get("SCRIPT_NAME", "")) + self.mount
        return "".join("/" + quote(part) for part in parts)

    def authorise(self, environ: dict[str, Any], write: bool, api: bool = False) -> Response | None:
        """None to let the request through, or the refusal: login first, then read-only users may only
        watch."""
        if self.sessions is None:
            return None  # logins are off (make_wsgi_app without users, as the original package)
        user = self.user(environ)
        if user is None:
            if not write and not api:
                return Response("303 See Other", b"", headers=[("Location", self.root(environ) + "/login")])
            return Response("401 Unauthorized", b"log in first", "text/plain; charset=utf-8")
        if write and not user.may_set:
            return Response("403 Forbidden", b"this user may watch but not set", "text/plain; charset=utf-8")
        return None

    def csrf_ok(self, environ: dict[str, Any], fields: dict[str, list[str]]) -> bool:
        if self.sessions is None:
            return True
        token = environ.get("HTTP_X_CSRF_TOKEN") or (fields.get("csrf") or [""])[0]
        return self.sessions.csrf_ok(self._cookie(environ), token)

    def csrf_token(self, environ: dict[str, Any]) -> str:
        return self.sessions.csrf_token(self._cookie(environ)) if self.sessions else ""

    def may_write(self, environ: dict[str, Any]) -> bool:
        if self.sessions is None:
            return True
        user = self.user(environ)
        return bool(user and user.may_set)

    def login(self, environ: dict[str, Any]) -> Response:
        root = self.root(environ)
        if environ.get("REQUEST_METHOD") != "POST":
            return Response("200 OK", pages.page("Log in", pages.login_form(root=root), root=root))
        try:
            fields, _ = read_form(environ)
        except FormError as exc:
            return Response("400 Bad Request", str(exc).encode(), "text/plain; charset=utf-8")
        name = (fields.get("user") or [""])[0]
        password = (fields.get("password") or [""])[0]
        address = environ.get("REMOTE_ADDR", "")
        keys = (f"address:{address}", f"user:{name}")
        assert self.sessions is not None
        if self.limiter.blocked(*keys):
            log.warning("web login refused for %r from %s: too many failures", name[:64], address)
            return Response(
                "429 Too Many Requests",
                pages.page(
                    "Log in", pages.login_form("Too many failed logins: wait a few minutes.", root), root=root
                ),
                headers=[("Retry-After", "300")],
            )
        user = self.sessions.users.get(name)
        if user is None or not verify_password(password, user.password_hash):
            self.limiter.failed(*keys)
            log.warning("web login failed for %r from %s", name[:64], address)
            return Response(
                "401 Unauthorized",
                pages.page("Log in", pages.login_form("Wrong user or password.", root), root=root),
            )
        secure = (
            "; Secure"
            if (environ.get("wsgi.url_scheme") == "https" or environ.get("HTTP_X_FORWARDED_PROTO") == "https")
            else ""
        )
        cookie = (
            f"indiredis_session={self.sessions.issue(user)}; Path={root or '/'}; HttpOnly; "
            f"SameSite=Strict{secure}"
        )
        log.info("web login: %s (%s) from %s", user.name, user.role, address)
        return Response("303 See Other", b"", headers=[("Location", root + "/"), ("Set-Cookie", cookie)])

    def logout(self, environ: dict[str, Any]) -> Response:
        root = self.root(environ)
        return Response(
            "303 See Other",
            b"",
            headers=[
                ("Location", root + "/login"),
                (
                    "Set-Cookie",
                    f"indiredis_session=; Path={root or '/'}; Max-Age=0; HttpOnly; SameSite=Strict",
                ),
            ],
        )

    # -- routing -------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self.route(environ)(start_response)
        except redis.RedisError:
            root = self.root(environ)
            body = pages.page(
                "indiredis",
                pages.message_page("The Redis store cannot be reached; try again.", root),
                root=root,
            )
            return Response("503 Service Unavailable", body)(start_response)

    def route(self, environ: dict[str, Any]) -> Response:
        method = environ.get("REQUEST_METHOD", "GET")
        root = self.root(environ)
        parts = request_parts(environ)
        mount = mount_parts(environ.get("SCRIPT_NAME", "")) + self.mount
        if parts[: len(mount)] != mount:
            return not_found(root)
        parts = parts[len(mount) :]
        if parts == ["static", "live.js"]:
            return Response(
                "200 OK", self.script, "text/javascript; charset=utf-8", [("Cache-Control", "max-age=300")]
            )
        if parts == ["login"] and self.sessions is not None:
            return self.login(environ)
        if parts == ["logout"] and self.sessions is not None:
            return self.logout(environ)
        if method not in ("GET", "POST"):
            return Response("405 Method Not Allowed", b"", headers=[("Allow", "GET, POST")])
        refusal = self.authorise(environ, write=method == "POST", api=parts[:1] == ["api"])
        if refusal is not None:
            return refusal
        if method == "GET" and not parts:
            devices = tools.devices(self.rconn, self.redis_host)
            message = tools.last_message(self.rconn, self.redis_host) or ""
            return Response(
                "200 OK", pages.page("INDI devices", pages.device_list(devices, message, root), root=root)
            )
        if method == "GET" and len(parts) == 2 and parts[0] == "device" and self._known(parts[1]):
            csrf = self.csrf_token(environ)
            body = pages.device_page(
                read_device(self.rconn, self.redis_host, parts[1]),
                self.may_write(environ),
                self.blob_folder is not None,
                csrf,
                root,
            )
            return Response("200 OK", pages.page(parts[1], body, csrf, root))
        if method == "GET" and len(parts) == 3 and parts[:2] == ["api", "device"] and self._known(parts[2]):
            return self.state(environ, parts[2])
        if method == "GET" and len(parts) == 2 and parts[0] == "blobs":
            return self.blob(parts[1], root)
        if method == "POST" and len(parts) == 3 and parts[0] == "set" and self._known(parts[1]):
            return self.set_property(environ, parts[1], parts[2])
        return not_found(root)

    def _known(self, device: str) -> bool:
        return bool(self.rconn.sismember(KeySpace(self.redis_host.keyprefix).devices(), device))

    # -- handlers ------------------------------------------------------------------------------
    def state(self, environ: dict[str, Any], device: str) -> Response:
        """The device's values and states as JSON, or 304 when the page's copy (If-None-Match) is current."""
        body, etag = as_json(device_state(read_device(self.rconn, self.redis_host, device)))
        headers = [("ETag", etag), ("Cache-Control", "no-cache")]
        if environ.get("HTTP_IF_NONE_MATCH") == etag:
            return Response("304 Not Modified", b"", "application/json", headers)
        return Response("200 OK", body, "application/json", headers)

    def set_property(self, environ: dict[str, Any], device: str, name: str) -> Response:
        try:
            fields, files = read_form(environ)
            if not self.csrf_ok(environ, fields):
                return Response("403 Forbidden", b"missing or wrong CSRF token", "text/plain; charset=utf-8")
            submit(self.rconn, self.redis_host, device, name, fields, files)
        except (FormError, SetError) as exc:
            return Response("400 Bad Request", str(exc).encode(), "text/plain; charset=utf-8")
        log.info("web client set %s.%s", device, name, extra=journal_fields(device=device, prop=name))
        if environ.get("HTTP_X_REQUESTED_WITH") == "fetch":
            return Response("200 OK", b"sent", "text/plain; charset=utf-8")
        location = f"{self.root(environ)}/device/{quote(device, safe='')}"
        return Response("303 See Other", b"", headers=[("Location", location)])

    def blob(self, name: str, root: str = "") -> Response:
        """A file of the blob folder, never anything outside it (no separators, no dot files, no symlinks
        out)."""
        if (
            self.blob_folder is None
            or not name
            or "/" in name
            or "\\" in name
            or name.startswith(".")
            or "\0" in name
        ):
            return not_found(root)
        path = (self.blob_folder / name).resolve()
        if path.parent != self.blob_folder or not path.is_file():
            return not_found(root)
        data = path.read_bytes()
        return Response(
            "200 OK",
            data,
            "application/octet-stream",
            [("Content-Disposition", f"attachment; filename*=UTF-8''{quote(name, safe='')}")],
        )
