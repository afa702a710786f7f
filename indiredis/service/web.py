"""The web client service: the WSGI app of :mod:`indiredis.indiwsgi` served by waitress.

With socket activation (``indiredis-web.socket``: ``$LISTEN_FDS`` and
``$LISTEN_PID`` name this process) it serves the socket systemd passes as
fd 3; otherwise it listens on ``listen_host:listen_port``.  Behind a reverse
proxy, ``[service] trusted_proxy`` names it: waitress then believes its
forwarded headers (``trusted_proxy_headers``) for the client's address, the
scheme, host and port, which the login limiter, the session cookie's
``Secure`` and the Origin check use.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from typing import Any

from ..errors import NotAvailable
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
        """Serve the web app until the server's thread ends (raising NotAvailable) or the task is
        cancelled; the server and the app are closed either way."""
        from ..indiwsgi import close_server

        app = self._make_app()
        server, where = self._make_server(app)
        ended = _serve_in_thread(server, asyncio.get_running_loop())
        self._server = server
        self.status = f"serving the web client on {where}"
        log.info("%s", self.status)
        try:
            await ended
            raise NotAvailable("the web server's thread ended")
        finally:
            self._server = None
            app.close()  # first: its event streams end, and free the threads that serve them
            await asyncio.to_thread(close_server, server)

    def _make_app(self) -> Any:
        """The WSGI app: the sites' panel when ``[site.*]`` sections name sites, else the one site's."""
        from ..indiwsgi import make_wsgi_app

        if self.settings.redis is None:  # the web schema always has [redis]
            raise NotAvailable("the web client needs a [redis] section")
        options = self.settings.options
        if self.settings.sites:  # many sites, one panel: /sites/<name>/ each (see indiwsgi.sites)
            from ..indiwsgi.sites import make_sites_app

            app = make_sites_app(
                self.settings.redis,
                self.settings.sites,
                users=self.settings.users,
                session_seconds=options["session_minutes"] * 60,
            )
            log.info("serving the sites %s", ", ".join(site.name for site in self.settings.sites))
            return app
        return make_wsgi_app(
            self.settings.redis,
            blob_folder=options["blob_folder"],
            users=self.settings.users,
            session_seconds=options["session_minutes"] * 60,
        )

    def _make_server(self, app: Any) -> tuple[Any, str]:
        """A waitress server for ``app`` on the sockets systemd passed, else on ``listen_host`` and
        ``listen_port`` (a warning if that is reachable from other machines); and where it listens."""
        from ..indiwsgi import make_server, warn_if_exposed

        options = self.settings.options
        sockets = activated_sockets()
        proxy = {
            "trusted_proxy": options["trusted_proxy"],
            "trusted_proxy_headers": options["trusted_proxy_headers"],
        }
        if sockets:
            server = make_server(app, sockets=sockets, **proxy)
            where = "the socket systemd passed"
        else:
            host, port = options["listen_host"], options["listen_port"]
            warn_if_exposed(host, logins=self.settings.users is not None)
            server = make_server(app, host=host, port=port, **proxy)
            where = f"http://{host}:{port}/"
        if options["trusted_proxy"]:
            where += f", trusting the proxy at {options['trusted_proxy']}"
        return server, where


def _serve_in_thread(server: Any, loop: asyncio.AbstractEventLoop) -> asyncio.Future[None]:
    """Run waitress's loop in a thread of its own; the future is done when that loop ends (on close(),
    or by an error: the daemon exits, and is restarted)."""
    ended: asyncio.Future[None] = loop.create_future()

    def end() -> None:
        if not ended.done():
            ended.set_result(None)

    def serve() -> None:
        try:
            server.run()
        finally:
            try:
                loop.call_soon_threadsafe(end)
            except RuntimeError:  # the loop is closed: the service stopped, nobody waits for this end
                pass

    threading.Thread(target=serve, name="waitress", daemon=True).start()
    return ended
