"""The layering contract: controller > placement > placement_ext, and placement* free
of kopf, kubernetes and fastapi. Checked with import-linter, as kopf does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, check=False,
        env={"PYTHONPATH": str(root), "PATH": str(LINT_IMPORTS.parent)},
    )


def test_the_tree_keeps_its_layers():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken" in result.stdout


def test_the_contract_catches_kopf_in_placement(tmp_path):
    for package in ("controller", "placement", "placement_ext"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("*.so", "*.c"))
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    (tmp_path / "placement" / "leak.py").write_text("import kopf\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "placement.leak -> kopf" in result.stdout
