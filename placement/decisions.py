"""The engine's output: a :class:`Plan` of per-workload decisions and per-site usage.

Built by :mod:`placement.pipeline` (the ``assign`` step); read by the controller
(status patches, events), ``meshctl plan``, the dashboard and the benchmarks. Plain
dataclasses, units in field names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PHASE_PLACED = "Placed"
PHASE_UNSCHEDULABLE = "Unschedulable"
PHASE_PENDING = "Pending"

KIND_FACTORY = "AIFactory"
KIND_FLEET = "EdgeFleet"


@dataclass(slots=True)
class Assignment:
    """Devices of one site (one accelerator pool of it) given to a workload."""

    site: str
    kind: str  # "AIFactory" | "EdgeFleet"
    accelerator_model: str
    devices: int
    tokens_per_second: float
    power_mw: float  # facility power (x PUE for factories)
    latency_ms: float  # demand-weighted user latency to this site (0 without users)


@dataclass(slots=True)
class WorkloadDecision:
    """Where one workload runs, or why it does not."""

    key: str
    phase: str  # "Placed" | "Unschedulable"
    assignments: list[Assignment] = field(default_factory=list)
    message: str = ""  # one line, kube-scheduler style
    # sites rejected per filter ("latency", "country not allowed", ...); a site is
    # counted once, under the first filter that rejected all its pools.
    rejections: dict[str, int] = field(default_factory=dict)
    feasible_sites: int = 0  # sites passing every filter

    @property
    def devices(self) -> int:
        return sum(a.devices for a in self.assignments)

    @property
    def tokens_per_second(self) -> float:
        return sum(a.tokens_per_second for a in self.assignments)

    @property
    def power_mw(self) -> float:
        return sum(a.power_mw for a in self.assignments)


@dataclass(slots=True)
class PoolUsage:
    model: str
    devices_used: int
    devices_total: int  # effective (fleets: devices x opt-in x online ratio now)


@dataclass(slots=True)
class SiteUsage:
    """Allocated and available capacity of one site after the plan."""

    name: str
    kind: str
    firm_mw_used: float
    firm_mw_available: float
    flexible_mw_used: float
    flexible_mw_available: float  # max(0, flexible - curtailed); fleets: 0
    pools: list[PoolUsage] = field(default_factory=list)
    tokens_per_second: float = 0.0
    tokens_per_joule: float = 0.0  # tokens/s / facility watts used (0 if idle)
    workload_count: int = 0

    @property
    def power_mw_used(self) -> float:
        return self.firm_mw_used + self.flexible_mw_used

    @property
    def devices_used(self) -> int:
        return sum(p.devices_used for p in self.pools)

    @property
    def devices_total(self) -> int:
        return sum(p.devices_total for p in self.pools)


@dataclass(slots=True)
class SolveStats:
    """How the solve went; every plan reports its own optimality gap.

    ``objective`` and ``bound`` are in the solver's integer objective units (see
    docs/placement.md), both maximised; ``gap = (bound - objective) / max(1, |bound|)``.
    ``placed_priority_demand`` is the first (dominant) tier alone: sum over placed
    workloads of weight(priority) x demand units; ``greedy_...`` is the same for the
    greedy placement, which the plan never goes below.
    """

    objective: float = 0.0
    bound: float = 0.0
    gap: float = 0.0
    status: str = "NOT_SOLVED"  # CP-SAT status name, "GREEDY" or "EMPTY"
    wall_ms: float = 0.0
    fallback_used: bool = False
    num_candidates: int = 0
    num_workloads: int = 0
    num_site_columns: int = 0
    placed_workloads: int = 0
    placed_priority_demand: float = 0.0
    greedy_objective: float = 0.0
    greedy_placed_priority_demand: float = 0.0
    bound_method: str = ""  # see placement.bound.BOUND_METHOD; "" when not computed
    cost: float = 0.0  # phase-B objective (energy >> latency >> stability), lower is better
    kernel_ms: float = 0.0
    cpsat_ms: float = 0.0
    bound_ms: float = 0.0  # time spent on the bound
    bound_iterations: int = 0  # subgradient steps of the Lagrangian bound
    warm: bool = False  # incremental re-solve from ``previous`` (placement.incremental)
    fixed_workloads: int = 0  # warm: workloads whose previous assignment was kept as is
    resolved_workloads: int = 0  # warm: changed + new + previously unplaced, re-solved


@dataclass(slots=True)
class Plan:
    workloads: dict[str, WorkloadDecision] = field(default_factory=dict)
    sites: dict[str, SiteUsage] = field(default_factory=dict)
    stats: SolveStats = field(default_factory=SolveStats)
    # Engine-private memo for a warm re-solve (``plan(..., previous=this)``): site and
    # workload fingerprints, chosen columns and bound multipliers
    # (:class:`placement.incremental.Basis`). Not part of the output contract.
    basis: object = field(default=None, repr=False, compare=False)
