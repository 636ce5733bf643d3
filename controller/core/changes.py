"""Changes: what must be written after a reconcile, and nothing more.

Called by the operator's writer (and by tests) with each resource as the API server
holds it and the status :mod:`controller.core.reconcile` computed for it. For every
object it gives a JSON merge patch (RFC 7386) of ``/status``, or ``None`` when the
stored status is already right, so an unchanged mesh makes zero writes; and the
Kubernetes Events of its transitions, so ``kubectl describe`` tells the story:

- MeshWorkload: ``Placed`` (first placement), ``Moved`` (placed elsewhere or with other
  devices), ``Preempted`` (lost its place), ``Rescheduled`` (placed again after a
  preemption), ``Unschedulable`` (fits nowhere);
- sites: ``Cordoned`` / ``Uncordoned``, ``Curtailed`` / ``CurtailmentLifted``,
  ``GridSourceStale`` / ``GridSourceRestored`` (factories), ``Offline`` / ``Online`` (fleets);
- GridEvent: ``GridEventScheduled``, ``PreparingForCurtailment`` (with the workloads
  moving), ``CurtailmentStarted``, ``Restoring``, ``Completed``, ``Cancelled``, and the
  Warnings ``LateNotice``, ``LimitBelowFirm``, ``SourceStale``.

An event is emitted on a transition only, never again while nothing changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from controller.api.models import (
    Assignment,
    Condition,
    GridEventStatus,
    MemberClusterStatus,
    MeshWorkloadStatus,
    SiteStatus,
)
from controller.api.resources import AIFactory, EdgeFleet, GridEvent, MemberCluster, Resource
from controller.core.delivery import CONDITION_AVAILABLE, CONDITION_REACHABLE
from controller.core.grid_statuses import CONDITION_LATE_NOTICE, CONDITION_LIMIT_BELOW_FIRM, CONDITION_SOURCE_STALE
from controller.core.reconcile import Outcome, Snapshot
from controller.core.statuses import (
    CONDITION_CORDONED,
    CONDITION_CURTAILED,
    CONDITION_GRID_SOURCE_STALE,
    CONDITION_OFFLINE,
    PHASE_PLACED,
    PHASE_PREEMPTED,
    PHASE_UNSCHEDULABLE,
    REFUSED_REASON,
    refused_status,
)

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True, order=True)
class ObjectRef:
    """The object a change or an event is about (``involvedObject``)."""

    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def of(cls, resource: Resource[Any, Any]) -> ObjectRef:
        return cls(resource.kind, resource.metadata.name, resource.metadata.namespace)


@dataclass(frozen=True)
class Event:
    """One Kubernetes Event to record: type, CamelCase reason, one-line message."""

    involved: ObjectRef
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Change:
    """What to write for one object: a ``/status`` merge patch (or None) and events.
    ``version``: the ``metadata.resourceVersion`` of the object the patch was computed
    from, when the caller knows it (the operator's writer sends it as a precondition)."""

    ref: ObjectRef
    patch: dict[str, Any] | None
    events: tuple[Event, ...]
    version: str | None = None


def merge_patch(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7386 merge patch that turns ``old`` into ``new`` (empty when equal).

    Lists are replaced whole, as merge patches do; a key missing from ``new`` is
    deleted with ``null``.
    """
    old = old or {}
    patch: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            inner = merge_patch(before, value)
            if inner:
                patch[key] = inner
        elif key not in old or before != value:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch


AnyStatus = MeshWorkloadStatus | SiteStatus | MemberClusterStatus | GridEventStatus


def combine_patches(into: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Two merge patches of one object as one (the later one wins key by key); ``into``
    is updated and returned."""
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            combine_patches(into[key], value)
        else:
            into[key] = dict(value) if isinstance(value, Mapping) else value
    return into


def apply_merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """``target`` after the merge patch ``patch`` (RFC 7386), as the server then holds it."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = apply_merge_patch(result[key], value)
        else:
            result[key] = value
    return result


def status_patch(stored: AnyStatus | None, computed: AnyStatus) -> dict[str, Any] | None:
    """``{"status": ...}`` to send as a merge patch, or None when nothing changed."""
    patch = merge_patch(stored.to_api() if stored is not None else None, computed.to_api())
    return {"status": patch} if patch else None


def _placement(assignments: list[Assignment]) -> list[tuple[str, str, int]]:
    return sorted((a.site, a.accelerator_model, a.devices) for a in assignments)


def _where(status: MeshWorkloadStatus) -> str:
    return ", ".join(f"{a.site} ({a.devices:,} x {a.accelerator_model})" for a in status.assignments)


def _condition(status: MeshWorkloadStatus | SiteStatus | MemberClusterStatus | None, type_: str) -> Condition | None:
    if status is None:
        return None
    return next((c for c in status.conditions if c.type == type_), None)


def delivery_events(
    ref: ObjectRef, stored: MeshWorkloadStatus | None, computed: MeshWorkloadStatus
) -> tuple[Event, ...]:
    """Events of the ``Available`` condition: ``Delivered`` once every Deployment is in
    its cluster (and not yet all ready), ``Available`` when every replica is,
    ``Degraded`` when a cluster says something is wrong."""
    after = _condition(computed, CONDITION_AVAILABLE)
    before = _condition(stored, CONDITION_AVAILABLE)
    if after is None or (before is not None and (before.status, before.reason) == (after.status, after.reason)):
        return ()
    before_reason = before.reason if before is not None else None
    if after.reason == "Available":
        return (Event(ref, "Normal", "Available", f"{computed.ready} replicas ready on {_clusters(computed)}"),)
    if after.reason == "Progressing" and before_reason in (None, "Delivering", "NotPlaced"):
        return (Event(ref, "Normal", "Delivered", f"delivered to {_clusters(computed)}"),)
    if after.reason == "Degraded":
        return (Event(ref, "Warning", after.reason, after.message),)
    # ClusterUnreachable: the MemberCluster and its sites say so in an Event each; one
    # per workload of a large cluster would only bury them
    return ()


def _clusters(status: MeshWorkloadStatus) -> str:
    return ", ".join(sorted({a.cluster for a in status.assignments if a.cluster})) or "no cluster"


def workload_events(
    ref: ObjectRef, stored: MeshWorkloadStatus | None, computed: MeshWorkloadStatus
) -> tuple[Event, ...]:
    """The events of one workload's transition from ``stored`` to ``computed``."""
    return _placement_events(ref, stored, computed) + delivery_events(ref, stored, computed)


def _placement_events(
    ref: ObjectRef, stored: MeshWorkloadStatus | None, computed: MeshWorkloadStatus
) -> tuple[Event, ...]:
    before = stored.phase if stored is not None else None
    after = computed.phase
    if after == PHASE_PLACED:
        if before == PHASE_PLACED:
            if stored is not None and _placement(stored.assignments) != _placement(computed.assignments):
                return (Event(ref, "Normal", "Moved", f"moved from {_where(stored)} to {_where(computed)}"),)
            return ()
        reason = "Rescheduled" if before == PHASE_PREEMPTED else "Placed"
        return (Event(ref, "Normal", reason, f"placed on {_where(computed)}"),)
    if after == before:
        return ()
    if after == PHASE_PREEMPTED:
        return (Event(ref, "Warning", "Preempted", computed.message),)
    if after == PHASE_UNSCHEDULABLE:
        return (Event(ref, "Warning", "Unschedulable", computed.message),)
    return ()


# condition type -> (reason when it turns True, type, reason when it turns False, type)
_SITE_TRANSITIONS: dict[str, tuple[str, EventType, str, EventType]] = {
    CONDITION_CORDONED: ("Cordoned", "Normal", "Uncordoned", "Normal"),
    CONDITION_CURTAILED: ("Curtailed", "Warning", "CurtailmentLifted", "Normal"),
    CONDITION_OFFLINE: ("Offline", "Normal", "Online", "Normal"),
    CONDITION_GRID_SOURCE_STALE: ("GridSourceStale", "Warning", "GridSourceRestored", "Normal"),
}


def reachable_events(
    ref: ObjectRef, stored: SiteStatus | MemberClusterStatus | None, computed: SiteStatus | MemberClusterStatus
) -> tuple[Event, ...]:
    """``Unreachable`` and ``Lost`` (Warning) when a member cluster stops answering or
    is given up on, ``Reachable`` when it answers again after either."""
    after = _condition(computed, CONDITION_REACHABLE)
    before = _condition(stored, CONDITION_REACHABLE)
    if after is None or (before is not None and before.reason == after.reason):
        return ()
    if after.status == "True":
        if before is not None and before.status == "False":
            return (Event(ref, "Normal", "Reachable", after.message),)
        return ()
    if after.status == "False":
        return (Event(ref, "Warning", after.reason, after.message),)
    return ()


def site_events(ref: ObjectRef, stored: SiteStatus | None, computed: SiteStatus) -> tuple[Event, ...]:
    """Events of a site's condition transitions (a first status says only what is True)."""
    before = {c.type: c.status for c in stored.conditions} if stored is not None else {}
    events = list(reachable_events(ref, stored, computed))
    for cond in computed.conditions:
        if cond.type not in _SITE_TRANSITIONS or before.get(cond.type) == cond.status:
            continue
        on_reason, on_type, off_reason, off_type = _SITE_TRANSITIONS[cond.type]
        if cond.status == "True":
            events.append(Event(ref, on_type, on_reason, cond.message))
        elif cond.type in before:  # only a real transition from True says "lifted"
            events.append(Event(ref, off_type, off_reason, cond.message))
    return tuple(events)


def _site_change(site: AIFactory | EdgeFleet, computed: SiteStatus) -> Change:
    ref = ObjectRef.of(site)
    return Change(ref, status_patch(site.status, computed), site_events(ref, site.status, computed))


def changes(snapshot: Snapshot, outcome: Outcome) -> Iterator[Change]:
    """Every object whose status must be patched or that has events, in a stable order.

    ``snapshot`` holds the objects as stored (their ``status`` is what the API server
    has); objects with nothing to write are left out.
    """
    for workload in snapshot.workloads:
        computed = outcome.workloads[workload.key]
        ref = ObjectRef.of(workload)
        change = Change(
            ref, status_patch(workload.status, computed), workload_events(ref, workload.status, computed)
        )
        if change.patch is not None or change.events:
            yield change
    for factory in snapshot.factories:
        change = _site_change(factory, outcome.factories[factory.metadata.name])
        if change.patch is not None or change.events:
            yield change
    for fleet in snapshot.fleets:
        change = _site_change(fleet, outcome.fleets[fleet.metadata.name])
        if change.patch is not None or change.events:
            yield change
    for cluster in snapshot.clusters:
        change = _cluster_change(cluster, outcome.clusters[cluster.metadata.name])
        if change.patch is not None or change.events:
            yield change
    for event in snapshot.grid_events:
        change = _grid_event_change(event, outcome.grid_events[event.metadata.name])
        if change.patch is not None or change.events:
            yield change


def _grid_event_change(event: GridEvent, computed: GridEventStatus) -> Change:
    ref = ObjectRef.of(event)
    return Change(ref, status_patch(event.status, computed), grid_event_events(ref, event.status, computed))


_PHASE_EVENTS: dict[str, tuple[EventType, str]] = {
    "Scheduled": ("Normal", "GridEventScheduled"),
    "Preparing": ("Normal", "PreparingForCurtailment"),
    "Active": ("Normal", "CurtailmentStarted"),
    "Restoring": ("Normal", "Restoring"),
    "Completed": ("Normal", "Completed"),
    "Cancelled": ("Normal", "Cancelled"),
}
_GRID_WARNINGS = (CONDITION_LATE_NOTICE, CONDITION_LIMIT_BELOW_FIRM, CONDITION_SOURCE_STALE)


def grid_event_events(ref: ObjectRef, stored: GridEventStatus | None, computed: GridEventStatus) -> tuple[Event, ...]:
    """One event per phase reached, and a Warning when a warning condition turns True."""
    events: list[Event] = []
    if stored is None or stored.phase != computed.phase:
        event_type, reason = _PHASE_EVENTS[computed.phase]
        events.append(Event(ref, event_type, reason, _phase_message(computed)))
    before = {c.type: c.status for c in stored.conditions} if stored is not None else {}
    for cond in computed.conditions:
        if cond.type in _GRID_WARNINGS and cond.status == "True" and before.get(cond.type) != "True":
            events.append(Event(ref, "Warning", cond.type, cond.message))
    return tuple(events)


def _phase_message(status: GridEventStatus) -> str:
    when = f"from {status.start} to {status.end}"
    if status.phase == "Scheduled":
        return f"up to {status.peak_curtailed_mw:,.1f} MW curtailed {when}"
    if status.phase == "Preparing":
        return f"{status.moved_count} workload(s) moved or preempted ahead of the curtailment {when}"
    if status.phase == "Active":
        return f"{status.curtailed_mw:,.1f} MW curtailed until {status.end}; {status.moved_count} workload(s) moved"
    if status.phase == "Restoring":
        return f"power returns in steps after {status.end}"
    if status.phase == "Completed":
        return f"ended at {status.end}; work may return"
    return "cancelled: its curtailment no longer applies"


def _cluster_change(cluster: MemberCluster, computed: MemberClusterStatus) -> Change:
    ref = ObjectRef.of(cluster)
    return Change(ref, status_patch(cluster.status, computed), reachable_events(ref, cluster.status, computed))


def refused_change(
    ref: ObjectRef, generation: int | None, stored_status: Mapping[str, Any] | None, problems: Sequence[str],
    at: dt.datetime,
) -> Change | None:
    """What to write for an object the core refused (see ``statuses.refused_status``):
    its status, and one Warning event when it first becomes refused; None when the
    stored status says so already. ``stored_status`` is the raw stored status (it may
    not parse either)."""
    stored = stored_status or {}
    previous = []
    for raw in stored.get("conditions") or []:
        try:
            previous.append(Condition.model_validate(raw))
        except ValueError:
            continue
    computed = refused_status(ref.kind, generation, previous, problems, at)
    patch = merge_patch(stored, computed.to_api())
    if not patch:
        return None
    was_refused = any(c.reason == REFUSED_REASON for c in previous)
    message = computed.conditions[0].message
    events = () if was_refused else (Event(ref, "Warning", REFUSED_REASON, message),)
    return Change(ref, {"status": patch}, events)


def with_statuses(snapshot: Snapshot, outcome: Outcome) -> Snapshot:
    """The snapshot as it is once every computed status is written back (what the
    next watch event delivers): for tests and what-if chains."""
    return Snapshot(
        factories=[f.model_copy(update={"status": outcome.factories[f.metadata.name]}) for f in snapshot.factories],
        fleets=[f.model_copy(update={"status": outcome.fleets[f.metadata.name]}) for f in snapshot.fleets],
        workloads=[
            w.model_copy(update={"status": outcome.workloads[w.key]}) for w in snapshot.workloads
        ],
        at=snapshot.at,
        clusters=[c.model_copy(update={"status": outcome.clusters[c.metadata.name]}) for c in snapshot.clusters],
        observed=snapshot.observed,
        grid_events=[e.model_copy(update={"status": outcome.grid_events[e.metadata.name]})
                     for e in snapshot.grid_events],
    )


__all__ = [
    "AnyStatus",
    "Change",
    "apply_merge_patch",
    "combine_patches",
    "Event",
    "grid_event_events",
    "ObjectRef",
    "changes",
    "merge_patch",
    "refused_change",
    "site_events",
    "status_patch",
    "with_statuses",
    "workload_events",
]
