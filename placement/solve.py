"""The one solve sequence, shared by the cold and the warm path of the pipeline.

Called by :mod:`placement.pipeline` with a snapshot (the whole mesh, or the warm
path's residual problem), its candidates, the greedy plans and a known upper bound:

1. hint: the best of the given feasible plans (multi-start greedy, previous plan);
2. target: phase A may stop within ``target_gap`` of the upper bound (the
   Lagrangian bound of :mod:`placement.bound`); a hint already there skips it;
3. CP-SAT phase A (placed priority-weighted demand), then phase B (energy >>
   latency >> stability with A's value held), each on its deterministic budget
   (:mod:`placement.cpsat`), on at most ``cpsat_max_candidates`` x ``dtime_scale``
   candidates (beyond them the hint is the plan);
4. fallback: a phase that fails, raises or returns an infeasible plan leaves the
   previous step's plan (ultimately the hint) in place;
5. floor: never below the kube-scheduler greedy (the first queue order);
6. trim: no workload keeps a device it does not need (:mod:`placement.trim`).

Nothing here reads the clock to decide anything, except the wall-clock safety net
(``deadline``): a phase it cuts short reports ``wall_limit_hit``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from placement.candidates import Candidates, Devices, feasible_devices, placed_value
from placement.cpsat import CpSatModel, PhaseResult
from placement.decisions import SolveStatus
from placement.problem import SolverConfig
from placement.snapshot import Snapshot
from placement.trim import trim_surplus


@dataclass(slots=True)
class SolveResult:
    """The plan of one solve sequence and how it was reached."""

    devices: Devices
    status: SolveStatus
    fallback_used: bool = False
    wall_limit_hit: bool = False
    cost_optimal: bool = False
    trimmed_devices: int = 0
    error: str = ""
    cpsat_ms: float = 0.0  # a timing
    # CP-SAT's proven bound on phase A over the candidates (inf: phase A did not run);
    # a bound of the whole mesh when the candidates are every feasible pair
    candidates_bound: float = math.inf
    # time.perf_counter() when phase A's value was settled (phase B only lowers cost)
    decided_at: float = 0.0


def best_hint(snap: Snapshot, cands: Candidates, hints: Sequence[Devices]) -> Devices:
    """The plan of highest placed value among ``hints`` (the first on ties)."""
    best = np.zeros(cands.n, dtype=np.int64)
    best_value = -1
    for h in hints:
        v = placed_value(snap, cands, h)
        if v > best_value:
            best, best_value = h, v
    return best


def _accept(snap: Snapshot, cands: Candidates, phase: PhaseResult, floor_value: int) -> Devices | None:
    """A phase's plan if it is feasible and places at least ``floor_value``."""
    if phase.devices is None or not feasible_devices(snap, cands, phase.devices):
        return None
    if placed_value(snap, cands, phase.devices) < floor_value:
        return None
    return phase.devices


def _phase_a_status(phase: PhaseResult, accepted: bool) -> SolveStatus:
    if not accepted:
        return SolveStatus.NO_SOLUTION
    if phase.exact:
        return SolveStatus.OPTIMAL
    return SolveStatus.AT_TARGET if phase.proven else SolveStatus.FEASIBLE


def _cpsat(
    snap: Snapshot,
    cands: Candidates,
    hint: Devices,
    upper_bound: float | None,
    config: SolverConfig,
    deadline: float,
    dtime_scale: float,
    out: SolveResult,
) -> None:
    """Steps 2-4: target, phase A, phase B, fallback to the hint; fills ``out``."""
    hint_value = placed_value(snap, cands, hint)
    model = CpSatModel(snap, cands)
    start = hint
    if upper_bound is not None and hint_value >= math.floor(upper_bound * (1.0 - config.budgets.target_gap)):
        out.status = SolveStatus.HINT_AT_TARGET
    elif deadline - time.perf_counter() <= 0:
        out.status = SolveStatus.NO_SOLUTION
        out.wall_limit_hit = True
    else:
        a = model.phase_a(hint, config, config.budgets.phase_a_dtime * dtime_scale, deadline - time.perf_counter(), upper_bound)
        out.cpsat_ms += a.ms
        out.wall_limit_hit |= a.wall_limit_hit
        accepted = _accept(snap, cands, a, hint_value)
        out.status = _phase_a_status(a, accepted is not None)
        if accepted is not None:
            start = accepted
            out.candidates_bound = a.bound
    out.fallback_used = out.status in (SolveStatus.NO_SOLUTION, SolveStatus.HINT_AT_TARGET)
    out.devices = start
    out.decided_at = time.perf_counter()
    if deadline - time.perf_counter() <= 0:
        out.wall_limit_hit = True
        return
    b = model.phase_b(start, config, config.budgets.phase_b_dtime * dtime_scale, deadline - time.perf_counter())
    out.cpsat_ms += b.ms
    out.wall_limit_hit |= b.wall_limit_hit
    accepted = _accept(snap, cands, b, placed_value(snap, cands, start))
    if accepted is not None:
        out.devices = accepted
        out.cost_optimal = b.proven
        out.fallback_used = False  # CP-SAT's plan (phase B from the hint counts)


def solve(
    snap: Snapshot,
    cands: Candidates,
    hints: Sequence[Devices],
    floor: Devices,
    upper_bound: float | None,
    config: SolverConfig,
    deadline: float,
    dtime_scale: float = 1.0,
) -> SolveResult:
    """Run the solve sequence (see the module doc) on ``snap`` / ``cands``.

    ``hints`` are feasible plans (the multi-start greedy, a previous plan), ``floor``
    the kube-scheduler greedy's plan, ``upper_bound`` a bound on phase A's objective
    for this problem (or None), ``deadline`` the ``time.perf_counter()`` of the
    wall-clock safety net, ``dtime_scale`` the share of the deterministic budgets.
    """
    hint = best_hint(snap, cands, [*hints, floor])
    out = SolveResult(devices=hint, status=SolveStatus.NOT_SOLVED)
    if cands.n == 0:
        out.status = SolveStatus.EMPTY
        out.devices = np.zeros(0, dtype=np.int64)
    elif not config.use_cpsat:
        out.status = SolveStatus.GREEDY
        out.fallback_used = True
    elif cands.n > config.budgets.cpsat_max_candidates * dtime_scale:
        out.status = SolveStatus.TOO_MANY_CANDIDATES  # CP-SAT's budgets would only load the model
        out.fallback_used = True
    else:
        try:
            _cpsat(snap, cands, hint, upper_bound, config, deadline, dtime_scale, out)
        except Exception as exc:  # never crash on a model we built: the hint is the plan
            out.status = SolveStatus.ERROR
            out.error = f"{type(exc).__name__}: {exc}"
            out.devices = hint
            out.fallback_used = True
    if placed_value(snap, cands, out.devices) < placed_value(snap, cands, floor):
        out.devices = floor  # never below the kube-scheduler way
        out.fallback_used = True
    out.devices, out.trimmed_devices = trim_surplus(snap, cands, out.devices)
    out.decided_at = out.decided_at or time.perf_counter()
    return out


# Beyond this many candidates the repair toward the floor is move_back's plan alone:
# CP-SAT, on the repair's share of the budget, kept almost nothing more in place (on the
# operator's 10,000-workload benchmark 4,835 status patches for a repair of 4,782
# workloads with its fewest-moves phase, 4,683 for 4,731 with phases A and B from
# move_back's plan), while building and presolving its model cost 8 s and 3 GiB at 50k x
# 5k (11,584 workloads, 300k candidates). A size, so the choice is the same on every
# machine.
FEWEST_MOVES_MAX_CANDIDATES = 20_000


def move_back(snap: Snapshot, cands: Candidates, start: Devices, stay: Devices, passes: int = 3) -> Devices:
    """``start`` (a feasible plan) with as many workloads as fit put back where ``stay``
    (another feasible plan) has them, one at a time in workload order, ``passes``
    times over (a move back can free room for another): every workload ``start``
    places stays placed, so the value never drops. The start of
    :func:`solve_fewest_moves`: from the floor's plan CP-SAT's budget finds few of the
    moves back on a big repair; this finds the easy ones in linear time."""
    cols = snap.cols
    devices = start.copy()
    watts = cols.watts[cands.col]
    site = cols.site[cands.col]
    ni = ~snap.wls.interruptible[cands.workload_of()].astype(bool)
    col_left = cols.cap_devices - np.bincount(cands.col, weights=devices, minlength=snap.n_cols)
    site_left = snap.site_total_watts - np.bincount(site, weights=devices * watts, minlength=snap.n_sites)
    firm = np.minimum(snap.site_firm_watts, snap.site_total_watts)
    firm_left = firm - np.bincount(site[ni], weights=(devices * watts)[ni], minlength=snap.n_sites)
    off = np.abs(devices - stay)
    todo = [w for w in range(cands.n_workloads)
            if cands.ptr[w + 1] > cands.ptr[w] and off[cands.ptr[w]:cands.ptr[w + 1]].any()
            and stay[cands.ptr[w]:cands.ptr[w + 1]].any()]
    for _ in range(passes):
        moved = False
        for w in todo:
            lo, hi = int(cands.ptr[w]), int(cands.ptr[w + 1])
            delta = (stay[lo:hi] - devices[lo:hi]).astype(np.float64)
            if not delta.any():
                continue
            nz = np.flatnonzero(delta)
            c, d = cands.col[lo:hi][nz], delta[nz]  # a workload's candidate columns are distinct
            sites, at = np.unique(site[lo:hi][nz], return_inverse=True)
            dw = np.bincount(at, weights=d * watts[lo:hi][nz])
            if ((col_left[c] - d < -1e-9).any() or (site_left[sites] - dw < -1e-6).any()
                    or (ni[lo] and (firm_left[sites] - dw < -1e-6).any())):
                continue
            col_left[c] -= d
            site_left[sites] -= dw
            if ni[lo]:
                firm_left[sites] -= dw
            devices[lo:hi] = stay[lo:hi]
            moved = True
        if not moved:
            break
    return devices


def solve_fewest_moves(
    snap: Snapshot,
    cands: Candidates,
    start: Devices,
    stay: Devices,
    config: SolverConfig,
    deadline: float,
    dtime_scale: float,
    use_cpsat: bool = True,
) -> SolveResult:
    """The repair toward the floor (:func:`placement.warm.toward_floor`): ``start`` is
    a feasible plan that places what must be placed (the floor's placement of the
    re-solved workloads). From :func:`move_back`'s version of it, CP-SAT looks for a
    plan that places as much and keeps the most of ``stay`` (the warm plan's
    placement of them) where it is, on the budget of phases A and B together (it runs
    instead of them). Falls back to move_back's plan, which is the plan without
    ``use_cpsat``; trimmed as every plan is."""
    target = placed_value(snap, cands, start)
    start = move_back(snap, cands, start, stay)
    out = SolveResult(devices=start, status=SolveStatus.HINT_AT_TARGET, fallback_used=True)
    if cands.n and use_cpsat and config.use_cpsat and deadline - time.perf_counter() > 0:
        try:
            phase = CpSatModel(snap, cands).phase_fewest_moves(
                start, stay, target, config, (config.budgets.phase_a_dtime + config.budgets.phase_b_dtime) * dtime_scale, deadline - time.perf_counter())
            out.cpsat_ms += phase.ms
            out.wall_limit_hit |= phase.wall_limit_hit
            accepted = _accept(snap, cands, phase, target)
            if accepted is not None:
                out.devices, out.status, out.fallback_used = accepted, SolveStatus.FEASIBLE, False
        except Exception as exc:  # never crash on a model we built: ``start`` is the plan
            out.status, out.error = SolveStatus.ERROR, f"{type(exc).__name__}: {exc}"
    out.decided_at = time.perf_counter()
    out.devices, out.trimmed_devices = trim_surplus(snap, cands, out.devices)
    return out
