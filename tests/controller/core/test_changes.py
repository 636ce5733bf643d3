"""controller.core.changes: merge patches, transition events, and the two properties an
operator lives by: an unchanged mesh writes nothing, and one edit rewrites only the
statuses of the workloads whose placement it changed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from controller.api.models import MeshWorkloadStatus
from controller.core.changes import (
    ObjectRef,
    changes,
    merge_patch,
    status_patch,
    with_statuses,
    workload_events,
)
from controller.core.reconcile import Snapshot, reconcile
from tests.controller.core.conftest import CONFIG, edit_spec

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, section 2, written from the RFC's pseudo-code (independent of the code under test)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def _drop_nulls(value: Any) -> Any:
    """Merge patches cannot express a null value inside an object; statuses never hold one."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    return value


@given(json_objects, json_objects)
def test_a_merge_patch_turns_old_into_new(old: dict[str, Any], new: dict[str, Any]) -> None:
    old, new = _drop_nulls(old), _drop_nulls(new)
    patch = merge_patch(old, new)
    assert apply_merge_patch(old, patch) == new
    assert (patch == {}) == (old == new)


def test_a_merge_patch_carries_only_what_changed() -> None:
    old = {"phase": "Placed", "sites": "a", "powerMW": 1.5, "conditions": [{"type": "Placed"}]}
    new = {"phase": "Placed", "sites": "b", "conditions": [{"type": "Placed"}]}
    assert merge_patch(old, new) == {"sites": "b", "powerMW": None}


def test_an_equal_status_needs_no_patch() -> None:
    status = MeshWorkloadStatus(phase="Unschedulable", message="0/3 sites fit: 3 latency > 5 ms")
    assert status_patch(status, status.model_copy()) is None
    assert status_patch(None, status) == {"status": status.to_api()}


def _statuses(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    outcome = reconcile(snapshot, CONFIG)
    return {key: status.to_api() for key, status in outcome.workloads.items()}


def test_events_follow_a_workload_through_its_phases() -> None:
    ref = ObjectRef("MeshWorkload", "chat", "serving")
    pending = MeshWorkloadStatus(phase="Pending")
    placed_a = MeshWorkloadStatus.model_validate(
        {"phase": "Placed", "assignments": [{"site": "a", "kind": "AIFactory", "acceleratorModel": "h100", "devices": 4}]}
    )
    placed_b = MeshWorkloadStatus.model_validate(
        {"phase": "Placed", "assignments": [{"site": "b", "kind": "AIFactory", "acceleratorModel": "h100", "devices": 4}]}
    )
    preempted = MeshWorkloadStatus(phase="Preempted", message="preempted from a: a is cordoned")
    unschedulable = MeshWorkloadStatus(phase="Unschedulable", message="0/2 sites fit: 2 memory")

    def reasons(before: MeshWorkloadStatus | None, after: MeshWorkloadStatus) -> list[str]:
        return [e.reason for e in workload_events(ref, before, after)]

    assert reasons(None, placed_a) == ["Placed"]
    assert reasons(pending, placed_a) == ["Placed"]
    assert reasons(placed_a, placed_a.model_copy()) == []
    assert reasons(placed_a, placed_b) == ["Moved"]
    assert reasons(placed_a, preempted) == ["Preempted"]
    assert reasons(preempted, preempted.model_copy()) == []
    assert reasons(preempted, placed_b) == ["Rescheduled"]
    assert reasons(pending, unschedulable) == ["Unschedulable"]
    assert reasons(unschedulable, unschedulable.model_copy(update={"message": "other"})) == []
    [moved] = workload_events(ref, placed_a, placed_b)
    assert moved.message == "moved from a (4 x h100) to b (4 x h100)" and moved.type == "Normal"


def test_the_first_solve_writes_every_status_and_the_second_nothing(night: Snapshot) -> None:
    outcome = reconcile(night, CONFIG)
    first = list(changes(night, outcome))
    assert len(first) == len(night.workloads) + len(night.factories) + len(night.fleets)
    assert all(c.patch is not None for c in first)
    written = with_statuses(night, outcome)
    again = list(changes(written, reconcile(written, CONFIG, previous=outcome.plan)))
    assert again == []


# A small vocabulary of what users and the grid do to the example mesh.
_AT_HOURS = st.integers(min_value=0, max_value=23)


@st.composite
def edited_meshes(draw: st.DrawFn, night: Snapshot) -> Snapshot:
    factories = list(night.factories)
    for i, factory in enumerate(factories):
        power = factory.spec.power
        curtailed = draw(st.sampled_from([0.0, power.flexible_mw / 2, power.flexible_mw]))
        cordoned = draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else False
        factories[i] = edit_spec(
            factory, power=power.model_copy(update={"curtailed_mw": curtailed}), cordoned=cordoned
        ) if curtailed or cordoned else factory
    workloads = [
        edit_spec(w, priority=draw(st.sampled_from([w.spec.priority, 10, 2000]))) for w in night.workloads
        if draw(st.integers(0, 5)) > 0
    ]
    at = night.at.replace(hour=draw(_AT_HOURS))
    return Snapshot(factories, list(night.fleets), workloads, at)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_reconcile_write_back_reconcile_makes_zero_patches_and_zero_events(night: Snapshot, data: st.DataObject) -> None:
    snapshot = data.draw(edited_meshes(night))
    outcome = reconcile(snapshot, CONFIG)
    written = with_statuses(snapshot, outcome)
    assert list(changes(written, reconcile(written, CONFIG))) == []
    assert list(changes(written, reconcile(written, CONFIG, previous=outcome.plan))) == []


def _placement(status: dict[str, Any]) -> tuple[str, list[Any]]:
    return status["phase"], status.get("assignments", [])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_one_edit_rewrites_only_the_statuses_whose_placement_changed(night: Snapshot, data: st.DataObject) -> None:
    snapshot = data.draw(edited_meshes(night))
    settled = with_statuses(snapshot, reconcile(snapshot, CONFIG))
    assume(settled.workloads)
    index = data.draw(st.integers(0, len(settled.workloads) - 1))
    target = settled.workloads[index]
    edit = data.draw(st.sampled_from(["priority", "interruptible", "demand"]))
    if edit == "priority":
        edited = edit_spec(target, priority=data.draw(st.integers(0, 3000)))
    elif edit == "interruptible":
        edited = edit_spec(target, interruptible=not target.spec.interruptible)
    elif target.spec.accelerators is not None:
        edited = edit_spec(target, accelerators=max(1, target.spec.accelerators * data.draw(st.sampled_from([0.5, 2, 40]))).__int__())
    else:
        edited = edit_spec(target, tokens_per_second=target.spec.tokens_per_second * data.draw(st.sampled_from([0.5, 2, 40])))
    after = Snapshot(
        settled.factories, settled.fleets,
        [edited if i == index else w for i, w in enumerate(settled.workloads)],
        settled.at + dt.timedelta(minutes=1),
    )
    outcome = reconcile(after, CONFIG)
    before = {w.key: w.status.to_api() for w in settled.workloads if w.status is not None}
    for key, status in outcome.workloads.items():
        if key == target.key:
            continue
        new = status.to_api()
        if new != before[key]:
            assert _placement(new) != _placement(before[key]), f"{key} was rewritten though its placement held"


@st.composite
def contended_meshes(draw: st.DrawFn) -> Snapshot:
    """A synthetic mesh where demand exceeds supply (some workloads wait for capacity
    others hold), as API objects at generation 1."""
    from controller.core.parse import parse_objects
    from tests.support.meshes import synthetic_mesh, to_manifests

    seed = draw(st.integers(0, 10_000))
    mesh = synthetic_mesh(draw(st.integers(20, 60)), draw(st.integers(3, 8)), seed=seed, load=2.0)
    for obj in (objects := to_manifests(mesh)):
        obj["metadata"]["generation"] = 1
    manifests = parse_objects(objects, "synthetic")
    assert manifests.problems == []
    return Snapshot(manifests.factories, manifests.fleets, manifests.workloads, mesh.at)


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_on_a_contended_mesh_one_edit_rewrites_only_moved_workloads(data: st.DataObject) -> None:
    """Workloads that wait for capacity other workloads hold must not be rewritten when
    those others move: their status says only what depends on them and the sites."""
    snapshot = data.draw(contended_meshes())
    settled = with_statuses(snapshot, reconcile(snapshot, CONFIG))
    assume(settled.workloads)
    index = data.draw(st.integers(0, len(settled.workloads) - 1))
    target = settled.workloads[index]
    edited = edit_spec(target, priority=data.draw(st.sampled_from([0, 50_000, 1_000_000])))
    after = Snapshot(
        settled.factories, settled.fleets,
        [edited if i == index else w for i, w in enumerate(settled.workloads)], settled.at,
    )
    outcome = reconcile(after, CONFIG)
    before = {w.key: w.status.to_api() for w in settled.workloads if w.status is not None}
    for key, status in outcome.workloads.items():
        new = status.to_api()
        if key != target.key and new != before[key]:
            assert _placement(new) != _placement(before[key]), (
                f"{key} was rewritten though its placement held:\n{before[key]['message']}\n{new['message']}"
            )
