"""The operator reacting to what happens in the mesh, against the real API server, as a
real ``meshplane-operator`` process (tests/e2e/operator_support.py):

- a grid curtailment preempts interruptible work living on flexible power, in one solve,
  naming the curtailment; lifting it reschedules the work;
- a deleted site moves its work to another site that fits, else preempts it naming
  the removed site;
- a deleted workload frees its capacity for an unschedulable one;
- a higher-priority workload displaces a lower one, which says by whom;
- a fleet's availability window opening places work with no change to any object (the
  loop wakes at the window; injected clock);
- an object the API server accepts but the core refuses gets an InvalidSpec status and
  event, and the rest of the mesh carries on.

Each test restores what it changed: the example objects are shared by the e2e session.
Its own sites are "isolated" (operator_support.isolated_factory): no example workload
can use them, so the example placements never move because of them.
"""

from __future__ import annotations

import copy
import json
import re
import time
from pathlib import Path
from typing import Any

from tests.e2e.e2e_support import EXAMPLES_DIR, Kubectl, load_documents, unique_name, yaml_files
from tests.e2e.operator_support import (
    ISOLATED_COUNTRY,
    ISOLATED_REGION,
    OperatorProcess,
    StatusRecorder,
    conditions_of,
    current_status,
    delete_quietly,
    event_counts,
    get_object,
    healthy,
    isolated_factory,
    new_events,
    own_workload,
    patch_spec,
    settled,
    solves,
    wait_for,
    workloads,
)

KOREAN = "research/korean-llm-finetune"
DASHCAM = "batch/dashcam-clip-indexing"
SITE_EVENTS = "default"  # where the operator records the Events of cluster-scoped sites
WAIT_S = 60.0


def _status(kubectl: Kubectl, key: str) -> dict[str, Any]:
    namespace, name = key.split("/")
    return current_status(kubectl, f"meshworkload/{name}", namespace)


def _phase(kubectl: Kubectl, key: str, phase: str) -> dict[str, Any] | None:
    status = _status(kubectl, key)
    return status if status.get("phase") == phase else None


def _placements(current: dict[str, dict[str, Any]]) -> dict[str, tuple[str, str]]:
    return {k: (v["status"]["phase"], v["status"].get("sites", "")) for k, v in current.items()}


# --------------------------------------------------------------------------- curtailment


def test_curtailment_preempts_flexible_work_and_lifting_it_reschedules(
    kubectl: Kubectl, fresh_operator: OperatorProcess
) -> None:
    """kr-sejong-1 with 5 MW firm power: the Korean fine-tune (interruptible, 9.36 MW,
    KR only) can only live on its 20 MW of flexible power. Curtailing all 20 MW preempts
    it in one solve, the message naming the curtailment; the factory says Curtailed
    (condition and Warning event); lifting the curtailment places it again
    (Rescheduled)."""
    wait_for("every example workload to be solved", lambda: settled(kubectl))
    power = copy.deepcopy(get_object(kubectl, "aifactory/kr-sejong-1")["spec"]["power"])
    name = KOREAN.split("/")[1]
    recorder: StatusRecorder | None = None
    try:
        patch_spec(kubectl, "aifactory/kr-sejong-1", {"power": {"firmMW": 5}})
        site = wait_for("kr-sejong-1 solved with 5 MW firm", lambda: current_status(kubectl, "aifactory/kr-sejong-1"))
        placed = wait_for("the fine-tune placed", lambda: _phase(kubectl, KOREAN, "Placed"))
        assert placed["sites"] == "kr-sejong-1", placed
        assert site["power"]["firmAvailableMW"] < placed["powerMW"] <= site["power"]["flexibleAllocatedMW"], (
            f"the fine-tune does not live on flexible power only: {site['power']}, {placed['powerMW']} MW"
        )

        workload_events = event_counts(kubectl, "research", name)
        site_events = event_counts(kubectl, SITE_EVENTS, "kr-sejong-1")
        recorder = StatusRecorder(kubectl, f"meshworkload/{name}", "research")
        wait_for("the recorder to see the fine-tune", recorder.versions, timeout_s=30)
        solves_before = len(solves(fresh_operator.log_path))
        patch_spec(kubectl, "aifactory/kr-sejong-1", {"power": {"curtailedMW": power["flexibleMW"]}})

        preempted = wait_for("the fine-tune preempted", lambda: _phase(kubectl, KOREAN, "Preempted"), WAIT_S)
        flexible = power["flexibleMW"]
        assert f"kr-sejong-1 is curtailed by {flexible:,.0f} MW of its {flexible:,.0f} MW flexible power" in (
            preempted["message"]
        ), preempted
        assert preempted["assignments"] == [] and preempted["powerMW"] == 0, preempted
        # one solve: the first status after the curtailment is the Preempted one, and
        # exactly one solve ran for the change
        time.sleep(2)  # the debounce (0.2 s quiet, 1 s at most) and the solve's own log line
        after = recorder.statuses()
        assert [s.get("phase") for s in after] == ["Placed", "Preempted"], after
        ran = solves(fresh_operator.log_path)[solves_before:]
        assert len(ran) == 1, f"expected one solve for the curtailment, got {ran}"

        site = current_status(kubectl, "aifactory/kr-sejong-1")
        curtailed = conditions_of(site)["Curtailed"]
        assert (curtailed["status"], curtailed["reason"]) == ("True", "GridCurtailment"), curtailed
        events = new_events(kubectl, SITE_EVENTS, "kr-sejong-1", site_events, reason="Curtailed")
        assert [(e["type"], e["involvedObject"]["kind"]) for e in events] == [("Warning", "AIFactory")], events
        events = new_events(kubectl, "research", name, workload_events, reason="Preempted")
        assert [e["type"] for e in events] == ["Warning"] and events[0]["message"] == preempted["message"], events

        patch_spec(kubectl, "aifactory/kr-sejong-1", {"power": {"curtailedMW": 0}})
        again = wait_for("the fine-tune placed again", lambda: _phase(kubectl, KOREAN, "Placed"), WAIT_S)
        assert again["sites"] == "kr-sejong-1", again
        events = new_events(kubectl, "research", name, workload_events, reason="Rescheduled")
        assert len(events) == 1 and events[0]["type"] == "Normal", events
        lifted = wait_for("kr-sejong-1 no longer curtailed", lambda: (
            s := current_status(kubectl, "aifactory/kr-sejong-1")) and conditions_of(s)["Curtailed"]["status"] == "False")
        assert lifted
        assert new_events(kubectl, SITE_EVENTS, "kr-sejong-1", site_events, reason="CurtailmentLifted"), (
            "no CurtailmentLifted event"
        )
    finally:
        if recorder is not None:
            recorder.close()
        kubectl("patch", "aifactory/kr-sejong-1", "--type=json", "-p",
                json.dumps([{"op": "replace", "path": "/spec/power", "value": power}]))
        wait_for("kr-sejong-1 solved as it was", lambda: current_status(kubectl, "aifactory/kr-sejong-1"))
        wait_for("the fine-tune placed", lambda: _phase(kubectl, KOREAN, "Placed"), WAIT_S)


# --------------------------------------------------------------------------- sites and workloads of our own


def test_deleting_a_site_moves_its_work_or_preempts_it(
    kubectl: Kubectl, fresh_operator: OperatorProcess, scratch_namespace: str
) -> None:
    """Two sites of our own with a model only they have; a workload that needs it is
    placed on one. Deleting that site moves the workload to the other one at once
    (statuses.py: Preempted only when a placed workload gets no assignment; a workload
    re-placed elsewhere stays Placed, with a Moved event). Deleting the other site too
    leaves it nowhere to go: Preempted, the message naming the removed site."""
    suffix = unique_name("del").split("-")[1]
    model = f"e2e-npu-{suffix}"
    sites = [f"e2e-del-{suffix}-a", f"e2e-del-{suffix}-b"]
    name, key = "needs-own-model", f"{scratch_namespace}/needs-own-model"
    wait_for("every example workload to be solved", lambda: settled(kubectl))
    before = _placements(workloads(kubectl))
    try:
        for site in sites:
            kubectl.apply_obj(isolated_factory(site, model))
        kubectl.apply_obj(own_workload(scratch_namespace, name, model, 600))
        placed = wait_for("the workload placed", lambda: _phase(kubectl, key, "Placed"), WAIT_S)
        first = placed["sites"]
        assert first in sites, placed
        other = next(s for s in sites if s != first)
        seen = event_counts(kubectl, scratch_namespace, name)

        kubectl("delete", "aifactory", first)
        moved = wait_for(f"the workload moved to {other}", lambda: (
            s := _phase(kubectl, key, "Placed")) and s["sites"] == other and s, WAIT_S)
        assert moved["assignments"][0]["devices"] == 600, moved
        events = new_events(kubectl, scratch_namespace, name, seen, reason="Moved")
        assert len(events) == 1 and first in events[0]["message"] and other in events[0]["message"], events

        kubectl("delete", "aifactory", other)
        preempted = wait_for("the workload preempted", lambda: _phase(kubectl, key, "Preempted"), WAIT_S)
        assert f"site {other} was removed" in preempted["message"], preempted
        assert preempted["message"].startswith(f"preempted from {other}"), preempted
        events = new_events(kubectl, scratch_namespace, name, seen, reason="Preempted")
        assert len(events) == 1 and events[0]["type"] == "Warning", events
        # the example mesh never saw our sites
        assert _placements(workloads(kubectl)) == before
    finally:
        delete_quietly(kubectl, f"meshworkload/{name}", scratch_namespace)
        for site in sites:
            delete_quietly(kubectl, f"aifactory/{site}")


def test_deleting_a_workload_frees_its_capacity(
    kubectl: Kubectl, fresh_operator: OperatorProcess, scratch_namespace: str
) -> None:
    """Two workloads of the same priority, 600 devices each, on a site of 1,000: one is
    placed, the other unschedulable with the numbers that decided it; deleting the
    placed one places the other."""
    suffix = unique_name("cap").split("-")[1]
    model, site = f"e2e-npu-{suffix}", f"e2e-cap-{suffix}"
    names = ["first", "second"]
    keys = [f"{scratch_namespace}/{n}" for n in names]
    wait_for("every example workload to be solved", lambda: settled(kubectl))
    try:
        kubectl.apply_obj(isolated_factory(site, model, count=1000))
        documents = [own_workload(scratch_namespace, n, model, 600, priority=200) for n in names]
        kubectl("apply", "-f", "-", input="\n---\n".join(json.dumps(d) for d in documents))

        def solved() -> dict[str, dict[str, Any]] | None:
            found = {k: _status(kubectl, k) for k in keys}
            return found if all(s.get("phase") for s in found.values()) else None

        statuses = wait_for("both workloads solved", solved, WAIT_S)
        phases = sorted(s["phase"] for s in statuses.values())
        assert phases == ["Placed", "Unschedulable"], statuses
        placed_key = next(k for k, s in statuses.items() if s["phase"] == "Placed")
        waiting_key = next(k for k in keys if k != placed_key)
        message = statuses[waiting_key]["message"]
        # the numbers that decided it: its demand and its one feasible site (the free
        # capacity, when the message gives it, is what the other one left)
        assert message.startswith("needs 600 devices; no room left on its 1 feasible site"), message
        if "free" in message:
            assert re.search(rf"devices exhausted at {site} \(400 free, needs 600\)", message), message
        assert statuses[placed_key]["sites"] == site
        waiting = waiting_key.split("/")[1]
        seen = event_counts(kubectl, scratch_namespace, waiting)
        refused = new_events(kubectl, scratch_namespace, waiting, {}, reason="Unschedulable")
        assert [(e["type"], e["message"]) for e in refused] == [("Warning", message)], refused

        kubectl("delete", "meshworkload", placed_key.split("/")[1], "-n", scratch_namespace)
        placed = wait_for("the other workload placed", lambda: _phase(kubectl, waiting_key, "Placed"), WAIT_S)
        assert placed["sites"] == site and placed["assignments"][0]["devices"] == 600, placed
        events = new_events(kubectl, scratch_namespace, waiting, seen, reason="Placed")
        assert len(events) == 1 and events[0]["type"] == "Normal", events
    finally:
        for n in names:
            delete_quietly(kubectl, f"meshworkload/{n}", scratch_namespace)
        delete_quietly(kubectl, f"aifactory/{site}")


def test_a_higher_priority_workload_preempts_a_lower_one(
    kubectl: Kubectl, fresh_operator: OperatorProcess, scratch_namespace: str
) -> None:
    """A low-priority workload placed on a site of ours; a higher-priority one that fits
    only in its place is placed and the low one is Preempted, its message and Warning
    event naming the high one (namespace/name). Deleting the high one lets it back."""
    suffix = unique_name("prio").split("-")[1]
    model, site = f"e2e-npu-{suffix}", f"e2e-prio-{suffix}"
    low, high = "low", "high"
    low_key, high_key = f"{scratch_namespace}/{low}", f"{scratch_namespace}/{high}"
    wait_for("every example workload to be solved", lambda: settled(kubectl))
    try:
        kubectl.apply_obj(isolated_factory(site, model, count=1000))
        kubectl.apply_obj(own_workload(scratch_namespace, low, model, 600, priority=100))
        wait_for("the low-priority workload placed", lambda: _phase(kubectl, low_key, "Placed"), WAIT_S)
        seen = event_counts(kubectl, scratch_namespace, low)

        kubectl.apply_obj(own_workload(scratch_namespace, high, model, 600, priority=500))
        placed = wait_for("the high-priority workload placed", lambda: _phase(kubectl, high_key, "Placed"), WAIT_S)
        assert placed["sites"] == site, placed
        preempted = wait_for("the low-priority workload preempted",
                             lambda: _phase(kubectl, low_key, "Preempted"), WAIT_S)
        assert f"its capacity went to higher-priority {high_key}" in preempted["message"], preempted
        assert preempted["message"].startswith(f"preempted from {site}"), preempted
        events = new_events(kubectl, scratch_namespace, low, seen, reason="Preempted")
        assert [(e["type"], e["message"]) for e in events] == [("Warning", preempted["message"])], events

        kubectl("delete", "meshworkload", high, "-n", scratch_namespace)
        wait_for("the low-priority workload placed again", lambda: _phase(kubectl, low_key, "Placed"), WAIT_S)
        events = new_events(kubectl, scratch_namespace, low, seen, reason="Rescheduled")
        assert len(events) == 1, events
    finally:
        for n in (low, high):
            delete_quietly(kubectl, f"meshworkload/{n}", scratch_namespace)
        delete_quietly(kubectl, f"aifactory/{site}")


# --------------------------------------------------------------------------- fleet windows


# 22:00 in Los Angeles, when vehicles-california's first window opens (06:00 UTC)
WINDOW_OPENS = "2026-11-22T06:00:00+00:00"
CLOCK_START = "2026-11-21T21:59:40-08:00"
EXAMPLE_SITES = {
    (doc["kind"].lower(), doc["metadata"]["name"])
    for path in yaml_files(EXAMPLES_DIR) for doc in load_documents(path) if doc["kind"] in ("AIFactory", "EdgeFleet")
}


def _example_objects(kubectl: Kubectl) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every example object (kind, namespace, name) -> as stored."""
    found = {}
    for plural, name in sorted(EXAMPLE_SITES):
        found[(plural, "", name)] = kubectl.json("get", plural, name)
    for key, item in workloads(kubectl).items():
        namespace, name = key.split("/")
        found[("meshworkload", namespace, name)] = item
    return found


def _restore_statuses(kubectl: Kubectl, saved: dict[tuple[str, str, str], dict[str, Any]]) -> None:
    """Put back the statuses of the example objects as they were (the injected clock's
    plan is for another time of day than the real one)."""
    for (plural, namespace, name), item in saved.items():
        status = item.get("status")
        op = {"op": "replace", "path": "/status", "value": status} if status else {"op": "remove", "path": "/status"}
        args = ["patch", f"{plural}/{name}", "--subresource=status", "--type=json", "-p", json.dumps([op])]
        kubectl(*args, *(["-n", namespace] if namespace else []), check=False)


def test_a_fleet_window_opening_places_work_without_any_change(
    kubectl: Kubectl, operator_env: tuple[Path, str, Path]
) -> None:
    """The operator's clock starts 20 s before 22:00 in Los Angeles: dashcam indexing
    (vehicle-ai5 only, so vehicles-california only) cannot run while the cars are
    offline; at 22:00 the loop wakes by itself and places it, and the fleet's Offline
    condition turns False, while no object changes (every generation stays)."""
    kubeconfig, namespace, logs = operator_env
    dashcam = DASHCAM.split("/")[1]
    saved = _example_objects(kubectl)
    generations = {k: v["metadata"]["generation"] for k, v in saved.items()}
    fleet_events = event_counts(kubectl, SITE_EVENTS, "vehicles-california")
    dashcam_events = event_counts(kubectl, "batch", dashcam)
    was_placed = (saved[("meshworkload", "batch", dashcam)].get("status") or {}).get("phase") == "Placed"
    workload = StatusRecorder(kubectl, f"meshworkload/{dashcam}", "batch")
    fleet = StatusRecorder(kubectl, "edgefleet/vehicles-california")
    log_path = logs / f"{unique_name('operator-clock')}.log"
    process = OperatorProcess(kubeconfig, namespace, log_path, extra_env={
        "MESHPLANE_CLOCK_START": CLOCK_START, "MESHPLANE_CLOCK_RATE": "1",
    })
    try:
        wait_for("the operator to be ready", process.ready, timeout_s=60)
        wait_for(f"the dashcam indexing placed at 22:00 ({WINDOW_OPENS})",
                 lambda: _phase(kubectl, DASHCAM, "Placed"), timeout_s=90)
        time.sleep(1)  # the fleet's status is patched in the same solve
        ran = solves(log_path)
        early = [i for i, s in enumerate(ran) if s["window"] == WINDOW_OPENS]
        assert early, f"no solve before 22:00 planned to wake at {WINDOW_OPENS}: {ran}\n{process.tail()}"
        assert any(s["window"] != WINDOW_OPENS for s in ran[early[-1] + 1:]), (
            f"no solve at the window: {ran}\n{process.tail()}"
        )

        statuses = workload.statuses()
        phases = [s.get("phase") for s in statuses]
        offline_at = [i for i, p in enumerate(phases) if p in ("Unschedulable", "Preempted")]
        assert offline_at and phases[-1] == "Placed", statuses
        # a workload placed before (the real clock in a window) is Preempted, else
        # Unschedulable. "Before" is what the store held when this operator solved, as
        # recorded: the example objects are shared, and near 06:00 or 22:00 in Los Angeles
        # an operator on the real clock can place or preempt it after ``saved`` was read
        last_offline = statuses[offline_at[-1]]
        held = [p for p in phases[:offline_at[-1]] if p is not None]
        prior = held[-1] if held else ("Placed" if was_placed else None)
        # (a Preempted workload whose spec did not change stays Preempted: its story)
        expected = "Preempted" if prior in ("Placed", "Preempted") else "Unschedulable"
        assert last_offline["phase"] == expected and "offline" in last_offline["message"], last_offline
        if expected == "Unschedulable":
            assert "offline now" in last_offline["message"], last_offline
        placed = _status(kubectl, DASHCAM)
        assert placed["sites"] == "vehicles-california", placed
        events = new_events(kubectl, "batch", dashcam, dashcam_events)
        assert {e["reason"] for e in events} >= {"Rescheduled" if was_placed else "Placed"}, events

        offline = [conditions_of(s).get("Offline", {}).get("status") for s in fleet.statuses()]
        assert "True" in offline and offline[-1] == "False", fleet.statuses()
        assert offline.index("True") < len(offline) - 1
        online = new_events(kubectl, SITE_EVENTS, "vehicles-california", fleet_events, reason="Online")
        assert len(online) == 1, online

        after = {k: v["metadata"]["generation"] for k, v in _example_objects(kubectl).items()}
        assert after == generations, "an object changed during the test"
        assert process.process.poll() is None
    finally:
        workload.close()
        fleet.close()
        process.stop()
        _restore_statuses(kubectl, saved)


# --------------------------------------------------------------------------- refused objects


def test_an_object_the_core_refuses_gets_invalid_spec_and_the_rest_carries_on(
    kubectl: Kubectl, fresh_operator: OperatorProcess
) -> None:
    """An EdgeFleet whose window is in time zone Mars/Olympus: the CRD's pattern lets it
    through, the models check IANA names. Its status says InvalidSpec naming the field,
    one Warning InvalidSpec event says so too, the operator keeps running and every
    example workload keeps its placement; fixing the zone makes it a site like others."""
    name = unique_name("e2e-mars")
    fleet = {
        "apiVersion": "meshplane.io/v1alpha1", "kind": "EdgeFleet", "metadata": {"name": name},
        "spec": {
            "region": ISOLATED_REGION, "country": ISOLATED_COUNTRY, "deviceClass": "robot", "devices": 100,
            "optInRatio": 0.5,
            "perDevice": {"acceleratorModel": f"e2e-rover-{name[-6:]}", "tokensPerSecond": 60, "watts": 130,
                          "memoryGiB": 16},
            "availability": [{"start": "00:00", "end": "23:59", "timezone": "Mars/Olympus", "onlineRatio": 0.5}],
            "maxFleetMW": 1, "uplink": {"latencyMs": 5, "bandwidthMbps": 500},
        },
    }
    current = wait_for("every example workload to be solved", lambda: settled(kubectl))
    before = _placements(current)
    solves_before = len(solves(fresh_operator.log_path))
    try:
        kubectl.apply_obj(fleet)  # the API server accepts it
        status = wait_for("the fleet's InvalidSpec status", lambda: current_status(kubectl, f"edgefleet/{name}"),
                          WAIT_S)
        ready = conditions_of(status)["Ready"]
        assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec"), status
        assert "spec.availability[0].timezone" in ready["message"] and "Mars/Olympus" in ready["message"], ready
        events = wait_for("the InvalidSpec event", lambda: new_events(kubectl, SITE_EVENTS, name, {}, "InvalidSpec"))
        assert [(e["type"], e["involvedObject"]["kind"]) for e in events] == [("Warning", "EdgeFleet")], events
        assert "spec.availability[0].timezone" in events[0]["message"]

        assert fresh_operator.process.poll() is None and healthy(fresh_operator) and fresh_operator.ready()
        assert len(solves(fresh_operator.log_path)) > solves_before
        assert _placements(wait_for("the example mesh solved", lambda: settled(kubectl))) == before

        patch_spec(kubectl, f"edgefleet/{name}", {"availability": [
            {"start": "00:00", "end": "23:59", "timezone": "UTC", "onlineRatio": 0.5}]})
        fixed = wait_for("the fixed fleet's status", lambda: (
            s := current_status(kubectl, f"edgefleet/{name}")) and "Offline" in conditions_of(s) and s, WAIT_S)
        assert conditions_of(fixed)["Ready"]["reason"] != "InvalidSpec", fixed
        assert len(new_events(kubectl, SITE_EVENTS, name, {}, "InvalidSpec")) == 1
        assert _placements(wait_for("the example mesh solved", lambda: settled(kubectl))) == before
    finally:
        delete_quietly(kubectl, f"edgefleet/{name}")
