"""requirements/runtime.lock against pyproject.toml's [project.dependencies], offline.

The lock is stale when a dependency was added to pyproject and not locked, removed and
still locked as the project's, or given a specifier its pinned version no longer
meets; `make lock` re-resolves it. Every pin must carry hashes (the image installs with
--require-hashes). The checker is also run on altered copies of pyproject, so it is
known to notice each kind of drift.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "runtime.lock"
PYPROJECT = REPO / "pyproject.toml"
# The environment the lock is resolved for: the image's (scripts/lock.sh checks 3.11).
IMAGE_MARKERS = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
                 "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
                 "implementation_name": "cpython", "platform_python_implementation": "CPython"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.MULTILINE)


def parse_lock(text: str) -> tuple[dict[str, Version], set[str], list[str]]:
    """(name -> pinned version, names locked because pyproject asks for them, pins without a hash)."""
    pins: dict[str, Version] = {}
    direct: set[str] = set()
    unhashed: list[str] = []
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    for block in blocks:
        match = PIN.match(block)
        if not match:
            continue
        name = canonicalize_name(match.group(1))
        pins[name] = Version(match.group(2))
        if "--hash=sha256:" not in block:
            unhashed.append(name)
        if "(pyproject.toml)" in block:
            direct.add(name)
    return pins, direct, unhashed


def declared() -> list[str]:
    """pyproject.toml's [project.dependencies]."""
    return list(tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"])


def lock_problems(dependencies: list[str], lock_text: str) -> list[str]:
    """Why the lock does not match these dependencies ([] when it does)."""
    wanted = [Requirement(r) for r in dependencies]
    wanted = [r for r in wanted if r.marker is None or r.marker.evaluate(IMAGE_MARKERS)]
    pins, direct, unhashed = parse_lock(lock_text)
    problems = []
    for req in wanted:
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req} is not in the lock")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{req}: the lock pins {pins[name]}")
    for name in sorted(direct - {canonicalize_name(r.name) for r in wanted}):
        problems.append(f"{name} is locked for pyproject, which no longer asks for it")
    problems += [f"{name} has no hash" for name in unhashed]
    return problems


def test_the_lock_matches_pyprojects_dependencies() -> None:
    problems = lock_problems(declared(), LOCK.read_text())
    assert problems == [], "requirements/runtime.lock is stale (run `make lock`):\n" + "\n".join(problems)


def test_the_lock_pins_every_direct_dependency_with_hashes() -> None:
    pins, direct, unhashed = parse_lock(LOCK.read_text())
    assert direct == {canonicalize_name(Requirement(r).name) for r in declared()}
    assert len(pins) > len(direct) and unhashed == []
    assert "make lock" in LOCK.read_text().split("\n\n")[0]  # the header names the command that regenerates it


def test_the_checker_notices_an_added_a_removed_and_a_narrowed_dependency() -> None:
    lock = LOCK.read_text()
    pins, _, _ = parse_lock(lock)
    deps = declared()
    assert lock_problems([*deps, "uvloop>=0.19"], lock) == ["uvloop>=0.19 is not in the lock"]
    without_rich = [d for d in deps if canonicalize_name(Requirement(d).name) != "rich"]
    assert lock_problems(without_rich, lock) == ["rich is locked for pyproject, which no longer asks for it"]
    newer = f"pyyaml>{pins['pyyaml']}"
    narrowed = [newer if canonicalize_name(Requirement(d).name) == "pyyaml" else d for d in deps]
    assert lock_problems(narrowed, lock) == [f"{newer}: the lock pins {pins['pyyaml']}"]
    # not for the image's platform: nothing to lock
    assert lock_problems([*deps, 'pywin32>=306; sys_platform == "win32"'], lock) == []
    unhashed = re.sub(r"(rich==\S+) \\\n(\s+--hash=\S+( \\)?\n)+", r"\1\n", lock)
    assert lock_problems(deps, unhashed) == ["rich has no hash"]
