"""The engine's output: a :class:`Plan` of per-workload decisions and per-site usage.

Built by :mod:`placement.assign` (decisions, usage, reasons) and
:mod:`placement.pipeline` (the solve statistics); read by the controller (status
patches, events), ``meshctl plan``, the dashboard and the benchmarks. Plain
dataclasses, units in field names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the basis is built from the engine's arrays: imported for its type only
    from placement.basis import Basis

PHASE_PLACED = "Placed"
PHASE_UNSCHEDULABLE = "Unschedulable"

KIND_FACTORY = "AIFactory"
KIND_FLEET = "EdgeFleet"


class SolveStatus(StrEnum):
    """How the solve ended. A ``str``: prints and compares as its text.

    Whether it was a warm re-solve is :attr:`SolveStats.warm`, not part of the status.
    """

    NOT_SOLVED = "NOT_SOLVED"
    EMPTY = "EMPTY"  # nothing to decide: no workload, or no workload with a feasible site
    OPTIMAL = "OPTIMAL"  # CP-SAT proved phase A (placed priority-weighted demand) optimal
    AT_TARGET = "AT_TARGET"  # phase A stopped within target_gap of the upper bound
    HINT_AT_TARGET = "HINT_AT_TARGET"  # the greedy hint was already within target_gap: phase B only
    FEASIBLE = "FEASIBLE"  # phase A used its whole deterministic budget without a proof
    NO_SOLUTION = "NO_SOLUTION"  # CP-SAT returned no solution: the hint is the plan
    GREEDY = "GREEDY"  # use_cpsat=False: the best greedy placement is the plan
    TOO_MANY_CANDIDATES = "TOO_MANY_CANDIDATES"  # beyond WorkBudgets.cpsat_max_candidates: the hint is the plan
    ERROR = "ERROR"  # CP-SAT raised (SolveStats.error): the hint is the plan


class FloorRepair(StrEnum):
    """Which step of the warm path's floor stage (:mod:`placement.warm`, stage 5) lifted
    a warm plan that fell more than ``WorkBudgets.warm_floor_gap`` below the
    kube-scheduler-style floor. A ``str``: prints and compares as its text."""

    NONE = ""  # no repair ran (cold, or the warm plan was within the gap)
    PREEMPTION = "preemption"  # the floor's own preemptions (warm.preempt_toward_floor)
    IN_PLACE = "in-place"  # the floor's greedy, each workload first where it is (warm.in_place_toward_floor)
    RESOLVE = "re-solve"  # every workload the floor places differently re-solved (warm.toward_floor)


@dataclass(slots=True)
class Assignment:
    """Devices of one site (one accelerator pool of it) given to a workload."""

    site: str
    kind: str  # "AIFactory" | "EdgeFleet"
    accelerator_model: str
    devices: int
    tokens_per_second: float
    power_mw: float  # facility power (x PUE for factories)
    # Worst latency from the workload's user regions of weight > 0 to this site (what
    # the latency filter checks against maxMs); None when the workload names no users.
    latency_ms: float | None = None
    # Demand-weighted mean latency over those regions (the latency tier of the cost).
    mean_latency_ms: float | None = None


@dataclass(slots=True)
class WorkloadDecision:
    """Where one workload runs, or why it does not."""

    key: str
    phase: str  # "Placed" | "Unschedulable"
    assignments: list[Assignment] = field(default_factory=list)
    message: str = ""  # one line, kube-scheduler style, with the numbers that decided it
    # the same, less what depends on other workloads' placements (their free capacity,
    # who holds it): what a status may say without changing whenever others move
    status_message: str = ""
    # sites rejected per filter ("latency", "country not allowed", ...); a site is
    # counted once, under the furthest filter its best pool reached.
    rejections: dict[str, int] = field(default_factory=dict)
    feasible_sites: int = 0  # sites passing every filter (on the empty mesh)
    # Unplaced only: keys of placed workloads of higher priority on the sites of its
    # current assignment or on its feasible sites whose capacity ran out, highest
    # priority first (then by key), at most placement.explain.DISPLACED_BY_LIMIT (10)
    # of them (the message counts them all); e.g. to report "preempted by
    # research/frontier-pretrain".
    displaced_by: tuple[str, ...] = ()

    @property
    def devices(self) -> int:
        return sum(a.devices for a in self.assignments)

    @property
    def tokens_per_second(self) -> float:
        return sum(a.tokens_per_second for a in self.assignments)

    @property
    def power_mw(self) -> float:
        return sum(a.power_mw for a in self.assignments)

    @property
    def sites(self) -> tuple[str, ...]:
        """Distinct sites of the assignments, in order (what maxSites counts)."""
        return tuple(dict.fromkeys(a.site for a in self.assignments))


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


# SolveStats fields that measure time: they differ between two runs of the same
# solve. Every other field is a function of the mesh and the config alone.
TIMING_FIELDS = ("wall_ms", "kernel_ms", "bound_ms", "cpsat_ms", "decided_ms")


@dataclass(slots=True)
class SolveStats:
    """How the solve went; every plan reports its own optimality gap.

    ``placed_priority_demand`` is phase A's objective, the first (dominant) tier: the
    sum over placed workloads of weight(priority) x demand units, maximised;
    ``bound`` bounds it from above (see docs/placement.md);
    ``gap = (bound - placed_priority_demand) / max(1, |bound|)``.
    ``greedy_placed_priority_demand`` is the same for the kube-scheduler-order greedy
    placement, which a cold plan never goes below and a warm re-plan at most by
    ``WorkBudgets.warm_floor_gap`` (``floor_shortfall`` says how far it is).
    """

    placed_priority_demand: float = 0.0
    bound: float = 0.0
    gap: float = 0.0
    status: SolveStatus = SolveStatus.NOT_SOLVED
    # The wall-clock safety net (SolverConfig.time_limit_s) stopped CP-SAT before its
    # deterministic budget was spent: this plan may differ on a less loaded machine.
    wall_limit_hit: bool = False
    error: str = ""  # status ERROR: the exception CP-SAT raised
    fallback_used: bool = False  # the plan is a greedy/hint placement, not CP-SAT's
    cost_optimal: bool = False  # phase B proved the cost minimal (within relative_gap_limit)
    trimmed_devices: int = 0  # surplus devices the trim step removed from the solver's plan
    num_candidates: int = 0
    num_workloads: int = 0
    num_site_columns: int = 0
    placed_workloads: int = 0
    greedy_placed_priority_demand: float = 0.0
    # which greedy gave the best hint: "cheapest" (placement.greedy), "least-allocated"
    # (placement.kube_greedy, kept only when it places strictly more; then also the
    # floor) or "lp-order" (the LP bound's order, strictly more); "" = warm path
    hint_source: str = ""
    # every feasible pair was a CP-SAT candidate (small meshes, WorkBudgets.exact_max_pairs):
    # CP-SAT then solved the whole problem and its proof bounds the mesh
    complete_candidates: bool = False
    bound_method: str = ""  # see placement.bound.BOUND_METHOD; "" when not computed
    bound_iterations: int = 0  # subgradient steps of the Lagrangian bound
    cost: float = 0.0  # phase-B objective (energy >> latency >> stability), lower is better
    warm: bool = False  # incremental re-solve from ``previous`` (placement.pipeline)
    fixed_workloads: int = 0  # warm: workloads whose previous assignment was kept as is
    resolved_workloads: int = 0  # warm: changed + new + unplaced ones a change could help + displaceable, re-solved
    # warm: kept workloads that joined the re-solve because an unplaced one of higher
    # priority could use their site (warm preemption, placement.warm stage 3)
    preemption_candidates: int = 0
    # warm: > 0 when the plan fell below the kube-scheduler-style floor and was repaired
    # toward it (placement.warm.repair_scope): the workloads that repair re-solved, kept
    # ones of any priority among them
    floor_repair_workloads: int = 0
    floor_repair: FloorRepair = FloorRepair.NONE  # warm: which step of that repair reached the floor
    # warm: the share of the floor's value (greedy_placed_priority_demand) the plan is
    # below it, kept because it is within WorkBudgets.warm_floor_gap; 0 at or above it
    floor_shortfall: float = 0.0
    # a previous plan was given but the warm path gave way to the cold one: why
    # (placement.pipeline: the sites changed, below the floor, ...); "" otherwise
    warm_fallback: str = ""
    # why the solve stopped where it did, in words (see placement.pipeline.stop_reason)
    stop_reason: str = ""
    # > 0: the cold path re-solved this many partitions of the mesh in turn
    # (placement.partition); 0: one problem
    partitions: int = 0
    # timings (see TIMING_FIELDS): the only figures that vary between identical runs
    wall_ms: float = 0.0
    # from the start of plan() until phase A's value (and so the gap) was settled;
    # phase B after it only lowers the cost
    decided_ms: float = 0.0
    kernel_ms: float = 0.0
    bound_ms: float = 0.0
    cpsat_ms: float = 0.0


@dataclass(slots=True)
class Plan:
    workloads: dict[str, WorkloadDecision] = field(default_factory=dict)
    sites: dict[str, SiteUsage] = field(default_factory=dict)
    stats: SolveStats = field(default_factory=SolveStats)
    # Engine-private memo for a warm re-solve (``plan(..., previous=this)``): site and
    # workload fingerprints, chosen columns and bound multipliers
    # (:class:`placement.basis.Basis`). Not part of the output contract.
    basis: Basis | None = field(default=None, repr=False, compare=False)
