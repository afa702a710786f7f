"""``indiredis-indiserver``: Debian's ``indiserver`` with the drivers of ``/etc/indiredis/indiserver.ini``.

indiserver reads no configuration file; this command reads the INI, checks it, makes the FIFO through
which drivers are started and stopped while indiserver runs (``indiserver -f``), and then *becomes*
indiserver (``exec``), so that systemd supervises indiserver itself (``indiredis-indiserver.service``).
``inditoredis`` and ``inditomqtt`` then connect to it as to any indiserver.

Start or stop a driver at run time through the FIFO, as the indiredis user (or root)::

    echo "start indi_simulator_focus" > /run/indiredis/indiserver.fifo
    echo "stop indi_simulator_focus" > /run/indiredis/indiserver.fifo
"""

from __future__ import annotations

import argparse
import configparser
import os
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from .config import CONFIG_DIR, EX_CONFIG, Key, _convert, parse_file

DEFAULT_CONFIG = CONFIG_DIR / "indiserver.ini"
DEFAULT_FIFO = "/run/indiredis/indiserver.fifo"
KEYS = {
    "drivers": "INDI driver executables, separated by spaces (required)",
    "port": "TCP port indiserver listens on (default: [indi] port of common.ini beside this file, else 7624)",
    "fifo": f"FIFO for starting and stopping drivers while indiserver runs (default {DEFAULT_FIFO}; "
    "empty: none)",
    "restarts": "how many times indiserver restarts a driver that dies (default 10; 0: never)",
    "max_client_queue": "MB a client may fall behind before indiserver drops it (default 128)",
    "verbose": "indiserver's verbosity, 0 to 3 (default 0)",
}


@dataclass(frozen=True)
class IndiserverSettings:
    """The validated ``[service]`` section of ``indiserver.ini``."""

    drivers: tuple[str, ...]
    port: int = 7624
    fifo: str = DEFAULT_FIFO
    restarts: int = 10
    max_client_queue: int = 128
    verbose: int = 0

    def command(self, indiserver: str = "indiserver") -> list[str]:
        """indiserver's command line."""
        command = [
            indiserver,
            "-p",
            str(self.port),
            "-r",
            str(self.restarts),
            "-m",
            str(self.max_client_queue),
        ]
        if self.fifo:
            command += ["-f", self.fifo]
        if self.verbose:
            command.append("-" + "v" * self.verbose)
        return command + list(self.drivers)


def _whole(
    section: configparser.SectionProxy, key: str, default: int, low: int, high: int, where: str
) -> int:
    """``key`` of ``section`` as a whole number from ``low`` to ``high`` (read as the bridges' keys are)."""
    number: int = _convert(
        Key(key, int, default, KEYS[key], low=low, high=high), section.get(key, str(default)), where
    )
    return number


def _common_port(path: Path) -> int:
    """``[indi] port`` of ``common.ini`` beside ``path`` (what the bridges connect to), else 7624."""
    common = configparser.ConfigParser(interpolation=None)
    try:
        common.read(path.parent / "common.ini", encoding="utf-8")
        return common.getint("indi", "port", fallback=7624)
    except (configparser.Error, ValueError, UnicodeDecodeError):
        return 7624  # the bridges refuse that file with a clear line of their own


def load(path: Path) -> IndiserverSettings:
    """Read and check ``path``; :class:`ConfigError` names the file, section and key of a mistake."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\0none")
    parse_file(path, parser)
    unknown = [name for name in parser.sections() if name != "service"]
    if unknown:
        raise ConfigError(f"{path}: unknown section [{unknown[0]}] (the file has one section, [service])")
    if not parser.has_section("service"):
        raise ConfigError(f"{path}: [service] drivers is required ({KEYS['drivers']})")
    section = parser["service"]
    where = f"{path}: [service]"
    for key in section:
        if key not in KEYS:
            raise ConfigError(f"{where} unknown key {key!r}")
    drivers = tuple(section.get("drivers", "").split())
    if not drivers:
        raise ConfigError(f"{where} drivers is required ({KEYS['drivers']})")
    missing = [driver for driver in drivers if shutil.which(driver) is None]
    if missing:
        raise ConfigError(f"{where} drivers: {', '.join(missing)} not found on PATH")
    fifo = section.get("fifo", DEFAULT_FIFO).strip()
    if fifo and not os.path.isabs(fifo):
        raise ConfigError(f"{where} fifo = {fifo!r} is not an absolute path")
    return IndiserverSettings(
        drivers,
        _whole(section, "port", _common_port(path), 1, 65535, where),
        fifo,
        _whole(section, "restarts", 10, 0, 1_000_000, where),
        _whole(section, "max_client_queue", 128, 1, 1_000_000, where),
        _whole(section, "verbose", 0, 0, 3, where),
    )


def make_fifo(path: str) -> None:
    """Make the FIFO (mode 0600) unless it exists; raise ConfigError when something else is there."""
    try:
        os.mkfifo(path, 0o600)
    except FileExistsError:
        if not stat.S_ISFIFO(os.stat(path).st_mode):
            raise ConfigError(f"fifo {path} exists and is not a FIFO") from None
    except OSError as exc:
        raise ConfigError(f"fifo {path} cannot be made: {exc.strerror or exc}") from None


def parser() -> argparse.ArgumentParser:
    """The command line (also the manual page, through help2man)."""
    keys = "\n".join(f"    {key:<20} {text}" for key, text in KEYS.items())
    return argparse.ArgumentParser(
        prog="indiredis-indiserver",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="indiredis indiserver: runs Debian's indiserver with the INDI drivers of an INI file, "
        "for indiredis-inditoredis and indiredis-inditomqtt (indiredis-indiserver.service). It checks the "
        "file, makes the FIFO, then replaces itself with indiserver.",
        epilog=f"configuration keys ({DEFAULT_CONFIG}):\n  [service]\n{keys}\n"
        "start or stop a driver while indiserver runs, through the FIFO:\n"
        f'  echo "start indi_simulator_focus" > {DEFAULT_FIFO}\n'
        f'  echo "stop indi_simulator_focus" > {DEFAULT_FIFO}\n'
        "an example: /usr/share/doc/indiredis/examples/indiserver.ini (etc/ in the source)",
    )


def main(argv: list[str] | None = None) -> None:
    """Check the configuration, make the FIFO and exec indiserver (``--check``: check only;
    ``--print``: print the command instead of running it)."""
    command_line = parser()
    command_line.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help=f"default {DEFAULT_CONFIG}")
    command_line.add_argument("--check", action="store_true", help="validate the configuration and exit")
    command_line.add_argument("--print", action="store_true", help="print indiserver's command line and exit")
    args = command_line.parse_args(argv)
    try:
        settings = load(args.config)
        indiserver = shutil.which("indiserver")
        if indiserver is None:
            raise ConfigError("indiserver is not installed (Debian package indi-bin)")
        if args.check:
            print(f"{args.config}: configuration is valid")
            sys.exit(0)
        command = settings.command(indiserver)
        if args.print:
            print(" ".join(command))
            sys.exit(0)
        if settings.fifo:
            make_fifo(settings.fifo)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(EX_CONFIG)
    print(f"indiredis-indiserver: {' '.join(command)}", file=sys.stderr, flush=True)
    os.execv(indiserver, command)


if __name__ == "__main__":  # python3 -m indiredis.service.indiserver [--config PATH]
    main()
