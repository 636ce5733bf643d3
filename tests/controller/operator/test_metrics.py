"""The operator's /metrics: what a solve of the examples exports, read back through
prometheus-client's own text parser (so the exposition format is checked too)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from controller.core.changes import Change
from controller.core.parse import Manifests
from controller.operator.loop import SolveLoop
from controller.operator.metrics import OperatorMetrics
from controller.operator.settings import Settings
from controller.operator.sinks import MetricsSink, Publisher, StatusSink
from controller.operator.state import MeshState
from controller.operator.writer import WriteStats
from tests.controller.operator.test_state_and_loop import _bodies

NIGHT = dt.datetime(2026, 11, 22, 7, 30, tzinfo=dt.UTC)  # 23:30 in California: cars parked


def samples(metrics: OperatorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def value(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, tuple(sorted(labels.items()))))


def solved_loop(examples: Manifests) -> tuple[SolveLoop, MeshState, list[dict[str, Any]], OperatorMetrics]:
    state = MeshState()
    bodies = _bodies(examples)
    for body in bodies:
        state.observe(None, body)
    metrics = OperatorMetrics()

    def write(pending: list[Change]) -> WriteStats:
        return WriteStats(written={c.ref for c in pending if c.patch is not None})

    loop = SolveLoop(state, Settings(identity="test"), [StatusSink(write, state), MetricsSink(metrics, state), Publisher()],
                     now=lambda: NIGHT)
    loop.solve_once()
    return loop, state, bodies, metrics


def test_a_solve_exports_phases_power_and_solver_figures(examples: Manifests) -> None:
    loop, _, _, metrics = solved_loop(examples)
    assert loop.outcome is not None
    phases: dict[str, float] = {}
    for (name, labels), v in samples(metrics).items():
        if name == "meshplane_workloads":
            phase = dict(labels)["phase"]
            phases[phase] = phases.get(phase, 0) + v
    expected: dict[str, float] = {}
    for status in loop.outcome.workloads.values():
        expected[str(status.phase)] = expected.get(str(status.phase), 0) + 1
    assert phases == expected and sum(phases.values()) == len(examples.workloads)
    assert phases.get("Unschedulable", 0) >= 1  # japan-medical-llm has no site in Japan

    for usage in loop.outcome.plan.sites.values():
        allocated = value(metrics, "meshplane_site_power_allocated_watts", site=usage.name, kind=usage.kind, power="firm")
        free = value(metrics, "meshplane_site_power_free_watts", site=usage.name, kind=usage.kind, power="firm")
        assert allocated == pytest.approx(usage.firm_mw_used * 1e6)
        assert free == pytest.approx(usage.firm_mw_available * 1e6)
    assert value(metrics, "meshplane_solve_bound") == pytest.approx(loop.outcome.plan.stats.bound)
    assert value(metrics, "meshplane_solve_gap_ratio") == pytest.approx(loop.outcome.plan.stats.gap)
    assert value(metrics, "meshplane_solves_total", mode="cold") == 1
    assert value(metrics, "meshplane_solve_duration_seconds_count", mode="cold") == 1
    online = value(metrics, "meshplane_fleet_devices_online", fleet="vehicles-california")
    assert online is not None and online > 0


def test_a_deleted_site_leaves_no_series_and_an_emptied_state_reads_zero(examples: Manifests) -> None:
    loop, state, bodies, metrics = solved_loop(examples)
    fleet = next(b for b in bodies if b["kind"] == "EdgeFleet" and b["metadata"]["name"] == "vehicles-california")
    japan = next(b for b in bodies if b["kind"] == "MeshWorkload" and b["metadata"]["name"] == "japan-medical-llm")
    before = {labels for (name, labels), _ in samples(metrics).items() if name == "meshplane_workloads"}
    assert state.observe("DELETED", fleet) and state.observe("DELETED", japan)
    loop.solve_once()
    assert value(metrics, "meshplane_fleet_devices_online", fleet="vehicles-california") is None
    assert value(metrics, "meshplane_site_power_free_watts", site="vehicles-california", kind="EdgeFleet",
                 power="firm") is None
    after = samples(metrics)
    # every state seen before still has a series; the ones nobody is in now read 0
    assert all(("meshplane_workloads", labels) in after for labels in before)
    assert sum(v for (name, _), v in after.items() if name == "meshplane_workloads") == len(examples.workloads) - 1
    assert value(metrics, "meshplane_solves_total", mode="warm") == 1


def test_writes_and_leadership_are_counted() -> None:
    metrics = OperatorMetrics()
    metrics.observe_writes(WriteStats(status_patches=3, events_created=2, events_updated=1, not_found=1, errors=2))
    metrics.observe_writes(WriteStats(status_patches=1))
    assert value(metrics, "meshplane_status_writes_total", result="ok") == 4
    assert value(metrics, "meshplane_status_writes_total", result="not_found") == 1
    assert value(metrics, "meshplane_events_written_total") == 3
    assert value(metrics, "meshplane_api_errors_total") == 2
    metrics.set_leader(True)
    assert value(metrics, "meshplane_leader") == 1
    metrics.set_leader(False)
    assert value(metrics, "meshplane_leader") == 0


def test_apply_to_placed_is_timed_once_per_spec_from_its_watch_event(examples: Manifests) -> None:
    """A listed object has no start (the operator did not see it change); a MODIFIED
    event with a new generation starts the clock, the first Placed status written for
    that generation stops it, and a later solve does not count it again."""
    loop, state, bodies, metrics = solved_loop(examples)
    assert value(metrics, "meshplane_apply_to_placed_seconds_count") == 0  # everything came from the listing
    chat = next(b for b in bodies if b["metadata"]["name"] == "chat-us-west")
    edited = {**chat, "metadata": {**chat["metadata"], "generation": 2},
              "spec": {**chat["spec"], "tokensPerSecond": chat["spec"]["tokensPerSecond"] // 2}}
    assert state.observe("MODIFIED", edited)
    loop.solve_once()
    assert value(metrics, "meshplane_apply_to_placed_seconds_count") == 1
    total = value(metrics, "meshplane_apply_to_placed_seconds_sum")
    assert total is not None and 0 < total < 60
    loop.solve_once()  # nothing changed: no second observation
    assert value(metrics, "meshplane_apply_to_placed_seconds_count") == 1


def _grid_event(name: str, factory: str, start: dt.datetime, hours: float, **level: float) -> dict[str, Any]:
    return {"apiVersion": "meshplane.io/v1alpha1", "kind": "GridEvent", "metadata": {"name": name, "generation": 1},
            "spec": {"factory": factory, "leadTime": "PT15M",
                     "intervals": [{"start": start.isoformat(), "duration": f"PT{int(hours * 60)}M", **level}]}}


def test_grid_gauges_follow_the_events_in_force_and_ahead(examples: Manifests) -> None:
    loop, state, _, metrics = solved_loop(examples)
    memphis = next(f for f in examples.factories if f.metadata.name == "us-memphis-1")
    power = memphis.spec.power
    # one event in force now (a limit that takes 100 MW of flexible power), one in two hours
    now_limit_mw = power.firm_mw + power.flexible_mw - 100
    assert state.observe("ADDED", _grid_event("now", "us-memphis-1", NIGHT - dt.timedelta(minutes=30), 2,
                                              importLimitMW=now_limit_mw))
    assert state.observe("ADDED", _grid_event("later", "us-memphis-1", NIGHT + dt.timedelta(hours=2), 1,
                                              curtailedMW=power.flexible_mw))
    loop.solve_once()
    assert value(metrics, "meshplane_grid_curtailment_watts", factory="us-memphis-1", state="in_force") == \
        pytest.approx(100e6)
    assert value(metrics, "meshplane_grid_usable_watts", factory="us-memphis-1") == \
        pytest.approx((power.firm_mw + power.flexible_mw - 100) * 1e6)
    assert value(metrics, "meshplane_grid_import_limit_watts", factory="us-memphis-1") == pytest.approx(now_limit_mw * 1e6)
    assert value(metrics, "meshplane_grid_next_event_seconds", factory="us-memphis-1") == pytest.approx(7200)
    assert value(metrics, "meshplane_grid_compliant", factory="us-memphis-1") == 1
    assert value(metrics, "meshplane_grid_moved_workloads", gridevent="now", factory="us-memphis-1") == 0
    # a factory without events: nothing curtailed, no limit, no next event
    assert value(metrics, "meshplane_grid_curtailment_watts", factory="kr-sejong-1", state="planned") == 0
    assert value(metrics, "meshplane_grid_import_limit_watts", factory="kr-sejong-1") is None
    # the events deleted: their series go
    for name in ("now", "later"):
        assert state.observe("DELETED", _grid_event(name, "us-memphis-1", NIGHT, 1, curtailedMW=1))
    loop.solve_once()
    assert value(metrics, "meshplane_grid_import_limit_watts", factory="us-memphis-1") is None
    assert value(metrics, "meshplane_grid_next_event_seconds", factory="us-memphis-1") is None
    assert value(metrics, "meshplane_grid_moved_workloads", gridevent="now", factory="us-memphis-1") is None
