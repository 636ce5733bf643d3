"""The warm path's stages (placement.warm): the scope a change can affect, warm
preemption, and the floor, on hand-built meshes where the right answer is known, and
a hypothesis property over synthetic ones."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import placement
from placement import AcceleratorPool, FactorySite, Mesh, SolverConfig, WorkloadDemand
from placement.bound import all_pairs
from placement.candidates import build_candidates, placed_value
from placement.greedy import greedy_order, run_greedy
from placement.problem import WorkBudgets
from placement.snapshot import build
from placement.solve import move_back, solve_fewest_moves
from placement_ext import filter_score_topk
from tests.support.invariants import check_plan
from tests.support.meshes import perturb, synthetic_mesh

FAST = SolverConfig(num_workers=1)
H100 = AcceleratorPool("h100", 10, 700.0, 2400.0, 80.0)


def factory(name: str, country: str = "US", price: float = 50.0) -> FactorySite:
    return FactorySite(name=name, region="us-east", country=country, firm_mw=1.0, flexible_mw=0.0, pools=(H100,),
                       pue=1.0, price_per_mwh=price)


def placements(p: placement.Plan) -> dict[str, list[tuple[str, str, int]]]:
    return {k: [(a.site, a.accelerator_model, a.devices) for a in d.assignments] for k, d in p.workloads.items()}


def full_factory_mesh() -> Mesh:
    """Factory "a" (10 devices) full with five low-priority 2-device workloads; "b"
    (10 devices, in another country) full with five more; one workload allowed only
    in "a"'s country waits unplaced with priority 0."""
    a, b = factory("a", "US"), factory("b", "FR")
    low_a = tuple(WorkloadDemand(key=f"n/a{i}", accelerators=2, priority=10 + i, allowed_countries=("US",))
                  for i in range(5))
    low_b = tuple(WorkloadDemand(key=f"n/b{i}", accelerators=2, priority=10, allowed_countries=("FR",))
                  for i in range(5))
    waiting = WorkloadDemand(key="n/vip", accelerators=4, priority=0, allowed_countries=("US",))
    return Mesh(factories=(a, b), workloads=(*low_a, *low_b, waiting))


def test_a_raised_priority_preempts_the_lowest_on_its_site_and_nothing_else_moves() -> None:
    mesh = full_factory_mesh()
    cold = placement.plan(mesh, FAST)
    assert cold.workloads["n/vip"].phase == "Unschedulable"
    raised = replace(mesh, workloads=tuple(replace(w, priority=1000) if w.key == "n/vip" else w
                                            for w in mesh.workloads))
    warm = placement.plan(raised, FAST, previous=cold)
    check_plan(raised, warm)
    assert warm.stats.warm, "warm preemption places it without the cold path"
    assert warm.workloads["n/vip"].phase == "Placed"
    # the two lowest-priority workloads on "a" (priorities 10 and 11) make room: 4 devices
    assert warm.workloads["n/a0"].phase != "Placed" and warm.workloads["n/a1"].phase != "Placed"
    before, after = placements(cold), placements(warm)
    for key in ("n/a2", "n/a3", "n/a4", *(f"n/b{i}" for i in range(5))):
        assert after[key] == before[key], key
    assert warm.stats.preemption_candidates == 2
    # "b" is in another country: its workloads were never in the scope
    assert warm.stats.resolved_workloads == 3
    assert warm.stats.placed_priority_demand >= warm.stats.greedy_placed_priority_demand
    # the same as the cold plan of the changed mesh would place (priority-weighted)
    assert warm.stats.placed_priority_demand >= placement.plan(raised, FAST).stats.placed_priority_demand


def test_a_change_elsewhere_does_not_resolve_an_unplaced_workload_it_cannot_help() -> None:
    mesh = full_factory_mesh()
    cold = placement.plan(mesh, FAST)
    # a workload on "b" (another country than the waiting one's) gets bigger demand
    grown = replace(mesh, workloads=tuple(replace(w, priority=11) if w.key == "n/b0" else w for w in mesh.workloads))
    warm = placement.plan(grown, FAST, previous=cold)
    check_plan(grown, warm)
    assert warm.stats.warm and warm.stats.resolved_workloads == 1
    # its reason is carried, word for word
    assert warm.workloads["n/vip"].message == cold.workloads["n/vip"].message
    assert placements(warm) == placements(cold)


def test_freed_capacity_resolves_the_unplaced_workloads_that_could_use_it() -> None:
    mesh = full_factory_mesh()
    cold = placement.plan(mesh, FAST)
    removed = replace(mesh, workloads=tuple(w for w in mesh.workloads if w.key not in ("n/a3", "n/a4")))
    warm = placement.plan(removed, FAST, previous=cold)
    check_plan(removed, warm)
    assert warm.stats.warm and warm.stats.resolved_workloads == 1  # the waiting one only
    assert warm.workloads["n/vip"].phase == "Placed"



def _cascade() -> tuple[Mesh, Mesh]:
    """The mesh of the cascade test below, before and after its change."""
    a, b, c = factory("a", "KR", price=50.0), factory("b", "US", price=10.0), factory("c", "FR")
    top = WorkloadDemand(key="n/top", accelerators=10, priority=2000, allowed_countries=("US",))
    mid = WorkloadDemand(key="n/mid", accelerators=10, priority=1500, allowed_countries=("KR", "US"))
    kr = WorkloadDemand(key="n/kr", accelerators=10, priority=0, allowed_countries=("KR",))
    bystanders = tuple(WorkloadDemand(key=f"n/fr{i}", accelerators=2, priority=10, allowed_countries=("FR",))
                       for i in range(5))
    before = Mesh(factories=(a, b, c), workloads=(top, mid, kr, *bystanders))
    return before, replace(before, workloads=(mid, replace(kr, priority=1000), *bystanders))


def test_a_cascade_local_preemption_cannot_find_is_repaired_toward_the_floor() -> None:
    """Factory "a" (KR) holds "n/mid" (priority 1500, allowed in KR or US), because the
    cheaper "b" (US) was taken by "n/top" (2000, US only); "n/kr" (KR only) waits. Then
    "n/top" leaves and "n/kr" is raised to 1000: no kept workload on "a" has a lower
    priority, so warm preemption finds no victim, and the freed "b" helps no waiting
    workload. The kube-scheduler-style greedy from scratch moves "n/mid" to "b" and
    places "n/kr" on "a": the warm path must do as well, warm, not by a cold plan.
    Five bystanders on "c" (FR) are placed alike by both plans and stay."""
    before, after = _cascade()
    cold = placement.plan(before, FAST)
    assert [a.site for a in cold.workloads["n/mid"].assignments] == ["a"]
    assert cold.workloads["n/kr"].phase == "Unschedulable"
    warm = placement.plan(after, FAST, previous=cold)
    check_plan(after, warm)
    assert warm.stats.warm and warm.stats.warm_fallback == ""
    assert [a.site for a in warm.workloads["n/mid"].assignments] == ["b"]
    assert [a.site for a in warm.workloads["n/kr"].assignments] == ["a"]
    assert warm.stats.placed_priority_demand >= warm.stats.greedy_placed_priority_demand
    assert warm.stats.preemption_candidates == 0  # found by the repair, not by preemption
    assert warm.stats.floor_repair == placement.FloorRepair.RESOLVE
    assert warm.stats.floor_repair_workloads == 2
    assert warm.stats.resolved_workloads == 2  # "n/kr" and "n/mid": the bystanders stayed
    assert placements(warm)["n/fr0"] == placements(cold)["n/fr0"]


def test_within_warm_floor_gap_the_warm_plan_is_kept_and_says_how_far_below() -> None:
    """The cascade above, with ``warm_floor_gap`` wide enough for the shortfall: the
    warm plan is kept as it is (nothing moves, "n/kr" waits), the repair does not run,
    and the stats say how far below the floor the plan is. The default gap repairs it
    (the test above)."""
    before, after = _cascade()
    cold = placement.plan(before, FAST)
    wide = replace(FAST, budgets=replace(FAST.budgets, warm_floor_gap=0.9))
    warm = placement.plan(after, wide, previous=cold)
    check_plan(after, warm, warm_floor_gap=0.9)
    assert warm.stats.warm and warm.stats.floor_repair_workloads == 0
    assert [a.site for a in warm.workloads["n/mid"].assignments] == ["a"]
    assert warm.workloads["n/kr"].phase == "Unschedulable"
    floor, placed = warm.stats.greedy_placed_priority_demand, warm.stats.placed_priority_demand
    assert floor * 0.1 <= placed < floor
    assert warm.stats.floor_shortfall == (floor - placed) / floor
    repaired = placement.plan(after, FAST, previous=cold)
    assert repaired.stats.floor_shortfall == 0.0 and repaired.stats.floor_repair_workloads == 2


def _warm_without_full_repair(monkeypatch: pytest.MonkeyPatch, after: Mesh, cold: placement.Plan) -> placement.Plan:
    """The warm plan of ``after`` from ``cold``, the full repair toward the floor made
    to fail: a cheaper step must reach the floor. Checked, and warm."""
    def no_full_repair(*_args: object) -> None:
        raise AssertionError("the full repair toward the floor ran")

    monkeypatch.setattr(placement.warm, "repair_scope", no_full_repair)
    warm = placement.plan(after, FAST, previous=cold)
    check_plan(after, warm)
    assert warm.stats.warm and warm.stats.warm_fallback == ""
    return warm


def test_a_victim_the_floor_places_elsewhere_preempts_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """"n/v" (priority 100, US or FR) holds "a" (US); "n/low" (priority 1, FR only)
    holds "b" (FR); "n/top" (US only) waits. "n/top" is raised to 1000 and preempts
    "n/v", the only holder of its one site; "n/v" then finds no room, and the warm
    plan places less than the kube-scheduler-style greedy, which puts "n/top" on "a"
    and "n/v" on "b". So "n/v" preempts in turn (over "n/low", priority 1): the floor
    is reached warm, re-solving only those three, without the full repair toward the
    floor (made to fail here); the bystanders on "c" stay."""
    a, b, c = factory("a", "US", price=10.0), factory("b", "FR"), factory("c", "DE")
    top = WorkloadDemand(key="n/top", accelerators=10, priority=0, allowed_countries=("US",))
    v = WorkloadDemand(key="n/v", accelerators=10, priority=100, allowed_countries=("US", "FR"))
    low = WorkloadDemand(key="n/low", accelerators=10, priority=1, allowed_countries=("FR",))
    bystanders = tuple(WorkloadDemand(key=f"n/de{i}", accelerators=2, priority=10, allowed_countries=("DE",))
                       for i in range(5))
    before = Mesh(factories=(a, b, c), workloads=(top, v, low, *bystanders))
    cold = placement.plan(before, FAST)
    assert placements(cold)["n/v"] == [("a", "h100", 10)] and placements(cold)["n/low"] == [("b", "h100", 10)]
    after = replace(before, workloads=(replace(top, priority=1000), v, low, *bystanders))
    warm = _warm_without_full_repair(monkeypatch, after, cold)
    assert placements(warm)["n/top"] == [("a", "h100", 10)]
    assert placements(warm)["n/v"] == [("b", "h100", 10)]
    assert warm.workloads["n/low"].phase in ("Preempted", "Unschedulable")
    assert warm.stats.placed_priority_demand >= warm.stats.greedy_placed_priority_demand
    assert warm.stats.floor_repair == placement.FloorRepair.PREEMPTION
    assert warm.stats.floor_repair_workloads == 3 and warm.stats.resolved_workloads == 3
    assert all(placements(warm)[f"n/de{i}"] == placements(cold)[f"n/de{i}"] for i in range(5))


def test_a_burst_below_the_floor_is_lifted_in_place_without_moving_the_bystanders(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """"n/old" (4 devices, US) holds the cheap US factory "a"; the other US factory
    "b" has only 4 devices. "n/big" (10 devices, US, same priority, earlier in the
    queue) arrives: it fits nowhere beside "n/old", and preemption needs a strictly
    lower priority, so the warm plan places less than the kube-scheduler-style greedy
    from scratch, which puts "n/big" on "a" and "n/old" on "b". The floor's greedy
    with every workload first where it is (the in-place step) does the same and
    leaves the five bystanders on "d" (DE), where the greedy from scratch (and the
    cold plan) would move them to "c" (NL), cheaper, which "n/hog" (NL only) held until
    it left: two workloads re-solved, not seven, and the full repair never runs."""
    a, c = factory("a", "US", price=10.0), factory("c", "NL", price=10.0)
    b = replace(factory("b", "US"), pools=(replace(H100, count=4),))
    d = factory("d", "DE")
    old = WorkloadDemand(key="n/old", accelerators=4, priority=5, allowed_countries=("US",))
    hog = WorkloadDemand(key="n/hog", accelerators=10, priority=100, allowed_countries=("NL",))
    bystanders = tuple(WorkloadDemand(key=f"n/de{i}", accelerators=2, priority=10, allowed_countries=("DE", "NL"))
                       for i in range(5))
    before = Mesh(factories=(a, b, c, d), workloads=(old, hog, *bystanders))
    cold = placement.plan(before, FAST)
    assert placements(cold)["n/old"] == [("a", "h100", 4)]
    assert all(placements(cold)[f"n/de{i}"] == [("d", "h100", 2)] for i in range(5))
    big = WorkloadDemand(key="n/big", accelerators=10, priority=5, allowed_countries=("US",))
    after = replace(before, workloads=(big, old, *bystanders))
    warm = _warm_without_full_repair(monkeypatch, after, cold)
    assert warm.stats.floor_repair == placement.FloorRepair.IN_PLACE
    assert warm.stats.floor_repair_workloads == 2 and warm.stats.resolved_workloads == 2
    assert placements(warm)["n/big"] == [("a", "h100", 10)] and placements(warm)["n/old"] == [("b", "h100", 4)]
    assert all(placements(warm)[f"n/de{i}"] == [("d", "h100", 2)] for i in range(5))
    assert warm.stats.placed_priority_demand >= warm.stats.greedy_placed_priority_demand
    fresh = placement.plan(after, FAST)  # what the cold path would have done: the bystanders move
    assert all(placements(fresh)[f"n/de{i}"] == [("c", "h100", 2)] for i in range(5))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), workloads=st.integers(5, 60), sites=st.integers(1, 8),
       load=st.floats(0.8, 3.0), fraction=st.floats(0.02, 0.3))
def test_only_changed_workloads_and_their_victims_move(seed, workloads, sites, load, fraction) -> None:
    """Every rule holds; a warm plan is never more than ``warm_floor_gap`` below the
    kube-scheduler-order greedy, and says how far below it is; unless the plan was repaired toward that floor (a cascade: any workload the floor
    places differently may move), an unchanged workload placed before either keeps its
    assignment or was displaced for a changed workload of strictly higher priority
    (warm preemption)."""
    mesh = synthetic_mesh(workloads, sites, seed=seed, load=load)
    cfg = SolverConfig(num_workers=1, budgets=WorkBudgets(phase_a_dtime=0.1, phase_b_dtime=0.1))
    cold = placement.plan(mesh, cfg)
    changed = perturb(mesh, fraction=fraction, seed=seed + 1)
    warm = placement.plan(changed, cfg, previous=cold)
    check_plan(changed, warm)
    floor = warm.stats.greedy_placed_priority_demand
    assert warm.stats.placed_priority_demand >= floor * (1 - cfg.budgets.warm_floor_gap)
    assert warm.stats.floor_shortfall == max(0.0, floor - warm.stats.placed_priority_demand) / max(1.0, floor)
    if not warm.stats.warm:
        return
    before, after = placements(cold), placements(warm)
    old = {w.key: w for w in mesh.workloads}
    top_changed = max((w.priority for w in changed.workloads if old.get(w.key) != w), default=None)
    for w in changed.workloads:
        if old.get(w.key) == w and before[w.key] and after[w.key] != before[w.key]:
            assert warm.stats.floor_repair_workloads or (top_changed is not None and w.priority < top_changed), w.key
    again = placement.plan(changed, cfg, previous=cold)
    assert placements(again) == after
    # the kept decisions are reused as they were: the site figures still add up
    for name, usage in warm.sites.items():
        held = sum(a.devices for d in warm.workloads.values() for a in d.assignments if a.site == name)
        assert held == usage.devices_used, name
        assert usage.workload_count == sum(1 for d in warm.workloads.values()
                                           if any(a.site == name for a in d.assignments))


def test_the_repair_reaches_the_floor_moving_the_fewest_workloads() -> None:
    """``solve_fewest_moves``, the repair's solve: the floor's plan moves all four
    small workloads to make room for "n/big"; the warm plan has them on "a" and "b"
    and "n/big" unplaced, while "c" is empty. The repair must place as much as the
    floor (everything) and move none of the four: "n/big" goes to "c"."""
    sites = tuple(factory(name) for name in ("a", "b", "c"))
    small = tuple(WorkloadDemand(key=f"n/w{i}", accelerators=5, priority=10) for i in range(4))
    big = WorkloadDemand(key="n/big", accelerators=10, priority=100)
    snap = build(Mesh(factories=sites, workloads=(*small, big)), FAST)
    kout = filter_score_topk(snap.cols, snap.wls, snap.n_cols, 1)
    cands = build_candidates(snap, kout, run_greedy(snap, greedy_order(snap)).cols)
    assert cands.n == all_pairs(snap, 1).n  # every pair: the whole problem

    def plan_of(where: dict[str, str]) -> np.ndarray:
        devices = np.zeros(cands.n, dtype=np.int64)
        for key, site in where.items():
            w = snap.keys.index(key)
            for i in cands.rows(w):
                if snap.site_names[int(snap.cols.site[cands.col[i]])] == site:
                    devices[i] = int(cands.need[i])
        return devices

    warm = plan_of({"n/w0": "a", "n/w1": "a", "n/w2": "b", "n/w3": "b"})
    floor = plan_of({"n/big": "a", "n/w0": "b", "n/w1": "b", "n/w2": "c", "n/w3": "c"})
    out = solve_fewest_moves(snap, cands, floor, warm, FAST, deadline=float("inf"), dtime_scale=1.0)
    assert placed_value(snap, cands, out.devices) >= placed_value(snap, cands, floor)
    assert not out.fallback_used, out
    assert (out.devices[warm > 0] == warm[warm > 0]).all()  # none of the four moved
    assert (out.devices == plan_of({"n/big": "c", "n/w0": "a", "n/w1": "a", "n/w2": "b", "n/w3": "b"})).all()
    # without CP-SAT (a big repair) the plan is move_back's: every workload that fits
    # where the warm plan has it goes back; here each blocks another's way back
    # ("n/big" holds "a", "n/w0" and "n/w1" hold "b"), so none can
    alone = solve_fewest_moves(snap, cands, floor, warm, FAST, float("inf"), 1.0, use_cpsat=False)
    assert (alone.devices == floor).all()
    # from a plan with "n/big" on "c" and "n/w0", "n/w1" on "b": those two go back to the
    # empty "a", then "n/w2" and "n/w3" (unplaced there) to the "b" they left
    floor_c = plan_of({"n/big": "c", "n/w0": "b", "n/w1": "b"})
    back = move_back(snap, cands, floor_c, warm)
    assert placed_value(snap, cands, back) > placed_value(snap, cands, floor_c)
    assert (back == plan_of({"n/big": "c", "n/w0": "a", "n/w1": "a", "n/w2": "b", "n/w3": "b"})).all()
