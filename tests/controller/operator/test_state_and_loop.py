"""The operator's state and solve loop without a cluster: which watch events call for a
solve, what a re-list drops, and a debounced burst costing one solve. The writer is a
recording function here (the seam to the API server; tests/e2e/test_operator.py runs
the whole operator against the real one)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

from controller.core.changes import Change, ObjectRef
from controller.core.parse import Manifests
from controller.operator.loop import SolveLoop
from controller.operator.settings import Settings
from controller.operator.sinks import Publisher, StatusSink
from controller.operator.state import MeshState

NIGHT = dt.datetime(2026, 11, 22, 7, 30, tzinfo=dt.UTC)  # 23:30 in California


def _bodies(examples: Manifests) -> list[dict[str, Any]]:
    bodies = []
    for index, resource in enumerate([*examples.factories, *examples.fleets, *examples.workloads]):
        body = resource.model_dump(by_alias=True, mode="json", exclude_none=True)
        body["metadata"].update({"generation": 1, "uid": f"uid-{index}", "managedFields": [{"manager": "kubectl"}]})
        bodies.append(body)
    return bodies


def test_only_spec_changes_and_deletions_call_for_a_solve(examples: Manifests) -> None:
    state = MeshState()
    bodies = _bodies(examples)
    assert all(state.observe(None, body) for body in bodies)
    workload = next(b for b in bodies if b["kind"] == "MeshWorkload")
    with_status = {**workload, "status": {"phase": "Placed"}}
    assert not state.observe("MODIFIED", with_status)  # our own status write coming back
    bumped = {**workload, "metadata": {**workload["metadata"], "generation": 2}}
    assert state.observe("MODIFIED", bumped)
    assert state.observe("DELETED", bumped)
    assert not state.observe("DELETED", bumped)
    assert state.counts() == {"AIFactory": 5, "EdgeFleet": 3, "MeshWorkload": 7, "MemberCluster": 0, "GridEvent": 0}


def test_the_index_keeps_no_managed_fields(examples: Manifests) -> None:
    state = MeshState()
    for body in _bodies(examples):
        state.observe(None, body)
    snapshot = state.snapshot(NIGHT)
    assert all("managedFields" not in (w.metadata.model_extra or {}) for w in snapshot.workloads)
    assert [w.key for w in snapshot.workloads] == sorted(w.key for w in snapshot.workloads)


def test_a_relist_drops_what_the_watch_missed(examples: Manifests) -> None:
    state = MeshState()
    bodies = _bodies(examples)
    for body in bodies:
        state.observe(None, body)
    workloads = [b for b in bodies if b["kind"] == "MeshWorkload"]
    assert state.replace_all("MeshWorkload", workloads[1:])
    assert state.counts()["MeshWorkload"] == len(workloads) - 1
    assert not state.replace_all("MeshWorkload", workloads[1:])


def test_an_object_the_core_refuses_is_recorded_not_fatal(examples: Manifests) -> None:
    state = MeshState()
    body = _bodies(examples)[0]
    broken = {**body, "spec": {**body["spec"], "pue": 0.5}}  # the schema would refuse it; an old CRD might not
    state.observe(None, broken)
    [(ref, refused)] = state.refused.items()
    assert ref == ObjectRef("AIFactory", body["metadata"]["name"])
    assert any("pue" in p.field for p in refused.problems)


def test_a_refused_object_gets_a_status_and_one_event(examples: Manifests) -> None:
    """Its status says which field is wrong; the warning is emitted once, and once
    written, the same status is not written again."""
    state = MeshState()
    bodies = _bodies(examples)
    for body in bodies:
        state.observe(None, body)
    workload = next(b for b in bodies if b["kind"] == "MeshWorkload")
    broken = {**workload, "spec": {**workload["spec"], "type": "quantum"},
              "metadata": {**workload["metadata"], "generation": 2}}
    assert state.observe("MODIFIED", broken)
    written: list[list[Change]] = []

    def write(pending: list[Change]) -> set[ObjectRef]:
        written.append(pending)
        return {c.ref for c in pending if c.patch is not None}

    loop = SolveLoop(state, Settings(identity="test"), [StatusSink(write, state), Publisher()], now=lambda: NIGHT)
    loop.solve_once()
    ref = ObjectRef("MeshWorkload", workload["metadata"]["name"], workload["metadata"]["namespace"])
    [change] = [c for c in written[0] if c.ref == ref]
    assert change.patch is not None
    status = change.patch["status"]
    assert status["phase"] == "Unschedulable" and status["observedGeneration"] == 2
    assert status["conditions"][0]["reason"] == "InvalidSpec" and "spec.type" in status["message"]
    assert [(e.type, e.reason) for e in change.events] == [("Warning", "InvalidSpec")]
    loop.solve_once()
    assert [c for c in written[1] if c.ref == ref] == []


def test_a_burst_of_changes_costs_one_solve(examples: Manifests) -> None:
    state = MeshState()
    for body in _bodies(examples):
        state.observe(None, body)
    written: list[list[Change]] = []

    def write(pending: list[Change]) -> set[ObjectRef]:
        written.append(pending)
        return {c.ref for c in pending if c.patch is not None}

    settings = Settings(identity="test", debounce_quiet_s=0.3, debounce_max_s=5.0)
    loop = SolveLoop(state, settings, [StatusSink(write, state), Publisher()], now=lambda: NIGHT)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), kwargs={"poll_s": 0.05})
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while loop.solves < 1 and time.monotonic() < deadline:  # the first (leader) solve
            time.sleep(0.05)
        assert loop.solves == 1
        for _ in range(50):
            loop.mark_dirty()
        while loop.solves < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # more than three quiet periods: no further solve may follow
    finally:
        stop.set()
        thread.join()
    assert loop.solves == 2
    first, second = written
    assert sum(c.patch is not None for c in first) == 16  # every object (5 + 3 + 8) gets its first status
    assert second == []  # nothing changed in between: nothing to write


def test_a_listing_older_than_the_watch_changes_nothing(examples: Manifests) -> None:
    """A re-list requested before a watch event is older than it: it neither rolls the
    object back to its previous generation nor resurrects an object deleted since."""
    state = MeshState()
    bodies = _bodies(examples)
    for body in bodies:
        state.observe(None, body)
    workloads = [b for b in bodies if b["kind"] == "MeshWorkload"]
    listed_at = time.monotonic()  # the listing is requested now, the watch moves on
    newer = {**workloads[0], "metadata": {**workloads[0]["metadata"], "generation": 2},
             "spec": {**workloads[0]["spec"], "priority": 7}}
    assert state.observe("MODIFIED", newer)
    assert state.observe("DELETED", workloads[1])
    state.replace_all("MeshWorkload", workloads, listed_at)  # holds generation 1 of both
    kept = {w.key: w for w in state.snapshot(NIGHT).workloads}
    first = f"{workloads[0]['metadata']['namespace']}/{workloads[0]['metadata']['name']}"
    second = f"{workloads[1]['metadata']['namespace']}/{workloads[1]['metadata']['name']}"
    assert kept[first].metadata.generation == 2 and kept[first].spec.priority == 7
    assert second not in kept
