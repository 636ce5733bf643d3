"""The API's response (and request) models: pydantic, snake_case in Python, camelCase
on the wire with units upper-case (``firmMW``, ``latencyMs``), as the CRDs spell them
(the same :func:`controller.api.models.base.to_api_name`).

Every endpoint returns one of these, so the OpenAPI document (``/api/v1/openapi.json``,
``docs/openapi.json``) describes exactly what is sent. Figures are the statuses'
rounded figures where a status carries them. Built by :mod:`controller.http.views`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from controller.api.models.base import to_api_name

SiteKind = Literal["AIFactory", "EdgeFleet"]
ClusterState = Literal["Unknown", "Reachable", "Unreachable", "Lost"]


class ApiView(BaseModel):
    """Base of every model here: camelCase aliases on the wire."""

    model_config = ConfigDict(alias_generator=to_api_name, populate_by_name=True)


class ErrorView(ApiView):
    """Every error: one line, never a traceback."""

    detail: str = Field(description="What went wrong, in one line.")


class VersionView(ApiView):
    version: int = Field(description="Increases with every new outcome; 0 before the first solve.")


class ConditionView(ApiView):
    type: str
    status: str
    reason: str
    message: str


class SitePower(ApiView):
    """Power of a site in MW. Fleets: ``firmMW`` is the fleet's cap (maxFleetMW)."""

    firm_mw: float
    flexible_mw: float
    curtailed_mw: float
    firm_allocated_mw: float
    flexible_allocated_mw: float
    firm_available_mw: float
    flexible_available_mw: float


class SitePool(ApiView):
    """One accelerator pool; fleets: devices online and opted in at the plan's time."""

    model: str
    devices_total: int
    devices_allocated: int
    devices_available: int


class OnlinePoint(ApiView):
    at: str = Field(description="RFC 3339 time (UTC).")
    devices: int = Field(description="Devices online and opted in at that time.")


class SiteView(ApiView):
    name: str
    kind: SiteKind
    region: str
    country: str
    cordoned: bool
    power: SitePower
    pools: list[SitePool]
    online_devices: int | None = Field(description="Fleets: devices online now; null for factories.")
    online_devices_next24h: list[OnlinePoint] = Field(
        description="Fleets: devices online at the plan's time and each of the next 23 hours; empty for factories."
    )
    tokens_per_second: float
    workload_count: int
    conditions: list[ConditionView]
    cluster: str = Field(
        default="local",
        description="Where the site's work is delivered: local (the operator's own cluster) or the name of "
        "the MemberCluster of its spec.memberCluster.",
    )


class ClusterView(ApiView):
    """A member cluster (a MemberCluster, or a name some site's spec.memberCluster gives) and
    whether it answers, as the operator last saw it."""

    name: str
    state: ClusterState = Field(
        description="Unknown until probed; Unreachable from the first failure; Lost once unreachable for its "
        "lostAfterSeconds (its sites then have no capacity)."
    )
    reason: str = Field(description="Reason of its Reachable condition (Reachable, Unreachable, Lost, ...).")
    message: str = Field(default="", description="Its Reachable condition's message, or the first error of the outage.")
    since: str | None = Field(default=None, description="When the state began (RFC 3339), if known.")
    last_seen: str | None = Field(default=None, description="The last time the cluster answered (RFC 3339), if ever.")
    sites: list[str] = Field(default_factory=list, description="Sites whose work this cluster runs, sorted.")
    defined: bool = Field(
        default=True, description="False when sites name this cluster but no MemberCluster of that name exists."
    )


class LinkView(ApiView):
    """A network link from a site to a region (the site's own region is reached at its uplink)."""

    from_: str = Field(alias="from", description="Site name.")
    to: str = Field(description="Region at the other end.")
    latency_ms: float


class MeshView(ApiView):
    version: int
    at: str
    sites: list[SiteView]
    links: list[LinkView]
    user_regions: list[str] = Field(description="Regions the workloads' users are in, sorted.")
    clusters: list[ClusterView] = Field(
        default_factory=list,
        description="The member clusters (local, the operator's own cluster, is not listed: sites with "
        "cluster local are delivered there).",
    )


class AssignmentView(ApiView):
    site: str
    kind: SiteKind
    accelerator_model: str
    devices: int
    power_mw: float
    tokens_per_second: float
    latency_ms: float | None
    cluster: str | None = Field(
        default=None, description="Where its Deployment runs: local or a MemberCluster; null when not delivered."
    )
    replicas: int | None = Field(default=None, description="Replicas of its Deployment; null when not delivered.")
    ready_replicas: int | None = Field(default=None, description="Ready replicas, as its cluster reports.")
    available_replicas: int | None = Field(default=None, description="Available replicas, as its cluster reports.")
    delivery_message: str | None = Field(
        default=None, description="Why it is not available yet (the cluster's words, or that it is unreachable)."
    )


class UserView(ApiView):
    region: str
    weight: float


class WorkloadView(ApiView):
    namespace: str
    name: str
    type: str
    priority: int
    interruptible: bool
    phase: str
    reason: str
    message: str
    sites: list[str]
    assignments: list[AssignmentView]
    power_mw: float
    tokens_per_second: float
    latency_ms: float | None
    users: list[UserView]
    ready: str | None = Field(
        default=None, description="Ready over desired replicas across every cluster, e.g. 3/4; null when not delivered."
    )
    available: ConditionView | None = Field(
        default=None,
        description="The Available condition (reasons Delivering, Progressing, Available, Degraded, "
        "ClusterUnreachable, NotPlaced); null when the workload is not delivered.",
    )


class CandidateView(ApiView):
    """A (site, pool) that passes every filter, with what serving the whole demand there costs."""

    site: str
    kind: SiteKind
    accelerator_model: str
    devices: float = Field(description="Devices that would serve the whole demand here.")
    latency_ms: float = Field(description="Worst latency from the users (0 without users).")
    cost: float = Field(description="The scoring pass's integer cost: energy x 1e6 + latency x 1e3 + stability.")


class ExplanationView(ApiView):
    rejections: dict[str, int] = Field(description="Sites rejected per filter (a site counts under one filter).")
    feasible_site_count: int
    feasible_sites: list[str]
    candidates: list[CandidateView] = Field(description="Feasible (site, pool) pairs, cheapest first.")
    displaced_by: list[str] = Field(description="Unplaced only: higher-priority workloads holding its capacity.")
    message: str = Field(description="The engine's reason, with what others hold now.")


class WorkloadDetail(WorkloadView):
    explanation: ExplanationView


class WorkloadList(ApiView):
    version: int
    items: list[WorkloadView]


class SolveView(ApiView):
    version: int
    at: str
    status: str
    objective: float
    bound: float
    gap: float
    solve_ms: float
    warm: bool
    placed_workloads: int
    workloads: int
    greedy_placed_priority_demand: float
    placed_priority_demand: float
    wall_limit_hit: bool
    stop_reason: str = ""  # why phase A stopped where it did, in words
    bound_method: str = ""  # how the bound was proven (LP, Lagrangian, CP-SAT over every pair)
    partitions: int = 0  # > 0: a partitioned solve of this many parts and a repair pass


class ChangeIn(ApiView):
    """One what-if change as JSON (the text form is ``'curtail us-memphis-1=200'``)."""

    model_config = ConfigDict(alias_generator=to_api_name, populate_by_name=True, extra="forbid")

    op: Literal["curtail", "cordon", "uncordon", "remove", "clock", "firm"]
    target: str = Field(default="", max_length=512)
    value: float | str | None = None
    start: str | None = Field(default=None, alias="from", max_length=64,
                              description="curtail only: a scheduled curtailment from this time (ISO 8601) ...")
    duration: str | None = Field(default=None, alias="for", max_length=64,
                                 description="... for this long (3h, 90m, PT3H).")


class PlanRequest(ApiView):
    """A what-if question: changes to the published mesh, extra manifests, another time."""

    model_config = ConfigDict(alias_generator=to_api_name, populate_by_name=True, extra="forbid")

    changes: list[str | ChangeIn] = Field(default_factory=list, max_length=1000)
    manifests: list[dict[str, Any]] = Field(default_factory=list, max_length=10_000)
    at: str | None = Field(default=None, description="Plan for this time (ISO 8601) instead of the published one.")


class PlanView(ApiView):
    workloads: list[WorkloadView]
    sites: list[SiteView]
    solve: SolveView


class PlanResponse(ApiView):
    plan: PlanView
    diff: dict[str, Any] = Field(description="controller.core.whatif.PlanDiff.to_dict(): what moved, per workload and site.")


class FactoryPointView(ApiView):
    """One factory at one instant of the timeline, in MW."""

    curtailed_mw: float = Field(description="Curtailment in force (the manual one and every grid event).")
    planned_curtailed_mw: float = Field(description="Curtailment planned with: events within their lead time.")
    usable_mw: float = Field(description="firm + flexible - curtailment in force.")
    allocated_mw: float = Field(description="Power the plan allocates.")
    driver: str | None = Field(default=None, description="The grid event behind the planned curtailment.")


class FactoryTimeline(ApiView):
    name: str
    firm_mw: float
    flexible_mw: float
    points: list[FactoryPointView] = Field(description="One per instant of the timeline.")


class FleetPointView(ApiView):
    online_devices: int
    allocated_mw: float


class FleetTimeline(ApiView):
    name: str
    points: list[FleetPointView] = Field(description="One per instant of the timeline.")


class PlannedMoveView(ApiView):
    at: str
    workload: str
    before_sites: list[str]
    after_sites: list[str]
    phase: str
    because: str = Field(description="The grid event or fleet window behind the move, when known.")


class GridEventView(ApiView):
    name: str
    factory: str
    phase: str
    start: str
    end: str
    lead_time: str
    peak_curtailed_mw: float
    limit_mw: float | None = None
    source: str = Field(description="manual, or openadr:<VTN name>.")
    moved_count: int = Field(default=0, description="Workloads moved or preempted for it so far (its status).")


class TimelineView(ApiView):
    """The next hours as the operator will plan them if nothing else changes: usable
    power and allocation per site at each instant it wakes at, and the moves then."""

    start: str
    end: str
    instants: list[str] = Field(description="The instants (RFC 3339): now, then every wake-up within the horizon.")
    truncated: bool = Field(description="True when the horizon holds more wake-ups than are planned.")
    factories: list[FactoryTimeline]
    fleets: list[FleetTimeline]
    moves: list[PlannedMoveView]
    events: list[GridEventView]
