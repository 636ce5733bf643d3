"""GridEvent statuses: phase, schedule, the workloads moved for the event, its conditions.

Called by :mod:`controller.core.reconcile` after each plan. The status is a function
of the event's spec, its factory, the time and what it already said (the workloads
moved so far are kept, so a restarted operator neither forgets nor counts twice a move
it made before). ``lastReport`` belongs to ``meshplane-ven`` and is carried over as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Final

from controller.api.models import Condition, CurtailmentStep, GridEventStatus, MeshWorkloadStatus
from controller.api.resources import AIFactory, GridEvent, MeshWorkload
from controller.core.conditions import condition, timestamp
from controller.core.grid import FactoryGrid, level_at, levels, notice_was_late, phase, span

CONDITION_VALID: Final = "Valid"
CONDITION_LIMIT_BELOW_FIRM: Final = "LimitBelowFirm"
CONDITION_LATE_NOTICE: Final = "LateNotice"
CONDITION_SOURCE_STALE: Final = "SourceStale"

STALE_ANNOTATION: Final = "meshplane.io/source-stale-since"
"""Set by meshplane-ven on its GridEvents while it cannot reach their VTN (RFC 3339)."""

_MW_DIGITS = 4
_MAX_STEPS = 400
_MAX_MOVED = 1000


def created_at(event: GridEvent) -> dt.datetime | None:
    text = (event.metadata.model_extra or {}).get("creationTimestamp")
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def stale_since(event: GridEvent) -> str | None:
    return event.metadata.annotations.get(STALE_ANNOTATION)


def moved_for_events(
    workloads: Sequence[MeshWorkload], statuses: Mapping[str, MeshWorkloadStatus], grid: Mapping[str, FactoryGrid]
) -> dict[str, list[str]]:
    """Event name -> interruptible workloads that had devices at its factory before this
    plan and have fewer there now, while that event sets the factory's planned curtailment."""
    moved: dict[str, list[str]] = {}
    for workload in workloads:
        before = workload.status
        if before is None or before.phase != "Placed" or not workload.spec.interruptible:
            continue
        after = statuses[workload.key]
        for site in dict.fromkeys(a.site for a in before.assignments):
            facts = grid.get(site)
            if facts is None or facts.driver is None:
                continue
            had = sum(a.devices for a in before.assignments if a.site == site)
            has = sum(a.devices for a in after.assignments if a.site == site) if after.phase == "Placed" else 0
            if has < had:
                moved.setdefault(facts.driver, []).append(workload.key)
    return moved


def grid_event_status(
    event: GridEvent, factory: AIFactory | None, at: dt.datetime, moved_now: Sequence[str] = ()
) -> GridEventStatus:
    """The status of one event at ``at`` (see the module docstring)."""
    generation = event.metadata.generation
    stored = event.status
    previous: Sequence[Condition] = stored.conditions if stored is not None else []
    start, end = span(event)
    moved = list(dict.fromkeys([*(stored.moved_workloads if stored else []), *moved_now]))
    moved_count = (stored.moved_count if stored else 0) + sum(
        1 for key in dict.fromkeys(moved_now) if stored is None or key not in stored.moved_workloads
    )
    limits = [i.import_limit_mw for i in event.spec.intervals if i.import_limit_mw is not None]
    conditions = [
        condition(previous, CONDITION_VALID, factory is not None, "FactoryFound" if factory else "FactoryNotFound",
                  "" if factory else f"AIFactory {event.spec.factory} does not exist: the event applies to nothing",
                  at, generation),
    ]
    schedule: list[CurtailmentStep] = []
    curtailed = peak = 0.0
    if factory is not None:
        power = factory.spec.power
        event_levels = levels(event, power)
        curtailed = level_at(event_levels, at)
        peak = max((lv.curtailed_mw for lv in event_levels), default=0.0)
        schedule = [
            CurtailmentStep(start=timestamp(lv.start), end=timestamp(lv.end),
                            curtailed_mw=round(lv.curtailed_mw, _MW_DIGITS), limit_mw=lv.limit_mw)
            for lv in sorted(event_levels, key=lambda lv: (lv.start, lv.end))[:_MAX_STEPS]
        ]
        shortfalls = [lv for lv in event_levels if lv.firm_shortfall_mw > 0]
        if shortfalls:
            worst = max(shortfalls, key=lambda lv: lv.firm_shortfall_mw)
            message = (
                f"import limit {worst.limit_mw:,.1f} MW is below the firm power of {factory.metadata.name} "
                f"({power.firm_mw:,.1f} MW) from {timestamp(worst.start)}: all flexible power is withdrawn and "
                f"firm work is kept, drawing up to {worst.firm_shortfall_mw:,.1f} MW over the limit"
            )
            conditions.append(condition(previous, CONDITION_LIMIT_BELOW_FIRM, True, "LimitBelowFirm", message, at,
                                        generation))
    announced = created_at(event)
    if announced is not None and notice_was_late(event, announced):
        conditions.append(condition(
            previous, CONDITION_LATE_NOTICE, True, "LateNotice",
            f"announced at {timestamp(announced)}, less than its lead time {event.spec.lead_time} "
            f"before its start {timestamp(start)}: work was moved at once", at, generation))
    stale = stale_since(event)
    if stale is not None or any(c.type == CONDITION_SOURCE_STALE for c in previous):
        conditions.append(condition(
            previous, CONDITION_SOURCE_STALE, stale is not None, "VtnUnreachable" if stale else "VtnReachable",
            f"meshplane-ven cannot reach the VTN since {stale}: the event is kept as last read, never lifted "
            "early" if stale else "meshplane-ven reads the VTN again", at, generation))
    return GridEventStatus(
        observed_generation=generation,
        phase=phase(event, at),
        start=timestamp(start),
        end=timestamp(end),
        limit_mw=min(limits) if limits else None,
        curtailed_mw=round(curtailed, _MW_DIGITS),
        peak_curtailed_mw=round(peak, _MW_DIGITS),
        schedule=schedule,
        moved_workloads=moved[:_MAX_MOVED],
        moved_count=moved_count,
        last_report=stored.last_report if stored is not None else None,
        conditions=conditions,
    )


__all__ = [
    "CONDITION_LATE_NOTICE",
    "CONDITION_LIMIT_BELOW_FIRM",
    "CONDITION_SOURCE_STALE",
    "CONDITION_VALID",
    "STALE_ANNOTATION",
    "created_at",
    "grid_event_status",
    "moved_for_events",
    "stale_since",
]
