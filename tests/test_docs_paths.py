"""The docs do not name what is gone: every module, class or function path that
``docs/``, the README or a docstring of the shipped packages names (in backticks, or as
a Sphinx role such as :mod:`controller.core.grid`) must import and resolve.

A renamed module or function otherwise leaves the docs pointing at nothing, and a
newcomer following them is lost. Field paths of the API (``spec.placement.allowFleets``)
and file paths (``controller/core/grid.py``) are not dotted Python paths and are not
checked here.
"""

from __future__ import annotations

import ast
import importlib
import re
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("controller", "placement", "placement_ext", "bench")
_PATH = r"(?:controller|placement|placement_ext|bench)(?:\.[A-Za-z_][A-Za-z0-9_]*)+"
# ``a.b.c`` or `a.b.c` (optionally called: a.b.c()), or :mod:`a.b`, :func:`~a.b.c`
REFERENCE = re.compile(rf"(?::[a-z]+:`~?|``|`)(?P<path>{_PATH})(?:\(\))?(?:``|`)")


@cache
def resolves(path: str) -> bool:
    """The longest importable module prefix of ``path``, then its attributes."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return False
            found = getattr(found, attribute)
        return True
    return False


def _docstrings(path: Path) -> str:
    tree = ast.parse(path.read_text())
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                                          ast.AsyncFunctionDef))]
    return "\n".join(doc for n in nodes if (doc := ast.get_docstring(n)))


def _texts() -> dict[str, str]:
    texts = {str(p.relative_to(REPO)): p.read_text() for p in [*REPO.glob("docs/**/*.md"), REPO / "README.md"]}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            texts[str(path.relative_to(REPO))] = _docstrings(path)
    return texts


def test_the_scan_finds_references() -> None:
    """The pattern sees the references it is meant to see (else the check below is empty)."""
    found = [m.group("path") for m in REFERENCE.finditer(
        "see :mod:`controller.core.grid`, ``controller.core.timeline.timeline()`` and `placement.plan`; "
        "not spec.placement.allowFleets nor controller/core/grid.py")]
    assert found == ["controller.core.grid", "controller.core.timeline.timeline", "placement.plan"]
    assert sum(len(list(REFERENCE.finditer(text))) for text in _texts().values()) > 100


def test_every_path_the_docs_name_exists() -> None:
    missing = sorted({(name, m.group("path")) for name, text in _texts().items()
                      for m in REFERENCE.finditer(text) if not resolves(m.group("path"))})
    if missing:
        pytest.fail("paths named in docs or docstrings that do not exist:\n"
                    + "\n".join(f"  {name}: {path}" for name, path in missing), pytrace=False)
