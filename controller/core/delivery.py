"""Delivery, the pure part: what each cluster should hold, and what the clusters say back.

Called by :mod:`controller.core.reconcile` (lost clusters, readiness in the statuses)
and by the operator's delivery layer (:mod:`controller.operator.delivery`), which only
sends what :func:`desired_objects` computes and reports what it reads as
:class:`Observed`. No I/O here.

A site is delivered to its target: ``local`` (the cluster the operator runs in: the
Deployments are owned by their MeshWorkload, as :mod:`controller.core.materialise`
makes them), or the ``MemberCluster`` named by ``spec.memberCluster``. In a member no
MeshWorkload exists to own anything, so there every object carries origin labels
instead: the hub's name, the workload's namespace, name and uid. Only objects with our
origin label are ever changed or deleted in a member. A member also gets the
workload's namespace, labelled as ours (never deleted: other things may live in it).

Readiness flows back as one :class:`DeploymentObservation` per Deployment, and each
member cluster's health as a :class:`ClusterHealth`; a ``Lost`` cluster's sites have no
capacity in the next plan (:func:`lost_sites`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from controller.api.models import Assignment, MeshWorkloadStatus
from controller.api.resources import AIFactory, EdgeFleet, MeshWorkload
from controller.core.conditions import condition, timestamp
from controller.core.materialise import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    PlannedDeployment,
    deployment_body,
    label_value,
    owner_reference,
    planned_deployments,
)

LOCAL: Final = "local"
"""The target of a site without ``spec.memberCluster``: the operator's own cluster."""

ORIGIN_LABEL: Final = "meshplane.io/origin"
WORKLOAD_NAMESPACE_LABEL: Final = "meshplane.io/workload-namespace"
WORKLOAD_UID_LABEL: Final = "meshplane.io/workload-uid"

CONDITION_AVAILABLE: Final = "Available"
CONDITION_REACHABLE: Final = "Reachable"

HealthState = Literal["Unknown", "Reachable", "Unreachable", "Lost"]


def origin_selector(hub: str) -> str:
    """Label selector of everything this hub made in a member cluster."""
    return f"{ORIGIN_LABEL}={label_value(hub)}"


def target_of(site: AIFactory | EdgeFleet) -> str:
    """Where a site's work goes: ``local`` or a MemberCluster's name."""
    return site.spec.member_cluster or LOCAL


# ----------------------------------------------------------------- observations


@dataclass(frozen=True)
class DeploymentObservation:
    """A Deployment as a cluster reports it."""

    replicas: int  # spec.replicas as stored there
    ready_replicas: int = 0
    available_replicas: int = 0
    current: bool = True  # status.observedGeneration caught up with metadata.generation
    problem: str = ""  # the cluster's own reason it is not progressing ("" when none)


@dataclass(frozen=True)
class ClusterHealth:
    """What the operator knows of a member cluster's reachability.

    ``Unknown`` until the first probe answers or fails (never acted on); ``Unreachable``
    from the first failure; ``Lost`` once unreachable for the cluster's ``lostAfter``
    (then its sites have no capacity). ``reason`` is a condition reason (``Reachable``,
    ``Unreachable``, ``InvalidKubeconfig``, ``SecretNotFound``, ``NotFound``), ``message``
    the first error of the outage, ``since`` when the state began, ``last_seen`` the last
    answer."""

    state: HealthState
    reason: str = "Unknown"
    message: str = ""
    since: dt.datetime | None = None
    last_seen: dt.datetime | None = None


UNKNOWN_HEALTH = ClusterHealth("Unknown", "Unknown", "not probed yet")

DeploymentKey = tuple[str, str, str]  # (target, namespace, name)


@dataclass(frozen=True)
class Observed:
    """What the clusters said at the time of a snapshot: member health, and the
    Deployments of every target whose last read answered (a Deployment not among them
    is reported as still being delivered). ``delivering``: the targets the operator
    delivers to (none for ``meshctl``; ``local`` only when it materialises); readiness
    is reported for those only."""

    clusters: Mapping[str, ClusterHealth] = field(default_factory=dict)
    deployments: Mapping[DeploymentKey, DeploymentObservation] = field(default_factory=dict)
    delivering: frozenset[str] = frozenset()

    def health(self, target: str) -> ClusterHealth:
        if target == LOCAL:
            return ClusterHealth("Reachable", "Reachable")
        return self.clusters.get(target, UNKNOWN_HEALTH)


NOTHING_OBSERVED = Observed()


def lost_sites(sites: Iterable[AIFactory | EdgeFleet], observed: Observed) -> dict[str, str]:
    """Site name -> why it has no capacity, for the sites whose member cluster is lost."""
    lost: dict[str, str] = {}
    for site in sites:
        target = target_of(site)
        health = observed.health(target)
        if health.state == "Lost":
            lost[site.metadata.name] = lost_message(target, health)
    return lost


def lost_message(target: str, health: ClusterHealth) -> str:
    seen = f"; last seen {_time(health.last_seen)}" if health.last_seen else ""
    since = f" since {_time(health.since)}" if health.since else ""
    return f"member cluster {target} is lost: unreachable{since}{seen} ({health.message or health.reason})"


def _time(at: dt.datetime | None) -> str:
    return "-" if at is None else timestamp(at)


# ----------------------------------------------------------------- desired state


@dataclass
class ClusterObjects:
    """What one target should hold: apply bodies by key, and what cannot be made."""

    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    deployments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)  # deployment -> workload key
    problems: list[str] = field(default_factory=list)


def origin_labels(hub: str, workload: MeshWorkload, uid: str) -> dict[str, str]:
    """The labels that say an object in a member was made by ``hub`` for ``workload``."""
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        ORIGIN_LABEL: label_value(hub),
        WORKLOAD_NAMESPACE_LABEL: label_value(workload.metadata.namespace or "default"),
        WORKLOAD_UID_LABEL: label_value(uid),
    }


def namespace_body(namespace: str, hub: str) -> dict[str, Any]:
    """A workload's namespace in a member, labelled as made for this hub."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY, ORIGIN_LABEL: label_value(hub)}},
    }


def desired_objects(
    workloads: Sequence[tuple[MeshWorkload, MeshWorkloadStatus, str]],
    site_targets: Mapping[str, str],
    hub: str,
    targets: Iterable[str] = (),
) -> dict[str, ClusterObjects]:
    """Per target, the objects it should hold for these workloads (every workload of the
    mesh, with its computed status and uid). ``site_targets`` maps each site to its
    target; every name of ``targets`` gets an entry, even when it should hold nothing
    (so what it holds is deleted)."""
    out: dict[str, ClusterObjects] = {target: ClusterObjects() for target in targets}
    for workload, status, uid in workloads:
        planned, problems = planned_deployments(workload, status)
        if problems:
            out.setdefault(LOCAL, ClusterObjects()).problems.extend(problems)
        if not planned:
            continue
        namespace = workload.metadata.namespace or "default"
        if not uid:
            out.setdefault(LOCAL, ClusterObjects()).problems.append(
                f"MeshWorkload {namespace}/{workload.metadata.name}: no uid known: cannot deliver its Deployments"
            )
            continue
        for item in planned:
            target = site_targets.get(item.site, LOCAL)
            objects = out.setdefault(target, ClusterObjects())
            if target == LOCAL:
                body = deployment_body(workload, item, owner_reference(workload, uid))
            else:
                body = deployment_body(workload, item, None, origin_labels(hub, workload, uid))
                objects.namespaces.setdefault(namespace, namespace_body(namespace, hub))
            key = (namespace, item.name)
            if key in objects.deployments:
                objects.problems.append(
                    f"Deployment {namespace}/{item.name} in {target} is wanted by MeshWorkloads "
                    f"{objects.owners[key]} and {workload.key}; kept for {objects.owners[key]}"
                )
                continue
            objects.deployments[key] = body
            objects.owners[key] = workload.key
    return out


# ----------------------------------------------------------------- readiness in the status

# the worse reason wins for the whole workload
_SEVERITY: Final = {"Available": 0, "Progressing": 1, "Delivering": 2, "Degraded": 3, "ClusterUnreachable": 4}


def _assignment_state(
    planned: PlannedDeployment, target: str, namespace: str, observed: Observed
) -> tuple[str, str, DeploymentObservation | None]:
    """(reason, message, observation) of one Deployment."""
    health = observed.health(target)
    if health.state in ("Unreachable", "Lost"):
        return "ClusterUnreachable", f"cluster {target} is unreachable: {health.message or health.reason}", None
    seen = observed.deployments.get((target, namespace, planned.name))
    if seen is None:
        return "Delivering", f"not yet in cluster {target}", None
    if seen.problem:
        return "Degraded", seen.problem, seen
    if not seen.current or seen.replicas != planned.replicas or seen.available_replicas < planned.replicas:
        return "Progressing", f"{seen.available_replicas}/{planned.replicas} replicas available", seen
    return "Available", "", seen


def with_readiness(
    workload: MeshWorkload, status: MeshWorkloadStatus, site_targets: Mapping[str, str], observed: Observed,
    at: dt.datetime,
) -> MeshWorkloadStatus:
    """``status`` with what the clusters report of the workload's Deployments: per
    assignment its cluster, replicas and readiness, ``ready`` for the workload and the
    ``Available`` condition. A workload without a pod template, or none of whose sites
    is delivered to by this operator (``observed.delivering``), is returned as it is."""
    if workload.spec.template is None or not observed.delivering:
        return status
    namespace = workload.metadata.namespace or "default"
    previous = workload.status.conditions if workload.status else []
    generation = workload.metadata.generation
    planned, _ = planned_deployments(workload, status)
    planned = [p for p in planned if site_targets.get(p.site, LOCAL) in observed.delivering]
    if not planned and status.phase == "Placed":
        return status  # placed only where nothing is delivered
    if not planned:
        reason, message = "NotPlaced", "nothing to run: the workload is not placed"
        available_condition = condition(previous, CONDITION_AVAILABLE, False, reason, message, at, generation)
        return status.model_copy(update={"ready": None, "conditions": [*status.conditions, available_condition]})
    by_assignment: dict[tuple[str, str], tuple[str, PlannedDeployment, str, str, DeploymentObservation | None]] = {}
    worst = "Available"
    messages: list[str] = []
    ready = desired = 0
    for item in planned:
        target = site_targets.get(item.site, LOCAL)
        reason, message, seen = _assignment_state(item, target, namespace, observed)
        by_assignment[(item.site, item.accelerator_model)] = (target, item, reason, message, seen)
        desired += item.replicas
        ready += min(seen.ready_replicas, item.replicas) if seen is not None else 0
        if _SEVERITY[reason] > _SEVERITY[worst]:
            worst = reason
        if message:
            messages.append(f"{item.name} ({item.site}): {message}")
    assignments: list[Assignment] = []
    for assignment in status.assignments:
        entry = by_assignment.get((assignment.site, assignment.accelerator_model))
        if entry is None:
            assignments.append(assignment)
            continue
        target, item, _, message, seen = entry
        assignments.append(assignment.model_copy(update={
            "cluster": target,
            "replicas": item.replicas,
            "ready_replicas": seen.ready_replicas if seen is not None else 0,
            "available_replicas": seen.available_replicas if seen is not None else 0,
            "delivery_message": message or None,
        }))
    available = worst == "Available"
    text = f"{ready}/{desired} replicas ready" if available else "; ".join(messages)
    available_condition = condition(previous, CONDITION_AVAILABLE, available, worst, text[:4096], at, generation)
    return status.model_copy(update={
        "assignments": assignments, "ready": f"{ready}/{desired}",
        "conditions": [*status.conditions, available_condition],
    })


__all__ = [
    "CONDITION_AVAILABLE",
    "CONDITION_REACHABLE",
    "LOCAL",
    "NOTHING_OBSERVED",
    "ORIGIN_LABEL",
    "UNKNOWN_HEALTH",
    "WORKLOAD_NAMESPACE_LABEL",
    "WORKLOAD_UID_LABEL",
    "ClusterHealth",
    "ClusterObjects",
    "DeploymentKey",
    "DeploymentObservation",
    "HealthState",
    "Observed",
    "desired_objects",
    "lost_message",
    "lost_sites",
    "namespace_body",
    "origin_labels",
    "origin_selector",
    "target_of",
    "with_readiness",
]
