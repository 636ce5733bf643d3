"""Where the API reads the mesh from: a :class:`MeshSource` hands out the last
:class:`Published` reconcile (snapshot, outcome and their version), or None before the
first one.

Two sources exist: :class:`StaticSource` here (``meshctl serve``: manifests read once,
reconciled once, version 1) and the operator's solve loop
(:meth:`controller.operator.loop.SolveLoop.current`: its last publication). A ``Published`` is immutable and replaced whole, so a reader on another
thread sees either the old one or the new one, never a mix.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Protocol

from controller.core.explanations import SolverConfig
from controller.core.parse import Manifests
from controller.core.reconcile import Outcome, Snapshot, reconcile


@dataclass(frozen=True)
class Published:
    """One reconcile as the API serves it. ``version`` increases with every new outcome;
    ``config`` is the solver configuration it was made with (what-if questions reuse it)."""

    version: int
    snapshot: Snapshot
    outcome: Outcome
    at: dt.datetime
    solve_ms: float
    warm: bool
    config: SolverConfig = field(default_factory=SolverConfig)


class MeshSource(Protocol):
    """What the API reads; implemented by :class:`StaticSource` and the operator."""

    def current(self) -> Published | None:
        """The last publication, or None before the first solve."""
        ...


class StaticSource:
    """A mesh read from manifests once, reconciled once at ``at``: version 1, forever."""

    def __init__(self, manifests: Manifests, at: dt.datetime, config: SolverConfig | None = None) -> None:
        config = config or SolverConfig()
        snapshot = Snapshot(tuple(manifests.factories), tuple(manifests.fleets), tuple(manifests.workloads), at,
                            grid_events=tuple(manifests.grid_events))
        started = time.perf_counter()
        outcome = reconcile(snapshot, config)
        solve_ms = (time.perf_counter() - started) * 1e3
        self._published = Published(1, snapshot, outcome, at, solve_ms, warm=False, config=config)

    def current(self) -> Published | None:
        return self._published
