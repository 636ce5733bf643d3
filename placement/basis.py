"""Basis: what a plan remembers for the next, warm, re-solve (``Plan.basis``).

Made by :mod:`placement.pipeline` at the end of every solve and read by its warm
path when the next ``plan(mesh, config, previous=...)`` comes: a fingerprint of
everything about the sites the engine uses, each workload's demand (compared by
equality), the columns and devices each placed workload got, and the Lagrangian
multipliers (to warm-start the bound). Engine-private: not part of the output
contract.
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass, field, fields

import numpy as np
from numpy.typing import NDArray

from placement.candidates import Candidates, Devices
from placement.problem import WorkloadDemand
from placement.snapshot import Snapshot

# One candidate row of a placed workload: (column, need, ub, cost per device, devices)
ChosenRow = tuple[int, int, int, int, int]
# An unplaced workload's top-K candidate columns and the fewest devices it could
# start with on each (its whole need; 1 when it may split)
CandidateColumns = tuple[NDArray[np.int32], NDArray[np.float64]]


@dataclass(slots=True)
class Basis:
    """What a later warm re-solve needs from this plan (engine-private)."""

    sites_fp: str
    top_k: int
    # each workload's demand without ``current``: compared by equality, not by hash,
    # so a changed spec can never pass for an unchanged one
    workload_fp: dict[str, tuple[object, ...]]
    chosen: dict[str, list[ChosenRow]]  # per placed workload
    multipliers: NDArray[np.float64] | None
    # each workload's Lagrangian term at ``multipliers`` (placement.bound.workload_terms),
    # so a warm re-solve evaluates the changed workloads' terms only
    terms: dict[str, float] | None = None
    # per unplaced workload, its candidate columns against the whole capacity (the same
    # while its spec and the sites are): the warm path re-solves it only when a change
    # leaves room on one of them (placement.warm.helped)
    waiting: dict[str, CandidateColumns] = field(default_factory=dict)


def sites_fingerprint(snap: Snapshot) -> str:
    """Hash of everything about the sites the engine uses (columns, budgets, latency)."""
    h = hashlib.blake2b(digest_size=16)
    for k in sorted(f.name for f in fields(snap.cols)):  # by name: the same hash as ever
        h.update(k.encode())
        h.update(np.ascontiguousarray(getattr(snap.cols, k)).tobytes())
    h.update(np.ascontiguousarray(snap.wls.latency).tobytes())
    h.update(np.ascontiguousarray(snap.site_firm_watts).tobytes())
    h.update(np.ascontiguousarray(snap.site_total_watts).tobytes())
    h.update("\0".join([*snap.site_names, *snap.col_model_name, *snap.latency.regions]).encode())
    return h.hexdigest()


# every field of a demand but ``current`` (which only moves the stability tier)
_DEMAND_FIELDS = operator.attrgetter(*(f.name for f in fields(WorkloadDemand) if f.name != "current"))


def workload_fingerprint(w: WorkloadDemand) -> tuple[object, ...]:
    """The demand as the engine sees it, minus ``current``, as a tuple compared by
    equality (one C call per workload: the warm path compares every workload)."""
    fp: tuple[object, ...] = _DEMAND_FIELDS(w)
    return fp


def make_basis(
    snap: Snapshot, cands: Candidates, devices: Devices, multipliers: NDArray[np.float64] | None, top_k: int,
    terms: dict[str, float] | None = None,
    waiting: dict[str, CandidateColumns] | None = None,
    fingerprints: list[tuple[object, ...]] | None = None,
) -> Basis:
    """What the next warm re-solve needs from this plan (``fingerprints``: those of
    ``snap``'s workloads in order, when the caller has them already)."""
    chosen: dict[str, list[ChosenRow]] = {}
    used = np.flatnonzero(devices > 0)  # one pass over the rows in use, as Python lists
    keys = snap.keys
    for w, *row in zip(cands.workload_of()[used].tolist(), cands.col[used].tolist(), cands.need[used].tolist(),
                       cands.ub[used].tolist(), cands.cost_per_device[used].tolist(), devices[used].tolist(),
                       strict=True):
        chosen.setdefault(keys[w], []).append((row[0], row[1], row[2], row[3], row[4]))
    return Basis(
        sites_fp=sites_fingerprint(snap),
        top_k=top_k,
        workload_fp=dict(zip(snap.keys, fingerprints if fingerprints is not None
                             else [workload_fingerprint(w) for w in snap.mesh.workloads], strict=True)),
        chosen=chosen,
        multipliers=multipliers,
        terms=terms,
        waiting={k: v for k, v in (waiting or {}).items() if k not in chosen},
    )
