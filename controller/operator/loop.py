"""The one solve loop: debounced, woken by spec changes, fleet windows and a timer.

Started by :mod:`controller.operator.main` in its own thread (kopf's event loop keeps
serving watches while a solve runs). ``mark_dirty()`` (called by the watch handlers on
a spec change) starts a quiet period: the solve runs once nothing has changed for
``debounce_quiet_s``, or ``debounce_max_s`` after the first change at the latest, so a
burst of N changes costs one solve. The loop also wakes when a fleet's availability
window opens or closes (:func:`controller.core.schedule.next_window_change`), and for a
periodic cold solve. Only the Lease holder writes; the standby plans as well (writing
nothing, logging "standby: planned ...") so that its HTTP API answers reads like the
leader's; a replica that becomes leader solves at once, cold.

Each solve: snapshot the state, reconcile (warm from the previous plan, cold now and
then), compute the changes, write them, record what was written, publish the outcome
(immutable) for readers such as the HTTP API: ``published`` holds snapshot, outcome
and version together, replaced in one assignment, and :meth:`SolveLoop.current` makes
the loop the API's ``MeshSource``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.api.resources import AnyResource
from controller.core.changes import Change, ObjectRef, changes, refused_change
from controller.core.reconcile import Outcome, Snapshot, reconcile
from controller.core.schedule import next_window_change
from controller.http.source import Published
from controller.operator.materialiser import Materialiser
from controller.operator.metrics import OperatorMetrics
from controller.operator.settings import Settings
from controller.operator.state import MeshState
from placement.problem import SolverConfig

log = logging.getLogger("meshplane.operator.loop")


@dataclass(frozen=True)
class SolveReport:
    """What one solve did (published with the outcome; for logs, metrics and tests)."""

    at: dt.datetime
    warm: bool
    solve_ms: float
    changes: int
    status_patches: int
    events: int


def _merged(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``target`` after the merge patch ``patch`` (RFC 7386), as the server now holds it."""
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = value
    return result


class SolveLoop:
    """See the module docstring. ``write`` applies a list of changes and returns the
    refs it wrote; ``is_leader`` fences every solve; ``now`` is the wall clock (UTC,
    aware) the plan is made for, injectable for tests; ``monotonic`` times debounce."""

    def __init__(
        self,
        state: MeshState,
        settings: Settings,
        write: Callable[[list[Change]], set[ObjectRef]],
        is_leader: Callable[[], bool] = lambda: True,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        monotonic: Callable[[], float] = time.monotonic,
        materialiser: Materialiser | None = None,
        metrics: OperatorMetrics | None = None,
    ) -> None:
        self.state = state
        self.settings = settings
        self._write = write
        self._is_leader = is_leader
        self._now = now
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._first_change: float | None = None
        self._last_change: float | None = None
        self._was_leader = False
        self._last_cold: float | None = None
        self.outcome: Outcome | None = None  # the last published outcome (replaced, never mutated)
        self.report: SolveReport | None = None
        self.published: Published | None = None  # for the HTTP API; replaced whole, never mutated
        self.solves = 0
        self._next_window: dt.datetime | None = None
        self._materialiser = materialiser
        self._metrics = metrics

    def current(self) -> Published | None:
        """The last solve, as the HTTP API reads it (``controller.http.source.MeshSource``)."""
        return self.published

    def mark_dirty(self) -> None:
        """A change that may move placements happened (called from any thread)."""
        with self._cond:
            now = self._monotonic()
            if self._first_change is None:
                self._first_change = now
            self._last_change = now
            self._cond.notify_all()

    def _due_in(self, now: float) -> float | None:
        """Seconds until the debounced solve is due (0: now), or None when not dirty."""
        if self._first_change is None or self._last_change is None:
            return None
        quiet = self._last_change + self.settings.debounce_quiet_s - now
        latest = self._first_change + self.settings.debounce_max_s - now
        return max(0.0, min(quiet, latest))

    def run(self, stop: threading.Event, poll_s: float = 0.5) -> None:
        """Solve whenever due, until ``stop`` is set."""
        while not stop.is_set():
            leader = self._is_leader()
            if leader and not self._was_leader:
                log.info("leading: solving the whole mesh")
                self.outcome = None  # a new leader starts cold
                if self._materialiser is not None:
                    self._materialiser.reset()  # and trusts no cache of what it applied before
                self.mark_dirty()
            self._was_leader = leader
            with self._cond:
                due = self._due_in(self._monotonic())
                wake = self._next_window_wait()
                timeout = min(x for x in (due, wake, poll_s) if x is not None)
                if due is None or due > 0:
                    self._cond.wait(timeout=timeout)
                    due = self._due_in(self._monotonic())
                window_due = wake is not None and wake <= 0
            # the standby plans too (writing nothing), so that its HTTP API answers
            # reads like the leader's: the Service sends a reader to either replica
            if (due is not None and due <= 0) or window_due or self._window_passed():
                with self._cond:
                    self._first_change = self._last_change = None
                try:
                    self.solve_once()
                except Exception:  # never let one bad solve stop the operator
                    log.exception("solve failed; retrying on the next change")

    def _next_window_wait(self) -> float | None:
        if self._next_window is None:
            return None
        return (self._next_window - self._now()).total_seconds()

    def _window_passed(self) -> bool:
        return self._next_window is not None and self._now() >= self._next_window

    def _observe_apply_to_placed(
        self, metrics: OperatorMetrics, snapshot: Snapshot, outcome: Outcome, written: set[ObjectRef]
    ) -> None:
        """Seconds from the watch event of a workload's spec to its first Placed status
        for that spec, for the workloads whose status was just written."""
        now = time.monotonic()
        for workload in snapshot.workloads:
            ref = ObjectRef.of(workload)
            status = outcome.workloads.get(workload.key)
            if ref not in written or status is None or status.phase != "Placed":
                continue
            changed_at = self.state.take_spec_changed_at(ref, workload.metadata.generation)
            if changed_at is not None:
                metrics.apply_to_placed.observe(now - changed_at)

    def solve_once(self) -> SolveReport:
        """One solve and its writes, now (also used by tests)."""
        started = time.perf_counter()
        at = self._now().replace(microsecond=0)
        snapshot = self.state.snapshot(at)
        cold_due = self._last_cold is None or (
            self._monotonic() - self._last_cold >= self.settings.cold_solve_every_s
        )
        previous = None if cold_due or self.outcome is None else self.outcome.plan
        config = SolverConfig(time_limit_s=self.settings.solver_time_limit_s, num_workers=self.settings.solver_workers)
        outcome = reconcile(snapshot, config, previous=previous)
        if previous is None:
            self._last_cold = self._monotonic()
        pending = list(changes(snapshot, outcome))
        # a spec that changed while this solve ran: its status would carry the old
        # generation and be rewritten by the next solve (already due): skip it now
        resources: list[AnyResource] = [*snapshot.factories, *snapshot.fleets, *snapshot.workloads]
        solved_for = {ObjectRef.of(r): r.metadata.generation for r in resources}
        current = self.state.generations()
        pending = [c for c in pending if current.get(c.ref, solved_for.get(c.ref)) == solved_for.get(c.ref)]
        refused = self.state.refused_objects()
        for ref, entry in refused:
            problems = [f"{p.field}: {p.message}" for p in entry.problems]
            change = refused_change(ref, entry.generation, entry.status, problems, at)
            if change is not None:
                pending.append(change)
        leading = self._is_leader()
        written = self._write(pending) if leading else set()
        self.state.record_statuses(outcome, written)
        if self._metrics is not None:
            self._observe_apply_to_placed(self._metrics, snapshot, outcome, written)
        if self._materialiser is not None and leading:
            uids = self.state.uids()
            self._materialiser.sync(
                (w, outcome.workloads[w.key], uids.get(ObjectRef.of(w), "")) for w in snapshot.workloads
            )
        refused_refs = dict(refused)
        for change in pending:
            held = refused_refs.get(change.ref)
            if held is not None and change.ref in written and change.patch:
                self.state.record_refused_status(change.ref, _merged(held.status or {}, change.patch["status"]))
        self._next_window = next_window_change(snapshot.fleets, at)
        self.outcome = outcome
        self.solves += 1
        self.report = SolveReport(
            at=at, warm=previous is not None, solve_ms=(time.perf_counter() - started) * 1e3,
            changes=len(pending), status_patches=sum(1 for c in pending if c.patch is not None),
            events=sum(len(c.events) for c in pending),
        )
        self.published = Published(
            version=self.solves, snapshot=snapshot, outcome=outcome, at=at, solve_ms=self.report.solve_ms,
            warm=self.report.warm, config=config,
        )
        if self._metrics is not None:
            self._metrics.observe_solve(self.report, outcome)
        if not leading:
            log.info("standby: planned %d workloads on %d sites (%s) in %.0f ms for reads; nothing written",
                     len(snapshot.workloads), len(snapshot.factories) + len(snapshot.fleets),
                     "warm" if previous is not None else "cold", self.report.solve_ms)
            return self.report
        log.info(
            "solved %d workloads on %d sites (%s) in %.0f ms: %d status patches, %d events; next fleet window %s",
            len(snapshot.workloads), len(snapshot.factories) + len(snapshot.fleets),
            "warm" if previous is not None else "cold", self.report.solve_ms, self.report.status_patches,
            self.report.events, self._next_window.isoformat() if self._next_window else "none",
        )
        return self.report
