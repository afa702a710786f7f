"""The WSGI application: a request goes through the checks every request passes, then to its route.

The route table is :mod:`.urls`; who may do what, :mod:`.access`; the handlers are grouped by job
(:mod:`.devicepages`, :mod:`.api`, :mod:`.images`, :mod:`.static`); a handler returns a
:class:`~.responses.Response`, cookies included.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import redis

from ..errors import FormError
from ..hosts import RedisServer
from .access import Access
from .api import Api
from .auth import SESSION_SECONDS, Sessions, User
from .devicepages import DevicePages
from .forms import read_form
from .history import INTERVAL
from .images import Images
from .request import Request, app_root, mount_parts, request_parts, same_origin
from .responses import Response, StartResponse, text_response
from .site import Site, message, not_found
from .static import Static
from .urls import Route, find, route_table

log = logging.getLogger(__name__)


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
        self.site = Site(redis_host, blob_folder, history_interval)
        self.cache = self.site.cache
        self.mount = mount_parts(url)
        self.access = Access(users, self.site.rconn, self.site.keys, session_seconds, sessions)
        self.images = Images(self.site)
        self.routes = route_table(
            self.access,
            DevicePages(self.site, self.access),
            Api(self.site, self.access),
            self.images,
            Static(),
        )

    def close(self) -> None:
        """Stop the watcher thread (a served app runs until its process ends)."""
        self.cache.close()

    def root(self, environ: dict[str, Any]) -> str:
        """Where the app is mounted, for links: SCRIPT_NAME plus the ``url`` given to make_wsgi_app."""
        return app_root(environ, self.mount)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = self.route(environ)
        except redis.RedisError:
            req = Request(environ, [], self.root(environ))
            text = "The Redis store cannot be reached; try again."
            response = message("503 Service Unavailable", req, "indiredis", text)
        return response(environ, start_response)

    def route(self, environ: dict[str, Any]) -> Response:
        """The answer to one request: the checks every request passes, then its route's handler."""
        method = environ.get("REQUEST_METHOD", "GET")
        parts = request_parts(environ)
        mount = mount_parts(environ.get("SCRIPT_NAME", "")) + self.mount
        req = Request(environ, parts[len(mount) :], self.root(environ))
        if parts[: len(mount)] != mount:
            return not_found(req)
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
        found = find(self.routes, method, req.parts)
        if found is not None and found[0].public:
            return found[0].handler(req, *found[1])
        return self.let_through(req, method, found)

    def let_through(self, req: Request, method: str, found: tuple[Route, list[str]] | None) -> Response:
        """The handler's answer to a request that needs the visitor's rights (and, for a POST, the
        page's CSRF token), or the refusal."""
        req = replace(req, visitor=self.access.visitor(req))
        refusal = self.access.refusal(req, write=method == "POST", api=req.parts[:1] == ["api"])
        if refusal is not None:
            return refusal
        if method == "POST":
            try:
                fields, files = read_form(req.environ)
            except FormError as exc:
                return text_response("400 Bad Request", str(exc))
            req = replace(req, fields=fields, files=files)
            if not self.access.csrf_ok(req):
                return text_response("403 Forbidden", "missing or wrong CSRF token: reload the page")
        if found is None:
            return not_found(req)
        route, values = found
        if not all(self.site.known(device) for device in route.devices(values)):
            return not_found(req)
        return route.handler(req, *values)
