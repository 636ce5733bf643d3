"""The engine's input: a snapshot of the mesh as plain, frozen data.

The controller's reconcile core (and ``meshctl plan``, the benchmarks' synthetic
generator and the tests) build a :class:`Mesh` from the Kubernetes resources and pass
it to :func:`placement.plan`. Nothing here knows Kubernetes: these are plain frozen
dataclasses with units in their field names. Validation is light (shape rules that
would otherwise make the engine's arithmetic meaningless); the API server's schema and
CEL rules are the first line of defence.

The evaluation time :attr:`Mesh.at` is an input, so fleet availability (and therefore
the whole plan) is reproducible.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field

WORKLOAD_TYPES = ("training", "fine-tuning", "inference", "batch")
MAX_PRIORITY = 1_000_000


@dataclass(frozen=True, slots=True)
class Link:
    """A network link from a site to a region (a node of the topology graph)."""

    to: str
    latency_ms: float
    bandwidth_gbps: float = 100.0  # the CRD's default


@dataclass(frozen=True, slots=True)
class AcceleratorPool:
    """One homogeneous pool of accelerators inside a factory."""

    model: str
    count: int
    watts_per_device: float
    tokens_per_second_per_device: float
    memory_gib: float


@dataclass(frozen=True, slots=True)
class FactorySite:
    """An AI factory (GPU data centre) in one region and country.

    Usable power = firm + max(0, flexible - curtailed); non-interruptible load may use
    firm power only. Facility power of a device = watts x PUE. Defaults are the CRD's
    (``AIFactory.spec.power.pue`` defaults to 1.2).
    """

    name: str
    region: str
    country: str
    firm_mw: float
    flexible_mw: float = 0.0
    curtailed_mw: float = 0.0
    pue: float = 1.2
    price_per_mwh: float = 0.0
    carbon_grams_per_kwh: float = 0.0
    pools: tuple[AcceleratorPool, ...] = ()
    links: tuple[Link, ...] = ()
    cordoned: bool = False


@dataclass(frozen=True, slots=True)
class AvailabilityWindow:
    """A daily window in which a fleet's opted-in devices are online.

    ``end < start`` wraps midnight (22:00-06:00). ``start == end`` means the whole day.
    ``timezone`` is an IANA name (``Europe/Berlin``); the window is evaluated in that
    zone's local wall-clock time at :attr:`Mesh.at`.
    """

    start: _dt.time
    end: _dt.time
    timezone: str = "UTC"
    online_ratio: float = 1.0


@dataclass(frozen=True, slots=True)
class FleetSite:
    """An edge fleet: many small, intermittent, opted-in devices behind an uplink.

    Effective devices at time t = devices x opt_in_ratio x online_ratio(t) (floored).
    ``availability`` empty means always online at ratio 1.0; outside every window
    the fleet has 0 devices online. When windows overlap, the highest ratio counts.
    Fleet draw (devices x watts) is capped by ``max_fleet_mw``; fleets have no PUE.
    The fleet reaches the topology graph at ``region`` through its uplink latency,
    and through ``links`` (each adds the uplink latency too).
    """

    name: str
    region: str
    country: str
    device_class: str = "vehicle"
    devices: int = 0
    opt_in_ratio: float = 1.0
    accelerator_model: str = ""
    tokens_per_second_per_device: float = 0.0
    watts_per_device: float = 0.0
    memory_gib: float = 0.0
    availability: tuple[AvailabilityWindow, ...] = ()
    max_fleet_mw: float = float("inf")
    uplink_latency_ms: float = 0.0
    uplink_bandwidth_mbps: float = 100.0  # the CRD's default
    links: tuple[Link, ...] = ()
    price_per_mwh: float = 0.0
    carbon_grams_per_kwh: float = 0.0
    cordoned: bool = False


@dataclass(frozen=True, slots=True)
class UserRegion:
    """A region whose users call a workload; weight > 0 makes its latency binding."""

    region: str
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class CurrentAssignment:
    """What a workload has placed now on a site (input to the stability penalty)."""

    site: str
    devices: int


@dataclass(frozen=True, slots=True)
class WorkloadDemand:
    """One workload's demand and placement rules.

    Exactly one of ``accelerators`` (devices) and ``tokens_per_second`` is set; a
    token demand converts to devices per site through the site's per-device rate
    (ceil). Training runs whole on one factory (gang); other types may split over up
    to ``max_sites`` sites when ``splittable``. A workload is placed whole or not at
    all. ``interruptible`` load may use flexible power; other load firm power only.
    """

    key: str
    type: str = "inference"
    accelerators: int | None = None
    accelerator_models: tuple[str, ...] = ()
    tokens_per_second: float | None = None
    min_memory_gib: float = 0.0
    max_latency_ms: float | None = None
    users: tuple[UserRegion, ...] = ()
    allowed_countries: tuple[str, ...] = ()
    denied_countries: tuple[str, ...] = ()
    allow_fleets: bool = False
    splittable: bool = False
    max_sites: int = 1
    interruptible: bool = False
    priority: int = 100  # the CRD's default
    current: tuple[CurrentAssignment, ...] = ()

    def __post_init__(self) -> None:
        if (self.accelerators is None) == (self.tokens_per_second is None):
            raise ValueError(
                f"workload {self.key}: exactly one of accelerators / tokens_per_second must be set"
            )
        if self.accelerators is not None and self.accelerators < 1:
            raise ValueError(f"workload {self.key}: accelerators must be >= 1")
        if self.tokens_per_second is not None and not self.tokens_per_second > 0:
            raise ValueError(f"workload {self.key}: tokens_per_second must be > 0")
        if self.type not in WORKLOAD_TYPES:
            raise ValueError(f"workload {self.key}: type must be one of {WORKLOAD_TYPES}")
        if not 0 <= self.priority <= MAX_PRIORITY:
            raise ValueError(f"workload {self.key}: priority must be in 0..{MAX_PRIORITY}")
        if self.max_sites < 1:
            raise ValueError(f"workload {self.key}: max_sites must be >= 1")

    @property
    def gang(self) -> bool:
        """Training runs whole on one site."""
        return self.type == "training"

    @property
    def site_limit(self) -> int:
        """How many sites this workload may span."""
        if self.gang or not self.splittable:
            return 1
        return self.max_sites


@dataclass(frozen=True, slots=True)
class Mesh:
    """The whole snapshot: sites, workloads and the (tz-aware) evaluation time."""

    factories: tuple[FactorySite, ...] = ()
    fleets: tuple[FleetSite, ...] = ()
    workloads: tuple[WorkloadDemand, ...] = ()
    at: _dt.datetime = field(
        default_factory=lambda: _dt.datetime(2025, 1, 1, tzinfo=_dt.UTC)
    )

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("Mesh.at must be timezone-aware")
        names = [f.name for f in self.factories] + [f.name for f in self.fleets]
        if len(set(names)) != len(names):
            raise ValueError("site names must be unique across factories and fleets")
        keys = [w.key for w in self.workloads]
        if len(set(keys)) != len(keys):
            raise ValueError("workload keys must be unique")


def _check_finite(owner: str, obj: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"{owner}.{name} must be a finite number >= 0")


@dataclass(frozen=True, slots=True)
class ObjectivePolicy:
    """What a plan is worth beyond the placed priority-weighted demand: the
    "efficiency" tier of the objective. Energy cost in $/MWh is the site's price plus
    carbon at ``carbon_price_per_tonne`` (a shadow price); for device-count demand,
    tokens per joule is rewarded with ``efficiency_weight``. See docs/placement.md for
    the integer scaling. Changing these changes which plan is best, not how hard the
    engine looks for it."""

    carbon_price_per_tonne: float = 100.0
    efficiency_weight: float = 0.5

    def __post_init__(self) -> None:
        _check_finite("ObjectivePolicy", self, ("carbon_price_per_tonne", "efficiency_weight"))


@dataclass(frozen=True, slots=True)
class WorkBudgets:
    """How much work the engine spends looking for the best plan, and when it stops.
    Every budget counts work, not seconds, so the same mesh gives the same plan on a
    busy or an idle machine (see docs/placement.md, "Determinism").

    - ``phase_a_dtime`` / ``phase_b_dtime``: CP-SAT's deterministic time
      (``max_deterministic_time``, a count of solver operations scaled to about one
      second of one core) for phase A (placed priority-weighted demand) and phase B
      (energy >> latency >> stability with phase A's value held);
    - ``warm_dtime_scale``: share of both given to the warm re-solve
      (``plan(..., previous=...)``), shrunk further with the share of the mesh it
      re-solves;
    - ``warm_max_changed_share``: a warm re-solve runs only when at most this share of
      the workloads changed (a burst of creations is planned cold: re-solving most of
      the mesh around a few kept workloads costs as much and places less);
      ``warm_repair_max_share``: a warm plan below the kube-scheduler-style floor is
      repaired toward it only when the repair re-solves at most this share of the
      workloads, else the cold path runs;
    - ``warm_floor_gap``: a warm plan that places at least (1 - this) of the
      kube-scheduler-style greedy from scratch is kept as it is; below it the floor's
      own preemptions (which move few workloads), then the repair, run. The
      repair moves every workload the greedy from scratch places differently, and on a
      priority change that greedy reorders its queue: on the operator's 10,000-workload
      benchmark one repair re-solved 4,737 workloads and wrote 4,825 status patches,
      while the warm plans kept within the gap were 0.004-0.095% below the floor
      (docs/placement.md, "Warm start", stage 6). 0 holds the floor exactly;
    - ``bound_max_iters`` / ``warm_bound_max_iters``: subgradient steps of the
      Lagrangian bound (cold / warm); ``bound_pair_evaluations`` caps steps x feasible
      pairs (200 steps up to 10 million pairs; 51 at 50,000 x 5,000);
    - ``top_k`` candidate site columns per workload; ``max_cpsat_vars`` caps the
      CP-SAT candidates (beyond it each workload keeps its best kernel candidates,
      the greedy's columns always stay, and at least one per workload);
    - ``cpsat_max_candidates``: CP-SAT runs on at most this many candidates; beyond
      it the best hint is the plan (status ``TOO_MANY_CANDIDATES``). On a problem
      that large CP-SAT's budgets are spent loading the model into its portfolio:
      from 23,470 candidates (2,000 x 200) to 154,268 (10,000 x 1,000) both phases
      returned only their hint, for 2.2-13 s and a peak RSS of 0.9-4.9 GiB; at 21,434
      (the night family at 1,000 x 100) phase A still proved the target gap and
      phase B lowered the cost. 25,000 keeps every family mesh and caps the engine's
      peak near 1 GiB (docs/placement.md, "How far CP-SAT goes"). A solve on a share
      of the budgets gets the same share of the limit (the warm re-solve's
      ``warm_dtime_scale`` x its share of the mesh: 1,250 candidates for a re-solve
      of under a tenth of the mesh; a partition's part its share);
    - stop rules: phase A stops once within ``target_gap`` of the best upper bound it
      knows (the Lagrangian bound, when computed, and CP-SAT's own); phase B once
      within ``relative_gap_limit`` of CP-SAT's bound on the cost;
    - ``lp_bound_max_pairs``: up to this many feasible workload x column pairs the
      bound is the LP relaxation (placement.lp_bound, GLOP: 0.3 s at 50,000 pairs,
      22 s at 385,000), whose solution also orders one more greedy run; beyond it the
      Lagrangian bound alone;
    - ``exact_max_pairs``: up to this many feasible pairs every pair is a CP-SAT
      candidate (no top-K): CP-SAT then works on the whole problem, so its own bound
      is a bound of the mesh;
    - huge meshes: beyond ``partition_min_pairs`` feasible pairs the cold path
      partitions the mesh (placement.partition) into parts of about
      ``partition_workloads`` workloads, re-solved in turn with
      ``partition_top_k`` candidates each, sharing ``partition_dtime_scale`` x the
      CP-SAT budgets; when the kube-scheduler-order greedy on the whole mesh is
      already within ``partition_target_gap`` of the bound, it is the plan.
    """

    top_k: int = 16
    max_cpsat_vars: int = 400_000
    cpsat_max_candidates: int = 25_000
    phase_a_dtime: float = 0.5
    phase_b_dtime: float = 0.5
    warm_dtime_scale: float = 0.5
    warm_max_changed_share: float = 0.5
    warm_repair_max_share: float = 0.5
    warm_floor_gap: float = 1e-3
    bound_max_iters: int = 200
    warm_bound_max_iters: int = 50
    bound_pair_evaluations: int = 2_000_000_000
    target_gap: float = 1e-3
    relative_gap_limit: float = 1e-4
    lp_bound_max_pairs: int = 60_000
    exact_max_pairs: int = 30_000
    partition_min_pairs: int = 5_000_000
    partition_workloads: int = 2_000
    partition_dtime_scale: float = 2.5
    partition_top_k: int = 8  # candidates per workload in a part (CP-SAT's load grows with them)
    partition_target_gap: float = 0.005

    def __post_init__(self) -> None:
        _check_finite("WorkBudgets", self, ("phase_a_dtime", "phase_b_dtime", "warm_dtime_scale", "target_gap",
                                            "relative_gap_limit", "partition_dtime_scale", "partition_target_gap",
                                            "warm_max_changed_share", "warm_repair_max_share", "warm_floor_gap"))
        if not 0.0 <= self.warm_floor_gap < 1.0:
            raise ValueError("WorkBudgets.warm_floor_gap must be in [0, 1)")
        if self.top_k < 1 or self.partition_top_k < 1:
            raise ValueError("WorkBudgets.top_k and partition_top_k must be >= 1")
        if min(self.lp_bound_max_pairs, self.exact_max_pairs, self.partition_min_pairs, self.cpsat_max_candidates) < 0:
            raise ValueError("WorkBudgets pair thresholds must be >= 0")
        if self.partition_workloads < 1 or self.bound_pair_evaluations < 1:
            raise ValueError("WorkBudgets.partition_workloads and bound_pair_evaluations must be >= 1")
        if self.bound_max_iters < 0 or self.warm_bound_max_iters < 0:
            raise ValueError("WorkBudgets bound iteration caps must be >= 0")


@dataclass(frozen=True, slots=True)
class SolverConfig:
    """One solve's settings: the ``objective`` policy (what a plan is worth), the work
    ``budgets`` (how hard to look, deterministic), and how the work runs.

    ``num_workers`` CP-SAT workers run an interleaved (deterministic) portfolio;
    ``random_seed`` seeds it. ``kernel_threads`` (0 = ``num_workers``) only changes
    the speed of the scoring kernels, never their results.

    ``time_limit_s`` is a safety net on the wall time of one ``plan()`` call, not a
    budget: when it stops CP-SAT before its work budget is spent, the result depends
    on the machine's load, and ``SolveStats.wall_limit_hit`` says so.

    ``use_cpsat=False`` returns the greedy placement (still with a bound when
    ``compute_bound``).
    """

    objective: ObjectivePolicy = ObjectivePolicy()
    budgets: WorkBudgets = WorkBudgets()
    time_limit_s: float = 300.0
    num_workers: int = 2
    random_seed: int = 0
    kernel_threads: int = 0
    use_cpsat: bool = True
    compute_bound: bool = True

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise ValueError("SolverConfig.time_limit_s must be > 0")

    @property
    def workers(self) -> int:
        """CP-SAT workers (at least one)."""
        return max(1, self.num_workers)

    @property
    def threads(self) -> int:
        """Threads of the scoring kernels (at least one)."""
        return max(1, self.kernel_threads or self.num_workers)


DEFAULT_CONFIG = SolverConfig()  # frozen: one shared instance serves as every default
