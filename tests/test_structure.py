"""The internals' measurable shape (issue 26): small classes and functions, and messages read through their
typed classes outside ``protocol/`` (no tag strings compared, no raw attribute lookups)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "indiredis"
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 40

#: over the limits still, each in a module another branch of round 2 is reshaping (the lead drops an entry
#: as its split lands; the test fails for an entry that is no longer over, so the list only shrinks)
PENDING_CLASSES = {
    "indiredis/protocol/parser.py IndiStreamParser": "not yet split (the parser's hot path)",
    "indiredis/store/blobs.py BlobFolder": "not yet split (names, writing, retention's view)",
    "indiredis/store/keyspace.py KeySpaceModel": "grew with the CPU-per-message work (inlined hot path)",
}
PENDING_FUNCTIONS = {
    "indiredis/protocol/parser.py _token": "the parser's hot path (CPU per message)",
    "indiredis/store/keyspace.py _on_set": "the key space's hot path (CPU per message)",
    "indiredis/protocol/numbers.py number_to_float": "the numbers' hot path (CPU per message)",
    "indiredis/service/web.py run": "not yet split (one web process serving several sites)",
    "indiredis/demo.py main": "not yet split",
    "indiredis/protocol/clientlayout.py indiserver_layout": "not yet split",
    "indiredis/service/reference.py reference": "not yet split",
}

#: comparisons and lookups the check finds that are about no message
NOT_MESSAGES = {
    # the web's head-only read of a line published on from_indi (no message parsed, for speed)
    "indiredis/indiwsgi/live.py:201",
    # PropertyModel.attrs: the key-space model's hash of a property, not a message
    "indiredis/store/keyspace.py:149",
}


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
    longer = _longer((ast.ClassDef,), MAX_CLASS_LINES)
    assert {name: lines for name, lines in longer.items() if name not in PENDING_CLASSES} == {}
    assert [name for name in PENDING_CLASSES if name not in longer] == []


def test_no_function_is_over_40_lines() -> None:
    longer = _longer((ast.FunctionDef, ast.AsyncFunctionDef), MAX_FUNCTION_LINES)
    assert {name: lines for name, lines in longer.items() if name not in PENDING_FUNCTIONS} == {}
    assert [name for name in PENDING_FUNCTIONS if name not in longer] == []


def _is_tag(node: ast.expr) -> bool:
    """``<x>.tag``, a bare ``tag`` or ``Tag.<NAME>``: a message's tag string."""
    match node:
        case ast.Attribute(attr="tag") | ast.Name(id="tag"):
            return True
        case ast.Attribute(value=ast.Name(id="Tag")):
            return True
    return False


def _message_lookups(module: ast.Module) -> Iterator[ast.AST]:
    for node in ast.walk(module):
        match node:
            case ast.Compare(left=left, comparators=comparators) if any(
                _is_tag(side) for side in (left, *comparators)
            ):
                yield node
            case ast.Call(
                func=ast.Attribute(value=ast.Attribute(attr="tag"), attr="startswith" | "endswith")
            ):
                yield node
            case ast.Call(func=ast.Attribute(value=ast.Attribute(attr="attrs"), attr="get")):
                yield node


def test_messages_are_read_through_their_typed_classes_outside_protocol() -> None:
    found = [
        f"{name}:{node.lineno}"  # type: ignore[attr-defined]
        for name, module in _modules()
        if not name.startswith("indiredis/protocol/")
        for node in _message_lookups(module)
    ]
    assert sorted(set(found) - NOT_MESSAGES) == []


def test_the_check_finds_what_it_looks_for() -> None:
    code = ast.parse(
        "a = m.tag == 'x'\nb = tag != Tag.SET_BLOB_VECTOR\n"
        "c = m.tag.startswith('def')\nd = m.attrs.get('uid')\n"
    )
    assert len(list(_message_lookups(code))) == 4
