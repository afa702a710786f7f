"""The ``indiredis-<service>`` commands: ``--config PATH``, ``--log-level``, ``--check``, ``--help``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import re
import sys
from pathlib import Path

from ..errors import ConfigError, ServiceUnavailable
from ..events import EVENT_MEANINGS, FIELD_MEANINGS, Event, journal_fields
from ..store.blobs import write_atomically
from ..store.keys import DEFAULT_LOG_LENGTHS
from .config import (
    EX_CONFIG,
    HOST_SECTIONS,
    LOG_LEVELS,
    SCHEMAS,
    default_path,
    load,
    redis_of,
    users_path,
)
from .logsetup import setup_logging

log = logging.getLogger(__name__)

EX_UNAVAILABLE = 69  # sysexits.h: this installation cannot run the service


def _help_epilog(service: str) -> str:
    schema = SCHEMAS[service]
    lines = [f"configuration keys ({default_path(service)}, over {default_path('common')}):"]
    sections = [("service", schema.service)] + [(name, HOST_SECTIONS[name]) for name in schema.hosts]
    for section, keys in sections:
        lines.append(f"  [{section}]")
        for key in keys.values():
            default = (
                "required"
                if key.required
                else f"default: {' '.join(key.default) if key.kind is list else key.default!s}"
            )
            if key.name == "password":
                default = "default: none"
            lines.append(f"    {key.name:<20} {key.help} ({default})")
    if schema.log_lengths:
        lines.append(
            "  [log_lengths]       history list lengths (default in brackets): "
            + ", ".join(f"{name} ({length})" for name, length in DEFAULT_LOG_LENGTHS.items())
        )
    lines.append(
        f"an example with every key: /usr/share/doc/indiredis/examples/{service}.ini (etc/ in the source)"
    )
    return "\n".join(lines + journal_help())


def journal_help() -> list[str]:
    """The journal's fields and MESSAGE_IDs, for --help and so the manual page."""
    lines = ["", "journal fields under systemd (journalctl FIELD=value; see docs/journal.md):"]
    lines += [f"  {name:<18} {meaning}" for name, meaning in FIELD_MEANINGS.items()]
    lines += ["", "journal MESSAGE_IDs, one per kind of state change:"]
    lines += [f"  {event.value}  {event.name}: {meaning}" for event, meaning in EVENT_MEANINGS.items()]
    return lines


def parser_for(service: str) -> argparse.ArgumentParser:
    schema = SCHEMAS[service]
    parser = argparse.ArgumentParser(
        prog=f"indiredis-{service}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=f"indiredis {service}: {schema.description}. Runs as a systemd Type=notify service "
        f"(indiredis-{service}.service) or in a terminal.",
        epilog=_help_epilog(service),
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=default_path(service),
        help=f"configuration file (default {default_path(service)}); common.ini is read "
        "from the same folder first",
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="overrides [service] log_level")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    if service == "web":
        parser.add_argument(
            "--add-user",
            metavar="NAME",
            help="add (or replace) a web user in the users' file "
            "beside the configuration (web-users.ini) and exit; the password is asked for, or read "
            "from standard input when it is not a terminal; replacing a user ends their sessions",
        )
        parser.add_argument(
            "--remove-user",
            metavar="NAME",
            help="remove a web user from the users' file, end their sessions, and exit",
        )
        parser.add_argument(
            "--role",
            choices=("operator", "observer"),
            default="operator",
            help="with --add-user: operator may set values, observer only watches (default operator)",
        )
    return parser


USER_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MIN_PASSWORD = 8
USERS_FILE_HEADER = (
    "# indiredis-web users, written by indiredis-web --add-user NAME [--role observer]\n"
    "# name = role:hash, role operator (may set values) or observer (watches only)\n[users]\n"
)


def add_user(config: Path, name: str, role: str) -> int:
    """Write ``name = role:hash`` into the users' file beside ``config`` (``web-users.ini``), replacing
    that user's line if any; the file is made with the mode and group of ``config``.  The exit status."""
    from ..indiwsgi.auth import hash_password  # here: only the web client has users

    if not USER_NAME.fullmatch(name):
        print("a user name is 1 to 64 letters, digits or _ . @ -", file=sys.stderr)
        return 2
    password = _read_password(name)
    if password is None:
        return 2
    users = users_path(config)
    text = users.read_text() if users.exists() else USERS_FILE_HEADER
    lines = [line for line in text.splitlines() if not _names_user(line, name)]
    replaced = len(lines) < len(text.splitlines())
    if "[users]" not in lines:
        lines.append("[users]")
    lines.insert(lines.index("[users]") + 1, f"{name} = {role}:{hash_password(password)}")
    _write_users(config, users, lines)
    print(f"{name} ({role}) {'replaced in' if replaced else 'added to'} {users}")
    if replaced:
        _end_sessions(config, name)
    return 0


def remove_user(config: Path, name: str) -> int:
    """Remove ``name`` from the users' file beside ``config`` and end their sessions.  The exit status."""
    users = users_path(config)
    text = users.read_text() if users.exists() else ""
    lines = [line for line in text.splitlines() if not _names_user(line, name)]
    if len(lines) == len(text.splitlines()):
        print(f"no user {name} in {users}", file=sys.stderr)
        return 2
    _write_users(config, users, lines)
    print(f"{name} removed from {users}")
    _end_sessions(config, name)
    return 0


def _names_user(line: str, name: str) -> bool:
    return re.match(rf"{re.escape(name)}\s*=", line) is not None


def _write_users(config: Path, users: Path, lines: list[str]) -> None:
    """Write the users' file atomically, with the mode and owner of the existing one (else of
    ``config``)."""
    template = users if users.exists() else config
    try:
        like = template.stat()
    except FileNotFoundError:
        like = None
    write_atomically(
        users,
        ("\n".join(lines) + "\n").encode(),
        (like.st_mode & 0o777) if like else 0o640,
        (like.st_uid, like.st_gid) if like and os.geteuid() == 0 else None,
    )


def _end_sessions(config: Path, name: str) -> None:
    """End the sessions of ``name`` in the Redis store of the web configuration ``config``; when it
    cannot be reached, say so: the sessions then end when the web service is reloaded."""
    import redis

    from ..indiwsgi.auth import end_sessions_of
    from ..redisconnect import redis_client
    from ..store.keys import KeySpace

    later = f"{name}'s sessions end when the web service is reloaded (systemctl reload indiredis-web)"
    try:
        host = redis_of("web", config)
        if host is None:
            return
        with redis_client(host, socket_timeout=5, socket_connect_timeout=5) as rconn:
            ended = end_sessions_of(rconn, KeySpace(host.keyprefix), name)
    except (ConfigError, redis.RedisError, OSError) as exc:
        print(f"cannot end the sessions in Redis ({exc}): {later}", file=sys.stderr)
        return
    plural = "" if ended == 1 else "s"
    print(f"{ended} session{plural} of {name} ended (reload the web service for it to use the changed users)")


def _read_password(name: str) -> str | None:
    """The new user's password: asked twice on a terminal, else one line of stdin; None (after saying
    why) when the two differ or it is too short."""
    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {name}: ")
        if password != getpass.getpass("again: "):
            print("the passwords differ", file=sys.stderr)
            return None
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        print(f"a password has at least {MIN_PASSWORD} characters", file=sys.stderr)
        return None
    return password


def run(service: str, argv: list[str] | None = None) -> int:
    """Parse the command line, load the configuration and run the daemon; the exit status."""
    args = parser_for(service).parse_args(argv)
    bridge = args.config.stem.removeprefix(f"{service}-")  # a template unit's instance name, or service
    setup_logging(args.log_level or "info", bridge)
    if getattr(args, "add_user", None):
        return add_user(args.config, args.add_user, args.role)
    if getattr(args, "remove_user", None):
        return remove_user(args.config, args.remove_user)
    from .daemon import Daemon, build_service

    try:
        settings = load(service, args.config)
        built = build_service(
            settings, args.config
        )  # what the bridge itself refuses, e.g. an mqtt_id with '/'
        if args.check:
            print(f"{args.config}: configuration is valid")
            return 0
    except ConfigError as exc:
        log.error("configuration error: %s", exc, extra=journal_fields(Event.CONFIG_ERROR))
        return EX_CONFIG
    except ServiceUnavailable as exc:
        log.error("%s", exc)
        return EX_UNAVAILABLE
    setup_logging(args.log_level or settings.options["log_level"], bridge)
    log.info("indiredis-%s starting with %s", service, ", ".join(settings.files))

    async def main() -> int:
        return await Daemon(settings, args.config, service=built).run()

    return asyncio.run(main())


def main() -> None:
    """Entry point of every ``indiredis-<service>`` script: the service is the script's name."""
    name = Path(sys.argv[0]).name
    service = name[len("indiredis-") :] if name.startswith("indiredis-") else ""
    if service not in SCHEMAS:
        if len(sys.argv) > 1 and sys.argv[1] in SCHEMAS:  # python3 -m indiredis.service <service> ...
            service = sys.argv.pop(1)
        else:
            sys.exit(f"usage: python3 -m indiredis.service {{{','.join(SCHEMAS)}}} [--config PATH] ...")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(run(service))


if __name__ == "__main__":  # python3 -m indiredis.service.cli <service> [--config PATH] ...
    main()
