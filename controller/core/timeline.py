"""The next hours, planned: usable power, allocation and planned moves at every change.

Called by ``meshctl plan --horizon`` and the HTTP API's ``GET /api/v1/timeline`` (the
dashboard's timeline). Pure: it runs the same reconcile the operator runs, at every
instant the mesh changes by itself within the horizon (a grid event's start minus its
lead time, interval edges and end; a fleet's availability window opening or closing:
the operator's own wake-ups), each plan warm from the one before with the statuses
written back, as the operator would. So the moves it shows are the moves the operator
will make at those instants if nothing else changes. On a mesh of more than
``FULL_SOLVE_MAX_PAIRS`` (workload, site) pairs the instants after the first are planned
by the engine's greedy stage only (no CP-SAT, no bound): a forecast, many times faster,
that keeps the planning-ahead rule (no factory allocated beyond the power in force) but
not always the operator's exact moves: its CP-SAT solve at that instant may move other
or more workloads (``make bench``, "Grid events: the timeline", measures both).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from controller.core.changes import with_statuses
from controller.core.grid import change_points, factory_grid, level_at, levels, next_grid_change, phase, span
from controller.core.reconcile import Outcome, Snapshot, reconcile
from controller.core.schedule import next_window_change
from placement.decisions import Plan
from placement.problem import SolverConfig

MAX_INSTANTS = 64  # a day of hourly fleet windows and a few events; more is cut and said
# Up to this many (workload, site) pairs the future instants are planned with the full
# engine (CP-SAT, as the operator will); above it with its greedy stage alone, so a day
# of 20 wake-ups at 1,000 workloads x 50 sites costs ~7 s instead of ~45 s (bench.timeline).
FULL_SOLVE_MAX_PAIRS = 20_000


@dataclass(frozen=True)
class FactoryPoint:
    """One factory at one instant (MW, facility power)."""

    firm_mw: float
    flexible_mw: float
    curtailed_mw: float  # in force at the instant
    planned_curtailed_mw: float  # what the plan is made with (events within their lead)
    usable_mw: float  # firm + flexible - curtailed in force
    allocated_mw: float  # what the plan allocates
    driver: str | None  # the grid event that sets the planned curtailment, if any


@dataclass(frozen=True)
class FleetPoint:
    online_devices: int
    allocated_mw: float


@dataclass(frozen=True)
class PlannedMove:
    """A workload whose placement changes at an instant."""

    at: dt.datetime
    workload: str
    before_sites: tuple[str, ...]
    after_sites: tuple[str, ...]
    phase: str
    because: str  # the grid event (or "fleet window") behind it, when known


@dataclass(frozen=True)
class EventSummary:
    name: str
    factory: str
    phase: str
    start: dt.datetime
    end: dt.datetime
    lead_time: str
    peak_curtailed_mw: float
    limit_mw: float | None
    source: str  # "manual" or "openadr:<vtn>"
    moved_count: int = 0  # workloads moved for it so far (its status)


@dataclass
class Timeline:
    start: dt.datetime
    end: dt.datetime
    instants: list[dt.datetime] = field(default_factory=list)
    factories: dict[str, list[FactoryPoint]] = field(default_factory=dict)  # one point per instant
    fleets: dict[str, list[FleetPoint]] = field(default_factory=dict)
    moves: list[PlannedMove] = field(default_factory=list)
    events: list[EventSummary] = field(default_factory=list)
    truncated: bool = False  # more instants than MAX_INSTANTS within the horizon


def wake_ups(snapshot: Snapshot, horizon: dt.timedelta, limit: int = MAX_INSTANTS) -> tuple[list[dt.datetime], bool]:
    """``snapshot.at`` and every instant within the horizon the operator wakes at."""
    instants = [snapshot.at]
    end = snapshot.at.astimezone(dt.UTC) + horizon  # elapsed time, also when ``at`` is given in a zone
    while True:
        nxt = _next_wake_up(snapshot, instants[-1])
        if nxt is None or nxt > end:
            return instants, False
        if len(instants) == limit:
            return instants, True  # one more within the horizon than fits
        instants.append(nxt)


def _next_wake_up(snapshot: Snapshot, after: dt.datetime) -> dt.datetime | None:
    candidates = [m for m in (next_window_change(snapshot.fleets, after),
                              next_grid_change(snapshot.factories, snapshot.grid_events, after)) if m is not None]
    return min(candidates) if candidates else None


def _event_summaries(snapshot: Snapshot) -> list[EventSummary]:
    factories = {f.metadata.name: f for f in snapshot.factories}
    out = []
    for event in snapshot.grid_events:
        start, end = span(event)
        factory = factories.get(event.spec.factory)
        peak = max((lv.curtailed_mw for lv in levels(event, factory.spec.power)), default=0.0) if factory else 0.0
        limits = [i.import_limit_mw for i in event.spec.intervals if i.import_limit_mw is not None]
        openadr = event.spec.source.openadr if event.spec.source else None
        out.append(EventSummary(
            event.metadata.name, event.spec.factory, phase(event, snapshot.at), start, end, event.spec.lead_time,
            peak, min(limits) if limits else None, f"openadr:{openadr.vtn}" if openadr else "manual",
            event.status.moved_count if event.status is not None else 0,
        ))
    return sorted(out, key=lambda e: (e.start, e.name))


def _sites_of(outcome: Outcome, key: str) -> tuple[str, ...]:
    status = outcome.workloads[key]
    return tuple(dict.fromkeys(a.site for a in status.assignments)) if status.phase == "Placed" else ()


def timeline(
    snapshot: Snapshot, config: SolverConfig | None = None, horizon: dt.timedelta = dt.timedelta(hours=24),
    previous: Plan | None = None, first: Outcome | None = None, full_solve_max_pairs: int = FULL_SOLVE_MAX_PAIRS,
) -> Timeline:
    """Plan ``snapshot`` at each of its wake-ups within ``horizon`` (see the module
    docstring). ``first``: the outcome at ``snapshot.at`` when the caller has it;
    ``full_solve_max_pairs``: above it, the instants ahead are planned greedily (the
    benchmark compares both)."""
    config = config or SolverConfig()
    pairs = len(snapshot.workloads) * (len(snapshot.factories) + len(snapshot.fleets))
    ahead = config if pairs <= full_solve_max_pairs else replace(config, use_cpsat=False, compute_bound=False)
    instants, truncated = wake_ups(snapshot, horizon)
    result = Timeline(start=snapshot.at, end=snapshot.at.astimezone(dt.UTC) + horizon, instants=instants,
                      truncated=truncated,
                      events=_event_summaries(snapshot))
    outcome = first or reconcile(snapshot, config, previous)
    current = snapshot
    for index, at in enumerate(instants):
        if index > 0:
            settled = with_statuses(current, outcome)
            current = Snapshot(settled.factories, settled.fleets, settled.workloads, at, clusters=settled.clusters,
                               observed=settled.observed, grid_events=settled.grid_events)
            before = outcome
            outcome = reconcile(current, ahead, before.plan)
            _record_moves(result, current, before, outcome, at)
        _record_points(result, current, outcome)
    return result


def _record_points(result: Timeline, snapshot: Snapshot, outcome: Outcome) -> None:
    for factory in snapshot.factories:
        name = factory.metadata.name
        power = factory.spec.power
        grid = factory_grid(factory, snapshot.grid_events, snapshot.at)
        usage = outcome.plan.sites.get(name)
        result.factories.setdefault(name, []).append(FactoryPoint(
            firm_mw=power.firm_mw, flexible_mw=power.flexible_mw, curtailed_mw=grid.in_force_mw,
            planned_curtailed_mw=grid.planned_mw, usable_mw=grid.usable_in_force_mw(power),
            allocated_mw=round(usage.power_mw_used, 4) if usage else 0.0, driver=grid.driver,
        ))
    for fleet in snapshot.fleets:
        usage = outcome.plan.sites.get(fleet.metadata.name)
        result.fleets.setdefault(fleet.metadata.name, []).append(FleetPoint(
            online_devices=usage.devices_total if usage else 0,
            allocated_mw=round(usage.power_mw_used, 4) if usage else 0.0,
        ))


def _record_moves(result: Timeline, snapshot: Snapshot, before: Outcome, after: Outcome, at: dt.datetime) -> None:
    factories = {f.metadata.name: f for f in snapshot.factories}
    for workload in snapshot.workloads:
        was, now = _sites_of(before, workload.key), _sites_of(after, workload.key)
        if was == now:
            continue
        drivers = []
        for site in (*was, *now):
            factory = factories.get(site)
            if factory is None:
                continue
            grid = factory_grid(factory, snapshot.grid_events, at)
            if grid.driver is not None:
                drivers.append(grid.driver)
            else:
                # an event that just ended or was lifted: work returns
                ended = [e.metadata.name for e in snapshot.grid_events if e.spec.factory == site
                         and level_at(levels(e, factory.spec.power), at - dt.timedelta(seconds=1)) > 0]
                drivers += ended
        because = ", ".join(dict.fromkeys(drivers)) or _instant_cause(snapshot, at)
        result.moves.append(PlannedMove(at, workload.key, was, now, after.workloads[workload.key].phase, because))


def _instant_cause(snapshot: Snapshot, at: dt.datetime) -> str:
    """What changes at ``at`` when no event drives the move's own sites (a knock-on
    move): the grid events with an edge there, else a fleet window edge, else nothing."""
    before = at - dt.timedelta(seconds=1)
    factories = {f.metadata.name: f for f in snapshot.factories}
    edged = [e.metadata.name for e in snapshot.grid_events if e.spec.factory in factories
             and at in change_points(e, factories[e.spec.factory].spec.power)]
    if edged:
        return ", ".join(edged)
    window = next_window_change(snapshot.fleets, before)
    return "fleet window" if window is not None and window == at else ""


__all__ = ["FULL_SOLVE_MAX_PAIRS", "EventSummary", "FactoryPoint", "FleetPoint", "MAX_INSTANTS", "PlannedMove", "Timeline", "timeline",
           "wake_ups"]
