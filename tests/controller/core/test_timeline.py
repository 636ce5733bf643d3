"""controller.core.timeline: the next hours planned at every wake-up, on a small mesh with
one scheduled grid event (and a fleet whose window opens and closes in the horizon)."""

from __future__ import annotations

import datetime as dt

import pytest

import controller.core.timeline as timeline_module
from controller.api.resources import API_VERSION, EdgeFleet
from controller.core.changes import with_statuses
from controller.core.reconcile import Outcome, Snapshot, reconcile
from controller.core.timeline import EventSummary, PlannedMove, timeline, wake_ups
from placement.decisions import Plan
from placement.problem import SolverConfig
from tests.controller.core.conftest import CONFIG
from tests.controller.core.test_grid import at_utc, factory, grid_event, interval, workload

FLEX = "team/flex"


def fleet(name: str = "robots", start: str = "18:00", end: str = "20:00") -> EdgeFleet:
    return EdgeFleet.model_validate({
        "apiVersion": API_VERSION, "kind": "EdgeFleet", "metadata": {"name": name, "generation": 1},
        "spec": {"region": "r1", "country": "US", "deviceClass": "robot", "devices": 100, "optInRatio": 1.0,
                 "perDevice": {"acceleratorModel": "edge", "tokensPerSecond": 10, "watts": 100, "memoryGiB": 8},
                 "availability": [{"start": start, "end": end, "timezone": "UTC", "onlineRatio": 1.0}],
                 "maxFleetMW": 1, "uplink": {"latencyMs": 20, "bandwidthMbps": 100}},
    })


def snapshot(*, fleets: bool = False, source: dict[str, object] | None = None) -> Snapshot:
    event = grid_event("heat", "f1", [interval("PT2H", at_utc(14), mw=10)], lead="PT15M", source=source)
    return Snapshot([factory("f1", firm=10, flexible=10)], [fleet()] if fleets else [],
                    [workload("firm", 8000, False, priority=1000), workload("flex", 8000, True, priority=10)],
                    at_utc(12), grid_events=[event])


def test_the_instants_are_now_start_minus_lead_start_and_end() -> None:
    found = timeline(snapshot(), CONFIG, dt.timedelta(hours=12))
    assert found.instants == [at_utc(12), at_utc(13, 45), at_utc(14), at_utc(16)]
    assert (found.start, found.end, found.truncated) == (at_utc(12), at_utc(0, day=dt.date(2026, 7, 15)), False)
    points = found.factories["f1"]
    assert [(p.curtailed_mw, p.planned_curtailed_mw, p.usable_mw, p.allocated_mw, p.driver) for p in points] == [
        (0.0, 0.0, 20.0, 16.0, None),
        (0.0, 10.0, 20.0, 8.0, "heat"),  # preparing: the power is still there, the work has left
        (10.0, 10.0, 10.0, 8.0, "heat"),
        (0.0, 0.0, 20.0, 16.0, None),
    ]
    assert found.events == [EventSummary("heat", "f1", "Scheduled", at_utc(14), at_utc(16), "PT15M", 10.0, None,
                                          "manual")]


def test_the_move_is_at_start_minus_lead_and_the_return_at_the_end() -> None:
    found = timeline(snapshot(), CONFIG, dt.timedelta(hours=12))
    assert found.moves == [
        PlannedMove(at_utc(13, 45), FLEX, ("f1",), (), "Preempted", "heat"),
        PlannedMove(at_utc(16), FLEX, (), ("f1",), "Placed", "heat"),
    ]


def test_the_timeline_is_what_the_operator_does_at_each_wake_up() -> None:
    """The same as reconciling at each instant with the statuses written back."""
    found = timeline(snapshot(fleets=True), CONFIG, dt.timedelta(hours=12))
    current = snapshot(fleets=True)
    outcome = reconcile(current, CONFIG)
    allocated, online = [], []
    for index, at in enumerate(found.instants):
        if index > 0:
            settled = with_statuses(current, outcome)
            current = Snapshot(settled.factories, settled.fleets, settled.workloads, at,
                               grid_events=settled.grid_events)
            outcome = reconcile(current, CONFIG, outcome.plan)
        allocated.append(round(outcome.plan.sites["f1"].power_mw_used, 4))
        online.append(outcome.plan.sites["robots"].devices_total)
    assert [p.allocated_mw for p in found.factories["f1"]] == allocated
    assert [p.online_devices for p in found.fleets["robots"]] == online == [0, 0, 0, 0, 100, 0]
    assert found.instants == [at_utc(12), at_utc(13, 45), at_utc(14), at_utc(16), at_utc(18), at_utc(20)]


def test_wake_ups_stop_at_the_horizon_or_are_cut_and_say_so() -> None:
    mesh = snapshot(fleets=True)
    assert wake_ups(mesh, dt.timedelta(hours=1)) == ([at_utc(12)], False)
    assert wake_ups(mesh, dt.timedelta(hours=1, minutes=45)) == ([at_utc(12), at_utc(13, 45)], False)  # inclusive
    assert wake_ups(mesh, dt.timedelta(hours=12), limit=3) == ([at_utc(12), at_utc(13, 45), at_utc(14)], True)
    assert wake_ups(mesh, dt.timedelta(hours=12), limit=7) == (
        [at_utc(12), at_utc(13, 45), at_utc(14), at_utc(16), at_utc(18), at_utc(20)], False)
    # the fleet's window recurs daily: over two days there are more
    instants, truncated = wake_ups(mesh, dt.timedelta(hours=48))
    next_day = dt.date(2026, 7, 15)
    assert not truncated and instants[6:] == [at_utc(18, day=next_day), at_utc(20, day=next_day)]


def test_exactly_limit_instants_are_not_cut() -> None:
    assert wake_ups(snapshot(fleets=True), dt.timedelta(hours=12), limit=6) == (
        [at_utc(12), at_utc(13, 45), at_utc(14), at_utc(16), at_utc(18), at_utc(20)], False)


def test_a_cut_timeline_plans_only_the_instants_it_keeps(monkeypatch: pytest.MonkeyPatch) -> None:
    mesh = snapshot(fleets=True)
    monkeypatch.setattr(timeline_module, "MAX_INSTANTS", 3)
    monkeypatch.setattr(timeline_module, "wake_ups", lambda s, h, limit=3: wake_ups(s, h, limit))
    found = timeline(mesh, CONFIG, dt.timedelta(hours=12))
    assert found.truncated and found.instants == [at_utc(12), at_utc(13, 45), at_utc(14)]
    assert len(found.factories["f1"]) == len(found.fleets["robots"]) == 3


def test_the_same_input_gives_the_same_timeline_twice() -> None:
    source = {"openadr": {"vtn": "vtn-1", "programId": "p1", "eventId": "e1"}}
    first = timeline(snapshot(fleets=True, source=source), CONFIG, dt.timedelta(hours=12))
    second = timeline(snapshot(fleets=True, source=source), CONFIG, dt.timedelta(hours=12))
    assert first == second
    assert first.events[0].source == "openadr:vtn-1"
    # handing it the outcome at the start changes nothing
    mesh = snapshot(fleets=True, source=source)
    assert timeline(mesh, CONFIG, dt.timedelta(hours=12), first=reconcile(mesh, CONFIG)) == first


def test_a_large_mesh_is_forecast_by_the_greedy_stage_with_the_same_moves(monkeypatch: pytest.MonkeyPatch) -> None:
    full = timeline(snapshot(fleets=True), CONFIG, dt.timedelta(hours=12))
    configs: list[SolverConfig] = []
    real = timeline_module.reconcile

    def recording(snapshot: Snapshot, config: SolverConfig | None = None, previous: Plan | None = None) -> Outcome:
        assert config is not None
        configs.append(config)
        return real(snapshot, config, previous)

    monkeypatch.setattr(timeline_module, "reconcile", recording)
    forecast = timeline(snapshot(fleets=True), CONFIG, dt.timedelta(hours=12), full_solve_max_pairs=0)
    assert configs[0] == CONFIG  # now: the operator's own plan
    assert len(configs) == len(forecast.instants) and all(not c.use_cpsat for c in configs[1:])
    assert (forecast.instants, forecast.moves, forecast.factories, forecast.fleets) == (
        full.instants, full.moves, full.factories, full.fleets)
    configs.clear()
    timeline(snapshot(fleets=True), CONFIG, dt.timedelta(hours=12), full_solve_max_pairs=2 * 2)  # 2 x 2: still full
    assert all(c == CONFIG for c in configs)


def test_a_knock_on_move_at_a_grid_instant_is_not_blamed_on_a_fleet_window() -> None:
    f1 = factory("f1", firm=10, flexible=10)
    f2 = factory("f2", firm=10, flexible=0, price=500)
    f2 = f2.model_copy(update={"spec": f2.spec.model_copy(update={
        "accelerator_pools": [f2.spec.accelerator_pools[0].model_copy(update={"model": "gpu2"})]})})
    low = workload("low", 8000, False, priority=1)  # only f2 has its model
    low = low.model_copy(update={"spec": low.spec.model_copy(update={"accelerator_models": ["gpu2"]})})
    event = grid_event("heat", "f1", [interval("PT2H", at_utc(14), mw=10)])
    mesh = Snapshot([f1, f2], [fleet()], [workload("firm", 8000, False, 1000), workload("flex", 8000, True, 100), low],
                    at_utc(12), grid_events=[event])
    found = timeline(mesh, CONFIG, dt.timedelta(hours=12))
    at_grid_instants = [m for m in found.moves if m.at in (at_utc(13, 45), at_utc(16))]
    assert any(m.workload == "team/low" for m in at_grid_instants)  # displaced from f2, which has no event
    assert [m.because for m in at_grid_instants if m.because == "fleet window"] == []
