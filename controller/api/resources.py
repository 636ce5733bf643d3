"""Kubernetes wrappers around the domain models, and the registry of our kinds.

``KINDS`` says, for each resource kind, its names, scope, spec and status models and
printer columns. The CRD generator, the manifest loader and (later) the kopf adapter
all read it, so adding a field or a column happens in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from controller.api.models import (
    AIFactorySpec,
    EdgeFleetSpec,
    GridEventSpec,
    GridEventStatus,
    MemberClusterSpec,
    MemberClusterStatus,
    MeshWorkloadSpec,
    MeshWorkloadStatus,
    SiteStatus,
)
from controller.api.models.base import ApiModel

GROUP = "meshplane.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "meshplane"

_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


class ObjectMeta(BaseModel):
    """The part of metav1.ObjectMeta meshplane reads; other keys are kept as they are."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str = Field(min_length=1, max_length=253, pattern=_DNS_SUBDOMAIN)
    namespace: str | None = Field(default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


SpecT = TypeVar("SpecT", bound=ApiModel)
StatusT = TypeVar("StatusT", bound=ApiModel)


class Resource(BaseModel, Generic[SpecT, StatusT]):
    """A whole object: apiVersion, kind, metadata, spec and (optional) status."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    api_version: Literal["meshplane.io/v1alpha1"] = Field(alias="apiVersion")
    kind: str
    metadata: ObjectMeta
    spec: SpecT
    status: StatusT | None = None

    @property
    def key(self) -> str:
        """``namespace/name`` for namespaced objects, ``name`` for cluster-scoped ones."""
        meta = self.metadata
        return f"{meta.namespace}/{meta.name}" if meta.namespace else meta.name


class AIFactory(Resource[AIFactorySpec, SiteStatus]):
    kind: Literal["AIFactory"]


class EdgeFleet(Resource[EdgeFleetSpec, SiteStatus]):
    kind: Literal["EdgeFleet"]


class MeshWorkload(Resource[MeshWorkloadSpec, MeshWorkloadStatus]):
    kind: Literal["MeshWorkload"]


class MemberCluster(Resource[MemberClusterSpec, MemberClusterStatus]):
    kind: Literal["MemberCluster"]


class GridEvent(Resource[GridEventSpec, GridEventStatus]):
    kind: Literal["GridEvent"]


AnyResource = AIFactory | EdgeFleet | MeshWorkload | MemberCluster | GridEvent
"""Any resource of ours, as parsed."""


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    description: str
    priority: int = 0

    def as_crd(self) -> dict[str, Any]:
        column: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "jsonPath": self.json_path,
            "description": self.description,
        }
        if self.priority:
            column["priority"] = self.priority
        return column


_AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date", "Time since creation.")


@dataclass(frozen=True)
class KindInfo:
    """Everything generated or looked up per kind."""

    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    scope: Literal["Cluster", "Namespaced"]
    resource_model: type[AnyResource]
    spec_model: type[ApiModel]
    status_model: type[ApiModel]
    printer_columns: tuple[PrinterColumn, ...]
    description: str

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"


KINDS: dict[str, KindInfo] = {
    info.kind: info
    for info in (
        KindInfo(
            kind="AIFactory",
            plural="aifactories",
            singular="aifactory",
            short_names=("aif", "factory"),
            scope="Cluster",
            resource_model=AIFactory,
            spec_model=AIFactorySpec,
            status_model=SiteStatus,
            description="A power-limited GPU data centre bound to one country's law.",
            printer_columns=(
                PrinterColumn("Region", ".spec.region", "string", "Region of the topology graph."),
                PrinterColumn("Country", ".spec.country", "string", "ISO 3166-1 alpha-2 country."),
                PrinterColumn("Used MW", ".status.power.allocatedMW", "number", "Power allocated, in MW."),
                PrinterColumn("Free MW", ".status.power.availableMW", "number", "Power still free, in MW."),
                PrinterColumn("Cluster", ".spec.memberCluster", "string",
                              "MemberCluster running its work (empty: local).", priority=1),
                PrinterColumn("Workloads", ".status.workloadCount", "integer", "Workloads placed here.", priority=1),
                PrinterColumn("Tokens/J", ".status.tokensPerJoule", "number", "Tokens per joule.", priority=1),
                _AGE,
            ),
        ),
        KindInfo(
            kind="EdgeFleet",
            plural="edgefleets",
            singular="edgefleet",
            short_names=("ef", "fleet"),
            scope="Cluster",
            resource_model=EdgeFleet,
            spec_model=EdgeFleetSpec,
            status_model=SiteStatus,
            description="Opted-in edge devices (cars, robots, home GPU clusters) online part of the day.",
            printer_columns=(
                PrinterColumn("Region", ".spec.region", "string", "Region of the topology graph."),
                PrinterColumn("Class", ".spec.deviceClass", "string", "Kind of device."),
                PrinterColumn("Devices", ".spec.devices", "integer", "Devices enrolled."),
                PrinterColumn("Online", ".status.onlineDevices", "integer", "Devices online and opted in now."),
                PrinterColumn("Power MW", ".status.power.allocatedMW", "number", "Power allocated, in MW."),
                PrinterColumn("Cluster", ".spec.memberCluster", "string",
                              "MemberCluster running its work (empty: local).", priority=1),
                _AGE,
            ),
        ),
        KindInfo(
            kind="MeshWorkload",
            plural="meshworkloads",
            singular="meshworkload",
            short_names=("mwl",),
            scope="Namespaced",
            resource_model=MeshWorkload,
            spec_model=MeshWorkloadSpec,
            status_model=MeshWorkloadStatus,
            description="AI work (training, fine-tuning, inference, batch) placed by meshplane.",
            printer_columns=(
                PrinterColumn("Type", ".spec.type", "string", "Kind of work."),
                PrinterColumn("Phase", ".status.phase", "string", "Pending, Placed, Unschedulable or Preempted."),
                PrinterColumn("Sites", ".status.sites", "string", "Assigned sites."),
                PrinterColumn("Ready", ".status.ready", "string", "Ready over desired replicas, all clusters."),
                PrinterColumn("Power MW", ".status.powerMW", "number", "Facility power assigned, in MW."),
                PrinterColumn("Latency ms", ".status.latencyMs", "number", "Worst user latency, in ms."),
                PrinterColumn("Message", ".status.message", "string", "Why not placed.", priority=1),
                _AGE,
            ),
        ),
        KindInfo(
            kind="MemberCluster",
            plural="memberclusters",
            singular="membercluster",
            short_names=("mcluster",),
            scope="Cluster",
            resource_model=MemberCluster,
            spec_model=MemberClusterSpec,
            status_model=MemberClusterStatus,
            description="A Kubernetes cluster that runs the work of the sites naming it.",
            printer_columns=(
                PrinterColumn("Reachable", '.status.conditions[?(@.type=="Reachable")].status', "string",
                              "Whether the cluster answers."),
                PrinterColumn("Reason", '.status.conditions[?(@.type=="Reachable")].reason', "string",
                              "Reachable, Unreachable, Lost, InvalidKubeconfig, SecretNotFound."),
                PrinterColumn("Sites", ".status.sites", "string", "Sites whose work it runs."),
                PrinterColumn("Last seen", ".status.lastSeenTime", "date", "While unreachable: last answer.",
                              priority=1),
                _AGE,
            ),
        ),
        KindInfo(
            kind="GridEvent",
            plural="gridevents",
            singular="gridevent",
            short_names=("gev",),
            scope="Cluster",
            resource_model=GridEvent,
            spec_model=GridEventSpec,
            status_model=GridEventStatus,
            description="A curtailment of one factory's grid import announced ahead of time (manual or OpenADR).",
            printer_columns=(
                PrinterColumn("Factory", ".spec.factory", "string", "AIFactory it applies to."),
                PrinterColumn("Phase", ".status.phase", "string",
                              "Scheduled, Preparing, Active, Restoring, Completed or Cancelled."),
                # strings, not dates: kubectl prints a future date as <invalid>
                PrinterColumn("Start", ".status.start", "string", "Start of the first interval (UTC)."),
                PrinterColumn("End", ".status.end", "string", "End of the last interval (UTC)."),
                PrinterColumn("Limit MW", ".status.limitMW", "number", "Lowest import limit asked for, in MW."),
                PrinterColumn("Curtailed MW", ".status.curtailedMW", "number", "Curtailment in force now, in MW."),
                PrinterColumn("Moved", ".status.movedCount", "integer", "Workloads moved or preempted for it."),
                PrinterColumn("Source", ".spec.source.openadr.vtn", "string", "VTN it came from (empty: manual).",
                              priority=1),
                _AGE,
            ),
        ),
    )
}
