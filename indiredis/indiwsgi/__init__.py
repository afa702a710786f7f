"""The web client: a WSGI application that learns every device and property from the Redis store.

This first version is read-only: the device list, each device's properties
grouped by INDI group with their state, labels and formatted values, its
messages, and BLOB downloads confined to the blob folder.  Every string a
device provides is HTML-escaped.  (Setting values, live updates and the login
of the security issue are still to come.)
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import quote, unquote

import redis

from ..hosts import RedisServer, redis_connection_options
from .. import tools

StartResponse = Callable[..., Any]
STATE_COLOURS = {"Idle": "#999", "Ok": "#2a2", "Busy": "#cc2", "Alert": "#c22"}


def _page(title: str, body: str) -> bytes:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif} td,th{padding:2px 8px} .light{display:inline-block;width:1em;"
            "height:1em;border-radius:50%}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>").encode()


class WebApp:
    """The WSGI callable (see the module docstring)."""

    def __init__(self, redis_host: RedisServer, blob_folder: str | None = None) -> None:
        self.redis_host = redis_host
        self.blob_folder = Path(blob_folder).resolve() if blob_folder else None
        self.rconn = redis.Redis(**redis_connection_options(redis_host), socket_timeout=5)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        try:
            if path == "/":
                return self._respond(start_response, "200 OK", self._devices())
            if path.startswith("/device/"):
                device = unquote(path[len("/device/"):])
                if device in tools.devices(self.rconn, self.redis_host):
                    return self._respond(start_response, "200 OK", self._device(device))
            if path.startswith("/blobs/"):
                return self._blob(unquote(path[len("/blobs/"):]), start_response)
        except redis.RedisError:
            return self._respond(start_response, "503 Service Unavailable",
                                 _page("indiredis", "<p>The Redis store cannot be reached.</p>"))
        return self._respond(start_response, "404 Not Found", _page("Not found", ""))

    @staticmethod
    def _respond(start_response: StartResponse, status: str, body: bytes,
                 content_type: str = "text/html; charset=utf-8") -> list[bytes]:
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                ("X-Content-Type-Options", "nosniff"),
                                ("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'")])
        return [body]

    def _devices(self) -> bytes:
        items = "".join(f"<li><a href='/device/{quote(d, safe='')}'>{html.escape(d)}</a></li>"
                        for d in tools.devices(self.rconn, self.redis_host))
        return _page("INDI devices", f"<ul>{items}</ul>" if items else "<p>No devices yet.</p>")

    def _device(self, device: str) -> bytes:
        groups: dict[str, list[str]] = {}
        for name in tools.properties(self.rconn, self.redis_host, device):
            attrs = tools.attributes_dict(self.rconn, self.redis_host, name, device)
            state = attrs.get("state", "Idle")
            colour = STATE_COLOURS.get(state, "#999")
            rows = []
            for element in tools.property_elements(self.rconn, self.redis_host, name, device):
                value = element.get("formatted_number") or element.get("value", "")
                if element.get("filepath") and self.blob_folder:
                    file = Path(element["filepath"]).name
                    value = f"<a href='/blobs/{quote(file)}'>{html.escape(file)}</a>"
                else:
                    value = html.escape(value)
                rows.append(f"<tr><td>{html.escape(element.get('label') or element.get('name', ''))}</td>"
                            f"<td>{value}</td></tr>")
            groups.setdefault(attrs.get("group", ""), []).append(
                f"<h3><span class='light' style='background:{colour}' title='{html.escape(state)}'></span> "
                f"{html.escape(attrs.get('label') or name)} <small>({html.escape(attrs.get('perm', ''))})</small>"
                f"</h3><table>{''.join(rows)}</table>")
        body = "".join(f"<h2>{html.escape(group)}</h2>{''.join(parts)}" for group, parts in sorted(groups.items()))
        message = tools.last_message(self.rconn, self.redis_host, device)
        if message:
            body += f"<p>Last message: {html.escape(message)}</p>"
        return _page(device, "<p><a href='/'>All devices</a></p>" + body)

    def _blob(self, name: str, start_response: StartResponse) -> list[bytes]:
        """A file of the blob folder, never anything outside it (no separators, no symlinks out)."""
        if self.blob_folder is None or not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
            return self._respond(start_response, "404 Not Found", _page("Not found", ""))
        path = (self.blob_folder / name).resolve()
        if path.parent != self.blob_folder or not path.is_file():
            return self._respond(start_response, "404 Not Found", _page("Not found", ""))
        data = path.read_bytes()
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(data))),
                                  ("Content-Disposition", f"attachment; filename=\"{quote(name)}\"")])
        return [data]


def make_wsgi_app(redis_host: RedisServer, blob_folder: str | os.PathLike[str] | None = None) -> WebApp:
    """A WSGI application serving the devices in the Redis store (see the module docstring)."""
    return WebApp(redis_host, str(blob_folder) if blob_folder else None)
