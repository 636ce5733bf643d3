"""The engine's LeastAllocated greedy (placement/kube_greedy.py) against the independent
kube-scheduler-style baseline (bench/baseline.py, written apart from the engine), and
how the pipeline uses it.

* On meshes of every family it binds exactly what the baseline binds (same columns,
  same devices, workload by workload): the two were written from the same rules
  (docs/placement.md) over different data structures, so a drift in either shows.
* Its placements hold every capacity rule (``feasible_devices`` on the engine's own
  candidates) and it is deterministic.
* The pipeline keeps it only when it places strictly more than the cheapest-first
  greedy (``stats.hint_source``), and then the plan's floor is its value.
"""

from __future__ import annotations

import numpy as np
import pytest

import placement
from bench.baseline import schedule
from placement import SolverConfig
from placement.candidates import build_candidates, feasible_devices
from placement.greedy import devices_from_greedy
from placement.kube_greedy import kube_greedy
from placement.snapshot import build
from placement_ext import filter_score_topk
from tests.support.meshes import FAMILIES, family_mesh


@pytest.mark.parametrize("family", FAMILIES)
def test_binds_what_the_independent_baseline_binds(family: str) -> None:
    for seed in (0, 1, 2):
        mesh = family_mesh(family, 60, 12, seed)
        baseline = schedule(mesh)
        snap = build(mesh)
        run = kube_greedy(snap)
        assert run.placed.any()
        for w, key in enumerate(snap.keys):
            ours = sorted((int(c), int(n)) for c, n in zip(run.cols[w], run.devices[w], strict=True) if c >= 0)
            theirs = sorted(baseline.assignments[key])  # the baseline's columns are in the same mesh order
            assert ours == theirs, f"{family} seed {seed} {key}: {ours} != {theirs}"
        assert int(snap.value[run.placed].sum()) == baseline.priority_demand()


@pytest.mark.parametrize("family", ["shared-power", "gangs", "scarce"])
def test_placements_hold_every_capacity_rule_and_repeat(family: str) -> None:
    mesh = family_mesh(family, 200, 30, 1)
    snap = build(mesh)
    run = kube_greedy(snap)
    again = kube_greedy(build(mesh))
    assert np.array_equal(run.cols, again.cols) and np.array_equal(run.devices, again.devices)
    kout = filter_score_topk(snap.cols, snap.wls, 8, 1)
    cands = build_candidates(snap, kout, run.cols)
    dev = devices_from_greedy(cands, run)
    assert int(dev.sum()) == int(run.devices.sum())
    assert feasible_devices(snap, cands, dev)


def test_the_pipeline_takes_it_as_floor_only_when_it_places_more() -> None:
    """shared-power 50 x 10 seed 2: the cheapest-first greedy placed 0.06% less than
    kube-scheduler would, and its hint was within target_gap of the bound, so CP-SAT
    never ran and the plan stayed below the baseline."""
    config = SolverConfig(num_workers=2)
    mesh = family_mesh("shared-power", 50, 10, 2)
    baseline = float(schedule(mesh).priority_demand())
    plan = placement.plan(mesh, config)
    assert plan.stats.hint_source == "least-allocated"
    assert plan.stats.greedy_placed_priority_demand == baseline
    assert plan.stats.placed_priority_demand >= baseline
    # where the cheapest-first greedy already places as much, it stays the floor
    mesh = family_mesh("shared-power", 50, 10, 3)
    plan = placement.plan(mesh, config)
    assert plan.stats.hint_source == "cheapest"
    assert plan.stats.greedy_placed_priority_demand >= float(schedule(mesh).priority_demand())
