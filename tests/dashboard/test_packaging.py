"""The dashboard's files ship in the wheel: pyproject's package-data globs for
controller.http cover every file under controller/http/static (a file in a new
sub-directory would otherwise be left out silently; a wheel built by
scripts/build-wheel.sh was checked to hold them all)."""

from __future__ import annotations

import tomllib
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "controller" / "http"


def test_package_data_covers_every_static_file() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["controller.http"]
    files = [p.relative_to(PACKAGE).as_posix() for p in (PACKAGE / "static").rglob("*") if p.is_file()]
    assert "static/index.html" in files and "static/vendor/cytoscape.min.js" in files
    # setuptools matches each glob against paths relative to the package; '*' stays within a directory
    left_out = [f for f in files if not any(PurePosixPath(f).match(g) and f.count("/") == g.count("/") for g in globs)]
    assert not left_out, f"not in the wheel (add to [tool.setuptools.package-data]): {left_out}"
