"""The web client's own scripts, and Debian's libjs-dygraphs for the history graphs."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from .request import Request
from .responses import Response, text_response

log = logging.getLogger(__name__)

#: the package's files served under /static/<name>, and their types
PACKAGED = {"live.js": "text/javascript", "theme.js": "text/javascript"}
#: Debian's libjs-dygraphs, served for the history graphs: /static/<name> -> (file, type)
SYSTEM = {
    "dygraph.js": ("/usr/share/javascript/dygraphs/dygraph.min.js", "text/javascript"),
    "dygraph.css": ("/usr/share/javascript/dygraphs/dygraph.min.css", "text/css"),
}


class Static:
    """``/static/<name>``: the files above, read once."""

    names = frozenset(PACKAGED) | frozenset(SYSTEM)

    def __init__(self) -> None:
        folder = resources.files(__package__)
        self.files = {name: folder.joinpath(name).read_bytes() for name in PACKAGED}

    def file(self, req: Request, name: str) -> Response:
        """A packaged file, or one of a Debian JavaScript package."""
        if name in PACKAGED:
            return Response(
                "200 OK",
                self.files[name],
                PACKAGED[name] + "; charset=utf-8",
                [("Cache-Control", "max-age=300")],
            )
        return self.system(name)

    def system(self, name: str) -> Response:
        """A file of a Debian JavaScript package (read once); 404 when the package is missing."""
        path, kind = SYSTEM[name]
        if name not in self.files:
            try:
                self.files[name] = Path(path).read_bytes()
            except OSError:
                log.warning("web client: %s is missing (install libjs-dygraphs for the graphs)", path)
                return text_response("404 Not Found", f"{path} is missing: install libjs-dygraphs")
        headers = [("Cache-Control", "max-age=3600")]
        return Response("200 OK", self.files[name], kind + "; charset=utf-8", headers)
