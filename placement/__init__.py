"""The placement engine: plain data in, decisions out.

Callers (the controller's reconcile core, ``meshctl plan``, benchmarks) build a
``placement.problem`` mesh and ask for a plan. Nothing here knows Kubernetes, kopf or
the HTTP API; the layering ``controller > placement > placement_ext`` is checked by
import-linter in the tests.

Modules, in pipeline order (each imports only those before it; no cycle):
``problem`` and ``decisions`` (public input and output), ``capacity``, ``topology``,
``snapshot``, ``candidates``, ``greedy``, ``kube_greedy``, ``lp_bound``, ``bound``,
``lp_round``, ``cpsat``, ``trim``, ``solve`` (the one solve sequence), ``partition``
(huge meshes), ``explain``, ``assign``, ``basis``, ``pipeline`` (cold and warm paths,
:func:`plan`).
"""

from placement.decisions import (
    Assignment,
    Plan,
    PoolUsage,
    SiteUsage,
    SolveStats,
    SolveStatus,
    WorkloadDecision,
)
from placement.pipeline import plan
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
    "SolveStatus",
    "SolverConfig",
    "UserRegion",
    "WorkloadDecision",
    "WorkloadDemand",
    "plan",
]
