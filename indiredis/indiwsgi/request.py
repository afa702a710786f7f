"""What a handler reads of a request: its path below the mount point, where the app is mounted,
its cookies and query, and whether a POST comes from the page's own origin.

The request's scheme, host and client address are the WSGI server's (``wsgi.url_scheme``,
``HTTP_HOST``, ``REMOTE_ADDR``): behind a proxy, the server takes them from the proxy's
``X-Forwarded-*`` headers when it trusts the proxy (``[service] trusted_proxy``), never from a
header the app reads itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from . import pages
from .auth import User

DEFAULT_PORTS = {"http": 80, "https": 443}


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


def app_root(environ: dict[str, Any], mount: list[str]) -> str:
    """Where the app is mounted, for links: SCRIPT_NAME plus the ``url`` given to make_wsgi_app."""
    return "".join("/" + quote(part) for part in mount_parts(environ.get("SCRIPT_NAME", "")) + mount)


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


@dataclass(frozen=True)
class Visitor:
    """Who makes a request: the logged-in user (None without logins, or not logged in) and the CSRF
    token the pages carry; without logins, ``new_csrf`` says the token is new, to be set as the
    browser's cookie with the page that carries it."""

    user: User | None = None
    csrf: str = ""
    logins: bool = False
    new_csrf: bool = False

    def viewer(self, root: str, *, blob_links: bool) -> pages.Viewer:
        """Who is looking, for the pages."""
        if not self.logins:
            return pages.Viewer(csrf=self.csrf, root=root, blob_links=blob_links)
        if self.user is None:
            return pages.Viewer(may_set=False, root=root, logins=True, blob_links=blob_links)
        user = self.user
        return pages.Viewer(
            user.name, user.role, user.may_set, self.csrf, root, logins=True, blob_links=blob_links
        )

    def named(self) -> str:
        """ " (name)" of a logged-in user, for the log; "" without."""
        return f" ({self.user.name})" if self.user else ""


@dataclass(frozen=True)
class Request:
    """One request as the handlers see it: ``parts`` are the path's segments below the mount point,
    ``root`` is where the app is mounted (for links, "" at the server's root); who makes it is known
    before its handler runs (``visitor``, except on the login page and static files), and so is a
    POST's form (``fields``, ``files``)."""

    environ: dict[str, Any]
    parts: list[str]
    root: str
    visitor: Visitor = Visitor()
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    @property
    def method(self) -> str:
        """GET, POST, ..."""
        return str(self.environ.get("REQUEST_METHOD", "GET"))

    @property
    def cookie_path(self) -> str:
        """The ``Path`` of the app's cookies."""
        return self.root or "/"

    @property
    def https(self) -> bool:
        """Whether the request came over HTTPS (directly, or through a trusted proxy saying so)."""
        return bool(self.environ.get("wsgi.url_scheme") == "https")

    def cookie(self, name: str) -> str:
        """The value of the cookie ``name`` ("" when absent or the header is malformed)."""
        try:
            morsel = SimpleCookie(self.environ.get("HTTP_COOKIE", "")).get(name)
        except CookieError:
            return ""
        return morsel.value if morsel else ""

    def query(self, name: str, default: str = "") -> str:
        """The first value of a query parameter."""
        return (self.query_all().get(name) or [default])[0]

    def query_all(self) -> dict[str, list[str]]:
        """The whole query string, parsed."""
        return parse_qs(self.environ.get("QUERY_STRING", ""))

    def form_value(self, name: str) -> str:
        """The first value of a form field ("" when absent)."""
        return (self.fields.get(name) or [""])[0]
