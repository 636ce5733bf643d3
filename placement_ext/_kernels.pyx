"""Typed inner loops of the placement engine.

Called by the stages of ``placement`` (and the benchmarks) through ``MeshKernels``:
the handle a snapshot builds once over its ``ColumnArrays`` / ``WorkloadArrays``
(``placement_ext.arrays``, built by ``placement.snapshot``). Its constructor checks
the arrays and binds them to C structs; each method is a thin typed wrapper that
releases the GIL around ``nogil`` ``cdef`` kernels over them. The module-level
functions of the same names bind the arrays for one call. Compiler directives
(boundscheck, wraparound, cdivision, ...) are set once in ``setup.py``.

Kernels (methods of ``MeshKernels``):
- ``filter_score_topk``: one fused pass over all workload x site-column pairs:
  feasibility (cordon, kind, sovereignty, latency, model, memory, coarse capacity and
  power), an integer-valued cost (energy >> latency >> stability), the top-K cheapest
  feasible columns per workload (fixed-size heap; ties by column index) and, per
  workload, the number of SITES rejected by each filter. Parallel over workloads.
- ``greedy_place``: the kube-scheduler way: workloads one at a time in the given
  order, each filtered and scored against all columns with the capacity still left,
  best fitting column(s) taken, whole or not at all, over at most ``site_limit``
  distinct sites, with no surplus device. CP-SAT hint and fallback. Optionally each
  workload first where a given plan has it (the warm path's in-place floor).
- ``evaluate_pairs``, ``feasible_pairs``: the same pair evaluation for given pairs
  and for all feasible pairs (CSR).
- ``lagrangian_eval`` (module-level: it takes the CSR pairs, not the mesh arrays): the
  Lagrangian subproblem of ``placement.bound`` over the feasible pairs.

``OPENMP`` tells whether this build runs the parallel loops (``prange``) with OpenMP;
``setup.py`` enables it when the compiler accepts it. Without it the loops run
serially and every result is the same.

``placement_ext.reference`` holds the NumPy and pure-Python twins; the tests prove they
agree with these kernels.
"""

import numpy as np

from placement_ext.arrays import ColumnArrays, WorkloadArrays
from placement_ext.pairs import PairVerdicts

cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport ceil, floor, INFINITY

cnp.import_array()

cdef extern from *:
    """
    #ifdef _OPENMP
    #define MESHPLANE_HAS_OPENMP 1
    #else
    #define MESHPLANE_HAS_OPENMP 0
    #endif
    """
    const int MESHPLANE_HAS_OPENMP

# Whether the C compiler built this module with OpenMP (``_OPENMP`` defined).
OPENMP = bool(MESHPLANE_HAS_OPENMP)

# The filters (``Filter``, declared in _kernels.pxd) and their words in a decision's
# ``rejections`` and in explanations; N_FILTERS counts the refusing ones.
cdef enum:
    N_FILTERS = FEASIBLE
FILTER_LABELS = {
    Filter.CORDONED: "cordoned",
    Filter.TRAINING_NEEDS_FACTORY: "training needs a factory",
    Filter.FLEETS_NOT_ALLOWED: "fleets not allowed",
    Filter.COUNTRY_NOT_ALLOWED: "country not allowed",
    Filter.LATENCY: "latency",
    Filter.ACCELERATOR_MODEL: "accelerator model",
    Filter.MEMORY: "memory",
    Filter.OFFLINE_NOW: "offline now",
    Filter.INSUFFICIENT_DEVICES: "insufficient devices",
    Filter.INSUFFICIENT_POWER: "insufficient power",
}
FILTER_NAMES = tuple(FILTER_LABELS[Filter(code)] for code in range(N_FILTERS))


# Integer cost scaling: per device, energy tier x 1e6 + latency tier x 1e3 + stability.
cdef double _ENERGY_SCALE = 1_000_000.0
cdef double _LATENCY_SCALE = 1_000.0
cdef double _MAX_LATENCY_TIER = 999.0
cdef double _STABILITY_PENALTY = 100.0
ENERGY_SCALE = _ENERGY_SCALE
LATENCY_SCALE = _LATENCY_SCALE
MAX_LATENCY_TIER = _MAX_LATENCY_TIER
STABILITY_PENALTY = _STABILITY_PENALTY


# --------------------------------------------------------------------------- pairs

cdef struct Cols:
    # per site column (a factory's accelerator pool, or a fleet)
    const int* site
    const unsigned char* is_fleet
    const unsigned char* cordoned
    const int* country
    const int* model
    const double* memory_gib
    const double* cap_devices
    const double* tps_milli      # per-device tokens/s x 1000, floored (integer-valued)
    const double* watts          # per-device facility watts, ceiled (integer-valued)
    const double* e_dev          # energy tier per device for device-demand workloads
    const double* e_tok          # energy tier per device for token-demand workloads
    const double* firm_watts     # site firm power (fleet: cap), integer-valued
    const double* total_watts    # site firm + max(0, flexible - curtailed)
    Py_ssize_t n


cdef struct Wls:
    const unsigned char* is_training
    const unsigned char* allow_fleets
    const unsigned char* interruptible
    const int* site_limit
    const double* accel          # devices (0 if token demand)
    const double* tokens_milli   # tokens/s x 1000, ceiled (0 if device demand)
    const double* min_memory_gib
    const double* max_latency_ms # INFINITY if none
    const int* user_ptr
    const int* user_region
    const double* user_weight
    const int* cur_ptr
    const int* cur_site
    const unsigned char* country_ok  # [W, n_countries]
    Py_ssize_t n_countries
    const unsigned char* model_ok    # [W, n_models]
    Py_ssize_t n_models
    const double* latency        # [R, C] region x column, ms; INFINITY = unreachable
    Py_ssize_t n_cols


cdef struct Figures:
    # what a refusing filter compared: the workload's figure and the column's
    # (LATENCY: worst user ms / the limit; MEMORY: GiB needed / the pool's;
    # INSUFFICIENT_DEVICES: devices needed / the column's; INSUFFICIENT_POWER: watts
    # needed / the watts it may draw there; COUNTRY_NOT_ALLOWED / ACCELERATOR_MODEL:
    # the column's country / model index as ``have``; otherwise 0 / 0)
    double need
    double have


cdef inline Filter _refuse(Filter f, double need, double have, Figures* fig) noexcept nogil:
    fig.need = need
    fig.have = have
    return f


cdef inline Filter _pair_eval(
    const Cols* c, const Wls* w, Py_ssize_t wi, Py_ssize_t ci,
    double* out_n, double* out_lat, double* out_cost, Figures* fig,
) noexcept nogil:
    """The first filter refusing workload wi on column ci (its figures in ``fig``), or
    FEASIBLE (with the devices, latency and cost of the pair)."""
    cdef int u, k
    cdef double L, wt, lmax = 0.0, lsum = 0.0, wsum = 0.0, lat = 0.0
    cdef double n, need_min, power, avail, e, lq, st
    if c.cordoned[ci]:
        return _refuse(CORDONED, 0.0, 0.0, fig)
    if c.is_fleet[ci]:
        if w.is_training[wi]:
            return _refuse(TRAINING_NEEDS_FACTORY, 0.0, 0.0, fig)
        if not w.allow_fleets[wi]:
            return _refuse(FLEETS_NOT_ALLOWED, 0.0, 0.0, fig)
    if not w.country_ok[wi * w.n_countries + c.country[ci]]:
        return _refuse(COUNTRY_NOT_ALLOWED, 0.0, c.country[ci], fig)
    for u in range(w.user_ptr[wi], w.user_ptr[wi + 1]):
        wt = w.user_weight[u]
        L = w.latency[w.user_region[u] * w.n_cols + ci]
        if L > lmax:
            lmax = L
        lsum = lsum + wt * L
        wsum = wsum + wt
    if lmax > w.max_latency_ms[wi]:
        return _refuse(LATENCY, lmax, w.max_latency_ms[wi], fig)
    if wsum > 0.0:
        lat = lsum / wsum
    if not w.model_ok[wi * w.n_models + c.model[ci]]:
        return _refuse(ACCELERATOR_MODEL, 0.0, c.model[ci], fig)
    if c.memory_gib[ci] < w.min_memory_gib[wi]:
        return _refuse(MEMORY, w.min_memory_gib[wi], c.memory_gib[ci], fig)
    if c.is_fleet[ci] and c.cap_devices[ci] <= 0.0:
        # no device online at the plan's time: outside every availability window
        return _refuse(OFFLINE_NOW, 0.0, 0.0, fig)
    if w.accel[wi] > 0.0:
        n = w.accel[wi]
        e = c.e_dev[ci]
    else:
        if c.tps_milli[ci] <= 0.0:  # no token rate: no number of devices serves it
            return _refuse(INSUFFICIENT_DEVICES, INFINITY, c.cap_devices[ci], fig)
        n = ceil(w.tokens_milli[wi] / c.tps_milli[ci])
        e = c.e_tok[ci]
    need_min = n
    if w.site_limit[wi] > 1:
        need_min = 1.0
    if need_min > c.cap_devices[ci]:
        return _refuse(INSUFFICIENT_DEVICES, need_min, c.cap_devices[ci], fig)
    power = need_min * c.watts[ci]
    if w.interruptible[wi]:
        avail = c.total_watts[ci]
    else:
        avail = c.firm_watts[ci]
        if c.total_watts[ci] < avail:
            avail = c.total_watts[ci]
    if power > avail:
        return _refuse(INSUFFICIENT_POWER, power, avail, fig)
    lq = floor(lat + 0.5)
    if lq > _MAX_LATENCY_TIER:
        lq = _MAX_LATENCY_TIER
    st = 0.0
    if w.cur_ptr[wi + 1] > w.cur_ptr[wi]:
        st = _STABILITY_PENALTY
        for k in range(w.cur_ptr[wi], w.cur_ptr[wi + 1]):
            if w.cur_site[k] == c.site[ci]:
                st = 0.0
                break
    out_n[0] = n
    out_lat[0] = lat
    out_cost[0] = n * (e * _ENERGY_SCALE + lq * _LATENCY_SCALE + st)
    return FEASIBLE


cdef inline bint _worse(double cost_a, int col_a, double cost_b, int col_b) noexcept nogil:
    """Is candidate a worse than b? (higher cost; ties: higher column index)."""
    return cost_a > cost_b or (cost_a == cost_b and col_a > col_b)


cdef inline void _heap_sift_down(double* cost, int* col, double* nn, double* lat,
                                 int size, int i) noexcept nogil:
    """Max-heap on 'worse' (root = worst kept candidate)."""
    cdef int l, r, m
    cdef double tc, tn, tl
    cdef int tcol
    while True:
        l = 2 * i + 1
        r = l + 1
        m = i
        if l < size and _worse(cost[l], col[l], cost[m], col[m]):
            m = l
        if r < size and _worse(cost[r], col[r], cost[m], col[m]):
            m = r
        if m == i:
            return
        tc = cost[i]; cost[i] = cost[m]; cost[m] = tc
        tcol = col[i]; col[i] = col[m]; col[m] = tcol
        tn = nn[i]; nn[i] = nn[m]; nn[m] = tn
        tl = lat[i]; lat[i] = lat[m]; lat[m] = tl
        i = m


cdef inline void _heap_sift_up(double* cost, int* col, double* nn, double* lat,
                               int i) noexcept nogil:
    cdef int p
    cdef double tc, tn, tl
    cdef int tcol
    while i > 0:
        p = (i - 1) // 2
        if not _worse(cost[i], col[i], cost[p], col[p]):
            return
        tc = cost[i]; cost[i] = cost[p]; cost[p] = tc
        tcol = col[i]; col[i] = col[p]; col[p] = tcol
        tn = nn[i]; nn[i] = nn[p]; nn[p] = tn
        tl = lat[i]; lat[i] = lat[p]; lat[p] = tl
        i = p


cdef void _one_workload(
    const Cols* c, const Wls* w, Py_ssize_t wi, const int* site_ptr, Py_ssize_t n_sites,
    int K, double* cost, int* col, double* nn, double* lat, int* counts, int* feasible,
) noexcept nogil:
    cdef Py_ssize_t s, ci
    cdef int code, site_code, size = 0, i, j
    cdef double n = 0.0, l = 0.0, cst = 0.0, tc, tn, tl
    cdef int tcol
    cdef Figures fig
    for i in range(N_FILTERS):
        counts[i] = 0
    feasible[0] = 0
    for s in range(n_sites):
        site_code = -1
        for ci in range(site_ptr[s], site_ptr[s + 1]):
            code = _pair_eval(c, w, wi, ci, &n, &l, &cst, &fig)
            if code > site_code:
                site_code = code
            if code == FEASIBLE:
                if size < K:
                    cost[size] = cst; col[size] = <int>ci; nn[size] = n; lat[size] = l
                    _heap_sift_up(cost, col, nn, lat, size)
                    size += 1
                elif _worse(cost[0], col[0], cst, <int>ci):
                    cost[0] = cst; col[0] = <int>ci; nn[0] = n; lat[0] = l
                    _heap_sift_down(cost, col, nn, lat, size, 0)
        if site_code == FEASIBLE:
            feasible[0] += 1
        elif site_code >= 0:
            counts[site_code] += 1
    # sort kept candidates best first (insertion sort, K is small)
    for i in range(1, size):
        tc = cost[i]; tcol = col[i]; tn = nn[i]; tl = lat[i]
        j = i - 1
        while j >= 0 and _worse(cost[j], col[j], tc, tcol):
            cost[j + 1] = cost[j]; col[j + 1] = col[j]; nn[j + 1] = nn[j]; lat[j + 1] = lat[j]
            j -= 1
        cost[j + 1] = tc; col[j + 1] = tcol; nn[j + 1] = tn; lat[j + 1] = tl
    for i in range(size, K):
        cost[i] = INFINITY; col[i] = -1; nn[i] = 0.0; lat[i] = 0.0


def _c64(a):
    return np.ascontiguousarray(a, dtype=np.float64)


def _ci32(a):
    return np.ascontiguousarray(a, dtype=np.int32)


def _cu8(a):
    return np.ascontiguousarray(a, dtype=np.uint8)


def _csr_ok(ptr, Py_ssize_t rows, Py_ssize_t n_items):
    """Is ``ptr`` a CSR pointer of ``rows`` rows over ``n_items`` items?"""
    return (ptr.shape[0] == rows + 1 and ptr[0] == 0 and ptr[rows] == n_items
            and bool((np.diff(ptr) >= 0).all()))


def _in_range(a, Py_ssize_t hi):
    return a.shape[0] == 0 or (int(a.min()) >= 0 and int(a.max()) < hi)


# --------------------------------------------------------------------------- greedy

cdef inline double _fit_devices(
    const Cols* c, const Wls* w, Py_ssize_t wi, Py_ssize_t ci,
    const double* cap_left, const double* tot_used, const double* ni_used,
    const double* site_firm, const double* site_total,
) noexcept nogil:
    """How many more devices of column ci workload wi could take now."""
    cdef int s = c.site[ci]
    cdef double room = site_total[s] - tot_used[s], k
    if not w.interruptible[wi]:
        if site_firm[s] - ni_used[s] < room:
            room = site_firm[s] - ni_used[s]
    if room < 0.0:
        room = 0.0
    k = floor(room / c.watts[ci]) if c.watts[ci] > 0.0 else cap_left[ci]
    if cap_left[ci] < k:
        k = cap_left[ci]
    if k < 0.0:
        k = 0.0
    return k


cdef void _take(const Cols* c, const Wls* w, Py_ssize_t wi, Py_ssize_t ci, double k,
                double* cap_left, double* tot_used, double* ni_used) noexcept nogil:
    cdef int s = c.site[ci]
    cap_left[ci] -= k
    tot_used[s] += k * c.watts[ci]
    if not w.interruptible[wi]:
        ni_used[s] += k * c.watts[ci]


cdef inline double _per_device(double cost, double n) noexcept nogil:
    return cost / n if n > 0.0 else 0.0


cdef int _split(
    const Cols* c, const Wls* w, Py_ssize_t wi, int width,
    const double* site_firm, const double* site_total, double* cap_left,
    double* tot_used, double* ni_used, const int* code_buf, const double* n_buf,
    const double* cost_buf, unsigned char* used_buf, unsigned char* site_used,
    int* row_col, double* row_n,
) noexcept nogil:
    """Split workload wi over the cheapest columns with room, on at most
    ``site_limit`` distinct sites (more pools of a site already used cost no site);
    then drop surplus devices, most expensive first. Returns the number of slots
    filled (0 = not placed; everything given back)."""
    cdef Py_ssize_t ci, C = c.n
    cdef int limit = w.site_limit[wi], sites = 0, slot = 0, best, i, j, worst
    cdef double best_cost, fit, k, rem, surplus, drop, pd, worst_pd
    cdef bint tokens = w.accel[wi] <= 0.0
    rem = w.tokens_milli[wi] if tokens else w.accel[wi]
    while slot < width and rem > 0.0:
        best = -1
        best_cost = INFINITY
        for ci in range(C):
            if code_buf[ci] != FEASIBLE or used_buf[ci] or cost_buf[ci] >= best_cost:
                continue
            if sites >= limit and not site_used[c.site[ci]]:
                continue
            if _fit_devices(c, w, wi, ci, cap_left, tot_used, ni_used, site_firm, site_total) >= 1.0:
                best = <int>ci
                best_cost = cost_buf[ci]
        if best < 0:
            break
        fit = _fit_devices(c, w, wi, best, cap_left, tot_used, ni_used, site_firm, site_total)
        k = ceil(rem / c.tps_milli[best]) if tokens else rem
        if fit < k:
            k = fit
        _take(c, w, wi, best, k, cap_left, tot_used, ni_used)
        used_buf[best] = 1
        if not site_used[c.site[best]]:
            site_used[c.site[best]] = 1
            sites += 1
        row_col[slot] = best
        row_n[slot] = k
        slot += 1
        rem -= k * c.tps_milli[best] if tokens else k
    for i in range(slot):
        site_used[c.site[row_col[i]]] = 0
    if rem > 0.0:  # all or nothing: give it all back
        for i in range(slot):
            _take(c, w, wi, row_col[i], -row_n[i], cap_left, tot_used, ni_used)
            row_col[i] = -1
            row_n[i] = 0.0
        return 0
    if tokens and rem < 0.0:
        # Drop surplus devices, the most expensive per device first (ties: the
        # higher column index first): afterwards no single device can go.
        surplus = -rem
        for i in range(slot):
            used_buf[row_col[i]] = 2  # not yet trimmed
        for j in range(slot):
            worst = -1
            worst_pd = -INFINITY
            for i in range(slot):
                ci = row_col[i]
                if used_buf[ci] != 2:
                    continue
                pd = _per_device(cost_buf[ci], n_buf[ci])
                if worst < 0 or pd > worst_pd or (pd == worst_pd and ci > row_col[worst]):
                    worst = i
                    worst_pd = pd
            ci = row_col[worst]
            used_buf[ci] = 1
            drop = floor(surplus / c.tps_milli[ci])
            if drop > row_n[worst]:
                drop = row_n[worst]
            if drop > 0.0:
                _take(c, w, wi, ci, -drop, cap_left, tot_used, ni_used)
                row_n[worst] -= drop
                surplus -= drop * c.tps_milli[ci]
        j = 0  # compact: columns left with no device go
        for i in range(slot):
            if row_n[i] > 0.0:
                row_col[j] = row_col[i]
                row_n[j] = row_n[i]
                j += 1
        for i in range(j, slot):
            row_col[i] = -1
            row_n[i] = 0.0
        slot = j
    return slot


cdef void _greedy(
    const Cols* c, const Wls* w, const int* order, Py_ssize_t W, int width,
    const double* site_firm, const double* site_total, double* cap_left,
    double* tot_used, double* ni_used, int* code_buf, double* n_buf, double* cost_buf,
    unsigned char* used_buf, unsigned char* site_used, int* out_col, double* out_n,
    unsigned char* placed, const int* pref_col, const double* pref_n, int pref_width,
) noexcept nogil:
    cdef Py_ssize_t oi, wi, ci, C = c.n
    cdef double l = 0.0, best_cost, pn = 0.0, pcost = 0.0
    cdef int best, j, taken
    cdef Figures fig
    for oi in range(W):
        wi = order[oi]
        placed[wi] = 0
        # 0) where it is now (``pref_col``), when all of that still passes and fits:
        # only those pairs are evaluated
        taken = 0
        if pref_col != NULL:
            for j in range(pref_width):
                ci = pref_col[wi * pref_width + j]
                if ci < 0:
                    break
                if _pair_eval(c, w, wi, ci, &pn, &l, &pcost, &fig) != FEASIBLE or _fit_devices(
                        c, w, wi, ci, cap_left, tot_used, ni_used, site_firm, site_total) < pref_n[wi * pref_width + j]:
                    taken = -taken - 1  # give back what was taken
                    break
                _take(c, w, wi, ci, pref_n[wi * pref_width + j], cap_left, tot_used, ni_used)
                out_col[wi * width + j] = <int>ci
                out_n[wi * width + j] = pref_n[wi * pref_width + j]
                taken += 1
            if taken > 0:
                placed[wi] = 1
                continue
            if taken < 0:
                for j in range(-taken - 1):
                    _take(c, w, wi, out_col[wi * width + j], -out_n[wi * width + j], cap_left, tot_used, ni_used)
                    out_col[wi * width + j] = -1
                    out_n[wi * width + j] = 0.0
        for ci in range(C):
            code_buf[ci] = _pair_eval(c, w, wi, ci, &n_buf[ci], &l, &cost_buf[ci], &fig)
            used_buf[ci] = 0
        # 1) whole on the cheapest column where it still fits (ties: lowest index)
        best = -1
        best_cost = INFINITY
        for ci in range(C):
            if code_buf[ci] == FEASIBLE and cost_buf[ci] < best_cost:
                if _fit_devices(c, w, wi, ci, cap_left, tot_used, ni_used, site_firm, site_total) >= n_buf[ci]:
                    best = <int>ci
                    best_cost = cost_buf[ci]
        if best >= 0:
            _take(c, w, wi, best, n_buf[best], cap_left, tot_used, ni_used)
            out_col[wi * width] = best
            out_n[wi * width] = n_buf[best]
            placed[wi] = 1
        elif w.site_limit[wi] > 1:
            # 2) split over several columns
            if _split(c, w, wi, width, site_firm, site_total, cap_left, tot_used, ni_used,
                      code_buf, n_buf, cost_buf, used_buf, site_used,
                      &out_col[wi * width], &out_n[wi * width]) > 0:
                placed[wi] = 1


# --------------------------------------------------------------------------- bound

cdef inline double _pair_coef(const Cols* c, const Wls* w, Py_ssize_t wi, Py_ssize_t ci,
                              double n) noexcept nogil:
    """Devices a workload consumes on a column in the Lagrangian subproblem.

    Whole workloads (site limit 1): exactly ``n`` (the kernel's need). Splittable
    ones are relaxed: device demand A costs A devices at the cheapest column's price;
    token demand D costs D / tps_milli (fractional) devices, i.e. ceil and the
    max-sites / per-column limits are dropped. Dropping constraints only lowers the
    subproblem's cost, so the bound stays valid.
    """
    if w.site_limit[wi] <= 1:
        return n
    if w.accel[wi] > 0.0:
        return w.accel[wi]
    return w.tokens_milli[wi] / c.tps_milli[ci]


cdef long long _workload_pairs(const Cols* c, const Wls* w, Py_ssize_t wi,
                               int* out_col, double* out_coef) noexcept nogil:
    """Feasible columns of workload wi (and their ``_pair_coef``, when ``out_col`` is
    not NULL); returns how many. Every scratch value is local, so calls from several
    threads at once do not share any."""
    cdef Py_ssize_t ci
    cdef long long k = 0
    cdef double n = 0.0, l = 0.0, cst = 0.0
    cdef Figures fig
    for ci in range(c.n):
        if _pair_eval(c, w, wi, ci, &n, &l, &cst, &fig) == FEASIBLE:
            if out_col != NULL:
                out_col[k] = <int>ci
                out_coef[k] = _pair_coef(c, w, wi, ci, n)
            k += 1
    return k


# --------------------------------------------------------------------------- the handle

cdef class MeshKernels:
    """The compiled kernels bound to one mesh's column and workload arrays.

    Built once per snapshot (``placement.snapshot.Snapshot.kernels``), like
    scikit-learn's ``BinaryTree``: the constructor checks the arrays (lengths, CSR
    pointers, index ranges), keeps contiguous copies of them and the C structs
    pointing into those copies; each method runs a ``nogil`` kernel over them, so a
    solve checks and binds its arrays once, not once per kernel call. ``cols`` and
    ``wls`` are the arrays it was built from (the snapshot compares them by identity).
    Arrays already contiguous in the kernel's dtype are bound without a copy, so they
    must not be changed in place while the handle is in use (the engine never does:
    it makes new arrays, see ``placement.snapshot.residual``).
    """

    cdef Cols c
    cdef Wls w
    cdef list keep
    cdef const int[::1] site_ptr
    cdef Py_ssize_t n_sites
    cdef Py_ssize_t n_workloads
    cdef readonly object cols
    cdef readonly object wls

    def __init__(self, cols, wls):
        cdef const int[::1] i32
        cdef const double[::1] f64
        cdef const unsigned char[::1] u8
        if not isinstance(cols, ColumnArrays) or not isinstance(wls, WorkloadArrays):
            raise TypeError("MeshKernels takes a ColumnArrays and a WorkloadArrays")
        self.cols = cols
        self.wls = wls
        self.keep = []
        n = len(cols.site)
        nw = len(wls.accel)
        self.c.n = n
        self.n_workloads = nw

        def keep(arr, Py_ssize_t length, str what):
            if arr.ndim != 1 or arr.shape[0] != length:
                raise ValueError(f"{what} arrays must all have the same length")
            self.keep.append(arr)
            return arr

        # columns
        site = keep(_ci32(cols.site), n, "column")
        country = keep(_ci32(cols.country), n, "column")
        model = keep(_ci32(cols.model), n, "column")
        i32 = site; self.c.site = &i32[0] if n else NULL
        u8 = keep(_cu8(cols.is_fleet), n, "column"); self.c.is_fleet = &u8[0] if n else NULL
        u8 = keep(_cu8(cols.cordoned), n, "column"); self.c.cordoned = &u8[0] if n else NULL
        i32 = country; self.c.country = &i32[0] if n else NULL
        i32 = model; self.c.model = &i32[0] if n else NULL
        f64 = keep(_c64(cols.memory_gib), n, "column"); self.c.memory_gib = &f64[0] if n else NULL
        f64 = keep(_c64(cols.cap_devices), n, "column"); self.c.cap_devices = &f64[0] if n else NULL
        f64 = keep(_c64(cols.tps_milli), n, "column"); self.c.tps_milli = &f64[0] if n else NULL
        f64 = keep(_c64(cols.watts), n, "column"); self.c.watts = &f64[0] if n else NULL
        f64 = keep(_c64(cols.e_dev), n, "column"); self.c.e_dev = &f64[0] if n else NULL
        f64 = keep(_c64(cols.e_tok), n, "column"); self.c.e_tok = &f64[0] if n else NULL
        f64 = keep(_c64(cols.firm_watts), n, "column"); self.c.firm_watts = &f64[0] if n else NULL
        f64 = keep(_c64(cols.total_watts), n, "column"); self.c.total_watts = &f64[0] if n else NULL
        sp = _ci32(cols.site_ptr)
        self.keep.append(sp)
        self.n_sites = sp.shape[0] - 1
        if sp.ndim != 1 or self.n_sites < 0 or not _csr_ok(sp, self.n_sites, n):
            raise ValueError("site_ptr must be a CSR pointer over the columns")
        if (site != np.repeat(np.arange(self.n_sites, dtype=np.int32), np.diff(sp))).any():
            raise ValueError("site must give each column the site whose site_ptr range holds it")
        self.site_ptr = sp

        # workloads
        u8 = keep(_cu8(wls.is_training), nw, "workload"); self.w.is_training = &u8[0] if nw else NULL
        u8 = keep(_cu8(wls.allow_fleets), nw, "workload"); self.w.allow_fleets = &u8[0] if nw else NULL
        u8 = keep(_cu8(wls.interruptible), nw, "workload"); self.w.interruptible = &u8[0] if nw else NULL
        i32 = keep(_ci32(wls.site_limit), nw, "workload"); self.w.site_limit = &i32[0] if nw else NULL
        f64 = keep(_c64(wls.accel), nw, "workload"); self.w.accel = &f64[0] if nw else NULL
        f64 = keep(_c64(wls.tokens_milli), nw, "workload"); self.w.tokens_milli = &f64[0] if nw else NULL
        f64 = keep(_c64(wls.min_memory_gib), nw, "workload"); self.w.min_memory_gib = &f64[0] if nw else NULL
        f64 = keep(_c64(wls.max_latency_ms), nw, "workload"); self.w.max_latency_ms = &f64[0] if nw else NULL
        lat = np.ascontiguousarray(wls.latency, dtype=np.float64)
        if lat.ndim != 2 or lat.shape[1] != n:
            raise ValueError("latency must be a [regions, columns] matrix")
        region = _ci32(wls.user_region)
        weight = _c64(wls.user_weight)
        up = _ci32(wls.user_ptr)
        if up.ndim != 1 or not _csr_ok(up, nw, region.shape[0]) or weight.shape[0] != region.shape[0]:
            raise ValueError("user_ptr must have W + 1 entries, a CSR pointer over user_region / user_weight")
        if not _in_range(region, lat.shape[0]):
            raise ValueError("user_region must index the rows of latency")
        cp = _ci32(wls.cur_ptr)
        cur = _ci32(wls.cur_site)
        if cp.ndim != 1 or not _csr_ok(cp, nw, cur.shape[0]):
            raise ValueError("cur_ptr must have W + 1 entries, a CSR pointer over cur_site")
        co = _cu8(wls.country_ok)
        mo = _cu8(wls.model_ok)
        if co.ndim != 2 or co.shape[0] != nw or mo.ndim != 2 or mo.shape[0] != nw:
            raise ValueError("country_ok / model_ok must be [W, n] matrices")
        if not _in_range(country, co.shape[1]) or not _in_range(model, mo.shape[1]):
            raise ValueError("column country / model must index the columns of country_ok / model_ok")
        # one trailing entry each so that a pointer to element 0 exists even when empty
        i32 = keep(_ci32(np.append(up, 0)), nw + 2, "user_ptr"); self.w.user_ptr = &i32[0]
        i32 = keep(_ci32(np.append(region, 0)), region.shape[0] + 1, "user"); self.w.user_region = &i32[0]
        f64 = keep(_c64(np.append(weight, 0.0)), weight.shape[0] + 1, "user"); self.w.user_weight = &f64[0]
        i32 = keep(_ci32(np.append(cp, 0)), nw + 2, "cur_ptr"); self.w.cur_ptr = &i32[0]
        i32 = keep(_ci32(np.append(cur, -1)), cur.shape[0] + 1, "cur_site"); self.w.cur_site = &i32[0]
        self.w.n_countries = co.shape[1]
        u8 = keep(_cu8(np.append(co.ravel(), 0)), co.size + 1, "country_ok"); self.w.country_ok = &u8[0]
        self.w.n_models = mo.shape[1]
        u8 = keep(_cu8(np.append(mo.ravel(), 0)), mo.size + 1, "model_ok"); self.w.model_ok = &u8[0]
        self.w.n_cols = n
        f64 = keep(_c64(np.append(lat.ravel(), 0.0)), lat.size + 1, "latency"); self.w.latency = &f64[0]

    def filter_score_topk(self, int top_k, int num_threads=1):
        """Fused filter + score + top-K over all workload x column pairs.

        Over the bound ``ColumnArrays`` / ``WorkloadArrays`` (see
        ``placement_ext.arrays`` for the meaning of each). Returns a dict:
        ``cand_col`` int32 [W, K] (-1 = empty slot), ``cand_cost`` float64 [W, K]
        (lower is better; inf = empty), ``cand_devices`` float64 [W, K] (devices to
        serve the whole demand on that column), ``cand_latency_ms`` float64 [W, K]
        (demand-weighted), ``rejections`` int32 [W, N_FILTERS] (sites rejected per
        filter), ``feasible_sites`` int32 [W].
        """
        if top_k < 1:
            raise ValueError("top_k must be >= 1")
        cdef Py_ssize_t W = self.n_workloads
        cand_cost = np.empty((W, top_k), dtype=np.float64)
        cand_col = np.empty((W, top_k), dtype=np.int32)
        cand_n = np.empty((W, top_k), dtype=np.float64)
        cand_lat = np.empty((W, top_k), dtype=np.float64)
        rej = np.zeros((W, N_FILTERS), dtype=np.int32)
        feas = np.zeros(W, dtype=np.int32)
        cdef double[:, ::1] cc = cand_cost
        cdef int[:, ::1] ccol = cand_col
        cdef double[:, ::1] cn = cand_n
        cdef double[:, ::1] cl = cand_lat
        cdef int[:, ::1] rr = rej
        cdef int[::1] ff = feas
        cdef Py_ssize_t wi
        cdef int K = top_k
        cdef Cols* cp = &self.c
        cdef Wls* wp = &self.w
        cdef const int* sp = &self.site_ptr[0]
        cdef Py_ssize_t ns = self.n_sites
        if W > 0:
            if num_threads < 1:
                num_threads = 1
            with nogil:
                for wi in prange(W, num_threads=num_threads, schedule="static"):
                    _one_workload(cp, wp, wi, sp, ns, K, &cc[wi, 0], &ccol[wi, 0],
                                  &cn[wi, 0], &cl[wi, 0], &rr[wi, 0], &ff[wi])
        return {
            "cand_col": cand_col,
            "cand_cost": cand_cost,
            "cand_devices": cand_n,
            "cand_latency_ms": cand_lat,
            "rejections": rej,
            "feasible_sites": feas,
        }

    def greedy_width(self):
        """Width of ``greedy_place``'s output rows: the most columns a workload can use.

        1 when no workload may split; else the column counts of the ``max(site_limit)``
        sites with the most columns, added (at most every column): a split uses at most
        ``site_limit`` distinct sites and each of their columns (pools) at most once.
        """
        sizes = np.diff(np.asarray(self.cols.site_ptr, dtype=np.int64))
        limit = np.asarray(self.wls.site_limit)
        max_limit = int(limit.max()) if limit.shape[0] else 1
        if max_limit <= 1:
            return 1
        return max(1, int(np.sort(sizes)[::-1][:max_limit].sum()))

    def greedy_place(self, order, site_firm_watts, site_total_watts, preferred_cols=None, preferred_devices=None):
        """Place workloads one at a time in ``order`` (kube-scheduler style).

        With ``preferred_cols`` / ``preferred_devices`` ([W, L] int32 / float64, L <=
        ``greedy_width()``, -1 padded: a plan to keep in place), a workload first goes
        where its row says, when every pair of that row passes the filters and still
        has room for those devices (only those pairs are evaluated then); else, or
        with no preferred row, as follows.
        Each workload is filtered and scored against every column with the capacity
        still left, and goes whole to the cheapest column where it fits (ties: the lowest
        column index). Else, if it may split (``site_limit`` > 1), it takes the cheapest
        columns with room, as much as fits on each, until its demand is met, on at most
        ``site_limit`` distinct SITES (several pools of a site already used cost no
        further site); a token demand then gives back surplus devices, the most
        expensive per device first, so that no device can be removed with the demand
        still met. All or nothing.

        Returns ``(cols [W, L] int32 (-1 = none), devices [W, L] float64,
        placed [W] bool)``; a placed row lists its columns in the order taken, then -1 /
        0.0 padding. L = ``self.greedy_width()``.
        """
        cdef Py_ssize_t W = self.n_workloads
        cdef Py_ssize_t C = self.c.n
        cdef const int[::1] od = _ci32(order)
        if od.shape[0] != W or (W and (np.sort(np.asarray(od)) != np.arange(W)).any()):
            raise ValueError("order must be a permutation of range(W)")
        cdef const double[::1] sf = _c64(site_firm_watts)
        cdef const double[::1] st = _c64(site_total_watts)
        if sf.shape[0] != self.n_sites or st.shape[0] != self.n_sites:
            raise ValueError("site power arrays must have one entry per site")
        cdef int width = self.greedy_width()
        cdef double[::1] cap_left = _c64(self.cols.cap_devices).copy()
        cdef double[::1] tot_used = np.zeros(max(1, self.n_sites))
        cdef double[::1] ni_used = np.zeros(max(1, self.n_sites))
        cdef unsigned char[::1] site_used = np.zeros(max(1, self.n_sites), dtype=np.uint8)
        cdef int[::1] code_buf = np.zeros(max(1, C), dtype=np.int32)
        cdef double[::1] n_buf = np.zeros(max(1, C))
        cdef double[::1] cost_buf = np.zeros(max(1, C))
        cdef unsigned char[::1] used_buf = np.zeros(max(1, C), dtype=np.uint8)
        out_col = np.full((W, width), -1, dtype=np.int32)
        out_n = np.zeros((W, width), dtype=np.float64)
        placed = np.zeros(W, dtype=np.uint8)
        cdef int[:, ::1] oc = out_col
        cdef double[:, ::1] on = out_n
        cdef unsigned char[::1] pl = placed
        if W == 0:
            return out_col, out_n, placed.astype(bool)
        cdef const double* sfp = &sf[0] if self.n_sites else NULL
        cdef const double* stp = &st[0] if self.n_sites else NULL
        cdef const int[:, ::1] pc
        cdef const double[:, ::1] pn
        cdef const int* pcp = NULL
        cdef const double* pnp = NULL
        cdef int pref_width = 0
        if (preferred_cols is None) != (preferred_devices is None):
            raise ValueError("preferred_cols and preferred_devices go together")
        if preferred_cols is not None:
            pc = np.ascontiguousarray(preferred_cols, dtype=np.int32)
            pn = np.ascontiguousarray(preferred_devices, dtype=np.float64)
            if pc.shape[0] != W or pn.shape[0] != W or pc.shape[1] != pn.shape[1] or pc.shape[1] > width:
                raise ValueError("preferred_cols / preferred_devices must be [W, L] with L <= greedy_width()")
            if not _in_range(np.asarray(pc).ravel()[np.asarray(pc).ravel() >= 0], C):
                raise IndexError("a preferred column is out of range")
            pref_width = <int>pc.shape[1]
            if pref_width:
                pcp = &pc[0, 0]
                pnp = &pn[0, 0]
        with nogil:
            _greedy(&self.c, &self.w, &od[0], W, width, sfp, stp,
                    &cap_left[0], &tot_used[0], &ni_used[0], &code_buf[0], &n_buf[0],
                    &cost_buf[0], &used_buf[0], &site_used[0], &oc[0, 0], &on[0, 0], &pl[0],
                    pcp, pnp, pref_width)
        return out_col, out_n, placed.astype(bool)

    def evaluate_pairs(self, workloads, columns):
        """The verdict of each given (workload, column) pair: a
        :class:`placement_ext.pairs.PairVerdicts` (the refusing filter and its figures,
        or the devices, latency (ms) and cost of a feasible pair).

        The same ``_pair_eval`` as the scoring pass, for the pairs a caller needs outside
        the top-K: the greedy placer's choices (``placement.candidates``), the filter of
        every pair of an unplaced workload and the figures behind its refusals
        (``placement.assign``, ``placement.explain``).
        """
        cdef const int[::1] wv = _ci32(workloads)
        cdef const int[::1] cv = _ci32(columns)
        if wv.shape[0] != cv.shape[0]:
            raise ValueError("workloads and columns must have the same length")
        if wv.shape[0] and not (0 <= np.min(wv) and np.max(wv) < self.n_workloads
                                and 0 <= np.min(cv) and np.max(cv) < self.c.n):
            raise IndexError("a workload or column index is out of range")
        cdef Py_ssize_t P = wv.shape[0], k
        code = np.empty(P, dtype=np.int32)
        devices = np.empty(P, dtype=np.float64)
        latency_ms = np.empty(P, dtype=np.float64)
        cost = np.empty(P, dtype=np.float64)
        need = np.empty(P, dtype=np.float64)
        have = np.empty(P, dtype=np.float64)
        cdef int[::1] oc = code
        cdef double[::1] od = devices, ol = latency_ms, ocost = cost, oneed = need, ohave = have
        cdef Figures fig
        cdef Cols* cp = &self.c
        cdef Wls* wp = &self.w
        with nogil:
            for k in range(P):
                od[k] = 0.0
                ol[k] = 0.0
                ocost[k] = 0.0
                fig.need = 0.0
                fig.have = 0.0
                oc[k] = _pair_eval(cp, wp, wv[k], cv[k], &od[k], &ol[k], &ocost[k], &fig)
                oneed[k] = fig.need
                ohave[k] = fig.have
        return PairVerdicts(code, devices, latency_ms, cost, need, have)

    def feasible_pairs(self, int num_threads=1):
        """Every feasible workload x column pair of the FULL problem (no top-K), as CSR.

        Same filters as ``filter_score_topk`` (one ``_pair_eval`` per pair). Returns
        ``(ptr int64 [W+1], col int32 [N], coef float64 [N])`` where ``coef`` is the
        devices the pair consumes in the Lagrangian subproblem (see ``_pair_coef``).
        Two parallel passes (count, then fill). Called by ``placement.bound``.
        """
        cdef Py_ssize_t W = self.n_workloads
        cdef Py_ssize_t C = self.c.n
        counts = np.zeros(W + 1, dtype=np.int64)
        cdef long long[::1] cnt = counts
        cdef Py_ssize_t wi
        cdef Cols* cp = &self.c
        cdef Wls* wp = &self.w
        if num_threads < 1:
            num_threads = 1
        if W > 0 and C > 0:
            with nogil:
                for wi in prange(W, num_threads=num_threads, schedule="static"):
                    cnt[wi + 1] = _workload_pairs(cp, wp, wi, NULL, NULL)
        ptr = np.cumsum(counts).astype(np.int64)
        cdef long long[::1] pp = ptr
        N = int(ptr[W])
        col = np.empty(max(1, N), dtype=np.int32)
        coef = np.empty(max(1, N), dtype=np.float64)
        cdef int[::1] oc = col
        cdef double[::1] of = coef
        if N > 0:
            with nogil:
                for wi in prange(W, num_threads=num_threads, schedule="static"):
                    _workload_pairs(cp, wp, wi, &oc[pp[wi]], &of[pp[wi]])
        return ptr, col[:N], coef[:N]


# One call on arrays bound for that call only: for callers (tests, twins, one-off
# arrays) that run a single kernel over them. A solve binds a snapshot's arrays once
# (``Snapshot.kernels``).

def filter_score_topk(cols, wls, int top_k, int num_threads=1):
    """``MeshKernels(cols, wls).filter_score_topk(top_k, num_threads)``."""
    return MeshKernels(cols, wls).filter_score_topk(top_k, num_threads)


def greedy_width(cols, wls):
    """``MeshKernels(cols, wls).greedy_width()``."""
    return MeshKernels(cols, wls).greedy_width()


def greedy_place(cols, wls, order, site_firm_watts, site_total_watts, preferred_cols=None, preferred_devices=None):
    """``MeshKernels(cols, wls).greedy_place(order, site_firm_watts, site_total_watts, ...)``."""
    return MeshKernels(cols, wls).greedy_place(order, site_firm_watts, site_total_watts, preferred_cols,
                                               preferred_devices)


def evaluate_pairs(cols, wls, workloads, columns):
    """``MeshKernels(cols, wls).evaluate_pairs(workloads, columns)``."""
    return MeshKernels(cols, wls).evaluate_pairs(workloads, columns)


def feasible_pairs(cols, wls, int num_threads=1):
    """``MeshKernels(cols, wls).feasible_pairs(num_threads)``."""
    return MeshKernels(cols, wls).feasible_pairs(num_threads)



def lagrangian_eval(ptr, col, coef, value, interruptible, price_int, price_ni,
                    int num_threads=1):
    """One evaluation of the Lagrangian subproblem over all feasible pairs.

    For each workload w: best = min over its pairs of coef x price[col] (price_ni
    for non-interruptible workloads, price_int otherwise); its term is
    max(0, value[w] - best). Returns ``(sum of terms, chosen pair index [W] int64,
    -1 when the term is 0)``. ``nogil``, parallel over workloads. Called by
    ``placement.bound`` once per subgradient step.
    """
    ptr_a = np.ascontiguousarray(ptr, dtype=np.int64)
    col_a = np.ascontiguousarray(col, dtype=np.int32)
    cdef const long long[::1] p = ptr_a
    cdef const int[::1] cc = col_a
    cdef const double[::1] cf = np.ascontiguousarray(coef, dtype=np.float64)
    cdef const double[::1] v = np.ascontiguousarray(value, dtype=np.float64)
    cdef const unsigned char[::1] intr = np.ascontiguousarray(interruptible, dtype=np.uint8)
    cdef const double[::1] pi = np.ascontiguousarray(price_int, dtype=np.float64)
    cdef const double[::1] pn = np.ascontiguousarray(price_ni, dtype=np.float64)
    cdef Py_ssize_t W = v.shape[0]
    if p.shape[0] != W + 1 or intr.shape[0] != W:
        raise ValueError("ptr must have W + 1 entries and interruptible W")
    if cc.shape[0] != cf.shape[0] or p[0] != 0 or p[W] > cc.shape[0] or (np.diff(ptr_a) < 0).any():
        raise ValueError("ptr must be a CSR pointer over col and coef")
    if pi.shape[0] != pn.shape[0] or not _in_range(col_a[:p[W]], pi.shape[0]):
        raise ValueError("price arrays must have one entry per column")
    choice = np.full(W, -1, dtype=np.int64)
    terms = np.zeros(W, dtype=np.float64)
    cdef long long[::1] ch = choice
    cdef double[::1] tm = terms
    cdef Py_ssize_t wi
    cdef long long j, best_j
    cdef double best, x
    cdef const double* price
    if W > 0 and cc.shape[0] > 0:
        if num_threads < 1:
            num_threads = 1
        with nogil:
            for wi in prange(W, num_threads=num_threads, schedule="static"):
                price = &pi[0] if intr[wi] else &pn[0]
                best = INFINITY
                best_j = -1
                for j in range(p[wi], p[wi + 1]):
                    x = cf[j] * price[cc[j]]
                    if x < best:
                        best = x
                        best_j = j
                if best_j >= 0 and best < v[wi]:
                    tm[wi] = v[wi] - best
                    ch[wi] = best_j
    return float(terms.sum()), choice
