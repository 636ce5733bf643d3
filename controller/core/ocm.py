"""Open Cluster Management, the pure part: ManifestWorks to send, and what OCM says back.

Called by the operator's delivery layer for MemberClusters with ``spec.ocm``
(:mod:`controller.operator.delivery`): it sends what :func:`manifest_works` computes
and reads the hub's objects through :func:`observe_manifest_work` and
:func:`managed_cluster_health`. No I/O here.

The work of a member is the same as with the ``direct`` backend
(:func:`controller.core.delivery.desired_objects`: the namespace and the Deployment with
origin labels); with OCM each Deployment travels in a ManifestWork of its own, one per
(workload, site), in the hub namespace named after the ManagedCluster. The member's
work agent applies it and sends back, as status feedback, the Deployment's replicas,
ready and available replicas, generation and observed generation, so readiness
reaches the workload status without any credential for the member. The ManifestWork
carries the same origin labels (only ManifestWorks labelled as ours are changed or
deleted) and orphans the namespace when it is deleted: several ManifestWorks share it
and meshplane never deletes namespaces.

Reachability follows the ManagedCluster: ``ManagedClusterConditionAvailable`` True
and no OCM taint saying it is unavailable or unreachable. OCM's own Placement and
ManifestWorkReplicaSet are not used: meshplane's solver is the only placement authority.

For other tools that do use OCM's Placement, :func:`placement_scores` turns the plan's
site statuses into the scores of one ``AddOnPlacementScore`` per ManagedCluster (named
:data:`PLACEMENT_SCORE_NAME`): the share of power and of accelerators still free, for
the cluster's sites together and for each, so a Placement's ``AddOn`` prioritizer can
prefer clusters with headroom.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from controller.api.models import SiteStatus
from controller.core.delivery import (
    ORIGIN_LABEL,
    WORKLOAD_NAMESPACE_LABEL,
    WORKLOAD_UID_LABEL,
    ClusterObjects,
    DeploymentObservation,
)
from controller.core.materialise import MANAGED_BY_LABEL, WORKLOAD_LABEL

WORK_GROUP: Final = "work.open-cluster-management.io"
WORK_API_VERSION: Final = f"{WORK_GROUP}/v1"
CLUSTER_GROUP: Final = "cluster.open-cluster-management.io"
CLUSTER_API_VERSION: Final = f"{CLUSTER_GROUP}/v1"

CONDITION_CLUSTER_AVAILABLE: Final = "ManagedClusterConditionAvailable"
# the taints OCM's hub puts on a cluster whose agent stopped renewing its lease (Unknown)
# or that reports itself unavailable (False): work is not delivered to such a cluster
UNREACHABLE_TAINTS: Final = frozenset({
    "cluster.open-cluster-management.io/unreachable",
    "cluster.open-cluster-management.io/unavailable",
})

# status feedback values (the names OCM's WellKnownStatus gives a Deployment, and ours)
FEEDBACK_READY: Final = "ReadyReplicas"
FEEDBACK_AVAILABLE: Final = "AvailableReplicas"
FEEDBACK_SPEC_REPLICAS: Final = "specReplicas"
FEEDBACK_GENERATION: Final = "generation"
FEEDBACK_OBSERVED_GENERATION: Final = "observedGeneration"

_MESSAGE_LIMIT: Final = 512

PLACEMENT_SCORE_NAME: Final = "meshplane"
"""The AddOnPlacementScore of every ManagedCluster meshplane delivers to (a Placement's
``scoreCoordinate.addOn.resourceName``)."""
SCORE_FREE_POWER: Final = "freePowerPercent"
SCORE_FREE_ACCELERATORS: Final = "freeAcceleratorsPercent"


def manifest_work_name(namespace: str, deployment: str) -> str:
    """The ManifestWork of one Deployment: ``<namespace>.<name>`` (a namespace has no
    dot, so no two Deployments share a name; at most 63 + 1 + 63 characters)."""
    return f"{namespace}.{deployment}"


def _manifest_work(
    deployment: dict[str, Any], namespace_body: dict[str, Any] | None, cluster_namespace: str
) -> dict[str, Any]:
    metadata = deployment["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    labels = {
        key: value for key, value in (metadata.get("labels") or {}).items()
        if key in (MANAGED_BY_LABEL, ORIGIN_LABEL, WORKLOAD_NAMESPACE_LABEL, WORKLOAD_UID_LABEL, WORKLOAD_LABEL)
    }
    manifests = [copy.deepcopy(body) for body in (namespace_body, deployment) if body is not None]
    return {
        "apiVersion": WORK_API_VERSION,
        "kind": "ManifestWork",
        "metadata": {"name": manifest_work_name(namespace, name), "namespace": cluster_namespace, "labels": labels},
        "spec": {
            "workload": {"manifests": manifests},
            # a namespace is shared by the work of several workloads: never deleted with one
            "deleteOption": {
                "propagationPolicy": "SelectivelyOrphan",
                "selectivelyOrphans": {"orphaningRules": [{"group": "", "resource": "namespaces", "name": namespace}]},
            },
            "manifestConfigs": [{
                "resourceIdentifier": {"group": "apps", "resource": "deployments", "namespace": namespace, "name": name},
                "updateStrategy": {"type": "ServerSideApply", "serverSideApply": {"force": True}},
                "feedbackRules": [
                    {"type": "WellKnownStatus"},
                    {"type": "JSONPaths", "jsonPaths": [
                        {"name": FEEDBACK_SPEC_REPLICAS, "path": ".spec.replicas"},
                        {"name": FEEDBACK_GENERATION, "path": ".metadata.generation"},
                        {"name": FEEDBACK_OBSERVED_GENERATION, "path": ".status.observedGeneration"},
                    ]},
                ],
            }],
        },
    }


def manifest_works(objects: ClusterObjects, cluster_namespace: str) -> ClusterObjects:
    """What a member should hold (namespaces and Deployments with origin labels), as the
    ManifestWorks that carry it: keyed ``(cluster_namespace, work name)``, owners and
    problems kept. No namespaces of their own: each travels inside its ManifestWorks."""
    out = ClusterObjects(problems=list(objects.problems))
    for (namespace, name), deployment in sorted(objects.deployments.items()):
        key = (cluster_namespace, manifest_work_name(namespace, name))
        out.deployments[key] = _manifest_work(deployment, objects.namespaces.get(namespace), cluster_namespace)
        out.owners[key] = objects.owners.get((namespace, name), "")
    return out


# ----------------------------------------------------------------- what OCM says back


def _feedback(manifest: Mapping[str, Any]) -> dict[str, int]:
    values: dict[str, int] = {}
    for value in ((manifest.get("statusFeedback") or {}).get("values") or []):
        field_value = value.get("fieldValue") or {}
        if field_value.get("type") == "Integer" and isinstance(field_value.get("integer"), int):
            values[str(value.get("name"))] = int(field_value["integer"])
    return values


def _false_condition(conditions: list[dict[str, Any]], kind: str) -> str:
    for item in conditions:
        if item.get("type") == kind and item.get("status") == "False":
            return f"{item.get('reason') or kind}: {item.get('message') or ''}".strip()
    return ""


def observe_manifest_work(item: Mapping[str, Any]) -> tuple[tuple[str, str], DeploymentObservation] | None:
    """((namespace, name), what the work agent reports) of the Deployment one of our
    ManifestWorks carries; None while the agent has reported nothing of it (the
    workload status then says it is being delivered)."""
    spec_manifests = ((item.get("spec") or {}).get("workload") or {}).get("manifests") or []
    deployment = next((m for m in spec_manifests if m.get("kind") == "Deployment"), None)
    if deployment is None:
        return None
    metadata = deployment.get("metadata") or {}
    key = (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
    status = item.get("status") or {}
    work_generation = int((item.get("metadata") or {}).get("generation") or 0)
    conditions = status.get("conditions") or []
    problem = _false_condition(conditions, "Applied")
    found = None
    for manifest in (status.get("resourceStatus") or {}).get("manifests") or []:
        meta = manifest.get("resourceMeta") or {}
        if meta.get("kind") == "Deployment" and (meta.get("namespace"), meta.get("name")) == key:
            found = manifest
    if found is not None:
        problem = problem or _false_condition(found.get("conditions") or [], "Applied")
    values = _feedback(found) if found is not None else {}
    if not values and not problem:
        return None
    wanted = int(((deployment.get("spec") or {}).get("replicas")) or 0)
    replicas = values.get(FEEDBACK_SPEC_REPLICAS, values.get("Replicas", 0))
    applied_generation = max(
        (int(c.get("observedGeneration") or 0) for c in conditions if c.get("type") == "Applied"), default=0
    )
    current = (
        applied_generation >= work_generation
        and replicas == wanted
        and values.get(FEEDBACK_OBSERVED_GENERATION, 0) >= values.get(FEEDBACK_GENERATION, 0)
    )
    ready = values.get(FEEDBACK_READY, 0)
    if ready >= replicas and replicas == wanted:
        problem = ""  # whatever was said before, every replica is ready now
    return key, DeploymentObservation(
        replicas=replicas,
        ready_replicas=ready,
        available_replicas=values.get(FEEDBACK_AVAILABLE, 0),
        current=current,
        problem=problem[:_MESSAGE_LIMIT],
    )


@dataclass(frozen=True)
class ManagedClusterHealth:
    """Whether work may be delivered to a ManagedCluster; ``reason`` a condition reason."""

    available: bool
    reason: str
    message: str


def managed_cluster_health(name: str, item: Mapping[str, Any] | None) -> ManagedClusterHealth:
    """Read a ManagedCluster (None: it does not exist) as meshplane's reachability."""
    if item is None:
        return ManagedClusterHealth(False, "ManagedClusterNotFound", f"no ManagedCluster {name} on the OCM hub")
    spec = item.get("spec") or {}
    if not spec.get("hubAcceptsClient"):
        return ManagedClusterHealth(False, "NotAccepted", f"ManagedCluster {name} is not accepted by the hub "
                                    "(spec.hubAcceptsClient is false)")
    conditions = (item.get("status") or {}).get("conditions") or []
    available = next((c for c in conditions if c.get("type") == CONDITION_CLUSTER_AVAILABLE), None)
    if available is None or available.get("status") == "Unknown":
        detail = (available or {}).get("message") or "the agent has not reported"
        return ManagedClusterHealth(False, "ManagedClusterAvailableUnknown", f"ManagedCluster {name}: {detail}")
    if available.get("status") != "True":
        detail = available.get("message") or available.get("reason") or "not available"
        return ManagedClusterHealth(False, "ManagedClusterUnavailable", f"ManagedCluster {name}: {detail}")
    for taint in spec.get("taints") or []:
        if taint.get("key") in UNREACHABLE_TAINTS:
            return ManagedClusterHealth(False, "Tainted", f"ManagedCluster {name} is tainted {taint.get('key')}")
    return ManagedClusterHealth(True, "Reachable", "")


# ----------------------------------------------------------------- placement scores for OCM


def _percent(free: float, total: float) -> int:
    """0-100: the free share (OCM scores are integers in [-100, 100]); 0 when nothing exists."""
    if total <= 0:
        return 0
    return max(0, min(100, round(100 * free / total)))


def placement_scores(sites: Mapping[str, SiteStatus]) -> list[dict[str, Any]]:
    """The scores of one ManagedCluster from its sites' statuses: ``freePowerPercent``
    and ``freeAcceleratorsPercent`` for all its sites together, then the same per site
    (``<site>.freePowerPercent``), sorted by name."""
    def figures(statuses: list[SiteStatus]) -> tuple[float, float, int, int]:
        free_mw = sum(s.power.available_mw for s in statuses if s.power)
        total_mw = free_mw + sum(s.power.allocated_mw for s in statuses if s.power)
        free_devices = sum(p.devices_available for s in statuses for p in s.pools)
        total_devices = free_devices + sum(p.devices_allocated for s in statuses for p in s.pools)
        return free_mw, total_mw, free_devices, total_devices

    scores: dict[str, int] = {}
    for prefix, group in [("", list(sites.values()))] + [(f"{name}.", [status]) for name, status in sites.items()]:
        free_mw, total_mw, free_devices, total_devices = figures(group)
        scores[prefix + SCORE_FREE_POWER] = _percent(free_mw, total_mw)
        scores[prefix + SCORE_FREE_ACCELERATORS] = _percent(free_devices, total_devices)
    return [{"name": name, "value": value} for name, value in sorted(scores.items())]


__all__ = [
    "CLUSTER_API_VERSION",
    "CLUSTER_GROUP",
    "CONDITION_CLUSTER_AVAILABLE",
    "PLACEMENT_SCORE_NAME",
    "SCORE_FREE_ACCELERATORS",
    "SCORE_FREE_POWER",
    "UNREACHABLE_TAINTS",
    "WORK_API_VERSION",
    "WORK_GROUP",
    "ManagedClusterHealth",
    "manifest_work_name",
    "manifest_works",
    "managed_cluster_health",
    "observe_manifest_work",
    "placement_scores",
]
