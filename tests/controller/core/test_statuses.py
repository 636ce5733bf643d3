"""controller.core.statuses on the example mesh: phases, preemption stories, site
conditions, and a status that depends on nothing but its own workload."""

from __future__ import annotations

import datetime as dt

from controller.api.models import SiteStatus
from controller.core.changes import changes, with_statuses
from controller.core.reconcile import Snapshot, reconcile
from tests.controller.core.conftest import CONFIG, edit_spec

KOREAN = "research/korean-llm-finetune"


def _settled(snapshot: Snapshot) -> Snapshot:
    return with_statuses(snapshot, reconcile(snapshot, CONFIG))


def _replace_factory(snapshot: Snapshot, name: str, **spec) -> Snapshot:
    factories = [edit_spec(f, **spec) if f.metadata.name == name else f for f in snapshot.factories]
    return Snapshot(factories, snapshot.fleets, snapshot.workloads, snapshot.at + dt.timedelta(minutes=1))


def _events(before: Snapshot, after: Snapshot) -> dict[str, list[tuple[str, str]]]:
    outcome = reconcile(after, CONFIG)
    found: dict[str, list[tuple[str, str]]] = {}
    for change in changes(after, outcome):
        for event in change.events:
            found.setdefault(change.ref.name, []).append((event.reason, event.message))
    return found


def test_no_status_carries_mesh_wide_solve_figures(night: Snapshot) -> None:
    outcome = reconcile(night, CONFIG)
    for status in outcome.workloads.values():
        assert set(status.to_api()) <= {
            "observedGeneration", "phase", "assignments", "sites", "powerMW", "latencyMs",
            "tokensPerSecond", "message", "ready", "conditions",
        }


def test_cordoning_the_only_allowed_site_preempts_and_says_so(night: Snapshot) -> None:
    settled = _settled(night)
    assert {w.key: w.status.phase for w in settled.workloads}[KOREAN] == "Placed"
    cordoned = _replace_factory(settled, "kr-sejong-1", cordoned=True)
    outcome = reconcile(cordoned, CONFIG)
    korean = outcome.workloads[KOREAN]
    assert korean.phase == "Preempted"
    assert korean.message.startswith("preempted from kr-sejong-1: kr-sejong-1 is cordoned")
    assert (korean.conditions[0].status, korean.conditions[0].reason) == ("False", "Preempted")
    events = _events(settled, cordoned)
    assert ("Preempted", korean.message) in events["korean-llm-finetune"]
    assert [reason for reason, _ in events["kr-sejong-1"]] == ["Cordoned"]
    # the story stays while nothing changes, and no event repeats
    again = with_statuses(cordoned, outcome)
    assert list(changes(again, reconcile(again, CONFIG))) == []
    # uncordon: placed again, announced as rescheduled
    back = _replace_factory(again, "kr-sejong-1", cordoned=False)
    assert reconcile(back, CONFIG).workloads[KOREAN].phase == "Placed"
    assert ("Rescheduled" in [r for r, _ in _events(again, back)["korean-llm-finetune"]])


def test_curtailment_preempts_interruptible_work_that_firm_power_cannot_hold(night: Snapshot) -> None:
    # Sejong with little firm power: the interruptible fine-tune lives on flexible power.
    small = _replace_factory(night, "kr-sejong-1", power=night.factories[1].spec.power.model_copy(
        update={"firm_mw": 5.0, "flexible_mw": 20.0}))
    settled = _settled(small)
    assert {w.key: w.status.phase for w in settled.workloads}[KOREAN] == "Placed"
    power = settled.factories[1].spec.power
    curtailed = _replace_factory(settled, "kr-sejong-1", power=power.model_copy(update={"curtailed_mw": 20.0}))
    outcome = reconcile(curtailed, CONFIG)
    korean = outcome.workloads[KOREAN]
    assert korean.phase == "Preempted"
    assert "kr-sejong-1 is curtailed by 20 MW of its 20 MW flexible power" in korean.message
    sejong = {c.type: c for c in outcome.factories["kr-sejong-1"].conditions}
    assert (sejong["Curtailed"].status, sejong["Curtailed"].reason) == ("True", "GridCurtailment")
    assert sejong["Curtailed"].message == "20.0 of 20.0 MW flexible power curtailed; 5.0 MW usable"
    assert ("Curtailed", sejong["Curtailed"].message) in _events(settled, curtailed)["kr-sejong-1"]


def test_a_higher_priority_workload_preempts_and_is_named(night: Snapshot) -> None:
    settled = _settled(night)
    big = edit_spec(
        next(w for w in settled.workloads if w.key == KOREAN), accelerators=14_000, priority=5_000
    )
    big = big.model_copy(update={
        "metadata": big.metadata.model_copy(update={"name": "sovereign-pretrain", "generation": 1}), "status": None
    })
    crowded = Snapshot(settled.factories, settled.fleets, [*settled.workloads, big], settled.at)
    outcome = reconcile(crowded, CONFIG)
    assert outcome.workloads["research/sovereign-pretrain"].phase == "Placed"
    korean = outcome.workloads[KOREAN]
    assert korean.phase == "Preempted"
    assert "research/sovereign-pretrain" in korean.message


def test_a_changed_spec_that_fits_nowhere_is_unschedulable_not_preempted(night: Snapshot) -> None:
    settled = _settled(night)
    workloads = [
        edit_spec(w, accelerators=10_000_000) if w.key == KOREAN else w for w in settled.workloads
    ]
    outcome = reconcile(Snapshot(settled.factories, settled.fleets, workloads, settled.at), CONFIG)
    korean = outcome.workloads[KOREAN]
    assert korean.phase == "Unschedulable"
    assert korean.observed_generation == 2 and korean.conditions[0].observed_generation == 2


def test_sites_report_their_conditions(night: Snapshot) -> None:
    morning = Snapshot(night.factories, night.fleets, night.workloads, night.at.replace(hour=8))
    outcome = reconcile(morning, CONFIG)
    vehicles = {c.type: c for c in outcome.fleets["vehicles-california"].conditions}
    assert (vehicles["Offline"].status, vehicles["Offline"].reason) == ("True", "OutsideAvailabilityWindows")
    assert (vehicles["Ready"].status, vehicles["Ready"].reason) == ("False", "Offline")
    assert outcome.fleets["vehicles-california"].online_devices == 0
    memphis = {c.type: c for c in outcome.factories["us-memphis-1"].conditions}
    assert set(memphis) == {"Ready", "Cordoned", "Curtailed"}
    assert memphis["Ready"].status == "True" and memphis["Cordoned"].status == "False"
    for status in [*outcome.factories.values(), *outcome.fleets.values()]:
        SiteStatus.model_validate(status.to_api())
    night_vehicles = {c.type: c for c in reconcile(night, CONFIG).fleets["vehicles-california"].conditions}
    assert night_vehicles["Offline"].status == "False"
    assert night_vehicles["Offline"].message == f"{round(500_000 * 0.3 * 0.7):,} devices online"


def test_condition_times_move_only_on_transitions(night: Snapshot) -> None:
    settled = _settled(night)
    later = Snapshot(settled.factories, settled.fleets, settled.workloads, settled.at + dt.timedelta(hours=1))
    outcome = reconcile(later, CONFIG)
    for workload in settled.workloads:
        assert outcome.workloads[workload.key].conditions == workload.status.conditions
