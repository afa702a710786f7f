"""Many sites, one panel: one web process serving the key spaces of several sites of one Redis store.

Every site of a network has its "CCD Simulator", so each site's client side (its ``mqtttoredis``, or an
``inditoredis``) writes the central Redis under a key prefix and channels of its own (see
``docs/deployment.md``).  :class:`SitesApp` serves them all from one process, by composition: each
site is an ordinary web client (:func:`~indiredis.indiwsgi.make_wsgi_app` for that site's prefix and
channels) mounted under ``/sites/<name>/`` as a WSGI dispatcher mounts an application (the mount moves
from ``PATH_INFO`` to ``SCRIPT_NAME``, which the app builds its links and cookies from).  The
dispatcher itself answers:

- ``/``: the site list, each site with its health: its bridge's heartbeat (``P heartbeat``: which
  bridge, and what it says is down), its devices and how many are connected, and its newest frame
  (the newest BLOB ``timestamp`` of its key space); the page reloads itself every few seconds;
- ``/api/sites``: the same as JSON, for monitoring;
- ``/login``, ``/logout`` and ``/static/...``: the one login of the process, served by an app for the
  ``[redis]`` section's own key prefix (which holds the sessions, ``P websession:*``); every site's
  app shares those sessions, so one login serves every site, and the session cookie's path is the
  panel's root.  A site's own ``/sites/<name>/login`` and ``/logout`` lead there.

The server's threads for event streams (:data:`~.push.STREAMS_MAX`) are shared by the sites: each
site's app opens at most its share, and its pages beyond it poll, as a page refused a stream does.

Without sites the web client is the single app of :func:`~indiredis.indiwsgi.make_wsgi_app`, as
before; :func:`make_sites_app` is used only when sites are configured.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

import redis

from ..errors import InvalidValue
from ..hosts import RedisServer
from ..store.keys import KeySpace
from ..tools import _text
from . import pages
from .app import WebApp
from .auth import SESSION_SECONDS, User
from .history import INTERVAL
from .live import bridge_status
from .push import STREAMS_MAX
from .request import Request, mount_parts, request_parts
from .responses import Response, StartResponse, json_response, redirect, text_response
from .site import not_found
from .snapshot import read_devices

log = logging.getLogger(__name__)

#: a site's name: its URL segment, so letters, digits, "-" and "_" only
SITE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
HEALTH_SECONDS = 2.0  # a site's health is read at most once per this many seconds, whoever asks
REFRESH_SECONDS = 5  # the site list page reloads itself this often


@dataclass(frozen=True)
class PanelSite:
    """One site of the panel: its name (the URL segment ``/sites/<name>/``), the key prefix and channels
    its client-side bridge uses in the shared Redis, the folder its BLOB files are written to (empty:
    no downloads or previews) and the label shown (empty: the name)."""

    name: str
    keyprefix: str
    to_indi_channel: str
    from_indi_channel: str
    blob_folder: str = ""
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name

    def redis_host(self, shared: RedisServer) -> RedisServer:
        """The shared Redis server with this site's key prefix and channels."""
        return dataclasses.replace(
            shared,
            keyprefix=self.keyprefix,
            to_indi_channel=self.to_indi_channel,
            from_indi_channel=self.from_indi_channel,
        )


def check_sites(sites: Iterable[PanelSite]) -> None:
    """Raise :class:`~indiredis.errors.InvalidValue` naming the first problem: a name that is not a URL
    segment, an empty key prefix or channel, or two sites sharing a name, a key prefix or a channel (a
    request published on a shared channel would reach both sites' instruments)."""
    names: set[str] = set()
    prefixes: dict[str, str] = {}
    channels: dict[str, str] = {}
    for site in sites:
        if not SITE_NAME.match(site.name):
            raise InvalidValue(f"site {site.name!r}: a name is 1 to 64 letters, digits, '-' or '_'")
        if site.name in names:
            raise InvalidValue(f"site {site.name!r} is given twice")
        names.add(site.name)
        if not site.keyprefix:
            raise InvalidValue(f"site {site.name!r}: keyprefix must not be empty")
        if site.keyprefix in prefixes:
            raise InvalidValue(
                f"sites {prefixes[site.keyprefix]!r} and {site.name!r} share keyprefix {site.keyprefix!r}"
            )
        prefixes[site.keyprefix] = site.name
        for channel in (site.to_indi_channel, site.from_indi_channel):
            if not channel:
                raise InvalidValue(f"site {site.name!r}: to_indi_channel and from_indi_channel are required")
            if channel in channels:
                raise InvalidValue(f"sites {channels[channel]!r} and {site.name!r} share channel {channel!r}")
            channels[channel] = site.name


def _age(stamp: str, now: float) -> float | None:
    """Seconds since an ISO 8601 UTC time (no zone suffix means UTC), or None when unreadable."""
    try:
        when = datetime.fromisoformat(stamp.strip().removesuffix("Z"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, now - when.timestamp())


def _bridge_name(beat: Any) -> str:
    """The ``bridge`` field of a heartbeat ("" when absent or unreadable)."""
    if beat is None:
        return ""
    try:
        return str(json.loads(beat).get("bridge", ""))
    except (ValueError, AttributeError):
        return ""


def newest_frame(rconn: redis.Redis, keys: KeySpace, names: list[str]) -> dict[str, str] | None:
    """The newest BLOB of the devices ``names`` in three pipelined round trips after the first:
    device, property, element, timestamp, file name; None before the first."""
    pipe = rconn.pipeline(transaction=False)
    for name in names:
        pipe.smembers(keys.properties(name))
    props = [(device, _text(p)) for device, found in zip(names, pipe.execute(), strict=True) for p in found]
    for device, prop in props:
        pipe.hget(keys.attributes(prop, device), "vector")
    blobs = [
        dp for dp, vector in zip(props, pipe.execute(), strict=True) if _text(vector or b"") == "BLOBVector"
    ]
    for device, prop in blobs:
        pipe.smembers(keys.elements(prop, device))
    elements = [(d, p, _text(e)) for (d, p), found in zip(blobs, pipe.execute(), strict=True) for e in found]
    for device, prop, element in elements:
        pipe.hmget(keys.elementattributes(element, prop, device), "timestamp", "filepath")
    frame: dict[str, str] | None = None
    for (device, prop, element), (stamp, path) in zip(elements, pipe.execute(), strict=True):
        stamp_text, path_text = _text(stamp or b""), _text(path or b"")
        if path_text and (frame is None or stamp_text > frame["timestamp"]):
            frame = {
                "device": device,
                "property": prop,
                "element": element,
                "timestamp": stamp_text,
                "file": path_text.rsplit("/", 1)[-1],
            }
    return frame


def read_health(rconn: redis.Redis, site: PanelSite) -> dict[str, Any]:
    """A site's health from its key space, in five pipelined round trips: its bridge's heartbeat
    (``bridge``, ``ok``, ``problems``), its devices (``devices``: names, ``connected``: how many have
    CONNECTION On) and its newest frame (``frame``, see :func:`newest_frame`)."""
    keys = KeySpace(site.keyprefix)
    beat = rconn.get(keys.heartbeat())
    status = bridge_status(None if beat is None else _text(beat).encode())
    summaries = read_devices(rconn, RedisServer(keyprefix=site.keyprefix))
    names = [summary.name for summary in summaries]
    return {
        "name": site.name,
        "label": site.title,
        "bridge": _bridge_name(beat),
        "ok": status["ok"],
        "problems": status["problems"],
        "devices": names,
        "connected": sum(1 for summary in summaries if summary.connected),
        "frame": newest_frame(rconn, keys, names),
    }


class SitesApp:
    """The WSGI dispatcher of many sites (see the module docstring)."""

    def __init__(
        self,
        redis_host: RedisServer,
        sites: Iterable[PanelSite],
        users: dict[str, User] | None = None,
        url: str = "/",
        session_seconds: int = SESSION_SECONDS,
        history_interval: float = INTERVAL,
    ) -> None:
        self.sites = {site.name: site for site in sites}
        check_sites(self.sites.values())
        if not self.sites:
            raise InvalidValue("a panel of sites needs at least one site")
        self.mount = mount_parts(url)
        self.redis_host = redis_host
        # the panel's own app: the logins (sessions under the [redis] prefix), static files, 404 pages
        self.home = WebApp(redis_host, None, users, url, session_seconds, history_interval)
        self.apps = {
            site.name: WebApp(
                site.redis_host(redis_host),
                site.blob_folder or None,
                users,
                "/",
                session_seconds,
                history_interval,
                self.home.access.sessions,
            )
            for site in self.sites.values()
        }
        for app in self.apps.values():  # the server's stream threads are shared: so are the slots
            app.cache.hub.streams_max = max(1, STREAMS_MAX // len(self.apps))
            app.site.in_panel = True  # its pages link back to the site list
        self._health: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop every site app's watcher thread."""
        for app in self.apps.values():
            app.close()
        self.home.close()

    # -- dispatching ---------------------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        parts = request_parts(environ)
        base = mount_parts(environ.get("SCRIPT_NAME", "")) + self.mount
        rest = parts[len(base) :] if parts[: len(base)] == base else None
        if rest and rest[0] == "sites" and len(rest) >= 2 and rest[1] in self.apps:
            return self.to_site(environ, start_response, rest[1], rest[2:])
        if rest is not None and (rest[:1] in (["login"], ["logout"]) or rest[:1] == ["static"]):
            return self.home(environ, start_response)
        req = Request(environ, rest or [], self.home.root(environ))
        if rest in ([], ["sites"], ["api", "sites"]):
            try:
                answer = self.own(req)
            except redis.RedisError as exc:
                log.warning("the site list cannot be read: %s", exc)
                answer = text_response(
                    "503 Service Unavailable", "The Redis store cannot be reached; try again."
                )
            return answer(environ, start_response)
        return not_found(req)(environ, start_response)

    def to_site(
        self, environ: dict[str, Any], start_response: StartResponse, name: str, rest: list[str]
    ) -> Iterable[bytes]:
        """The request passed to the site's app, its mount moved from PATH_INFO to SCRIPT_NAME."""
        if rest in (["login"], ["logout"]):  # one login for every site: the panel's
            return redirect(self.home.root(environ) + "/" + rest[0])(environ, start_response)
        moved = "".join("/" + part for part in [*self.mount, "sites", name])
        path = environ.get("PATH_INFO", "")
        if not (path == moved or path.startswith(moved + "/")):
            req = Request(environ, [], self.home.root(environ))
            return not_found(req)(environ, start_response)
        # WSGI mounting (as any dispatcher does, PEP 3333): the site's app gets a *copy* of the
        # environ whose SCRIPT_NAME holds the mount and PATH_INFO the rest; this request's own
        # environ is left as it is, and nothing is kept for later.
        inner = dict(
            environ,
            SCRIPT_NAME=environ.get("SCRIPT_NAME", "").rstrip("/") + moved,
            PATH_INFO=path[len(moved) :],
        )
        return self.apps[name](inner, start_response)

    def own(self, req: Request) -> Response:
        """The site list page, its JSON, or the redirect of ``/sites`` to it."""
        if req.parts == ["sites"]:
            return redirect(req.root + "/")
        if req.method != "GET":
            return Response("405 Method Not Allowed", b"", headers=[("Allow", "GET")])
        access = self.home.access
        req = dataclasses.replace(req, visitor=access.visitor(req))
        refusal = access.refusal(req, write=False, api=bool(req.parts))
        if refusal is not None:
            return refusal
        healths = [self.health(site) for site in self.sites.values()]
        if req.parts == ["api", "sites"]:
            return json_response({"sites": healths})
        viewer = req.visitor.viewer(req.root, blob_links=False)
        return Response("200 OK", site_list_page(healths, viewer, time.time()))

    def health(self, site: PanelSite) -> dict[str, Any]:
        """The site's health, read again when older than :data:`HEALTH_SECONDS`."""
        now = time.monotonic()
        with self._lock:
            cached = self._health.get(site.name)
        if cached is not None and now - cached[0] < HEALTH_SECONDS:
            return cached[1]
        found = read_health(self.home.site.rconn, site)
        with self._lock:
            self._health[site.name] = (now, found)
        return found


def _when(stamp: str, now: float) -> str:
    age = _age(stamp, now)
    if age is None:
        return escape(stamp)
    if age < 120:
        ago = f"{age:.0f} s ago"
    elif age < 7200:
        ago = f"{age / 60:.0f} min ago"
    else:
        ago = f"{age / 3600:.1f} h ago"
    return f"<time datetime='{escape(stamp, quote=True)}'>{ago}</time>"


def site_row(health: dict[str, Any], root: str, now: float) -> str:
    """One site of the list: its link, health light and words, devices and newest frame."""
    name = health["name"]
    url = f"{root}/sites/{name}/"
    state = "Ok" if health["ok"] else "Alert"
    bridge = escape(health["bridge"]) if health["bridge"] else "no bridge"
    problems = " ".join(escape(problem) for problem in health["problems"]) or "all links up"
    devices = health["devices"]
    frame = health["frame"]
    frame_text = (
        f"{escape(frame['device'])} {escape(frame['property'])}.{escape(frame['element'])}, "
        f"{_when(frame['timestamp'], now)} <small>{escape(frame['file'])}</small>"
        if frame
        else "none yet"
    )
    return (
        f"<li class='site' data-site='{escape(name, quote=True)}' data-ok='{int(health['ok'])}'>"
        f"<a href='{escape(url, quote=True)}'><span class='light' data-state='{state}'></span> "
        f"<strong>{escape(health['label'])}</strong></a>"
        f" <small class='conn'>{bridge}: {problems}</small>"
        f"<br><span class='devicecount'>{health['connected']} of {len(devices)} devices connected</span>"
        f"{': ' + escape(', '.join(devices)) if devices else ''}"
        f"<br><span class='frame'>Newest frame: {frame_text}</span></li>"
    )


def site_list_page(healths: list[dict[str, Any]], viewer: pages.Viewer, now: float) -> bytes:
    """The site list: the panel's bar (user, theme) and one row per site; reloads itself."""
    root = escape(viewer.root)
    who = ""
    if viewer.logins and viewer.user:
        who = (
            f"<span class='who'>{escape(viewer.user)} ({escape(viewer.role)})"
            f" <a href='{root}/logout' id='logout'>Log out</a></span>"
        )
    rows = "".join(site_row(health, viewer.root, now) for health in healths)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>"
        f"<title>Sites</title><style>{pages.STYLE}</style>"
        f"<script src='{root}/static/theme.js'></script></head><body data-root='{root}'>"
        f"<header class='top'><nav class='devices'><a href='{root}/' class='home'>Sites</a></nav>"
        f"<span class='spacer'></span>{who}"
        "<button type='button' id='theme' title='Light, dark or red (night vision)'>Theme</button></header>"
        f"<h1>Sites</h1><ul class='devicelist' id='sitelist'>{rows}</ul></body></html>"
    ).encode()


def make_sites_app(
    redis_host: RedisServer,
    sites: Iterable[PanelSite],
    users: dict[str, User] | None = None,
    url: str = "/",
    session_seconds: int = SESSION_SECONDS,
    history_interval: float = INTERVAL,
) -> SitesApp:
    """The panel of ``sites`` (see the module docstring): ``redis_host`` is the shared Redis server (its
    key prefix holds the logins), each site gets an ordinary web client for its own key prefix and
    channels under ``/sites/<name>/``; ``users`` as for :func:`~indiredis.indiwsgi.make_wsgi_app`
    (one login serves every site)."""
    return SitesApp(redis_host, sites, users, url, session_seconds, history_interval)
