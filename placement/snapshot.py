"""Snapshot: turn a :class:`~placement.problem.Mesh` into the kernels' arrays.

First step of the pipeline, called by :mod:`placement.pipeline` (and the benchmarks).
:func:`build` makes the snapshot of a mesh; :func:`residual` restricts one to some
workloads against the capacity others leave (the warm re-solve). Each factory accelerator pool and each
fleet becomes a *site column*; columns of one site are contiguous (``site_ptr``), so
the kernel can count rejections per site. Workloads become flat arrays, with users
and current assignments as CSR lists, and sovereignty / model rules as small
``[W, n]`` boolean matrices over the countries and models present in the mesh. The
arrays are typed (:class:`~placement_ext.ColumnArrays`,
:class:`~placement_ext.WorkloadArrays`), built once here; ``Snapshot.kernels`` is the
:class:`~placement_ext.MeshKernels` handle over them, checked and bound once per
snapshot and shared by every stage of a solve.

All quantities the kernel compares are integer-valued floats (see
:mod:`placement.capacity`), so the Cython kernel, its NumPy twin, the greedy placer
and CP-SAT agree exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from placement import capacity as cap
from placement.decisions import KIND_FACTORY, KIND_FLEET
from placement.problem import DEFAULT_CONFIG, Mesh, SolverConfig
from placement.topology import LatencyMatrix, latency_matrix
from placement_ext import ColumnArrays, MeshKernels, WorkloadArrays

ENERGY_LEVELS = 1000  # energy tier per device is an integer in 0..ENERGY_LEVELS


@dataclass(slots=True)
class Snapshot:
    mesh: Mesh
    cols: ColumnArrays  # column arrays for the kernels
    wls: WorkloadArrays  # workload arrays for the kernels
    latency: LatencyMatrix
    # column metadata
    col_site_name: list[str]
    col_kind: list[str]
    col_model_name: list[str]
    col_tps: NDArray[np.float64]  # per-device tokens/s (real, for reporting)
    col_watts_real: NDArray[np.float64]  # per-device facility watts (real, for reporting)
    # site metadata (index = site id used in cols.site)
    site_names: list[str]
    site_kind: list[str]
    site_firm_watts: NDArray[np.float64]  # firm budget (fleets: the fleet cap), whole watts
    site_total_watts: NDArray[np.float64]  # usable budget, whole watts
    site_index: dict[str, int]
    # workloads
    keys: list[str]
    priority: NDArray[np.int64]
    demand_units: NDArray[np.int64]  # reference-device equivalents
    value: NDArray[np.int64]  # tier-1 weight = (priority + 1) x demand_units
    ref_tps: float
    # the kernels bound to cols / wls, built on first use (see ``kernels``); not an
    # __init__ argument, so ``replace`` starts the copy without one
    _kernels: MeshKernels | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def kernels(self) -> MeshKernels:
        """The compiled kernels bound to this snapshot's arrays, checked and bound on
        first use and then shared by every stage of the solve. Rebuilt if ``cols`` or
        ``wls`` were swapped for other arrays since."""
        bound = self._kernels
        if bound is None or bound.cols is not self.cols or bound.wls is not self.wls:
            bound = self._kernels = MeshKernels(self.cols, self.wls)
        return bound

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


def _array(columns: list[_Column], field: str, dtype: type[np.generic]) -> NDArray[Any]:
    return np.asarray([getattr(c, field) for c in columns], dtype=dtype)


def build(mesh: Mesh, config: SolverConfig = DEFAULT_CONFIG) -> Snapshot:
    """The kernels' view of ``mesh``: site columns, workload rows, latency matrix."""
    lm = latency_matrix(mesh)
    # ---- columns
    columns: list[_Column] = []
    site_ptr = [0]
    site_names: list[str] = []
    site_kind: list[str] = []
    site_firm: list[float] = []
    site_total: list[float] = []
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
    for fl in mesh.fleets:
        cap_w = cap.budget_watts(fl.max_fleet_mw)  # fleets: no firm/flexible split, no PUE
        si = add_site(fl.name, KIND_FLEET, cap_w, cap_w)
        columns.append(_Column(
            site=si, is_fleet=1, cordoned=int(fl.cordoned), country=cidx(fl.country),
            model=midx(fl.accelerator_model), memory_gib=fl.memory_gib,
            cap_devices=float(cap.fleet_effective_devices(fl, mesh.at)),
            tps_milli=cap.tps_milli(fl.tokens_per_second_per_device), tps=fl.tokens_per_second_per_device,
            watts=cap.device_watts(fl.watts_per_device, 1.0), watts_real=fl.watts_per_device,
            firm_watts=cap_w, total_watts=cap_w,
            price_per_mwh=fl.price_per_mwh, carbon_grams_per_kwh=fl.carbon_grams_per_kwh,
            latency_site=lm.site_index[fl.name], site_name=fl.name, kind=KIND_FLEET,
            model_name=fl.accelerator_model,
        ))
        site_ptr.append(len(columns))

    watts = _array(columns, "watts", np.float64)
    tpsm = _array(columns, "tps_milli", np.float64)
    e_dev, e_tok = energy_tiers(
        watts, tpsm, _array(columns, "price_per_mwh", np.float64), _array(columns, "carbon_grams_per_kwh", np.float64),
        config,
    )
    cols = ColumnArrays(
        site=_array(columns, "site", np.int32),
        is_fleet=_array(columns, "is_fleet", np.uint8),
        cordoned=_array(columns, "cordoned", np.uint8),
        country=_array(columns, "country", np.int32),
        model=_array(columns, "model", np.int32),
        memory_gib=_array(columns, "memory_gib", np.float64),
        cap_devices=_array(columns, "cap_devices", np.float64),
        tps_milli=tpsm,
        watts=watts,
        e_dev=e_dev,
        e_tok=e_tok,
        firm_watts=_array(columns, "firm_watts", np.float64),
        total_watts=_array(columns, "total_watts", np.float64),
        site_ptr=np.asarray(site_ptr, dtype=np.int32),
    )
    # ---- workloads
    W = len(mesh.workloads)
    n_c = max(1, len(countries))
    n_m = max(1, len(models))
    country_ok = np.zeros((W, n_c), dtype=np.uint8)
    model_ok = np.zeros((W, n_m), dtype=np.uint8)
    user_ptr, user_region, user_weight = [0], [], []
    cur_ptr, cur_site = [0], []
    is_tr: list[int] = []
    allow_fl: list[int] = []
    intr: list[int] = []
    limit: list[int] = []
    accel: list[float] = []
    tok: list[float] = []
    mem: list[float] = []
    maxlat: list[float] = []
    site_index = {n: i for i, n in enumerate(site_names)}
    positive = tpsm[tpsm > 0]
    ref_tps = float(np.median(positive)) / 1000.0 if positive.size else 1.0
    units = np.zeros(W, dtype=np.int64)
    prio = np.zeros(W, dtype=np.int64)
    # workloads share their country and model lists: each distinct one is worked out once
    country_rows: dict[tuple[tuple[str, ...], tuple[str, ...]], NDArray[np.uint8]] = {}
    model_rows: dict[tuple[str, ...], NDArray[np.uint8]] = {}
    for wi, w in enumerate(mesh.workloads):
        key = (tuple(w.allowed_countries), tuple(w.denied_countries))
        row = country_rows.get(key)
        if row is None:
            allowed, denied = set(key[0]), set(key[1])
            row = country_rows[key] = np.zeros(n_c, dtype=np.uint8)
            for c, k in countries.items():
                row[k] = (not allowed or c in allowed) and c not in denied
        country_ok[wi] = row
        wanted_key = tuple(w.accelerator_models)
        row = model_rows.get(wanted_key)
        if row is None:
            wanted = set(wanted_key)
            row = model_rows[wanted_key] = np.zeros(n_m, dtype=np.uint8)
            for m, k in models.items():
                row[k] = not wanted or m in wanted
        model_ok[wi] = row
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
            tokens = w.tokens_per_second or 0.0  # set: WorkloadDemand checks exactly one is
            accel.append(0.0)
            tok.append(cap.demand_milli(tokens))
            units[wi] = max(1, math.ceil(tokens / ref_tps - 1e-9))
        mem.append(float(w.min_memory_gib))
        maxlat.append(math.inf if w.max_latency_ms is None else float(w.max_latency_ms))
        prio[wi] = w.priority
    wls = WorkloadArrays(
        is_training=np.asarray(is_tr, dtype=np.uint8),
        allow_fleets=np.asarray(allow_fl, dtype=np.uint8),
        interruptible=np.asarray(intr, dtype=np.uint8),
        site_limit=np.asarray(limit, dtype=np.int32),
        accel=np.asarray(accel, dtype=np.float64),
        tokens_milli=np.asarray(tok, dtype=np.float64),
        min_memory_gib=np.asarray(mem, dtype=np.float64),
        max_latency_ms=np.asarray(maxlat, dtype=np.float64),
        user_ptr=np.asarray(user_ptr, dtype=np.int32),
        user_region=np.asarray(user_region, dtype=np.int32),
        user_weight=np.asarray(user_weight, dtype=np.float64),
        cur_ptr=np.asarray(cur_ptr, dtype=np.int32),
        cur_site=np.asarray(cur_site, dtype=np.int32),
        country_ok=country_ok,
        model_ok=model_ok,
        latency=np.ascontiguousarray(lm.ms[:, _array(columns, "latency_site", np.intp)])
        if columns
        else np.zeros((len(lm.regions), 0)),
    )
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
    watts: NDArray[np.float64],
    tps_milli: NDArray[np.float64],
    price_per_mwh: NDArray[np.float64],
    carbon_grams_per_kwh: NDArray[np.float64],
    config: SolverConfig,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Integer energy tier per device and column, 0..ENERGY_LEVELS (lower is better).

    Energy cost rate of one device = facility MW x (price + carbon x shadow price),
    in $/h. ``e_tok`` (token-demand workloads) is proportional to it, so fewer,
    more efficient devices cost less: tokens per joule is priced in. ``e_dev``
    (device-count demand, where the count is fixed) also rewards tokens/s per
    device: (cost / max_cost - efficiency_weight x tps / max_tps), rescaled.
    """
    if watts.size == 0:
        return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.float64)
    usd_per_mwh = np.maximum(0.0, price_per_mwh) + np.maximum(
        0.0, carbon_grams_per_kwh
    ) * config.objective.carbon_price_per_tonne / 1000.0
    rate = watts / 1e6 * usd_per_mwh
    top = float(rate.max())
    norm = rate / top if top > 0 else np.zeros_like(rate)
    e_tok = np.floor(norm * ENERGY_LEVELS + 0.5)
    tmax = float(tps_milli.max())
    tnorm = tps_milli / tmax if tmax > 0 else np.zeros_like(rate)
    ew = max(0.0, config.objective.efficiency_weight)
    raw = (norm - ew * tnorm + ew) / (1.0 + ew)
    e_dev = np.floor(np.clip(raw, 0.0, 1.0) * ENERGY_LEVELS + 0.5)
    return e_dev.astype(np.float64), e_tok.astype(np.float64)


def _subset_rows(ptr: NDArray[np.int32], idx: NDArray[np.intp]) -> tuple[NDArray[np.int32], NDArray[np.intp]]:
    """CSR pointer of rows ``idx`` re-based to 0, and the item positions they hold."""
    lo, hi = ptr[idx], ptr[idx + 1]
    sub_ptr = np.concatenate(([0], np.cumsum(hi - lo))).astype(ptr.dtype)
    take = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]) if len(idx) else np.zeros(0)
    return sub_ptr, take.astype(np.intp)


def _subset_wls(wls: WorkloadArrays, idx: NDArray[np.intp]) -> WorkloadArrays:
    """The kernels' workload arrays restricted to rows ``idx`` (CSR lists re-based;
    ``latency`` is over regions and columns, so it is kept whole)."""

    def rows(a: NDArray[Any]) -> NDArray[Any]:
        return np.ascontiguousarray(a[idx])

    user_ptr, users = _subset_rows(wls.user_ptr, idx)
    cur_ptr, cur = _subset_rows(wls.cur_ptr, idx)
    return replace(
        wls,
        is_training=rows(wls.is_training),
        allow_fleets=rows(wls.allow_fleets),
        interruptible=rows(wls.interruptible),
        site_limit=rows(wls.site_limit),
        accel=rows(wls.accel),
        tokens_milli=rows(wls.tokens_milli),
        min_memory_gib=rows(wls.min_memory_gib),
        max_latency_ms=rows(wls.max_latency_ms),
        user_ptr=user_ptr,
        user_region=np.ascontiguousarray(wls.user_region[users]),
        user_weight=np.ascontiguousarray(wls.user_weight[users]),
        cur_ptr=cur_ptr,
        cur_site=np.ascontiguousarray(wls.cur_site[cur]),
        country_ok=rows(wls.country_ok),
        model_ok=rows(wls.model_ok),
    )


def residual(
    snap: Snapshot,
    idx: NDArray[np.intp],
    col_used: NDArray[np.float64],
    site_used_watts: NDArray[np.float64],
    site_ni_used_watts: NDArray[np.float64],
) -> Snapshot:
    """Snapshot of workloads ``idx`` against the capacity others leave.

    ``col_used`` devices per column, ``site_used_watts`` (all load) and
    ``site_ni_used_watts`` (non-interruptible load) per site are what the others
    take; the result's budgets are what remains (possibly negative: the caller
    checks). Called by the warm path of :mod:`placement.pipeline`.
    """
    total = snap.site_total_watts - site_used_watts
    firm = np.minimum(snap.site_firm_watts, snap.site_total_watts) - site_ni_used_watts
    site = snap.cols.site
    cols = replace(
        snap.cols, cap_devices=snap.cols.cap_devices - col_used, total_watts=total[site], firm_watts=firm[site]
    )
    mesh = replace(snap.mesh, workloads=tuple(snap.mesh.workloads[i] for i in idx))
    return replace(
        snap,
        mesh=mesh,
        cols=cols,
        wls=_subset_wls(snap.wls, idx),
        site_firm_watts=firm,
        site_total_watts=total,
        keys=[snap.keys[i] for i in idx],
        priority=snap.priority[idx],
        demand_units=snap.demand_units[idx],
        value=snap.value[idx],
    )
