"""Sphinx configuration: the project's documentation (Markdown, through myst-parser) and the API reference.

``make docs`` builds it with warnings as errors into ``build/docs/html``; ``tests/docs`` builds it too, so a
broken docstring fails the test suite.  It builds with Debian's Sphinx 5.3 / myst-parser 0.18 (the package
build) as with current releases from PyPI (the virtualenv).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document the source tree's package, not an installed one

import indiredis  # noqa: E402
from indiredis.service.reference import page_with_reference  # noqa: E402

project = "indiredis"
author = "indiredis developers"
copyright = "indiredis developers"  # noqa: A001 - the name Sphinx reads
version = release = indiredis.__version__

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = master_doc = "index"  # master_doc: the name Sphinx 5.3 reads

myst_heading_anchors = 3  # links to sections of another page: [text](redis-keys.md#history-logs)

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# optional at run time (the systemd notification and journal libraries, the web server): not needed to
# read the docstrings of the modules that use them
autodoc_mock_imports = ["systemd", "waitress"]

html_theme = "alabaster"
html_title = f"indiredis {release}"
html_copy_source = False  # no _sources/ in the Debian package (and no "show source" links to them)
html_show_sourcelink = False


class PackageModules(SphinxDirective):
    """``.. package-modules:: indiredis.store``: a section with the automodule of every module of a package.

    The modules are found when the documentation is built (``__main__`` modules left out), so a module
    added to the package appears in the reference without editing it.  ``:toplevel:`` documents the
    package and its plain modules only, and warns about a subpackage that has no page ``api/<name>``
    of its own (which would leave its modules out).
    """

    required_arguments = 1
    option_spec = {"toplevel": lambda argument: True}

    def module_names(self) -> list[str]:
        package = importlib.import_module(self.arguments[0])
        prefix = package.__name__ + "."
        found = pkgutil.iter_modules(package.__path__, prefix)
        if "toplevel" not in self.options:
            found = pkgutil.walk_packages(package.__path__, prefix)
        names = [info.name for info in found if not ("toplevel" in self.options and info.ispkg)]
        return [package.__name__] + sorted(name for name in names if not name.endswith(".__main__"))

    def check_subpackage_pages(self) -> None:
        package = importlib.import_module(self.arguments[0])
        for info in pkgutil.iter_modules(package.__path__):
            if info.ispkg and f"api/{info.name}" not in self.env.found_docs:
                logging.getLogger(__name__).warning(
                    "%s.%s has no page docs/api/%s.rst",
                    package.__name__,
                    info.name,
                    info.name,
                    location=self.get_location(),
                )

    def run(self) -> list[nodes.Node]:
        if "toplevel" in self.options:
            self.check_subpackage_pages()
        lines: list[str] = []
        for name in self.module_names():
            # every object once, where it is defined: names a module re-exports (``__all__`` of a package)
            # would otherwise be documented twice, and make cross-references ambiguous
            lines += [f"``{name}``", "-" * (len(name) + 4), "", f".. automodule:: {name}", "   :members:"]
            lines += ["   :ignore-module-all:", ""]
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source=self.get_source_info()[0]), container)
        return list(container.children)


def current_configuration_reference(app: Sphinx, docname: str, source: list[str]) -> None:
    """The configuration page is built with the reference made from the code now, so the HTML (and the
    Debian package) is right even if the copy in the repository was not remade (tests/docs says so)."""
    if docname == "configuration":
        source[0] = page_with_reference(source[0])


def setup(app: Sphinx) -> dict[str, bool]:
    app.add_directive("package-modules", PackageModules)
    app.connect("source-read", current_configuration_reference)
    return {"parallel_read_safe": True}
