"""The kernels built without OpenMP (``MESHPLANE_OPENMP=0``, as on a compiler that
refuses ``-fopenmp``) say so in ``OPENMP`` and give the same results as this build.

The extension is built from a copy of its sources into a temporary directory with
``setup.py build_ext`` (about 30 s: one C compile) and run in a fresh interpreter, so
the installed build is left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from placement_ext import evaluate_pairs, feasible_pairs, filter_score_topk, greedy_place, lagrangian_eval
from tests.placement_ext.arrays import mesh_arrays

REPO = Path(__file__).resolve().parents[2]

RUN = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import placement_ext
    from placement_ext import (ColumnArrays, WorkloadArrays, evaluate_pairs, feasible_pairs, filter_score_topk,
                               greedy_place, lagrangian_eval)

    data = dict(np.load("inputs.npz"))
    cols = ColumnArrays(**{k[5:]: v for k, v in data.items() if k.startswith("cols.")})
    wls = WorkloadArrays(**{k[4:]: v for k, v in data.items() if k.startswith("wls.")})
    out = {}
    for k, v in filter_score_topk(cols, wls, 8, 2).items():
        out["topk." + k] = v
    g = greedy_place(cols, wls, data["order"], data["firm"], data["total"])
    out["greedy.col"], out["greedy.n"], out["greedy.placed"] = g
    ptr, col, coef = feasible_pairs(cols, wls, 2)
    out["pairs.ptr"], out["pairs.col"], out["pairs.coef"] = ptr, col, coef
    total, choice = lagrangian_eval(ptr, col, coef, data["value"], wls.interruptible,
                                    data["p_int"], data["p_ni"], num_threads=2)
    out["lagr.total"], out["lagr.choice"] = np.array(total), choice
    for k, v in zip(("code", "n", "lat", "cost", "need", "have"), evaluate_pairs(cols, wls, data["pw"], data["pc"]),
                    strict=True):
        out["eval." + k] = v
    np.savez("outputs.npz", **out)
    print(json.dumps({"openmp": placement_ext.OPENMP, "file": placement_ext._kernels.__file__}))
    """
)


def build_without_openmp(tmp: Path) -> Path:
    src, lib = tmp / "src", tmp / "lib"
    (src / "placement_ext").mkdir(parents=True)
    shutil.copy2(REPO / "setup.py", src)
    # the generated C file too (mtimes kept), so that cythonize has nothing to redo
    for name in ("__init__.py", "arrays.py", "reference.py", "_kernels.pyx", "_kernels.pyi", "_kernels.c"):
        if (REPO / "placement_ext" / name).exists():
            shutil.copy2(REPO / "placement_ext" / name, src / "placement_ext")
    env = dict(os.environ, MESHPLANE_OPENMP="0")
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(lib), "--build-temp", str(tmp / "obj")],
        cwd=src, env=env, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "building the placement kernels without OpenMP" in result.stderr
    for py in (src / "placement_ext").glob("*.py"):
        shutil.copy2(py, lib / "placement_ext")
    return lib


def test_kernels_built_without_openmp_say_so_and_agree(tmp_path):
    lib = build_without_openmp(tmp_path)
    cols, wls, firm, total = mesh_arrays(300, 60, seed=5)
    cols = replace(cols, cap_devices=np.floor(cols.cap_devices * 0.1))  # some splits
    W, C = len(wls.accel), len(cols.site)
    rng = np.random.default_rng(5)
    pw, pc = np.divmod(rng.choice(W * C, size=500, replace=False), C)
    extra = {
        "order": rng.permutation(W).astype(np.int32), "firm": firm, "total": total,
        "value": rng.uniform(0, 500, W), "p_int": rng.uniform(0, 5, C), "p_ni": rng.uniform(0, 5, C),
        "pw": pw, "pc": pc,
    }
    np.savez(
        lib / "inputs.npz",
        **{"cols." + k: v for k, v in asdict(cols).items()}, **{"wls." + k: v for k, v in asdict(wls).items()}, **extra,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MESHPLANE_OPENMP")}
    result = subprocess.run([sys.executable, "-c", RUN], cwd=lib, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(info["file"]).is_relative_to(lib), info  # the serial build, not the installed one
    assert info["openmp"] is False
    got = dict(np.load(lib / "outputs.npz"))

    want = {"topk." + k: v for k, v in filter_score_topk(cols, wls, 8, 2).items()}
    want["greedy.col"], want["greedy.n"], want["greedy.placed"] = greedy_place(
        cols, wls, extra["order"], firm, total
    )
    ptr, col, coef = feasible_pairs(cols, wls, 2)
    want["pairs.ptr"], want["pairs.col"], want["pairs.coef"] = ptr, col, coef
    lt, choice = lagrangian_eval(ptr, col, coef, extra["value"], wls.interruptible, extra["p_int"],
                                 extra["p_ni"], num_threads=2)
    want["lagr.total"], want["lagr.choice"] = np.array(lt), choice
    for k, v in zip(("code", "n", "lat", "cost", "need", "have"), evaluate_pairs(cols, wls, pw, pc), strict=True):
        want["eval." + k] = v
    assert set(got) == set(want)
    assert want["greedy.placed"].any() and len(want["pairs.col"]) > 0
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
