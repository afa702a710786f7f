"""The configuration reference of ``docs/configuration.md``, made from the schema in :mod:`.config`.

The page's tables (every section and key of every service, with type, default and range, and the exit
statuses) sit between two markers and are written by this module, as the example files in ``etc/`` are
by :mod:`.examples`; ``python3 -m indiredis.service.reference docs/configuration.md`` rewrites them,
and a test checks that the page holds what this module makes, so the reference cannot drift from the
code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InvalidValue
from ..store.keys import DEFAULT_LOG_LENGTHS
from .cli import EX_UNAVAILABLE
from .config import EX_CONFIG, HOST_SECTIONS, SCHEMAS, SITE_KEYS, Key, default_path

BEGIN = (
    "<!-- the reference below is made by: python3 -m indiredis.service.reference docs/configuration.md -->"
)
END = "<!-- end of the reference made from the code -->"

#: what each exit status of an ``indiredis-<service>`` command means
EXIT_STATUSES: tuple[tuple[int, str], ...] = (
    (0, "stopped by SIGTERM or SIGINT (`systemctl stop`), or `--check` found the configuration valid"),
    (1, "the service stopped unexpectedly (the log says why); systemd restarts it"),
    (
        2,
        "wrong command line, `--add-user` refused the name or the password, "
        "or `--remove-user` found no such user",
    ),
    (EX_UNAVAILABLE, "this installation cannot run the service (its bridge is missing); not restarted"),
    (EX_CONFIG, "configuration error, one line in the log naming file, section and key; not restarted"),
)

_KINDS = {str: "text", int: "whole number", bool: "yes/no", list: "list, separated by spaces"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(key: Key) -> str:
    if key.required:
        return "required"
    if key.name == "password" or key.default in ("", []):
        return "empty"
    if key.kind is bool:
        return "`yes`" if key.default else "`no`"
    if key.kind is list:
        return f"`{' '.join(key.default)}`"
    return f"`{key.default}`"


def _range(key: Key) -> str:
    if key.low is None and key.high is None:
        return ""
    if key.high is None:
        return f"{key.low} or more"
    if key.low is None:
        return f"at most {key.high}"
    return f"{key.low} to {key.high}"


def key_table(keys: dict[str, Key]) -> list[str]:
    """A Markdown table of ``keys``: name, type, default, range and meaning."""
    lines = ["| key | type | default | range | meaning |", "|---|---|---|---|---|"]
    for key in keys.values():
        lines.append(
            f"| `{key.name}` | {_KINDS[key.kind]} | {_default(key)} | {_range(key)} | {_cell(key.help)} |"
        )
    return lines


def reference() -> str:
    """The generated part of the page (without the markers)."""
    lines = _hosts_part()
    lines += ["## Services", ""]
    for service in SCHEMAS:
        lines += _service_part(service)
    lines += ["## Exit statuses", "", "| status | meaning |", "|---|---|"]
    lines += [f"| {status} | {_cell(meaning)} |" for status, meaning in EXIT_STATUSES]
    return "\n".join(lines)


def _hosts_part() -> list[str]:
    """The sections of ``common.ini``, which every service on the machine shares."""
    lines = [
        "## Hosts: `common.ini`",
        "",
        f"`{default_path('common')}` holds the sections every service on the machine shares; a service "
        "uses those it names below, and a section of the same name in its own file overrides them "
        "key by key.",
        "",
    ]
    for name, keys in HOST_SECTIONS.items():
        lines += [f"### `[{name}]`", "", *key_table(keys), ""]
    return lines


def _service_part(service: str) -> list[str]:
    """One service's file: its ``[service]`` keys, and its ``[log_lengths]``, ``[users]`` and
    ``[site:NAME]`` sections where it has them."""
    schema = SCHEMAS[service]
    sections = ", ".join(f"`[{section}]`" for section in schema.used_sections())
    lines = [
        f"### indiredis-{service}",
        "",
        f"{schema.description}. File `{default_path(service)}`; sections {sections}.",
        "",
        "`[service]`:",
        "",
        *key_table(schema.service),
        "",
    ]
    if schema.log_lengths:
        lines += [
            "`[log_lengths]`: how many entries each history list keeps (whole numbers, 0 or more; "
            "0 counts as 1), defaults in brackets:",
            "",
        ]
        lines += [", ".join(f"`{name}` ({length})" for name, length in DEFAULT_LOG_LENGTHS.items()), ""]
    if service == "web":
        lines += _web_sections()
    return lines


def _web_sections() -> list[str]:
    """The web client's ``[users]`` and ``[site:NAME]`` sections."""
    return [
        "`[users]`: `name = role:hash`, one line per user, written by "
        "`indiredis-web --add-user NAME [--role observer]` into `web-users.ini` beside `web.ini`; "
        "role `operator` (may set values) or `observer` (watches only). At least one user is "
        "required.",
        "",
        "`[site:NAME]` (any number; none: the web client serves the `[redis]` key prefix at `/`): "
        "one site of a panel serving several sites, at `/sites/NAME/` (NAME: letters, digits, `-`, "
        "`_`), with the site list at `/`. The `[redis]` section gives the server the sites share "
        "(its key prefix then holds only the logins); no two sites may share a key prefix or a "
        "channel (see the web client's documentation, *Many sites, one panel*):",
        "",
        *key_table(SITE_KEYS),
        "",
    ]


def page_with_reference(page: str) -> str:
    """``page`` with the text between its markers replaced by :func:`reference`."""
    head, begin, rest = page.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not (begin and end):
        raise InvalidValue(f"the page lacks the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n\n{reference()}\n\n{END}{tail}"


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/configuration.md")
    target.write_text(page_with_reference(target.read_text()))
