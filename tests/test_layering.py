"""The layering contracts of pyproject.toml, checked with import-linter as kopf does:
ven > cli | operator > http > core > api > placement > placement_ext, a pure core, an HTTP
library without a cluster client that reads the engine only through the core, and a
placement engine that knows nothing of Kubernetes. Each contract is also shown to
catch a planted violation, so a contract that checks nothing would fail here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("controller", "placement", "placement_ext")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, check=False,
        env={"PYTHONPATH": str(root), "PATH": str(LINT_IMPORTS.parent)},
    )


def test_the_tree_keeps_its_layers() -> None:
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 8 kept, 0 broken" in result.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("*.so", "*.c", "__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root)
    return root


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("placement/leak.py", "import kopf\n", "placement.leak -> kopf"),
        ("placement/leak.py", "import controller.core\n", "placement.leak -> controller.core"),
        ("controller/core/leak.py", "import rich\n", "controller.core.leak -> rich"),
        ("controller/core/leak.py", "import kubernetes\n", "controller.core.leak -> kubernetes"),
        ("controller/core/leak.py", "import controller.cli\n", "controller.core.leak -> controller.cli"),
        ("controller/api/leak.py", "import controller.core\n", "controller.api.leak -> controller.core"),
        ("controller/operator/leak.py", "import controller.cli\n", "controller.operator.leak -> controller.cli"),
        ("controller/http/leak.py", "import kubernetes\n", "controller.http.leak -> kubernetes"),
        ("controller/http/leak.py", "import controller.operator\n", "controller.http.leak -> controller.operator"),
        ("controller/http/leak.py", "import placement.explain\n", "controller.http.leak -> placement.explain"),
        ("controller/http/leak.py", "import placement_ext\n", "controller.http.leak -> placement_ext"),
        ("controller/cli/leak.py", "import fastapi\n", "controller.cli.leak -> fastapi"),
        ("controller/core/leak.py", "import controller.ven\n", "controller.core.leak -> controller.ven"),
        ("controller/operator/leak.py", "import controller.ven\n", "controller.operator.leak -> controller.ven"),
    ],
)
def test_each_boundary_catches_a_planted_import(tree_copy: Path, module: str, source: str, expected: str) -> None:
    planted = tree_copy / module
    assert not planted.exists() and (planted.parent / "__init__.py").exists(), "plant into an existing package"
    planted.write_text(source)
    try:
        result = _lint(tree_copy)
    finally:
        planted.unlink()
    assert result.returncode != 0
    assert expected in result.stdout, result.stdout
