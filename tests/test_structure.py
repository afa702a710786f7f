"""The internals' measurable shape (issue 26): small classes and functions, and messages read through their
typed classes outside ``protocol/`` (no tag strings compared, no raw attribute lookups)."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "indiredis"
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 40
MODULE_LEVEL = "<module>"  #: the function name of a lookup outside every function

#: comparisons and lookups the check finds that are about no message, each excused by its module and the
#: name of the function it is in (every lookup there; not a line number, which any edit above moves), with
#: a comment saying why; the test fails for an excuse that covers none.  None is needed today.
NOT_MESSAGES: set[str] = set()


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield str(path.relative_to(PACKAGE.parent)), ast.parse(path.read_text(), str(path))


def _lines(node: ast.AST) -> int:
    assert isinstance(node, ast.stmt) and node.end_lineno is not None
    return node.end_lineno - node.lineno + 1


def _longer(kinds: tuple[type[ast.AST], ...], limit: int) -> dict[str, int]:
    """``module name`` -> lines of each definition of ``kinds`` over ``limit`` lines."""
    return {
        f"{name} {getattr(node, 'name', '')}": _lines(node)
        for name, module in _modules()
        for node in ast.walk(module)
        if isinstance(node, kinds) and _lines(node) > limit
    }


def test_no_class_is_over_250_lines() -> None:
    assert _longer((ast.ClassDef,), MAX_CLASS_LINES) == {}


def test_no_function_is_over_40_lines() -> None:
    assert _longer((ast.FunctionDef, ast.AsyncFunctionDef), MAX_FUNCTION_LINES) == {}


def _is_tag(node: ast.expr) -> bool:
    """``<x>.tag``, a bare ``tag`` or ``Tag.<NAME>``: a message's tag string."""
    match node:
        case ast.Attribute(attr="tag") | ast.Name(id="tag"):
            return True
        case ast.Attribute(value=ast.Name(id="Tag")):
            return True
    return False


def _is_property_model(node: ast.expr) -> bool:
    """``prop`` or ``self`` (in :class:`~indiredis.store.properties.PropertyModel`): the key-space
    model's hash of a property, whose ``attrs`` are no message's."""
    return isinstance(node, ast.Name) and node.id in ("prop", "self")


def _in_functions(node: ast.AST, function: str = MODULE_LEVEL) -> Iterator[tuple[str, ast.AST]]:
    """Every node under ``node``, with the name of the innermost function it is in."""
    for child in ast.iter_child_nodes(node):
        yield function, child
        inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
        yield from _in_functions(child, inner)


def _message_lookups(module: ast.Module) -> Iterator[tuple[str, ast.expr]]:
    """The tag comparisons and raw attribute lookups in ``module``, each with its function's name."""
    for function, node in _in_functions(module):
        match node:
            case ast.Compare(left=left, comparators=comparators) if any(
                _is_tag(side) for side in (left, *comparators)
            ):
                yield function, node
            case ast.Call(
                func=ast.Attribute(value=ast.Attribute(attr="tag"), attr="startswith" | "endswith")
            ):
                yield function, node
            case ast.Attribute(attr="attrs", value=value) if not _is_property_model(value):
                yield function, node  # any read of a message's raw attributes, aliased or not


def _unexcused(modules: Iterable[tuple[str, ast.Module]], excuses: set[str]) -> tuple[list[str], list[str]]:
    """The lookups found outside ``protocol/`` that no excuse covers (``module:line in function``), and
    the excuses that cover none (a function that no longer has one, or is gone)."""
    found = {
        (f"{name} {function}", f"{name}:{node.lineno} in {function}")
        for name, module in modules
        if not name.startswith("indiredis/protocol/")
        for function, node in _message_lookups(module)
    }
    unexcused = sorted(where for excuse, where in found if excuse not in excuses)
    return unexcused, sorted(excuses - {excuse for excuse, _where in found})


def test_messages_are_read_through_their_typed_classes_outside_protocol() -> None:
    assert _unexcused(_modules(), NOT_MESSAGES) == ([], [])


def test_the_check_finds_what_it_looks_for() -> None:
    code = ast.parse(
        "a = m.tag == 'x'\n"
        "def f(m):\n    b = tag != Tag.SET_BLOB_VECTOR\n"
        "    def g(m):\n        c = m.tag.startswith('def')\n"
        "    d = m.attrs.get('uid')\n"
        "class C:\n    async def h(self, m):\n        return m.attrs.get('x') or m.name == 'y'\n"
        "def k(message, prop):\n    attrs = message.attrs\n    return attrs.get('x'), prop.attrs.get('y')\n"
    )
    found = [(function, node.lineno) for function, node in _message_lookups(code)]
    assert sorted(found) == [(MODULE_LEVEL, 1), ("f", 3), ("f", 6), ("g", 5), ("h", 9), ("k", 11)]


def test_an_excuse_covers_only_the_function_it_names() -> None:
    code = ast.parse(
        "def head(m):\n    return m.tag == 'x'\n"
        "def other(m):\n    return m.tag == 'x'\n"
        "class C:\n    def head_too(self, m):\n        return m.attrs.get('x')\n"
    )
    modules = [("indiredis/x.py", code), ("indiredis/y.py", code), ("indiredis/protocol/x.py", code)]
    unexcused, unused = _unexcused(modules, {"indiredis/x.py head", "indiredis/x.py gone"})
    assert unexcused == [
        "indiredis/x.py:4 in other",
        "indiredis/x.py:7 in head_too",
        "indiredis/y.py:2 in head",
        "indiredis/y.py:4 in other",
        "indiredis/y.py:7 in head_too",
    ]
    assert unused == ["indiredis/x.py gone"]
