"""Same mesh + same config = the same plan, byte for byte, on a busy machine.

Every budget that shapes a plan counts work (CP-SAT deterministic time with an
interleaved portfolio, subgradient steps, kernel passes), so a CPU-burning process
per core beside the solver must not change a single decision, site figure or
statistic (timings aside). Only the wall-clock safety net could, and it says so.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

import placement
from placement import SolverConfig
from tests.support import load
from tests.support.invariants import canonical, check_plan
from tests.support.meshes import perturb, synthetic_mesh

RUNS = 3
# The wall-clock safety net is far away: these tests are about the work budgets
# (a shared test machine can be slower than the default 60 s assumes).
CONFIG = SolverConfig(num_workers=2, random_seed=0, time_limit_s=900.0)


@pytest.fixture
def busy_machine() -> Iterator[None]:
    with load.busy_machine():
        yield


@pytest.fixture(scope="module")
def mesh() -> placement.Mesh:
    return synthetic_mesh(300, 40, seed=0)


def test_cold_plans_are_identical_under_cpu_load(mesh, busy_machine):
    plans = [placement.plan(mesh, CONFIG) for _ in range(RUNS)]
    assert not any(p.stats.wall_limit_hit for p in plans)
    texts = {canonical(p) for p in plans}
    assert len(texts) == 1
    check_plan(mesh, plans[0])
    assert plans[0].stats.num_candidates > 0 and plans[0].stats.placed_workloads > 0


def test_warm_plans_are_identical_under_cpu_load(mesh, busy_machine):
    cold = placement.plan(mesh, CONFIG)
    changed = perturb(mesh, fraction=0.05, seed=3)
    plans = [placement.plan(changed, CONFIG, previous=cold) for _ in range(RUNS)]
    assert all(p.stats.warm and not p.stats.wall_limit_hit for p in plans)
    assert len({canonical(p) for p in plans}) == 1
    check_plan(changed, plans[0])


def test_kernel_threads_do_not_change_the_plan():
    small = synthetic_mesh(80, 15, seed=5)
    one = placement.plan(small, replace(CONFIG, kernel_threads=1))
    two = placement.plan(small, replace(CONFIG, kernel_threads=2))
    assert canonical(one) == canonical(two)


def test_a_wall_limit_hit_is_reported():
    small = synthetic_mesh(40, 8, seed=2)
    p = placement.plan(small, SolverConfig(time_limit_s=1e-6))  # gone before CP-SAT starts
    assert p.stats.wall_limit_hit
    assert p.stats.fallback_used
    check_plan(small, p)
    assert not placement.plan(small, CONFIG).stats.wall_limit_hit
