"""The daemon shell: runs one service under the systemd notify protocol.

- ``READY=1`` once the service is ready (a bridge: connected on both sides);
- ``STATUS=`` whenever the service's one-sentence status changes;
- ``WATCHDOG=1`` at half of ``$WATCHDOG_USEC``, from a task on the event loop
  that does the work, so a hung loop stops the pings and systemd restarts
  the daemon;
- SIGHUP: ``RELOADING=1``, the configuration is read again and the service
  rebuilt if it changed (a bad new configuration is refused with one log line
  and the running service kept), then ``READY=1`` once the service is ready;
- SIGTERM / SIGINT: ``STOPPING=1``, clean shutdown, exit status 0.
"""

from __future__ import annotations

import asyncio
import io
import logging
import signal
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigError
from ..events import Event, journal_fields
from .config import Settings, load
from .logsetup import set_level
from .notify import Notifier, watchdog_interval

log = logging.getLogger(__name__)

STATUS_PERIOD = 0.2  # seconds between looks at the service's state


class Service(Protocol):
    """What the daemon runs: a bridge, or the web server."""

    @property
    def ready(self) -> bool: ...

    @property
    def status(self) -> str: ...

    async def run(self) -> None: ...


def build_service(settings: Settings, config_path: Path | str) -> Service:
    """The service object for validated settings (nothing connects until it runs).

    A value the bridge itself refuses (e.g. an ``mqtt_id`` with ``/`` in it)
    raises :class:`ConfigError` naming ``config_path``.
    """
    try:
        if settings.service == "web":
            from .web import WebService

            return WebService(settings)
        from .catalog import build_bridge

        return build_bridge(settings)
    except ValueError as exc:
        raise ConfigError(f"{config_path}: [service] {exc}") from None


def log_tasks() -> None:
    """Log where every task of the event loop waits (on SIGUSR1: for a daemon that seems stuck)."""
    tasks = asyncio.all_tasks()
    log.warning("SIGUSR1: %d tasks", len(tasks))
    for task in tasks:
        stack = io.StringIO()
        task.print_stack(limit=8, file=stack)
        log.warning("%s", stack.getvalue().rstrip())


class Daemon:
    """Runs a service, tells systemd about it, and handles SIGHUP / SIGTERM."""

    def __init__(
        self,
        settings: Settings,
        config_path: Path,
        notifier: Notifier | None = None,
        service: Service | None = None,
    ) -> None:
        """``service``: the one built from ``settings`` already, if any."""
        self.settings = settings
        self.config_path = config_path
        self.notifier = notifier or Notifier()
        self.service: Service = service if service is not None else build_service(settings, config_path)
        self._task: asyncio.Task[Any] | None = None
        self._stop = asyncio.Event()
        self._reload = asyncio.Event()
        self._ready_sent = False
        self._last_status = ""

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the exit status."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._reload.set)
        loop.add_signal_handler(signal.SIGUSR1, log_tasks)
        interval = watchdog_interval()
        watchdog = asyncio.ensure_future(self._ping_watchdog(interval)) if interval else None
        self._start()
        try:
            while not self._stop.is_set():
                if self._reload.is_set():
                    self._reload.clear()
                    await self._do_reload()
                self._report()
                try:
                    await asyncio.wait_for(self._stop.wait(), STATUS_PERIOD)
                except TimeoutError:
                    pass
                if self._task is not None and self._task.done() and not self._task.cancelled():
                    error = self._task.exception()
                    log.critical("%s stopped unexpectedly: %s", self.settings.service, error or "it returned")
                    return 1
        finally:
            if watchdog is not None:  # systemd stops watching at STOPPING=1: no pings after it
                watchdog.cancel()
            self.notifier.stopping()
            log.info("stopping %s", self.settings.service)
            await self._halt()
        return 0

    async def _ping_watchdog(self, interval: float) -> None:
        """``WATCHDOG=1`` every ``interval`` seconds, for as long as this loop runs tasks."""
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    def _start(self) -> None:
        self._ready_sent = False
        self._last_status = ""
        self._task = asyncio.ensure_future(self.service.run())

    async def _halt(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])

    def _report(self) -> None:
        status = self.service.status
        if status != self._last_status:
            self._last_status = status
            self.notifier.status(status)
        if self.service.ready and not self._ready_sent:
            self._ready_sent = True
            self.notifier.ready()
            log.info("%s ready: %s", self.settings.service, status)

    async def _do_reload(self) -> None:
        """Re-read the configuration; replace the service only when it changed and the new one builds."""
        self.notifier.reloading()
        log.info("reloading %s", self.config_path)
        from .catalog import apply_in_place

        try:
            fresh = load(self.settings.service, self.config_path)
            in_place = apply_in_place(self.service, self.settings, fresh)  # e.g. drivers added or removed
            unchanged = in_place is not None or fresh.same_service(self.settings)
            replacement = None if unchanged else build_service(fresh, self.config_path)
        except ConfigError as exc:
            refused = journal_fields(Event.CONFIG_ERROR)
            log.error("reload refused, keeping the running configuration: %s", exc, extra=refused)
            self._reloaded()
            return
        set_level(fresh.options["log_level"])
        self.settings = fresh
        if replacement is None:
            log.info("%s", in_place or f"configuration unchanged, {self.settings.service} keeps running")
            self._reloaded()
            return
        log.info("configuration changed, restarting %s", self.settings.service)
        await self._halt()
        self.service = replacement
        self._start()  # READY=1 again once the new service is ready

    def _reloaded(self) -> None:
        """The reload is over with the same service: ``READY=1`` again, unless it never was (then it comes
        as usual, once the service is ready: systemd must not take a reload for the end of start-up)."""
        if self._ready_sent:
            self.notifier.ready()
