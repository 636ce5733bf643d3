"""The Cython kernels against their NumPy and pure-Python twins, on random inputs."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from placement_ext import FILTER_NAMES, filter_score_topk, greedy_place
from placement_ext.reference import filter_score_topk_numpy, filter_score_topk_python, to_python
from tests.placement_ext.arrays import random_arrays


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


def test_bad_shapes_rejected():
    cols, wls = random_arrays(0, 5, 3)
    with pytest.raises(ValueError):
        filter_score_topk(cols, wls, 0)
    bad = replace(wls, user_ptr=wls.user_ptr[:-1])
    with pytest.raises(ValueError):
        filter_score_topk(cols, bad, 2)
    with pytest.raises(ValueError):
        greedy_place(cols, wls, np.zeros(5, dtype=np.int32), np.zeros(3), np.zeros(3))



@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), W=st.integers(1, 30), S=st.integers(1, 10), threads=st.sampled_from([1, 2]))
def test_feasible_pairs_and_lagrangian_eval_match_python(seed, W, S, threads):
    import math

    from placement_ext import feasible_pairs, lagrangian_eval
    from placement_ext.reference import N_FILTERS, pair_eval_python

    cols, wls = random_arrays(seed, W, S)
    ptr, col, coef = feasible_pairs(cols, wls, threads)
    k = 0
    for w in range(W):
        assert ptr[w] == k
        for c in range(len(cols.site)):
            code, n, _lat, _cost, _need, _have = pair_eval_python(cols, wls, w, c)
            if code != N_FILTERS:
                continue
            assert col[k] == c
            if wls.site_limit[w] <= 1:
                expect = n
            elif wls.accel[w] > 0:
                expect = wls.accel[w]
            else:
                expect = wls.tokens_milli[w] / cols.tps_milli[c]
            assert math.isclose(coef[k], expect, rel_tol=1e-12)
            k += 1
    assert ptr[W] == k == len(col)
    rng = np.random.default_rng(seed)
    C = len(cols.site)
    p_int, p_ni = rng.uniform(0, 5, C), rng.uniform(0, 5, C)
    value = rng.uniform(0, 500, W)
    total, choice = lagrangian_eval(ptr, col, coef, value, wls.interruptible, p_int, p_ni, threads)
    expect_total = 0.0
    for w in range(W):
        price = p_int if wls.interruptible[w] else p_ni
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
    from placement_ext.reference import N_FILTERS, pair_eval_python

    cols, wls = random_arrays(seed, W, S)
    C = len(cols.site)
    pairs = [(w, c) for w in range(W) for c in range(C)]
    got = evaluate_pairs(cols, wls, [w for w, _ in pairs], [c for _, c in pairs])
    for k, (w, c) in enumerate(pairs):
        want_code, want_n, want_lat, want_cost, want_need, want_have = pair_eval_python(cols, wls, w, c)
        assert got.filter[k] == want_code
        if want_code == N_FILTERS:
            assert got.devices[k] == want_n
            assert got.latency_ms[k] == pytest.approx(want_lat, rel=1e-12, abs=1e-12)
            assert got.cost[k] == pytest.approx(want_cost, rel=1e-12)
        else:  # the figures behind the refusal, as the twin measures them
            assert got.need[k] == pytest.approx(want_need, rel=1e-12, abs=1e-12)
            assert got.have[k] == pytest.approx(want_have, rel=1e-12, abs=1e-12)


def test_evaluate_pairs_refuses_out_of_range_indices():
    from placement_ext import evaluate_pairs

    cols, wls = random_arrays(0, 3, 2)
    with pytest.raises(IndexError):
        evaluate_pairs(cols, wls, [0], [len(cols.site)])
    assert len(evaluate_pairs(cols, wls, [], []).filter) == 0


def test_filters_are_one_enum_shared_by_the_kernel_the_twins_and_the_explanations():
    """The kernel's codes are ``Filter`` members (declared once, in _kernels.pxd), in
    pipeline order, each refusing one with its words; the twins use the same enum."""
    import enum

    from placement import explain
    from placement_ext import FILTER_LABELS, FILTER_NAMES, Filter, reference

    assert issubclass(Filter, enum.IntEnum)
    assert [f.value for f in Filter] == list(range(len(Filter)))
    assert Filter.FEASIBLE == len(Filter) - 1 == reference.N_FILTERS
    assert set(FILTER_LABELS) == set(Filter) - {Filter.FEASIBLE}
    assert tuple(FILTER_LABELS[f] for f in Filter if f != Filter.FEASIBLE) == FILTER_NAMES
    assert {label: f for f, label in FILTER_LABELS.items()} == explain.FILTER_OF_LABEL


def tied_arrays(seed: int, W: int, S: int):
    """Random arrays where many pairs cost the same: two energy tiers, one latency."""
    cols, wls = random_arrays(seed, W, S)
    cols = replace(
        cols,
        e_dev=np.floor(cols.e_dev / 500.0),
        e_tok=np.floor(cols.e_tok / 500.0),
        tps_milli=np.where(cols.tps_milli > 0, 1e6, 0.0),
    )
    return cols, replace(wls, latency=np.full_like(wls.latency, 20.0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_results_do_not_depend_on_the_thread_count(seed):
    from placement_ext import feasible_pairs, lagrangian_eval

    cols, wls = tied_arrays(seed, 400, 40)
    one = filter_score_topk(cols, wls, 6, 1)
    two = filter_score_topk(cols, wls, 6, 2)
    assert set(one) == set(two)
    for k in one:
        np.testing.assert_array_equal(one[k], two[k])
    # there are ties, and they go to the lower column index
    cost, col = one["cand_cost"], one["cand_col"]
    tie = (cost[:, 1:] == cost[:, :-1]) & np.isfinite(cost[:, 1:])
    assert tie.any()
    assert (col[:, 1:][tie] > col[:, :-1][tie]).all()
    assert_same(one, filter_score_topk_numpy(cols, wls, 6))
    p1, p2 = feasible_pairs(cols, wls, 1), feasible_pairs(cols, wls, 2)
    for a, b in zip(p1, p2, strict=True):
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(seed)
    C = len(cols.site)
    args = (rng.uniform(0, 500, 400), wls.interruptible, rng.uniform(0, 5, C), rng.uniform(0, 5, C))
    t1, c1 = lagrangian_eval(*p1, *args, num_threads=1)
    t2, c2 = lagrangian_eval(*p1, *args, num_threads=2)
    np.testing.assert_array_equal(c1, c2)
    assert t1 == t2


def test_bad_inputs_are_refused_at_the_boundary():
    cols, wls = random_arrays(0, 5, 3)
    for bad_cols in (
        replace(cols, site=cols.site[::-1].copy()),  # not the sites of site_ptr
        replace(cols, watts=cols.watts[:-1]),
        replace(cols, country=np.full_like(cols.country, 99)),
        replace(cols, site_ptr=cols.site_ptr[:-1]),
    ):
        with pytest.raises(ValueError):
            filter_score_topk(bad_cols, wls, 2)
    for bad_wls in (
        replace(wls, accel=wls.accel[:-1]),
        replace(wls, user_region=np.full_like(wls.user_region, 99)),
        replace(wls, cur_ptr=wls.cur_ptr + 1),
        replace(wls, latency=wls.latency[:, :-1]),
    ):
        with pytest.raises(ValueError):
            filter_score_topk(cols, bad_wls, 2)


def test_stub_lists_every_public_name_with_the_runtime_parameters():
    import ast
    import inspect
    import types
    from pathlib import Path

    import placement_ext
    from placement_ext import _kernels

    tree = ast.parse((Path(_kernels.__file__).parent / "_kernels.pyi").read_text())
    stub_funcs = {n.name: [a.arg for a in n.args.args] for n in tree.body if isinstance(n, ast.FunctionDef)}
    stub_consts = {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    stub_classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    public = {
        name for name in dir(_kernels)
        if not name.startswith("_") and not isinstance(getattr(_kernels, name), types.ModuleType)
        # names the kernels import (the typed PairVerdicts of placement_ext.pairs) are not theirs
        and getattr(getattr(_kernels, name), "__module__", None) in (None, _kernels.__name__, "builtins")
    }
    assert public == set(stub_funcs) | stub_consts | stub_classes
    for name, params in stub_funcs.items():
        assert list(inspect.signature(getattr(_kernels, name)).parameters) == params, name
    # the typed inputs (placement_ext.arrays) and the typed result (placement_ext.pairs) are plain Python
    assert set(placement_ext.__all__) == public | {"PairVerdicts", "ColumnArrays", "WorkloadArrays"}
    assert isinstance(placement_ext.OPENMP, bool)


def test_a_snapshot_binds_its_kernels_once_and_a_residual_gets_its_own():
    """``Snapshot.kernels`` is built on first use and then the same handle; a residual
    snapshot (other arrays) gets its own; the handle's results are the one-call
    functions' and the NumPy twin's."""
    from dataclasses import replace as replace_snapshot

    from placement import snapshot
    from placement_ext import MeshKernels
    from tests.support.meshes import synthetic_mesh

    snap = snapshot.build(synthetic_mesh(40, 12, seed=3))
    kernels = snap.kernels
    assert isinstance(kernels, MeshKernels)
    assert snap.kernels is kernels
    assert kernels.cols is snap.cols and kernels.wls is snap.wls

    idx = np.arange(0, len(snap.keys), 2, dtype=np.intp)
    rest = snapshot.residual(
        snap, idx, np.zeros(snap.n_cols), np.zeros(snap.n_sites), np.zeros(snap.n_sites)
    )
    assert rest.kernels is not kernels
    assert rest.kernels is rest.kernels
    assert rest.kernels.wls is rest.wls and len(rest.wls.accel) == idx.size
    assert snap.kernels is kernels  # the original keeps its own
    # a snapshot given other arrays by ``replace`` does not reuse the old handle
    fewer = replace_snapshot(snap, cols=replace(snap.cols, cap_devices=np.zeros(snap.n_cols)))
    assert fewer.kernels is not kernels and fewer.kernels.cols is fewer.cols

    out = kernels.filter_score_topk(4)
    assert (out["feasible_sites"] > 0).any()
    assert_same(out, filter_score_topk(snap.cols, snap.wls, 4))
    assert_same(out, MeshKernels(snap.cols, snap.wls).filter_score_topk(4))
    assert_same(out, filter_score_topk_numpy(snap.cols, snap.wls, 4))
    # no device left anywhere: nothing is feasible any more, through the new handle
    assert (fewer.kernels.filter_score_topk(4)["feasible_sites"] == 0).all()
    assert_same(rest.kernels.filter_score_topk(4), filter_score_topk_numpy(rest.cols, rest.wls, 4))


def test_mesh_kernels_take_the_typed_arrays_only():
    from placement_ext import MeshKernels

    cols, wls = random_arrays(0, 5, 3)
    with pytest.raises(TypeError):
        MeshKernels({"site": cols.site}, wls)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same length"):
        MeshKernels(cols, replace(wls, accel=wls.accel[:-1]))
