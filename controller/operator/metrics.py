"""Prometheus metrics of the operator, served at ``/metrics`` beside the health probes.

:class:`OperatorMetrics` owns its own :class:`~prometheus_client.CollectorRegistry`
(not the process-global one), so two operators in one test process never share a
counter. The solve loop's :class:`~controller.operator.sinks.MetricsSink` calls
:meth:`OperatorMetrics.observe_solve` after each solve, times apply-to-placed (from the
watch event of a new spec to its first Placed status) and placed-to-available (from
the first Placed status written to the first Available one) and reports each member
cluster's reachability; the delivery layer counts its requests through
:meth:`OperatorMetrics.observe_delivery`;
:func:`controller.operator.main.run` wraps the status writer with
:meth:`OperatorMetrics.observe_writes` and feeds the Lease state through
:meth:`OperatorMetrics.set_leader`; the HTTP handler renders :meth:`exposition`.

Names follow the Prometheus conventions: base units in the name (``_seconds``,
``_watts``), ``_total`` on counters, and a gauge per state rather than one per object
where the label set would grow without bound (workloads are counted by phase and
reason, never labelled by name). Sites are labelled by name: a mesh has at most a few
thousand, and power per site is what a platform team graphs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter

from controller.core.grid import factory_grid, span

if TYPE_CHECKING:
    from controller.api.models.status import Condition
    from controller.core.delivery import Observed
    from controller.core.reconcile import Outcome, Snapshot
    from controller.operator.delivery.applier import ApplyStats
    from controller.operator.sinks import SolveReport
    from controller.operator.writer import WriteStats

MW_TO_WATTS = 1e6
# from a 10 ms warm re-solve to the 300 s wall-clock safety net
SOLVE_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# from a debounced solve (0.2 s quiet) to a slow cold solve of a large mesh
APPLY_BUCKETS_S = (0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300)


class OperatorMetrics:
    """Every metric the operator exports, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.solve_duration = Histogram(
            "meshplane_solve_duration_seconds", "Wall time of one solve and its writes.",
            ["mode"], buckets=SOLVE_BUCKETS_S, registry=r,
        )
        self.solves = PromCounter("meshplane_solves_total", "Solves run, by mode (cold or warm).", ["mode"], registry=r)
        self.objective = Gauge("meshplane_solve_objective", "Objective of the last plan (solver units, maximised).",
                               registry=r)
        self.bound = Gauge("meshplane_solve_bound", "Proven upper bound on the objective of the last solve.", registry=r)
        self.gap = Gauge("meshplane_solve_gap_ratio", "Proven optimality gap of the last plan, (bound - objective) / bound.",
                         registry=r)
        self.workloads = Gauge("meshplane_workloads", "Workloads by phase and reason after the last solve.",
                               ["phase", "reason"], registry=r)
        self.power_allocated = Gauge("meshplane_site_power_allocated_watts", "Facility power allocated at a site.",
                                     ["site", "kind", "power"], registry=r)
        self.power_free = Gauge("meshplane_site_power_free_watts", "Facility power still free at a site.",
                                ["site", "kind", "power"], registry=r)
        self.fleet_devices_online = Gauge("meshplane_fleet_devices_online", "Devices of an edge fleet online now.",
                                          ["fleet"], registry=r)
        self.status_writes = PromCounter("meshplane_status_writes_total", "Status patches sent, by result.",
                                         ["result"], registry=r)
        self.events_written = PromCounter("meshplane_events_written_total", "Kubernetes Events created or updated.",
                                          registry=r)
        self.api_errors = PromCounter("meshplane_api_errors_total", "Failed writes to the API server (not 404).",
                                      registry=r)
        self.leader = Gauge("meshplane_leader", "1 while this replica holds the Lease, else 0.", registry=r)
        self.apply_to_placed = Histogram(
            "meshplane_apply_to_placed_seconds",
            "From the watch event of a workload's new spec to its first Placed status for it.",
            buckets=APPLY_BUCKETS_S, registry=r,
        )
        self.placed_to_available = Histogram(
            "meshplane_placed_to_available_seconds",
            "From a workload's first Placed status to every replica of it Available in its clusters.",
            buckets=APPLY_BUCKETS_S, registry=r,
        )
        self.cluster_reachable = Gauge(
            "meshplane_cluster_reachable", "1 while a member cluster answers, 0 while it does not (or is lost).",
            ["cluster"], registry=r,
        )
        self.cluster_lost = Gauge("meshplane_cluster_lost", "1 while a member cluster is lost (its sites have no "
                                  "capacity), else 0.", ["cluster"], registry=r)
        self.delivery_requests = PromCounter(
            "meshplane_delivery_requests_total",
            "Requests of the delivery layer to a cluster, by result (applied, deleted, listed, error, fenced).",
            ["cluster", "result"], registry=r,
        )
        self.grid_curtailment = Gauge(
            "meshplane_grid_curtailment_watts",
            "Flexible power a factory loses to curtailment: in force now, and planned (grid events within their "
            "lead time).", ["factory", "state"], registry=r,
        )
        self.grid_usable = Gauge("meshplane_grid_usable_watts", "Power a factory may draw now: firm + flexible - "
                                 "curtailment in force.", ["factory"], registry=r)
        self.grid_limit = Gauge("meshplane_grid_import_limit_watts", "The lowest import limit of a grid event in force "
                                "at a factory (absent while none is).", ["factory"], registry=r)
        self.grid_compliant = Gauge(
            "meshplane_grid_compliant", "1 while the power allocated at a factory is within the power in force (and "
            "any import limit in force), else 0 (e.g. a limit below firm power).", ["factory"], registry=r,
        )
        self.grid_next_event = Gauge(
            "meshplane_grid_next_event_seconds", "Seconds until the next grid event of a factory starts (absent "
            "when none is scheduled).", ["factory"], registry=r,
        )
        self.grid_moves = Gauge("meshplane_grid_moved_workloads", "Workloads moved or preempted for a grid event.",
                                ["gridevent", "factory"], registry=r)
        self._grid_labels: dict[str, set[tuple[str, ...]]] = {}
        self._cluster_labels: set[str] = set()
        self._workload_labels: set[tuple[str, str]] = set()
        self._site_labels: set[tuple[str, str, str]] = set()
        self._fleet_labels: set[str] = set()

    # ----------------------------------------------------------------- feeding

    def set_leader(self, leader: bool) -> None:
        self.leader.set(1 if leader else 0)

    def observe_writes(self, stats: WriteStats) -> None:
        self.status_writes.labels(result="ok").inc(stats.status_patches)
        self.status_writes.labels(result="not_found").inc(stats.not_found)
        self.status_writes.labels(result="conflict").inc(stats.conflicts)
        self.events_written.inc(stats.events_created + stats.events_updated)
        self.api_errors.inc(stats.errors)

    def observe_solve(self, report: SolveReport, outcome: Outcome) -> None:
        mode = "warm" if report.warm else "cold"
        self.solve_duration.labels(mode=mode).observe(report.solve_ms / 1e3)
        self.solves.labels(mode=mode).inc()
        stats = outcome.plan.stats
        self.objective.set(stats.placed_priority_demand)
        self.bound.set(stats.bound)
        self.gap.set(stats.gap)

        by_state = Counter(
            (str(status.phase), _placed_reason(status.conditions)) for status in outcome.workloads.values()
        )
        # a state that no workload is in any more reads 0, not its last value
        for state in self._workload_labels - set(by_state):
            self.workloads.labels(*state).set(0)
        for state, count in by_state.items():
            self.workloads.labels(*state).set(count)
        self._workload_labels |= set(by_state)

        site_labels: set[tuple[str, str, str]] = set()
        for usage in outcome.plan.sites.values():
            for power, used_mw, free_mw in (
                ("firm", usage.firm_mw_used, usage.firm_mw_available),
                ("flexible", usage.flexible_mw_used, usage.flexible_mw_available),
            ):
                labels = (usage.name, usage.kind, power)
                site_labels.add(labels)
                self.power_allocated.labels(*labels).set(used_mw * MW_TO_WATTS)
                self.power_free.labels(*labels).set(free_mw * MW_TO_WATTS)
        for labels in self._site_labels - site_labels:  # a deleted site leaves no series behind
            self.power_allocated.remove(*labels)
            self.power_free.remove(*labels)
        self._site_labels = site_labels

        fleets = {name: status.online_devices or 0 for name, status in outcome.fleets.items()}
        for name in self._fleet_labels - set(fleets):
            self.fleet_devices_online.remove(name)
        for name, online in fleets.items():
            self.fleet_devices_online.labels(fleet=name).set(online)
        self._fleet_labels = set(fleets)

    def observe_grid(self, snapshot: Snapshot, outcome: Outcome) -> None:
        """The grid gauges after a solve: curtailment, usable power, limits, compliance,
        the next event per factory, and the moves of every event."""
        series: dict[str, dict[tuple[str, ...], float]] = {
            "curtailment": {}, "usable": {}, "limit": {}, "compliant": {}, "next": {}, "moves": {}}
        for factory in snapshot.factories:
            name = factory.metadata.name
            grid = factory_grid(factory, snapshot.grid_events, snapshot.at)
            power = factory.spec.power
            usable_mw = grid.usable_in_force_mw(power)
            series["curtailment"][(name, "in_force")] = grid.in_force_mw * MW_TO_WATTS
            series["curtailment"][(name, "planned")] = grid.planned_mw * MW_TO_WATTS
            series["usable"][(name,)] = usable_mw * MW_TO_WATTS
            usage = outcome.plan.sites.get(name)
            allocated_mw = usage.power_mw_used if usage is not None else 0.0
            ceiling = usable_mw if grid.limit_mw is None else min(usable_mw, grid.limit_mw)
            series["compliant"][(name,)] = 1.0 if allocated_mw <= ceiling + 1e-6 else 0.0
            if grid.limit_mw is not None:
                series["limit"][(name,)] = grid.limit_mw * MW_TO_WATTS
            starts = [span(e)[0] for e in snapshot.grid_events
                      if e.spec.factory == name and not e.spec.cancelled and span(e)[0] > snapshot.at]
            if starts:
                series["next"][(name,)] = (min(starts) - snapshot.at).total_seconds()
        for event in snapshot.grid_events:
            status = outcome.grid_events.get(event.metadata.name)
            series["moves"][(event.metadata.name, event.spec.factory)] = float(status.moved_count if status else 0)
        gauges = {"curtailment": self.grid_curtailment, "usable": self.grid_usable, "limit": self.grid_limit,
                  "compliant": self.grid_compliant, "next": self.grid_next_event, "moves": self.grid_moves}
        for key, gauge in gauges.items():
            values = series[key]
            for labels in self._grid_labels.get(key, set()) - set(values):
                gauge.remove(*labels)  # a deleted factory or event leaves no series behind
            for labels, value in values.items():
                gauge.labels(*labels).set(value)
            self._grid_labels[key] = set(values)

    def observe_delivery(self, cluster: str, stats: ApplyStats) -> None:
        for result, count in (("applied", stats.applied), ("deleted", stats.deleted), ("listed", stats.listed),
                              ("error", stats.errors), ("fenced", stats.fenced)):
            if count:
                self.delivery_requests.labels(cluster=cluster, result=result).inc(count)

    def observe_clusters(self, observed: Observed) -> None:
        names = set(observed.clusters)
        for name in self._cluster_labels - names:
            self.cluster_reachable.remove(name)
            self.cluster_lost.remove(name)
        for name, health in observed.clusters.items():
            self.cluster_reachable.labels(cluster=name).set(1 if health.state == "Reachable" else 0)
            self.cluster_lost.labels(cluster=name).set(1 if health.state == "Lost" else 0)
        self._cluster_labels = names

    # ----------------------------------------------------------------- serving

    def exposition(self) -> bytes:
        """The text exposition format of every metric (``GET /metrics``)."""
        return generate_latest(self.registry)


def _placed_reason(conditions: Sequence[Condition]) -> str:
    return next((c.reason for c in conditions if c.type == "Placed"), "")
