"""The ``MeshWorkload`` spec: AI work to be placed somewhere in the mesh.

Read by the CRD generator, by ``meshctl`` and by the reconcile core, which turns it
into a ``placement.problem.WorkloadDemand``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from controller.api.models.base import (
    ApiModel,
    CountryCode,
    CrossFieldRule,
    ModelName,
    RegionName,
    check_unique_scalars,
    list_map,
    list_set,
    unique_by,
)

WorkloadType = Literal["training", "fine-tuning", "inference", "batch"]


class UserRegion(ApiModel):
    """A region the workload's users are in, with their share of the traffic."""

    region: RegionName = Field(description="Region of the topology graph the users are in.")
    weight: float = Field(
        default=1.0,
        ge=0,
        le=1_000_000,
        description="Relative share of traffic from this region; regions of weight 0 are ignored.",
    )


class LatencyTarget(ApiModel):
    """How close to its users the workload must run."""

    max_ms: float = Field(
        gt=0,
        le=100_000,
        description="Largest latency allowed from every user region of weight > 0 to a "
        "site, in ms (shortest path over the topology graph, fleet uplink included).",
    )
    users: Annotated[
        list[UserRegion],
        Field(min_length=1, max_length=64, json_schema_extra=list_map("region")),
        AfterValidator(unique_by("region")),
    ] = Field(description="User regions, with weights.")

    cross_field_rules = (
        CrossFieldRule(
            field="users",
            cel="self.users.exists(u, has(u.weight) ? u.weight > 0.0 : true)",
            message="users must include a region with weight > 0: the latency target needs someone to serve",
            holds=lambda t: any(u.weight > 0 for u in t.users),
        ),
    )


CountryList = Annotated[
    list[CountryCode],
    Field(max_length=249, json_schema_extra=list_set()),
    AfterValidator(check_unique_scalars),
]


class Sovereignty(ApiModel):
    """Where the workload's data and model may be processed."""

    allowed_countries: CountryList = Field(
        default_factory=list,
        description="ISO 3166-1 alpha-2 countries the workload may run in; empty means any.",
    )
    denied_countries: CountryList = Field(
        default_factory=list,
        description="ISO 3166-1 alpha-2 countries the workload must never run in.",
    )

    cross_field_rules = (
        CrossFieldRule(
            field="deniedCountries",
            cel="!has(self.allowedCountries) || !has(self.deniedCountries) || "
            "self.allowedCountries.all(c, !(c in self.deniedCountries))",
            message="deniedCountries must not repeat a country of allowedCountries",
            holds=lambda s: not set(s.allowed_countries) & set(s.denied_countries),
        ),
    )


class PlacementPolicy(ApiModel):
    """How the workload may be spread over sites."""

    allow_fleets: bool = Field(
        default=False,
        description="Whether edge fleets may run the workload (never for training).",
    )
    splittable: bool = Field(
        default=False,
        description="Whether the workload may be split across several sites; "
        "training is a gang and never splits.",
    )
    max_sites: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Largest number of sites a splittable workload may use.",
    )

    cross_field_rules = (
        CrossFieldRule(
            field="maxSites",
            cel="!has(self.maxSites) || self.maxSites == 1 || (has(self.splittable) && self.splittable)",
            message="maxSites greater than 1 needs splittable: true",
            holds=lambda p: p.max_sites == 1 or p.splittable,
        ),
    )


class MeshWorkloadSpec(ApiModel):
    """Desired state of a workload: what it needs and where it may run."""

    type: WorkloadType = Field(
        description="Kind of work: training (a gang, factories only), fine-tuning, inference or batch."
    )
    accelerators: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Demand as a number of devices. Set this or tokensPerSecond, not both.",
    )
    accelerator_models: Annotated[
        list[ModelName], Field(max_length=16, json_schema_extra=list_set()),
        AfterValidator(check_unique_scalars),
    ] = Field(default_factory=list, description="Accelerator models the workload may use; empty means any.")
    tokens_per_second: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000_000_000,
        description="Demand as inference throughput, in tokens per second, converted to "
        "devices through each site's per-device rate. Set this or accelerators, not both.",
    )
    min_memory_gib: float = Field(
        default=0.0, ge=0, le=16_384, description="Accelerator memory each device must have, in GiB."
    )
    latency: LatencyTarget | None = Field(
        default=None, description="Latency target from the users' regions; absent means none."
    )
    sovereignty: Sovereignty | None = Field(
        default=None, description="Countries the workload may or must not run in; absent means any."
    )
    placement: PlacementPolicy = Field(
        default_factory=PlacementPolicy, description="How the workload may be spread over sites."
    )
    interruptible: bool = Field(
        default=False,
        description="Whether the workload tolerates interruption, and so may run on "
        "flexible (interruptible) power and be preempted by a grid event.",
    )
    priority: int = Field(
        default=100,
        ge=0,
        le=1_000_000,
        description="Importance: higher-priority demand is placed first when power or devices run short.",
    )
    template: dict[str, Any] | None = Field(
        default=None,
        description="Optional pod template materialised at each assigned site.",
        json_schema_extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    )
    devices_per_replica: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="Devices each pod of the template uses: a site assigned N devices runs "
        "ceil(N / devicesPerReplica) replicas. Used only with template.",
    )

    cross_field_rules = (
        CrossFieldRule(
            field="accelerators",
            cel="has(self.accelerators) != has(self.tokensPerSecond)",
            message="set exactly one of accelerators or tokensPerSecond",
            holds=lambda s: (s.accelerators is None) != (s.tokens_per_second is None),
        ),
        CrossFieldRule(
            field="placement",
            cel="self.type != 'training' || !has(self.placement) || "
            "!has(self.placement.allowFleets) || !self.placement.allowFleets",
            message="placement.allowFleets must be false for training: training runs whole on one factory",
            holds=lambda s: s.type != "training" or not s.placement.allow_fleets,
        ),
        CrossFieldRule(
            field="placement",
            cel="self.type != 'training' || !has(self.placement) || "
            "!has(self.placement.splittable) || !self.placement.splittable",
            message="placement.splittable must be false for training: a training job is a gang on one site",
            holds=lambda s: s.type != "training" or not s.placement.splittable,
        ),
    )
