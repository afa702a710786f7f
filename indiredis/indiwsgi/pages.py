"""The HTML pages: every device-provided string is escaped here, and only here.

``root`` is where the application is mounted ("" at the server's root, or
``"/indi"``); every link starts with it.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from .snapshot import DeviceView, PropertyView
from .state import blob_file, element_text

STYLE = """body{font-family:sans-serif;margin:1em 2em} td,th{padding:2px 8px;text-align:left}
.light{display:inline-block;width:.9em;height:.9em;border-radius:50%;background:#999;vertical-align:middle}
.light[data-state=Ok]{background:#2a2}.light[data-state=Busy]{background:#dc2}.light[data-state=Alert]{background:#c22}
fieldset{margin:.5em 0;border:1px solid #ccc} .note{color:#555;margin-left:1em}"""


def page(title: str, body: str, csrf: str = "", root: str = "") -> bytes:
    """A whole page."""
    meta = f"<meta name='csrf' content='{escape(csrf)}'>" if csrf else ""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'>{meta}<title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}"
        f"<script src='{escape(root)}/static/live.js'></script></body></html>"
    ).encode()


def device_list(devices: list[str], message: str, root: str = "") -> str:
    """The devices, each a link to its page, and the newest message that named no device."""
    note = f"<p>Last message: <span id='message'>{escape(message)}</span></p>" if message else ""
    if not devices:
        return note + "<p>No devices yet.</p>"
    links = "".join(
        f"<li><a href='{escape(root)}/device/{quote(d, safe='')}'>{escape(d)}</a></li>" for d in devices
    )
    return f"{note}<ul>{links}</ul>"


def _value_cell(name: str, element: dict[str, str], blob_root: str | None) -> str:
    where = f"data-value='{escape(name)}' data-element='{escape(element.get('name', ''))}'"
    if blob_root is not None:  # a BLOB element: a link to the received file
        file = blob_file(element)
        href = f"{blob_root}/{quote(file, safe='')}" if file else ""
        return f"<a {where} data-blob='{escape(blob_root)}/' href='{escape(href)}'>{escape(file)}</a>"
    return f"<span {where}>{escape(element_text(element))}</span>"


def _input(vector: str, rule: str, element: dict[str, str]) -> str:
    ename = escape(element.get("name", ""))
    if vector == "NumberVector":
        limits = f"min {element.get('min', '')}, max {element.get('max', '')}, step {element.get('step', '')}"
        return (
            f"<input name='{ename}' size='12' placeholder='{escape(element_text(element))}'"
            f" title='{escape(limits)}'>"
        )
    if vector == "TextVector":
        return f"<input name='{ename}' size='24'>"
    if vector == "SwitchVector":
        kind = "checkbox" if rule == "AnyOfMany" else "radio"
        checked = " checked" if element.get("value") == "On" else ""
        return f"<input type='{kind}' name='switch' value='{ename}'{checked}>"
    if vector == "BLOBVector":
        return f"<input type='file' name='{ename}'>"
    return ""


def property_block(
    device: str, view: PropertyView, writable: bool, blob_root: str | None, csrf: str, root: str = ""
) -> str:
    """One property: light, label, elements, and a form when the perm rules and the user allow setting it."""
    name, attrs = view.name, view.attrs
    vector, rule, perm = attrs.get("vector", ""), attrs.get("rule", ""), attrs.get("perm", "ro")
    settable = writable and perm in ("rw", "wo") and vector != "LightVector"
    rows = []
    for element in view.elements:
        label = escape(element.get("label") or element.get("name", ""))
        link_root = blob_root if vector == "BLOBVector" else None
        cells = f"<td>{label}</td><td>{_value_cell(name, element, link_root)}</td>"
        if settable:
            cells += f"<td>{_input(vector, rule, element)}</td>"
        rows.append(f"<tr>{cells}</tr>")
    if settable and vector == "SwitchVector" and rule == "AtMostOne":
        rows.append("<tr><td>(none)</td><td></td><td><input type='radio' name='switch' value=''></td></tr>")
    table = f"<table>{''.join(rows)}</table>"
    state = escape(attrs.get("state", "Idle"))
    title = (
        f"<legend><span class='light' data-light='{escape(name)}' data-state='{state}'"
        f" title='{state}'></span>"
        f" {escape(attrs.get('label') or name)} <small>{escape(name)} ({escape(perm)})</small></legend>"
    )
    if not settable:
        return f"<fieldset>{title}{table}</fieldset>"
    extra = (
        "<label><input type='checkbox' name='gzip'> compress (gzip)</label>" if vector == "BLOBVector" else ""
    )
    action = f"{root}/set/{quote(device, safe='')}/{quote(name, safe='')}"
    return (
        f"<form class='set' method='post' action='{escape(action)}' enctype='multipart/form-data'>"
        f"<fieldset>{title}{table}<input type='hidden' name='csrf' value='{escape(csrf)}'>{extra}"
        f"<button type='submit'>Set</button><span class='note'></span></fieldset></form>"
    )


def device_page(view: DeviceView, writable: bool, blob_links: bool, csrf: str, root: str = "") -> str:
    """A device's properties grouped by their INDI group, and its newest message."""
    groups: dict[str, list[str]] = {}
    blob_root = f"{root}/blobs" if blob_links else None
    for prop in view.properties:
        groups.setdefault(prop.attrs.get("group", "") or "Main", []).append(
            property_block(view.device, prop, writable, blob_root, csrf, root)
        )
    body = "".join(f"<h2>{escape(group)}</h2>{''.join(parts)}" for group, parts in sorted(groups.items()))
    names = "\n".join(p.name for p in view.properties)
    api = f"{root}/api/device/{quote(view.device, safe='')}"
    return (
        f"<p><a href='{escape(root)}/'>All devices</a></p>"
        f"<p>Last message: <span id='message'>{escape(view.message)}</span></p>"
        f"<div id='properties' data-device='{escape(view.device)}' data-api='{escape(api)}'"
        f" data-names='{escape(names)}'>{body}</div>"
    )


def message_page(text: str, root: str = "") -> str:
    return f"<p>{escape(text)}</p><p><a href='{escape(root)}/'>All devices</a></p>"


def login_form(problem: str = "", root: str = "") -> str:
    note = f"<p><strong>{escape(problem)}</strong></p>" if problem else ""
    return (
        f"{note}<form method='post' action='{escape(root)}/login'><p><label>User <input name='user'"
        " autocomplete='username'></label></p><p><label>Password <input type='password' name='password' "
        "autocomplete='current-password'></label></p><button type='submit'>Log in</button></form>"
    )
