"""Explanations: a true, specific, numeric one-line reason for every unplaced workload.

Called by :mod:`placement.assign` once the plan is fixed. Four cases, in order:

1. no site passes every filter (on the empty mesh): kube-scheduler style counts
   per site, largest first, with the numbers behind a capacity refusal: ``"0/12
   sites fit: 7 latency > 50 ms, 3 country not allowed, 2 insufficient power (needs
   450 MW firm; 400 MW firm at us-memphis-1)"``;
2. the workload is larger than everything its feasible sites have, even empty:
   ``"needs 1,000,000 devices; its 5 feasible sites have at most 445,000"``;
3. the capacity exists but the plan gave it to others: what is left, which
   resource ran out where, and who holds it: ``"needs 8 devices; no room left on
   its 1 feasible site: firm power exhausted at seoul-1 (0.0014 MW free, needs
   0.0056 MW); 1 higher-priority workload placed there"``. The keys of those
   higher-priority workloads (and of those on the sites of its current assignment)
   are the decision's ``displaced_by``;
4. room is left but this solve found no way to place it whole: said as such.

Each :class:`Reason` also has a ``summary`` for statuses, a function of the
workload's spec and the sites alone: cases 1 and 2 are their own summary; cases 3
and 4 share one (it fits its feasible sites when empty, and others hold the
capacity), since which of them applies turns on what other workloads hold and on
where the solve stopped, not on the workload.

Power figures are the engine's integer watts (per device rounded up, budgets
rounded down, see :mod:`placement.capacity`) shown in MW.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from placement.decisions import KIND_FLEET
from placement.problem import DEFAULT_CONFIG, Mesh, SolverConfig
from placement.snapshot import Snapshot, build
from placement_ext import FILTER_LABELS, FILTER_NAMES, Filter

# displaced_by keeps the highest-priority holders only: on a big mesh the sites a
# workload needed can hold thousands of workloads (the message gives the count).
DISPLACED_BY_LIMIT = 10


class Budget(enum.Enum):
    """The power budget that binds a workload at a site."""

    FIRM = "firm"  # a factory's firm power: non-interruptible work
    USABLE = "usable"  # a factory's firm + flexible power left after curtailment: interruptible work
    FLEET_CAP = "fleet cap"  # a fleet's power cap


BUDGET_WORDS = {Budget.FIRM: "firm power", Budget.USABLE: "power", Budget.FLEET_CAP: "fleet power cap"}


@dataclass(frozen=True, slots=True)
class Usage:
    """What the plan uses, in the engine's units (read by the explanations)."""

    col_devices: NDArray[np.int64]  # devices per column
    site_watts: NDArray[np.float64]  # all load per site
    site_ni_watts: NDArray[np.float64]  # non-interruptible load per site
    site_workloads: Sequence[set[int]]  # placed workloads per site


@dataclass(frozen=True, slots=True)
class Reason:
    """``message`` says everything, including what other workloads hold now;
    ``summary`` (when set) says only what depends on this workload and the sites, so a
    status built from it changes only when this workload's own situation does."""

    message: str
    displaced_by: tuple[str, ...] = ()
    summary: str = ""


# ---------------------------------------------------------------- formatting


def filter_label(name: str, max_latency_ms: float | None) -> str:
    if name == "latency" and max_latency_ms is not None:
        return f"latency > {max_latency_ms:g} ms"
    if name == "offline now":
        return "offline now (outside availability windows)"
    return name


# a decision's ``rejections`` are keyed by the filters' words: back to the filter
FILTER_OF_LABEL = {label: f for f, label in FILTER_LABELS.items()}


def rejection_dict(counts: Sequence[int] | NDArray[np.int32]) -> dict[str, int]:
    """The kernel's per-filter site counts as a decision's ``rejections``."""
    # one conversion of the row to Python ints: indexing a NumPy row per element costs
    # 50 us a workload, 0.25 s for the 5,000 unplaced workloads of a 10,000 mesh
    values: list[int] = counts.tolist() if isinstance(counts, np.ndarray) else [int(v) for v in counts]
    return {FILTER_NAMES[k]: v for k, v in enumerate(values) if v > 0}


def mw(watts: float) -> str:
    """Watts as a short MW figure: 450, 1.5, 0.0084."""
    x = watts / 1e6
    return f"{x:,.0f}" if x >= 1000 else f"{x:.4g}"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------- case 1: filters


def no_fit_message(
    total_sites: int,
    rejections: Mapping[str, int],
    max_latency_ms: float | None,
    details: Mapping[str, str] | None = None,
) -> str:
    """``"0/12 sites fit: ..."``; ``details`` adds a parenthesised figure to a filter."""
    details = details or {}
    parts = []
    for name, n in sorted(rejections.items(), key=lambda kv: (-kv[1], FILTER_OF_LABEL[kv[0]])):
        part = f"{n} {filter_label(name, max_latency_ms)}"
        if name in details:
            part += f" ({details[name]})"
        parts.append(part)
    head = f"0/{total_sites} sites fit"
    return head + (": " + ", ".join(parts) if parts else "")


@dataclass(frozen=True, slots=True)
class _Left:
    """What the plan leaves, and the column figures every workload reads: worked out
    once per :func:`reasons` call, not once per unplaced workload."""

    tps: NDArray[np.float64]  # per column
    watts: NDArray[np.float64]  # per column
    empty_cap_devices: NDArray[np.float64]  # per column, nothing placed
    cap_devices: NDArray[np.float64]  # per column, left by the plan
    site_total_watts: NDArray[np.float64]  # per site, left by the plan
    site_firm_watts: NDArray[np.float64]  # per site, firm, left by the plan

    @classmethod
    def of(cls, snap: Snapshot, usage: Usage) -> _Left:
        cols = snap.cols
        return cls(tps=cols.tps_milli.astype(np.float64), watts=cols.watts.astype(np.float64),
                   empty_cap_devices=cols.cap_devices.astype(np.float64),
                   cap_devices=(cols.cap_devices - usage.col_devices).astype(np.float64),
                   site_total_watts=snap.site_total_watts - usage.site_watts,
                   site_firm_watts=snap.site_firm_watts - usage.site_ni_watts)


class _Workload:
    """Per-column figures of one workload, in the engine's integer units."""

    def __init__(self, snap: Snapshot, w: int, codes: NDArray[np.int32], left: _Left):
        wls = snap.wls
        self.snap = snap
        self.w = w
        self.codes = codes
        self.tokens = bool(wls.accel[w] <= 0)
        self.demand = float(wls.tokens_milli[w] if self.tokens else wls.accel[w])
        self.limit = int(wls.site_limit[w])
        self.interruptible = bool(wls.interruptible[w])
        self.tps, self.watts = left.tps, left.watts
        with np.errstate(divide="ignore", invalid="ignore"):
            full = np.ceil(self.demand / self.tps) if self.tokens else np.full(snap.n_cols, self.demand)
        self.need_full = np.where(np.isfinite(full), full, np.inf)
        self.need_min = np.ones(snap.n_cols) if self.limit > 1 else self.need_full

    def budget(self, total: NDArray[np.float64], firm: NDArray[np.float64]) -> NDArray[np.float64]:
        """Watts per site this workload may draw: firm only unless interruptible."""
        return total if self.interruptible else np.minimum(firm, total)

    def demand_text(self, amount: float) -> str:
        if self.tokens:
            return f"{amount / 1000:,.0f} tokens/s"
        return plural(int(amount), "device")

    def amount_text(self, amount: float) -> str:
        return f"{amount / 1000:,.0f} tokens/s" if self.tokens else f"{int(amount):,}"

    def budget_kind(self, s: int) -> Budget:
        """Which power budget binds this workload at site ``s``."""
        if self.snap.site_kind[s] == KIND_FLEET:
            return Budget.FLEET_CAP
        return Budget.USABLE if self.interruptible else Budget.FIRM

    def power_words(self, s: int) -> str:
        """That budget in words."""
        return BUDGET_WORDS[self.budget_kind(s)]

    def power_words_factory(self) -> str:
        """The budget that binds this workload at a factory, in words."""
        return BUDGET_WORDS[Budget.USABLE if self.interruptible else Budget.FIRM]


def _filter_details(wk: _Workload) -> dict[str, str]:
    """The figures behind "insufficient devices" / "insufficient power" refusals, as the
    kernel measured them (``PairVerdicts.need`` / ``have``): the need against the site
    that came closest (the most devices, the most watts it may draw)."""
    snap = wk.snap
    site = snap.cols.site
    out: dict[str, str] = {}
    # a site counts under the furthest filter its best pool reached (as the kernel
    # counts): only pools of sites counted under a filter explain that filter
    site_code = np.full(snap.n_sites, -1, dtype=np.int64)
    np.maximum.at(site_code, site, wk.codes)
    counted = site_code[site] == wk.codes
    for refusal in (Filter.INSUFFICIENT_DEVICES, Filter.INSUFFICIENT_POWER):
        cols = np.flatnonzero((wk.codes == refusal) & counted).astype(np.int32)
        if not cols.size:
            continue
        v = snap.kernels.evaluate_pairs(np.full(cols.size, wk.w, dtype=np.int32), cols)
        assert (v.filter == refusal).all()  # the same kernel: the same verdict
        k = int(np.argmax(v.have))
        need, have, s = float(v.need[k]), float(v.have[k]), int(site[cols[k]])
        at = snap.site_names[s]
        if refusal == Filter.INSUFFICIENT_DEVICES:
            need_text = plural(int(need), "device") if math.isfinite(need) else "devices with a token rate"
            out[FILTER_LABELS[refusal]] = f"needs {need_text}; at most {int(have):,} at {at}"
        else:
            budget = wk.budget_kind(s)
            out[FILTER_LABELS[refusal]] = {
                Budget.FIRM: f"needs {mw(need)} MW firm; {mw(have)} MW firm at {at}",
                Budget.USABLE: f"needs {mw(need)} MW; {mw(have)} MW usable at {at}",
                Budget.FLEET_CAP: f"needs {mw(need)} MW; fleet cap {mw(have)} MW at {at}",
            }[budget]
    return out


# ---------------------------------------------------------------- cases 2-4: capacity


@dataclass(frozen=True, slots=True)
class _Sites:
    """Per feasible site of one workload (sites in index order): what it could give
    the workload, in the demand's unit (devices, or milli-tokens/s), and its best pool."""

    site: NDArray[np.int64]
    capacity: NDArray[np.float64]  # site-wide upper bound (pools share the site's power)
    room: NDArray[np.float64]  # splittable: the same; whole: demand if a pool fits, else the best pool
    blocked: NDArray[np.bool_]  # cannot take its share at all (whole: no pool fits; split: not 1 device)
    best_col: NDArray[np.int64]  # the pool with the most room


def _site_capacity(site: NDArray[np.int64], starts: NDArray[np.intp], dev: NDArray[np.float64],
                   unit: NDArray[np.float64], watts: NDArray[np.float64], budget: NDArray[np.float64],
                   whole_devices: bool) -> NDArray[np.float64]:
    """Per site group of columns (``starts``): the most of the demand's unit its pools
    can give within the site's ``budget`` watts, filling the pools that give the most
    per watt first (each up to its ``dev`` devices of ``unit`` each). That greedy is the
    optimum of the fractional problem, so an upper bound of what any placement gets;
    counting whole devices (``whole_devices``, unit 1) it is the integer optimum too.
    Bounding by power x the best rate alone would count the power of a site at the
    rate of a pool that may have no device left."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(watts > 0, unit / watts, np.inf)
    order = np.lexsort((-rate, site))  # per site (groups keep their positions), best rate first
    dev, unit, watts = dev[order], unit[order], watts[order]
    full = dev * watts  # watts to run every device of the pool
    ends = np.r_[starts[1:], site.size]
    sizes = ends - starts
    cum = np.cumsum(full)
    before_group = np.repeat(np.r_[0.0, cum[ends[:-1] - 1]], sizes)
    used_before = cum - full - before_group  # watts the better pools of the site take first
    left = np.maximum(np.repeat(budget, sizes) - used_before, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        by_power = np.where(watts > 0, left / watts, np.inf)
    if whole_devices:
        by_power = np.floor(by_power)
    take = np.minimum(dev, by_power)
    return np.add.reduceat(take * unit, starts)


def _sites(wk: _Workload, cols: NDArray[np.intp], devices: NDArray[np.float64], budget: NDArray[np.float64]) -> _Sites:
    """Capacity of the feasible columns ``cols`` (ascending, so grouped by site) with
    ``devices`` per column and ``budget`` watts per site left."""
    snap = wk.snap
    site = snap.cols.site[cols].astype(np.int64)
    starts = np.flatnonzero(np.r_[True, site[1:] != site[:-1]])
    sites = site[starts]
    dev = np.maximum(devices[cols], 0.0)
    left = np.maximum(budget[site], 0.0)
    tps, watts = wk.tps[cols], wk.watts[cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        if wk.tokens:
            per_watt = np.where(watts > 0, tps / watts, np.inf)
            col_room = np.minimum(dev * tps, np.where(np.isinf(per_watt), np.inf, left * per_watt))
            capacity = _site_capacity(site, starts, dev, tps, watts, left[starts], whole_devices=False)
            one = np.minimum.reduceat(tps, starts)  # a device of the slowest pool
        else:
            col_room = np.minimum(dev, np.where(watts > 0, np.floor(left / watts), np.inf))
            capacity = _site_capacity(site, starts, dev, np.ones(site.size), watts, left[starts],
                                      whole_devices=True)
            one = np.ones(sites.size)
    order = np.lexsort((-col_room, site))  # per site, the pool with the most room first
    best_col = cols[order[starts]].astype(np.int64)
    if wk.limit > 1:
        room = capacity
        blocked = capacity < one
    else:
        need = wk.need_full[cols]
        fits = (need <= dev) & (need * watts <= left)
        fits_site = np.maximum.reduceat(fits.astype(np.int8), starts) > 0
        room = np.where(fits_site, wk.demand, np.maximum.reduceat(col_room, starts))
        blocked = ~fits_site
    return _Sites(sites, capacity, room, blocked, best_col)


def _best_of(values: NDArray[np.float64], limit: int) -> float:
    return float(np.sort(values)[::-1][:limit].sum())


def _capacity_reason(wk: _Workload, n_feasible: int, left: _Left, holders_of: _Holders,
                     current_sites: set[int]) -> Reason:
    snap = wk.snap
    feasible_cols = np.flatnonzero(wk.codes == Filter.FEASIBLE)
    cap_left = left.cap_devices
    needs = f"needs {wk.demand_text(wk.demand)}"
    its = f"its {plural(n_feasible, 'feasible site')}"
    have = "has" if n_feasible == 1 else "have"
    # 2. larger than everything its feasible sites have, even empty (a whole workload
    #    passed the filters on one pool, so it always fits there)
    if wk.limit > 1:
        raw = _sites(wk, feasible_cols, left.empty_cap_devices, wk.budget(snap.site_total_watts, snap.site_firm_watts))
        most = _best_of(raw.capacity, wk.limit)
        if most < wk.demand:
            if wk.limit < raw.site.size:
                return Reason(f"{needs}; the best {wk.limit} of {its} (maxSites {wk.limit}) "
                              f"have at most {wk.amount_text(most)}")
            return Reason(f"{needs}; {its} {have} at most {wk.amount_text(most)}")
    # 3. the capacity exists, but the plan gave it to others
    left_budget = wk.budget(left.site_total_watts, left.site_firm_watts)
    now = _sites(wk, feasible_cols, cap_left, left_budget)
    room_total = _best_of(now.room, wk.limit) if wk.limit > 1 else float(now.room.max())
    # What a status may say from here on (cases 3 and 4 alike): the workload fits its
    # feasible sites when they are empty (case 2 is past), and the plan placed others
    # there instead. Which of the two cases applies depends on what the others hold
    # and on where this solve stopped (a plan proven within its target gap may leave
    # a small workload out beside room it could use), so it is the message's alone:
    # a summary that followed it would rewrite a waiting workload's status whenever
    # an unrelated edit moves the others.
    summary = f"{needs}; no room left on {its}: other placed workloads hold the capacity it needs"
    if room_total >= wk.demand:
        # 4. room is left (an upper bound for split work: the best pools' devices
        #    within the power left): this solve did not find it
        return Reason(f"{needs}; {its} {have} room for {wk.amount_text(room_total)} now, "
                      "but this solve found no placement that fits it whole", summary=summary)
    # the blocked sites, most room first (then by name): vectorised, since on a huge
    # mesh one workload can find thousands of fleets full; only the first few are named
    blocked = np.flatnonzero(now.blocked)
    b_site = now.site[blocked].astype(np.intp)
    b_col = now.best_col[blocked].astype(np.intp)
    b_room = now.room[blocked].astype(np.float64)
    b_need = wk.need_full[b_col].astype(np.float64) if wk.limit <= 1 else np.ones(blocked.size)
    by_devices = cap_left[b_col] < b_need
    order = np.lexsort((holders_of.name_rank[b_site], -b_room))
    head = f"no room left on {its}" if wk.limit <= 1 else f"{its} {have} room for {wk.amount_text(room_total)} now"
    parts: list[str] = []
    if blocked.size:
        fleet = holders_of.is_fleet[b_site] & ~by_devices
        counts = {"devices": int(by_devices.sum()), "fleet power cap": int(fleet.sum()),
                  wk.power_words_factory(): int((~by_devices & ~fleet).sum())}
        wanted = {k: min(3, v) for k, v in counts.items() if v}  # the first name and the two _names shows
        groups: dict[str, list[str]] = {}
        first_figures = ""
        for rank, k in enumerate(order.tolist()):
            s, c = int(b_site[k]), int(b_col[k])
            resource = "devices" if by_devices[k] else wk.power_words(s)
            names = groups.setdefault(resource, [])
            if len(names) < 3:
                names.append(snap.site_names[s])
            if rank == 0:
                need = float(b_need[k])
                if by_devices[k]:
                    first_figures = f"{max(0, int(cap_left[c])):,} free, needs {int(need):,}"
                else:
                    first_figures = (f"{mw(max(0.0, float(left_budget[s])))} MW free, "
                                     f"needs {mw(need * float(wk.watts[c]))} MW")
            if all(len(groups.get(r, ())) >= n for r, n in wanted.items()):
                break  # every name shown is known; the rest only add to the counts
        first_resource = next(iter(groups))
        for resource, names in groups.items():
            text = f"{resource} exhausted at {names[0]}"
            if resource == first_resource:
                text += f" ({first_figures})"
            more = counts[resource] - 1
            if more > 0:
                text += ", " + ", ".join(names[1:3]) + (f" and {more - 2} more" if more > 2 else "")
            parts.append(text)
    message = f"{needs}; {head}" + (f": {'; '.join(parts)}" if parts else "")
    exhausted = set(b_site.tolist())
    n_holders, holders = holders_of.higher(wk.w, exhausted | current_sites, DISPLACED_BY_LIMIT)
    if n_holders:
        message += f"; {plural(n_holders, 'higher-priority workload')} placed there"
    else:
        others = holders_of.count_others(wk.w, exhausted)
        if others:
            message += f"; {plural(others, 'workload')} of equal or lower priority placed there"
    return Reason(message, tuple(snap.keys[o] for o in holders), summary)


class _Holders:
    """Who is placed on which site, ranked highest priority first (then by key)."""

    def __init__(self, snap: Snapshot, usage: Usage):
        self.priority = snap.priority
        self.on_site = [np.fromiter(sorted(ws), dtype=np.int64, count=len(ws)) for ws in usage.site_workloads]
        order = np.lexsort((np.asarray(snap.keys, dtype=str), -snap.priority.astype(np.int64)))
        self.rank = np.empty(len(snap.keys), dtype=np.int64)
        self.rank[order] = np.arange(len(order))
        self.is_fleet = np.asarray([k == KIND_FLEET for k in snap.site_kind], dtype=bool)
        by_name = sorted(range(len(snap.site_names)), key=lambda s: snap.site_names[s])
        self.name_rank = np.empty(len(snap.site_names), dtype=np.int64)
        self.name_rank[by_name] = np.arange(len(by_name))
        self._on_memo: dict[frozenset[int], NDArray[np.int64]] = {}
        self._higher_memo: dict[tuple[frozenset[int], int, int], tuple[int, list[int]]] = {}

    def _on(self, sites: frozenset[int]) -> NDArray[np.int64]:
        if not sites:
            return np.zeros(0, dtype=np.int64)
        found = self._on_memo.get(sites)
        if found is not None:
            return found
        # a mask, not np.unique: one pass over the workloads instead of a sort or hash
        # of every site's list (an unplaced workload on a huge mesh may name thousands)
        mask = np.zeros(self.priority.shape[0], dtype=bool)
        mask[np.concatenate([self.on_site[s] for s in sites])] = True
        found = self._on_memo[sites] = np.flatnonzero(mask).astype(np.int64)
        return found

    def higher(self, w: int, sites: set[int], limit: int) -> tuple[int, list[int]]:
        """How many placed workloads of higher priority than ``w`` are on ``sites``, and
        the first ``limit`` of them, highest first. Remembered per (sites, priority):
        unplaced workloads of one kind share their feasible sites."""
        key = (frozenset(sites), int(self.priority[w]), limit)
        found = self._higher_memo.get(key)
        if found is None:
            found = self._higher_memo[key] = self._higher(w, key[0], limit)
        return found[0], list(found[1])

    def _higher(self, w: int, sites: frozenset[int], limit: int) -> tuple[int, list[int]]:
        on = self._on(sites)
        on = on[self.priority[on] > self.priority[w]]
        count = int(on.size)
        ranks = self.rank[on]
        if count > limit > 0:  # only the first few are named: no full sort
            keep = np.argpartition(ranks, limit - 1)[:limit]
            on, ranks = on[keep], ranks[keep]
        ranked: list[int] = on[np.argsort(ranks)][: max(0, limit)].tolist()
        return count, ranked

    def count_others(self, w: int, sites: set[int]) -> int:
        on = self._on(frozenset(sites))
        return int((on != w).sum())


def reasons(
    snap: Snapshot,
    unplaced: Sequence[int],
    rejections: Mapping[int, dict[str, int]],
    feasible_sites: Mapping[int, int],
    codes: NDArray[np.int32],
    usage: Usage,
) -> dict[int, Reason]:
    """A :class:`Reason` per unplaced workload. ``codes[i, c]`` is the filter code of
    ``unplaced[i]`` on column c (``Filter.FEASIBLE`` when it passes every filter)."""
    total_sites = int(np.count_nonzero(np.diff(snap.cols.site_ptr) > 0))
    holders = _Holders(snap, usage)
    left = _Left.of(snap, usage)
    out: dict[int, Reason] = {}
    for i, w in enumerate(unplaced):
        wd = snap.mesh.workloads[w]
        wk = _Workload(snap, w, codes[i], left)
        if feasible_sites[w] == 0 or not (wk.codes == Filter.FEASIBLE).any():
            out[w] = Reason(no_fit_message(total_sites, rejections[w], wd.max_latency_ms, _filter_details(wk)))
            continue
        current = {snap.site_index[a.site] for a in wd.current if a.site in snap.site_index and a.devices > 0}
        out[w] = _capacity_reason(wk, feasible_sites[w], left, holders, current)
    return out


# ---------------------------------------------------------------- per-column verdicts


@dataclass(frozen=True, slots=True)
class ColumnVerdict:
    """One workload against one pool of one site, on the empty mesh: the filter that
    rejects it (``""`` when it passes every filter) and, when it passes, the devices
    that would serve its whole demand, the worst user latency and the scoring pass's
    cost of the pair (tiers energy x 1e6 + latency x 1e3 + stability; lower is better;
    0 when rejected)."""

    site: str
    kind: str
    accelerator_model: str
    rejected_by: str
    devices: float
    latency_ms: float
    cost: float


def column_verdicts(mesh: Mesh, key: str, config: SolverConfig = DEFAULT_CONFIG) -> list[ColumnVerdict]:
    """Every (site, pool) column as the filters and the cost see workload ``key`` (the
    pairs behind a decision's ``rejections`` and ``feasible_sites``), for explanations
    such as the HTTP API's; the plan itself keeps only the counts. KeyError if unknown."""
    snap = build(mesh, config)
    w = snap.keys.index(key) if key in snap.keys else -1
    if w < 0:
        raise KeyError(key)
    columns = np.arange(snap.n_cols, dtype=np.int32)
    verdicts = snap.kernels.evaluate_pairs(np.full(snap.n_cols, w, dtype=np.int32), columns)
    return [
        ColumnVerdict(
            site=snap.col_site_name[c], kind=snap.col_kind[c], accelerator_model=snap.col_model_name[c],
            rejected_by="" if code == Filter.FEASIBLE else FILTER_LABELS[Filter(code)],
            devices=float(verdicts.devices[c]), latency_ms=float(verdicts.latency_ms[c]), cost=float(verdicts.cost[c]),
        )
        for c, code in enumerate(verdicts.filter.tolist())
    ]
