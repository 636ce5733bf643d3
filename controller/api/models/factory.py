"""The ``AIFactory`` spec: a power-limited GPU data centre bound to one country's law.

Read by the CRD generator, by ``meshctl`` and by the reconcile core, which turns it
into a ``placement.problem.FactorySite``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from controller.api.models.base import (
    ApiModel,
    CountryCode,
    CrossFieldRule,
    MemberClusterName,
    ModelName,
    RegionName,
    list_map,
    unique_by,
)


class AcceleratorPool(ApiModel):
    """One homogeneous pool of accelerators in a factory."""

    model: ModelName = Field(
        description="Accelerator model of every device in the pool, e.g. nvidia-gb200. "
        "Workloads may restrict themselves to models by name."
    )
    count: int = Field(ge=1, le=10_000_000, description="Number of devices in the pool.")
    watts_per_device: float = Field(
        gt=0,
        le=100_000,
        description="IT power drawn by one busy device, host share included, in watts "
        "(before PUE).",
    )
    tokens_per_second_per_device: float = Field(
        gt=0,
        le=10_000_000,
        description="Sustained inference throughput of one device on the reference model, "
        "in tokens per second; converts token demand into devices.",
    )
    memory_gib: float = Field(
        gt=0, le=16_384, description="Accelerator memory per device, in GiB."
    )


class Link(ApiModel):
    """A network link from this site's region to another region of the topology."""

    to: RegionName = Field(description="Region at the other end of the link.")
    latency_ms: float = Field(
        ge=0, le=10_000, description="One-way latency of the link, in milliseconds."
    )
    bandwidth_gbps: float = Field(
        default=100.0, gt=0, le=1_000_000, description="Link bandwidth, in Gbit/s."
    )


class FactoryPower(ApiModel):
    """The factory's power budget and what its energy costs."""

    firm_mw: float = Field(
        ge=0,
        le=100_000,
        description="Firm (uninterruptible) grid power the factory may draw, in MW. "
        "Non-interruptible workloads are placed within firm power only.",
    )
    flexible_mw: float = Field(
        default=0.0,
        ge=0,
        le=100_000,
        description="Additional interruptible power (demand response), in MW, usable by "
        "interruptible workloads while the grid allows it.",
    )
    curtailed_mw: float = Field(
        default=0.0,
        ge=0,
        le=100_000,
        description="Flexible power withdrawn by a grid event now in force, in MW. "
        "Curtailment removes flexible power first and never exceeds it.",
    )
    pue: float = Field(
        default=1.2,
        ge=1.0,
        le=3.0,
        description="Power usage effectiveness: facility power / IT power (>= 1.0).",
    )
    price_per_mwh: float = Field(
        default=0.0, ge=0, le=100_000, description="Energy price, in USD per MWh."
    )
    carbon_grams_per_kwh: float = Field(
        default=0.0,
        ge=0,
        le=2_000,
        description="Carbon intensity of the factory's supply, in gCO2e per kWh.",
    )

    cross_field_rules = (
        CrossFieldRule(
            field="curtailedMW",
            cel="!has(self.curtailedMW) || self.curtailedMW <= (has(self.flexibleMW) ? self.flexibleMW : 0.0)",
            message="curtailedMW must not exceed flexibleMW: curtailment removes flexible power only",
            holds=lambda p: p.curtailed_mw <= p.flexible_mw,
        ),
        CrossFieldRule(
            field="firmMW",
            cel="self.firmMW + (has(self.flexibleMW) ? self.flexibleMW : 0.0) > 0.0",
            message="firmMW + flexibleMW must be greater than 0: a factory without power can run nothing",
            holds=lambda p: p.firm_mw + p.flexible_mw > 0,
        ),
    )


class AIFactorySpec(ApiModel):
    """Desired state of an AI factory: where it is, its power and its accelerators."""

    region: RegionName = Field(
        description="Region of the factory: a node of the topology graph that links and "
        "workload user regions refer to."
    )
    country: CountryCode = Field(
        description="ISO 3166-1 alpha-2 country whose law binds the factory; "
        "workload sovereignty rules are checked against it."
    )
    power: FactoryPower = Field(description="Power budget, energy price and carbon.")
    accelerator_pools: Annotated[
        list[AcceleratorPool],
        Field(min_length=1, max_length=32, json_schema_extra=list_map("model")),
        AfterValidator(unique_by("model")),
    ] = Field(description="Accelerator pools, one per device model (at least one).")
    links: Annotated[
        list[Link],
        Field(max_length=64, json_schema_extra=list_map("to")),
        AfterValidator(unique_by("to")),
    ] = Field(default_factory=list, description="Network links to other regions.")
    cordoned: bool = Field(
        default=False,
        description="When true, nothing new is placed here; placed workloads are moved "
        "away when the solver finds room elsewhere.",
    )
    member_cluster: MemberClusterName | None = Field(
        default=None,
        description="Name of the MemberCluster whose Kubernetes cluster runs this site's "
        "work. Absent: the cluster the operator runs in (local delivery). Several sites "
        "may share one member cluster; each is still pinned there by its "
        "meshplane.io/site node label.",
    )

    cross_field_rules = (
        CrossFieldRule(
            field="links",
            cel="!has(self.links) || self.links.all(l, l.to != self.region)",
            message="links must connect to other regions: a link to the factory's own region is meaningless",
            holds=lambda s: all(link.to != s.region for link in s.links),
        ),
    )
