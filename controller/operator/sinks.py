"""What the solve loop does with a plan: one small protocol, one sink per concern.

The loop (:mod:`controller.operator.loop`) plans and hands a :class:`Solved` to each
:class:`Sink` in order; :func:`controller.operator.main.run` chooses them:

- :class:`StatusSink` writes the status patches and Events (leader only) and records
  what was written in the state, so the next diff is against what the server holds;
- :class:`DeliverySink` tells the delivery layer which clusters exist and what each
  should hold (leader only for the writes; every replica monitors);
- :class:`PlacementScoreSink` publishes each OCM ManagedCluster's headroom as an
  AddOnPlacementScore (leader only; with ``delivery.ocm.placementScores``);
- :class:`MetricsSink` feeds Prometheus;
- :class:`Publisher` keeps the last outcome for the HTTP API (it is the API's
  ``MeshSource``).

A sink never raises into the loop for a failed request; each says what failed in its
own logs and metrics.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from controller.core.changes import Change, ObjectRef, apply_merge_patch
from controller.core.delivery import CONDITION_AVAILABLE, desired_objects
from controller.core.ocm import placement_scores
from controller.core.reconcile import Outcome, Snapshot
from controller.http.source import Published
from controller.operator.delivery.layer import DeliveryLayer, ocm_namespace_of
from controller.operator.delivery.scores import PlacementScorePublisher
from controller.operator.metrics import OperatorMetrics
from controller.operator.state import MeshState, Refused
from controller.operator.writer import WriteStats
from placement.problem import SolverConfig

log = logging.getLogger("meshplane.operator.loop")

SolveMode = Literal["cold", "warm", "refresh"]


@dataclass(frozen=True)
class SolveReport:
    """What one solve did (published with the outcome; for logs, metrics and tests).
    A ``refresh`` re-computed statuses from the last plan (what the clusters said
    changed) without planning."""

    at: dt.datetime
    warm: bool
    solve_ms: float
    changes: int
    status_patches: int
    events: int
    mode: SolveMode = "cold"


@dataclass
class Solved:
    """One plan (or refresh) and its changes, passed from sink to sink."""

    snapshot: Snapshot
    outcome: Outcome
    changes: list[Change]
    refused: list[tuple[ObjectRef, Refused]]
    leading: bool
    mode: SolveMode
    at: dt.datetime
    config: SolverConfig
    version: int
    report: SolveReport
    written: set[ObjectRef] = field(default_factory=set)  # filled by the StatusSink
    # metadata.resourceVersion of each object as the snapshot saw it (the changes carry them too)
    versions: dict[ObjectRef, str] = field(default_factory=dict)


class Sink(Protocol):
    """A consumer of each plan, called by the loop in order."""

    def accept(self, solved: Solved) -> None: ...


class StatusSink:
    """Writes the changes (leader only) through ``write`` (the status writer, which
    returns its :class:`~controller.operator.writer.WriteStats`) and records what the
    server now holds. A patch refused because its object
    changed after the snapshot (409) is dropped; ``on_conflict`` is called when a solve
    must follow at once to write it again (see :meth:`MeshState.conflicted`)."""

    def __init__(
        self, write: Callable[[list[Change]], WriteStats], state: MeshState,
        on_conflict: Callable[[], None] | None = None,
    ) -> None:
        self._write = write
        self._state = state
        self._on_conflict = on_conflict

    def accept(self, solved: Solved) -> None:
        stored: dict[ObjectRef, str] = {}
        conflicted: set[ObjectRef] = set()
        if solved.leading:
            result = self._write(solved.changes)
            solved.written |= result.written
            stored, conflicted = result.versions, result.conflicted
        self._state.record_statuses(solved.outcome, solved.written, solved.versions, stored)
        refused = dict(solved.refused)
        for change in solved.changes:
            held = refused.get(change.ref)
            if held is not None and change.ref in solved.written and change.patch:
                self._state.record_refused_status(
                    change.ref, apply_merge_patch(held.status or {}, change.patch["status"]),
                    sent=solved.versions.get(change.ref), stored=stored.get(change.ref))
        if conflicted and self._state.conflicted(conflicted, solved.versions) and self._on_conflict is not None:
            self._on_conflict()


class DeliverySink:
    """The plan's Deployments to the clusters that run them (see the delivery layer).

    A plan made while a cluster was lost is never delivered to that cluster, not even by
    a refresh made after it came back: it was planned without the cluster (it would
    delete there the work the next plan puts back). The cluster's return asks for a new
    plan, and that one is delivered."""

    def __init__(self, layer: DeliveryLayer, state: MeshState) -> None:
        self._layer = layer
        self._state = state
        self._planned_without: frozenset[str] = frozenset()  # clusters lost when the last plan was made

    def accept(self, solved: Solved) -> None:
        snapshot = solved.snapshot
        targets = snapshot.site_targets()
        self._layer.update(snapshot.clusters, targets)
        if solved.mode != "refresh":
            self._planned_without = frozenset(
                name for name, health in snapshot.observed.clusters.items() if health.state == "Lost")
        if not solved.leading:
            return
        uids = self._state.uids()
        workloads = [(w, solved.outcome.workloads[w.key], uids.get(ObjectRef.of(w), "")) for w in snapshot.workloads]
        delivered = set(self._layer.targets())  # local only when the operator materialises
        desired = desired_objects(workloads, targets, self._layer.settings.hub, targets=delivered)
        namespaces = {w.metadata.namespace or "default" for w in snapshot.workloads}
        self._layer.submit({t: objects for t, objects in desired.items() if t in delivered}, namespaces,
                           planned_without=self._planned_without)


class PlacementScoreSink:
    """Each OCM ManagedCluster's free power and accelerators, as its AddOnPlacementScore."""

    def __init__(self, publisher: PlacementScorePublisher) -> None:
        self._publisher = publisher
        self._leading = False

    def accept(self, solved: Solved) -> None:
        if not solved.leading:
            self._leading = False
            return
        if not self._leading:
            self._publisher.forget()  # another leader may have written meanwhile
            self._leading = True
        targets = solved.snapshot.site_targets()
        sites = {**solved.outcome.factories, **solved.outcome.fleets}
        scores = {}
        for cluster in solved.snapshot.clusters:
            managed_cluster = ocm_namespace_of(cluster)
            if managed_cluster is not None:
                name = cluster.metadata.name
                scores[managed_cluster] = placement_scores(
                    {site: status for site, status in sorted(sites.items()) if targets.get(site) == name})
        self._publisher.publish(scores)


class MetricsSink:
    """Prometheus: solve figures, apply-to-placed and placed-to-available times."""

    def __init__(self, metrics: OperatorMetrics, state: MeshState) -> None:
        self._metrics = metrics
        self._state = state
        self._placed_at: dict[ObjectRef, float] = {}  # workloads Placed, not yet Available

    def accept(self, solved: Solved) -> None:
        now = time.monotonic()
        for ref in sorted(solved.written):  # only a status written can start or end a measure
            if ref.kind != "MeshWorkload":
                continue
            status = solved.outcome.workloads.get(f"{ref.namespace}/{ref.name}")
            if status is None:
                continue
            if status.phase == "Placed":
                changed_at = self._state.take_spec_changed_at(ref, status.observed_generation)
                if changed_at is not None:
                    self._metrics.apply_to_placed.observe(now - changed_at)
            available = next((c for c in status.conditions if c.type == CONDITION_AVAILABLE), None)
            if available is None or status.phase != "Placed":
                self._placed_at.pop(ref, None)
            elif available.status == "True":
                started = self._placed_at.pop(ref, None)
                if started is not None:
                    self._metrics.placed_to_available.observe(now - started)
            else:
                self._placed_at.setdefault(ref, now)
        self._metrics.observe_clusters(solved.snapshot.observed)
        if solved.mode != "refresh":
            self._metrics.observe_solve(solved.report, solved.outcome)
            self._metrics.observe_grid(solved.snapshot, solved.outcome)


class Publisher:
    """The last outcome, for the HTTP API (``controller.http.source.MeshSource``)."""

    def __init__(self) -> None:
        self.published: Published | None = None  # replaced whole, never mutated

    def current(self) -> Published | None:
        return self.published

    def accept(self, solved: Solved) -> None:
        self.published = Published(
            version=solved.version, snapshot=solved.snapshot, outcome=solved.outcome, at=solved.at,
            solve_ms=solved.report.solve_ms, warm=solved.report.warm, config=solved.config,
        )


__all__ = [
    "DeliverySink",
    "MetricsSink",
    "Publisher",
    "Sink",
    "SolveMode",
    "SolveReport",
    "Solved",
    "StatusSink",
]
