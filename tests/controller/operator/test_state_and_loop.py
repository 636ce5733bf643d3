"""The operator's state and solve loop without a cluster: which watch events call for a
solve, what a re-list drops, and a debounced burst costing one solve. The writer is a
recording function here (the seam to the API server; tests/e2e/test_operator.py runs
the whole operator against the real one)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest

from controller.core.changes import Change, ObjectRef
from controller.core.parse import Manifests
from controller.operator.loop import BURST_CHANGES, SolveLoop
from controller.operator.settings import Settings
from controller.operator.sinks import Publisher, StatusSink
from controller.operator.state import MeshState
from controller.operator.writer import WriteStats

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

    def write(pending: list[Change]) -> WriteStats:
        written.append(pending)
        return WriteStats(written={c.ref for c in pending if c.patch is not None})

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

    def write(pending: list[Change]) -> WriteStats:
        written.append(pending)
        return WriteStats(written={c.ref for c in pending if c.patch is not None})

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


def _versioned(body: dict[str, Any], version: str, **status: Any) -> dict[str, Any]:
    out = {**body, "metadata": {**body["metadata"], "resourceVersion": version}}
    if status:
        out["status"] = status
    return out


def test_a_stale_status_patch_calls_for_a_solve_once_the_state_holds_the_object_as_it_is(examples: Manifests) -> None:
    """A status patch refused with 409 was computed from an older object: when the state
    still holds that version, the object's next watch event calls for a solve even if it
    changed only the status (someone else's write); when it already holds a newer one,
    a solve is called for at once."""
    state = MeshState()
    bodies = _bodies(examples)
    workload = next(b for b in bodies if b["kind"] == "MeshWorkload")
    ref = ObjectRef("MeshWorkload", workload["metadata"]["name"], workload["metadata"]["namespace"])
    assert state.observe(None, _versioned(workload, "5"))
    _, versions = state.snapshot_and_versions(NIGHT)
    assert versions[ref] == "5"
    assert not state.conflicted({ref}, {ref: "5"})  # the newer version has not arrived yet
    assert state.observe("MODIFIED", _versioned(workload, "6", phase="Placed"))  # status only, yet a solve
    assert not state.observe("MODIFIED", _versioned(workload, "7", phase="Placed"))  # once
    assert state.conflicted({ref}, {ref: "6"})  # the state holds 7 already: solve now
    gone = ObjectRef("MeshWorkload", "deleted-meanwhile", "default")
    assert not state.conflicted({gone}, {gone: "1"})


def test_a_written_status_takes_the_servers_new_version_unless_the_watch_knows_better(examples: Manifests) -> None:
    state = MeshState()
    bodies = _bodies(examples)
    for index, body in enumerate(bodies):
        state.observe(None, _versioned(body, str(100 + index)))
    written: list[list[Change]] = []

    def write(pending: list[Change]) -> WriteStats:
        written.append(pending)
        refs = {c.ref for c in pending if c.patch is not None}
        # the server stores each patch as version "v2"; one of them the watch delivers
        # (with a newer spec) before the sink records what it wrote
        stats = WriteStats(status_patches=len(refs), written=refs, versions=dict.fromkeys(refs, "v2"))
        state.observe("MODIFIED", {**_versioned(workload, "v3"),
                                   "metadata": {**_versioned(workload, "v3")["metadata"], "generation": 2}})
        return stats

    workload = next(b for b in bodies if b["kind"] == "MeshWorkload")
    ref = ObjectRef("MeshWorkload", workload["metadata"]["name"], workload["metadata"]["namespace"])
    loop = SolveLoop(state, Settings(identity="test"), [StatusSink(write, state), Publisher()], now=lambda: NIGHT)
    loop.solve_once()
    sent = {c.ref: c.version for c in written[0]}
    assert all(version and version.isdigit() for version in sent.values())  # each patch carries its precondition
    _, versions = state.snapshot_and_versions(NIGHT)
    assert versions[ref] == "v3"  # the watch's newer object is kept
    assert {r for r in sent if r != ref} and all(versions[r] == "v2" for r in sent if r != ref)


def test_a_conflict_the_watch_already_passed_asks_the_loop_for_a_solve(examples: Manifests) -> None:
    state = MeshState()
    bodies = _bodies(examples)
    for index, body in enumerate(bodies):
        state.observe(None, _versioned(body, str(index + 1)))
    workload = next(b for b in bodies if b["kind"] == "MeshWorkload")
    ref = ObjectRef("MeshWorkload", workload["metadata"]["name"], workload["metadata"]["namespace"])

    def write(pending: list[Change]) -> WriteStats:
        # someone else wrote its status meanwhile (the watch delivered it: no solve called for)
        assert not state.observe("MODIFIED", _versioned(workload, "999", phase="Pending"))
        refs = {c.ref for c in pending if c.patch is not None}
        return WriteStats(written=refs - {ref}, conflicted={ref}, conflicts=1)

    asked: list[int] = []
    loop = SolveLoop(state, Settings(identity="test"),
                     [StatusSink(write, state, on_conflict=lambda: asked.append(1)), Publisher()], now=lambda: NIGHT)
    loop.solve_once()
    assert asked == [1]


def test_a_steady_stream_is_solved_in_batches_as_long_as_a_solve_and_a_burst_once_whole() -> None:
    """Changes one quiet period apart never let the quiet period elapse: the solve is due
    one batching window (the last solve's duration, at least the quiet period) after the
    first change, not ``debounce_max_s``; a burst waits for its quiet period (at most
    ``debounce_max_s``)."""
    clock = [0.0]
    settings = Settings(identity="test", debounce_quiet_s=0.2, debounce_max_s=2.0)
    loop = SolveLoop(MeshState(), settings, [], now=lambda: NIGHT, monotonic=lambda: clock[0])
    loop._last_solve_s = 0.05
    for t in (0.0, 0.19):
        clock[0] = t
        loop.mark_dirty()
    assert loop._due(loop._dirty, 0.19) == pytest.approx(0.01)  # not 0.39 (the quiet period) nor 2.0
    loop._last_solve_s = 0.7  # slower solves: larger batches
    assert loop._due(loop._dirty, 0.19) == pytest.approx(0.2)  # the quiet period ends first
    for t in (0.38, 0.57):
        clock[0] = t
        loop.mark_dirty()
    assert loop._due(loop._dirty, 0.57) == pytest.approx(0.13)  # 0.7 s after the first change
    loop._dirty.clear()
    loop._last_solve_s = 0.05
    for i in range(BURST_CHANGES + 1):  # a runner creating workloads as fast as it can
        clock[0] = i * 0.01
        loop.mark_dirty()
    now = clock[0]
    assert loop._due(loop._dirty, now) == pytest.approx(0.2)  # its quiet period
    for i in range(6, 20):  # and it goes on
        clock[0] = i * 0.1
        loop.mark_dirty()
    assert loop._due(loop._dirty, 1.95) == pytest.approx(0.05)  # at most debounce_max_s after its start
