"""One exception root, read from the code: every exception class the package defines derives from
IndiredisError, and no module raises one of Python's own exception classes bare (the package's own
are used, which stay ValueError or RuntimeError where they were, for callers' ``except``)."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import indiredis
from indiredis.errors import IndiredisError

PACKAGE = Path(indiredis.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))

#: builtins a module may raise bare: an abstract method, an exhausted iterator and a missing attribute
#: (of a module-level ``__getattr__``) are Python's protocols, not errors of indiredis
PROTOCOL_RAISES = {"NotImplementedError", "StopIteration", "StopAsyncIteration", "AttributeError"}
BUILTIN_EXCEPTIONS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages([str(PACKAGE)], "indiredis."):
        if not info.name.endswith(".__main__"):  # running it is its job: importing would run it
            names.append(info.name)
    return names


def _bare_builtin_raises(path: Path) -> list[str]:
    """``raise ValueError(...)`` and the like in ``path``: a builtin exception class, called or named."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(target, ast.Name) and target.id in BUILTIN_EXCEPTIONS - PROTOCOL_RAISES:
            found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: raise {target.id}")
    return found


def test_the_walk_sees_the_package() -> None:
    assert len(SOURCES) > 50 and any(p.name == "hosts.py" for p in SOURCES)


def test_no_module_raises_a_builtin_exception_bare() -> None:
    found = [line for path in SOURCES for line in _bare_builtin_raises(path)]
    assert not found, "raise an indiredis.errors class instead:\n" + "\n".join(found)


def test_the_walk_would_catch_one(tmp_path: Path) -> None:
    sample = PACKAGE / "__sample_for_the_test__.py"
    source = "def f(x):\n    if x:\n        raise ValueError('bad')\n    raise NotImplementedError\n"
    try:
        sample.write_text(source)
        assert _bare_builtin_raises(sample) == ["indiredis/__sample_for_the_test__.py:3: raise ValueError"]
    finally:
        sample.unlink()


@pytest.mark.parametrize("name", _modules())
def test_every_exception_class_defined_derives_from_the_root(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional dependency (the web client's) missing: nothing to check
        pytest.skip(f"{name}: {exc}")
    for cls_name, cls in vars(module).items():
        if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == name:
            assert issubclass(cls, IndiredisError), f"{name}.{cls_name} is not an IndiredisError"
