"""The last stage of every path: the plan's :class:`~placement.decisions.SolveStats`,
built once from the stages' typed results, and the basis the next warm re-solve reads.

Called by :mod:`placement.pipeline` at the end of the cold, the partitioned and the
warm path, each of which hands over a :class:`PathResult`: the candidates and the
solve sequence's :class:`~placement.solve.SolveResult`, the floor, the bound, and what
the path alone knows (its hint source, partitions, the warm scope's counts). Nothing
here solves anything.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from placement.basis import CandidateColumns, make_basis
from placement.bound import BoundResult
from placement.candidates import Candidates, placed_value, plan_cost
from placement.decisions import PHASE_PLACED, FloorRepair, Plan, SolveStats, SolveStatus
from placement.problem import SolverConfig
from placement.snapshot import Snapshot
from placement.solve import SolveResult


@dataclass(frozen=True, slots=True)
class WarmCounts:
    """What the warm path re-solved (:mod:`placement.warm`)."""

    fixed_workloads: int  # kept as they were
    resolved_workloads: int  # changed + preemption victims + waiting ones the freed room could hold
    preemption_candidates: int  # kept workloads displaceable by a changed one of higher priority
    floor_repair_workloads: int = 0  # re-solved by the repair toward the floor (0: none ran)
    floor_repair: FloorRepair = FloorRepair.NONE  # which step of it reached the floor


@dataclass(frozen=True, slots=True)
class NextBasis:
    """What the next warm re-solve needs beyond the plan itself (:mod:`placement.basis`)."""

    multipliers: NDArray[np.float64] | None  # the bound's, to warm-start the next one
    terms: dict[str, float] | None  # each workload's Lagrangian term at ``multipliers``
    waiting: dict[str, CandidateColumns]  # the unplaced workloads' candidate columns
    fingerprints: list[tuple[object, ...]] | None = None  # when the path has them already


@dataclass(frozen=True, slots=True)
class PathResult:
    """Every stage's result of one path, as :func:`finish` reads them."""

    cands: Candidates
    solve: SolveResult
    floor_placed_priority_demand: float  # the kube-scheduler-style greedy's
    bound: BoundResult | None
    kernel_ms: float
    num_candidates: int  # CP-SAT's candidates (the warm path: of what it re-solved)
    next_basis: NextBasis
    hint_source: str = ""  # cold path: which greedy gave the best hint
    complete_candidates: bool = False  # every feasible pair was a candidate
    partitions: int = 0  # the partitioned cold path: parts re-solved in turn
    warm: WarmCounts | None = None  # the warm path's scope
    stop_reason: str = ""  # a path's own words for why it stopped, when the status does not say it


def finish(out: Plan, snap: Snapshot, path: PathResult, config: SolverConfig, t0: float) -> Plan:
    """Set ``out.stats`` (one :class:`SolveStats`, built once) and ``out.basis``."""
    result, bound = path.solve, path.bound
    placed = float(placed_value(snap, path.cands, result.devices))
    if bound is not None:
        # a bound of a maximisation is at least any plan's value: one below it is the
        # LP's floating point (13.999999999999998 for a plan of 14)
        upper = max(bound.bound, placed)
    elif result.status in (SolveStatus.OPTIMAL, SolveStatus.EMPTY) or not snap.keys:
        upper = placed
    else:
        upper = math.nan
    gap = max(0.0, (upper - placed) / max(1.0, abs(upper))) if math.isfinite(upper) else math.nan
    warm = path.warm or WarmCounts(0, 0, 0)
    out.stats = SolveStats(
        placed_priority_demand=placed,
        bound=upper,
        gap=gap,
        status=result.status,
        wall_limit_hit=result.wall_limit_hit,
        error=result.error,
        fallback_used=result.fallback_used,
        cost_optimal=result.cost_optimal,
        trimmed_devices=result.trimmed_devices,
        num_candidates=path.num_candidates,
        num_workloads=len(snap.keys),
        num_site_columns=snap.n_cols,
        placed_workloads=sum(1 for d in out.workloads.values() if d.phase == PHASE_PLACED),
        greedy_placed_priority_demand=path.floor_placed_priority_demand,
        floor_shortfall=max(0.0, path.floor_placed_priority_demand - placed) / max(1.0, path.floor_placed_priority_demand),
        hint_source=path.hint_source,
        complete_candidates=path.complete_candidates,
        bound_method=bound.method if bound is not None else "",
        bound_iterations=bound.iterations if bound is not None else 0,
        cost=float(plan_cost(path.cands, result.devices)),
        warm=path.warm is not None,
        fixed_workloads=warm.fixed_workloads,
        resolved_workloads=warm.resolved_workloads,
        preemption_candidates=warm.preemption_candidates,
        floor_repair_workloads=warm.floor_repair_workloads,
        floor_repair=warm.floor_repair,
        stop_reason=path.stop_reason or stop_reason(
            result.status, config, complete_candidates=path.complete_candidates, partitions=path.partitions,
            wall_limit_hit=result.wall_limit_hit, error=result.error),
        partitions=path.partitions,
        wall_ms=(time.perf_counter() - t0) * 1e3,
        decided_ms=(result.decided_at - t0) * 1e3 if result.decided_at else 0.0,
        kernel_ms=path.kernel_ms,
        bound_ms=bound.ms if bound is not None else 0.0,
        cpsat_ms=result.cpsat_ms,
    )
    nb = path.next_basis
    out.basis = make_basis(snap, path.cands, result.devices, nb.multipliers, config.budgets.top_k, nb.terms, nb.waiting,
                           nb.fingerprints)
    return out


def stop_reason(
    status: SolveStatus, config: SolverConfig, *, complete_candidates: bool = False, partitions: int = 0,
    wall_limit_hit: bool = False, error: str = "",
) -> str:
    """Why phase A stopped where it did, in words, from the solve's status."""
    # a partitioned solve judges the whole mesh's floor against its own target
    target = f"{config.budgets.partition_target_gap if partitions else config.budgets.target_gap:.2%}"
    where = "every feasible pair" if complete_candidates else "the candidates"
    reasons = {
        SolveStatus.EMPTY: "nothing to decide: no workload has a feasible site",
        SolveStatus.GREEDY: "CP-SAT is off (use_cpsat=False): the best greedy plan",
        SolveStatus.TOO_MANY_CANDIDATES: f"more candidates than CP-SAT is given "
        f"(cpsat_max_candidates {config.budgets.cpsat_max_candidates:,}): the best greedy plan",
        SolveStatus.ERROR: f"CP-SAT raised ({error}): the best greedy plan",
        SolveStatus.NO_SOLUTION: "CP-SAT returned no plan: the best greedy plan",
        SolveStatus.HINT_AT_TARGET: f"the greedy plan was already within the target gap ({target}) of the bound",
        SolveStatus.OPTIMAL: f"CP-SAT proved the placement optimal over {where}",
        SolveStatus.AT_TARGET: f"CP-SAT proved the placement within the target gap ({target}) over {where}",
        SolveStatus.FEASIBLE: f"phase A spent its work budget ({config.budgets.phase_a_dtime:g} deterministic s) "
        f"before proving the target gap ({target})",
    }
    text = reasons.get(status, str(status))
    if wall_limit_hit:
        text += f"; the wall-clock safety net ({config.time_limit_s:g} s) cut CP-SAT short"
    if partitions:
        text = f"{partitions} partitions solved in turn; " + text
    return text


__all__ = ["NextBasis", "PathResult", "WarmCounts", "finish", "stop_reason"]
