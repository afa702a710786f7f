"""The received BLOB files: downloads, deletion, and the image viewer's previews, statistics and
stretched views (see :mod:`.previews` and :mod:`.viewer`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from .previews import PreviewCache, PreviewError, previewable
from .request import Request
from .responses import FileResponse, Response, json_response, text_response
from .site import Site, not_found
from .viewer import InfoCache, parse_view, render_view

log = logging.getLogger(__name__)


class Images:
    """``/blobs/<file>``, ``POST /delete/<file>``, ``/preview/<file>``, ``/api/image/<file>`` and
    ``/view/<file>``: files of the blob folder only."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.previews = PreviewCache()
        self.infos = InfoCache()

    def download(self, req: Request, name: str) -> Response:
        """A received file, as an attachment."""
        path = self.site.blob_path(name)
        if path is None:
            return not_found(req)
        return FileResponse(
            path, [("Content-Disposition", f"attachment; filename*=UTF-8''{quote(name, safe='')}")]
        )

    def delete(self, req: Request, name: str) -> Response:
        """Delete a received file; every snapshot is read again."""
        path = self.site.blob_path(name)
        if path is None:
            return not_found(req)
        path.unlink(missing_ok=True)
        log.info("web client%s deleted %s", req.visitor.named(), name)
        self.site.cache.files_changed()
        return text_response("200 OK", "deleted")

    def _from_image(self, req: Request, name: str, what: str, answer: Callable[[Path], Response]) -> Response:
        """``answer`` for the received image ``name`` (404 when there is none, or it is not an image);
        an image that cannot be read or decoded is logged and answered 415, naming ``what`` failed."""
        path = self.site.blob_path(name)
        if path is None or not previewable(name):
            return not_found(req)
        try:
            return answer(path)
        except (PreviewError, OSError) as exc:
            log.warning("no %s of %s: %s", what, name, exc)
            return text_response("415 Unsupported Media Type", f"no {what}: {exc}")

    def preview(self, req: Request, name: str) -> Response:
        """A small JPEG of a received image, for the page."""
        return self._from_image(
            req,
            name,
            "preview",
            lambda path: Response(
                "200 OK", self.previews.get(path), "image/jpeg", [("Cache-Control", "private, max-age=86400")]
            ),
        )

    def info(self, req: Request, name: str) -> Response:
        """The viewer's statistics, histogram, levels and FITS header of a received image."""
        return self._from_image(
            req, name, "statistics", lambda path: json_response(self.infos.get(path), "private, max-age=60")
        )

    def view(self, req: Request, name: str) -> Response:
        """A stretched PNG of a region of a received image (the viewer's zoom, pan and stretch)."""

        def answer(path: Path) -> Response:
            try:
                view = parse_view(req.query_all())
            except ValueError as exc:
                return text_response("400 Bad Request", str(exc))
            data = render_view(path, view, self.infos.get(path)["levels"])
            return Response("200 OK", data, "image/png", [("Cache-Control", "private, max-age=600")])

        return self._from_image(req, name, "view", answer)
