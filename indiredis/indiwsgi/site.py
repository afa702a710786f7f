"""What every handler of the web client shares: the Redis store, the live snapshots, the blob folder."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..hosts import RedisServer
from ..redisconnect import redis_client
from ..store.keys import KeySpace
from ..store.retention import FolderListing
from . import pages
from .history import INTERVAL
from .live import LiveCache
from .request import Request
from .responses import Response

FILES_LISTED = 50  # files of a BLOB element listed on the page


class Site:
    """The store of one web client (``server``), its shared snapshots (``cache``) and its blob folder."""

    def __init__(
        self, server: RedisServer, blob_folder: str | None, history_interval: float = INTERVAL
    ) -> None:
        self.server = server
        self.keys = KeySpace(server.keyprefix)
        self.rconn = redis_client(server, socket_timeout=5)
        self.blob_folder = Path(blob_folder).resolve() if blob_folder else None
        self.listing = FolderListing(self.blob_folder) if self.blob_folder else None
        self.cache = LiveCache(
            self.rconn, server, self.files_of if self.blob_folder else None, history_interval
        )
        self.in_panel = False  # a site of a panel (.sites), mounted at <panel>/sites/<name>/

    def files_of(self, device: str, name: str, element: str) -> list[str]:
        """The newest files of a BLOB element, for the page's file list (from one scan of the folder
        shared by every element, made again when the folder changed)."""
        assert self.listing is not None  # one scan of the folder shared by every element of a page
        return [file.name for file in self.listing.element_files(device, name, element)[:FILES_LISTED]]

    def known(self, device: str) -> bool:
        """Whether the store knows ``device``."""
        return bool(self.rconn.sismember(self.keys.devices(), device))

    def blob_path(self, name: str) -> Path | None:
        """A file of the blob folder, never anything outside it (no separators, dot files, symlinks out)."""
        if self.blob_folder is None or not name or any(c in name for c in "/\\\0") or name.startswith("."):
            return None
        path = (self.blob_folder / name).resolve()
        if path.parent != self.blob_folder or not path.is_file():
            return None
        return path

    def viewer(self, req: Request) -> pages.Viewer:
        """Who is looking at a page of this site (with the link to the panel's site list, two
        segments up, for a site of a panel)."""
        viewer = req.visitor.viewer(req.root, blob_links=self.blob_folder is not None)
        return replace(viewer, home=req.root.rsplit("/", 2)[0] + "/") if self.in_panel else viewer


def message(status: str, req: Request, title: str, text: str) -> Response:
    """A page saying ``text`` (nothing here, the store away)."""
    root = req.root
    return Response(status, pages.page(title, pages.message_page(text, root), pages.Viewer(root=root)))


def not_found(req: Request) -> Response:
    """404: the same page for a path that never exists and for a device the store does not know."""
    return message("404 Not Found", req, "Not found", "Nothing here.")
