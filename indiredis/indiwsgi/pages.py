"""The HTML pages: every device-provided string is escaped here, and only here."""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

import redis

from .. import tools
from ..hosts import RedisServer
from .state import element_text

STYLE = """body{font-family:sans-serif;margin:1em 2em} td,th{padding:2px 8px;text-align:left}
.light{display:inline-block;width:.9em;height:.9em;border-radius:50%;background:#999;vertical-align:middle}
.light[data-state=Ok]{background:#2a2}.light[data-state=Busy]{background:#dc2}.light[data-state=Alert]{background:#c22}
fieldset{margin:.5em 0;border:1px solid #ccc} .note{color:#555;margin-left:1em}"""


def page(title: str, body: str, csrf: str = "") -> bytes:
    """A whole page."""
    meta = f"<meta name='csrf' content='{escape(csrf)}'>" if csrf else ""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{meta}<title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}"
            "<script src='/static/live.js'></script></body></html>").encode()


def device_list(devices: list[str]) -> str:
    if not devices:
        return "<p>No devices yet.</p>"
    return "<ul>" + "".join(f"<li><a href='/device/{quote(d, safe='')}'>{escape(d)}</a></li>" for d in devices) + "</ul>"


def _value_cell(name: str, element: dict[str, str], blob_link: bool) -> str:
    if blob_link and element.get("filepath"):
        file = element["filepath"].rsplit("/", 1)[-1]
        return f"<a href='/blobs/{quote(file)}'>{escape(file)}</a>"
    return (f"<span data-value='{escape(name)}' data-element='{escape(element.get('name', ''))}'>"
            f"{escape(element_text(element))}</span>")


def _input(vector: str, rule: str, element: dict[str, str]) -> str:
    ename = escape(element.get("name", ""))
    if vector == "NumberVector":
        return f"<input name='{ename}' size='12' placeholder='{escape(element_text(element))}'>"
    if vector == "TextVector":
        return f"<input name='{ename}' size='24'>"
    if vector == "SwitchVector":
        kind = "checkbox" if rule == "AnyOfMany" else "radio"
        checked = " checked" if element.get("value") == "On" else ""
        return f"<input type='{kind}' name='switch' value='{ename}'{checked}>"
    if vector == "BLOBVector":
        return f"<input type='file' name='{ename}'>"
    return ""


def property_block(device: str, name: str, attrs: dict[str, str], elements: list[dict[str, str]],
                   writable: bool, blob_link: bool, csrf: str) -> str:
    vector, rule, perm = attrs.get("vector", ""), attrs.get("rule", ""), attrs.get("perm", "ro")
    settable = writable and perm in ("rw", "wo") and vector != "LightVector"
    rows = []
    for element in elements:
        label = escape(element.get("label") or element.get("name", ""))
        cells = f"<td>{label}</td><td>{_value_cell(name, element, blob_link)}</td>"
        if settable:
            cells += f"<td>{_input(vector, rule, element)}</td>"
        rows.append(f"<tr>{cells}</tr>")
    if settable and vector == "SwitchVector" and rule == "AtMostOne":
        rows.append("<tr><td>(none)</td><td></td><td><input type='radio' name='switch' value=''></td></tr>")
    table = f"<table>{''.join(rows)}</table>"
    title = (f"<legend><span class='light' data-light='{escape(name)}' data-state='{escape(attrs.get('state', 'Idle'))}'"
             f" title='{escape(attrs.get('state', 'Idle'))}'></span> {escape(attrs.get('label') or name)}"
             f" <small>{escape(name)} ({escape(perm)})</small></legend>")
    if not settable:
        return f"<fieldset>{title}{table}</fieldset>"
    extra = "<label><input type='checkbox' name='gzip'> compress (gzip)</label>" if vector == "BLOBVector" else ""
    action = f"/set/{quote(device, safe='')}/{quote(name, safe='')}"
    return (f"<form class='set' method='post' action='{action}' enctype='multipart/form-data'>"
            f"<fieldset>{title}{table}<input type='hidden' name='csrf' value='{escape(csrf)}'>{extra}"
            f"<button type='submit'>Set</button><span class='note'></span></fieldset></form>")


def device_page(rconn: redis.Redis, server: RedisServer, device: str, writable: bool, blob_link: bool,
                csrf: str) -> str:
    groups: dict[str, list[str]] = {}
    names = tools.properties(rconn, server, device)
    for name in names:
        attrs = tools.attributes_dict(rconn, server, name, device)
        elements = tools.property_elements(rconn, server, name, device)
        groups.setdefault(attrs.get("group", "") or "Main", []).append(
            property_block(device, name, attrs, elements, writable, blob_link, csrf))
    body = "".join(f"<h2>{escape(group)}</h2>{''.join(parts)}" for group, parts in sorted(groups.items()))
    message = escape(tools.last_message(rconn, server, device) or "")
    return (f"<p><a href='/'>All devices</a></p><p>Last message: <span id='message'>{message}</span></p>"
            f"<div id='properties' data-device='{escape(device)}' data-names='{escape(chr(10).join(sorted(names)))}'>"
            f"{body}</div>")


def message_page(text: str) -> str:
    return f"<p>{escape(text)}</p><p><a href='/'>All devices</a></p>"




def login_form(problem: str = "") -> str:
    note = f"<p><strong>{escape(problem)}</strong></p>" if problem else ""
    return (f"{note}<form method='post' action='/login'><p><label>User <input name='user' autocomplete='username'>"
            "</label></p><p><label>Password <input type='password' name='password' "
            "autocomplete='current-password'></label></p><button type='submit'>Log in</button></form>")
