"""The reconcile core on the example mesh: what the operator and `meshctl plan` share."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from controller.api.models import MeshWorkloadStatus, SiteStatus
from controller.cli.files import load_manifests
from controller.core.convert import to_mesh
from controller.core.reconcile import Snapshot, reconcile
from controller.core.statuses import reads_only_its_own
from placement.problem import SolverConfig

REPO = Path(__file__).resolve().parents[3]
PACIFIC = dt.timezone(dt.timedelta(hours=-8))
NIGHT_IN_CALIFORNIA = dt.datetime(2026, 11, 21, 23, 30, tzinfo=PACIFIC)
MORNING_IN_CALIFORNIA = dt.datetime(2026, 11, 21, 7, 30, tzinfo=PACIFIC)
CONFIG = SolverConfig(time_limit_s=10.0, num_workers=2, random_seed=0)


@pytest.fixture(scope="module")
def manifests():
    loaded = load_manifests([REPO / "examples"])
    assert loaded.problems == []
    return loaded


def _snapshot(manifests, at):
    return Snapshot(manifests.factories, manifests.fleets, manifests.workloads, at)


@pytest.fixture(scope="module")
def night(manifests):
    return reconcile(_snapshot(manifests, NIGHT_IN_CALIFORNIA), CONFIG)


def test_to_mesh_carries_every_resource(manifests):
    mesh = to_mesh(manifests.factories, manifests.fleets, manifests.workloads, NIGHT_IN_CALIFORNIA)
    assert [f.name for f in mesh.factories] == [f.metadata.name for f in manifests.factories]
    assert len(mesh.fleets) == 3 and len(mesh.workloads) == 8
    vehicles = next(f for f in mesh.fleets if f.name == "vehicles-california")
    assert vehicles.availability[0].start == dt.time(22, 0) and vehicles.availability[0].end == dt.time(6, 0)
    assert vehicles.max_fleet_mw == 50
    pretrain = next(w for w in mesh.workloads if w.key == "research/frontier-pretrain")
    assert pretrain.accelerators == 200_000 and pretrain.accelerator_models == ("nvidia-gb200",)


def test_every_workload_is_placed_or_says_why(night):
    for key, status in night.workloads.items():
        assert status.phase in ("Placed", "Unschedulable"), key
        if status.phase == "Unschedulable":
            assert status.message, f"{key} is unschedulable without a reason"
        else:
            assert status.assignments and status.sites
        assert status.conditions[0].type == "Placed"
        MeshWorkloadStatus.model_validate(status.to_api())  # what the operator writes is valid


def test_the_unplaceable_example_names_its_filter(night):
    status = night.workloads["serving/japan-medical-llm"]
    assert status.phase == "Unschedulable"
    assert "country not allowed" in status.message
    assert status.message.startswith("0/8 sites fit")


def test_training_runs_whole_on_one_factory(night):
    status = night.workloads["research/frontier-pretrain"]
    assert status.phase == "Placed"
    assert [(a.site, a.devices, a.kind) for a in status.assignments] == [("us-memphis-1", 200_000, "AIFactory")]


def test_sovereign_workloads_stay_in_their_countries(manifests, night):
    countries = {f.metadata.name: f.spec.country for f in [*manifests.factories, *manifests.fleets]}
    eu = night.workloads["gov-eu/eu-citizen-assistant"]
    assert eu.phase == "Placed"
    assert {countries[a.site] for a in eu.assignments} <= {"FR", "DE"}
    korean = night.workloads["research/korean-llm-finetune"]
    assert {countries[a.site] for a in korean.assignments} == {"KR"}


def test_fleet_availability_follows_the_clock(manifests, night):
    morning = reconcile(_snapshot(manifests, MORNING_IN_CALIFORNIA), CONFIG)
    assert night.fleets["vehicles-california"].online_devices == round(500_000 * 0.3 * 0.7)
    assert morning.fleets["vehicles-california"].online_devices == 0
    assert all(
        a.site != "vehicles-california" for status in morning.workloads.values() for a in status.assignments
    )


def test_site_statuses_stay_within_power(manifests, night):
    for factory in manifests.factories:
        status = night.factories[factory.metadata.name]
        SiteStatus.model_validate(status.to_api())
        power = factory.spec.power
        usable_flexible = max(0.0, power.flexible_mw - power.curtailed_mw)
        assert status.power.firm_allocated_mw <= power.firm_mw + 1e-6
        assert status.power.flexible_allocated_mw <= usable_flexible + 1e-6
    for fleet in manifests.fleets:
        assert night.fleets[fleet.metadata.name].power.allocated_mw <= fleet.spec.max_fleet_mw + 1e-6


def test_same_snapshot_same_statuses_and_stable_conditions(manifests, night):
    """Feeding the written statuses back (as after an operator restart) changes nothing,
    and condition transition times are kept."""
    later = NIGHT_IN_CALIFORNIA + dt.timedelta(minutes=5)
    workloads = [
        w.model_copy(update={"status": night.workloads[w.key]}) for w in manifests.workloads
    ]
    again = reconcile(Snapshot(manifests.factories, manifests.fleets, workloads, later), CONFIG)
    for key, status in night.workloads.items():
        assert again.workloads[key].assignments == status.assignments, key
        assert again.workloads[key].conditions[0].last_transition_time == status.conditions[0].last_transition_time


def test_a_warm_reconcile_keeps_unchanged_workloads_and_places_the_new_one(manifests, night):
    """Passing the last plan re-solves only what changed: one new workload here."""
    extra = manifests.workloads[-2].model_copy(
        update={"metadata": manifests.workloads[-2].metadata.model_copy(update={"name": "factory-floor-vision-2"})}
    )
    snapshot = Snapshot(manifests.factories, manifests.fleets, [*manifests.workloads, extra], NIGHT_IN_CALIFORNIA)
    warm = reconcile(snapshot, CONFIG, previous=night.plan)
    assert warm.plan.stats.warm
    assert warm.workloads[extra.key].phase == "Placed"
    for key, status in night.workloads.items():
        assert warm.workloads[key].assignments == status.assignments, key


def test_a_warm_reconcile_reuses_the_statuses_nothing_changed_for(manifests, night):
    """With the last outcome, a workload whose parsed object and decision are the very
    objects its status was built from gets that status again (no rebuild); the result
    equals a reconcile without it. A workload object that changed (here: its status
    written back) is built afresh, and a status that reads the sites (Preempted: placed
    under this spec, now not) is never reused."""
    extra = manifests.workloads[-2].model_copy(
        update={"metadata": manifests.workloads[-2].metadata.model_copy(update={"name": "factory-floor-vision-2"})}
    )
    rewritten = manifests.workloads[0].model_copy(update={"status": night.workloads[manifests.workloads[0].key]})
    workloads = [rewritten, *manifests.workloads[1:], extra]
    snapshot = Snapshot(manifests.factories, manifests.fleets, workloads, NIGHT_IN_CALIFORNIA)
    memoised = reconcile(snapshot, CONFIG, previous=night.plan, previous_outcome=night)
    plain = reconcile(snapshot, CONFIG, previous=night.plan)
    assert memoised.workloads == plain.workloads
    kept = [w.key for w in manifests.workloads[1:] if memoised.plan.workloads[w.key] is night.plan.workloads[w.key]]
    assert kept, "the warm path keeps the unchanged decisions as they were"
    for key in kept:
        assert memoised.workloads[key] is night.workloads[key], key
    assert memoised.workloads[rewritten.key] is not night.workloads[rewritten.key]
    assert memoised.status_memo[rewritten.key][0] is rewritten
    placed = next(w for w in manifests.workloads if night.workloads[w.key].phase == "Placed")
    was_placed = placed.model_copy(update={"status": night.workloads[placed.key]})
    unplaced = replace(night.plan.workloads[placed.key], assignments=[], phase="Unschedulable")
    assert not reads_only_its_own(was_placed, unplaced)
    assert reads_only_its_own(was_placed, night.plan.workloads[placed.key])


def test_a_fleet_only_workload_says_the_fleet_is_offline(manifests):
    """07:30 in California: the parked-car window (22:00-06:00) is closed."""
    morning = reconcile(_snapshot(manifests, MORNING_IN_CALIFORNIA), CONFIG)
    status = morning.workloads["batch/dashcam-clip-indexing"]
    assert status.phase == "Unschedulable"
    assert status.message == (
        "0/8 sites fit: 7 accelerator model, 1 offline now (outside availability windows)"
    )


def test_a_fleet_named_like_a_factory_is_left_out_and_says_why(manifests):
    """The API server allows it (two kinds); the plan cannot: the rest still places."""
    clash = manifests.fleets[0].model_copy(
        update={"metadata": manifests.fleets[0].metadata.model_copy(update={"name": "us-memphis-1"})}
    )
    outcome = reconcile(
        Snapshot(manifests.factories, [*manifests.fleets, clash], manifests.workloads, NIGHT_IN_CALIFORNIA), CONFIG
    )
    ready = outcome.fleets["us-memphis-1"].conditions[0]
    assert (ready.status, ready.reason) == ("False", "NameConflict")
    assert outcome.factories["us-memphis-1"].power.allocated_mw >= 450
    assert outcome.workloads["research/frontier-pretrain"].phase == "Placed"
