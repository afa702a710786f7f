"""The JSON answers the open pages read: live device states, element histories, and the event
stream that pushes every change (see :mod:`.push`)."""

from __future__ import annotations

import json
from typing import Any

from . import push
from .access import Access
from .history import HOURS, history_key, read_history
from .live import Answer, with_status
from .request import Request
from .responses import Response, StreamResponse, json_response, text_response
from .site import Site


class Api:
    """``/api/devices``, ``/api/device/<name>``, ``/api/history/...`` and ``/api/stream[/<name>]``."""

    def __init__(self, site: Site, access: Access) -> None:
        self.site, self.access = site, access

    def devices(self, req: Request) -> Response:
        """The device list with connection states."""
        return self.live(req, self.site.cache.devices())

    def device(self, req: Request, device: str) -> Response:
        """A device's live state."""
        return self.live(req, self.site.cache.device(device))

    def live(self, req: Request, answer: Answer) -> Response:
        """A live JSON answer with the bridge's status, or 304 when the page's copy is current."""
        answer = with_status(answer, self.site.cache.status())
        headers = [("ETag", answer.etag), ("Cache-Control", "no-cache")]
        if req.environ.get("HTTP_IF_NONE_MATCH") == answer.etag:
            return Response("304 Not Modified", b"", "application/json", headers)
        return Response("200 OK", answer.body, "application/json", headers)

    def history(self, req: Request, device: str, name: str, element: str) -> Response:
        """An element's history (see :mod:`.history`), downsampled: ``?hours=`` (default 12)."""
        try:
            hours = min(max(float(req.query("hours", "12")), 0.01), HOURS)
        except ValueError:
            return text_response("400 Bad Request", "hours: a number")
        found = read_history(self.site.rconn, history_key(self.site.keys, device, name, element), hours)
        found.update({"device": device, "property": name, "element": element, "hours": hours})
        return json_response(found)

    def stream_all(self, req: Request) -> Response:
        """The device list's event stream."""
        return self.stream(req, "")

    def stream(self, req: Request, device: str) -> Response:
        """The page's server-sent events (see :mod:`.push`): its whole state, then each change."""
        cache = self.site.cache
        hub = cache.hub
        cache.start()
        if hub.streams >= hub.streams_max:  # counted only once the stream runs (push.stream)
            return Response(
                "503 Service Unavailable", b"too many open pages", "text/plain", [("Retry-After", "5")]
            )

        def whole() -> tuple[int, bytes]:
            seq = hub.seq  # taken first: a change after it is sent again, never missed
            parts = [b'{"device":%s' % json.dumps(device).encode()]
            if device:
                parts.append(b',"full":' + cache.device(device).body)
                parts.append(b',"log":' + json.dumps(cache.changes.log_of(device)).encode())
            parts.append(b',"list":' + cache.devices().body)
            parts.append(b',"status":' + json.dumps(cache.status()).encode() + b"}")
            return seq, b"".join(parts)

        seq, first = whole()
        left: Any = req.environ.get("waitress.client_disconnected")
        gone = left if callable(left) else (lambda: False)
        allowed = self.access.still_allowed(req)
        return StreamResponse(push.stream(hub, device, seq, first, whole, gone, allowed))
