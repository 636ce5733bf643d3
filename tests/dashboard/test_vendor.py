"""The vendored JavaScript libraries are exactly what scripts/vendor-js.sh recorded.

vendor/VERSIONS lists each library's pinned version with npm's tarball integrity and
the sha256 of every file copied; a hand-edited or half-regenerated vendor/ fails here.
The versions pinned in the script must be the ones recorded, and the page must load
every vendored file it ships (and nothing unrecorded).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "controller" / "http" / "static"
VENDOR = STATIC / "vendor"
SCRIPT = REPO / "scripts" / "vendor-js.sh"


def _versions() -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    packages: dict[str, tuple[str, str]] = {}
    files: dict[str, str] = {}
    for line in (VENDOR / "VERSIONS").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        kind, *rest = line.split()
        if kind == "package":
            name, version, integrity = rest
            packages[name] = (version, integrity)
        elif kind == "file":
            sha, path = rest
            files[path] = sha
        else:
            raise AssertionError(f"unknown VERSIONS line: {line!r}")
    return packages, files


def test_every_vendored_file_matches_its_recorded_sha256() -> None:
    _, files = _versions()
    on_disk = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()} - {"VERSIONS"}
    assert on_disk == set(files), f"unrecorded: {sorted(on_disk - set(files))}; missing: {sorted(set(files) - on_disk)}"
    for path, sha in files.items():
        assert hashlib.sha256((VENDOR / path).read_bytes()).hexdigest() == sha, f"vendor/{path} differs from VERSIONS"


def test_recorded_versions_are_the_ones_the_script_pins() -> None:
    packages, _ = _versions()
    script = SCRIPT.read_text()
    pinned = {
        "cytoscape": re.search(r"^CYTOSCAPE_VERSION=(\S+)$", script, re.MULTILINE),
        "uplot": re.search(r"^UPLOT_VERSION=(\S+)$", script, re.MULTILINE),
    }
    assert set(packages) == set(pinned)
    for name, match in pinned.items():
        assert match is not None, f"scripts/vendor-js.sh pins no version of {name}"
        version, integrity = packages[name]
        assert version == match.group(1), f"{name}: VERSIONS has {version}, the script pins {match.group(1)}"
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]+=*", integrity), f"{name}: integrity {integrity!r}"


def test_each_library_ships_its_licence() -> None:
    _, files = _versions()
    for name in ("cytoscape", "uplot"):
        licence = VENDOR / "LICENSES" / f"{name}.LICENSE"
        assert f"LICENSES/{name}.LICENSE" in files
        assert "Permission is hereby granted" in licence.read_text(), f"{name}: not the MIT text"


def test_the_page_loads_the_vendored_code_from_its_own_origin() -> None:
    html = re.sub(r"<!--.*?-->", "", (STATIC / "index.html").read_text(), flags=re.DOTALL)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "static/vendor/cytoscape.min.js" in sources and "static/vendor/uPlot.iife.min.js" in sources
    # Relative paths only: no scheme, no protocol-relative host, no inline script or style.
    assert all(not re.match(r"^(?:[a-z]+:)?//", s) for s in sources), sources
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> (the CSP forbids it)"
    assert "<style" not in html and " style=" not in html, "inline style (the CSP forbids it)"
    assert "on" not in {a[:2] for a in re.findall(r"\s([a-z]+)=", html)}, "inline event handler (the CSP forbids it)"
