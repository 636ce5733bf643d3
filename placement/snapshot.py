"""Snapshot: turn a :class:`~placement.problem.Mesh` into the kernels' arrays.

First step of the pipeline (snapshot -> filter/score -> select -> assign), called by
:mod:`placement.pipeline` and the benchmarks. Each factory accelerator pool and each
fleet becomes a *site column*; columns of one site are contiguous (``site_ptr``), so
the kernel can count rejections per site. Workloads become flat arrays, with users
and current assignments as CSR lists, and sovereignty / model rules as small
``[W, n]`` boolean matrices over the countries and models present in the mesh.

All quantities the kernel compares are integer-valued floats (see
:mod:`placement.capacity`), so the Cython kernel, its NumPy twin, the greedy placer
and CP-SAT agree exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from placement import capacity as cap
from placement.decisions import KIND_FACTORY, KIND_FLEET
from placement.problem import Mesh, SolverConfig
from placement.topology import LatencyMatrix, latency_matrix

ENERGY_LEVELS = 1000  # energy tier per device is an integer in 0..ENERGY_LEVELS


@dataclass(slots=True)
class Snapshot:
    mesh: Mesh
    cols: dict  # column arrays for the kernels (+ "site_ptr")
    wls: dict  # workload arrays for the kernels (+ "latency")
    latency: LatencyMatrix
    # column metadata
    col_site_name: list[str]
    col_kind: list[str]
    col_model_name: list[str]
    col_tps: np.ndarray  # per-device tokens/s (real, for reporting)
    col_watts_real: np.ndarray  # per-device facility watts (real, for reporting)
    # site metadata (index = site id used in cols["site"])
    site_names: list[str]
    site_kind: list[str]
    site_firm_watts: np.ndarray
    site_total_watts: np.ndarray
    site_index: dict[str, int]
    # workloads
    keys: list[str]
    priority: np.ndarray  # int64
    demand_units: np.ndarray  # int64, reference-device equivalents
    value: np.ndarray  # int64, tier-1 weight = (priority + 1) x demand_units
    ref_tps: float

    @property
    def n_cols(self) -> int:
        return len(self.col_site_name)

    @property
    def n_sites(self) -> int:
        return len(self.site_names)


@dataclass(frozen=True, slots=True)
class _Column:
    """One site column (a factory's accelerator pool, or a fleet) before it becomes a
    row of the kernel's column arrays."""

    site: int
    is_fleet: int
    cordoned: int
    country: int
    model: int
    memory_gib: float
    cap_devices: float
    tps_milli: float
    tps: float  # real per-device tokens/s, for reporting
    watts: float  # integer facility watts per device (the kernel's)
    watts_real: float  # real facility watts per device, for reporting
    firm_watts: float
    total_watts: float
    price_per_mwh: float
    carbon_grams_per_kwh: float
    latency_site: int
    site_name: str
    kind: str
    model_name: str


def _array(columns: list[_Column], field: str, dtype) -> np.ndarray:
    return np.asarray([getattr(c, field) for c in columns], dtype=dtype)


def build(mesh: Mesh, config: SolverConfig = SolverConfig()) -> Snapshot:
    lm = latency_matrix(mesh)
    # ---- columns
    columns: list[_Column] = []
    site_ptr = [0]
    site_names, site_kind, site_firm, site_total = [], [], [], []
    countries: dict[str, int] = {}
    models: dict[str, int] = {}

    def cidx(c: str) -> int:
        return countries.setdefault(c, len(countries))

    def midx(m: str) -> int:
        return models.setdefault(m, len(models))

    def add_site(name: str, kind: str, firm_w: float, total_w: float) -> int:
        site_names.append(name)
        site_kind.append(kind)
        site_firm.append(firm_w)
        site_total.append(total_w)
        return len(site_names) - 1

    for f in mesh.factories:
        firm_w = cap.budget_watts(f.firm_mw)
        total_w = cap.budget_watts(cap.factory_usable_mw(f))
        si = add_site(f.name, KIND_FACTORY, firm_w, total_w)
        for p in f.pools:
            columns.append(_Column(
                site=si, is_fleet=0, cordoned=int(f.cordoned), country=cidx(f.country),
                model=midx(p.model), memory_gib=p.memory_gib, cap_devices=float(max(0, p.count)),
                tps_milli=cap.tps_milli(p.tokens_per_second_per_device),
                tps=p.tokens_per_second_per_device,
                watts=cap.device_watts(p.watts_per_device, f.pue), watts_real=p.watts_per_device * f.pue,
                firm_watts=firm_w, total_watts=total_w,
                price_per_mwh=f.price_per_mwh, carbon_grams_per_kwh=f.carbon_grams_per_kwh,
                latency_site=lm.site_index[f.name], site_name=f.name, kind=KIND_FACTORY, model_name=p.model,
            ))
        site_ptr.append(len(columns))
    for f in mesh.fleets:
        cap_w = cap.budget_watts(f.max_fleet_mw)  # fleets: no firm/flexible split, no PUE
        si = add_site(f.name, KIND_FLEET, cap_w, cap_w)
        columns.append(_Column(
            site=si, is_fleet=1, cordoned=int(f.cordoned), country=cidx(f.country),
            model=midx(f.accelerator_model), memory_gib=f.memory_gib,
            cap_devices=float(cap.fleet_effective_devices(f, mesh.at)),
            tps_milli=cap.tps_milli(f.tokens_per_second_per_device), tps=f.tokens_per_second_per_device,
            watts=cap.device_watts(f.watts_per_device, 1.0), watts_real=f.watts_per_device,
            firm_watts=cap_w, total_watts=cap_w,
            price_per_mwh=f.price_per_mwh, carbon_grams_per_kwh=f.carbon_grams_per_kwh,
            latency_site=lm.site_index[f.name], site_name=f.name, kind=KIND_FLEET, model_name=f.accelerator_model,
        ))
        site_ptr.append(len(columns))

    watts = _array(columns, "watts", np.float64)
    tpsm = _array(columns, "tps_milli", np.float64)
    e_dev, e_tok = energy_tiers(
        watts, tpsm, _array(columns, "price_per_mwh", float), _array(columns, "carbon_grams_per_kwh", float), config
    )
    cols = {
        "site": _array(columns, "site", np.int32),
        "is_fleet": _array(columns, "is_fleet", np.uint8),
        "cordoned": _array(columns, "cordoned", np.uint8),
        "country": _array(columns, "country", np.int32),
        "model": _array(columns, "model", np.int32),
        "memory_gib": _array(columns, "memory_gib", np.float64),
        "cap_devices": _array(columns, "cap_devices", np.float64),
        "tps_milli": tpsm,
        "watts": watts,
        "e_dev": e_dev,
        "e_tok": e_tok,
        "firm_watts": _array(columns, "firm_watts", np.float64),
        "total_watts": _array(columns, "total_watts", np.float64),
        "site_ptr": np.asarray(site_ptr, dtype=np.int32),
    }
    # ---- workloads
    W = len(mesh.workloads)
    n_c = max(1, len(countries))
    n_m = max(1, len(models))
    country_ok = np.zeros((W, n_c), dtype=np.uint8)
    model_ok = np.zeros((W, n_m), dtype=np.uint8)
    user_ptr, user_region, user_weight = [0], [], []
    cur_ptr, cur_site = [0], []
    is_tr, allow_fl, intr, limit = [], [], [], []
    accel, tok, mem, maxlat = [], [], [], []
    site_index = {n: i for i, n in enumerate(site_names)}
    positive = tpsm[tpsm > 0]
    ref_tps = float(np.median(positive)) / 1000.0 if positive.size else 1.0
    units = np.zeros(W, dtype=np.int64)
    prio = np.zeros(W, dtype=np.int64)
    for wi, w in enumerate(mesh.workloads):
        allowed = set(w.allowed_countries)
        denied = set(w.denied_countries)
        for c, k in countries.items():
            country_ok[wi, k] = (not allowed or c in allowed) and c not in denied
        wanted = set(w.accelerator_models)
        for m, k in models.items():
            model_ok[wi, k] = not wanted or m in wanted
        for u in w.users:
            if u.weight > 0:
                user_region.append(lm.region_index[u.region])
                user_weight.append(float(u.weight))
        user_ptr.append(len(user_region))
        for a in w.current:
            s = site_index.get(a.site)
            if s is not None and a.devices > 0:
                cur_site.append(s)
        cur_ptr.append(len(cur_site))
        is_tr.append(int(w.gang))
        allow_fl.append(int(w.allow_fleets))
        intr.append(int(w.interruptible))
        limit.append(w.site_limit)
        if w.accelerators is not None:
            accel.append(float(w.accelerators))
            tok.append(0.0)
            units[wi] = w.accelerators
        else:
            accel.append(0.0)
            tok.append(cap.demand_milli(w.tokens_per_second))
            units[wi] = max(1, math.ceil(w.tokens_per_second / ref_tps - 1e-9))
        mem.append(float(w.min_memory_gib))
        maxlat.append(math.inf if w.max_latency_ms is None else float(w.max_latency_ms))
        prio[wi] = w.priority
    wls = {
        "is_training": np.asarray(is_tr, dtype=np.uint8),
        "allow_fleets": np.asarray(allow_fl, dtype=np.uint8),
        "interruptible": np.asarray(intr, dtype=np.uint8),
        "site_limit": np.asarray(limit, dtype=np.int32),
        "accel": np.asarray(accel, dtype=np.float64),
        "tokens_milli": np.asarray(tok, dtype=np.float64),
        "min_memory_gib": np.asarray(mem, dtype=np.float64),
        "max_latency_ms": np.asarray(maxlat, dtype=np.float64),
        "user_ptr": np.asarray(user_ptr, dtype=np.int32),
        "user_region": np.asarray(user_region, dtype=np.int32),
        "user_weight": np.asarray(user_weight, dtype=np.float64),
        "cur_ptr": np.asarray(cur_ptr, dtype=np.int32),
        "cur_site": np.asarray(cur_site, dtype=np.int32),
        "country_ok": country_ok,
        "model_ok": model_ok,
        "latency": np.ascontiguousarray(lm.ms[:, _array(columns, "latency_site", np.intp)])
        if columns
        else np.zeros((len(lm.regions), 0)),
    }
    return Snapshot(
        mesh=mesh,
        cols=cols,
        wls=wls,
        latency=lm,
        col_site_name=[c.site_name for c in columns],
        col_kind=[c.kind for c in columns],
        col_model_name=[c.model_name for c in columns],
        col_tps=_array(columns, "tps", np.float64),
        col_watts_real=_array(columns, "watts_real", np.float64),
        site_names=site_names,
        site_kind=site_kind,
        site_firm_watts=np.asarray(site_firm, dtype=np.float64),
        site_total_watts=np.asarray(site_total, dtype=np.float64),
        site_index=site_index,
        keys=[w.key for w in mesh.workloads],
        priority=prio,
        demand_units=units,
        value=(prio + 1) * units,
        ref_tps=ref_tps,
    )


def energy_tiers(
    watts: np.ndarray,
    tps_milli: np.ndarray,
    price_per_mwh: np.ndarray,
    carbon_grams_per_kwh: np.ndarray,
    config: SolverConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Integer energy tier per device and column, 0..ENERGY_LEVELS (lower is better).

    Energy cost rate of one device = facility MW x (price + carbon x shadow price),
    in $/h. ``e_tok`` (token-demand workloads) is proportional to it, so fewer,
    more efficient devices cost less: tokens per joule is priced in. ``e_dev``
    (device-count demand, where the count is fixed) also rewards tokens/s per
    device: (cost / max_cost - efficiency_weight x tps / max_tps), rescaled.
    """
    if watts.size == 0:
        return np.zeros(0), np.zeros(0)
    usd_per_mwh = np.maximum(0.0, price_per_mwh) + np.maximum(
        0.0, carbon_grams_per_kwh
    ) * config.carbon_price_per_tonne / 1000.0
    rate = watts / 1e6 * usd_per_mwh
    top = float(rate.max())
    norm = rate / top if top > 0 else np.zeros_like(rate)
    e_tok = np.floor(norm * ENERGY_LEVELS + 0.5)
    tmax = float(tps_milli.max())
    tnorm = tps_milli / tmax if tmax > 0 else np.zeros_like(rate)
    ew = max(0.0, config.efficiency_weight)
    raw = (norm - ew * tnorm + ew) / (1.0 + ew)
    e_dev = np.floor(np.clip(raw, 0.0, 1.0) * ENERGY_LEVELS + 0.5)
    return e_dev.astype(np.float64), e_tok.astype(np.float64)
