"""Capacity model: usable power, fleet availability, integer device and power units.

Called by :mod:`placement.snapshot` (and by the tests directly). Rules:
- factory power of a device = watts x PUE; usable = firm + max(0, flexible -
  curtailed); non-interruptible load may use firm power only;
- fleet effective devices at time t = floor(devices x opt_in_ratio x
  online_ratio(t)); fleet draw (no PUE) <= max_fleet_mw;
- the engine works in integers so that the kernel, the greedy placer and CP-SAT
  agree exactly: per-device watts are rounded UP, power budgets DOWN, per-device
  tokens/s DOWN (in milli-tokens) and token demand UP. Every integer plan is
  therefore feasible in real units.
"""

from __future__ import annotations

import datetime as _dt
import math
from functools import lru_cache
from zoneinfo import ZoneInfo

from placement.problem import FactorySite, FleetSite

MAX_BUDGET_WATTS = 1e15  # stands in for "no cap" (inf) in integer arithmetic
_EPS = 1e-6


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _in_window(t: _dt.time, start: _dt.time, end: _dt.time) -> bool:
    if start == end:
        return True
    if start < end:
        return start <= t < end
    return t >= start or t < end  # wraps midnight


def online_ratio(fleet: FleetSite, at: _dt.datetime) -> float:
    """Share of opted-in devices online at ``at`` (tz-aware).

    No windows: 1.0. Outside every window: 0.0. Overlapping windows: the highest
    ratio. Each window is read in its own IANA time zone's local time.
    """
    if not fleet.availability:
        return 1.0
    best = 0.0
    for w in fleet.availability:
        local = at.astimezone(_zone(w.timezone)).time().replace(tzinfo=None)
        if _in_window(local, w.start, w.end):
            best = max(best, w.online_ratio)
    return best


def fleet_effective_devices(fleet: FleetSite, at: _dt.datetime) -> int:
    """devices x opt-in x online ratio now, floored; 0 when cordoned is NOT applied here."""
    return int(math.floor(fleet.devices * fleet.opt_in_ratio * online_ratio(fleet, at) + _EPS))


def flexible_available_mw(f: FactorySite) -> float:
    """Interruptible power left after curtailment (curtailment eats flexible first)."""
    return max(0.0, f.flexible_mw - f.curtailed_mw)


def factory_usable_mw(f: FactorySite) -> float:
    return f.firm_mw + flexible_available_mw(f)


def device_watts(watts: float, pue: float = 1.0) -> float:
    """Facility watts of one device, rounded up to a whole watt."""
    return float(math.ceil(watts * pue - _EPS))


def budget_watts(mw: float) -> float:
    """A power budget in whole watts, rounded down (inf -> MAX_BUDGET_WATTS)."""
    if not math.isfinite(mw):
        return MAX_BUDGET_WATTS
    return float(min(MAX_BUDGET_WATTS, math.floor(max(0.0, mw) * 1e6 + _EPS)))


def tps_milli(tokens_per_second: float) -> float:
    """Per-device supply in milli-tokens/s, rounded down."""
    return float(math.floor(max(0.0, tokens_per_second) * 1000.0 + _EPS))


def demand_milli(tokens_per_second: float) -> float:
    """Demand in milli-tokens/s, rounded up."""
    return float(math.ceil(tokens_per_second * 1000.0 - _EPS))
