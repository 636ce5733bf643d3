"""Status models the operator writes and ``meshctl plan -o json`` prints.

Filled by ``controller.core.reconcile`` from the placement engine's decisions; the CRD
generator turns them into the ``status`` schema of each CRD.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from controller.api.models.base import CONDITION_REASON_PATTERN, ApiModel


class Condition(ApiModel):
    """A condition in the shape of metav1.Condition."""

    type: str = Field(max_length=316, description="Type of the condition, e.g. Placed or Ready.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(
        max_length=1024,
        pattern=CONDITION_REASON_PATTERN,
        description="Machine-readable CamelCase reason for the last transition.",
    )
    message: str = Field(default="", max_length=32_768, description="Human-readable detail.")
    last_transition_time: str = Field(
        description="When the status last changed (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the condition was computed for."
    )


class PowerStatus(ApiModel):
    """Power allocated and left at a site, in MW (facility power, PUE included)."""

    firm_allocated_mw: float = Field(default=0.0, description="Firm power allocated, in MW.")
    flexible_allocated_mw: float = Field(default=0.0, description="Flexible power allocated, in MW.")
    allocated_mw: float = Field(default=0.0, description="All power allocated, in MW.")
    firm_available_mw: float = Field(default=0.0, description="Firm power still free, in MW.")
    flexible_available_mw: float = Field(
        default=0.0, description="Flexible power still free after curtailment, in MW."
    )
    available_mw: float = Field(default=0.0, description="All power still free, in MW.")


class PoolStatus(ApiModel):
    """Devices of one accelerator model allocated at a site."""

    model: str = Field(max_length=63, description="Accelerator model.")
    devices_allocated: int = Field(default=0, ge=0, description="Devices allocated to workloads.")
    devices_available: int = Field(default=0, ge=0, description="Devices still free (online, for a fleet).")


class SiteStatus(ApiModel):
    """Observed state of a site (an AI factory or an edge fleet)."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status was computed for."
    )
    power: PowerStatus | None = Field(default=None, description="Power allocated and free.")
    pools: list[PoolStatus] = Field(
        default_factory=list, max_length=32, description="Devices allocated and free per accelerator model."
    )
    online_devices: int | None = Field(
        default=None,
        ge=0,
        description="Edge fleets: devices online and opted in at the plan's time "
        "(devices x optInRatio x onlineRatio).",
    )
    tokens_per_second: float = Field(default=0.0, description="Throughput of the workloads placed here, in tokens per second.")
    tokens_per_joule: float = Field(default=0.0, description="Tokens per joule of facility energy of the placed work.")
    workload_count: int = Field(default=0, ge=0, description="Number of workloads with devices here.")
    conditions: list[Condition] = Field(
        default_factory=list, max_length=16,
        description="Conditions: Ready, Cordoned, and Curtailed (factories) or Offline (fleets); "
        "Reachable for a site delivered to a MemberCluster.",
    )


class Assignment(ApiModel):
    """Devices of one site given to a workload."""

    site: str = Field(max_length=253, description="Name of the AIFactory or EdgeFleet.")
    kind: Literal["AIFactory", "EdgeFleet"] = Field(description="Kind of the site.")
    accelerator_model: str = Field(max_length=63, description="Accelerator model of the devices.")
    devices: int = Field(ge=0, description="Devices assigned.")
    tokens_per_second: float = Field(default=0.0, description="Throughput of the assigned devices, in tokens per second.")
    power_mw: float = Field(default=0.0, description="Facility power of the assigned devices, in MW.")
    latency_ms: float | None = Field(
        default=None,
        description="Worst latency from the workload's user regions (weight > 0) to the site, in ms; "
        "the value the latency target is checked against. Absent without a latency target.",
    )
    mean_latency_ms: float | None = Field(
        default=None, description="Traffic-weighted mean latency from the user regions to the site, in ms."
    )
    cluster: str | None = Field(
        default=None, max_length=63,
        description="Where the assignment's Deployment runs: local (the operator's cluster) or the "
        "name of a MemberCluster. Absent for a workload without a pod template.",
    )
    replicas: int | None = Field(
        default=None, ge=0, description="Replicas of the assignment's Deployment (ceil(devices / devicesPerReplica))."
    )
    ready_replicas: int | None = Field(
        default=None, ge=0, description="Ready replicas, as the cluster that runs them reports."
    )
    available_replicas: int | None = Field(
        default=None, ge=0, description="Available replicas, as the cluster that runs them reports."
    )
    delivery_message: str | None = Field(
        default=None, max_length=4096,
        description="Why the assignment is not available yet, in the cluster's own words when it says "
        "(image pull errors, unschedulable pods, quota), or that the cluster is unreachable.",
    )


WorkloadPhase = Literal["Pending", "Placed", "Unschedulable", "Preempted"]


class MeshWorkloadStatus(ApiModel):
    """Observed state of a workload: where it runs, or why it does not."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this status was computed for."
    )
    phase: WorkloadPhase = Field(
        default="Pending",
        description="Pending (not solved yet), Placed, Unschedulable (no site can take it whole) or "
        "Preempted (was placed and lost its place to higher-priority work, a curtailment, a cordon "
        "or a removed site).",
    )
    assignments: list[Assignment] = Field(
        default_factory=list, max_length=64, description="Devices assigned per site."
    )
    sites: str = Field(default="", max_length=4096, description="Comma-separated names of the assigned sites.")
    power_mw: float = Field(default=0.0, description="Facility power of all assigned devices, in MW.")
    latency_ms: float | None = Field(
        default=None, description="Worst user latency over the assigned sites, in ms."
    )
    tokens_per_second: float = Field(default=0.0, description="Throughput of all assigned devices, in tokens per second.")
    message: str = Field(
        default="",
        max_length=32_768,
        description="Where it runs, or why it does not, counted per filter as kube-scheduler does, "
        "e.g. '0/12 sites fit: 7 latency > 50 ms, 3 country not allowed, 2 insufficient power'.",
    )
    ready: str | None = Field(
        default=None, max_length=64,
        description="Ready replicas over desired replicas across every cluster, e.g. 3/4 (workloads "
        "with a pod template).",
    )
    conditions: list[Condition] = Field(
        default_factory=list, max_length=16,
        description="Conditions: Placed, and Available for workloads with a pod template (reasons "
        "Delivering, Progressing, Available, Degraded, ClusterUnreachable).",
    )
