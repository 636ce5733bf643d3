"""Type stub of the compiled ``placement_ext._kernels`` (see ``_kernels.pyx``).

``cols`` / ``wls`` are the ``ColumnArrays`` / ``WorkloadArrays`` built by
``placement.snapshot`` (see ``placement_ext.arrays``); ``MeshKernels`` converts them to
contiguous arrays of the kernel's dtype and checks them once, at construction.
"""

import enum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from placement_ext.arrays import ColumnArrays, TopKArrays, WorkloadArrays
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

class MeshKernels:
    """The kernels bound to one pair of column / workload arrays (checked once)."""

    @property
    def cols(self) -> ColumnArrays: ...
    @property
    def wls(self) -> WorkloadArrays: ...
    def __init__(self, cols: ColumnArrays, wls: WorkloadArrays) -> None: ...
    def filter_score_topk(self, top_k: int, num_threads: int = 1) -> TopKArrays:
        """Keys: ``cand_col`` int32 [W, K], ``cand_cost`` / ``cand_devices`` /
        ``cand_latency_ms`` float64 [W, K], ``rejections`` int32 [W, N_FILTERS],
        ``feasible_sites`` int32 [W]."""

    def greedy_width(self) -> int: ...
    def greedy_place(
        self, order: ArrayLike, site_firm_watts: ArrayLike, site_total_watts: ArrayLike,
        preferred_cols: ArrayLike | None = None, preferred_devices: ArrayLike | None = None,
    ) -> tuple[NDArray[np.int32], NDArray[np.float64], NDArray[np.bool_]]: ...
    def evaluate_pairs(self, workloads: ArrayLike, columns: ArrayLike) -> PairVerdicts: ...
    def feasible_pairs(
        self, num_threads: int = 1
    ) -> tuple[NDArray[np.int64], NDArray[np.int32], NDArray[np.float64]]: ...

def filter_score_topk(
    cols: ColumnArrays, wls: WorkloadArrays, top_k: int, num_threads: int = 1
) -> TopKArrays:
    """``MeshKernels(cols, wls).filter_score_topk(top_k, num_threads)``."""

def greedy_width(cols: ColumnArrays, wls: WorkloadArrays) -> int: ...
def greedy_place(
    cols: ColumnArrays,
    wls: WorkloadArrays,
    order: ArrayLike,
    site_firm_watts: ArrayLike,
    site_total_watts: ArrayLike,
    preferred_cols: ArrayLike | None = None,
    preferred_devices: ArrayLike | None = None,
) -> tuple[NDArray[np.int32], NDArray[np.float64], NDArray[np.bool_]]: ...
def evaluate_pairs(
    cols: ColumnArrays, wls: WorkloadArrays, workloads: ArrayLike, columns: ArrayLike
) -> PairVerdicts: ...
def feasible_pairs(
    cols: ColumnArrays, wls: WorkloadArrays, num_threads: int = 1
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
