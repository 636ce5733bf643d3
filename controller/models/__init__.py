"""Domain models of the three meshplane resources: the single source of truth.

The CRDs in ``crds/`` are generated from these models (``meshctl crds``), and a test
fails when they drift. Specs and statuses are plain pydantic; the Kubernetes wrappers
(apiVersion, kind, metadata) are in ``controller.resources``.
"""

from controller.models.factory import AcceleratorPool, AIFactorySpec, FactoryPower, Link
from controller.models.fleet import AvailabilityWindow, EdgeFleetSpec, PerDevice, Uplink
from controller.models.status import (
    Assignment,
    Condition,
    PoolStatus,
    PowerStatus,
    SiteStatus,
    SolverFigures,
    WorkloadStatus,
)
from controller.models.workload import (
    LatencyTarget,
    PlacementPolicy,
    Sovereignty,
    UserRegion,
    WorkloadSpec,
)

__all__ = [
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
    "SolverFigures",
    "Sovereignty",
    "Uplink",
    "UserRegion",
    "WorkloadSpec",
    "WorkloadStatus",
]
