"""The ``EdgeFleet`` spec: many small opted-in devices online only part of the day.

Read by the CRD generator, by ``meshctl`` and by the reconcile core, which turns it
into a ``placement.problem.FleetSite``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from controller.api.models.base import (
    ApiModel,
    ClockTime,
    CountryCode,
    CrossFieldRule,
    MemberClusterName,
    ModelName,
    RegionName,
    TimeZoneName,
    list_map,
    unique_by,
)
from controller.api.models.factory import Link

DeviceClass = Literal["vehicle", "robot", "drone", "home-cluster", "phone", "edge-server"]


class PerDevice(ApiModel):
    """What one device of the fleet offers when it is online."""

    accelerator_model: ModelName = Field(
        description="Accelerator model of the devices, e.g. tesla-ai5 or nvidia-rtx-5090."
    )
    tokens_per_second: float = Field(
        gt=0, le=10_000_000, description="Inference throughput of one device, in tokens per second."
    )
    watts: float = Field(
        gt=0, le=100_000, description="Power one busy device draws, in watts."
    )
    memory_gib: float = Field(gt=0, le=16_384, description="Accelerator memory per device, in GiB.")


class AvailabilityWindow(ApiModel):
    """A daily window in which a share of the fleet is online and idle."""

    start: ClockTime = Field(description="Local start time, HH:MM (24 h).")
    end: ClockTime = Field(
        description="Local end time, HH:MM (24 h); earlier than start means the window "
        "runs past midnight (22:00-06:00)."
    )
    timezone: TimeZoneName = Field(
        default="UTC", description="IANA time zone of start and end, e.g. America/Los_Angeles."
    )
    online_ratio: float = Field(
        ge=0, le=1, description="Share of opted-in devices online and idle in the window (0..1)."
    )

    cross_field_rules = (
        CrossFieldRule(
            field="end",
            cel="self.start != self.end",
            message="end must differ from start: a window of zero length is never open",
            holds=lambda w: w.start != w.end,
        ),
    )


class Uplink(ApiModel):
    """How the fleet's devices reach the network of its region."""

    latency_ms: float = Field(
        ge=0, le=10_000, description="Latency from a device to its region's network, in ms."
    )
    bandwidth_mbps: float = Field(
        default=100.0, gt=0, le=1_000_000, description="Uplink bandwidth per device, in Mbit/s."
    )


class EdgeFleetSpec(ApiModel):
    """Desired state of an edge fleet: how many devices, what each offers and when."""

    region: RegionName = Field(description="Region the fleet's devices are in: a node of the topology graph.")
    country: CountryCode = Field(
        description="ISO 3166-1 alpha-2 country of the devices; sovereignty rules are checked against it."
    )
    device_class: DeviceClass = Field(description="Kind of device: vehicle, robot, drone, home-cluster, phone or edge-server.")
    devices: int = Field(ge=1, le=1_000_000_000, description="Number of devices enrolled in the fleet.")
    opt_in_ratio: float = Field(
        ge=0, le=1, description="Share of enrolled devices whose owners opted in to share compute (0..1)."
    )
    per_device: PerDevice = Field(description="Throughput, power and memory of one device.")
    availability: Annotated[list[AvailabilityWindow], Field(max_length=24)] = Field(
        default_factory=list,
        description="Daily windows when devices are online; outside every window none is. "
        "Empty means always online.",
    )
    max_fleet_mw: float = Field(
        gt=0,
        le=100_000,
        description="Cap on the fleet's total draw, in MW (e.g. agreed with the grid or the owners).",
    )
    uplink: Uplink = Field(description="Network path from the devices to their region.")
    links: Annotated[
        list[Link],
        Field(max_length=64, json_schema_extra=list_map("to")),
        AfterValidator(unique_by("to")),
    ] = Field(default_factory=list, description="Network links from the fleet's region to other regions.")
    price_per_mwh: float = Field(
        default=0.0, ge=0, le=100_000, description="Price paid to owners per MWh used, in USD."
    )
    carbon_grams_per_kwh: float = Field(
        default=0.0, ge=0, le=2_000, description="Carbon intensity of the devices' supply, in gCO2e per kWh."
    )
    cordoned: bool = Field(default=False, description="When true, nothing new is placed on the fleet.")
    member_cluster: MemberClusterName | None = Field(
        default=None,
        description="Name of the MemberCluster (e.g. the fleet's gateway cluster) that runs "
        "this fleet's work. Absent: the cluster the operator runs in (local delivery).",
    )

    cross_field_rules = (
        CrossFieldRule(
            field="links",
            cel="!has(self.links) || self.links.all(l, l.to != self.region)",
            message="links must connect to other regions: a link to the fleet's own region is meaningless",
            holds=lambda s: all(link.to != s.region for link in s.links),
        ),
    )
