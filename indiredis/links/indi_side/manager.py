"""The Driver Manager: the driver pool seen as an INDI device, without I/O.

The pool of ``driverstoredis`` / ``driverstomqtt`` presents itself as one more
device (default name "Driver Manager"), so that any INDI client (the web
panel, ``indiredis.tools``, KStars, ``indi_setprop`` through ``mqtttoport``)
sees the drivers and acts on them with no new protocol.  Per configured
driver, in a group named after it (``<key>`` is the executable's name, with
anything but letters, digits and ``_`` made ``_``):

- ``<key>_STATUS``: a light, ``Ok`` running, ``Busy`` restarting, ``Alert``
  failed (given up after repeated crashes), ``Idle`` stopped;
- ``<key>_INFO``: texts ``STATE``, ``EXECUTABLE``, ``PID``, ``LAST_EXIT``
  (exit status or signal) and ``LAST_EXIT_TIME``;
- ``<key>_RESTARTS``: the number ``COUNT`` of restarts since the bridge started;
- ``<key>_STDERR``: the text ``LINES``, the last lines the driver wrote on stderr;
- ``<key>_CONTROL``: switches ``RESTART``, ``STOP`` and ``START`` (``Busy``
  while the action runs, then ``Ok``).

A client request can only name a ``<key>_CONTROL`` property of a configured
driver and one of those three switches: :meth:`ManagerDevice.request` maps it to
a :class:`Command` for that configured driver, and refuses anything else with a
:class:`Refusal` (an INDI ``message`` for the client).  No request ever carries
an executable: what runs is what the configuration lists.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ...errors import InvalidValue
from ...protocol.messages import Message, NewSwitchVector, NewVector
from ...protocol.vocabulary import Action, Permission, PropertyState, SwitchRule, SwitchState, VectorKind
from ...protocol.xmlout import indi_timestamp

DEFAULT_MANAGER_DEVICE = "Driver Manager"
STDERR_LINES = 10  # stderr lines shown per driver


class DriverState(enum.Enum):
    """What a driver is doing, as the manager shows it (the value is the INDI state of its light)."""

    RUNNING = PropertyState.OK
    RESTARTING = PropertyState.BUSY
    FAILED = PropertyState.ALERT
    STOPPED = PropertyState.IDLE

    @property
    def word(self) -> str:
        """'running', 'restarting', 'failed' or 'stopped'."""
        return self.name.lower()


class DriverAction(enum.Enum):
    """What a client may ask of a driver (the switch element names of ``<key>_CONTROL``)."""

    RESTART = "RESTART"
    STOP = "STOP"
    START = "START"


@dataclass(frozen=True)
class GiveUp:
    """The give-up policy: a driver that crashes ``crashes`` times within ``seconds`` is left stopped
    (state failed) until a client starts it again."""

    crashes: int
    seconds: float

    def __post_init__(self) -> None:
        if self.crashes < 1 or self.seconds <= 0:
            raise InvalidValue("give-up needs at least one crash within a positive number of seconds")


@dataclass(frozen=True)
class DriverReport:
    """What the manager shows of one driver."""

    key: str
    executable: str
    state: DriverState
    pid: int | None = None
    restarts: int = 0
    last_exit: str = ""
    last_exit_time: str = ""
    stderr: tuple[str, ...] = ()
    busy: bool = False  # a client's action on the driver is under way


@dataclass(frozen=True)
class Command:
    """A valid client request: ``action`` on the configured driver ``key``."""

    key: str
    action: DriverAction


@dataclass(frozen=True)
class Refusal:
    """A refused client request: the INDI messages that say why."""

    messages: tuple[Message, ...]


def driver_key(label: str, taken: Iterable[str] = ()) -> str:
    """A property-name prefix for a driver: its name with anything but letters, digits and ``_`` made
    ``_``, followed by ``_2``, ``_3`` ... when ``taken`` already holds it."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", label) or "driver"
    used = set(taken)
    key, number = base, 1
    while key in used:
        number += 1
        key = f"{base}_{number}"
    return key


class ManagerDevice:
    """Builds the Driver Manager's messages and checks client requests (pure: no I/O, no state but its
    name)."""

    def __init__(self, device: str = DEFAULT_MANAGER_DEVICE) -> None:
        if not device or not device.strip():
            raise InvalidValue("the Driver Manager's device name must not be empty")
        self.device = device

    # -- what the device says ------------------------------------------------------------------
    def definitions(self, reports: Iterable[DriverReport]) -> list[Message]:
        """Every property of the device (the answer to ``getProperties``)."""
        return [message for report in reports for message in self.driver_definitions(report)]

    def driver_definitions(self, report: DriverReport) -> list[Message]:
        """The ``def*Vector`` messages of one driver."""
        stamp, idle, ro = indi_timestamp(), PropertyState.IDLE, Permission.RO
        control = self._control_state(report)
        return [
            self._vector(Action.DEF, VectorKind.LIGHT, report, "STATUS", report.state.value, stamp, "Status"),
            self._vector(Action.DEF, VectorKind.TEXT, report, "INFO", idle, stamp, "Process", ro),
            self._vector(Action.DEF, VectorKind.NUMBER, report, "RESTARTS", idle, stamp, "Restarts", ro),
            self._vector(Action.DEF, VectorKind.TEXT, report, "STDERR", idle, stamp, "Last stderr lines", ro),
            self._vector(
                Action.DEF, VectorKind.SWITCH, report, "CONTROL", control, stamp, "Control", Permission.RW
            ),
        ]

    def updates(self, report: DriverReport) -> list[Message]:
        """The ``set*Vector`` messages of one driver after a change of its state."""
        stamp, idle = indi_timestamp(), PropertyState.IDLE
        return [
            self._vector(Action.SET, VectorKind.LIGHT, report, "STATUS", report.state.value, stamp),
            self._vector(Action.SET, VectorKind.TEXT, report, "INFO", idle, stamp),
            self._vector(Action.SET, VectorKind.NUMBER, report, "RESTARTS", idle, stamp),
            self._vector(
                Action.SET, VectorKind.SWITCH, report, "CONTROL", self._control_state(report), stamp
            ),
        ]

    def stderr_update(self, report: DriverReport) -> Message:
        """The ``setTextVector`` of one driver's last stderr lines."""
        return self._vector(
            Action.SET, VectorKind.TEXT, report, "STDERR", PropertyState.IDLE, indi_timestamp()
        )

    def deletions(self, key: str) -> list[Message]:
        """``delProperty`` for each property of a driver no longer configured."""
        stamp = indi_timestamp()
        return [
            Message.del_property(self.device, f"{key}_{suffix}", stamp)
            for suffix in ("STATUS", "INFO", "RESTARTS", "STDERR", "CONTROL")
        ]

    def notice(self, text: str) -> Message:
        """An INDI ``message`` from the device."""
        return Message.indi_message(text, self.device)

    @staticmethod
    def _control_state(report: DriverReport) -> PropertyState:
        if report.busy or report.state is DriverState.RESTARTING:
            return PropertyState.BUSY
        return PropertyState.ALERT if report.state is DriverState.FAILED else PropertyState.OK

    def _vector(
        self,
        action: Action,
        kind: VectorKind,
        report: DriverReport,
        suffix: str,
        state: PropertyState,
        stamp: str,
        label: str = "",
        perm: Permission = Permission.RO,
    ) -> Message:
        attrs = {"device": self.device, "name": f"{report.key}_{suffix}", "state": state, "timestamp": stamp}
        defining = action is Action.DEF
        if defining:
            attrs.update(label=label, group=report.key)
            if kind is not VectorKind.LIGHT:
                attrs.update(perm=perm, timeout="60" if kind is VectorKind.SWITCH else "0")
            if kind is VectorKind.SWITCH:
                attrs["rule"] = SwitchRule.AT_MOST_ONE
        members = [
            (kind.member_tag(action), {"name": name, **({"label": text} if defining else {}), **extra}, value)
            for name, text, value, extra in _elements(kind, suffix, report, defining=defining)
        ]
        return Message.build(kind.tag(action), attrs, members)

    # -- what clients ask ----------------------------------------------------------------------
    def request(self, message: Message, keys: Iterable[str]) -> Command | Refusal | None:
        """Check a client message for this device against the configured drivers' ``keys``.

        ``None`` when there is nothing to do (``getProperties``, ``enableBLOB``, a switch vector with no
        switch ``On``); a :class:`Command` for a valid request; a :class:`Refusal` otherwise.
        """
        if not isinstance(message, NewVector):
            return None
        known = set(keys)
        key = message.name[: -len("_CONTROL")] if message.name.endswith("_CONTROL") else ""
        if not isinstance(message, NewSwitchVector) or key not in known:
            return Refusal(
                (
                    self.notice(
                        f"refused {message.tag} {message.name!r}: {self.device} only starts, stops and "
                        "restarts the drivers of its configuration "
                        f"({', '.join(sorted(known)) or 'none'}); nothing was run"
                    ),
                )
            )
        actions = [m.name for m in message.members if m.text.strip() == SwitchState.ON]
        unknown = [name for name in actions if name not in DriverAction.__members__]
        if unknown or len(actions) > 1:
            return Refusal(
                (
                    self.notice(
                        f"refused {message.name}: switch {', '.join(unknown or actions)} "
                        f"(one of {', '.join(DriverAction.__members__)} may be On); nothing was done"
                    ),
                )
            )
        return Command(key, DriverAction(actions[0])) if actions else None


def _elements(
    kind: VectorKind, suffix: str, report: DriverReport, *, defining: bool
) -> list[tuple[str, str, str, Mapping[str, str]]]:
    """(name, label, value, extra attributes) of each element of one of a driver's vectors."""
    if kind is VectorKind.LIGHT:
        return [("STATE", report.key, report.state.value, {})]
    if suffix == "INFO":
        return [
            ("STATE", "State", report.state.word, {}),
            ("EXECUTABLE", "Executable", report.executable, {}),
            ("PID", "Process id", str(report.pid or ""), {}),
            ("LAST_EXIT", "Last exit", report.last_exit, {}),
            ("LAST_EXIT_TIME", "Last exit time (UTC)", report.last_exit_time, {}),
        ]
    if suffix == "RESTARTS":
        extra = {"format": "%.0f", "min": "0", "max": "0", "step": "1"} if defining else {}
        return [("COUNT", "Restarts", str(report.restarts), extra)]
    if suffix == "STDERR":
        return [("LINES", "Lines", "\n".join(report.stderr), {})]
    return [(action.value, action.value.capitalize(), SwitchState.OFF, {}) for action in DriverAction]
