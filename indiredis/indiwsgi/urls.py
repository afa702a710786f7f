"""The route table: every page and answer of the web client, one line each.

A pattern is the path below the mount point, split at "/": literal segments and parameters, each
one whole segment, percent-decoded once (so a device name may hold "/"):

- ``{device}``: a device the store knows (else 404, answered only once the visitor may look);
- ``{static}``: one of the files of :mod:`.static`;
- any other ``{name}``: any one segment.

A *public* route is answered before any login check (static files, the login page).  Every other
request is first let through by :class:`.access.Access` (with logins: GET pages send a visitor
who is not logged in to the login page, ``/api/...`` and POSTs answer 401; a POST needs the
operator role), and a POST's form is read and its CSRF token checked, before its route, if any,
is looked at.  To add a page: write its handler in the module of its kind and add its line below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .access import Access
from .api import Api
from .devicepages import DevicePages
from .images import Images
from .responses import Response
from .static import Static

Handler = Callable[..., Response]  # (request, *the pattern's parameters) -> response


@dataclass(frozen=True)
class Route:
    """``method`` and ``pattern`` → ``handler``."""

    method: str
    pattern: str
    handler: Handler
    public: bool = False

    def match(self, method: str, parts: list[str]) -> list[str] | None:
        """The parameters' values when ``method`` and the path's ``parts`` match, else None."""
        segments = self.pattern.split("/") if self.pattern else []
        if method != self.method or len(parts) != len(segments):
            return None
        values = []
        for segment, part in zip(segments, parts, strict=True):
            if segment == "{static}" and part not in Static.names:
                return None
            if segment.startswith("{"):
                values.append(part)
            elif segment != part:
                return None
        return values

    def devices(self, values: list[str]) -> list[str]:
        """The values of the ``{device}`` parameters, to check the store knows them."""
        names = [segment for segment in self.pattern.split("/") if segment.startswith("{")]
        return [value for name, value in zip(names, values, strict=True) if name == "{device}"]


def route_table(
    access: Access, devices: DevicePages, api: Api, images: Images, static: Static
) -> list[Route]:
    """Every route of a web client (the login pages only with logins)."""
    logins = [
        Route("GET", "login", access.login_page, public=True),
        Route("POST", "login", access.login, public=True),
        Route("GET", "logout", access.logout, public=True),
        Route("POST", "logout", access.logout, public=True),
    ]
    return [
        Route("GET", "static/{static}", static.file, public=True),
        *(logins if access.logins else []),
        Route("GET", "", devices.index),
        Route("GET", "device/{device}", devices.device),
        Route("GET", "api/blocks/{device}", devices.blocks),
        Route("POST", "set/{device}/{property}", devices.set_property),
        Route("GET", "api/devices", api.devices),
        Route("GET", "api/device/{device}", api.device),
        Route("GET", "api/history/{device}/{property}/{element}", api.history),
        Route("GET", "api/stream", api.stream_all),
        Route("GET", "api/stream/{device}", api.stream),
        Route("GET", "blobs/{file}", images.download),
        Route("POST", "delete/{file}", images.delete),
        Route("GET", "preview/{file}", images.preview),
        Route("GET", "api/image/{file}", images.info),
        Route("GET", "view/{file}", images.view),
    ]


def find(routes: list[Route], method: str, parts: list[str]) -> tuple[Route, list[str]] | None:
    """The first route matching ``method`` and ``parts``, and its parameters' values."""
    for route in routes:
        values = route.match(method, parts)
        if values is not None:
            return route, values
    return None
