"""Same mesh, same plan, whatever the machine is doing: ``meshctl plan -o json`` run five
times while CPU-burning processes compete for every core prints five identical
documents (the solver is bounded by deterministic work, not by the wall clock)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import load

REPO = Path(__file__).resolve().parents[3]
MESHCTL = Path(sys.executable).with_name("meshctl")
RUNS = 5


@pytest.fixture
def busy_machine() -> Iterator[None]:
    with load.busy_machine():
        yield


def test_five_plans_beside_a_cpu_burner_are_identical(busy_machine: None) -> None:
    outputs = []
    for _ in range(RUNS):
        result = subprocess.run(
            [str(MESHCTL), "plan", "-f", str(REPO / "examples"), "--at", "2026-11-21T23:30:00-08:00", "-o", "json"],
            capture_output=True, text=True, check=False,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert len(set(outputs)) == 1, "the same mesh gave different plans under load"
    assert '"phase": "Placed"' in outputs[0]
