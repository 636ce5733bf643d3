"""The placement engine: plain data in, decisions out.

Callers (the controller's reconcile core, ``meshctl plan``, benchmarks) build a
``placement.problem`` mesh and ask for a plan. Nothing here knows Kubernetes, kopf or
the HTTP API; the layering ``controller > placement > placement_ext`` is checked by
import-linter in the tests.
"""

from placement.decisions import (
    Assignment,
    Plan,
    PoolUsage,
    SiteUsage,
    SolveStats,
    WorkloadDecision,
)
from placement.problem import (
    AcceleratorPool,
    AvailabilityWindow,
    CurrentAssignment,
    FactorySite,
    FleetSite,
    Link,
    Mesh,
    SolverConfig,
    UserRegion,
    WorkloadDemand,
)
from placement.pipeline import plan

__all__ = [
    "AcceleratorPool",
    "Assignment",
    "AvailabilityWindow",
    "CurrentAssignment",
    "FactorySite",
    "FleetSite",
    "Link",
    "Mesh",
    "Plan",
    "PoolUsage",
    "SiteUsage",
    "SolveStats",
    "SolverConfig",
    "UserRegion",
    "WorkloadDecision",
    "WorkloadDemand",
    "plan",
]
