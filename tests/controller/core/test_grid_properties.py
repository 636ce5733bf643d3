"""Properties of grid events, on random events and random meshes (hypothesis).

(a) the planned curtailment at t covers what is in force at t and at every instant of
    the lead time after it; (b) the curtailment in force stays between the manual value
    and the flexible power; (c) between two consecutive ``next_grid_change`` instants
    nothing changes; (d) against the real engine, simulating the operator (reconcile at
    t0, then warm at every wake-up with the statuses written back): the plan never
    allocates more than the power in force until the next wake-up, never more than an
    import limit unless the limit is below firm power, and interruptible work never uses
    flexible power the planned curtailment withdraws."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.api.resources import AIFactory, GridEvent
from controller.core.changes import with_statuses
from controller.core.grid import factory_grid, lead_time, level_at, levels, next_grid_change, span
from controller.core.parse import parse_objects
from controller.core.reconcile import Outcome, Snapshot, reconcile
from controller.core.schedule import next_window_change
from controller.core.timeline import wake_ups
from placement.problem import SolverConfig
from tests.controller.core.conftest import CONFIG
from tests.controller.core.test_grid import at_utc, factory, grid_event, interval
from tests.support.meshes import synthetic_mesh, to_manifests

T0 = at_utc(12)
LEADS = ["PT0S", "PT5M", "PT15M", "PT1H", "PT90M"]
ENGINE_LEADS = LEADS[1:]  # with a lead of zero there is nothing to prepare
_MW = 1e-6  # statuses and plans round MW; the engine's own tolerance is far below this
# CP-SAT with a smaller work budget: the power constraints are hard at any budget
ENGINE_CONFIG = replace(CONFIG, budgets=replace(CONFIG.budgets, phase_a_dtime=0.1, phase_b_dtime=0.1))

# ----------------------------------------------------------------------- strategies


@st.composite
def levels_of(draw: st.DrawFn, firm: float, flexible: float) -> dict[str, float]:
    kind = draw(st.sampled_from(["limit", "mw", "ratio"]))
    if kind == "limit":
        # below firm, between firm and firm + flexible, and above
        return {"limit": draw(st.floats(0, firm + flexible + 10, allow_nan=False).map(lambda x: round(x, 3)))}
    if kind == "mw":
        return {"mw": draw(st.floats(0, flexible * 1.5 + 1, allow_nan=False).map(lambda x: round(x, 3)))}
    return {"ratio": draw(st.floats(0, 1).map(lambda x: round(x, 3)))}


@st.composite
def grid_events_for(draw: st.DrawFn, factories: list[tuple[str, float, float]], t0: dt.datetime,
                    max_events: int = 4, leads: list[str] = LEADS) -> list[GridEvent]:
    """Random events of the given factories (name, firm, flexible), sometimes of a missing
    one: starts within a few hours of t0, one to three intervals (chained, or with their
    own start: gaps and overlaps), a lead, sometimes a ramp, sometimes cancelled."""
    events = []
    for index in range(draw(st.integers(1, max_events))):
        name, firm, flexible = draw(st.sampled_from([*factories, ("missing-factory", 10.0, 10.0)]))
        start = t0 + dt.timedelta(minutes=draw(st.integers(-60, 300)))
        intervals = []
        for position in range(draw(st.integers(1, 3))):
            minutes = draw(st.integers(1, 150))
            own_start = None
            if position == 0:
                own_start = start
            elif draw(st.booleans()):
                own_start = start + dt.timedelta(minutes=draw(st.integers(-30, 240)))
            intervals.append(interval(f"PT{minutes}M", own_start, **draw(levels_of(firm, flexible))))
        restore = (f"PT{draw(st.integers(1, 90))}M", draw(st.integers(1, 5))) if draw(st.booleans()) else None
        events.append(grid_event(
            f"event-{index}", name, intervals, lead=draw(st.sampled_from(leads)), restore=restore,
            cancelled=draw(st.integers(0, 7)) == 0,
        ))
    return events


@st.composite
def one_factory_and_events(draw: st.DrawFn) -> tuple[AIFactory, list[GridEvent]]:
    firm = draw(st.sampled_from([0.0, 5.0, 40.0, 100.0]))
    flexible = draw(st.sampled_from([0.0, 10.0, 50.0]))
    if firm + flexible == 0:
        firm = 10.0
    manual = draw(st.sampled_from([0.0, flexible / 3, flexible]))
    f1 = factory("f1", firm=firm, flexible=flexible, curtailed=manual)
    return f1, draw(grid_events_for([("f1", firm, flexible)], T0))


def _instants(f1: AIFactory, events: list[GridEvent]) -> list[dt.datetime]:
    """Every edge of every level (and the lead before it), a microsecond either side, and
    a few instants in between: where a mistake would show."""
    power = f1.spec.power
    edges = {T0 - dt.timedelta(hours=3), T0 + dt.timedelta(hours=12)}
    for event in events:
        lead = lead_time(event)
        for lv in levels(event, power):
            edges.update((lv.start, lv.end, lv.start - lead, lv.end - lead))
    out = set()
    for edge in edges:
        out.update((edge - dt.timedelta(microseconds=1), edge, edge + dt.timedelta(microseconds=1),
                    edge + dt.timedelta(minutes=7)))
    return sorted(out)


def _in_force(f1: AIFactory, events: list[GridEvent], at: dt.datetime) -> float:
    return factory_grid(f1, events, at).in_force_mw


# ---------------------------------------------------------------- the arithmetic alone


@settings(max_examples=150, deadline=None)
@given(one_factory_and_events())
def test_planned_covers_what_is_in_force_now_and_within_the_lead(case: tuple[AIFactory, list[GridEvent]]) -> None:
    f1, events = case
    power = f1.spec.power
    event_levels = {e.metadata.name: levels(e, power) for e in events if e.spec.factory == "f1"}
    leads = {e.metadata.name: lead_time(e) for e in events}
    instants = _instants(f1, events)
    for t in instants:
        grid = factory_grid(f1, events, t)
        assert grid.planned_mw >= grid.in_force_mw
        for name, found in event_levels.items():
            horizon = t + leads[name]
            # every instant of [t, t + lead] where the event's level may change, and both ends
            inside = [s for s in instants if t <= s <= horizon] + [t, horizon] + [
                lv.start for lv in found if t <= lv.start <= horizon]
            for s in inside:
                assert grid.planned_mw >= level_at(found, s), (name, t, s)
                if leads[name] == min(leads[n] for n in event_levels):
                    assert grid.planned_mw >= _in_force(f1, events, s), (t, s)


@settings(max_examples=150, deadline=None)
@given(one_factory_and_events())
def test_in_force_stays_between_the_manual_value_and_the_flexible_power(
    case: tuple[AIFactory, list[GridEvent]]
) -> None:
    f1, events = case
    power = f1.spec.power
    for t in _instants(f1, events):
        grid = factory_grid(f1, events, t)
        assert power.curtailed_mw <= grid.in_force_mw <= power.flexible_mw
        assert power.curtailed_mw <= grid.planned_mw <= power.flexible_mw
        assert grid.usable_in_force_mw(power) >= power.firm_mw
        # the in-force value is the largest event level at t, or the manual value
        levels_now = [level_at(levels(e, power), t) for e in events if e.spec.factory == "f1"]
        assert grid.in_force_mw == max([power.curtailed_mw, *levels_now])
        if grid.in_force_by is not None:
            assert grid.in_force_mw > power.curtailed_mw


@settings(max_examples=150, deadline=None)
@given(one_factory_and_events(), st.lists(st.floats(0.0, 1.0), min_size=2, max_size=4))
def test_nothing_changes_between_two_consecutive_wake_ups(
    case: tuple[AIFactory, list[GridEvent]], fractions: list[float]
) -> None:
    f1, events = case
    start = T0 - dt.timedelta(hours=3)
    changes = [start]
    while (nxt := next_grid_change([f1], events, changes[-1])) is not None:
        assert nxt > changes[-1]
        changes.append(nxt)
        assert len(changes) < 500
    changes.append(changes[-1] + dt.timedelta(days=2))  # after the last change: forever the same
    for begin, end in zip(changes, changes[1:], strict=False):
        at_begin = factory_grid(f1, events, begin)
        samples = [begin + (end - begin) * f for f in fractions] + [end - dt.timedelta(microseconds=1)]
        for s in samples:
            if not begin <= s < end:
                continue
            at_s = factory_grid(f1, events, s)
            assert (at_s.in_force_mw, at_s.planned_mw) == (at_begin.in_force_mw, at_begin.planned_mw), (begin, s, end)
    # and every event of f1 ends by the last change (its ramp included)
    for event in events:
        if event.spec.factory == "f1" and not event.spec.cancelled:
            assert span(event)[1] <= changes[-2]


# ------------------------------------------------------------ against the real engine


@st.composite
def meshes_with_events(draw: st.DrawFn) -> Snapshot:
    """A small synthetic mesh (tests/support/meshes: a few factories with firm and
    flexible power and pools, fleets with availability windows, interruptible and
    non-interruptible work, contended) and random grid events on its factories.

    The mesh is tilted towards the case that matters: more flexible power and more
    interruptible work, so that interruptible work runs on flexible power when an event
    comes (otherwise an event rarely has anything to move)."""
    at = dt.datetime(2025, 6, 1, draw(st.integers(0, 23)), 30, tzinfo=dt.UTC)
    mesh = synthetic_mesh(draw(st.integers(6, 16)), draw(st.integers(3, 5)), seed=draw(st.integers(0, 10_000)),
                          at=at, load=draw(st.sampled_from([1.0, 1.5, 2.5])), factory_share=0.5)
    objects: list[dict[str, Any]] = to_manifests(mesh)
    for obj in objects:
        obj["metadata"]["generation"] = 1
        if obj["kind"] == "AIFactory":
            # firm power for part of what the devices draw, flexible power for part or all of the rest
            power = obj["spec"]["power"]
            devices_mw = sum(p["count"] * p["wattsPerDevice"] for p in obj["spec"]["acceleratorPools"]) \
                * power["pue"] / 1e6
            power["firmMW"] = round(devices_mw * draw(st.sampled_from([0.2, 0.5, 0.8])), 3)
            power["flexibleMW"] = round(devices_mw * draw(st.sampled_from([0.3, 0.6, 1.0])), 3)
            power["curtailedMW"] = min(power["curtailedMW"], power["flexibleMW"])
        elif obj["kind"] == "MeshWorkload" and not obj["spec"]["interruptible"]:
            obj["spec"]["interruptible"] = draw(st.integers(0, 2)) > 0
    manifests = parse_objects(objects, "synthetic")
    assert manifests.problems == []
    powers = [(f.metadata.name, f.spec.power.firm_mw, f.spec.power.flexible_mw) for f in manifests.factories]
    events = draw(grid_events_for(powers, at, max_events=5, leads=ENGINE_LEADS))
    return Snapshot(manifests.factories, manifests.fleets, manifests.workloads, at, grid_events=events)


def _next_wake_up(snapshot: Snapshot, after: dt.datetime) -> dt.datetime | None:
    found = [m for m in (next_window_change(snapshot.fleets, after),
                         next_grid_change(snapshot.factories, snapshot.grid_events, after)) if m is not None]
    return min(found) if found else None


def _in_force_until(f: AIFactory, events: Sequence[GridEvent], t: dt.datetime,
                    until: dt.datetime | None) -> tuple[float, float | None]:
    """(the largest curtailment in force, the lowest import limit in force) over [t, until):
    both change only where a level starts or ends, so those instants are enough."""
    power = f.spec.power
    instants = {t}
    for event in events:
        if event.spec.factory != f.metadata.name:
            continue
        for lv in levels(event, power):
            if lv.start > t and (until is None or lv.start < until):
                instants.add(lv.start)
    grids = [factory_grid(f, events, s) for s in instants]
    limits = [g.limit_mw for g in grids if g.limit_mw is not None]
    return max(g.in_force_mw for g in grids), (min(limits) if limits else None)


def _check_plan(snapshot: Snapshot, outcome: Outcome, until: dt.datetime | None) -> None:
    interruptible = {w.key: w.spec.interruptible for w in snapshot.workloads}
    for f in snapshot.factories:
        name = f.metadata.name
        power = f.spec.power
        usage = outcome.plan.sites[name]
        allocated = usage.power_mw_used
        in_force, limit = _in_force_until(f, snapshot.grid_events, snapshot.at, until)
        usable = power.firm_mw + max(0.0, power.flexible_mw - in_force)
        where = f"{name} at {snapshot.at.isoformat()} (until {until}): allocated {allocated:.6f} MW"
        assert allocated <= usable + _MW, f"{where}, usable in force {usable:.6f} MW"
        if limit is not None and allocated > limit + _MW:
            # only a limit below firm power may be exceeded, and only by what firm power holds
            assert limit < power.firm_mw and allocated <= power.firm_mw + _MW, f"{where}, import limit {limit} MW"
        loads = {True: 0.0, False: 0.0}
        for decision in outcome.plan.workloads.values():
            for a in decision.assignments:
                if a.site == name:
                    loads[interruptible[decision.key]] += a.power_mw
        planned = factory_grid(f, snapshot.grid_events, snapshot.at).planned_mw
        assert loads[False] <= power.firm_mw + _MW, f"{where}: non-interruptible {loads[False]} MW beyond firm"
        # flexible power is what firm power (left over by non-interruptible work) does not cover
        flexible_used = max(0.0, loads[True] + loads[False] - power.firm_mw)
        assert flexible_used <= max(0.0, power.flexible_mw - planned) + _MW, (
            f"{where}: interruptible work on {flexible_used:.6f} MW of flexible power, "
            f"{power.flexible_mw - planned:.6f} MW left by the planned curtailment of {planned} MW")
        assert abs(loads[True] + loads[False] - allocated) <= 1e-3


def _simulate_and_check(snapshot: Snapshot, config: SolverConfig) -> None:
    instants, _ = wake_ups(snapshot, dt.timedelta(hours=6), limit=16)
    current = snapshot
    outcome = reconcile(current, config)
    for index, at in enumerate(instants):
        if index > 0:
            settled = with_statuses(current, outcome)
            current = Snapshot(settled.factories, settled.fleets, settled.workloads, at,
                               grid_events=settled.grid_events)
            outcome = reconcile(current, config, outcome.plan)
        until = instants[index + 1] if index + 1 < len(instants) else _next_wake_up(snapshot, at)
        _check_plan(current, outcome, until)


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(meshes_with_events())
def test_the_operator_never_plans_more_than_the_power_in_force_until_it_wakes_again(snapshot: Snapshot) -> None:
    _simulate_and_check(snapshot, ENGINE_CONFIG)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(meshes_with_events())
def test_the_greedy_forecast_of_a_large_mesh_keeps_the_same_promise(snapshot: Snapshot) -> None:
    """The timeline plans future instants of a large mesh with the greedy stage alone
    (controller.core.timeline.FULL_SOLVE_MAX_PAIRS): the same invariant holds there."""
    _simulate_and_check(snapshot, replace(ENGINE_CONFIG, use_cpsat=False, compute_bound=False))
