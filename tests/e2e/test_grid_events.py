"""Grid events planned ahead, against the real API server, as a real ``meshplane-operator``
process with the chart's rights (tests/e2e/operator_support.py).

Every test owns a factory of its own (an isolated region and country, an accelerator
model only it has: no other workload can use it), a namespace with its workloads and
its GridEvents, all with unique names. Times are real: events start seconds ahead,
with leads of seconds, and the operator's own clock decides.

The factory: 1 MW firm + 1 MW flexible, PUE 1.0, 2,000 devices of 1 kW. A firm
(non-interruptible) workload of 900 devices and four interruptible ones of 250 devices
each: 1.9 MW in all, so the interruptible work lives partly on flexible power. A limit of
1.5 MW (a 25 % cut of the factory's 2 MW) curtails 0.5 MW of flexible power: two of the
interruptible workloads must leave, ``leadTime`` before the start, and come back after
the end.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.e2e_support import Kubectl, unique_name
from tests.e2e.operator_support import (
    API_VERSION,
    ISOLATED_COUNTRY,
    ISOLATED_REGION,
    OperatorProcess,
    StatusRecorder,
    conditions_of,
    current_status,
    delete_quietly,
    events_about,
    get_object,
    wait_for,
)

SITE_EVENTS = "default"  # where the operator records the Events of cluster-scoped objects
FIRM_MW, FLEXIBLE_MW = 1.0, 1.0
FIRM_DEVICES, INTERRUPTIBLE_DEVICES, INTERRUPTIBLE = 900, 250, 4
# how late after its instant a move may show: the loop's wake-up, one solve, the write and the watch
MOVE_SLACK_S = 6.0


def _utc(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class GridMesh:
    """One test's factory, namespace, workloads and GridEvents (deleted at the end)."""

    def __init__(self, kubectl: Kubectl) -> None:
        self.kubectl = kubectl
        suffix = unique_name("grid").split("-", 1)[1]
        self.factory = f"e2e-grid-{suffix}"
        self.model = f"e2e-gpu-{suffix}"
        self.namespace = unique_name("e2e-grid")
        self.events: list[str] = []
        self.firm = "firm-work"
        self.interruptible = [f"flex-{i}" for i in range(INTERRUPTIBLE)]

    def create(self) -> None:
        self.kubectl("create", "namespace", self.namespace)
        factory = {
            "apiVersion": API_VERSION, "kind": "AIFactory", "metadata": {"name": self.factory},
            "spec": {
                "region": ISOLATED_REGION, "country": ISOLATED_COUNTRY,
                "power": {"firmMW": FIRM_MW, "flexibleMW": FLEXIBLE_MW, "pue": 1.0},
                "acceleratorPools": [{"model": self.model, "count": 2000, "wattsPerDevice": 1000,
                                      "tokensPerSecondPerDevice": 1000, "memoryGiB": 64}],
            },
        }
        workloads = [self._workload(self.firm, FIRM_DEVICES, interruptible=False)]
        workloads += [self._workload(name, INTERRUPTIBLE_DEVICES, interruptible=True) for name in self.interruptible]
        self.apply(factory, *workloads)
        wait_for("every workload placed", lambda: all(self.phase(n) == "Placed" for n in self.all_workloads()), 90)

    def all_workloads(self) -> list[str]:
        return [self.firm, *self.interruptible]

    def _workload(self, name: str, devices: int, interruptible: bool) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION, "kind": "MeshWorkload", "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"type": "batch" if interruptible else "training", "accelerators": devices,
                     "acceleratorModels": [self.model], "interruptible": interruptible,
                     "priority": 100 if interruptible else 500},
        }

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))

    def event(self, name: str, start: float, intervals: list[dict[str, Any]], lead: str = "PT10S",
              **extra: Any) -> str:
        """A GridEvent of this factory starting at ``start`` (time.time())."""
        full = f"{self.factory}-{name}"
        first, *rest = intervals
        body = {
            "apiVersion": API_VERSION, "kind": "GridEvent", "metadata": {"name": full},
            "spec": {"factory": self.factory, "leadTime": lead, "source": {"manual": True},
                     "intervals": [{"start": _utc(start), **first}, *rest], **extra},
        }
        self.apply(body)
        self.events.append(full)
        return full

    def patch_event(self, name: str, spec: dict[str, Any]) -> None:
        self.kubectl("patch", f"gridevent/{name}", "--type=merge", "-p", json.dumps({"spec": spec}))

    def status(self, name: str) -> dict[str, Any]:
        return current_status(self.kubectl, f"meshworkload/{name}", self.namespace)

    def phase(self, name: str) -> str | None:
        return self.status(name).get("phase")

    def preempted(self) -> list[str]:
        return [n for n in self.interruptible if self.phase(n) == "Preempted"]

    def event_status(self, name: str) -> dict[str, Any]:
        return current_status(self.kubectl, f"gridevent/{name}")

    def factory_status(self) -> dict[str, Any]:
        return current_status(self.kubectl, f"aifactory/{self.factory}")

    def delete(self) -> None:
        for name in self.events:
            delete_quietly(self.kubectl, f"gridevent/{name}")
        self.kubectl("delete", "namespace", self.namespace, "--ignore-not-found", "--wait=true", "--timeout=180s",
                     check=False)
        delete_quietly(self.kubectl, f"aifactory/{self.factory}")


@pytest.fixture()
def grid_mesh(kubectl: Kubectl, fresh_operator: OperatorProcess) -> Iterator[GridMesh]:
    mesh = GridMesh(kubectl)
    try:
        mesh.create()
        yield mesh
    finally:
        mesh.delete()


def _phase_changes(recorder: StatusRecorder) -> dict[str, list[tuple[float, str]]]:
    """Workload name -> its (time seen, phase) transitions, from a recorder of the namespace."""
    changes: dict[str, list[tuple[float, str]]] = {}
    for seen_at, obj in recorder.timed_versions():
        phase = (obj.get("status") or {}).get("phase")
        history = changes.setdefault(obj["metadata"]["name"], [])
        if phase and (not history or history[-1][1] != phase):
            history.append((seen_at, phase))
    return changes


def _preempted_counts(recorder: StatusRecorder, names: list[str]) -> list[int]:
    """How many of ``names`` were Preempted after each version the recorder saw, repeats merged."""
    phases: dict[str, str] = {}
    counts: list[int] = []
    for _, obj in recorder.timed_versions():
        phase = (obj.get("status") or {}).get("phase")
        if phase:
            phases[obj["metadata"]["name"]] = phase
        count = sum(1 for name in names if phases.get(name) == "Preempted")
        if not counts or counts[-1] != count:
            counts.append(count)
    return counts


def _grid_event_reasons(kubectl: Kubectl, name: str) -> list[str]:
    found = events_about(kubectl, SITE_EVENTS, name)
    return [e["reason"] for e in sorted(found, key=lambda e: e["metadata"]["creationTimestamp"])]


# --------------------------------------------------------------------------- a day-ahead cut, scaled


def test_a_scheduled_cut_moves_work_at_start_minus_lead_and_returns_it_after_the_end(
    kubectl: Kubectl, grid_mesh: GridMesh
) -> None:
    """A 25 % cut (limit 1.5 MW of 2 MW) for three 10 s intervals, announced 25 s ahead
    with a 10 s lead: two interruptible workloads are preempted at start - lead (not
    earlier, not later), their message naming the event; the event goes Scheduled →
    Preparing → Active → Completed with an Event each; the factory draws at most the
    limit while it is in force; after the end the work comes back."""
    mesh = grid_mesh
    recorder = StatusRecorder(kubectl, "meshworkloads", mesh.namespace)
    try:
        wait_for("the recorder to see the workloads", lambda: len(_phase_changes(recorder)) == 1 + INTERRUPTIBLE, 30)
        start = float(int(time.time()) + 25)  # whole seconds: the event's start is written to the second
        lead_s, length_s = 10, 30
        name = mesh.event("day-ahead", start, [{"duration": "PT10S", "importLimitMW": 1.5},
                                               {"duration": "PT10S", "importLimitMW": 1.5},
                                               {"duration": "PT10S", "importLimitMW": 1.5}])
        scheduled = wait_for("the event Scheduled", lambda: (s := mesh.event_status(name)).get("phase") == "Scheduled"
                             and s, 20)
        assert scheduled["curtailedMW"] == 0 and scheduled["peakCurtailedMW"] == pytest.approx(0.5), scheduled
        assert scheduled["limitMW"] == 1.5 and len(scheduled["schedule"]) == 3, scheduled
        assert mesh.preempted() == [], "work left before start - lead"

        wait_for("two interruptible workloads preempted", lambda: len(mesh.preempted()) == 2, lead_s + 20)
        preparing = wait_for("the event Preparing with its moves", lambda: (
            s := mesh.event_status(name)).get("phase") == "Preparing" and s.get("movedCount") == 2 and s, 15)
        assert sorted(preparing["movedWorkloads"]) == sorted(f"{mesh.namespace}/{n}" for n in mesh.preempted())
        for out in mesh.preempted():
            message = mesh.status(out)["message"]
            assert f"for grid event {name}" in message and mesh.factory in message, message
        assert mesh.phase(mesh.firm) == "Placed", "firm work must never leave for a curtailment"

        active = wait_for("the event Active", lambda: (s := mesh.event_status(name)).get("phase") == "Active" and s,
                          lead_s + 15)
        assert active["curtailedMW"] == pytest.approx(0.5), active
        site = mesh.factory_status()
        assert site["power"]["allocatedMW"] <= 1.5 + 1e-6, site["power"]
        curtailed = conditions_of(site)["Curtailed"]
        assert curtailed["status"] == "True" and curtailed["reason"] == "GridEvent" and name in curtailed["message"]

        wait_for("the work back after the end", lambda: mesh.preempted() == [], length_s + 30)
        completed = wait_for("the event Completed", lambda: (s := mesh.event_status(name)).get("phase") == "Completed"
                             and s, 15)
        assert completed["movedCount"] == 2, completed
        changes = _phase_changes(recorder)
        moved = [w for w in mesh.interruptible if len(changes.get(w, [])) > 1]
        assert len(moved) == 2, changes
        for workload in moved:
            history = changes[workload]
            assert [p for _, p in history] == ["Placed", "Preempted", "Placed"], history
            left_at, returned_at = history[1][0], history[2][0]
            assert start - lead_s - 0.5 <= left_at <= start - lead_s + MOVE_SLACK_S, (
                f"{workload} left {left_at - (start - lead_s):+.1f} s from start - lead")
            assert start + length_s - 0.5 <= returned_at <= start + length_s + MOVE_SLACK_S, (
                f"{workload} returned {returned_at - (start + length_s):+.1f} s from the end")
        reasons = _grid_event_reasons(kubectl, name)
        for reason in ("GridEventScheduled", "PreparingForCurtailment", "CurtailmentStarted", "Completed"):
            assert reasons.count(reason) == 1, reasons
        assert "LateNotice" not in reasons, reasons
    finally:
        recorder.close()


# --------------------------------------------------------------------------- late notice, overlaps, changes


def test_late_notice_moves_at_once_and_says_so(kubectl: Kubectl, grid_mesh: GridMesh) -> None:
    """An event announced 8 s before its start with the default 15 min lead: the work
    moves at once (not at the start), and the event carries LateNotice (condition and
    a Warning Event)."""
    mesh = grid_mesh
    announced = time.time()
    name = mesh.event("late", announced + 8, [{"duration": "PT20S", "curtailedMW": 0.5}], lead="PT15M")
    wait_for("two interruptible workloads preempted", lambda: len(mesh.preempted()) == 2, 20)
    assert time.time() < announced + 8, "the work did not move before the start"
    status = wait_for("LateNotice", lambda: (s := mesh.event_status(name)) and
                      conditions_of(s).get("LateNotice", {}).get("status") == "True" and s, 15)
    assert status["phase"] == "Preparing", status
    warnings = [e for e in events_about(kubectl, SITE_EVENTS, name, "LateNotice") if e["type"] == "Warning"]
    assert len(warnings) == 1, warnings


def test_overlapping_events_the_most_restrictive_wins(kubectl: Kubectl, grid_mesh: GridMesh) -> None:
    """E1 curtails 0.3 MW over [t+8, t+38); E2 0.5 MW over [t+18, t+28) (leads 4 s).
    Needed shed: 0.2 MW (one workload) under E1 alone, 0.4 MW (two) while both are in
    force; at every instant the larger curtailment applies, and the factory's
    allocation stays within its power in force."""
    mesh = grid_mesh
    recorder = StatusRecorder(kubectl, "meshworkloads", mesh.namespace)
    try:
        wait_for("the recorder to see the workloads", lambda: len(_phase_changes(recorder)) == 1 + INTERRUPTIBLE, 30)
        t0 = time.time()
        e1 = mesh.event("wide", t0 + 8, [{"duration": "PT30S", "curtailedMW": 0.3}], lead="PT4S")
        e2 = mesh.event("deep", t0 + 18, [{"duration": "PT10S", "curtailedMW": 0.5}], lead="PT4S")
        site = wait_for("E2 active", lambda: mesh.event_status(e2).get("phase") == "Active" and mesh.factory_status(),
                        40)
        wait_for("two out while both are in force", lambda: len(mesh.preempted()) == 2, 10)
        site = mesh.factory_status()
        assert site["power"]["allocatedMW"] <= FIRM_MW + FLEXIBLE_MW - 0.5 + 1e-6, site["power"]
        assert e2 in conditions_of(site)["Curtailed"]["message"], conditions_of(site)["Curtailed"]
        wait_for("back to one out after E2 ends", lambda: len(mesh.preempted()) == 1
                 and mesh.event_status(e2).get("phase") == "Completed", 25)
        assert mesh.event_status(e1).get("phase") == "Active"
        wait_for("everything back after E1 ends", lambda: mesh.preempted() == [], 25)
        # what the watch saw, in order, whatever this test's polls missed: 0, 1, 2, 1, then 0 out
        assert _preempted_counts(recorder, mesh.interruptible) == [0, 1, 2, 1, 0]
    finally:
        recorder.close()


def test_cancelled_before_its_start_moves_nothing_and_after_it_returns_the_work(
    kubectl: Kubectl, grid_mesh: GridMesh
) -> None:
    """Cancelled before start - lead: nothing ever moves, phase Cancelled (and an
    Event). A second event, cancelled while active: the work returns at once."""
    mesh = grid_mesh
    created = time.time()
    early = mesh.event("cancel-early", created + 30, [{"duration": "PT30S", "curtailedMW": 0.5}], lead="PT8S")
    wait_for("scheduled", lambda: mesh.event_status(early).get("phase") == "Scheduled", 15)
    mesh.patch_event(early, {"cancelled": True})
    wait_for("cancelled", lambda: mesh.event_status(early).get("phase") == "Cancelled", 15)
    assert time.time() < created + 22, "cancelled only after its start - lead: the test proves nothing"
    deadline = created + 26  # past its start - lead (22 s after creation)
    while time.time() < deadline:
        assert mesh.preempted() == [], "a cancelled event moved work"
        time.sleep(1)
    assert "Cancelled" in _grid_event_reasons(kubectl, early)

    late = mesh.event("cancel-late", time.time() + 4, [{"duration": "PT60S", "curtailedMW": 0.5}], lead="PT2S")
    wait_for("active with two out", lambda: mesh.event_status(late).get("phase") == "Active"
             and len(mesh.preempted()) == 2, 20)
    cancelled_at = time.time()
    mesh.patch_event(late, {"cancelled": True})
    wait_for("the work back", lambda: mesh.preempted() == [], 20)
    assert time.time() - cancelled_at < 15


def test_a_modified_event_replans(kubectl: Kubectl, grid_mesh: GridMesh) -> None:
    """An active event whose limit is lowered (1.5 → 1.2 MW) sheds more work at once;
    raised back above the load (1.9 MW), the work returns."""
    mesh = grid_mesh
    name = mesh.event("modified", time.time() + 4, [{"duration": "PT90S", "importLimitMW": 1.5}], lead="PT2S")
    wait_for("two out", lambda: len(mesh.preempted()) == 2, 20)
    mesh.patch_event(name, {"intervals": [{"start": mesh.event_status(name)["start"], "duration": "PT90S",
                                           "importLimitMW": 1.2}]})
    wait_for("three out", lambda: len(mesh.preempted()) == 3, 20)
    assert mesh.factory_status()["power"]["allocatedMW"] <= 1.2 + 1e-6
    mesh.patch_event(name, {"intervals": [{"start": mesh.event_status(name)["start"], "duration": "PT90S",
                                           "importLimitMW": 1.9}]})
    wait_for("every workload back", lambda: mesh.preempted() == [], 20)
    status = mesh.event_status(name)
    assert status["movedCount"] == 3, status  # each workload counted once, however often it moved


def test_a_limit_below_firm_power_keeps_firm_work_and_is_reported(kubectl: Kubectl, grid_mesh: GridMesh) -> None:
    """A limit of 0.5 MW (firm power is 1 MW): every bit of flexible power goes, the
    interruptible work leaves, the firm work stays, and the event says LimitBelowFirm
    (condition and Warning) with the shortfall."""
    mesh = grid_mesh
    name = mesh.event("below-firm", time.time() + 3, [{"duration": "PT60S", "importLimitMW": 0.5}], lead="PT2S")
    status = wait_for("LimitBelowFirm", lambda: (s := mesh.event_status(name)) and
                      conditions_of(s).get("LimitBelowFirm", {}).get("status") == "True" and s, 20)
    assert "firm work is kept" in conditions_of(status)["LimitBelowFirm"]["message"]
    wait_for("every interruptible workload out", lambda: len(mesh.preempted()) >= 3, 20)
    assert mesh.phase(mesh.firm) == "Placed"
    warnings = [e for e in events_about(kubectl, SITE_EVENTS, name, "LimitBelowFirm") if e["type"] == "Warning"]
    assert len(warnings) == 1, warnings


# --------------------------------------------------------------------------- crash mid-event


def test_an_operator_killed_mid_event_moves_nothing_twice(
    kubectl: Kubectl, grid_mesh: GridMesh, operator_env: tuple[Any, str, Any], fresh_operator: OperatorProcess
) -> None:
    """The operator is SIGKILLed while an event is active (its two moves made); a new
    one takes over: the event's moved workloads and count stay as they were, no
    workload is preempted again (one Preempted Event each), and the work returns once
    after the end."""
    mesh = grid_mesh
    name = mesh.event("crash", time.time() + 4, [{"duration": "PT25S", "importLimitMW": 1.5}], lead="PT2S")
    wait_for("two out", lambda: len(mesh.preempted()) == 2, 20)
    before = wait_for("the moves recorded", lambda: (s := mesh.event_status(name)).get("movedCount") == 2 and s, 15)
    out = mesh.preempted()
    fresh_operator.kill()
    kubeconfig, namespace, logs = operator_env
    successor = OperatorProcess(kubeconfig, namespace, logs / f"{unique_name('operator')}.log")
    try:
        wait_for("the successor ready", successor.ready, 60)
        time.sleep(3)  # its first solves
        after = mesh.event_status(name)
        assert (after["movedWorkloads"], after["movedCount"]) == (before["movedWorkloads"], 2), after
        assert sorted(mesh.preempted()) == sorted(out)
        wait_for("the work back after the end", lambda: mesh.preempted() == [], 45)
        for workload in out:
            preempted = events_about(kubectl, mesh.namespace, workload, "Preempted")
            assert sum(int(e.get("count") or 1) for e in preempted) == 1, preempted
        assert get_object(kubectl, f"gridevent/{name}") is not None
    finally:
        successor.stop()
