"""Grid events in time: the curtailment each factory has in force, and plans for, at any instant.

Pure and shared: :mod:`controller.core.convert` asks what curtailment to plan a factory
with, :mod:`controller.core.statuses` what a GridEvent's phase and schedule are, the
operator's solve loop when to wake next (:func:`next_grid_change`), and the timeline
(:mod:`controller.core.timeline`) all of it over the next hours.

The rules (docs/grid-events.md):
- An event is a list of levels ``[start, end)``, each a curtailment of the factory's
  flexible power in MW: an import limit L becomes ``clamp(firm + flexible - L, 0,
  flexible)`` (a limit below firm is reported as a shortfall, never taken from firm
  work); a ``restore`` ramp adds levels after the end, lifting the last level in equal
  steps, the last step at ``end + duration``.
- In force at t: the largest of ``spec.power.curtailedMW`` (the manual "now") and every
  event's level at t. Overlapping events: the most restrictive wins at every instant.
- Planned at t: the same, but each event counts with the largest level it reaches
  within ``[t, t + leadTime]``, so interruptible work leaves ``leadTime`` before the
  power goes and nothing new lands on headroom about to vanish; it returns at the end.
- Wake-ups: every ``start - leadTime``, ``start`` and ``end`` of every level: the
  planned curtailment changes only there, so the load planned at one wake-up never
  exceeds the power in force until the next.
Times are absolute instants; durations are elapsed time (``P1D`` is 24 h, also across
a daylight-saving change).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from controller.api.models import FactoryPower, GridEventPhase
from controller.api.models.grid import parse_duration
from controller.api.resources import AIFactory, GridEvent

_EPSILON_MW = 1e-9


@dataclass(frozen=True)
class Level:
    """One stretch of an event: ``[start, end)`` at one curtailment."""

    start: dt.datetime
    end: dt.datetime
    curtailed_mw: float
    limit_mw: float | None = None  # the import limit asked for, if the interval gave one
    firm_shortfall_mw: float = 0.0  # how far the limit is below firm power
    ramp: bool = False  # a step of the restore ramp, after the event's end


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def lead_time(event: GridEvent) -> dt.timedelta:
    return parse_duration(event.spec.lead_time)


def interval_bounds(event: GridEvent) -> list[tuple[dt.datetime, dt.datetime]]:
    """``[start, end)`` of each interval, a later one without a start following the previous."""
    bounds: list[tuple[dt.datetime, dt.datetime]] = []
    cursor: dt.datetime | None = None
    for interval in event.spec.intervals:
        start = _time(interval.start) if interval.start is not None else cursor
        if start is None:  # the models refuse it; a stored object may still have it
            raise ValueError("the first interval needs a start")
        end = start + parse_duration(interval.duration)
        bounds.append((start, end))
        cursor = end
    return bounds


def span(event: GridEvent) -> tuple[dt.datetime, dt.datetime]:
    """(start of the first interval, end of the latest one), ramp excluded."""
    bounds = interval_bounds(event)
    return min(s for s, _ in bounds), max(e for _, e in bounds)


def restore_duration(event: GridEvent) -> dt.timedelta:
    return parse_duration(event.spec.restore.duration) if event.spec.restore is not None else dt.timedelta(0)


def curtailment_of(power: FactoryPower, *, limit_mw: float | None = None, curtailed_mw: float | None = None,
                   ratio: float | None = None) -> tuple[float, float]:
    """(curtailment in MW, firm shortfall in MW) of one interval's level at a factory."""
    flexible = power.flexible_mw
    if limit_mw is not None:
        curtailed = min(max(power.firm_mw + flexible - limit_mw, 0.0), flexible)
        return curtailed, max(0.0, power.firm_mw - limit_mw)
    if curtailed_mw is not None:
        return min(curtailed_mw, flexible), 0.0
    return (ratio or 0.0) * flexible, 0.0


def levels(event: GridEvent, power: FactoryPower) -> list[Level]:
    """The event's levels at a factory of this power, ramp included; none when cancelled."""
    if event.spec.cancelled:
        return []
    out: list[Level] = []
    for interval, (start, end) in zip(event.spec.intervals, interval_bounds(event), strict=True):
        if end <= start:
            continue
        curtailed, shortfall = curtailment_of(
            power, limit_mw=interval.import_limit_mw, curtailed_mw=interval.curtailed_mw,
            ratio=interval.curtailed_flexible_ratio,
        )
        out.append(Level(start, end, curtailed, interval.import_limit_mw, shortfall))
    ramp = event.spec.restore
    if ramp is not None and out:
        last = max(out, key=lambda level: (level.end, level.start))
        duration = parse_duration(ramp.duration)
        steps = ramp.steps
        for k in range(1, steps + 1):
            step_start = last.end + duration * (k - 1) / steps
            step_end = last.end + duration * k / steps
            if step_end > step_start:
                out.append(Level(step_start, step_end, last.curtailed_mw * (steps - k + 1) / steps, ramp=True))
    return out


def level_at(event_levels: Sequence[Level], at: dt.datetime) -> float:
    """The event's curtailment in force at ``at`` (the largest, where levels overlap)."""
    return max((lv.curtailed_mw for lv in event_levels if lv.start <= at < lv.end), default=0.0)


def level_within(event_levels: Sequence[Level], at: dt.datetime, lead: dt.timedelta) -> float:
    """The largest curtailment the event reaches within ``[at, at + lead]``."""
    horizon = at.astimezone(dt.UTC) + lead  # elapsed time: in a zone, + would be wall-clock time
    return max((lv.curtailed_mw for lv in event_levels if lv.start <= horizon and lv.end > at), default=0.0)


def phase(event: GridEvent, at: dt.datetime) -> GridEventPhase:
    """Where the event is at ``at`` (see ``GridEventStatus.phase``)."""
    if event.spec.cancelled:
        return "Cancelled"
    start, end = span(event)
    if at < start - lead_time(event):
        return "Scheduled"
    if at < start:
        return "Preparing"
    if at < end:
        return "Active"
    if at < end + restore_duration(event):
        return "Restoring"
    return "Completed"


@dataclass(frozen=True)
class FactoryGrid:
    """What the grid allows one factory at one instant."""

    factory: str
    manual_mw: float  # spec.power.curtailedMW
    in_force_mw: float  # curtailment in force now
    planned_mw: float  # curtailment the plan is made with (events within their lead)
    driver: str | None = None  # the event that sets planned_mw above the manual value
    in_force_by: str | None = None  # the event that sets in_force_mw above the manual value
    limit_mw: float | None = None  # the lowest import limit in force now
    firm_shortfall_mw: float = 0.0  # how far that limit is below firm power

    def usable_in_force_mw(self, power: FactoryPower) -> float:
        return power.firm_mw + max(0.0, power.flexible_mw - self.in_force_mw)


def events_of(events: Iterable[GridEvent], factory: str) -> list[GridEvent]:
    return [e for e in events if e.spec.factory == factory]


def factory_grid(factory: AIFactory, events: Iterable[GridEvent], at: dt.datetime) -> FactoryGrid:
    """The factory's curtailment in force and planned at ``at`` (``events``: any, of any factory)."""
    power = factory.spec.power
    name = factory.metadata.name
    manual = power.curtailed_mw
    in_force, planned, driver, in_force_by = manual, manual, None, None
    limit: float | None = None
    shortfall = 0.0
    for event in sorted(events_of(events, name), key=lambda e: e.metadata.name):
        event_levels = levels(event, power)
        now = level_at(event_levels, at)
        if now > in_force + _EPSILON_MW:
            in_force, in_force_by = now, event.metadata.name
        ahead = level_within(event_levels, at, lead_time(event))
        if ahead > planned + _EPSILON_MW:
            planned, driver = ahead, event.metadata.name
        for lv in event_levels:
            if lv.start <= at < lv.end and lv.limit_mw is not None and (limit is None or lv.limit_mw < limit):
                limit, shortfall = lv.limit_mw, lv.firm_shortfall_mw
    return FactoryGrid(name, manual, in_force, planned, driver, in_force_by, limit, shortfall)


def grid_by_factory(
    factories: Iterable[AIFactory], events: Sequence[GridEvent], at: dt.datetime
) -> dict[str, FactoryGrid]:
    return {f.metadata.name: factory_grid(f, events, at) for f in factories}


def change_points(event: GridEvent, power: FactoryPower) -> list[dt.datetime]:
    """The instants at which the event changes what is planned or in force."""
    lead = lead_time(event)
    points: set[dt.datetime] = set()
    for lv in levels(event, power):
        points.update((lv.start - lead, lv.start, lv.end))
    if not event.spec.cancelled:  # phases change there even when a level is zero
        start, end = span(event)
        points.update((start - lead, start, end, end + restore_duration(event)))
    return sorted(points)


def next_grid_change(
    factories: Iterable[AIFactory], events: Sequence[GridEvent], after: dt.datetime
) -> dt.datetime | None:
    """The first instant strictly after ``after`` at which an event of an existing
    factory changes a curtailment (planned or in force) or a phase; None when none will."""
    powers: Mapping[str, FactoryPower] = {f.metadata.name: f.spec.power for f in factories}
    best: dt.datetime | None = None
    for event in events:
        power = powers.get(event.spec.factory)
        if power is None:
            continue
        for point in change_points(event, power):
            if point > after and (best is None or point < best):
                best = point
                break
    return best.astimezone(dt.UTC) if best is not None else None


def notice_was_late(event: GridEvent, created: dt.datetime | None) -> bool:
    """Announced with less than its lead time before its start (and before its end)."""
    if created is None or event.spec.cancelled:
        return False
    start, end = span(event)
    return start - lead_time(event) < created < end


__all__ = [
    "FactoryGrid",
    "Level",
    "change_points",
    "curtailment_of",
    "events_of",
    "factory_grid",
    "grid_by_factory",
    "interval_bounds",
    "lead_time",
    "level_at",
    "level_within",
    "levels",
    "next_grid_change",
    "notice_was_late",
    "phase",
    "restore_duration",
    "span",
]
