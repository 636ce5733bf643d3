"""Every unplaced workload gets a true, specific, numeric one-line reason, and the
keys of the higher-priority workloads that hold the capacity it needed."""

from __future__ import annotations

import datetime as dt

import placement
from placement import (
    AcceleratorPool,
    AvailabilityWindow,
    CurrentAssignment,
    FactorySite,
    FleetSite,
    Mesh,
    SolverConfig,
    WorkloadDemand,
)
from tests.support.invariants import check_plan

CONFIG = SolverConfig(num_workers=1)


def factory(name, pools, firm=1000.0, flexible=0.0, **kw):
    return FactorySite(name=name, region="us-south", country="US", firm_mw=firm, flexible_mw=flexible,
                       pools=pools, pue=1.0, **kw)


def solve(mesh):
    p = placement.plan(mesh, CONFIG)
    check_plan(mesh, p)
    return p


def test_power_refusal_gives_the_need_and_the_firm_power():
    memphis = factory("us-memphis-1", (AcceleratorPool("gb200", 300_000, 2250.0, 3000.0, 192.0),), firm=400.0,
                      flexible=300.0)
    train = WorkloadDemand(key="research/frontier-pretrain", type="training", accelerators=200_000)
    d = solve(Mesh(factories=(memphis,), workloads=(train,))).workloads[train.key]
    assert d.phase == "Unschedulable"
    assert d.message == "0/1 sites fit: 1 insufficient power (needs 450 MW firm; 400 MW firm at us-memphis-1)"
    assert d.rejections == {"insufficient power": 1} and d.displaced_by == ()


def test_power_refusal_of_interruptible_work_counts_flexible_power():
    site = factory("f", (AcceleratorPool("h100", 1000, 700.0, 2400.0, 80.0),), firm=0.1, flexible=0.3,
                   curtailed_mw=0.1)
    w = WorkloadDemand(key="a/batch", type="batch", accelerators=500, interruptible=True)
    d = solve(Mesh(factories=(site,), workloads=(w,))).workloads[w.key]
    assert d.message == "0/1 sites fit: 1 insufficient power (needs 0.35 MW; 0.3 MW usable at f)"


def test_device_refusal_gives_the_need_and_the_largest_pool():
    sites = (factory("small", (AcceleratorPool("h100", 600, 700.0, 2400.0, 80.0),)),
             factory("tiny", (AcceleratorPool("h100", 8, 700.0, 2400.0, 80.0),)))
    w = WorkloadDemand(key="a/ft", type="fine-tuning", accelerators=1000)
    d = solve(Mesh(factories=sites, workloads=(w,))).workloads[w.key]
    assert d.message == "0/2 sites fit: 2 insufficient devices (needs 1,000 devices; at most 600 at small)"


def test_fleet_cap_refusal_names_the_cap():
    fleet = FleetSite(name="cars", region="us-south", country="US", devices=1000, accelerator_model="orin",
                      tokens_per_second_per_device=200.0, watts_per_device=900.0, memory_gib=32.0,
                      max_fleet_mw=0.0005)
    w = WorkloadDemand(key="a/inf", tokens_per_second=2000.0, allow_fleets=True)
    d = solve(Mesh(fleets=(fleet,), workloads=(w,))).workloads[w.key]
    assert d.message == "0/1 sites fit: 1 insufficient power (needs 0.009 MW; fleet cap 0.0005 MW at cars)"


def test_larger_than_every_feasible_site_says_so_with_numbers():
    sites = tuple(factory(f"f{i}", (AcceleratorPool("h100", 89_000, 700.0, 2400.0, 80.0),)) for i in range(5))
    w = WorkloadDemand(key="a/huge", accelerators=1_000_000, splittable=True, max_sites=8)
    d = solve(Mesh(factories=sites, workloads=(w,))).workloads[w.key]
    assert d.message == "needs 1,000,000 devices; its 5 feasible sites have at most 445,000"
    limited = WorkloadDemand(key="a/huge", accelerators=200_000, splittable=True, max_sites=2)
    d = solve(Mesh(factories=sites, workloads=(limited,))).workloads[w.key]
    assert d.message == "needs 200,000 devices; the best 2 of its 5 feasible sites (maxSites 2) have at most 178,000"


def test_token_demand_larger_than_every_feasible_site():
    site = factory("f", (AcceleratorPool("h100", 1000, 700.0, 2400.0, 80.0),))
    w = WorkloadDemand(key="a/chat", tokens_per_second=3e9, splittable=True, max_sites=4)
    d = solve(Mesh(factories=(site,), workloads=(w,))).workloads[w.key]
    assert d.message == "needs 3,000,000,000 tokens/s; its 1 feasible site has at most 2,400,000 tokens/s"


def test_capacity_held_by_higher_priority_names_them():
    site = factory("seoul-1", (AcceleratorPool("h100", 20, 700.0, 2400.0, 80.0),))
    hi = WorkloadDemand(key="research/frontier-pretrain", type="training", accelerators=16, priority=1000)
    lo = WorkloadDemand(key="serving/chat", accelerators=8, priority=10, current=(CurrentAssignment("seoul-1", 8),))
    p = solve(Mesh(factories=(site,), workloads=(hi, lo)))
    d = p.workloads[lo.key]
    assert d.phase == "Unschedulable"
    assert d.message == ("needs 8 devices; no room left on its 1 feasible site: devices exhausted at seoul-1 "
                         "(4 free, needs 8); 1 higher-priority workload placed there")
    assert d.displaced_by == ("research/frontier-pretrain",)
    assert p.workloads[hi.key].displaced_by == ()


def test_split_workload_reports_the_room_left():
    sites = (factory("a", (AcceleratorPool("h100", 10, 700.0, 2400.0, 80.0),)),
             factory("b", (AcceleratorPool("h100", 10, 700.0, 2400.0, 80.0),), price_per_mwh=50.0))
    hi = WorkloadDemand(key="x/hi", accelerators=10, priority=500)  # on a, the cheaper
    lo = WorkloadDemand(key="x/lo", accelerators=15, splittable=True, max_sites=2, priority=1)
    d = solve(Mesh(factories=sites, workloads=(hi, lo))).workloads[lo.key]
    assert d.phase == "Unschedulable"
    assert d.message == ("needs 15 devices; its 2 feasible sites have room for 10 now: devices exhausted at a "
                         "(0 free, needs 1); 1 higher-priority workload placed there")
    assert d.displaced_by == ("x/hi",)


def test_equal_priority_holders_are_counted_not_named():
    site = factory("s", (AcceleratorPool("h100", 10, 700.0, 2400.0, 80.0),))
    a = WorkloadDemand(key="x/a", accelerators=10)
    b = WorkloadDemand(key="x/b", accelerators=6)
    p = solve(Mesh(factories=(site,), workloads=(a, b)))
    d = p.workloads["x/b"]
    assert d.message.endswith("; 1 workload of equal or lower priority placed there")
    assert d.displaced_by == ()


def test_offline_fleet_and_filters_keep_the_kube_scheduler_shape():
    night = AvailabilityWindow(dt.time(22), dt.time(6), "UTC", 1.0)
    fleet = FleetSite(name="cars", region="r", country="US", devices=100, accelerator_model="orin",
                      tokens_per_second_per_device=200, watts_per_device=900, memory_gib=32, availability=(night,))
    w = WorkloadDemand(key="a/w", tokens_per_second=1000.0, allow_fleets=True)
    noon = Mesh(fleets=(fleet,), workloads=(w,), at=dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC))
    assert solve(noon).workloads["a/w"].message == "0/1 sites fit: 1 offline now (outside availability windows)"


def test_displaced_by_keeps_the_highest_priority_holders():
    site = factory("s", (AcceleratorPool("h100", 12, 700.0, 2400.0, 80.0),))
    holders = tuple(WorkloadDemand(key=f"x/h{i:02d}", accelerators=1, priority=100 + i) for i in range(12))
    lo = WorkloadDemand(key="x/lo", accelerators=1, priority=1)
    d = solve(Mesh(factories=(site,), workloads=(*holders, lo))).workloads["x/lo"]
    assert d.message.endswith("; 12 higher-priority workloads placed there")
    assert d.displaced_by == tuple(f"x/h{i:02d}" for i in range(11, 1, -1))  # 10 of them, highest first


def test_a_site_gives_its_power_at_the_rates_of_the_pools_that_have_devices():
    # 0.1 MW firm: the 10 fast devices (5 tokens/s per watt) take 10 kW, the other
    # 90 kW run 180 slow ones (2 per watt): 230,000 tokens/s, not 0.1 MW x 5
    fast = AcceleratorPool("gb200", 10, 1000.0, 5000.0, 192.0)
    slow = AcceleratorPool("l40s", 1000, 500.0, 1000.0, 48.0)
    site = factory("f", (fast, slow), firm=0.1)
    w = WorkloadDemand(key="a/chat", tokens_per_second=300_000.0, splittable=True, max_sites=2)
    d = solve(Mesh(factories=(site,), workloads=(w,))).workloads[w.key]
    assert d.message == "needs 300,000 tokens/s; its 1 feasible site has at most 230,000 tokens/s"
    # devices: the 10 frugal ones (100 W) and 99 of the 1 kW ones
    frugal = AcceleratorPool("edge", 10, 100.0, 100.0, 80.0)
    big = AcceleratorPool("h100", 1000, 1000.0, 2400.0, 80.0)
    w = WorkloadDemand(key="a/ft", accelerators=500, splittable=True, max_sites=2)
    d = solve(Mesh(factories=(factory("f", (frugal, big), firm=0.1),), workloads=(w,))).workloads[w.key]
    assert d.message == "needs 500 devices; its 1 feasible site has at most 109"


def test_the_status_summary_of_a_waiting_workload_does_not_follow_what_others_hold():
    """Whether room is left beside the others (case 4: the solve did not find it) or
    not (case 3) depends on the others and on the solve; the summary a status is
    built from says the same in both."""
    import numpy as np

    from placement import explain
    from placement.assign import _codes
    from placement.snapshot import build

    site = factory("seoul-1", (AcceleratorPool("h100", 20, 700.0, 2400.0, 80.0),))
    hi = WorkloadDemand(key="research/frontier-pretrain", type="training", accelerators=16, priority=1000)
    lo = WorkloadDemand(key="serving/chat", accelerators=8, priority=10)
    mesh = Mesh(factories=(site,), workloads=(hi, lo))
    held = solve(mesh).workloads[lo.key]
    assert held.message.startswith("needs 8 devices; no room left on its 1 feasible site")
    snap = build(mesh, CONFIG)
    w = snap.keys.index(lo.key)
    empty = explain.Usage(np.zeros(snap.n_cols, dtype=np.int64), np.zeros(snap.n_sites), np.zeros(snap.n_sites),
                          [set() for _ in range(snap.n_sites)])
    [left_room] = explain.reasons(snap, [w], {w: {}}, {w: 1}, _codes(snap, [w]), empty).values()
    assert left_room.message == ("needs 8 devices; its 1 feasible site has room for 8 now, "
                                 "but this solve found no placement that fits it whole")
    assert left_room.summary == held.status_message
    assert held.status_message == ("needs 8 devices; no room left on its 1 feasible site: "
                                   "other placed workloads hold the capacity it needs")
