"""The HTML pages: every device-provided string is escaped here, and only here.

``root`` is where the application is mounted ("" at the server's root, or
``"/indi"``); every link starts with it.  A device page is made of one block
per property (:func:`property_block`), in its group's section, in the driver's
order; the page script (``live.js``) keeps values, states and messages current
and fetches a block again only when its layout changes.  Without the script,
every form still works (the server answers with a redirect).
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from importlib import resources
from urllib.parse import quote

from ..protocol.numbers import format_number
from .snapshot import DeviceSummary, DeviceView, PropertyView
from .state import blob_file, element_text, layout_of, message_kind

STYLE = resources.files(__package__).joinpath("style.css").read_text()

#: standard INDI properties that are actions: the label of their send button
ACTION_LABELS = {"CCD_EXPOSURE": "Expose"}
#: switches that ask before they act: (property, element) -> the question
CONFIRM = {("TELESCOPE_PARK", "PARK"): "Park the telescope?"}


@dataclass(frozen=True)
class Viewer:
    """Who looks at a page: the user (empty without logins), the role, whether they may set values,
    the CSRF token to send back, where the application is mounted, and the site list of a panel
    whose site this is (``home``; empty: none, see :mod:`.sites`)."""

    user: str = ""
    role: str = ""
    may_set: bool = True
    csrf: str = ""
    root: str = ""
    logins: bool = False
    blob_links: bool = False
    home: str = ""


def _attr(text: str) -> str:
    return escape(text, quote=True)


def device_url(root: str, device: str) -> str:
    return f"{root}/device/{quote(device, safe='')}"


def connection_text(summary: DeviceSummary) -> str:
    if summary.connected is None:
        return ""
    return "connected" if summary.connected else "disconnected"


def device_nav(devices: list[DeviceSummary], root: str, current: str = "") -> str:
    """The device links with their connection lights (kept current by the page script)."""
    links = []
    for summary in devices:
        state = summary.state if summary.connected else "Idle"
        here = " aria-current='page'" if summary.name == current else ""
        links.append(
            f"<a href='{_attr(device_url(root, summary.name))}' data-device='{_attr(summary.name)}'{here}>"
            f"<span class='light' data-state='{_attr(state)}'></span> {escape(summary.name)}"
            f" <small class='conn'>{escape(connection_text(summary))}</small></a>"
        )
    return "".join(links)


def page(title: str, body: str, viewer: Viewer, devices: list[DeviceSummary] | None = None) -> bytes:
    """A whole page: the bar (devices, user, theme), the status banner, and ``body``."""
    root = escape(viewer.root)
    meta = f"<meta name='csrf' content='{_attr(viewer.csrf)}'>" if viewer.csrf else ""
    who = ""
    if viewer.logins and viewer.user:
        who = (
            f"<span class='who'>{escape(viewer.user)} ({escape(viewer.role)})"
            f" <a href='{root}/logout' id='logout'>Log out</a></span>"
        )
    nav = f"<a href='{_attr(viewer.home)}' class='sites' id='sites'>Sites</a>" if viewer.home else ""
    if devices is not None:
        nav += (
            f"<nav class='devices' id='devices' data-api='{root}/api/devices'>"
            f"<a href='{root}/' class='home'>Devices</a>{device_nav(devices, viewer.root, title)}</nav>"
        )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"{meta}<title>{escape(title)}</title><style>{STYLE}</style>"
        f"<script src='{root}/static/theme.js'></script></head>"
        f"<body data-root='{root}' data-login='{root}/login' data-logins='{int(viewer.logins)}'>"
        f"<header class='top'>{nav}<span class='spacer'></span>{who}"
        "<button type='button' id='theme' title='Light, dark or red (night vision)'>Theme</button></header>"
        "<div id='banner' role='alert' hidden></div>"
        f"<h1>{escape(title)}</h1>{body}"
        f"<script src='{root}/static/live.js'></script></body></html>"
    ).encode()


def device_list(devices: list[DeviceSummary], message: str, root: str = "") -> str:
    """The devices with their connection state, and the newest message that named no device."""
    note = f"<p class='msg'>Last message: <span id='message'>{escape(message)}</span></p>"
    rows = "".join(
        f"<li data-device='{_attr(d.name)}'><a href='{_attr(device_url(root, d.name))}'>"
        f"<span class='light' data-state='{_attr(d.state if d.connected else 'Idle')}'></span> "
        f"{escape(d.name)}</a> <small class='conn'>{escape(connection_text(d))}</small></li>"
        for d in devices
    )
    empty = "" if devices else "<p id='nodevices'>No devices yet.</p>"
    return f"{note}{empty}<ul class='devicelist' id='devicelist' data-api='{root}/api/devices'>{rows}</ul>"


# -- a property block ------------------------------------------------------------------------------


def _head(view: PropertyView) -> str:
    fields = view.fields
    state = fields.get("state", "Idle")
    message = fields.get("message", "")
    graph = (
        f"<button type='button' class='graph' data-graph='{_attr(view.name)}' title='history graph'>"
        "Graph</button>"
        if fields.get("vector") == "NumberVector"
        else ""
    )
    return (
        f"<div class='head'><span class='light' data-light data-state='{_attr(state)}'></span>"
        f" <strong>{escape(fields.get('label') or view.name)}</strong>"
        f" <span class='state' data-statetext>{escape(state)}</span>"
        f" <small class='pname'>{escape(view.name)}</small>{graph}</div>"
        f"<p class='msg' data-msg>{escape(message)}</p>"
    )


def _limit(element: dict[str, str], field: str) -> str:
    """A limit shown as the element's own format shows numbers when sexagesimal, else briefly (%g)."""
    fmt = element.get("format", "%g")
    return format_number(element.get(field, "0"), fmt if fmt.endswith("m") else "%.10g").strip()


def _number_range(element: dict[str, str]) -> str:
    """ "min … max, step s" of a number element; '' when min >= max (no limits, as INDI means it)."""
    try:
        if float(element.get("float_min", "0")) >= float(element.get("float_max", "0")):
            return ""
        stepped = float(element.get("float_step", "0") or 0) > 0
    except ValueError:
        return ""
    text = f"{_limit(element, 'min')} … {_limit(element, 'max')}"
    if stepped:
        text += f", step {format_number(element.get('step', '0'), '%.6g')}"
    return text


def _number_input(ident: str, element: dict[str, str]) -> str:
    limits = _number_range(element)
    data = ""
    if limits:
        low, high = element.get("float_min", ""), element.get("float_max", "")
        data = f" data-min='{_attr(low)}' data-max='{_attr(high)}'"
    hint = f"<small class='range'>{escape(limits)}</small>" if limits else ""
    return (
        f"<span class='edit'><input id='{ident}' name='{_attr(element.get('name', ''))}'"
        f" value='{_attr(element_text(element))}' data-kind='number'{data}"
        f" autocomplete='off' spellcheck='false' inputmode='text'"
        f" title='a number: decimal, or sexagesimal such as 12:30:15 or -5 30 00'>{hint}</span>"
    )


def _element_row(
    view: PropertyView, element: dict[str, str], index: int, viewer: Viewer, *, settable: bool
) -> str:
    vector = view.fields.get("vector", "")
    name = element.get("name", "")
    label = escape(element.get("label") or name)
    ident = f"e-{escape(quote(view.name, safe=''))}-{index}"
    where = f"data-element='{_attr(name)}'"
    if vector == "LightVector":
        state = element.get("value", "Idle")
        return (
            f"<div class='el'><span class='name'>{label}</span><span class='value'>"
            f"<span class='light' {where} data-state='{_attr(state)}'></span> "
            f"<span data-lighttext='{_attr(name)}'>{escape(state)}</span></span></div>"
        )
    tag = (
        f"<label class='name' for='{ident}'>{label}</label>"
        if settable
        else f"<span class='name'>{label}</span>"
    )
    if vector == "BLOBVector":
        return _blob_row(element, ident, tag, label, viewer, settable=settable)
    value = f"<output class='value' {where}>{escape(element_text(element))}</output>"
    edit = ""
    if settable and vector == "NumberVector":
        edit = _number_input(ident, element)
    elif settable and vector == "TextVector":
        edit = (
            f"<span class='edit'><input id='{ident}' name='{_attr(name)}'"
            f" value='{_attr(element.get('value', ''))}' autocomplete='off' spellcheck='false'></span>"
        )
    return f"<div class='el'>{tag}{value}{edit}</div>"


def _blob_row(
    element: dict[str, str], ident: str, tag: str, label: str, viewer: Viewer, *, settable: bool
) -> str:
    """A BLOB element: its last file (a link when files are offered), an upload, a preview, a file list."""
    name = element.get("name", "")
    where = f"data-element='{_attr(name)}'"
    file = blob_file(element)
    blob_root = f"{viewer.root}/blobs/" if viewer.blob_links else ""
    href = f"{blob_root}{quote(file, safe='')}" if file and blob_root else ""
    edit = (
        f"<span class='edit'><input type='file' id='{ident}' name='{_attr(name)}'></span>" if settable else ""
    )
    return (
        f"<div class='el'>{tag}<a class='value' {where} data-blob='{_attr(blob_root)}'"
        f" href='{_attr(href)}' download>{escape(file)}</a>{edit}</div>"
        f"<figure class='preview' data-preview='{_attr(name)}' hidden>"
        f"<span class='tint'><img alt='preview of {label}'></span><figcaption></figcaption>"
        "<button type='button' class='open-viewer'>View</button></figure>"
        f"<details class='files' data-files='{_attr(name)}' hidden><summary>Files</summary><ul></ul>"
        "</details>"
    )


def _switches(view: PropertyView, *, settable: bool) -> str:
    buttons = []
    for element in view.elements:
        name = element.get("name", "")
        pressed = "true" if element.get("value") == "On" else "false"
        disabled = "" if settable else " disabled"
        question = CONFIRM.get((view.name, name))
        confirm = f" data-confirm='{_attr(question)}'" if question else ""
        buttons.append(
            f"<button type='submit' class='switch' name='press' value='{_attr(name)}'"
            f" data-element='{_attr(name)}' aria-pressed='{pressed}'{confirm}{disabled}>"
            f"{escape(element.get('label') or name)}</button>"
        )
    rule = view.fields.get("rule", "")
    hint = {"OneOfMany": "one of", "AtMostOne": "at most one", "AnyOfMany": "any of"}.get(rule, "")
    return f"<div class='switches' data-rule='{_attr(rule)}' title='{_attr(hint)}'>{''.join(buttons)}</div>"


def property_block(device: str, view: PropertyView, viewer: Viewer) -> str:
    """One property: light, state, label, latest message, elements, and a form when the perm rules and
    the user allow setting it (switches are buttons: one click sets them)."""
    fields = view.fields
    vector, perm = fields.get("vector", ""), fields.get("perm", "ro")
    settable = viewer.may_set and perm in ("rw", "wo") and vector != "LightVector"
    if vector == "SwitchVector":
        body = _switches(view, settable=settable)
    else:
        body = "".join(
            _element_row(view, element, index, viewer, settable=settable)
            for index, element in enumerate(view.elements)
        )
    common = (
        f"class='prop' data-prop='{_attr(view.name)}' data-vector='{_attr(vector)}'"
        f" data-state='{_attr(fields.get('state', 'Idle'))}'"
        f" data-layout='{layout_of(view)}'"
    )
    if not settable:
        return f"<div {common}>{_head(view)}{body}</div>"
    actions = ""
    if vector != "SwitchVector":
        gzip = (
            "<label class='gzip'><input type='checkbox' name='gzip'> compress (gzip)</label>"
            if vector == "BLOBVector"
            else ""
        )
        label = ACTION_LABELS.get(view.name)
        kind = " action" if label else ""
        actions = f"{gzip}<button type='submit' class='set{kind}'>{escape(label or 'Set')}</button>"
        actions += _exposure_extras(device, view, viewer)
    action = f"{viewer.root}/set/{quote(device, safe='')}/{quote(view.name, safe='')}"
    return (
        f"<form {common} method='post' action='{_attr(action)}' enctype='multipart/form-data' novalidate>"
        f"{_head(view)}{body}<input type='hidden' name='csrf' value='{_attr(viewer.csrf)}'>"
        f"<div class='actions'>{actions}<span class='note' role='status'></span></div></form>"
    )


def _exposure_extras(device: str, view: PropertyView, viewer: Viewer) -> str:
    """For ``CCD_EXPOSURE``: a progress bar driven by the countdown, and an Abort button that presses
    ``CCD_ABORT_EXPOSURE`` (the page script sends it; the property's own block has the switch too)."""
    if view.name != "CCD_EXPOSURE":
        return ""
    abort = f"{viewer.root}/set/{quote(device, safe='')}/CCD_ABORT_EXPOSURE"
    return (
        f"<button type='button' class='abort' data-post='{_attr(abort)}' data-press='ABORT'>Abort</button>"
        "<progress class='progress' max='1' value='0' hidden></progress>"
    )


def group_id(index: int) -> str:
    return f"group-{index}"


def device_page(view: DeviceView, viewer: Viewer) -> str:
    """A device's properties: a tab per group in the driver's order, and its message log."""
    groups = view.groups()
    sections = []
    tabs = []
    for index, group in enumerate(groups):
        blocks = "".join(
            property_block(view.device, prop, viewer) for prop in view.properties if prop.group == group
        )
        ident = group_id(index)
        tabs.append(f"<a href='#{ident}' role='tab' data-group='{_attr(group)}'>{escape(group)}</a>")
        sections.append(
            f"<section class='group' id='{ident}' data-group='{_attr(group)}'><h2>{escape(group)}</h2>"
            f"{blocks}</section>"
        )
    log = "".join(
        f"<li class='{message_kind(text)}'><time>{escape(stamp)}</time> {escape(text)}</li>"
        for stamp, text in view.messages
    )
    api = f"{viewer.root}/api/device/{quote(view.device, safe='')}"
    return (
        f"<main class='device' id='properties' data-device='{_attr(view.device)}' data-api='{_attr(api)}'"
        f" data-blocks='{_attr(viewer.root)}/api/blocks/{_attr(quote(view.device, safe=''))}'"
        f" data-root='{_attr(viewer.root)}' data-operator='{int(viewer.may_set)}'>"
        f"<div class='controls'><nav class='tabs' role='tablist'>{''.join(tabs)}</nav>"
        f"<div class='groups'>{''.join(sections)}</div></div>"
        f"{SIDE}<ol id='messages'>{log}</ol></section></aside>{VIEWER}</main>"
    )


#: a device page's side column (filled by the page script), up to its message list
SIDE = (
    "<aside class='side'><section class='quickactions' hidden><h2>Actions</h2><div class='buttons'></div>"
    "</section><section class='latest' hidden><h2>Latest image</h2>"
    "<figure class='preview'><span class='tint'><img alt='latest image'></span><figcaption></figcaption>"
    "<button type='button' class='open-viewer'>View full size</button></figure></section>"
    "<section class='graphs' id='graphs'><h2>Graphs</h2><div class='quick'></div>"
    "<div class='history' hidden><div class='graphbar'><strong class='what'></strong>"
    "<select class='hours' aria-label='hours shown'><option value='1'>1 h</option>"
    "<option value='3'>3 h</option><option value='6'>6 h</option>"
    "<option value='12' selected>12 h</option>"
    "</select><button type='button' class='close'>Close</button></div><div class='plots'></div>"
    "<p class='note graphnote'></p></div></section>"
    "<section class='log'><h2>Messages</h2><label class='logfilter'><input type='checkbox'"
    " id='hidebridge'> hide the bridge's notes (deleted properties…)</label>"
)


#: the image viewer (filled by the page script): the view, its stretch controls, histogram, statistics
VIEWER = (
    "<dialog class='viewer' id='viewer' aria-label='image viewer'><div class='vbar'>"
    "<strong class='vname'></strong>"
    "<label>Stretch <select class='stretch'><option value='linear'>linear</option>"
    "<option value='asinh' selected>asinh</option><option value='log'>log</option></select></label>"
    "<label>Black <input class='black' inputmode='decimal' autocomplete='off'></label>"
    "<label>White <input class='white' inputmode='decimal' autocomplete='off'></label>"
    "<button type='button' class='auto' title='black and white points from the histogram'>Auto</button>"
    "<button type='button' class='zin' title='zoom in'>+</button>"
    "<button type='button' class='zout' title='zoom out'>−</button>"
    "<button type='button' class='fit'>Fit</button><button type='button' class='one'>1:1</button>"
    "<button type='button' class='vclose'>Close</button></div>"
    "<div class='vbody'><div class='stage'><span class='tint'><img class='vimg' alt='the image'"
    " draggable='false'></span></div><div class='vside'><canvas class='hist' width='256' height='90'"
    " aria-label='histogram'></canvas><table class='stats'></table><p class='note vnote'></p>"
    "<details class='fitsheader'><summary>FITS header</summary><pre></pre></details></div></div></dialog>"
)


def message_page(text: str, root: str = "") -> str:
    return f"<p>{escape(text)}</p><p><a href='{escape(root)}/'>All devices</a></p>"


def login_form(problem: str = "", root: str = "") -> str:
    note = f"<p class='problem'><strong>{escape(problem)}</strong></p>" if problem else ""
    return (
        f"{note}<form method='post' action='{escape(root)}/login' class='login'><p><label>User"
        " <input name='user' autocomplete='username' autocapitalize='none'></label></p><p><label>Password"
        " <input type='password' name='password' autocomplete='current-password'></label></p>"
        "<button type='submit'>Log in</button></form>"
    )
