"""The commented example INI files shipped in ``etc/`` (and installed to /etc/indiredis/), made from the
schema.

``python3 -m indiredis.service.examples etc`` writes them; a test checks that
the shipped files equal these, so documentation and code never drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..store.keys import DEFAULT_LOG_LENGTHS
from .config import HOST_SECTIONS, SCHEMAS, SITE_KEYS, Key


def _value(key: Key) -> str:
    if key.kind is bool:
        return "yes" if key.default else "no"
    if key.kind is list:
        return " ".join(key.default)
    return str(key.default)


def _section(name: str, keys: dict[str, Key], *, commented: bool = True) -> list[str]:
    lines = [f"[{name}]"]
    for key in keys.values():
        lines.append(f"# {key.help}" + (" (required)" if key.required else ""))
        prefix = "" if key.required or not commented else "#"
        example = _value(key)
        if key.name == "drivers":
            example = "indi_simulator_telescope indi_simulator_ccd"
        lines.append(f"{prefix}{key.name} = {example}")
    return lines + [""]


#: the example site of ``web.ini``, as the central mqtttoredis of site "north" would write it
SITE_EXAMPLE = {
    "keyprefix": "north_",
    "to_indi_channel": "north_to",
    "from_indi_channel": "north_from",
    "blob_folder": "/var/lib/indiredis/north",
    "label": "North dome",
}


def common_ini() -> str:
    lines = [
        "# indiredis: hosts shared by every service on this machine.",
        "# Each service reads this file, then its own <service>.ini, whose sections override these.",
        "# Commented lines show the defaults. Keep passwords in password_file (or systemd credentials):",
        "# this file is readable by group indiredis.",
        "",
    ]
    for name, keys in HOST_SECTIONS.items():
        lines += _section(name, keys)
    return "\n".join(lines)


def service_ini(service: str) -> str:
    schema = SCHEMAS[service]
    lines = [
        f"# indiredis-{service}: {schema.description}.",
        f"# Hosts ({', '.join(f'[{h}]' for h in schema.hosts)}) come from common.ini;"
        " a section here overrides them key by key.",
        "# Commented lines show the defaults.",
        "",
    ]
    lines += _section("service", schema.service)
    if service == "web":
        lines += [
            "[users]",
            "# name = role:hash, role operator (may set values) or observer (watches only).",
            "# Add them with: indiredis-web --add-user NAME [--role observer], which writes them to",
            "# web-users.ini beside this file (not part of the package: upgrades leave it alone).",
            "",
            "# Many sites, one panel: one [site:NAME] section per site, served at /sites/NAME/ with the",
            "# site list at /; [redis] is then the server they share (its keyprefix holds the logins).",
            "# Without any, the web client serves [redis]'s keyprefix at /.",
            "#[site:north]",
            *(
                line
                for key in SITE_KEYS.values()
                for line in (f"## {key.help}", f"#{key.name} = {SITE_EXAMPLE[key.name]}")
            ),
            "",
        ]
    if schema.log_lengths:
        lines += [
            "[log_lengths]",
            "# how many entries each history list keeps (/usr/share/doc/indiredis/html/redis-keys.html)",
        ]
        lines += [f"#{name} = {length}" for name, length in DEFAULT_LOG_LENGTHS.items()] + [""]
    return "\n".join(lines)


def all_files() -> dict[str, str]:
    """File name -> text, for every shipped example."""
    files = {"common.ini": common_ini()}
    files.update({f"{service}.ini": service_ini(service) for service in SCHEMAS})
    return files


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "etc")
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in all_files().items():
        (folder / name).write_text(text)
