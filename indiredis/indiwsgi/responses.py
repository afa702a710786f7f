"""What a handler returns: a :class:`Response` (status, headers, body), and the one place cookies are made.

Every answer carries :data:`SECURITY_HEADERS`.  A handler that sets a cookie says so in the
response it returns (:meth:`Response.set_cookie`); nothing is left in the request for later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

StartResponse = Callable[..., Any]
SECURITY_HEADERS = [
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; img-src 'self'"),
]
HTML = "text/html; charset=utf-8"


def cookie(name: str, value: str, path: str, *, secure: bool = False, max_age: int | None = None) -> str:
    """A ``Set-Cookie`` value: every cookie of the web client is HttpOnly and SameSite=Strict, for
    ``path``; ``max_age=0`` forgets it; ``secure`` when the request came over HTTPS."""
    ending = "; Secure" if secure else ""
    lifetime = f"; Max-Age={max_age}" if max_age is not None else ""
    return f"{name}={value}; Path={path}{lifetime}; HttpOnly; SameSite=Strict{ending}"


class Response:
    """Status, headers and body of one answer."""

    def __init__(
        self,
        status: str,
        body: bytes = b"",
        content_type: str = HTML,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self.status, self.body = status, body
        self.headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        self.headers += SECURITY_HEADERS + (headers or [])

    def set_cookie(
        self, name: str, value: str, path: str, *, secure: bool = False, max_age: int | None = None
    ) -> Response:
        """This response, setting a cookie (see :func:`cookie`)."""
        self.headers.append(("Set-Cookie", cookie(name, value, path, secure=secure, max_age=max_age)))
        return self

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response(self.status, self.headers)
        return [self.body]


class FileResponse(Response):
    """A file answered as it is read (with the server's ``wsgi.file_wrapper`` when it has one), never
    read whole into memory."""

    CHUNK = 1024 * 1024

    def __init__(self, path: Path, headers: list[tuple[str, str]]) -> None:
        super().__init__("200 OK", b"", "application/octet-stream", headers)
        self.path = path

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return self.stream(environ, start_response)

    def stream(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Open the file and answer it: its size as Content-Length, then its chunks."""
        handle = self.path.open("rb")
        size = str(os.fstat(handle.fileno()).st_size)
        start_response(self.status, [(k, size if k == "Content-Length" else v) for k, v in self.headers])
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is not None:
            return wrapper(handle, self.CHUNK)  # type: ignore[no-any-return]  # the server's iterable

        def chunks() -> Iterable[bytes]:
            with handle:
                yield from iter(lambda: handle.read(self.CHUNK), b"")

        return chunks()


class StreamResponse(Response):
    """Server-sent events (see :mod:`.push`): no length, never cached or buffered by a proxy."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__(
            "200 OK",
            b"",
            "text/event-stream",
            [("Cache-Control", "no-store"), ("X-Accel-Buffering", "no")],
        )
        self.headers = [(k, v) for k, v in self.headers if k != "Content-Length"]
        self.chunks = chunks

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        start_response(self.status, self.headers)
        return self.chunks


def text_response(status: str, text: str) -> Response:
    """A plain-text answer (refusals, short confirmations)."""
    return Response(status, text.encode(), "text/plain; charset=utf-8")


def json_response(data: Any, cache: str = "no-store") -> Response:
    """A JSON answer with its ``Cache-Control``."""
    return Response("200 OK", json.dumps(data).encode(), "application/json", [("Cache-Control", cache)])


def redirect(location: str) -> Response:
    """303 See Other to ``location``."""
    return Response("303 See Other", b"", headers=[("Location", location)])
