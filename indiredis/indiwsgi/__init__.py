"""The web client: a WSGI application that learns every device and property from the Redis store.

``make_wsgi_app(redis_host, blob_folder=None, url="/")`` returns the application:

- ``/``: the devices; ``/device/<name>``: its properties grouped by INDI group,
  with state lights (Idle/Ok/Busy/Alert), labels, values formatted as their
  format asks (sexagesimal included), the last message, and a form for each
  property the perm rules let a client set (text, numbers in decimal or
  sexagesimal, switches by their rule, BLOB upload with optional gzip);
- live values: the page polls ``/api/device/<name>`` (JSON, ETag) every 0.3 s
  and updates values, lights, BLOB links and the message in place; forms are
  sent in the background; a device is read in three pipelined Redis round trips;
- ``/blobs/<file>``: received BLOBs, from the blob folder only;
- ``/login``, ``/logout`` when users are configured (the ``indiredis-web`` service requires them).

It is a plain WSGI application served by waitress (``indiredis-web``): the
original's skipole framework was not taken, see the README.  Every string a
device provides is HTML-escaped.
"""

from __future__ import annotations

import os

from ..hosts import RedisServer
from .app import WebApp
from .auth import SESSION_SECONDS, User


def make_wsgi_app(
    redis_host: RedisServer,
    blob_folder: str | os.PathLike[str] | None = None,
    url: str = "/",
    users: dict[str, User] | None = None,
    session_seconds: int = SESSION_SECONDS,
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
    """
    return WebApp(redis_host, str(blob_folder) if blob_folder else None, users, url, session_seconds)
