"""controller.core.whatif: the change syntax, changes applied to a copy, plan diffs, and the
what-if itself checked against an independent computation: the manifests edited as a
user would edit them (the YAML objects), reconciled with the current statuses in place,
as the operator reconciles the edited cluster."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from controller.core.parse import parse_objects
from controller.core.reconcile import Outcome, Snapshot, reconcile
from controller.core.statuses import status_object
from controller.core.whatif import (
    Change,
    PlanDiff,
    WhatIfError,
    apply_changes,
    change_from_dict,
    diff_outcomes,
    diff_plan_documents,
    parse_change,
    what_if,
)
from tests.controller.core.conftest import CONFIG, NIGHT_IN_CALIFORNIA
from tests.support.manifests import parse_texts
from tests.support.meshes import synthetic_mesh, to_manifests

REPO = Path(__file__).resolve().parents[3]
Objects = list[dict[str, Any]]
Edit = Callable[[Objects], Objects]

# ----------------------------------------------------------------------------- syntax


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("curtail us-memphis-1=200", Change("curtail", "us-memphis-1", 200.0)),
        ("  curtail   us-memphis-1 = 12.5 ", Change("curtail", "us-memphis-1", 12.5)),
        ("firm kr-sejong-1=5", Change("firm", "kr-sejong-1", 5.0)),
        ("cordon kr-sejong-1", Change("cordon", "kr-sejong-1")),
        ("uncordon vehicles-california", Change("uncordon", "vehicles-california")),
        ("remove serving/chat-us-west", Change("remove", "serving/chat-us-west")),
        ("remove EdgeFleet/vehicles-california", Change("remove", "EdgeFleet/vehicles-california")),
        ("clock 2026-11-22T22:00:00Z", Change("clock", "", "2026-11-22T22:00:00+00:00")),
        ("clock 2026-11-22T06:00:00", Change("clock", "", "2026-11-22T06:00:00+00:00")),  # no zone: UTC
    ],
)
def test_parse_change_reads_every_op(text: str, expected: Change) -> None:
    assert parse_change(text) == expected
    assert parse_change(str(expected)) == expected  # str() is the text form again


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"op": "curtail", "target": "us-memphis-1", "value": 200}, Change("curtail", "us-memphis-1", 200.0)),
        ({"op": "firm", "target": "x", "value": "7.5"}, Change("firm", "x", 7.5)),
        ({"op": "cordon", "target": "x"}, Change("cordon", "x")),
        ({"op": "clock", "value": "2026-11-22T22:00:00Z"}, Change("clock", "", "2026-11-22T22:00:00+00:00")),
    ],
)
def test_change_from_dict_reads_the_json_form(document: dict[str, Any], expected: Change) -> None:
    assert change_from_dict(document) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty change"),
        ("shrink us-memphis-1=2", "unknown change 'shrink'"),
        ("curtail us-memphis-1", "curtail needs SITE=MW"),
        ("curtail us-memphis-1=lots", "MW must be a number (got 'lots')"),
        ("curtail us-memphis-1=-5", "MW must be between 0 and 100,000"),
        ("firm us-memphis-1=nan", "MW must be between 0 and 100,000"),
        ("cordon", "cordon needs one SITE"),
        ("cordon a b", "cordon needs one SITE"),
        ("remove", "remove needs one NAMESPACE/NAME or SITE"),
        ("clock yesterday", "not an ISO 8601 time: 'yesterday'"),
    ],
)
def test_a_bad_change_is_one_line_naming_it(text: str, says: str) -> None:
    with pytest.raises(WhatIfError) as raised:
        parse_change(text)
    message = str(raised.value)
    assert says in message and "\n" not in message
    if text.strip():
        assert message.startswith(" ".join(text.split()) + ":")


@pytest.mark.parametrize(
    "document",
    [{"op": "curtail", "target": "x"}, {"op": 3}, {"op": "cordon", "target": "x", "value": 1},
     {"op": "cordon", "target": "x", "extra": 1}, {"op": "curtail", "target": "x", "value": True}],
)
def test_a_bad_json_change_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(WhatIfError):
        change_from_dict(document)


# --------------------------------------------------------------------- applying changes


@pytest.fixture(scope="module")
def documents() -> Objects:
    """The example manifests as the YAML objects a user edits."""
    objects: Objects = []
    for path in sorted((REPO / "examples").glob("*.yaml")):
        objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return objects


def snapshot_of(objects: Objects, at: dt.datetime) -> Snapshot:
    manifests = parse_objects(objects, "test")
    assert manifests.problems == []
    return Snapshot(manifests.factories, manifests.fleets, manifests.workloads, at)


@pytest.fixture()
def examples_at_night(documents: Objects) -> Snapshot:
    return snapshot_of(documents, NIGHT_IN_CALIFORNIA)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("curtail us-memphis-9=200",
         "curtail us-memphis-9=200: no AIFactory named us-memphis-9 (known: de-frankfurt-1, fr-grenoble-1, "
         "in-mumbai-1, kr-sejong-1, us-memphis-1)"),
        ("curtail us-memphis-1=301", "curtail us-memphis-1=301: more than its flexibleMW 300"),
        ("curtail vehicles-california=1", "vehicles-california is an EdgeFleet"),
        ("firm de-frankfurt-1=0", "firmMW + flexibleMW must be greater than 0"),
        ("cordon nowhere", "no AIFactory or EdgeFleet named nowhere"),
        ("remove serving/nothing", "no MeshWorkload serving/nothing (known: batch/dashcam-clip-indexing"),
        ("remove AIFactory/vehicles-california", "no AIFactory named vehicles-california"),
    ],
)
def test_a_change_the_mesh_cannot_take_names_the_problem(examples_at_night: Snapshot, change: str, says: str) -> None:
    with pytest.raises(WhatIfError) as raised:
        apply_changes(examples_at_night, [parse_change(change)])
    assert str(raised.value).startswith(f"{change}: ") and says in str(raised.value)


def test_changes_apply_in_order_to_a_copy(examples_at_night: Snapshot) -> None:
    before = {f.metadata.name: f.model_dump() for f in examples_at_night.factories}
    changed = apply_changes(
        examples_at_night,
        [parse_change("curtail us-memphis-1=200"), parse_change("curtail us-memphis-1=50"),
         parse_change("cordon kr-sejong-1"), parse_change("remove serving/chat-us-west"),
         parse_change("remove vehicles-california"), parse_change("clock 2026-11-22T12:00:00Z")],
    )
    factories = {f.metadata.name: f for f in changed.factories}
    assert factories["us-memphis-1"].spec.power.curtailed_mw == 50  # the last change wins
    assert factories["kr-sejong-1"].spec.cordoned
    assert "serving/chat-us-west" not in {w.key for w in changed.workloads}
    assert "vehicles-california" not in {f.metadata.name for f in changed.fleets}
    assert changed.at == dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
    assert {f.metadata.name: f.model_dump() for f in examples_at_night.factories} == before
    assert examples_at_night.at == NIGHT_IN_CALIFORNIA


def test_added_manifests_add_or_replace(examples_at_night: Snapshot, documents: Objects) -> None:
    chat = copy.deepcopy(next(d for d in documents if d["metadata"]["name"] == "chat-us-west"))
    chat["spec"]["tokensPerSecond"] = 1
    twin = copy.deepcopy(chat)
    twin["metadata"]["name"] = "chat-twin"
    changed = apply_changes(examples_at_night, [], parse_objects([chat, twin], "added"))
    workloads = {w.key: w for w in changed.workloads}
    assert workloads["serving/chat-us-west"].spec.tokens_per_second == 1
    assert "serving/chat-twin" in workloads and len(workloads) == len(examples_at_night.workloads) + 1
    bad = parse_texts([("bad.yaml", "apiVersion: meshplane.io/v1alpha1\nkind: MeshWorkload\nmetadata: {name: x}\n")])
    with pytest.raises(WhatIfError, match="^added manifests: bad.yaml: MeshWorkload/x: spec"):
        apply_changes(examples_at_night, [], bad)


# ------------------------------------------------- the what-if against an independent plan


def carry_statuses(edited: Snapshot, outcome: Outcome) -> Snapshot:
    """The edited resources with the statuses the current plan wrote (none for new ones)."""
    return Snapshot(
        [f.model_copy(update={"status": outcome.factories.get(f.metadata.name)}) for f in edited.factories],
        [f.model_copy(update={"status": outcome.fleets.get(f.metadata.name)}) for f in edited.fleets],
        [w.model_copy(update={"status": outcome.workloads.get(w.key)}) for w in edited.workloads],
        edited.at,
    )


def plan_edited(objects: Objects, edit: Edit, at: dt.datetime, config: Any = CONFIG) -> tuple[Outcome, Outcome]:
    """(current outcome, outcome of the edited manifests), computed without whatif."""
    current = reconcile(snapshot_of(objects, at), config)
    edited = snapshot_of(edit(copy.deepcopy(objects)), at)
    return current, reconcile(carry_statuses(edited, current), config, current.plan)


def placement_of(outcome: Outcome, key: str) -> tuple[str, list[tuple[str, str, int]]]:
    status = outcome.workloads[key]
    return status.phase, sorted((a.site, a.accelerator_model, a.devices) for a in status.assignments)


def set_spec(kind: str, name: str, path: tuple[str, ...], value: Any) -> Edit:
    def edit(objects: Objects) -> Objects:
        for obj in objects:
            if obj.get("kind") == kind and obj["metadata"]["name"] == name:
                target = obj["spec"]
                for part in path[:-1]:
                    target = target.setdefault(part, {})
                target[path[-1]] = value
        return objects
    return edit


def delete(kind: str, name: str) -> Edit:
    return lambda objects: [o for o in objects if not (o.get("kind") == kind and o["metadata"]["name"] == name)]


EXAMPLE_CASES = {
    # the question: "what if us-memphis-1 loses 200 MW" (module docstring)
    "curtail us-memphis-1=200": set_spec("AIFactory", "us-memphis-1", ("power", "curtailedMW"), 200),
    "firm us-memphis-1=400": set_spec("AIFactory", "us-memphis-1", ("power", "firmMW"), 400),
    "cordon fr-grenoble-1": set_spec("AIFactory", "fr-grenoble-1", ("cordoned",), True),
    "curtail kr-sejong-1=20": set_spec("AIFactory", "kr-sejong-1", ("power", "curtailedMW"), 20),
    "remove us-memphis-1": delete("AIFactory", "us-memphis-1"),
}


@pytest.mark.parametrize("text", list(EXAMPLE_CASES))
def test_the_diff_names_exactly_the_workloads_whose_placement_changes(
    examples_at_night: Snapshot, documents: Objects, text: str
) -> None:
    outcome, diff = what_if(examples_at_night, [parse_change(text)], CONFIG)
    current, expected = plan_edited(documents, EXAMPLE_CASES[text], NIGHT_IN_CALIFORNIA)
    assert {k: s.to_api() for k, s in outcome.workloads.items()} == {
        k: s.to_api() for k, s in expected.workloads.items()
    }
    changed = {k for k in expected.workloads if k in current.workloads
               and placement_of(current, k) != placement_of(expected, k)}
    assert {m.key for m in diff.workloads} == changed
    for site in diff.sites:
        before = current.plan.sites.get(site.site)
        after = expected.plan.sites.get(site.site)
        assert site.mw_before == pytest.approx(before.power_mw_used if before else 0.0, abs=1e-3)
        assert site.mw_after == pytest.approx(after.power_mw_used if after else 0.0, abs=1e-3)
    unchanged = set(current.plan.sites) & set(expected.plan.sites) - {s.site for s in diff.sites}
    for name in unchanged:
        assert current.plan.sites[name].power_mw_used == pytest.approx(expected.plan.sites[name].power_mw_used)


def test_memphis_losing_200_mw_is_a_curtailment_of_its_flexible_power(examples_at_night: Snapshot) -> None:
    outcome, _ = what_if(examples_at_night, [parse_change("curtail us-memphis-1=200")], CONFIG)
    memphis = outcome.factories["us-memphis-1"]
    curtailed = next(c for c in memphis.conditions if c.type == "Curtailed")
    assert (curtailed.status, curtailed.reason) == ("True", "GridCurtailment")
    assert memphis.power is not None and memphis.power.flexible_available_mw == pytest.approx(100.0)
    assert "200.0 of 300.0 MW flexible power curtailed" in curtailed.message


def test_a_placed_workload_displaced_by_the_change_is_preempted_as_the_operator_says(
    examples_at_night: Snapshot,
) -> None:
    _, diff = what_if(examples_at_night, [parse_change("cordon kr-sejong-1")], CONFIG)
    (korean,) = diff.newly_preempted
    assert (korean.key, korean.before_phase, korean.after_phase) == ("research/korean-llm-finetune", "Placed",
                                                                     "Preempted")
    assert korean.before_sites == ("kr-sejong-1",) and korean.after_sites == ()
    assert korean.reason.startswith("preempted from kr-sejong-1: kr-sejong-1 is cordoned")
    assert diff.to_dict()["newlyPreempted"][0]["beforeSites"] == ["kr-sejong-1"]


def test_a_removed_workload_and_an_added_one_are_listed(examples_at_night: Snapshot, documents: Objects) -> None:
    twin = copy.deepcopy(next(d for d in documents if d["metadata"]["name"] == "hindi-assistant"))
    twin["metadata"]["name"] = "hindi-twin"
    _, diff = what_if(examples_at_night, [parse_change("remove serving/japan-medical-llm")], CONFIG,
                      add=parse_objects([twin], "added"))
    assert diff.removed == ("serving/japan-medical-llm",)
    assert diff.added == ("serving/hindi-twin",)
    assert [m.key for m in diff.newly_placed] == ["serving/hindi-twin"]


def test_plan_documents_diff_like_outcomes(examples_at_night: Snapshot) -> None:
    current = reconcile(examples_at_night, CONFIG)
    outcome, diff = what_if(examples_at_night, [parse_change("cordon fr-grenoble-1")], CONFIG)

    def document(snapshot: Snapshot, result: Outcome) -> dict[str, Any]:
        return {
            "workloads": [status_object(w, result.workloads[w.key]) for w in snapshot.workloads],
            "factories": [status_object(f, result.factories[f.metadata.name]) for f in snapshot.factories],
            "fleets": [status_object(f, result.fleets[f.metadata.name]) for f in snapshot.fleets],
        }

    before_doc = document(examples_at_night, current)
    after_doc = document(examples_at_night, outcome)
    assert not diff.empty
    assert diff_plan_documents(before_doc, after_doc) == diff
    assert diff_plan_documents(before_doc, {"plan": after_doc, "diff": {}}) == diff
    assert diff_plan_documents(after_doc, after_doc).empty
    with pytest.raises(WhatIfError, match="not a `meshctl plan -o json` document"):
        diff_plan_documents({"items": []}, after_doc)
    broken = copy.deepcopy(after_doc)
    broken["workloads"][0]["status"]["phase"] = "Dancing"
    with pytest.raises(WhatIfError, match=r"^the new plan: workloads\[0\]\.status\.phase"):
        diff_plan_documents(before_doc, broken)


def test_the_what_if_is_deterministic(examples_at_night: Snapshot) -> None:
    changes = [parse_change("cordon fr-grenoble-1"), parse_change("firm us-memphis-1=400")]
    first = what_if(examples_at_night, changes, CONFIG)
    second = what_if(examples_at_night, changes, CONFIG)
    assert first[1] == second[1]
    assert {k: s.to_api() for k, s in first[0].workloads.items()} == {
        k: s.to_api() for k, s in second[0].workloads.items()
    }


# --------------------------------------------------------- properties on synthetic meshes

SYNTHETIC_AT = dt.datetime(2025, 6, 1, 23, 30, tzinfo=dt.UTC)


@st.composite
def meshes_and_changes(draw: st.DrawFn) -> tuple[Objects, list[Change], list[Edit]]:
    """A small synthetic mesh, and changes to it both as what-if changes and as edits of
    its manifests (written independently of whatif)."""
    seed = draw(st.integers(0, 10_000))
    mesh = synthetic_mesh(draw(st.integers(5, 25)), draw(st.integers(4, 12)), seed=seed, at=SYNTHETIC_AT)
    objects = to_manifests(mesh)
    changes: list[Change] = []
    edits: list[Edit] = []
    factories = list(mesh.factories)
    sites = [*mesh.factories, *mesh.fleets]
    workloads = list(mesh.workloads)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["curtail", "firm", "cordon", "uncordon", "remove-site", "remove-workload",
                                   "clock"]))
        if op in ("curtail", "firm") and factories:
            factory = draw(st.sampled_from(factories))
            share = draw(st.floats(0.0, 1.0) if op == "curtail" else st.floats(0.05, 1.5))
            base = factory.flexible_mw if op == "curtail" else max(factory.firm_mw, 1.0)
            mw = min(round(base * share, 3), factory.flexible_mw) if op == "curtail" else round(base * share, 3)
            changes.append(Change(op, factory.name, mw))
            field = "curtailedMW" if op == "curtail" else "firmMW"
            edits.append(set_spec("AIFactory", factory.name, ("power", field), mw))
        elif op in ("cordon", "uncordon", "remove-site") and sites:
            site = draw(st.sampled_from(sites))
            kind = "AIFactory" if site in mesh.factories else "EdgeFleet"
            if op == "remove-site":
                changes.append(Change("remove", site.name))
                edits.append(delete(kind, site.name))
                sites.remove(site)
                if site in factories:
                    factories.remove(site)
            else:
                changes.append(Change("cordon" if op == "cordon" else "uncordon", site.name))
                edits.append(set_spec(kind, site.name, ("cordoned",), op == "cordon"))
        elif op == "remove-workload" and workloads:
            workload = draw(st.sampled_from(workloads))
            workloads.remove(workload)
            namespace, name = workload.key.split("/")
            changes.append(Change("remove", workload.key))
            edits.append(lambda objs, ns=namespace, n=name: [
                o for o in objs if not (o["kind"] == "MeshWorkload" and o["metadata"] == {"name": n, "namespace": ns})
            ])
        elif op == "clock":
            hours = draw(st.integers(1, 23))
            changes.append(Change("clock", "", (SYNTHETIC_AT + dt.timedelta(hours=hours)).isoformat()))
            edits.append(lambda objs: objs)  # the time is not in the manifests: see the test
    return objects, changes, edits


PROPERTY_SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(meshes_and_changes())
def test_a_what_if_equals_reconciling_the_edited_manifests(case: tuple[Objects, list[Change], list[Edit]]) -> None:
    objects, changes, edits = case
    snapshot = snapshot_of(objects, SYNTHETIC_AT)
    frozen = [r.model_dump() for r in (*snapshot.factories, *snapshot.fleets, *snapshot.workloads)]
    outcome, diff = what_if(snapshot, changes, CONFIG)
    # the input is never changed
    assert [r.model_dump() for r in (*snapshot.factories, *snapshot.fleets, *snapshot.workloads)] == frozen
    assert snapshot.at == SYNTHETIC_AT
    # the same as editing the manifests and reconciling them with the current statuses
    clocks = [c.value for c in changes if c.op == "clock"]
    at = dt.datetime.fromisoformat(str(clocks[-1])) if clocks else SYNTHETIC_AT

    def edit_all(objs: Objects) -> Objects:
        for edit in edits:
            objs = edit(objs)
        return objs

    current = reconcile(snapshot, CONFIG)
    edited_objects = edit_all(copy.deepcopy(objects))
    edited = snapshot_of(edited_objects, at)
    # the operator solves only when a spec (or, for the fleets' windows, the time) changes
    same = edited_objects == objects and at == SYNTHETIC_AT
    expected = current if same else reconcile(carry_statuses(edited, current), CONFIG, current.plan)
    assert {k: s.to_api() for k, s in outcome.workloads.items()} == {
        k: s.to_api() for k, s in expected.workloads.items()
    }
    assert {k: s.to_api() for k, s in outcome.factories.items()} == {
        k: s.to_api() for k, s in expected.factories.items()
    }
    # every workload in the diff really changed, and every one that changed is there
    changed = {k for k in expected.workloads if k in current.workloads
               and placement_of(current, k) != placement_of(expected, k)}
    assert {m.key for m in diff.workloads} == changed
    for move in diff.workloads:
        assert placement_of(current, move.key) != placement_of(outcome, move.key)
    if not changes:
        assert diff.empty


@PROPERTY_SETTINGS
@given(st.integers(0, 10_000), st.integers(5, 30), st.integers(3, 12))
@example(seed=453, workloads=23, sites=15)  # a warm re-solve of this mesh places two more
def test_a_plan_diffed_with_itself_is_empty(seed: int, workloads: int, sites: int) -> None:
    snapshot = snapshot_of(to_manifests(synthetic_mesh(workloads, sites, seed=seed, at=SYNTHETIC_AT)), SYNTHETIC_AT)
    outcome = reconcile(snapshot, CONFIG)
    assert diff_outcomes(outcome, outcome) == PlanDiff()
    assert what_if(snapshot, [], CONFIG, current=outcome)[1].empty



def test_other_devices_on_the_same_site_is_a_move(examples_at_night: Snapshot) -> None:
    current = reconcile(examples_at_night, CONFIG)
    chat = current.workloads["serving/chat-us-west"]
    grown = chat.model_copy(update={"assignments": [a.model_copy(update={"devices": a.devices + 1})
                                                    for a in chat.assignments]})
    after = Outcome(plan=current.plan, workloads={**current.workloads, "serving/chat-us-west": grown},
                    factories=current.factories, fleets=current.fleets)
    (move,) = diff_outcomes(current, after).moved
    assert move.before_sites == move.after_sites == ("us-memphis-1",)
    first = chat.assignments[0]
    assert move.reason == (f"moved from us-memphis-1 ({first.devices:,} x {first.accelerator_model}) "
                           f"to us-memphis-1 ({first.devices + 1:,} x {first.accelerator_model})")


def test_a_change_to_the_same_spec_plans_nothing(examples_at_night: Snapshot) -> None:
    current = reconcile(examples_at_night, CONFIG)
    outcome, diff = what_if(examples_at_night, [parse_change("uncordon kr-sejong-1"),
                                                parse_change("curtail us-memphis-1=0")], CONFIG, current=current)
    assert outcome is current and diff.empty
    unchanged = apply_changes(examples_at_night, [parse_change("uncordon kr-sejong-1")])
    assert unchanged.factories[1] is examples_at_night.factories[1]  # not even a new generation
