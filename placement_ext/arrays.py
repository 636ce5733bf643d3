"""The kernels' inputs: one typed field per column array and per workload array.

Built once per snapshot by :func:`placement.snapshot.build` (and restricted by
:func:`placement.snapshot.residual`); bound once by
:class:`placement_ext.MeshKernels`, which checks them and runs the compiled kernels
over them; read by the engine's stages and by the NumPy / pure-Python twins
(:mod:`placement_ext.reference`). Plain Python, so the type checker sees every field.
``TopKArrays`` names the scoring kernel's output, which the stages pass around.

All quantities the kernels compare are integer-valued floats (see
:mod:`placement.capacity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

# What ``MeshKernels.filter_score_topk`` returns: the candidates and rejection counts by
# name (``cand_col``, ``cand_cost``, ``cand_devices``, ``cand_latency_ms``,
# ``rejections``, ``feasible_sites``; see its docstring).
TopKArrays = dict[str, NDArray[Any]]


@dataclass(frozen=True, slots=True)
class ColumnArrays:
    """One entry per site column (a factory's accelerator pool, or a fleet), columns
    of one site contiguous; built by :func:`placement.snapshot.build`."""

    site: NDArray[np.int32]  # site index of the column
    is_fleet: NDArray[np.uint8]  # 1 for a fleet, 0 for a factory's pool
    cordoned: NDArray[np.uint8]  # 1 when the site takes no new work
    country: NDArray[np.int32]  # country index (a column of WorkloadArrays.country_ok)
    model: NDArray[np.int32]  # accelerator model index (a column of WorkloadArrays.model_ok)
    memory_gib: NDArray[np.float64]  # per device
    cap_devices: NDArray[np.float64]  # devices the column offers
    tps_milli: NDArray[np.float64]  # per-device tokens/s x 1000, floored
    watts: NDArray[np.float64]  # per-device facility watts, ceiled
    e_dev: NDArray[np.float64]  # energy tier per device (0..1000), device-count demand
    e_tok: NDArray[np.float64]  # energy tier per device (0..1000), token demand
    firm_watts: NDArray[np.float64]  # the column's site's firm budget (fleets: the cap)
    total_watts: NDArray[np.float64]  # the column's site's usable budget
    site_ptr: NDArray[np.int32]  # [sites + 1] CSR: site s holds columns site_ptr[s]:site_ptr[s + 1]


@dataclass(frozen=True, slots=True)
class WorkloadArrays:
    """One entry per workload (users and current sites as CSR lists, sovereignty and
    model rules as ``[W, n]`` matrices, the latency matrix over the columns); built by
    :func:`placement.snapshot.build`."""

    is_training: NDArray[np.uint8]  # 1 for a gang (training) workload: factories only
    allow_fleets: NDArray[np.uint8]  # 1 when fleets may serve it
    interruptible: NDArray[np.uint8]  # 1 when it may run on flexible (non-firm) power
    site_limit: NDArray[np.int32]  # most distinct sites it may be split over
    accel: NDArray[np.float64]  # devices asked for (0 for a token demand)
    tokens_milli: NDArray[np.float64]  # tokens/s x 1000 asked for, ceiled (0 for a device demand)
    min_memory_gib: NDArray[np.float64]  # per device
    max_latency_ms: NDArray[np.float64]  # inf when none
    user_ptr: NDArray[np.int32]  # [W + 1] CSR over user_region / user_weight
    user_region: NDArray[np.int32]  # region index (a row of latency) of each user
    user_weight: NDArray[np.float64]  # each user's share of the demand
    cur_ptr: NDArray[np.int32]  # [W + 1] CSR over cur_site
    cur_site: NDArray[np.int32]  # site indices the workload runs on now
    country_ok: NDArray[np.uint8]  # [W, countries] 1 = the workload may run there
    model_ok: NDArray[np.uint8]  # [W, models] 1 = the workload may use that accelerator
    latency: NDArray[np.float64]  # [regions, columns] ms; inf = unreachable
