"""greedy_place: maxSites counts distinct sites (several pools of one factory are one
site), a split token demand keeps no surplus device, and the Cython kernel equals its
pure-Python twin on random arrays and synthetic meshes with multi-pool factories."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placement_ext import ColumnArrays, WorkloadArrays, filter_score_topk, greedy_place, greedy_width
from placement_ext.reference import greedy_place_python
from placement_ext.reference import greedy_width as greedy_width_python
from tests.placement_ext.arrays import mesh_arrays, random_arrays, site_power


def check_greedy(cols: ColumnArrays, wls: WorkloadArrays, out: tuple, firm: np.ndarray, total: np.ndarray) -> None:
    """Every rule a greedy placement must keep, checked from its output alone."""
    gcol, gn, placed = out
    W = len(wls.accel)
    width = greedy_width(cols, wls)
    assert gcol.shape == gn.shape == (W, width) and gcol.dtype == np.int32 and gn.dtype == np.float64
    assert placed.shape == (W,) and placed.dtype == bool
    site, tps = cols.site, cols.tps_milli
    feasible = filter_score_topk(cols, wls, max(1, len(site)))
    used = np.zeros(len(site))
    tot = np.zeros(len(firm))
    ni = np.zeros(len(firm))
    for w in range(W):
        k = int((gcol[w] >= 0).sum())
        assert (gcol[w, :k] >= 0).all() and (gcol[w, k:] == -1).all() and (gn[w, k:] == 0.0).all()
        assert bool(k) == bool(placed[w])
        if not k:
            continue
        chosen = list(zip(gcol[w, :k].tolist(), gn[w, :k].tolist(), strict=True))
        columns = [c for c, _ in chosen]
        assert len(set(columns)) == k, "a column appears twice"
        assert all(n >= 1 for _, n in chosen), "a listed column with no device"
        assert set(columns) <= set(feasible["cand_col"][w].tolist()), "a column some filter rejects"
        assert len({int(site[c]) for c in columns}) <= max(1, wls.site_limit[w])
        if wls.site_limit[w] <= 1:
            assert k == 1 and chosen[0][1] == feasible["cand_devices"][w][list(feasible["cand_col"][w]).index(chosen[0][0])]
        if wls.accel[w] > 0:
            assert sum(n for _, n in chosen) == wls.accel[w]
        else:
            served = sum(n * tps[c] for c, n in chosen)
            assert served >= wls.tokens_milli[w]
            # minimal: no single device can go with the demand still met
            assert all(served - tps[c] < wls.tokens_milli[w] for c in columns)
        for c, n in chosen:
            used[c] += n
            tot[site[c]] += n * cols.watts[c]
            if not wls.interruptible[w]:
                ni[site[c]] += n * cols.watts[c]
    assert (used <= cols.cap_devices).all()
    assert (tot <= total).all()
    assert (ni <= np.minimum(firm, total)).all()


def assert_same_greedy(a: tuple, b: tuple) -> None:
    for x, y in zip(a, b, strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), W=st.integers(1, 40), S=st.integers(1, 12), shuffle=st.booleans())
def test_greedy_cython_equals_python_twin_and_keeps_the_rules(seed, W, S, shuffle):
    cols, wls = random_arrays(seed, W, S)
    firm, total = site_power(cols)
    rng = np.random.default_rng(seed)
    order = rng.permutation(W).astype(np.int32) if shuffle else np.arange(W, dtype=np.int32)[::-1].copy()
    out = greedy_place(cols, wls, order, firm, total)
    assert_same_greedy(out, greedy_place_python(cols, wls, order, firm, total))
    check_greedy(cols, wls, out, firm, total)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), W=st.integers(1, 40), S=st.integers(1, 12))
def test_greedy_in_place_keeps_a_feasible_plan_and_equals_the_twin(seed, W, S):
    """Preferred rows (a plan to keep in place): a greedy run in another order is a
    feasible plan; with its placed workloads first in the queue, each finds its own
    row still free, so every one stays exactly where the plan has it, and the rest fill
    in by the usual rules. The twin agrees, for any queue order."""
    cols, wls = random_arrays(seed, W, S)
    firm, total = site_power(cols)
    rng = np.random.default_rng(seed)
    plan_cols, plan_n, plan_placed = greedy_place(cols, wls, rng.permutation(W).astype(np.int32), firm, total)
    order = np.concatenate([np.flatnonzero(plan_placed), np.flatnonzero(~plan_placed)]).astype(np.int32)
    out = greedy_place(cols, wls, order, firm, total, plan_cols, plan_n)
    assert_same_greedy(out, greedy_place_python(cols, wls, order, firm, total, plan_cols, plan_n))
    check_greedy(cols, wls, out, firm, total)
    np.testing.assert_array_equal(out[0][plan_placed], plan_cols[plan_placed])
    np.testing.assert_array_equal(out[1][plan_placed], plan_n[plan_placed])
    shuffled = rng.permutation(W).astype(np.int32)  # others may take a preferred row first
    out = greedy_place(cols, wls, shuffled, firm, total, plan_cols, plan_n)
    assert_same_greedy(out, greedy_place_python(cols, wls, shuffled, firm, total, plan_cols, plan_n))
    check_greedy(cols, wls, out, firm, total)


def test_greedy_in_place_checks_its_preferred_rows():
    cols, wls = random_arrays(0, 5, 3)
    firm, total = site_power(cols)
    order = np.arange(5, dtype=np.int32)
    width = greedy_width(cols, wls)
    with pytest.raises(ValueError, match="go together"):
        greedy_place(cols, wls, order, firm, total, np.full((5, 1), -1, dtype=np.int32))
    with pytest.raises(ValueError, match="greedy_width"):
        greedy_place(cols, wls, order, firm, total, np.full((4, 1), -1, dtype=np.int32), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="greedy_width"):
        greedy_place(cols, wls, order, firm, total, np.full((5, width + 1), -1, dtype=np.int32),
                     np.zeros((5, width + 1)))
    with pytest.raises(IndexError, match="preferred column"):
        greedy_place(cols, wls, order, firm, total, np.full((5, 1), 10**6, dtype=np.int32), np.ones((5, 1)))


@pytest.mark.parametrize(("seed", "load", "cap_scale"), [(0, 1.3, 1.0), (1, 1.0, 0.05), (3, 1.3, 0.1), (4, 1.0, 0.03)])
def test_greedy_cython_equals_python_twin_on_synthetic_meshes(seed, load, cap_scale):
    cols, wls, firm, total = mesh_arrays(250, 60, seed, load)
    assert (np.diff(cols.site_ptr) > 1).any(), "the mesh should have multi-pool factories"
    # scarce pools: fewer workloads fit whole, more split (over pools of one factory too)
    cols = replace(cols, cap_devices=np.floor(cols.cap_devices * cap_scale))
    order = np.random.default_rng(seed).permutation(len(wls.accel)).astype(np.int32)
    out = greedy_place(cols, wls, order, firm, total)
    assert_same_greedy(out, greedy_place_python(cols, wls, order, firm, total))
    check_greedy(cols, wls, out, firm, total)
    if cap_scale < 1.0:
        gcol = out[0]
        pools_of_one_site = [
            w for w in range(len(gcol))
            if len(set(cols.site[gcol[w][gcol[w] >= 0]].tolist())) < (gcol[w] >= 0).sum()
        ]
        assert pools_of_one_site, "some split should use several pools of one factory"


def small_mesh(columns: list[dict[str, float]], site: list[int], workloads: list[dict[str, float]]):
    """Hand-made arrays: one country, one model, no latency limits, nothing current."""
    C, W = len(columns), len(workloads)
    S = max(site) + 1
    firm = np.array([1e12] * S)

    def col(key: str, default: float) -> np.ndarray:
        return np.array([c.get(key, default) for c in columns], dtype=np.float64)

    cols = ColumnArrays(
        site=np.array(site, dtype=np.int32),
        is_fleet=np.zeros(C, dtype=np.uint8),
        cordoned=np.zeros(C, dtype=np.uint8),
        country=np.zeros(C, dtype=np.int32),
        model=np.zeros(C, dtype=np.int32),
        memory_gib=np.full(C, 80.0),
        cap_devices=col("cap", 10.0),
        tps_milli=col("tps", 1000.0),
        watts=np.full(C, 1000.0),
        e_dev=col("e", 1.0),
        e_tok=col("e", 1.0),
        firm_watts=firm[site],
        total_watts=firm[site],
        site_ptr=np.concatenate(([0], np.cumsum(np.bincount(site, minlength=S)))).astype(np.int32),
    )

    def wl(key: str, default: float) -> np.ndarray:
        return np.array([w.get(key, default) for w in workloads], dtype=np.float64)

    wls = WorkloadArrays(
        is_training=np.zeros(W, dtype=np.uint8),
        allow_fleets=np.ones(W, dtype=np.uint8),
        interruptible=np.ones(W, dtype=np.uint8),
        site_limit=wl("limit", 1).astype(np.int32),
        accel=wl("accel", 0.0),
        tokens_milli=wl("tokens", 0.0),
        min_memory_gib=np.zeros(W),
        max_latency_ms=np.full(W, np.inf),
        user_ptr=np.zeros(W + 1, dtype=np.int32),
        user_region=np.zeros(0, dtype=np.int32),
        user_weight=np.zeros(0),
        cur_ptr=np.zeros(W + 1, dtype=np.int32),
        cur_site=np.zeros(0, dtype=np.int32),
        country_ok=np.ones((W, 1), dtype=np.uint8),
        model_ok=np.ones((W, 1), dtype=np.uint8),
        latency=np.zeros((1, C)),
    )
    return cols, wls, firm, firm.copy()


def place(cols, wls, firm, total):
    order = np.arange(len(wls.accel), dtype=np.int32)
    out = greedy_place(cols, wls, order, firm, total)
    assert_same_greedy(out, greedy_place_python(cols, wls, order, firm, total))
    check_greedy(cols, wls, out, firm, total)
    return out


def test_two_pools_of_one_factory_spend_one_site():
    # site 0 has pools 0 and 1; sites 1 and 2 one column each. Cheapest first:
    # col 0 (site 0), col 2 (site 1), col 3 (site 2), col 1 (site 0).
    cols, wls, firm, total = small_mesh(
        [{"cap": 4, "e": 1}, {"cap": 4, "e": 4}, {"cap": 3, "e": 2}, {"cap": 5, "e": 3}],
        [0, 0, 1, 2],
        [{"accel": 10, "limit": 2}],
    )
    gcol, gn, placed = place(cols, wls, firm, total)
    assert gcol.shape == (1, 3)  # two sites at most: the 2-column site + a 1-column one
    assert placed[0]
    # col 3 would be cheaper than col 1, but its site would be a third one
    assert gcol[0].tolist() == [0, 2, 1] and gn[0].tolist() == [4.0, 3.0, 3.0]


def test_site_limit_one_never_splits_even_over_pools_of_one_site():
    cols, wls, firm, total = small_mesh([{"cap": 4}, {"cap": 4}], [0, 0], [{"accel": 6, "limit": 1}])
    gcol, _gn, placed = place(cols, wls, firm, total)
    assert not placed[0] and gcol.shape == (1, 1)


def test_not_enough_room_on_the_allowed_sites_places_nothing_and_gives_all_back():
    cols, wls, firm, total = small_mesh(
        [{"cap": 4, "e": 1}, {"cap": 3, "e": 2}, {"cap": 10, "e": 3}],
        [0, 1, 2],
        [{"accel": 12, "limit": 2}, {"accel": 7, "limit": 1}],
    )
    gcol, gn, placed = place(cols, wls, firm, total)
    assert placed.tolist() == [False, True]
    assert gcol[1].tolist()[0] == 2 and gn[1][0] == 7.0  # the first one's devices came back


def test_split_token_demand_keeps_no_surplus_device():
    # 12 tokens: col 0 (3/device, cheapest) has 3 devices, col 1 (10/device) 1.
    # Taking 3 + 1 serves 19; two devices of col 0 are surplus (3 + 10 >= 12).
    cols, wls, firm, total = small_mesh(
        [{"cap": 3, "tps": 3, "e": 1}, {"cap": 1, "tps": 10, "e": 3}], [0, 1], [{"tokens": 12, "limit": 2}]
    )
    gcol, gn, placed = place(cols, wls, firm, total)
    assert placed[0]
    assert dict(zip(gcol[0].tolist(), gn[0].tolist(), strict=True)) == {0: 1.0, 1: 1.0}


def test_surplus_trim_drops_a_whole_column_and_frees_its_devices():
    # 10 tokens over col 0 (4/device, 2 devices), col 1 (1/device, 1), col 2 (5/device):
    # 8 + 1 leaves 1, col 2 takes 1 device (5): 14 served. Trim, most expensive per
    # device first: col 2 (0 can go), col 1 (1 can go: whole column dropped), col 0 (0).
    cols, wls, firm, total = small_mesh(
        [{"cap": 2, "tps": 4, "e": 1}, {"cap": 1, "tps": 1, "e": 2}, {"cap": 1, "tps": 5, "e": 100}],
        [0, 1, 2],
        [{"tokens": 10, "limit": 3}, {"accel": 1, "limit": 1}],
    )
    gcol, gn, placed = place(cols, wls, firm, total)
    assert placed.tolist() == [True, True]
    assert gcol[0].tolist() == [0, 2, -1] and gn[0].tolist() == [2.0, 1.0, 0.0]
    # the device of col 1 the trim gave back is the only room left for the next one
    assert gcol[1].tolist()[0] == 1 and gn[1][0] == 1.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), W=st.integers(0, 30), S=st.integers(1, 12))
def test_width_is_the_most_columns_a_split_can_use(seed, W, S):
    cols, wls = random_arrays(seed, max(W, 1), S)
    if W == 0:
        wls = replace(wls, **{
            f.name: getattr(wls, f.name)[:0] if f.name not in ("user_ptr", "cur_ptr") else getattr(wls, f.name)[:1]
            for f in fields(wls) if f.name != "latency"
        })
    width = greedy_width(cols, wls)
    assert width == greedy_width_python(cols, wls)
    limit = int(wls.site_limit.max()) if len(wls.site_limit) else 1
    sizes = sorted(np.diff(cols.site_ptr).tolist(), reverse=True)
    assert width == (1 if limit <= 1 else max(1, sum(sizes[:limit])))
    assert width <= max(1, len(cols.site))
    firm, total = site_power(cols)
    gcol, gn, placed = greedy_place(cols, wls, np.arange(len(wls.accel), dtype=np.int32), firm, total)
    assert gcol.shape == gn.shape == (len(wls.accel), width) and placed.shape == (len(wls.accel),)


def test_order_must_be_a_permutation():
    cols, wls = random_arrays(0, 4, 3)
    firm, total = site_power(cols)
    for bad in ([0, 1, 2], [0, 0, 1, 2], [0, 1, 2, 4]):
        with pytest.raises(ValueError, match="permutation"):
            greedy_place(cols, wls, np.asarray(bad), firm, total)
    with pytest.raises(ValueError, match="one entry per site"):
        greedy_place(cols, wls, np.arange(4), firm[:-1], total)
