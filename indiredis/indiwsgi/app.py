"""The WSGI application: routes, responses, and the one place requests are authorised.

Every POST is checked twice, with or without logins: it must come from the
page's own origin when the browser says where it comes from (``Origin``, else
``Referer``: the same scheme, host and port as the request's), and carry the
CSRF token of the page (the session's with logins; without, the random token
of the ``indiredis_csrf`` cookie, which a foreign page can neither read nor
set).

The request's scheme, host and client address are the WSGI server's
(``wsgi.url_scheme``, ``HTTP_HOST``, ``REMOTE_ADDR``): behind a proxy, the
server takes them from the proxy's ``X-Forwarded-*`` headers when it trusts
the proxy (``[service] trusted_proxy``), never from a header the app reads
itself.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis

from .. import tools
from ..errors import FormError, SetError
from ..events import journal_fields
from ..hosts import RedisServer
from ..redisconnect import redis_client
from ..store.keys import KeySpace
from ..store.retention import FolderListing
from . import pages, push
from .auth import SESSION_SECONDS, LoginLimiter, Sessions, User, check_login, same_token
from .forms import read_form
from .history import HOURS, INTERVAL, history_key, read_history
from .live import LiveCache, with_status
from .previews import PreviewCache, PreviewError, previewable
from .setting import submit
from .snapshot import read_device, read_devices
from .viewer import InfoCache, parse_view, render_view

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; img-src 'self'"),
]
SESSION_COOKIE = "indiredis_session"
CSRF_COOKIE = "indiredis_csrf"
STATIC = {"live.js": "text/javascript", "theme.js": "text/javascript"}
#: Debian's libjs-dygraphs, served for the history graphs: /static/<name> -> (file, type)
SYSTEM_STATIC = {
    "dygraph.js": ("/usr/share/javascript/dygraphs/dygraph.min.js", "text/javascript"),
    "dygraph.css": ("/usr/share/javascript/dygraphs/dygraph.min.css", "text/css"),
}
FILES_LISTED = 50  # files of a BLOB element listed on the page
LOGIN_BODY = 4096  # bytes: a login form is small; a longer one is refused unparsed (waitress read it)
DEFAULT_PORTS = {"http": 80, "https": 443}


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


class FileResponse(Response):
    """A file answered as it is read (with the server's ``wsgi.file_wrapper`` when it has one), never
    read whole into memory."""

    CHUNK = 1024 * 1024

    def __init__(self, path: Path, headers: list[tuple[str, str]]) -> None:
        super().__init__("200 OK", b"", "application/octet-stream", headers)
        self.path = path

    def stream(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        handle = self.path.open("rb")
        size = str(os.fstat(handle.fileno()).st_size)
        start_response(self.status, [(k, size if k == "Content-Length" else v) for k, v in self.headers])
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None:
            return wrapper(handle, self.CHUNK)  # type: ignore[no-any-return]  # the server's iterable

        def chunks() -> Iterable[bytes]:
            with handle:
                yield from iter(lambda: handle.read(self.CHUNK), b"")

        return chunks()


class StreamResponse(Response):
    """Server-sent events (see :mod:`.push`): no length, never cached or buffered by a proxy."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__(
            "200 OK",
            b"",
            "text/event-stream",
            [("Cache-Control", "no-store"), ("X-Accel-Buffering", "no")],
        )
        self.headers = [(k, v) for k, v in self.headers if k != "Content-Length"]
        self.chunks = chunks

    def __call__(self, start_response: StartResponse) -> Iterable[bytes]:  # type: ignore[override]
        start_response(self.status, self.headers)
        return self.chunks


def text_response(status: str, text: str) -> Response:
    return Response(status, text.encode(), "text/plain; charset=utf-8")


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


def _origin(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a URL's scheme and netloc, the port made explicit; None if malformed."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or DEFAULT_PORTS.get(scheme.lower(), 0)
    except ValueError:
        return None
    return (scheme.lower(), (parts.hostname or "").lower(), port) if parts.hostname else None


def request_origin(environ: dict[str, Any]) -> tuple[str, str, int] | None:
    """The request's own origin: the WSGI server's scheme and ``Host`` (else its name and port)."""
    scheme = environ.get("wsgi.url_scheme") or "http"
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"
    return _origin(scheme, host)


def same_origin(environ: dict[str, Any]) -> bool:
    """False when the browser says the request comes from another origin (``Origin``, else
    ``Referer``: another scheme, host or port than the request's own); a request that names no
    origin (a script, not a browser) passes, and still needs the CSRF token."""
    claimed = environ.get("HTTP_ORIGIN") or environ.get("HTTP_REFERER")
    if not claimed:
        return True
    if claimed == "null":
        return False
    parts = urlsplit(claimed)
    own = request_origin(environ)
    return own is not None and _origin(parts.scheme, parts.netloc) == own


class WebApp:
    """The web client (see :mod:`indiredis.indiwsgi`)."""

    def __init__(
        self,
        redis_host: RedisServer,
        blob_folder: str | None = None,
        users: dict[str, User] | None = None,
        url: str = "/",
        session_seconds: int = SESSION_SECONDS,
        history_interval: float = INTERVAL,
        sessions: Sessions | None = None,
    ) -> None:
        self.redis_host = redis_host
        self.keys = KeySpace(redis_host.keyprefix)
        self.mount = mount_parts(url)
        self.rconn = redis_client(redis_host, socket_timeout=5)
        if sessions is None and users is not None:
            sessions = Sessions(users, self.rconn, self.keys, session_seconds)
        self.sessions = sessions  # given: shared with the other sites' apps (see .sites)
        self.limiter = LoginLimiter()
        self.blob_folder = Path(blob_folder).resolve() if blob_folder else None
        self.listing = FolderListing(self.blob_folder) if self.blob_folder else None
        self.cache = LiveCache(
            self.rconn, redis_host, self.files_of if self.blob_folder else None, history_interval
        )
        self.previews = PreviewCache()
        self.infos = InfoCache()
        folder = resources.files(__package__)
        self.static = {name: folder.joinpath(name).read_bytes() for name in STATIC}

    def close(self) -> None:
        """Stop the watcher thread (a served app runs until its process ends)."""
        self.cache.close()

    def files_of(self, device: str, name: str, element: str) -> list[str]:
        """The newest files of a BLOB element, for the page's file list (from one scan of the folder
        shared by every element, made again when the folder changed)."""
        assert self.listing is not None  # one scan of the folder shared by every element of a page
        return [file.name for file in self.listing.element_files(device, name, element)[:FILES_LISTED]]

    # -- access: the single place where requests are let through ----------------------------------
    @staticmethod
    def _cookie(environ: dict[str, Any], name: str = SESSION_COOKIE) -> str:
        try:
            morsel = SimpleCookie(environ.get("HTTP_COOKIE", "")).get(name)
        except CookieError:
            return ""
        return morsel.value if morsel else ""

    def session(self, environ: dict[str, Any]) -> tuple[User, str] | None:
        """The logged-in user and the session's CSRF token, or None (always None without logins);
        looked up once per request."""
        if self.sessions is None:
            return None
        if "indiredis.session" not in environ:
            environ["indiredis.session"] = self.sessions.lookup(self._cookie(environ))
        found: tuple[User, str] | None = environ["indiredis.session"]
        return found

    def root(self, environ: dict[str, Any]) -> str:
        """Where the app is mounted, for links: SCRIPT_NAME plus the ``url`` given to make_wsgi_app."""
        parts = mount_parts(environ.get("SCRIPT_NAME", "")) + self.mount
        return "".join("/" + quote(part) for part in parts)

    def cookie_path(self, environ: dict[str, Any]) -> str:
        return self.root(environ) or "/"

    def viewer(self, environ: dict[str, Any]) -> pages.Viewer:
        """Who is looking, for the pages."""
        root = self.root(environ)
        blob_links = self.blob_folder is not None
        found = self.session(environ)
        if self.sessions is None:
            return pages.Viewer(csrf=self.anonymous_token(environ), root=root, blob_links=blob_links)
        if found is None:
            return pages.Viewer(may_set=False, root=root, logins=True, blob_links=blob_links)
        user, csrf = found
        return pages.Viewer(
            user.name, user.role, user.may_set, csrf, root, logins=True, blob_links=blob_links
        )

    def anonymous_token(self, environ: dict[str, Any]) -> str:
        """Without logins: the browser's CSRF cookie value (a new one is set with the page)."""
        token = self._cookie(environ, CSRF_COOKIE)
        if not token or len(token) > 64:
            token = environ.setdefault("indiredis.new_csrf", secrets.token_urlsafe(24))
        return token

    def authorise(self, environ: dict[str, Any], *, write: bool, api: bool = False) -> Response | None:
        """None to let the request through, or the refusal: log in first; observers may only watch."""
        if self.sessions is None:
            return None  # logins are off (make_wsgi_app without users, as the original package)
        found = self.session(environ)
        if found is None:
            if not write and not api:
                return Response("303 See Other", b"", headers=[("Location", self.root(environ) + "/login")])
            return text_response("401 Unauthorized", "log in first")
        if write and not found[0].may_set:
            return text_response("403 Forbidden", "this user may watch but not set")
        return None

    def csrf_ok(self, environ: dict[str, Any], fields: dict[str, list[str]]) -> bool:
        """Whether a POST carries the page's CSRF token."""
        token = environ.get("HTTP_X_CSRF_TOKEN") or (fields.get("csrf") or [""])[0]
        if self.sessions is None:
            return same_token(token, self._cookie(environ, CSRF_COOKIE))
        found = self.session(environ)
        return found is not None and same_token(token, found[1])

    def login(self, environ: dict[str, Any]) -> Response:
        root = self.root(environ)
        viewer = pages.Viewer(root=root, logins=True)
        if environ.get("REQUEST_METHOD") != "POST":
            return Response("200 OK", pages.page("Log in", pages.login_form(root=root), viewer))
        try:
            fields, _ = read_form(environ, LOGIN_BODY)
        except FormError as exc:
            return text_response("400 Bad Request", str(exc))
        name = (fields.get("user") or [""])[0]
        password = (fields.get("password") or [""])[0]
        address = environ.get("REMOTE_ADDR", "")
        keys = (f"address:{address}", f"user:{name[:64]}")  # a user name has at most 64 characters
        assert self.sessions is not None
        if self.limiter.blocked(*keys):
            log.warning("web login refused for %r from %s: too many failures", name[:64], address)
            return Response(
                "429 Too Many Requests",
                pages.page(
                    "Log in", pages.login_form("Too many failed logins: wait a few minutes.", root), viewer
                ),
                headers=[("Retry-After", "300")],
            )
        user = check_login(self.sessions.users, name, password)
        if user is None:
            self.limiter.failed(*keys)
            log.warning("web login failed for %r from %s", name[:64], address)
            return Response(
                "401 Unauthorized",
                pages.page("Log in", pages.login_form("Wrong user or password.", root), viewer),
            )
        secure = "; Secure" if environ.get("wsgi.url_scheme") == "https" else ""
        cookie = (
            f"{SESSION_COOKIE}={self.sessions.issue(user)}; Path={self.cookie_path(environ)}; HttpOnly; "
            f"SameSite=Strict{secure}"
        )
        log.info("web login: %s (%s) from %s", user.name, user.role, address)
        return Response("303 See Other", b"", headers=[("Location", root + "/"), ("Set-Cookie", cookie)])

    def logout(self, environ: dict[str, Any]) -> Response:
        """End the session on the server, forget the cookie, and show the login page."""
        assert self.sessions is not None
        found = self.session(environ)
        self.sessions.end(self._cookie(environ))
        if found is not None:
            log.info("web logout: %s", found[0].name)
        root = self.root(environ)
        return Response(
            "303 See Other",
            b"",
            headers=[
                ("Location", root + "/login"),
                (
                    "Set-Cookie",
                    f"{SESSION_COOKIE}=; Path={self.cookie_path(environ)}; Max-Age=0; HttpOnly; "
                    "SameSite=Strict",
                ),
            ],
        )

    # -- routing -------------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = self.route(environ)
        except redis.RedisError:
            root = self.root(environ)
            body = pages.page(
                "indiredis",
                pages.message_page("The Redis store cannot be reached; try again.", root),
                pages.Viewer(root=root),
            )
            response = Response("503 Service Unavailable", body)
        new_token = environ.get("indiredis.new_csrf")
        if new_token and response.status.startswith("200"):
            response.headers.append(
                (
                    "Set-Cookie",
                    f"{CSRF_COOKIE}={new_token}; Path={self.cookie_path(environ)}; HttpOnly; SameSite=Strict",
                )
            )
        if isinstance(response, FileResponse):
            return response.stream(environ, start_response)
        return response(start_response)

    def route(self, environ: dict[str, Any]) -> Response:
        method = environ.get("REQUEST_METHOD", "GET")
        parts = request_parts(environ)
        mount = mount_parts(environ.get("SCRIPT_NAME", "")) + self.mount
        if parts[: len(mount)] != mount:
            return self.not_found(environ)
        parts = parts[len(mount) :]
        if method not in ("GET", "POST"):
            return Response("405 Method Not Allowed", b"", headers=[("Allow", "GET, POST")])
        if method == "POST" and not same_origin(environ):
            log.warning(
                "web client refused a POST from another origin: %s, this request's is %s://%s "
                "(behind a proxy, see [service] trusted_proxy)",
                environ.get("HTTP_ORIGIN") or environ.get("HTTP_REFERER"),
                environ.get("wsgi.url_scheme") or "http",
                environ.get("HTTP_HOST", ""),
            )
            return text_response("403 Forbidden", "request from another site refused")
        if len(parts) == 2 and parts[0] == "static" and parts[1] in self.static:
            return Response(
                "200 OK",
                self.static[parts[1]],
                STATIC[parts[1]] + "; charset=utf-8",
                [("Cache-Control", "max-age=300")],
            )
        if len(parts) == 2 and parts[0] == "static" and parts[1] in SYSTEM_STATIC:
            return self.system_static(parts[1])
        if parts == ["login"] and self.sessions is not None:
            return self.login(environ)
        if parts == ["logout"] and self.sessions is not None:
            return self.logout(environ)
        refusal = self.authorise(environ, write=method == "POST", api=parts[:1] == ["api"])
        if refusal is not None:
            return refusal
        if method == "POST":
            return self.post(environ, parts)
        return self.get(environ, parts)

    def get(self, environ: dict[str, Any], parts: list[str]) -> Response:
        viewer = self.viewer(environ)
        if not parts:
            devices = read_devices(self.rconn, self.redis_host)
            text = tools.last_message(self.rconn, self.redis_host) or ""
            body = pages.device_list(devices, text, viewer.root)
            return Response("200 OK", pages.page("INDI devices", body, viewer, devices))
        if len(parts) == 2 and parts[0] == "device" and self._known(parts[1]):
            view = read_device(self.rconn, self.redis_host, parts[1])
            devices = read_devices(self.rconn, self.redis_host)
            return Response("200 OK", pages.page(parts[1], pages.device_page(view, viewer), viewer, devices))
        if parts == ["api", "stream"]:
            return self.event_stream(environ, "")
        if len(parts) == 3 and parts[:2] == ["api", "stream"] and self._known(parts[2]):
            return self.event_stream(environ, parts[2])
        if len(parts) == 5 and parts[:2] == ["api", "history"] and self._known(parts[2]):
            return self.history(environ, *parts[2:])
        if parts == ["api", "devices"]:
            return self.live(environ, self.cache.devices())
        if len(parts) == 3 and parts[:2] == ["api", "device"] and self._known(parts[2]):
            return self.live(environ, self.cache.device(parts[2]))
        if len(parts) == 3 and parts[:2] == ["api", "blocks"] and self._known(parts[2]):
            view = read_device(self.rconn, self.redis_host, parts[2])
            blocks = {prop.name: pages.property_block(view.device, prop, viewer) for prop in view.properties}
            return Response(
                "200 OK", json.dumps(blocks).encode(), "application/json", [("Cache-Control", "no-store")]
            )
        if len(parts) == 2 and parts[0] == "blobs":
            return self.blob(environ, parts[1])
        if len(parts) == 2 and parts[0] == "preview":
            return self.preview(environ, parts[1])
        if len(parts) == 3 and parts[:2] == ["api", "image"]:
            return self.image_info(environ, parts[2])
        if len(parts) == 2 and parts[0] == "view":
            return self.image_view(environ, parts[1])
        return self.not_found(environ)

    def post(self, environ: dict[str, Any], parts: list[str]) -> Response:
        try:
            fields, files = read_form(environ)
        except FormError as exc:
            return text_response("400 Bad Request", str(exc))
        if not self.csrf_ok(environ, fields):
            return text_response("403 Forbidden", "missing or wrong CSRF token: reload the page")
        if len(parts) == 3 and parts[0] == "set" and self._known(parts[1]):
            return self.set_property(environ, parts[1], parts[2], fields, files)
        if len(parts) == 2 and parts[0] == "delete":
            return self.delete_blob(environ, parts[1])
        return self.not_found(environ)

    def not_found(self, environ: dict[str, Any]) -> Response:
        root = self.root(environ)
        return Response(
            "404 Not Found",
            pages.page("Not found", pages.message_page("Nothing here.", root), pages.Viewer(root=root)),
        )

    def _known(self, device: str) -> bool:
        return bool(self.rconn.sismember(self.keys.devices(), device))

    # -- handlers ------------------------------------------------------------------------------
    def live(self, environ: dict[str, Any], answer: Any) -> Response:
        """A live JSON answer with the bridge's status, or 304 when the page's copy is current."""
        answer = with_status(answer, self.cache.status())
        headers = [("ETag", answer.etag), ("Cache-Control", "no-cache")]
        if environ.get("HTTP_IF_NONE_MATCH") == answer.etag:
            return Response("304 Not Modified", b"", "application/json", headers)
        return Response("200 OK", answer.body, "application/json", headers)

    def system_static(self, name: str) -> Response:
        """A file of a Debian JavaScript package (read once); 404 when the package is missing."""
        path, kind = SYSTEM_STATIC[name]
        if name not in self.static:
            try:
                self.static[name] = Path(path).read_bytes()
            except OSError:
                log.warning("web client: %s is missing (install libjs-dygraphs for the graphs)", path)
                return text_response("404 Not Found", f"{path} is missing: install libjs-dygraphs")
        headers = [("Cache-Control", "max-age=3600")]
        return Response("200 OK", self.static[name], kind + "; charset=utf-8", headers)

    def history(self, environ: dict[str, Any], device: str, name: str, element: str) -> Response:
        """An element's history (see :mod:`.history`), downsampled: ``?hours=`` (default 12)."""
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            hours = min(max(float((query.get("hours") or ["12"])[0]), 0.01), HOURS)
        except ValueError:
            return text_response("400 Bad Request", "hours: a number")
        found = read_history(self.rconn, history_key(self.keys, device, name, element), hours)
        found.update({"device": device, "property": name, "element": element, "hours": hours})
        return Response(
            "200 OK", json.dumps(found).encode(), "application/json", [("Cache-Control", "no-store")]
        )

    def event_stream(self, environ: dict[str, Any], device: str) -> Response:
        """The page's server-sent events (see :mod:`.push`): its whole state, then each change."""
        hub = self.cache.hub
        self.cache.start()
        if hub.streams >= hub.streams_max:  # counted only once the stream runs (push.stream)
            return Response(
                "503 Service Unavailable", b"too many open pages", "text/plain", [("Retry-After", "5")]
            )

        def whole() -> tuple[int, bytes]:
            seq = hub.seq  # taken first: a change after it is sent again, never missed
            parts = [b'{"device":%s' % json.dumps(device).encode()]
            if device:
                parts.append(b',"full":' + self.cache.device(device).body)
                parts.append(b',"log":' + json.dumps(self.cache.changes.log_of(device)).encode())
            parts.append(b',"list":' + self.cache.devices().body)
            parts.append(b',"status":' + json.dumps(self.cache.status()).encode() + b"}")
            return seq, b"".join(parts)

        seq, first = whole()
        left = environ.get("waitress.client_disconnected")
        gone = left if callable(left) else (lambda: False)
        sessions, cookie = self.sessions, self._cookie(environ)

        def allowed() -> bool:  # a session ended (logout elsewhere, expiry) ends the stream
            try:
                return sessions is None or sessions.lookup(cookie) is not None
            except redis.RedisError:  # the store is away: the page is told so (status) and waits
                return True

        return StreamResponse(push.stream(hub, device, seq, first, whole, gone, allowed))

    def set_property(
        self,
        environ: dict[str, Any],
        device: str,
        name: str,
        fields: dict[str, list[str]],
        files: dict[str, tuple[str, bytes]],
    ) -> Response:
        try:
            submit(self.rconn, self.redis_host, device, name, fields, files)
        except SetError as exc:
            return text_response("400 Bad Request", str(exc))
        found = self.session(environ)
        log.info(
            "web client%s set %s.%s",
            f" ({found[0].name})" if found else "",
            device,
            name,
            extra=journal_fields(device=device, prop=name),
        )
        if environ.get("HTTP_X_REQUESTED_WITH") == "fetch":
            return text_response("200 OK", "sent")
        location = f"{self.root(environ)}/device/{quote(device, safe='')}"
        return Response("303 See Other", b"", headers=[("Location", location)])

    def blob_path(self, name: str) -> Path | None:
        """A file of the blob folder, never anything outside it (no separators, dot files, symlinks out)."""
        if self.blob_folder is None or not name or any(c in name for c in "/\\\0") or name.startswith("."):
            return None
        path = (self.blob_folder / name).resolve()
        if path.parent != self.blob_folder or not path.is_file():
            return None
        return path

    def blob(self, environ: dict[str, Any], name: str) -> Response:
        path = self.blob_path(name)
        if path is None:
            return self.not_found(environ)
        return FileResponse(
            path, [("Content-Disposition", f"attachment; filename*=UTF-8''{quote(name, safe='')}")]
        )

    def _from_image(
        self, environ: dict[str, Any], name: str, what: str, answer: Callable[[Path], Response]
    ) -> Response:
        """``answer`` for the received image ``name`` (404 when there is none, or it is not an image);
        an image that cannot be read or decoded is logged and answered 415, naming ``what`` failed."""
        path = self.blob_path(name)
        if path is None or not previewable(name):
            return self.not_found(environ)
        try:
            return answer(path)
        except (PreviewError, OSError) as exc:
            log.warning("no %s of %s: %s", what, name, exc)
            return text_response("415 Unsupported Media Type", f"no {what}: {exc}")

    def preview(self, environ: dict[str, Any], name: str) -> Response:
        return self._from_image(
            environ,
            name,
            "preview",
            lambda path: Response(
                "200 OK", self.previews.get(path), "image/jpeg", [("Cache-Control", "private, max-age=86400")]
            ),
        )

    def image_info(self, environ: dict[str, Any], name: str) -> Response:
        """The viewer's statistics, histogram, levels and FITS header of a received image."""
        return self._from_image(
            environ,
            name,
            "statistics",
            lambda path: Response(
                "200 OK",
                json.dumps(self.infos.get(path)).encode(),
                "application/json",
                [("Cache-Control", "private, max-age=60")],
            ),
        )

    def image_view(self, environ: dict[str, Any], name: str) -> Response:
        """A stretched PNG of a region of a received image (the viewer's zoom, pan and stretch)."""

        def answer(path: Path) -> Response:
            try:
                view = parse_view(parse_qs(environ.get("QUERY_STRING", "")))
            except ValueError as exc:
                return text_response("400 Bad Request", str(exc))
            data = render_view(path, view, self.infos.get(path)["levels"])
            return Response("200 OK", data, "image/png", [("Cache-Control", "private, max-age=600")])

        return self._from_image(environ, name, "view", answer)

    def delete_blob(self, environ: dict[str, Any], name: str) -> Response:
        path = self.blob_path(name)
        if path is None:
            return self.not_found(environ)
        path.unlink(missing_ok=True)
        found = self.session(environ)
        log.info("web client%s deleted %s", f" ({found[0].name})" if found else "", name)
        self.cache.files_changed()
        return text_response("200 OK", "deleted")
