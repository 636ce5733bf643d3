"""Compiled placement kernels (Cython), imported by ``placement``.

This package holds only the typed, ``nogil`` inner loops; ``placement`` prepares the
NumPy arrays they take and turns their results into decisions. It knows nothing of
Kubernetes, kopf or the HTTP API.

``ColumnArrays`` / ``WorkloadArrays`` (``placement_ext.arrays``, plain Python) are the
kernels' typed inputs, built once per snapshot by ``placement.snapshot.build``.
``MeshKernels`` is the compiled handle over one pair of them: its constructor checks
the arrays and binds them once, its methods (``filter_score_topk``, ``greedy_width``,
``greedy_place``, ``evaluate_pairs``, ``feasible_pairs``) run the kernels over them;
the engine's stages call it through ``Snapshot.kernels``, one per snapshot. The
module-level functions of the same names bind the arrays for a single call (tests,
twins, one-off arrays); ``lagrangian_eval`` runs over the feasible pairs' CSR lists.

The extension is built by ``pip install -e .`` (see ``setup.py``). There is no
pure-Python fallback in production code: if the compiled module is missing, importing
this package fails with instructions. ``OPENMP`` tells whether the build runs its
parallel loops with OpenMP (serial otherwise, with the same results). ``Filter`` (an
``IntEnum`` declared once in ``_kernels.pxd``) names the filters; ``FILTER_LABELS`` gives
each refusing one its words in decisions and explanations.
"""

from placement_ext.arrays import ColumnArrays, WorkloadArrays

try:
    from placement_ext._kernels import (
        ENERGY_SCALE,
        FILTER_LABELS,
        FILTER_NAMES,
        LATENCY_SCALE,
        MAX_LATENCY_TIER,
        OPENMP,
        STABILITY_PENALTY,
        Filter,
        MeshKernels,
        evaluate_pairs,
        feasible_pairs,
        filter_score_topk,
        greedy_place,
        greedy_width,
        lagrangian_eval,
    )
    from placement_ext.pairs import PairVerdicts
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "meshplane's compiled placement kernels (placement_ext._kernels) are not built "
        "(or were built from older sources). Build them with `pip install -e .` (or "
        "`make install`) from the repository root; a C compiler and Cython are required."
    ) from exc

__all__ = [
    "ENERGY_SCALE",
    "FILTER_LABELS",
    "FILTER_NAMES",
    "LATENCY_SCALE",
    "MAX_LATENCY_TIER",
    "OPENMP",
    "STABILITY_PENALTY",
    "ColumnArrays",
    "Filter",
    "MeshKernels",
    "PairVerdicts",
    "WorkloadArrays",
    "evaluate_pairs",
    "feasible_pairs",
    "filter_score_topk",
    "greedy_place",
    "greedy_width",
    "lagrangian_eval",
]
