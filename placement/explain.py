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

Power figures are the engine's integer watts (per device rounded up, budgets
rounded down, see :mod:`placement.capacity`) shown in MW.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from placement.decisions import KIND_FLEET
from placement.snapshot import Snapshot
from placement_ext import FEASIBLE, FILTER_NAMES

INSUFFICIENT_DEVICES = FILTER_NAMES.index("insufficient devices")
INSUFFICIENT_POWER = FILTER_NAMES.index("insufficient power")


@dataclass(frozen=True, slots=True)
class Usage:
    """What the plan uses, in the engine's units (read by the explanations)."""

    col_devices: NDArray[np.int64]  # devices per column
    site_watts: NDArray[np.float64]  # all load per site
    site_ni_watts: NDArray[np.float64]  # non-interruptible load per site
    site_workloads: Sequence[set[int]]  # placed workloads per site


@dataclass(frozen=True, slots=True)
class Reason:
    message: str
    displaced_by: tuple[str, ...] = ()


# ---------------------------------------------------------------- formatting


def filter_label(name: str, max_latency_ms: float | None) -> str:
    if name == "latency" and max_latency_ms is not None:
        return f"latency > {max_latency_ms:g} ms"
    if name == "offline now":
        return "offline now (outside availability windows)"
    return name


def rejection_dict(counts: Sequence[int] | NDArray[np.int32]) -> dict[str, int]:
    return {FILTER_NAMES[k]: int(v) for k, v in enumerate(counts) if v > 0}


def mw(watts: float) -> str:
    """Watts as a short MW figure: 450, 1.5, 0.0084."""
    x = watts / 1e6
    return f"{x:,.0f}" if x >= 1000 else f"{x:.4g}"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _names(sites: Sequence[str], limit: int = 2) -> str:
    shown = ", ".join(sites[:limit])
    return shown + (f" and {len(sites) - limit} more" if len(sites) > limit else "")


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
    for name, n in sorted(rejections.items(), key=lambda kv: (-kv[1], FILTER_NAMES.index(kv[0]))):
        part = f"{n} {filter_label(name, max_latency_ms)}"
        if name in details:
            part += f" ({details[name]})"
        parts.append(part)
    head = f"0/{total_sites} sites fit"
    return head + (": " + ", ".join(parts) if parts else "")


class _Workload:
    """Per-column figures of one workload, in the engine's integer units."""

    def __init__(self, snap: Snapshot, w: int, codes: NDArray[np.int32]):
        cols, wls = snap.cols, snap.wls
        self.snap = snap
        self.w = w
        self.codes = codes
        self.tokens = bool(wls["accel"][w] <= 0)
        self.demand = float(wls["tokens_milli"][w] if self.tokens else wls["accel"][w])
        self.limit = int(wls["site_limit"][w])
        self.interruptible = bool(wls["interruptible"][w])
        self.tps = cols["tps_milli"].astype(np.float64)
        self.watts = cols["watts"].astype(np.float64)
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

    def power_words(self, s: int) -> str:
        """Which budget binds this workload at site ``s``."""
        if self.snap.site_kind[s] == KIND_FLEET:
            return "fleet power cap"
        return "power" if self.interruptible else "firm power"


def _filter_details(wk: _Workload) -> dict[str, str]:
    """The figures behind "insufficient devices" / "insufficient power" refusals: the
    need against the best site that refused it for that reason."""
    snap = wk.snap
    cols = snap.cols
    site = cols["site"]
    out: dict[str, str] = {}
    dev = np.flatnonzero(wk.codes == INSUFFICIENT_DEVICES)
    if dev.size:
        c = int(dev[np.argmax(cols["cap_devices"][dev])])
        need = wk.need_min[c]
        need_text = plural(int(need), "device") if math.isfinite(need) else "devices with a token rate"
        out["insufficient devices"] = (
            f"needs {need_text}; at most {int(cols['cap_devices'][c]):,} at {snap.site_names[int(site[c])]}"
        )
    pw = np.flatnonzero(wk.codes == INSUFFICIENT_POWER)
    if pw.size:
        budget = wk.budget(snap.site_total_watts, snap.site_firm_watts)[site[pw]]
        k = int(np.argmax(budget))
        c = int(pw[k])
        s = int(site[c])
        words = wk.power_words(s)
        need_w = float(wk.need_min[c] * wk.watts[c])
        if words == "firm power":
            out["insufficient power"] = f"needs {mw(need_w)} MW firm; {mw(budget[k])} MW firm at {snap.site_names[s]}"
        elif words == "power":
            out["insufficient power"] = f"needs {mw(need_w)} MW; {mw(budget[k])} MW usable at {snap.site_names[s]}"
        else:
            out["insufficient power"] = f"needs {mw(need_w)} MW; fleet cap {mw(budget[k])} MW at {snap.site_names[s]}"
    return out


# ---------------------------------------------------------------- cases 2-4: capacity


def _site_capacity(
    wk: _Workload, cols_of_site: NDArray[np.intp], devices: NDArray[np.float64], budget_watts: float
) -> float:
    """Most of this workload's demand unit (devices, or milli-tokens/s) one site can
    give it with ``devices`` per column and ``budget_watts`` left: an upper bound
    (pools share the site's power; each pool gives at most its devices)."""
    budget_watts = max(0.0, budget_watts)
    devices = np.maximum(devices, 0.0)
    if wk.tokens:
        by_devices = float((devices * wk.tps[cols_of_site]).sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            per_watt = np.where(wk.watts[cols_of_site] > 0, wk.tps[cols_of_site] / wk.watts[cols_of_site], np.inf)
        best = float(per_watt.max())
        by_power = math.inf if math.isinf(best) else budget_watts * best
        return min(by_devices, by_power)
    by_devices = float(devices.sum())
    least = float(wk.watts[cols_of_site].min())
    by_power = math.inf if least <= 0 else math.floor(budget_watts / least)
    return min(by_devices, by_power)


def _best_of(values: list[float], limit: int) -> float:
    return float(sum(sorted(values, reverse=True)[:limit]))


def _higher_priority(snap: Snapshot, w: int, sites: set[int], usage: Usage) -> list[int]:
    prio = snap.priority
    found = {o for s in sites for o in usage.site_workloads[s] if prio[o] > prio[w]}
    return sorted(found, key=lambda o: (-int(prio[o]), snap.keys[o]))


def _capacity_reason(wk: _Workload, n_feasible: int, usage: Usage, current_sites: set[int]) -> Reason:
    snap = wk.snap
    cols = snap.cols
    site = cols["site"]
    feasible_cols = np.flatnonzero(wk.codes == FEASIBLE)
    by_site = {s: feasible_cols[site[feasible_cols] == s] for s in sorted(set(site[feasible_cols].tolist()))}
    raw_budget = wk.budget(snap.site_total_watts, snap.site_firm_watts)
    left_budget = wk.budget(snap.site_total_watts - usage.site_watts, snap.site_firm_watts - usage.site_ni_watts)
    cap_left = (cols["cap_devices"] - usage.col_devices).astype(np.float64)
    needs = f"needs {wk.demand_text(wk.demand)}"
    its = f"its {plural(n_feasible, 'feasible site')}"
    have = "has" if n_feasible == 1 else "have"
    split = wk.limit > 1
    # 2. larger than everything its feasible sites have, even empty (a whole workload
    #    passed the filters on one pool, so it always fits there)
    if split:
        raw = [_site_capacity(wk, cs, cols["cap_devices"][cs].astype(np.float64), float(raw_budget[s]))
               for s, cs in by_site.items()]
        most = _best_of(raw, wk.limit)
        if most < wk.demand:
            if wk.limit < len(raw):
                return Reason(f"{needs}; the best {wk.limit} of {its} (maxSites {wk.limit}) "
                              f"have at most {wk.amount_text(most)}")
            return Reason(f"{needs}; {its} {have} at most {wk.amount_text(most)}")
    # 3. the capacity exists, but the plan gave it to others: room left per site, and
    #    the sites where it cannot take its share at all (a whole placement / 1 device)
    rooms: list[float] = []
    short: list[tuple[float, int, str, str]] = []  # (room, site, resource, figures)
    for s, cs in by_site.items():
        budget = float(left_budget[s])
        room_each = [_site_capacity(wk, cs[k:k + 1], cap_left[cs[k:k + 1]], budget) for k in range(cs.size)]
        if split:
            room = _site_capacity(wk, cs, cap_left[cs], budget)
            blocked = room < (float(wk.tps[cs].min()) if wk.tokens else 1.0)
            c = int(cs[int(np.argmax(room_each))])
            need = 1.0
        else:
            fits = [c for c in cs.tolist() if wk.need_full[c] <= cap_left[c] and wk.need_full[c] * wk.watts[c] <= budget]
            room = wk.demand if fits else max(room_each)
            blocked = not fits
            c = int(cs[int(np.argmax(room_each))])
            need = float(wk.need_full[c])
        rooms.append(room)
        if not blocked:
            continue
        if cap_left[c] < need:
            resource, figures = "devices", f"{max(0, int(cap_left[c])):,} free, needs {int(need):,}"
        else:
            resource = wk.power_words(s)
            figures = f"{mw(max(0.0, budget))} MW free, needs {mw(need * float(wk.watts[c]))} MW"
        short.append((room, s, resource, figures))
    room_total = _best_of(rooms, wk.limit) if split else max(rooms)
    if room_total >= wk.demand:
        # 4. room is left (on paper: pools share power): this solve did not find it
        return Reason(f"{needs}; {its} {have} room for {wk.amount_text(room_total)} now, "
                      "but this solve found no placement that fits it whole")
    head = f"{its} {have} room for {wk.amount_text(room_total)} now"
    if not split:
        head = f"no room left on {its}"
    parts: list[str] = []
    if short:
        short.sort(key=lambda t: (-t[0], snap.site_names[t[1]]))
        groups: dict[str, list[str]] = {}
        for _, s, resource, _ in short:
            groups.setdefault(resource, []).append(snap.site_names[s])
        for resource, names in groups.items():
            text = f"{resource} exhausted at {names[0]}"
            if resource == short[0][2]:
                text += f" ({short[0][3]})"
            if len(names) > 1:
                text += f", {_names(names[1:])}"
            parts.append(text)
    message = f"{needs}; {head}" + (f": {'; '.join(parts)}" if parts else "")
    exhausted = {s for _, s, _, _ in short}
    holders = _higher_priority(snap, wk.w, exhausted | current_sites, usage)
    if holders:
        message += f"; {plural(len(holders), 'higher-priority workload')} placed there"
    else:
        others = {o for s in exhausted for o in usage.site_workloads[s] if o != wk.w}
        if others:
            message += f"; {plural(len(others), 'workload')} of equal or lower priority placed there"
    return Reason(message, tuple(snap.keys[o] for o in holders))


def reasons(
    snap: Snapshot,
    unplaced: Sequence[int],
    rejections: Mapping[int, dict[str, int]],
    feasible_sites: Mapping[int, int],
    codes: NDArray[np.int32],
    usage: Usage,
) -> dict[int, Reason]:
    """A :class:`Reason` per unplaced workload. ``codes[i, c]`` is the filter code of
    ``unplaced[i]`` on column c (``FEASIBLE`` when it passes every filter)."""
    total_sites = int(np.count_nonzero(np.diff(snap.cols["site_ptr"]) > 0))
    out: dict[int, Reason] = {}
    for i, w in enumerate(unplaced):
        wd = snap.mesh.workloads[w]
        wk = _Workload(snap, w, codes[i])
        if feasible_sites[w] == 0 or not (wk.codes == FEASIBLE).any():
            out[w] = Reason(no_fit_message(total_sites, rejections[w], wd.max_latency_ms, _filter_details(wk)))
            continue
        current = {snap.site_index[a.site] for a in wd.current if a.site in snap.site_index and a.devices > 0}
        out[w] = _capacity_reason(wk, feasible_sites[w], usage, current)
    return out
