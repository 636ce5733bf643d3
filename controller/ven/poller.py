"""The VEN's loop: poll the VTN, mirror its events as GridEvents, report demand back.

Only the holder of the VEN's Lease polls and writes; a standby waits. Each poll:

1. list the VEN's own GridEvents and the AIFactories;
2. read every program and every event of the VTN (paged); an event that a GridEvent
   still in force mirrors but the listing did not return is asked for by ID
   (``GET /events/{id}``): only a 404 there means it is gone;
3. if any of that failed, the poll failed: nothing is applied, nothing is cancelled.
   Once the VTN has not been read for ``stale_after`` (default 3 polls), every
   GridEvent of this VTN still to come or in force gets the annotation
   ``meshplane.io/source-stale-since`` (the time of the first failed poll); its spec is
   left exactly as last read, so the operator keeps the curtailment and says
   SourceStale, and nothing is lifted early;
4. else: the stale annotations are removed, and :func:`controller.core.openadr.plan_sync`
   says what to apply (new or changed: a new ``modificationDateTime`` is a change) and
   what to cancel (its event gone from the listing, or no longer targeting the factory);
5. reports: for each GridEvent whose interval just ended, a DEMAND report (the
   factory's ``status.power.allocatedMW``, in kW) and BASELINE (its allocation when the
   event was first seen) is posted to the VTN, then ``status.lastReport`` is written.

The loop wakes every ``poll_interval_s`` and at each interval end of a GridEvent in
force, so reports are not a poll late. Bad VTN data never raises: the event is logged
with the reason and skipped (its GridEvents are kept as they are); no poll error stops
the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from controller.core.changes import EventType
from controller.core.openadr import (
    Existing,
    Mapped,
    cancelled_manifest,
    due_reports,
    existing_of,
    factory_targets,
    format_time,
    last_report_status,
    map_events,
    missing_event_ids,
    next_interval_end,
    plan_sync,
    report_body,
    stale_targets,
)
from controller.ven.client import OpenAdrClient, OpenAdrError, VtnNotFound
from controller.ven.cluster import Cluster, NotLeading, describe
from controller.ven.metrics import VenMetrics
from controller.ven.settings import VenSettings

log = logging.getLogger("meshplane.ven")

STANDBY_WAIT_S = 0.5  # how often a standby asks whether it leads now
END_MARGIN_S = 0.2  # wake this long after an interval end (its status is then past it)

_Said = tuple[str, str | None, EventType, str, str]


def _allocated(factory: Mapping[str, Any]) -> float | None:
    value = ((factory.get("status") or {}).get("power") or {}).get("allocatedMW")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class Ven:
    """One VEN: ``await run(stop)`` until ``stop`` is set."""

    def __init__(
        self, settings: VenSettings, client: OpenAdrClient, cluster: Cluster, metrics: VenMetrics,
        is_leader: Callable[[], bool], clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.settings = settings
        self.config = settings.config()
        self.client = client
        self.cluster = cluster
        self.metrics = metrics
        self._is_leader = is_leader
        self._clock = clock
        self._leading = False
        self._contact: dt.datetime | None = None  # last successful poll, or when we began leading
        self._failing_since: dt.datetime | None = None
        self._last_error: str | None = None
        self._stale = False
        self._skipped_said: dict[str, str] = {}
        self._next_end: dt.datetime | None = None
        self.polls = 0  # successful polls, since the start
        self.failed_polls = 0

    # ------------------------------------------------------------------ the loop

    async def run(self, stop: asyncio.Event) -> None:
        log.info("VTN %s at %s: polled every %.1fs while this replica holds the Lease (stale after %.0fs)",
                 self.config.vtn, self.client.base_url, self.settings.poll_interval_s,
                 self.settings.stale_after.total_seconds())
        while not stop.is_set():
            started = time.monotonic()
            leader = self._leader()
            if leader:
                try:
                    await self.poll_once()
                except NotLeading:
                    log.info("lost the Lease during a poll; the rest of it was skipped")
                except Exception:  # never let the loop die; the next poll tries again
                    log.exception("poll failed")
            wait = self._wait(started) if leader else STANDBY_WAIT_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(0.0, wait))

    def _leader(self) -> bool:
        try:
            leader = bool(self._is_leader())
        except Exception:
            leader = False
        self.metrics.leader.set(1 if leader else 0)
        if leader and not self._leading:
            log.info("leading: polling VTN %s", self.config.vtn)
            self._contact, self._failing_since, self._stale = self._clock(), None, False
            self._last_error = None
        elif not leader and self._leading:
            log.info("not leading any more: polling stops")
        self._leading = leader
        return leader

    def _wait(self, started: float) -> float:
        wait = self.settings.poll_interval_s - (time.monotonic() - started)
        if self._next_end is not None:
            until_end = (self._next_end - self._clock()).total_seconds() + END_MARGIN_S
            wait = min(wait, max(until_end, 0.0))
        return wait

    # ------------------------------------------------------------------ one poll

    async def poll_once(self) -> None:
        now = self._clock()
        try:
            listed = await asyncio.to_thread(self.cluster.own_grid_events, self.config.vtn)
            factory_objects = await asyncio.to_thread(self.cluster.factories)
        except Exception as exc:
            log.error("listing GridEvents and AIFactories failed: %s; the poll waits for the next round",
                      describe(exc))
            return
        uids = {o["metadata"]["name"]: o["metadata"].get("uid") for o in listed if isinstance(o.get("metadata"), dict)}
        existing = [e for e in (existing_of(o) for o in listed) if e is not None]
        allocated = {o["metadata"]["name"]: mw for o in factory_objects
                     if (mw := _allocated(o)) is not None and o.get("metadata", {}).get("name")}
        targets = factory_targets(self.settings.factory_map,
                                  [o["metadata"]["name"] for o in factory_objects if o.get("metadata", {}).get("name")])
        try:
            programs = await self.client.programs()
            events = await self.client.events()
            for event_id in missing_event_ids(existing, events, now):
                with contextlib.suppress(VtnNotFound):  # a 404: gone, its GridEvents are cancelled below
                    events.append(await self.client.event(event_id))
        except OpenAdrError as exc:
            await self._failed(now, exc, existing, uids)
            return
        await self._succeeded(now, existing, uids)

        mirror = map_events(programs, events, targets, self.config, now,
                            known={e.name: e.known for e in existing}, allocated_mw=allocated)
        await self._say_skipped(mirror.skipped, existing, uids)
        self.metrics.events.set(len(mirror.event_ids))
        self.metrics.skipped_events.set(len({s.event_id for s in mirror.skipped}))
        plan = plan_sync(mirror, existing, now)
        by_name = {e.name: e for e in existing}
        said: list[_Said] = []
        for mapped in plan.apply:
            if await self._write("applied", self.cluster.apply, mapped.manifest):
                said.append(self._applied_event(mapped, by_name.get(mapped.name), uids))
        for gone in plan.cancel:
            if await self._write("cancelled", self.cluster.apply, cancelled_manifest(gone)):
                log.info("GridEvent %s cancelled: event %s is no longer at VTN %s for factory %s",
                         gone.name, gone.event_id, self.config.vtn, gone.factory)
                said.append((gone.name, uids.get(gone.name), "Normal", "OpenAdrEventCancelled",
                             f"event {gone.event_id} is no longer at VTN {self.config.vtn} for factory {gone.factory}: "
                             "cancelled"))
        if said:
            await asyncio.to_thread(self.cluster.record, said)
        if self.settings.reports == "true":
            await self._report(now, existing, allocated, targets, uids)
        written = [e for e in (existing_of(m.manifest) for m in plan.apply) if e is not None]
        self._next_end = next_interval_end([*existing, *written], self._clock())
        self.polls += 1
        self.metrics.last_poll_success.set(time.time())

    def _applied_event(self, mapped: Mapped, before: Existing | None, uids: Mapping[str, str | None]) -> _Said:
        source = mapped.manifest["spec"]["source"]["openadr"]
        modified = source.get("modificationDateTime") or "?"
        if before is None:
            log.info("GridEvent %s written for event %s (program %s) of VTN %s, factory %s",
                     mapped.name, mapped.event_id, source.get("programName") or source.get("programId"),
                     self.config.vtn, mapped.factory)
            return (mapped.name, None, "Normal", "OpenAdrEventReceived",
                    f"event {mapped.event_id} of VTN {self.config.vtn} (modified {modified}) mirrored for factory "
                    f"{mapped.factory}")
        log.info("GridEvent %s updated: event %s of VTN %s changed (modified %s)",
                 mapped.name, mapped.event_id, self.config.vtn, modified)
        return (mapped.name, uids.get(mapped.name), "Normal", "OpenAdrEventModified",
                f"event {mapped.event_id} of VTN {self.config.vtn} changed (modified {modified}): applied again")

    async def _write(self, what: str, call: Callable[[dict[str, Any]], None], body: dict[str, Any]) -> bool:
        try:
            await asyncio.to_thread(call, body)
        except NotLeading:
            raise
        except Exception as exc:
            self.metrics.writes.labels(what, "error").inc()
            log.error("writing GridEvent %s (%s) failed: %s", body["metadata"]["name"], what, describe(exc))
            return False
        self.metrics.writes.labels(what, "ok").inc()
        return True

    # ------------------------------------------------------------------ reachability

    async def _failed(self, now: dt.datetime, exc: OpenAdrError, existing: Sequence[Existing],
                      uids: Mapping[str, str | None]) -> None:
        self.failed_polls += 1
        self.metrics.poll_errors.inc()
        if self._failing_since is None:
            self._failing_since = now
        error = str(exc)
        level = logging.WARNING if error != self._last_error else logging.DEBUG
        log.log(level, "cannot read VTN %s: %s (%s: failing since %s)", self.config.vtn, error,
                type(exc).__name__, format_time(self._failing_since))
        self._last_error = error
        contact = self._contact or now
        if now - contact < self.settings.stale_after:
            return
        since = format_time(self._failing_since)
        targets = stale_targets(existing, now)
        if not self._stale:
            log.warning("VTN %s unreadable for %.0fs (> %.0fs): marking its %d GridEvent(s) in force stale; their "
                        "curtailment is kept as last read", self.config.vtn, (now - contact).total_seconds(),
                        self.settings.stale_after.total_seconds(), len(targets))
            self._stale = True
            self.metrics.stale.set(1)
        said: list[_Said] = []
        for event in targets:
            if await self._mark(event.name, since):
                said.append((event.name, uids.get(event.name), "Warning", "VtnUnreachable",
                             f"meshplane-ven cannot read VTN {self.config.vtn} since {since}: the event is kept "
                             "as last read"))
        if said:
            await asyncio.to_thread(self.cluster.record, said)

    async def _succeeded(self, now: dt.datetime, existing: Sequence[Existing], uids: Mapping[str, str | None]) -> None:
        if self._failing_since is not None:
            log.info("VTN %s answers again (unreadable since %s)", self.config.vtn, format_time(self._failing_since))
        self._contact, self._failing_since, self._last_error = now, None, None
        said: list[_Said] = []
        for event in existing:
            if event.stale and await self._mark(event.name, None):
                said.append((event.name, uids.get(event.name), "Normal", "VtnReachable",
                             f"meshplane-ven reads VTN {self.config.vtn} again"))
        if said:
            await asyncio.to_thread(self.cluster.record, said)
        if self._stale:
            self._stale = False
        self.metrics.stale.set(0)

    async def _mark(self, name: str, since: str | None) -> bool:
        what = "stale" if since else "fresh"
        try:
            await asyncio.to_thread(self.cluster.mark_stale, name, since)
        except NotLeading:
            raise
        except Exception as exc:
            self.metrics.writes.labels(what, "error").inc()
            log.error("marking GridEvent %s %s failed: %s", name, what, describe(exc))
            return False
        self.metrics.writes.labels(what, "ok").inc()
        return True

    async def _say_skipped(self, skipped: Sequence[Any], existing: Sequence[Existing],
                           uids: Mapping[str, str | None]) -> None:
        now_said = {s.event_id: s.reason for s in skipped}
        said: list[_Said] = []
        for event_id, reason in now_said.items():
            if self._skipped_said.get(event_id) == reason:
                continue
            log.warning("event %s of VTN %s skipped (its GridEvents are kept as they are): %s",
                        event_id, self.config.vtn, reason)
            said += [(e.name, uids.get(e.name), "Warning", "OpenAdrEventSkipped",
                      f"event {event_id} of VTN {self.config.vtn} cannot be read ({reason}): kept as last read")
                     for e in existing if e.event_id == event_id]
        self._skipped_said = now_said
        if said:
            await asyncio.to_thread(self.cluster.record, said)

    # ------------------------------------------------------------------ reports

    async def _report(self, now: dt.datetime, existing: Sequence[Existing], allocated: Mapping[str, float],
                      targets: Mapping[str, str], uids: Mapping[str, str | None]) -> None:
        said: list[_Said] = []
        for due in due_reports(existing, now, self.settings.stale_after):
            demand = allocated.get(due.factory)
            if demand is None:
                log.warning("no report for GridEvent %s: AIFactory %s has no status.power.allocatedMW",
                            due.name, due.factory)
                continue
            body = report_body(due, client_name=self.settings.client_name,
                               resource_name=targets.get(due.factory, due.factory), demand_mw=demand,
                               baseline_mw=due.baseline_mw)
            try:
                stored = await self.client.post_report(body)
            except OpenAdrError as exc:
                self.metrics.reports.labels("error").inc()
                log.error("reporting interval %d of GridEvent %s to VTN %s failed: %s (tried again next poll)",
                          due.index, due.name, self.config.vtn, exc)
                continue
            self.metrics.reports.labels("ok").inc()
            log.info("reported interval %d of GridEvent %s: DEMAND %.3f MW, BASELINE %s (report %s)", due.index,
                     due.name, demand, "-" if due.baseline_mw is None else f"{due.baseline_mw:.3f} MW",
                     stored.get("id", "?"))
            status = last_report_status(due, now, demand, due.baseline_mw)
            if await self._write("reported", self.cluster.apply_status, status):
                limit = "" if due.limit_mw is None else f" (limit {due.limit_mw:g} MW)"
                said.append((due.name, uids.get(due.name), "Normal", "DemandReported",
                             f"reported {demand:g} MW{limit} for the interval ending {format_time(due.end)} "
                             f"to VTN {self.config.vtn}"))
        if said:
            await asyncio.to_thread(self.cluster.record, said)


__all__ = ["Ven"]
