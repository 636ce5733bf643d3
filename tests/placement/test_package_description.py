"""``placement/__init__.py`` lists the engine's modules in pipeline order and says each
imports (at run time) only those before it. This test holds the docstring to that: the
list names every module of the package, once, and no module imports one listed after it.
Imports under ``if TYPE_CHECKING:`` are annotations only and do not count."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import placement

PACKAGE = Path(placement.__file__).parent


def _listed_modules() -> list[str]:
    doc = placement.__doc__ or ""
    section = doc.split("Modules, in pipeline order", 1)[1]
    return [name for name in re.findall(r"``([a-z_]+)``", section) if (PACKAGE / f"{name}.py").exists()]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(path: Path) -> set[str]:
    """The ``placement.*`` modules a module imports when it runs (nested ones included)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("placement."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("placement."))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def test_the_docstring_lists_every_module_of_the_package_once() -> None:
    listed = _listed_modules()
    on_disk = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert len(listed) == len(set(listed)), f"listed twice: {sorted({m for m in listed if listed.count(m) > 1})}"
    assert sorted(listed) == on_disk, (
        f"missing from the docstring: {sorted(set(on_disk) - set(listed))}; "
        f"listed but gone: {sorted(set(listed) - set(on_disk))}")


def test_each_module_imports_only_modules_listed_before_it() -> None:
    listed = _listed_modules()
    position = {name: i for i, name in enumerate(listed)}
    late = {
        name: sorted(m for m in _runtime_imports(PACKAGE / f"{name}.py") if position.get(m, -1) >= position[name])
        for name in listed
    }
    assert {name: after for name, after in late.items() if after} == {}


def test_the_checker_sees_a_late_import(tmp_path: Path) -> None:
    """The import reader is what the order test relies on: it must see nested imports
    and skip annotation-only ones."""
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "from placement.snapshot import Snapshot\n"
        "if TYPE_CHECKING:\n    from placement.pipeline import plan\n"
        "def f():\n    import placement.warm\n")
    assert _runtime_imports(module) == {"snapshot", "warm"}
