"""The web client service: the WSGI app of :mod:`indiredis.indiwsgi` served by waitress.

With socket activation (``indiredis-web.socket``: ``$LISTEN_FDS`` and
``$LISTEN_PID`` name this process) it serves the socket systemd passes as
fd 3; otherwise it listens on ``listen_host:listen_port``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from typing import Any

from .config import Settings

log = logging.getLogger(__name__)

SD_LISTEN_FDS_START = 3


_inherited: list[socket.socket] | None = None  # systemd's sockets, kept open for the life of the process


def activated_sockets() -> list[socket.socket]:
    """Duplicates of the listening sockets systemd passed to this process, if any.

    The originals stay open for the life of the process: a web server rebuilt by a reload (a user
    added, say) serves them again, where binding ``listen_port`` would clash with the .socket unit.
    """
    global _inherited
    if _inherited is None:
        _inherited = []
        if os.environ.get("LISTEN_PID") == str(os.getpid()):
            count = int(os.environ.get("LISTEN_FDS", "0") or 0)
            _inherited = [socket.socket(fileno=SD_LISTEN_FDS_START + index) for index in range(count)]
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)
    return [sock.dup() for sock in _inherited]


class WebService:
    """Serves the web app in waitress's own threads; ready once it listens."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._server: Any = None
        self.status = "starting the web server"

    @property
    def ready(self) -> bool:
        return self._server is not None

    async def run(self) -> None:
        from waitress.server import create_server

        from ..indiwsgi import make_wsgi_app

        if self.settings.redis is None:  # the web schema always has [redis]
            raise RuntimeError("the web client needs a [redis] section")
        app = make_wsgi_app(
            self.settings.redis, blob_folder=self.settings.options["blob_folder"], users=self.settings.users
        )
        if app is None:
            raise RuntimeError("the web client needs its Python dependencies (see README: web client)")
        sockets = activated_sockets()
        if sockets:
            server = create_server(app, sockets=sockets, threads=8)
            where = "the socket systemd passed"
        else:
            host, port = self.settings.options["listen_host"], self.settings.options["listen_port"]
            server = create_server(app, host=host, port=port, threads=8)
            where = f"http://{host}:{port}/"
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def end() -> None:
            if not ended.done():
                ended.set_result(None)

        def serve() -> None:
            try:
                server.run()
            finally:  # waitress's loop ended: on close(), or by an error (the daemon exits, and is restarted)
                loop.call_soon_threadsafe(end)

        threading.Thread(target=serve, name="waitress", daemon=True).start()
        self._server = server
        self.status = f"serving the web client on {where}"
        log.info("%s", self.status)
        try:
            await ended
            raise RuntimeError("the web server's thread ended")
        finally:
            server.close()
            self._server = None
