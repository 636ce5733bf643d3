"""The Cython kernels against their NumPy and pure-Python twins, on random inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placement_ext import FILTER_NAMES, filter_score_topk, greedy_place
from placement_ext.reference import filter_score_topk_numpy, filter_score_topk_python, to_python


def random_arrays(seed: int, W: int, S: int, R: int = 4, NC: int = 3, NM: int = 3):
    rng = np.random.default_rng(seed)
    per_site = rng.integers(1, 4, size=S)
    site_ptr = np.concatenate(([0], np.cumsum(per_site))).astype(np.int32)
    C = int(site_ptr[-1])
    site = np.repeat(np.arange(S), per_site).astype(np.int32)
    is_fleet_site = rng.random(S) < 0.4
    firm = np.floor(rng.uniform(0, 5e5, S))
    total = firm + np.floor(rng.uniform(0, 5e5, S))
    cols = {
        "site": site,
        "is_fleet": is_fleet_site[site].astype(np.uint8),
        "cordoned": (rng.random(S) < 0.1)[site].astype(np.uint8),
        "country": rng.integers(0, NC, S)[site].astype(np.int32),
        "model": rng.integers(0, NM, C).astype(np.int32),
        "memory_gib": rng.choice([8.0, 32.0, 80.0, 192.0], C),
        "cap_devices": np.floor(rng.uniform(0, 400, C)),
        "tps_milli": np.where(rng.random(C) < 0.05, 0.0, np.floor(rng.uniform(1e4, 5e6, C))),
        "watts": np.floor(rng.uniform(50, 2000, C)),
        "e_dev": np.floor(rng.uniform(0, 1000, C)),
        "e_tok": np.floor(rng.uniform(0, 1000, C)),
        "firm_watts": firm[site],
        "total_watts": total[site],
        "site_ptr": site_ptr,
    }
    n_users = rng.integers(0, 3, W)
    user_ptr = np.concatenate(([0], np.cumsum(n_users))).astype(np.int32)
    n_cur = rng.integers(0, 2, W) * (rng.random(W) < 0.3)
    cur_ptr = np.concatenate(([0], np.cumsum(n_cur))).astype(np.int32)
    lat = rng.uniform(0, 200, (R, C))
    lat[rng.random((R, C)) < 0.1] = np.inf
    dev = rng.random(W) < 0.5
    wls = {
        "is_training": (rng.random(W) < 0.2).astype(np.uint8),
        "allow_fleets": (rng.random(W) < 0.6).astype(np.uint8),
        "interruptible": (rng.random(W) < 0.5).astype(np.uint8),
        "site_limit": np.where(rng.random(W) < 0.4, rng.integers(2, 4, W), 1).astype(np.int32),
        "accel": np.where(dev, rng.integers(1, 300, W), 0).astype(np.float64),
        "tokens_milli": np.where(dev, 0, np.floor(rng.uniform(1e5, 5e8, W))).astype(np.float64),
        "min_memory_gib": rng.choice([0.0, 16.0, 40.0, 100.0], W),
        "max_latency_ms": np.where(rng.random(W) < 0.6, rng.uniform(10, 200, W), np.inf),
        "user_ptr": user_ptr,
        "user_region": rng.integers(0, R, int(user_ptr[-1])).astype(np.int32),
        "user_weight": rng.uniform(0.05, 1.0, int(user_ptr[-1])),
        "cur_ptr": cur_ptr,
        "cur_site": rng.integers(0, S, int(cur_ptr[-1])).astype(np.int32),
        "country_ok": (rng.random((W, NC)) < 0.7).astype(np.uint8),
        "model_ok": (rng.random((W, NM)) < 0.7).astype(np.uint8),
        "latency": lat,
    }
    return cols, wls


def assert_same(a, b):
    np.testing.assert_array_equal(np.asarray(a["rejections"]), np.asarray(b["rejections"]))
    np.testing.assert_array_equal(np.asarray(a["feasible_sites"]), np.asarray(b["feasible_sites"]))
    np.testing.assert_array_equal(np.asarray(a["cand_col"]), np.asarray(b["cand_col"]))
    for k in ("cand_cost", "cand_devices", "cand_latency_ms"):
        np.testing.assert_allclose(np.asarray(a[k]), np.asarray(b[k]), rtol=1e-9)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), W=st.integers(1, 40), S=st.integers(1, 15), K=st.integers(1, 8),
       threads=st.integers(1, 2))
def test_cython_equals_numpy_and_python(seed, W, S, K, threads):
    cols, wls = random_arrays(seed, W, S)
    cy = filter_score_topk(cols, wls, K, threads)
    assert_same(cy, filter_score_topk_numpy(cols, wls, K, chunk=7))
    pc, pw = to_python(cols, wls)
    assert_same(cy, filter_score_topk_python(pc, pw, K))
    # every site is either feasible or counted under exactly one filter
    np.testing.assert_array_equal(cy["rejections"].sum(axis=1) + cy["feasible_sites"], S)


def test_first_failing_filter_wins_and_topk_sorted():
    cols, wls = random_arrays(1, 30, 10)
    out = filter_score_topk(cols, wls, 4)
    costs = out["cand_cost"]
    with np.errstate(invalid="ignore"):
        assert (np.diff(costs, axis=1)[np.isfinite(costs[:, 1:])] >= 0).all()
    assert out["rejections"].shape == (30, len(FILTER_NAMES))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), W=st.integers(1, 40), S=st.integers(1, 10))
def test_greedy_respects_capacity_power_and_site_limits(seed, W, S):
    cols, wls = random_arrays(seed, W, S)
    nsites = S
    site_firm = np.zeros(nsites)
    site_total = np.zeros(nsites)
    site_firm[cols["site"]] = cols["firm_watts"]
    site_total[cols["site"]] = cols["total_watts"]
    order = np.arange(W, dtype=np.int32)[::-1].copy()
    gcol, gn, placed = greedy_place(cols, wls, order, site_firm, site_total)
    used = np.zeros(len(cols["site"]))
    tot = np.zeros(nsites)
    ni = np.zeros(nsites)
    code_ok = filter_score_topk(cols, wls, len(cols["site"]))["cand_col"]
    for w in range(W):
        chosen = [(c, n) for c, n in zip(gcol[w], gn[w]) if c >= 0]
        assert bool(chosen) == bool(placed[w])
        if not chosen:
            continue
        assert len(chosen) <= max(1, wls["site_limit"][w])
        for c, n in chosen:
            assert c in set(code_ok[w])  # passed every filter
            used[c] += n
            tot[cols["site"][c]] += n * cols["watts"][c]
            if not wls["interruptible"][w]:
                ni[cols["site"][c]] += n * cols["watts"][c]
        if wls["accel"][w] > 0:
            assert sum(n for _, n in chosen) == wls["accel"][w]
        else:
            assert sum(n * cols["tps_milli"][c] for c, n in chosen) >= wls["tokens_milli"][w]
    assert (used <= cols["cap_devices"]).all()
    assert (tot <= site_total).all()
    assert (ni <= np.minimum(site_firm, site_total)).all()


def test_bad_shapes_rejected():
    cols, wls = random_arrays(0, 5, 3)
    with pytest.raises(ValueError):
        filter_score_topk(cols, wls, 0)
    bad = dict(wls, user_ptr=wls["user_ptr"][:-1])
    with pytest.raises(ValueError):
        filter_score_topk(cols, bad, 2)
    with pytest.raises(ValueError):
        greedy_place(cols, wls, np.zeros(5, dtype=np.int32), np.zeros(3), np.zeros(3))



@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), W=st.integers(1, 30), S=st.integers(1, 10), threads=st.sampled_from([1, 2]))
def test_feasible_pairs_and_lagrangian_eval_match_python(seed, W, S, threads):
    import math

    from placement_ext import feasible_pairs, lagrangian_eval
    from placement_ext.reference import N_FILTERS, _pair_eval_py

    cols, wls = random_arrays(seed, W, S)
    ptr, col, coef = feasible_pairs(cols, wls, threads)
    k = 0
    for w in range(W):
        assert ptr[w] == k
        for c in range(len(cols["site"])):
            code, n, _lat, _cost = _pair_eval_py(cols, wls, w, c)
            if code != N_FILTERS:
                continue
            assert col[k] == c
            if wls["site_limit"][w] <= 1:
                expect = n
            elif wls["accel"][w] > 0:
                expect = wls["accel"][w]
            else:
                expect = wls["tokens_milli"][w] / cols["tps_milli"][c]
            assert math.isclose(coef[k], expect, rel_tol=1e-12)
            k += 1
    assert ptr[W] == k == len(col)
    rng = np.random.default_rng(seed)
    C = len(cols["site"])
    p_int, p_ni = rng.uniform(0, 5, C), rng.uniform(0, 5, C)
    value = rng.uniform(0, 500, W)
    total, choice = lagrangian_eval(ptr, col, coef, value, wls["interruptible"], p_int, p_ni, threads)
    expect_total = 0.0
    for w in range(W):
        price = p_int if wls["interruptible"][w] else p_ni
        costs = [coef[j] * price[col[j]] for j in range(ptr[w], ptr[w + 1])]
        best = min(costs, default=math.inf)
        if best < value[w]:
            expect_total += value[w] - best
            assert math.isclose(costs[choice[w] - ptr[w]], best)
        else:
            assert choice[w] == -1
    assert math.isclose(total, expect_total, rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), W=st.integers(1, 20), S=st.integers(1, 8))
def test_evaluate_pairs_matches_python(seed, W, S):
    from placement_ext import evaluate_pairs
    from placement_ext.reference import N_FILTERS, _pair_eval_py

    cols, wls = random_arrays(seed, W, S)
    C = len(cols["site"])
    pairs = [(w, c) for w in range(W) for c in range(C)]
    code, devices, latency, cost = evaluate_pairs(cols, wls, [w for w, _ in pairs], [c for _, c in pairs])
    for k, (w, c) in enumerate(pairs):
        want_code, want_n, want_lat, want_cost = _pair_eval_py(cols, wls, w, c)
        assert code[k] == want_code
        if want_code == N_FILTERS:
            assert devices[k] == want_n
            assert latency[k] == pytest.approx(want_lat, rel=1e-12, abs=1e-12)
            assert cost[k] == pytest.approx(want_cost, rel=1e-12)


def test_evaluate_pairs_refuses_out_of_range_indices():
    from placement_ext import evaluate_pairs

    cols, wls = random_arrays(0, 3, 2)
    with pytest.raises(IndexError):
        evaluate_pairs(cols, wls, [0], [len(cols["site"])])
    assert len(evaluate_pairs(cols, wls, [], [])[0]) == 0
