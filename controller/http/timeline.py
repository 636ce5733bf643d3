"""The timeline as the API sends it: :func:`controller.core.timeline.timeline` turned
into :class:`~controller.http.models.TimelineView`.

Called by ``GET /api/v1/timeline`` (cached per publication and horizon, since it plans
the mesh once per wake-up) and by ``meshctl plan --horizon -o json``, so both print the
same document.
"""

from __future__ import annotations

import datetime as dt

from controller.core.conditions import timestamp
from controller.core.explanations import SolverConfig
from controller.core.reconcile import Outcome, Snapshot
from controller.core.timeline import Timeline, timeline
from controller.http.models import (
    FactoryPointView,
    FactoryTimeline,
    FleetPointView,
    FleetTimeline,
    GridEventView,
    PlannedMoveView,
    TimelineView,
)


def timeline_view(found: Timeline, snapshot: Snapshot) -> TimelineView:
    power = {f.metadata.name: f.spec.power for f in snapshot.factories}
    return TimelineView(
        start=timestamp(found.start),
        end=timestamp(found.end),
        instants=[timestamp(at) for at in found.instants],
        truncated=found.truncated,
        factories=[
            FactoryTimeline(
                name=name, firm_mw=power[name].firm_mw, flexible_mw=power[name].flexible_mw,
                points=[FactoryPointView(curtailed_mw=p.curtailed_mw, planned_curtailed_mw=p.planned_curtailed_mw,
                                         usable_mw=p.usable_mw, allocated_mw=p.allocated_mw, driver=p.driver)
                        for p in points],
            )
            for name, points in found.factories.items()
        ],
        fleets=[
            FleetTimeline(name=name, points=[FleetPointView(online_devices=p.online_devices,
                                                            allocated_mw=p.allocated_mw) for p in points])
            for name, points in found.fleets.items()
        ],
        moves=[
            PlannedMoveView(at=timestamp(m.at), workload=m.workload, before_sites=list(m.before_sites),
                            after_sites=list(m.after_sites), phase=m.phase, because=m.because)
            for m in found.moves
        ],
        events=[
            GridEventView(name=e.name, factory=e.factory, phase=e.phase, start=timestamp(e.start),
                          end=timestamp(e.end), lead_time=e.lead_time, peak_curtailed_mw=e.peak_curtailed_mw,
                          limit_mw=e.limit_mw, source=e.source, moved_count=e.moved_count)
            for e in found.events
        ],
    )


def planned_timeline(snapshot: Snapshot, outcome: Outcome, config: SolverConfig, hours: float) -> TimelineView:
    """The timeline of a published reconcile over the next ``hours``."""
    found = timeline(snapshot, config, dt.timedelta(hours=hours), first=outcome)
    return timeline_view(found, snapshot)


__all__ = ["planned_timeline", "timeline_view"]
