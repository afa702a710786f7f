"""The web client: a WSGI application that learns every device and property from the Redis store.

``make_wsgi_app(redis_host, blob_folder=None, url="/")`` returns the application:

- ``/``: the devices; ``/device/<name>``: its properties grouped by INDI group,
  with state lights (Idle/Ok/Busy/Alert), labels, values formatted as their
  format asks (sexagesimal included), the last message, and a form for each
  property the perm rules let a client set (text, numbers in decimal or
  sexagesimal, switches by their rule, BLOB upload with optional gzip);
- live values: the page keeps ``/api/stream/<name>`` open (server-sent events: its
  whole state, then every change as it happens) and updates values, lights, BLOB
  links and messages in place (it polls ``/api/device/<name>`` when refused a stream); forms are
  sent in the background; a device is read in three pipelined Redis round trips;
- ``/blobs/<file>``: received BLOBs, from the blob folder only;
- ``/login``, ``/logout`` when users are configured (the ``indiredis-web`` service requires them).

It is a plain WSGI application served by waitress (``indiredis-web``): the
original's skipole framework was not taken, see the README.  Every string a
device provides is HTML-escaped.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..hosts import RedisServer
from .app import WebApp
from .auth import SESSION_SECONDS, Sessions, User
from .forms import MAX_BODY
from .history import INTERVAL
from .push import STREAMS_MAX

if TYPE_CHECKING:
    from waitress.server import BaseWSGIServer, MultiSocketServer

log = logging.getLogger(__name__)


class OncePerMinute(logging.Filter):
    """Lets one record through per minute: waitress warns "Task queue depth is N" for every request
    that waits for a thread, which at a burst of many viewers would fill the log; one line a minute
    still says the server is busy."""

    def __init__(self, period: float = 60.0) -> None:
        super().__init__()
        self.period, self._last = period, -period

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        if now - self._last < self.period:
            return False
        self._last = now
        return True


#: waitress's settings for many open pages (see :func:`make_server`)
SERVER_OPTIONS: dict[str, Any] = {
    "threads": 8 + STREAMS_MAX,  # an open page's event stream holds a thread (see .push)
    "channel_request_lookahead": 1,  # tells a stream that its page has gone
    "connection_limit": 1000,
    "asyncore_use_poll": True,
    "channel_timeout": 120,
    "max_request_body_size": MAX_BODY,
}


def make_server(
    app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]],
    host: str = "localhost",
    port: int = 8000,
    sockets: list[socket.socket] | None = None,
    trusted_proxy: str = "",
    trusted_proxy_headers: Iterable[str] = (),
) -> MultiSocketServer | BaseWSGIServer:
    """A waitress server for the web client (a :class:`WebApp`, or the panel of many sites of
    :mod:`.sites`), on ``host:port`` or on ``sockets`` (systemd's).

    Settings for many open pages: each open page holds one thread for its event stream (at most
    :data:`~.push.STREAMS_MAX`, sleeping until a change), eight more answer the other requests
    from the shared snapshot in well under a millisecond; the connection limit (waitress's default
    is 100, which left pages unanswered) is raised, with poll() instead of select() beyond 1024
    descriptors.  A body longer than the largest upload is refused before it is buffered.

    ``trusted_proxy``: the address of a reverse proxy in front; waitress then takes the client's
    address, the scheme, host and port from its ``trusted_proxy_headers`` (e.g. ``x-forwarded-for``,
    ``x-forwarded-proto``), and removes those headers from every other peer's requests.
    """
    from waitress.server import create_server

    queue_log = logging.getLogger("waitress.queue")
    if not any(isinstance(f, OncePerMinute) for f in queue_log.filters):
        queue_log.addFilter(OncePerMinute())
    options: dict[str, Any] = dict(SERVER_OPTIONS)
    if trusted_proxy:
        options.update(
            trusted_proxy=trusted_proxy,
            trusted_proxy_count=1,
            trusted_proxy_headers=set(trusted_proxy_headers),
            log_untrusted_proxy_headers=False,
        )
    if sockets:
        return create_server(app, sockets=sockets, **options)
    return create_server(app, host=host, port=port, **options)


#: seconds :func:`close_server` waits for the server's threads to end
THREADS_GRACE = 5


def close_server(server: MultiSocketServer | BaseWSGIServer) -> None:
    """Stop a server of :func:`make_server` for good: its sockets, and its worker threads, which
    waitress's ``close()`` leaves waiting for work (8 + :data:`~.push.STREAMS_MAX` of them a server,
    so that each reload that makes a new server would leave that many more).  Blocks up to
    :data:`THREADS_GRACE` seconds while threads finish what they serve (close the app first: its
    event streams then end); waitress logs those still running after that."""
    server.close()
    server.task_dispatcher.shutdown(timeout=THREADS_GRACE)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a listening address) is reachable from this machine only."""
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_exposed(host: str, *, logins: bool) -> None:
    """Log a warning when the web client serves ``host``, not a loopback address, without logins:
    anyone who reaches it may then drive the instruments."""
    if not logins and not is_loopback(host):
        log.warning(
            "serving the web client on %s without logins: anyone who can reach it may drive the "
            "instruments (use the indiredis-web service, which asks for a login, or listen on localhost)",
            host or "every address",
        )


def make_wsgi_app(
    redis_host: RedisServer,
    blob_folder: str | os.PathLike[str] | None = None,
    url: str = "/",
    users: dict[str, User] | None = None,
    session_seconds: int = SESSION_SECONDS,
    history_interval: float = INTERVAL,
    sessions: Sessions | None = None,
) -> WebApp:
    """The web client's WSGI application for the Redis store of ``redis_host``.

    ``blob_folder`` is where inditoredis writes received BLOBs (offered for
    download; None: no downloads); ``url`` is the path the application answers
    under, as in the original package (``"/"``, or e.g. ``"/indi"`` behind a
    proxy; a WSGI dispatcher's SCRIPT_NAME is honoured as well).  It never
    returns None: the original returned None without skipole, this client
    does not need it.

    With ``users`` (name -> :class:`~indiredis.indiwsgi.auth.User`), every page
    needs a login, requests that set values need the operator role and the
    session's CSRF token (see :mod:`indiredis.indiwsgi.auth`); without, it is
    open, as the original package's client was (for a single trusted machine).

    ``history_interval``: at most one value per that many seconds is kept in an element's history
    (see :mod:`indiredis.indiwsgi.history`).

    ``sessions``: the logins of another app of the same process to share (the apps of the sites of
    :mod:`indiredis.indiwsgi.sites`), instead of its own made from ``users``.
    """
    return WebApp(
        redis_host,
        str(blob_folder) if blob_folder else None,
        users,
        url,
        session_seconds,
        history_interval,
        sessions,
    )
