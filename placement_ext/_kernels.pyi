"""Type stub of the compiled ``placement_ext._kernels`` (see ``_kernels.pyx``).

``cols`` / ``wls`` are the dicts of NumPy arrays built by ``placement.snapshot``:
any array-like values are accepted (converted to contiguous arrays of the kernel's
dtype and checked at the boundary).
"""

import enum
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from placement_ext.pairs import PairVerdicts

class Filter(enum.IntEnum):
    """Declared in ``_kernels.pxd``: the filters in pipeline order, then FEASIBLE."""

    CORDONED = 0
    TRAINING_NEEDS_FACTORY = 1
    FLEETS_NOT_ALLOWED = 2
    COUNTRY_NOT_ALLOWED = 3
    LATENCY = 4
    ACCELERATOR_MODEL = 5
    MEMORY = 6
    OFFLINE_NOW = 7
    INSUFFICIENT_DEVICES = 8
    INSUFFICIENT_POWER = 9
    FEASIBLE = 10

FILTER_LABELS: dict[Filter, str]
FILTER_NAMES: tuple[str, ...]
ENERGY_SCALE: float
LATENCY_SCALE: float
MAX_LATENCY_TIER: float
STABILITY_PENALTY: float
OPENMP: bool

def filter_score_topk(
    cols: dict[str, Any], wls: dict[str, Any], top_k: int, num_threads: int = 1
) -> dict[str, NDArray[Any]]:
    """Keys: ``cand_col`` int32 [W, K], ``cand_cost`` / ``cand_devices`` /
    ``cand_latency_ms`` float64 [W, K], ``rejections`` int32 [W, N_FILTERS],
    ``feasible_sites`` int32 [W]."""

def greedy_width(cols: dict[str, Any], wls: dict[str, Any]) -> int: ...
def greedy_place(
    cols: dict[str, Any],
    wls: dict[str, Any],
    order: ArrayLike,
    site_firm_watts: ArrayLike,
    site_total_watts: ArrayLike,
) -> tuple[NDArray[np.int32], NDArray[np.float64], NDArray[np.bool_]]: ...
def evaluate_pairs(
    cols: dict[str, Any], wls: dict[str, Any], workloads: ArrayLike, columns: ArrayLike
) -> PairVerdicts: ...
def feasible_pairs(
    cols: dict[str, Any], wls: dict[str, Any], num_threads: int = 1
) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float64]]: ...
def lagrangian_eval(
    ptr: ArrayLike,
    col: ArrayLike,
    coef: ArrayLike,
    value: ArrayLike,
    interruptible: ArrayLike,
    price_int: ArrayLike,
    price_ni: ArrayLike,
    num_threads: int = 1,
) -> tuple[float, NDArray[np.int64]]: ...
