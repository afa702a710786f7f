"""INI configuration of the services: one schema, typed values, one clear line per mistake.

Each service reads ``common.ini`` (the ``[indi]``, ``[redis]`` and ``[mqtt]``
sections shared by every bridge on the machine) from the directory of its own
file, then its own ``<service>.ini``, whose sections override the common
ones key by key.  Every key of the Python API can be set.  Unknown sections
or keys, values of the wrong type and missing required keys raise
:class:`ConfigError` with the file, section and key, which the daemon prints
as one line before exiting with status 78 (``EX_CONFIG``).

Secrets: ``password`` may instead come from ``password_file``: a path, or a
bare name looked up in ``$CREDENTIALS_DIRECTORY`` (systemd ``LoadCredential=``).
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..bridgeconfig import Mqtt, Port, Queues, Store
from ..errors import ConfigError
from ..hosts import IndiServer, MQTTServer, RedisServer
from ..store.blobs import blob_folder_problem
from ..store.keys import DEFAULT_LOG_LENGTHS

CONFIG_DIR = Path("/etc/indiredis")
EX_CONFIG = 78
LOG_LEVELS = ("debug", "info", "warning", "error")

HostT = TypeVar("HostT", IndiServer, RedisServer, MQTTServer)
#: the headers of a trusted proxy the web client believes by default (``[service] trusted_proxy_headers``)
PROXY_HEADERS = ("x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-port")
KNOWN_PROXY_HEADERS = (*PROXY_HEADERS, "x-forwarded-by", "forwarded")


@dataclass(frozen=True)
class Key:
    """One configuration key: its type, default and the text ``--help`` and the examples show."""

    name: str
    kind: type
    default: Any
    help: str
    required: bool = False
    low: int | None = None  # whole numbers: the smallest value allowed
    high: int | None = None  # whole numbers: the largest value allowed


def _keys(*keys: Key) -> dict[str, Key]:
    return {key.name: key for key in keys}


#: the default of a host section's key that is the host's own (see :func:`_host_keys`)
HOST_DEFAULT: Any = object()
MIB = 1024 * 1024


def _host_keys(kind: type[IndiServer | RedisServer | MQTTServer], *keys: Key) -> dict[str, Key]:
    """A host section's keys; one whose default is :data:`HOST_DEFAULT` gets the default of the host's
    field of the same name (``indiredis.hosts``: the defaults live there)."""
    defaults = {f.name: f.default for f in dataclasses.fields(kind) if f.default is not dataclasses.MISSING}
    return _keys(
        *(dataclasses.replace(k, default=defaults[k.name]) if k.default is HOST_DEFAULT else k for k in keys)
    )


_PASSWORD = (
    Key("password", str, HOST_DEFAULT, "password; better in password_file"),
    Key(
        "password_file", str, "", "file holding the password, or a credential name in $CREDENTIALS_DIRECTORY"
    ),
)
_TLS = (
    Key("ssl", bool, HOST_DEFAULT, "use TLS"),
    Key(
        "ssl_ca_certs",
        str,
        HOST_DEFAULT,
        "CA file that signs the server's certificate (system CAs when empty)",
    ),
    Key("ssl_certfile", str, HOST_DEFAULT, "client certificate, when the server asks for one"),
    Key("ssl_keyfile", str, HOST_DEFAULT, "the client certificate's key"),
)

HOST_SECTIONS: dict[str, dict[str, Key]] = {
    "indi": _host_keys(
        IndiServer,
        Key("host", str, HOST_DEFAULT, "indiserver host"),
        Key("port", int, HOST_DEFAULT, "indiserver port", low=1, high=65535),
    ),
    "redis": _host_keys(
        RedisServer,
        Key("host", str, HOST_DEFAULT, "Redis host"),
        Key("port", int, HOST_DEFAULT, "Redis port", low=1, high=65535),
        Key("db", int, HOST_DEFAULT, "Redis database number", low=0),
        Key("username", str, HOST_DEFAULT, "ACL user name (Redis 6+); empty for the default user"),
        *_PASSWORD,
        Key("keyprefix", str, HOST_DEFAULT, "prefix of every key the bridge writes"),
        Key("to_indi_channel", str, HOST_DEFAULT, "channel clients publish INDI XML on"),
        Key("from_indi_channel", str, HOST_DEFAULT, "channel the bridge publishes INDI XML on"),
        *_TLS,
        Key("ssl_check_hostname", bool, HOST_DEFAULT, "check that the certificate names the host"),
        Key(
            "socket",
            str,
            "",
            "Unix socket of a local Redis, such as /run/redis/redis-server.sock (host and port are then "
            "not used)",
        ),
        Key(
            "sentinels",
            str,
            "",
            "Redis Sentinel: the sentinels as host:port, separated by commas; the master is asked of them",
        ),
        Key("service_name", str, "", "Redis Sentinel: the name of the master the sentinels watch"),
        Key("sentinel_password", str, "", "Redis Sentinel: the sentinels' own password; better in its file"),
        Key(
            "sentinel_password_file",
            str,
            "",
            "Redis Sentinel: file holding the sentinels' password, or a credential name in "
            "$CREDENTIALS_DIRECTORY",
        ),
    ),
    "mqtt": _host_keys(
        MQTTServer,
        Key("host", str, "localhost", "MQTT broker host"),  # mqtt_server() has no default host
        Key("port", int, HOST_DEFAULT, "MQTT broker port (8883 is usual with TLS)", low=1, high=65535),
        Key("username", str, HOST_DEFAULT, "user name; empty for anonymous"),
        *_PASSWORD,
        Key("to_indi_topic", str, HOST_DEFAULT, "topic root for client traffic"),
        Key("from_indi_topic", str, HOST_DEFAULT, "topic root for instrument traffic"),
        Key("snoop_control_topic", str, HOST_DEFAULT, "topic root for snoop requests"),
        Key("snoop_data_topic", str, HOST_DEFAULT, "topic root for snooped data"),
        *_TLS,
    ),
}

#: the keys of a web client's ``[site:NAME]`` section (see :mod:`indiredis.indiwsgi.sites`)
SITE_KEYS = _keys(
    Key("keyprefix", str, "", "the key prefix the site's client-side bridge writes", required=True),
    Key("to_indi_channel", str, "", "the channel the site's bridge reads client requests on", required=True),
    Key("from_indi_channel", str, "", "the channel the site's bridge publishes on", required=True),
    Key("blob_folder", str, "", "the folder the site's bridge writes BLOBs to (empty: no downloads)"),
    Key("label", str, "", "the site's name as shown (empty: NAME)"),
)
SITE_SECTION = "site:"

_LOG_LEVEL = Key("log_level", str, "info", "debug, info, warning or error")
_BLOBS = Key(
    "blob_folder", str, "/var/lib/indiredis/blobs", "folder for received BLOBs (never stored in Redis)"
)
#: blob retention of the bridges that write BLOB files: per element, the newest files are kept
_KEEP = (
    Key("blob_keep_files", int, 0, "newest BLOB files kept per element (0: every file)", low=0),
    Key("blob_keep_mb", int, 0, "megabytes of BLOB files kept per element (0: no limit)", low=0),
    Key(
        "blob_min_free_mb",
        int,
        -1,
        "megabytes kept free on the blob folder's file system: the oldest frames are deleted, then new "
        "BLOBs refused (-1: 1024 or 5 % of the file system, whichever is smaller; 0: no minimum)",
        low=-1,
    ),
)
_MAX = Key(
    "max_message_size",
    int,
    Queues.max_message_size,
    "largest INDI message accepted, in bytes (BLOB data streamed to the blob folder not counted)",
    low=1024,
)
_MAX_BLOB = Key(
    "max_blob_size",
    int,
    Store.max_blob_size,
    "largest BLOB file written to the blob folder, in bytes",
    low=1024,
)
_BUFFER = Key(
    "buffer_size",
    int,
    Queues.buffer_size,
    "messages each direction holds while its far side is down; beyond, "
    "the oldest are dropped and counted in the log",
    low=100,
    high=10_000_000,
)
_BUDGET = Key(
    "memory_budget_mb",
    int,
    Queues.memory_budget // MIB,
    "megabytes the bridge's queues may hold together, BLOB data included; beyond their shares, while "
    "the far side is down, the oldest BLOBs are dropped first, and an INDI port client that falls "
    "further behind is disconnected (see the data path documentation)",
    low=16,
    high=1024 * 1024,
)
_DRIVERS = Key("drivers", list, [], "INDI driver executables, separated by spaces", required=True)
_MANAGER = Key(
    "manager_device",
    str,
    "",
    "name of the INDI device that shows and restarts, stops and starts the drivers (empty: "
    '"Driver Manager", for driverstomqtt "Driver Manager <host name>")',
)
_GIVE_UP_CRASHES = Key(
    "give_up_crashes",
    int,
    0,
    "a driver that crashes this many times within give_up_seconds is left stopped until a client "
    "starts it (0: always restarted)",
    low=0,
)
_GIVE_UP_SECONDS = Key("give_up_seconds", int, 60, "the give-up policy's time window, in seconds", low=1)
_POOL = (_MANAGER, _GIVE_UP_CRASHES, _GIVE_UP_SECONDS)
_MQTT_ID = Key(
    "mqtt_id",
    str,
    "",
    "this bridge's name on the MQTT broker, unique there: its MQTT client id and the last level of the "
    "topics it publishes on (empty: <host name>-<service>, e.g. observatory-inditomqtt)",
)
_SUBSCRIBE = Key("subscribe_list", list, [], "ids of the bridges on the other side to serve (all when empty)")
_BATCHING = Key(
    "mqtt_batching",
    bool,
    Mqtt.mqtt_batching,
    "pack waiting messages into one MQTT message, numbered so that receivers detect gaps; "
    "no: one INDI message per MQTT message, for original 0.1.4 bridges receiving on the broker",
)


@dataclass(frozen=True)
class ServiceSchema:
    """Which sections a service uses and its own ``[service]`` keys."""

    name: str
    description: str
    hosts: tuple[str, ...]
    service: dict[str, Key]
    log_lengths: bool

    @property
    def writes_blobs(self) -> bool:
        """Whether the service writes received BLOBs into its blob folder (the Redis-side bridges)."""
        return self.log_lengths

    def used_sections(self) -> list[str]:
        return (
            ["service", *self.hosts]
            + (["log_lengths"] if self.log_lengths else [])
            + (["users", f"{SITE_SECTION}NAME"] if self.name == "web" else [])
        )


SCHEMAS: dict[str, ServiceSchema] = {
    schema.name: schema
    for schema in (
        ServiceSchema(
            "inditoredis",
            "indiserver ⇄ Redis",
            ("indi", "redis"),
            _keys(_LOG_LEVEL, _BLOBS, *_KEEP, _MAX_BLOB, _MAX, _BUFFER, _BUDGET),
            log_lengths=True,
        ),
        ServiceSchema(
            "driverstoredis",
            "INDI drivers run as child processes ⇄ Redis",
            ("redis",),
            _keys(_LOG_LEVEL, _DRIVERS, *_POOL, _BLOBS, *_KEEP, _MAX_BLOB, _MAX, _BUFFER, _BUDGET),
            log_lengths=True,
        ),
        ServiceSchema(
            "inditomqtt",
            "indiserver ⇄ MQTT broker (instrument side)",
            ("indi", "mqtt"),
            _keys(_LOG_LEVEL, _MQTT_ID, _SUBSCRIBE, _MAX, _BUFFER, _BUDGET, _BATCHING),
            log_lengths=False,
        ),
        ServiceSchema(
            "driverstomqtt",
            "INDI drivers ⇄ MQTT broker (instrument side)",
            ("mqtt",),
            _keys(_LOG_LEVEL, _DRIVERS, *_POOL, _MQTT_ID, _SUBSCRIBE, _MAX, _BUFFER, _BUDGET, _BATCHING),
            log_lengths=False,
        ),
        ServiceSchema(
            "mqtttoredis",
            "MQTT broker ⇄ Redis (GUI side)",
            ("mqtt", "redis"),
            _keys(
                _LOG_LEVEL, _MQTT_ID, _SUBSCRIBE, _BLOBS, *_KEEP, _MAX_BLOB, _MAX, _BUFFER, _BUDGET, _BATCHING
            ),
            log_lengths=True,
        ),
        ServiceSchema(
            "mqtttoport",
            "MQTT broker ⇄ a TCP port for INDI clients such as KStars",
            ("mqtt",),
            _keys(
                _LOG_LEVEL,
                _MQTT_ID,
                _SUBSCRIBE,
                _MAX,
                _BUFFER,
                _BUDGET,
                _BATCHING,
                Key("listen_host", str, Port.listen_host, "address INDI clients connect to"),
                Key("listen_port", int, Port.listen_port, "port INDI clients connect to", low=1, high=65535),
                Key(
                    "max_clients",
                    int,
                    Port.max_clients,
                    "INDI clients connected at once; a connection beyond it is refused and logged",
                    low=1,
                    high=100_000,
                ),
            ),
            log_lengths=False,
        ),
        ServiceSchema(
            "web",
            "the web client, served from the Redis store",
            ("redis",),
            _keys(
                _LOG_LEVEL,
                _BLOBS,
                Key("session_minutes", int, 720, "minutes a login lasts (logout ends it sooner)", low=1),
                Key("listen_host", str, "localhost", "address to serve on (without socket activation)"),
                Key(
                    "listen_port",
                    int,
                    8000,
                    "port to serve on (without socket activation)",
                    low=1,
                    high=65535,
                ),
                Key(
                    "trusted_proxy",
                    str,
                    "",
                    "address of the reverse proxy in front (e.g. 127.0.0.1) whose forwarded headers give "
                    "the client's address, scheme, host and port (empty: no proxy trusted)",
                ),
                Key(
                    "trusted_proxy_headers",
                    list,
                    list(PROXY_HEADERS),
                    "the trusted proxy's headers believed: x-forwarded-for, x-forwarded-host, "
                    "x-forwarded-proto, x-forwarded-port, x-forwarded-by, or forwarded alone",
                ),
            ),
            log_lengths=False,
        ),
    )
}


@dataclass(frozen=True)
class Settings:
    """A service's validated configuration."""

    service: str
    options: dict[str, Any]
    indi: IndiServer | None
    redis: RedisServer | None
    mqtt: MQTTServer | None
    log_lengths: dict[str, int] | None
    files: tuple[str, ...]
    users: dict[str, Any] | None = None
    sites: tuple[Any, ...] = ()  # the web client's sites (indiwsgi.sites.PanelSite): none serves [redis]'s

    def same_service(self, other: Settings) -> bool:
        """True when ``other`` runs the same service and differs at most in ``log_level`` (no rebuild
        needed)."""

        def essence(settings: Settings) -> tuple[Any, ...]:
            options = {k: v for k, v in settings.options.items() if k != "log_level"}
            return (
                settings.service,
                options,
                settings.indi,
                settings.redis,
                settings.mqtt,
                settings.log_lengths,
                settings.users,
                settings.sites,
            )

        return essence(self) == essence(other)


def default_mqtt_id(service: str, host: str | None = None) -> str:
    """The ``mqtt_id`` of a service whose configuration leaves it empty: ``<host name>-<service>``
    (the short host name, characters other than letters, digits, ``-`` and ``_`` made ``-``), so that
    every MQTT service of every machine has its own on a shared broker."""
    short = (host if host is not None else socket.gethostname()).split(".")[0]
    return f"{re.sub(r'[^A-Za-z0-9_-]', '-', short) or 'localhost'}-{service}"


def default_path(service: str) -> Path:
    """``/etc/indiredis/<service>.ini``."""
    return CONFIG_DIR / f"{service}.ini"


def _convert(key: Key, raw: str, where: str) -> Any:
    text = raw.strip()
    if key.kind is bool:
        lowered = text.lower()
        if lowered in ("1", "yes", "true", "on"):
            return True
        if lowered in ("0", "no", "false", "off"):
            return False
        raise ConfigError(f"{where} {key.name} = {text!r} is not yes/no")
    if key.kind is int:
        try:
            number = int(text)
        except ValueError:
            raise ConfigError(f"{where} {key.name} = {text!r} is not a whole number") from None
        if (key.low is not None and number < key.low) or (key.high is not None and number > key.high):
            allowed = f"{key.low}-{key.high}" if key.high is not None else f"{key.low} or more"
            raise ConfigError(f"{where} {key.name} = {number} is out of range ({allowed})")
        return number
    if key.kind is list:
        return text.split()
    return text


def _read_secret(name: str, where: str) -> str:
    path = Path(name)
    if not path.is_absolute() and os.environ.get("CREDENTIALS_DIRECTORY"):
        path = Path(os.environ["CREDENTIALS_DIRECTORY"]) / name
    try:
        return path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"{where} password_file {name!r} cannot be read: {exc.strerror or exc}") from None


class _CaseSensitiveParser(configparser.ConfigParser):
    """Keys as written (configparser lower-cases them by default)."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def parse_file(path: Path, parser: configparser.ConfigParser) -> None:
    """Read ``path`` into ``parser``; :class:`ConfigError` with one line saying why it cannot be read."""
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, str(path))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except PermissionError:
        raise ConfigError(
            f"{path}: permission denied (the file should be readable by group indiredis)"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except configparser.Error as exc:
        raise ConfigError(f"{path}: {' '.join(str(exc).split())}") from None


def users_path(config: Path) -> Path:
    """The web users' file beside the web configuration (``web.ini`` -> ``web-users.ini``).

    ``indiredis-web --add-user`` writes it; the package does not ship it, so that an upgrade's new
    ``web.ini`` (a conffile) never touches the users.
    """
    return config.with_name(f"{config.stem}-users.ini")


@dataclass
class _RawConfig:
    """What the files of one service say, before conversion: section -> key -> (raw text, file)."""

    service: str
    own: Path  # the service's own file
    users_file: Path | None
    values: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    read: list[str] = field(default_factory=list)  # the files read, in order

    @property
    def schema(self) -> ServiceSchema:
        return SCHEMAS[self.service]

    def file_of(self, section: str, key: str) -> str:
        """The file that set ``key`` in ``section`` (the service's own file when none did)."""
        return self.values.get(section, {}).get(key, ("", str(self.own)))[1]


def load(service: str, path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate ``common.ini`` (if present beside it) and the service's file (for the web
    client also its users' file, if present: see :func:`users_path`)."""
    own = Path(path) if path else default_path(service)
    raw = _RawConfig(service, own, users_path(own) if service == "web" else None)
    files = [own.parent / "common.ini", own] if own.name != "common.ini" else [own]
    for file in files + ([raw.users_file] if raw.users_file else []):
        if file == own or file.exists():
            _read_file(raw, file)
    options = _section_values(raw, "service", raw.schema.service)
    if "mqtt_id" in options and not options["mqtt_id"]:
        options["mqtt_id"] = default_mqtt_id(service)
    if options["log_level"].lower() not in LOG_LEVELS:
        raise ConfigError(f"{own}: [service] log_level must be one of {', '.join(LOG_LEVELS)}")
    if service == "web":
        _check_proxy(raw, options)
    if raw.schema.writes_blobs and options["blob_folder"]:
        problem = blob_folder_problem(options["blob_folder"])
        if problem:
            where = f"{raw.file_of('service', 'blob_folder')}: [service]"
            raise ConfigError(f"{where} blob_folder = {options['blob_folder']}: {problem}")
    return Settings(
        service,
        options,
        _host(raw, "indi", IndiServer),
        _host(raw, "redis", RedisServer),
        _host(raw, "mqtt", MQTTServer),
        _log_lengths(raw),
        tuple(raw.read),
        _users(raw) if service == "web" else None,
        _sites(raw) if service == "web" else (),
    )


def _check_proxy(raw: _RawConfig, options: dict[str, Any]) -> None:
    """ConfigError for proxy headers waitress does not know, or ``forwarded`` mixed with others."""
    headers = [header.lower() for header in options["trusted_proxy_headers"]]
    where = f"{raw.file_of('service', 'trusted_proxy_headers')}: [service] trusted_proxy_headers"
    unknown = [header for header in headers if header not in KNOWN_PROXY_HEADERS]
    if unknown:
        raise ConfigError(f"{where}: unknown {', '.join(unknown)} (known: {', '.join(KNOWN_PROXY_HEADERS)})")
    if "forwarded" in headers and len(set(headers)) > 1:
        raise ConfigError(f"{where}: forwarded cannot be combined with the x-forwarded-* headers")
    options["trusted_proxy_headers"] = headers


def _read_file(raw: _RawConfig, file: Path) -> None:
    """Parse one file into ``raw``, refusing sections and keys the service does not know."""
    parser = _CaseSensitiveParser(interpolation=None, default_section="\0none")
    parse_file(file, parser)
    raw.read.append(str(file))
    for section in parser.sections():
        known = _known_keys(raw, file, section)
        for name, text in parser.items(section):
            if section == "log_lengths" and name not in DEFAULT_LOG_LENGTHS:
                known_names = ", ".join(sorted(DEFAULT_LOG_LENGTHS))
                raise ConfigError(f"{file}: [log_lengths] unknown key {name!r} (known: {known_names})")
            if known is not None and name not in known:
                raise ConfigError(f"{file}: [{section}] unknown key {name!r}")
            raw.values.setdefault(section, {})[name] = (text, str(file))


def _known_keys(raw: _RawConfig, file: Path, section: str) -> dict[str, Key] | None:
    """The keys ``section`` may hold in ``file`` (None: any, checked later); ConfigError for a section
    the file may not have."""
    schema, service = raw.schema, raw.service
    free = section == "log_lengths" or (section == "users" and service == "web")
    known = HOST_SECTIONS.get(section) or (schema.service if section == "service" else None)
    if service == "web" and section.startswith(SITE_SECTION):
        known = SITE_KEYS
    if (known is None and not free) or (file == raw.users_file and section != "users"):
        raise ConfigError(f"{file}: unknown section [{section}]")
    unused = (section in HOST_SECTIONS and section not in schema.hosts) or (
        section == "log_lengths" and not schema.log_lengths
    )
    if file == raw.own and raw.own.name != "common.ini" and unused:  # common.ini serves every service
        raise ConfigError(
            f"{file}: [{section}] is not used by indiredis-{service}"
            f" (it uses {', '.join(f'[{s}]' for s in schema.used_sections())})"
        )
    return None if free else known


def _section_values(raw: _RawConfig, section: str, keys: dict[str, Key]) -> dict[str, Any]:
    """Every key of ``section``, converted, or its default; ConfigError for a missing required one."""
    result: dict[str, Any] = {}
    given = raw.values.get(section, {})
    for name, key in keys.items():
        if name in given:
            text, file = given[name]
            result[name] = _convert(key, text, f"{file}: [{section}]")
            if key.required and not result[name]:
                raise ConfigError(f"{file}: [{section}] {name} must not be empty ({key.help})")
        elif key.required:
            raise ConfigError(f"{raw.own}: [{section}] {name} is required ({key.help})")
        else:
            result[name] = key.default
    return result


def _host(raw: _RawConfig, section: str, kind: type[HostT]) -> HostT | None:
    """The host a ``[indi]``, ``[redis]`` or ``[mqtt]`` section describes (None if the service uses
    no such host), its password read from ``password_file`` if given."""
    if section not in raw.schema.hosts:
        return None
    fields = _section_values(raw, section, HOST_SECTIONS[section])
    for secret in ("password", "sentinel_password"):
        secret_file = fields.pop(f"{secret}_file", "")
        if secret_file:
            where = f"{raw.file_of(section, f'{secret}_file')}: [{section}]"
            if fields[secret]:
                raise ConfigError(f"{where} give {secret} or {secret}_file, not both")
            fields[secret] = _read_secret(secret_file, where)
    try:
        return kind(**fields)
    except ValueError as exc:  # a combination the hosts refuse, e.g. TLS files without ssl
        given = {file for _, file in raw.values.get(section, {}).values()}
        sources = [file for file in raw.read if file in given]
        raise ConfigError(f"{' and '.join(sources) or raw.own}: [{section}] {exc}") from None


def _log_lengths(raw: _RawConfig) -> dict[str, int] | None:
    """The ``[log_lengths]`` given, or None (the defaults) when the service keeps no logs or none is given."""
    if not raw.schema.log_lengths or not raw.values.get("log_lengths"):
        return None
    lengths: dict[str, int] = {}
    for name, (text, file) in raw.values["log_lengths"].items():
        lengths[name] = _convert(Key(name, int, 0, ""), text, f"{file}: [log_lengths]")
        if lengths[name] < 0:
            raise ConfigError(f"{file}: [log_lengths] {name} must not be negative")
    return lengths


def redis_of(service: str, path: str | os.PathLike[str] | None = None) -> RedisServer | None:
    """The Redis server of a service's configuration (its ``[redis]`` section over ``common.ini``'s),
    without the rest of the checks of :func:`load` (for ``indiredis-web --remove-user``, which may
    leave no user)."""
    own = Path(path) if path else default_path(service)
    raw = _RawConfig(service, own, None)
    for file in [own.parent / "common.ini", own] if own.name != "common.ini" else [own]:
        if file == own or file.exists():
            _read_file(raw, file)
    return _host(raw, "redis", RedisServer)


def _users(raw: _RawConfig) -> dict[str, Any]:
    """The web client's users; ConfigError when there is none (the web client always asks for a login)."""
    from ..indiwsgi.auth import parse_user  # here: only the web client needs it

    users = {}
    for name, (text, file) in raw.values.get("users", {}).items():
        try:
            users[name] = parse_user(name, text)
        except ValueError as exc:
            raise ConfigError(f"{file}: [users] {name}: {exc}") from None
    if not users:
        raise ConfigError(
            f"{raw.own}: [users] has no user: add one with indiredis-web --add-user NAME "
            "(the web client always asks for a login)"
        )
    return users


def _sites(raw: _RawConfig) -> tuple[Any, ...]:
    """The web client's ``[site:NAME]`` sections, in the order given; ConfigError naming the section
    for a name that is not a URL segment, a missing key, or a key prefix or channel two sites share."""
    from ..indiwsgi.sites import PanelSite, check_sites  # here: only the web client needs it

    sites: list[PanelSite] = []
    for section in raw.values:
        if section.startswith(SITE_SECTION):
            fields = _section_values(raw, section, SITE_KEYS)
            site = PanelSite(section.removeprefix(SITE_SECTION), **fields)
            try:
                check_sites([*sites, site])
            except ValueError as exc:
                raise ConfigError(f"{raw.file_of(section, 'keyprefix')}: [{section}] {exc}") from None
            sites.append(site)
    return tuple(sites)
