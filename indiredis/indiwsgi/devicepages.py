"""The HTML pages of the devices (the list, one device, its property blocks) and the forms that set
values."""

from __future__ import annotations

import logging
from urllib.parse import quote

from .. import tools
from ..errors import SetError
from ..events import journal_fields
from . import pages
from .access import Access
from .request import Request
from .responses import Response, json_response, redirect, text_response
from .setting import submit
from .site import Site
from .snapshot import read_device, read_devices

log = logging.getLogger(__name__)


class DevicePages:
    """``/``, ``/device/<name>``, ``/api/blocks/<name>`` and ``POST /set/<device>/<property>``."""

    def __init__(self, site: Site, access: Access) -> None:
        self.site, self.access = site, access

    def index(self, req: Request) -> Response:
        """The device list and the last message that named no device."""
        site, viewer = self.site, self.site.viewer(req)
        devices = read_devices(site.rconn, site.server)
        text = tools.last_message(site.rconn, site.server) or ""
        body = pages.device_list(devices, text, viewer.root)
        return self.access.page_cookies(
            req, Response("200 OK", pages.page("INDI devices", body, viewer, devices))
        )

    def device(self, req: Request, device: str) -> Response:
        """A device's properties, grouped, with a form for each one that may be set."""
        site, viewer = self.site, self.site.viewer(req)
        view = read_device(site.rconn, site.server, device)
        devices = read_devices(site.rconn, site.server)
        body = pages.page(device, pages.device_page(view, viewer), viewer, devices)
        return self.access.page_cookies(req, Response("200 OK", body))

    def blocks(self, req: Request, device: str) -> Response:
        """The HTML block of each property of a device (the page replaces a block that changed shape)."""
        viewer = self.site.viewer(req)
        view = read_device(self.site.rconn, self.site.server, device)
        blocks = {prop.name: pages.property_block(view.device, prop, viewer) for prop in view.properties}
        return self.access.page_cookies(req, json_response(blocks))

    def set_property(self, req: Request, device: str, name: str) -> Response:
        """Send a property's new values to the instrument (a form, or the page's background fetch)."""
        try:
            submit(self.site.rconn, self.site.server, device, name, req.fields, req.files)
        except SetError as exc:
            return text_response("400 Bad Request", str(exc))
        log.info(
            "web client%s set %s.%s",
            req.visitor.named(),
            device,
            name,
            extra=journal_fields(device=device, prop=name),
        )
        if req.environ.get("HTTP_X_REQUESTED_WITH") == "fetch":
            return text_response("200 OK", "sent")
        return redirect(f"{req.root}/device/{quote(device, safe='')}")
