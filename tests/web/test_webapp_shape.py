"""The web client's shape, read from the code: small classes and functions, cookies made in one place,
nothing stashed in the WSGI environ for later; and the route table answering as the old if-chains did."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import indiredis.indiwsgi
from indiredis.indiwsgi.responses import Response, cookie
from indiredis.indiwsgi.urls import Route, find

PACKAGE = Path(indiredis.indiwsgi.__file__).parent
SOURCES = sorted(PACKAGE.glob("*.py"))
MAX_CLASS, MAX_FUNCTION = 250, 40


def _lines(node: ast.AST) -> int:
    return int(node.end_lineno or 0) - int(getattr(node, "lineno", 0)) + 1


def test_no_long_class_or_function() -> None:
    too_long = [
        f"{path.name}: {node.name} ({_lines(node)} lines)"
        for path in SOURCES
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.ClassDef) and _lines(node) > MAX_CLASS)
        or (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _lines(node) > MAX_FUNCTION)
    ]
    assert not too_long


def test_cookies_are_made_in_one_place() -> None:
    makers = [path.name for path in SOURCES if "Set-Cookie" in path.read_text()]
    assert makers == ["responses.py"]


def test_nothing_is_stashed_in_the_environ() -> None:
    writes = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Subscript) and "environ" in ast.unparse(target.value):
                    writes.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("environ.setdefault"):
                writes.append(f"{path.name}:{node.lineno}")
    assert not writes


def test_cookie_attributes() -> None:
    assert cookie("indiredis_session", "abc", "/indi", secure=True) == (
        "indiredis_session=abc; Path=/indi; HttpOnly; SameSite=Strict; Secure"
    )
    assert cookie("indiredis_session", "", "/", max_age=0) == (
        "indiredis_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
    )
    response = Response("200 OK").set_cookie("indiredis_csrf", "t", "/")
    assert ("Set-Cookie", "indiredis_csrf=t; Path=/; HttpOnly; SameSite=Strict") in response.headers


def _handler(*args: object) -> Response:
    return Response("200 OK")


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "", ("", [])),
        ("GET", "device/a/b", None),  # a device name holding "/" is one segment, never two
        ("GET", "device/a%2Fb", ("device/{device}", ["a%2Fb"])),
        ("POST", "device/x", None),
        ("GET", "static/live.js", ("static/{static}", ["live.js"])),
        ("GET", "static/other.js", None),
        ("GET", "api/history/d/p/e", ("api/history/{device}/{property}/{element}", ["d", "p", "e"])),
    ],
)
def test_route_matching(method: str, path: str, expected: tuple[str, list[str]] | None) -> None:
    routes = [
        Route("GET", "", _handler),
        Route("GET", "device/{device}", _handler),
        Route("GET", "static/{static}", _handler, public=True),
        Route("GET", "api/history/{device}/{property}/{element}", _handler),
    ]
    found = find(routes, method, [part for part in path.split("/") if part])
    assert (None if found is None else (found[0].pattern, found[1])) == expected
    if found is not None:
        assert found[0].devices(found[1]) == [v for v in found[1] if v in ("a%2Fb", "d")]
