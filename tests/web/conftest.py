"""On a failed browser test, what the page received and did (its event log) and what the web process
published (its hub's newest frames) are written to artifacts/failures/ for the diagnosis."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

FAILURES = Path(__file__).parents[2] / "artifacts" / "failures"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    funcargs = getattr(item, "funcargs", {})
    browser = funcargs.get("desktop") or funcargs.get("browser") or funcargs.get("phone")
    found: dict[str, Any] = {"test": item.nodeid}
    if browser is not None:
        try:
            found["url"] = browser.current_url
            found["page_log"] = browser.execute_script("return window.indiredisLog || [];")
            found["states"] = browser.execute_script("return window.indiredisStates || [];")
        except Exception as exc:  # the browser may be what failed
            found["page_error"] = repr(exc)
    world = funcargs.get("world")
    if world is not None:
        panels: dict[str, Any] = {}
        for module in list(sys.modules.values()):  # the browser test module, whatever name it got
            found_panels = getattr(module, "PANELS", None) if module is not None else None
            if isinstance(found_panels, dict):
                panels.update(found_panels)
        app = panels.get(getattr(world, "url", ""))
        if app is not None:
            hub = app.cache.hub
            frames = sorted((entry for entry in hub._ring if entry[0]), key=lambda entry: entry[0])
            found["hub"] = [
                (seq, device, data.decode(errors="replace")[:400]) for seq, device, data in frames[-300:]
            ]
    FAILURES.mkdir(parents=True, exist_ok=True)
    name = item.nodeid.replace("/", "_").replace("::", "__")
    (FAILURES / f"{name}.json").write_text(json.dumps(found, indent=1))
