"""The one solve loop: debounced, woken by spec changes, cluster reports, fleet windows
and a timer.

Started by :mod:`controller.operator.main` in its own thread (kopf's event loop keeps
serving watches while a solve runs). ``mark_dirty()`` (called by the watch handlers on
a spec change, and by the delivery layer when a member cluster is lost or comes back)
starts a quiet period: the solve runs once nothing has changed for
``debounce_quiet_s``, or at the latest a batching window after the first change, so a
burst of N changes costs one solve. The window is as long as the last solve took
(at least ``debounce_quiet_s``, at most ``debounce_max_s``): a steady stream of
changes (one every quiet period or more often, which never lets the quiet period
elapse) is solved in batches about as long as one solve, not every ``debounce_max_s``.
A burst (more than ``BURST_CHANGES`` changes pending, e.g. a runner creating
thousands of workloads) waits for its quiet period, up to ``debounce_max_s``, and is
solved once whole. ``mark_observed()`` (the delivery layer: a
Deployment became ready, a member stopped answering) is debounced the same way but
only *refreshes*: the statuses are computed again from the last plan with what the
clusters now say (:func:`controller.core.reconcile.outcome_of`), and nothing is
re-planned, so a member's status never triggers a solve. The loop also wakes when a
fleet's availability window opens or closes, at every grid event's start minus its
lead time, interval edge and end (:func:`controller.core.grid.next_grid_change`), and
for a periodic cold solve. Only the
Lease holder writes; the standby plans as well (writing nothing) so that its HTTP API
answers reads like the leader's; a replica that becomes leader solves at once, cold.

Each solve: snapshot the state (with what the clusters report), reconcile (warm from
the previous plan, cold now and then), compute the changes, and hand them to the
sinks (:mod:`controller.operator.sinks`: statuses, delivery, metrics, the HTTP
publisher) in order.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from controller.api.resources import AnyResource
from controller.core.changes import ObjectRef, changes, refused_change
from controller.core.delivery import NOTHING_OBSERVED, Observed
from controller.core.grid import next_grid_change
from controller.core.reconcile import Outcome, Snapshot, outcome_of, reconcile
from controller.core.schedule import next_window_change
from controller.http.source import Published
from controller.operator.process import release_free_memory, settle_heap
from controller.operator.settings import Settings
from controller.operator.sinks import Publisher, Sink, Solved, SolveMode, SolveReport
from controller.operator.state import MeshState
from placement.problem import SolverConfig

log = logging.getLogger("meshplane.operator.loop")

BURST_CHANGES = 50  # more changes pending than this: a burst, solved once whole (see the module docstring)
TRIM_AFTER_S = 1.0  # malloc's free memory is given back after a solve this long ...
TRIM_EVERY_S = 30.0  # ... and at least this often
COLLECT_EVERY_S = 300.0  # a full cyclic collection at most this often (see settle_heap)


class _Debounce:
    """A quiet period after the last mark, bounded after the first."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None
        self.marks = 0

    def mark(self, now: float) -> None:
        if self.first is None:
            self.first = now
        self.last = now
        self.marks += 1

    def due_in(self, now: float, quiet_s: float, window_s: float) -> float | None:
        if self.first is None or self.last is None:
            return None
        return max(0.0, min(self.last + quiet_s - now, self.first + window_s - now))

    def clear(self) -> None:
        self.first = self.last = None
        self.marks = 0


class SolveLoop:
    """See the module docstring. ``sinks`` receive each plan in order; ``is_leader``
    fences every solve; ``observe`` gives what the clusters report (the delivery
    layer); ``on_lead`` runs when this replica becomes leader; ``now`` is the wall
    clock (UTC, aware) the plan is made for, injectable for tests; ``monotonic`` times
    debounce."""

    def __init__(
        self,
        state: MeshState,
        settings: Settings,
        sinks: Sequence[Sink],
        is_leader: Callable[[], bool] = lambda: True,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        monotonic: Callable[[], float] = time.monotonic,
        observe: Callable[[], Observed] = lambda: NOTHING_OBSERVED,
        on_lead: Callable[[], None] | None = None,
    ) -> None:
        self.state = state
        self.settings = settings
        self.sinks = list(sinks)
        self.publisher = next((s for s in self.sinks if isinstance(s, Publisher)), None)
        self._is_leader = is_leader
        self._now = now
        self._monotonic = monotonic
        self._observe = observe
        self._on_lead = on_lead
        self._cond = threading.Condition()
        self._dirty = _Debounce()
        self._observed = _Debounce()
        self._was_leader = False
        self._last_cold: float | None = None
        self._solved_for: dict[ObjectRef, int | None] = {}
        self._last_solve_s = 0.0  # how long the last solve and its writes took (the batching window)
        self._trimmed_at: float | None = None
        self._collected_at: float | None = None
        self.outcome: Outcome | None = None  # the last outcome (replaced, never mutated)
        self.report: SolveReport | None = None
        self.solves = 0
        self.refreshes = 0
        self._next_window: dt.datetime | None = None

    @property
    def published(self) -> Published | None:
        return self.publisher.published if self.publisher is not None else None

    def current(self) -> Published | None:
        """The last solve, as the HTTP API reads it (``controller.http.source.MeshSource``)."""
        return self.published

    def mark_dirty(self) -> None:
        """A change that may move placements happened (called from any thread)."""
        with self._cond:
            self._dirty.mark(self._monotonic())
            self._cond.notify_all()

    def mark_observed(self) -> None:
        """What a cluster reports changed: statuses may change, placements do not."""
        with self._cond:
            self._observed.mark(self._monotonic())
            self._cond.notify_all()

    def _due(self, debounce: _Debounce, now: float) -> float | None:
        quiet, most = self.settings.debounce_quiet_s, self.settings.debounce_max_s
        window = most if debounce.marks > BURST_CHANGES else min(most, max(quiet, self._last_solve_s))
        return debounce.due_in(now, quiet, window)

    def run(self, stop: threading.Event, poll_s: float = 0.5) -> None:
        """Solve whenever due, until ``stop`` is set."""
        while not stop.is_set():
            leader = self._is_leader()
            if leader and not self._was_leader:
                log.info("leading: solving the whole mesh")
                self.outcome = None  # a new leader starts cold
                if self._on_lead is not None:
                    self._on_lead()  # and trusts no cache of what it applied before
                self.mark_dirty()
            self._was_leader = leader
            with self._cond:
                now = self._monotonic()
                due, refresh = self._due(self._dirty, now), self._due(self._observed, now)
                wake = self._next_window_wait()
                timeout = min(x for x in (due, refresh, wake, poll_s) if x is not None)
                if not any(x is not None and x <= 0 for x in (due, refresh)):
                    self._cond.wait(timeout=timeout)
                    now = self._monotonic()
                    due, refresh = self._due(self._dirty, now), self._due(self._observed, now)
                window_due = wake is not None and wake <= 0
            try:
                if (due is not None and due <= 0) or window_due or self._window_passed():
                    with self._cond:
                        self._dirty.clear()
                        self._observed.clear()
                    self.solve_once()
                elif refresh is not None and refresh <= 0:
                    with self._cond:
                        self._observed.clear()
                    self.refresh_once()
            except Exception:  # never let one bad solve stop the operator
                log.exception("solve failed; retrying on the next change")

    def _next_window_wait(self) -> float | None:
        if self._next_window is None:
            return None
        return (self._next_window - self._now()).total_seconds()

    def _window_passed(self) -> bool:
        return self._next_window is not None and self._now() >= self._next_window

    def solve_once(self) -> SolveReport:
        """One solve and its writes, now (also used by tests)."""
        started = time.perf_counter()
        at = self._now().replace(microsecond=0)
        snapshot, versions = self.state.snapshot_and_versions(at, self._observe())
        cold_due = self._last_cold is None or (
            self._monotonic() - self._last_cold >= self.settings.cold_solve_every_s
        )
        previous = None if cold_due or self.outcome is None else self.outcome.plan
        config = SolverConfig(time_limit_s=self.settings.solver_time_limit_s, num_workers=self.settings.solver_workers)
        outcome = reconcile(snapshot, config, previous=previous, previous_outcome=self.outcome)
        if previous is None:
            self._last_cold = self._monotonic()
        self._next_window = _earliest(next_window_change(snapshot.fleets, at),
                                      next_grid_change(snapshot.factories, snapshot.grid_events, at))
        return self._hand_over(snapshot, versions, outcome, config, "warm" if previous is not None else "cold",
                               started)

    def refresh_once(self) -> SolveReport | None:
        """Statuses again from the last plan with what the clusters report now; a full
        solve instead when a spec changed since that plan (also used by tests)."""
        if self.outcome is None:
            return self.solve_once()
        started = time.perf_counter()
        at = self._now().replace(microsecond=0)
        snapshot, versions = self.state.snapshot_and_versions(at, self._observe())
        if self._generations(snapshot) != self._solved_for:
            return self.solve_once()  # the plan is for other specs: plan again
        outcome = outcome_of(snapshot, self.outcome.plan, self.outcome)
        config = SolverConfig(time_limit_s=self.settings.solver_time_limit_s, num_workers=self.settings.solver_workers)
        return self._hand_over(snapshot, versions, outcome, config, "refresh", started)

    @staticmethod
    def _generations(snapshot: Snapshot) -> dict[ObjectRef, int | None]:
        resources: list[AnyResource] = [*snapshot.factories, *snapshot.fleets, *snapshot.workloads, *snapshot.clusters,
                                        *snapshot.grid_events]
        return {ObjectRef.of(r): r.metadata.generation for r in resources}

    def _hand_over(
        self, snapshot: Snapshot, versions: dict[ObjectRef, str], outcome: Outcome, config: SolverConfig,
        mode: SolveMode, started: float,
    ) -> SolveReport:
        computed = list(changes(snapshot, outcome))
        # a spec that changed while this solve ran: its status would carry the old
        # generation and be rewritten by the next solve (already due): skip it now (one
        # that changes later is refused by the API server: the patch carries the
        # resourceVersion the snapshot saw)
        solved_for = self._generations(snapshot)
        current = self.state.generations_of(c.ref for c in computed)
        pending = [replace(c, version=versions.get(c.ref)) for c in computed
                   if current.get(c.ref, solved_for.get(c.ref)) == solved_for.get(c.ref)]
        refused = self.state.refused_objects()
        for ref, entry in refused:
            problems = [f"{p.field}: {p.message}" for p in entry.problems]
            change = refused_change(ref, entry.generation, entry.status, problems, snapshot.at)
            if change is not None:
                pending.append(replace(change, version=entry.resource_version or None))
        leading = self._is_leader()
        if mode == "refresh":
            self.refreshes += 1
        else:
            self.solves += 1
        report = SolveReport(
            at=snapshot.at, warm=mode == "warm", solve_ms=(time.perf_counter() - started) * 1e3,
            changes=len(pending), status_patches=sum(1 for c in pending if c.patch is not None),
            events=sum(len(c.events) for c in pending), mode=mode,
        )
        solved = Solved(
            snapshot=snapshot, outcome=outcome, changes=pending, refused=refused, leading=leading, mode=mode,
            at=snapshot.at, config=config, version=self.solves + self.refreshes, report=report, versions=versions,
        )
        handed = time.perf_counter()
        for sink in self.sinks:
            try:
                sink.accept(solved)
            except Exception:  # one failing sink must not stop the others
                log.exception("%s failed", type(sink).__name__)
        done = time.perf_counter()
        sinks_ms = (done - handed) * 1e3
        if mode != "refresh":
            self._last_solve_s = done - started
        collect = self._collected_at is None or done - self._collected_at >= COLLECT_EVERY_S
        settle_heap(collect)
        if collect:
            self._collected_at = time.perf_counter()
        if done - started >= TRIM_AFTER_S or self._trimmed_at is None or done - self._trimmed_at >= TRIM_EVERY_S:
            release_free_memory()  # what a large solve allocated and freed goes back to the system
            self._trimmed_at = time.perf_counter()
        self.outcome = outcome
        self._solved_for = solved_for
        self.report = report
        sites = len(snapshot.factories) + len(snapshot.fleets)
        if not leading:
            log.info("standby: planned %d workloads on %d sites (%s) in %.0f ms for reads; nothing written",
                     len(snapshot.workloads), sites, mode, report.solve_ms)
        elif mode == "refresh":
            if report.status_patches or report.events:
                log.info("refreshed statuses from what the clusters report: %d status patches, %d events",
                         report.status_patches, report.events)
        else:
            log.info(
                "solved %d workloads on %d sites (%s) in %.0f ms: %d status patches, %d events; next wake-up %s "
                "(handed over in %.0f ms; engine %s)",
                len(snapshot.workloads), sites, mode, report.solve_ms, report.status_patches, report.events,
                self._next_window.isoformat() if self._next_window else "none", sinks_ms, _engine_path(outcome),
            )
        return report


def _engine_path(outcome: Outcome) -> str:
    """The engine's path in words, for the log: how much it re-solved, or why a warm
    solve gave way to a cold one (the slow case worth knowing about)."""
    stats = outcome.plan.stats
    if stats.warm:
        repair = (f" ({stats.floor_repair_workloads} by a repair toward the floor: {stats.floor_repair})"
                  if stats.floor_repair_workloads else "")
        short = (f", {stats.floor_shortfall:.4%} below the kube-scheduler-style floor (within warm_floor_gap)"
                 if stats.floor_shortfall else "")
        return (f"warm: {stats.resolved_workloads} re-solved{repair}, {stats.fixed_workloads} kept{short}, "
                f"{stats.wall_ms:.0f} ms")
    fallback = f", the warm path gave way: {stats.warm_fallback}" if stats.warm_fallback else ""
    return f"cold{fallback}, {stats.wall_ms:.0f} ms"


def _earliest(*moments: dt.datetime | None) -> dt.datetime | None:
    found = [m for m in moments if m is not None]
    return min(found) if found else None


__all__ = ["SolveLoop", "SolveReport"]
