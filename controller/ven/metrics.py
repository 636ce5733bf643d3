"""Prometheus metrics of ``meshplane-ven``, served at ``/metrics`` beside its health probes.

A registry of its own (not the process-global one), as the operator's
(:mod:`controller.operator.metrics`), so two VENs in one test process share nothing.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class VenMetrics:
    """Every metric the VEN exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.last_poll_success = Gauge(
            "meshplane_openadr_last_poll_success_timestamp_seconds",
            "Unix time of the last poll that read every program and event of the VTN.", registry=r)
        self.poll_errors = Counter(
            "meshplane_openadr_poll_errors", "Polls that could not read the VTN (unreachable, refused, bad answer).",
            registry=r)
        self.events = Gauge(
            "meshplane_openadr_events", "OpenADR events mirrored by GridEvents at the last successful poll.",
            registry=r)
        self.skipped_events = Gauge(
            "meshplane_openadr_skipped_events", "Events left as they were at the last successful poll: bad data.",
            registry=r)
        self.reports = Counter(
            "meshplane_openadr_reports", "Reports posted to the VTN, by result (ok or error).", ["result"], registry=r)
        self.writes = Counter(
            "meshplane_openadr_gridevent_writes", "GridEvent writes, by what (applied, cancelled, stale, fresh) and "
            "result (ok or error).", ["what", "result"], registry=r)
        self.stale = Gauge("meshplane_openadr_stale", "1 while the VTN has not answered for longer than the "
                           "staleness threshold, else 0.", registry=r)
        self.leader = Gauge("meshplane_openadr_leader", "1 while this replica holds the VEN's Lease, else 0.",
                            registry=r)
        for result in ("ok", "error"):
            self.reports.labels(result)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


__all__ = ["VenMetrics"]
