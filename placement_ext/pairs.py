"""The typed result of ``placement_ext.evaluate_pairs`` (one row per pair asked for).

Kept in plain Python so the compiled kernels and their callers share one definition;
``placement.explain`` only formats what is here.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray


class PairVerdicts(NamedTuple):
    """Per (workload, column) pair: ``filter`` is the first ``Filter`` refusing it, or
    ``Filter.FEASIBLE``; a feasible pair has its ``devices`` (to serve the whole
    demand), demand-weighted ``latency_ms`` and scoring ``cost``; a refused one the
    figures the refusing filter compared, ``need`` (the workload's) against ``have``
    (the column's): worst user latency / the limit (ms), memory (GiB), devices,
    watts (firm only unless interruptible), and for country and model refusals the
    column's country / model index as ``have``."""

    filter: NDArray[np.int32]
    devices: NDArray[np.float64]
    latency_ms: NDArray[np.float64]
    cost: NDArray[np.float64]
    need: NDArray[np.float64]
    have: NDArray[np.float64]

    @classmethod
    def empty(cls, n: int = 0) -> PairVerdicts:
        f: NDArray[Any] = np.zeros(n, dtype=np.int32)
        return cls(f, *(np.zeros(n) for _ in range(5)))
