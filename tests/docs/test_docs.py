"""The documentation in docs/: it builds without a warning, and what it documents matches the code.

The build is the one ``make docs`` runs (Sphinx with warnings as errors), so a broken docstring or a
page missing from the table of contents fails the test suite.  The configuration reference is made from
the configuration schema (:mod:`indiredis.service.reference`), and the tools page shows every function
of :mod:`indiredis.tools` with its signature, so neither can drift from the code.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from indiredis import tools
from indiredis.service import config, reference

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
#: the specification and design notes the project was written from: not part of it, never to be cited
OUTSIDE = ("shared/spec", "shared/ARCHITECTURE", "/work/shared")


def test_documentation_builds_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip("sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'")
    pytest.importorskip("myst_parser", reason="the docs extra is not installed: pip install -e '.[docs]'")
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr + build.stdout
    for page in DOCS.glob("*.md"):  # every page is built, and reachable from the index (Sphinx warns if not)
        assert (tmp_path / page.with_suffix(".html").name).exists()
    assert "indiredis.core.channel" in (tmp_path / "api" / "core.html").read_text()


def test_configuration_reference_is_made_from_the_schema() -> None:
    page = (DOCS / "configuration.md").read_text()
    assert page == reference.page_with_reference(page), (
        "docs/configuration.md is out of date: python3 -m indiredis.service.reference docs/configuration.md"
    )


def test_configuration_reference_names_every_section_and_key() -> None:
    page = (DOCS / "configuration.md").read_text()
    for section in config.HOST_SECTIONS:
        assert f"### `[{section}]`" in page
    for name, keys in [
        *config.HOST_SECTIONS.items(),
        *((s, schema.service) for s, schema in config.SCHEMAS.items()),
    ]:
        for key in keys:
            assert f"| `{key}` |" in page, f"[{name}] {key} is not in docs/configuration.md"
    for service in config.SCHEMAS:
        assert f"### indiredis-{service}" in page


def _signature(name: str, function: Callable[..., object]) -> str:
    """``name(a, b, c="", *keys)``, as the tools page writes it."""
    parameters = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            parameters.append(f"*{parameter.name}")
        elif parameter.default is parameter.empty:
            parameters.append(parameter.name)
        else:
            default = '""' if parameter.default == "" else repr(parameter.default)
            parameters.append(f"{parameter.name}={default}")
    return f"{name}({', '.join(parameters)})"


def test_tools_page_shows_every_function_with_its_signature() -> None:
    page = (DOCS / "tools.md").read_text()
    for name in tools.__all__:
        heading = f"### `{_signature(name, getattr(tools, name))}`"
        assert heading in page, f"docs/tools.md lacks {heading}"


def test_nothing_points_outside_the_repository() -> None:
    """Docstrings, pages and shipped files refer to docs/, never to the specification files the project
    was written from (they are not part of it)."""
    places = [ROOT / "indiredis", DOCS, ROOT / "etc", ROOT / "debian", ROOT / "systemd"]
    files = [path for place in places for path in place.rglob("*") if path.is_file()]
    files += [ROOT / "README.md"]
    offending = [
        str(path.relative_to(ROOT))
        for path in files
        if path.suffix not in (".pyc",)
        and any(outside in path.read_text(errors="replace") for outside in OUTSIDE)
    ]
    assert not offending
