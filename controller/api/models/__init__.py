"""Domain models of the meshplane resources: the single source of truth.

The CRDs in ``crds/`` are generated from these models (``meshctl crds``), and a test
fails when they drift. Specs and statuses are plain pydantic; the Kubernetes wrappers
(apiVersion, kind, metadata) are in ``controller.api.resources``.
"""

from controller.api.models.cluster import (
    DirectDelivery,
    MemberClusterSpec,
    MemberClusterStatus,
    OcmDelivery,
    SecretKeyRef,
)
from controller.api.models.factory import AcceleratorPool, AIFactorySpec, FactoryPower, Link
from controller.api.models.fleet import AvailabilityWindow, EdgeFleetSpec, PerDevice, Uplink
from controller.api.models.grid import (
    CurtailmentStep,
    GridEventPhase,
    GridEventSource,
    GridEventSpec,
    GridEventStatus,
    GridInterval,
    GridReport,
    OpenAdrSource,
    RestoreRamp,
)
from controller.api.models.status import (
    Assignment,
    Condition,
    MeshWorkloadStatus,
    PoolStatus,
    PowerStatus,
    SiteStatus,
    WorkloadPhase,
)
from controller.api.models.workload import (
    LatencyTarget,
    MeshWorkloadSpec,
    PlacementPolicy,
    Sovereignty,
    UserRegion,
)

__all__ = [
    "CurtailmentStep",
    "GridEventPhase",
    "GridEventSource",
    "GridEventSpec",
    "GridEventStatus",
    "GridInterval",
    "GridReport",
    "OpenAdrSource",
    "RestoreRamp",
    "DirectDelivery",
    "OcmDelivery",
    "MemberClusterSpec",
    "MemberClusterStatus",
    "SecretKeyRef",
    "AIFactorySpec",
    "AcceleratorPool",
    "Assignment",
    "AvailabilityWindow",
    "Condition",
    "EdgeFleetSpec",
    "FactoryPower",
    "LatencyTarget",
    "Link",
    "PerDevice",
    "PlacementPolicy",
    "PoolStatus",
    "PowerStatus",
    "SiteStatus",
    "Sovereignty",
    "Uplink",
    "UserRegion",
    "MeshWorkloadSpec",
    "WorkloadPhase",
    "MeshWorkloadStatus",
]
