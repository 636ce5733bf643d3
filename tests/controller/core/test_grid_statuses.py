"""GridEvent statuses and Events through ``reconcile``, as the operator runs it: at each
wake-up, the statuses written back before (``changes.with_statuses``), the previous plan
as warm start. One factory of 10 MW firm and 10 MW flexible power, a non-interruptible
workload of 8 MW and an interruptible one of 8 MW (so 6 MW of it on flexible power), and
a grid event that takes all flexible power from 14:00 to 16:00 UTC."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from controller.api.models import GridEventStatus
from controller.api.resources import AIFactory, GridEvent
from controller.core.changes import Event, ObjectRef, changes, grid_event_events, with_statuses
from controller.core.grid_statuses import STALE_ANNOTATION
from controller.core.reconcile import Outcome, Snapshot, reconcile
from tests.controller.core.conftest import CONFIG
from tests.controller.core.test_grid import at_utc, factory, grid_event, interval, workload

FLEX = "team/flex"
FIRM = "team/firm"
NOON = at_utc(12)


def mesh(*events: GridEvent, at: dt.datetime = NOON, f1: AIFactory | None = None) -> Snapshot:
    return Snapshot([f1 or factory("f1", firm=10, flexible=10)], [],
                    [workload("firm", 8000, False, priority=1000), workload("flex", 8000, True, priority=10)],
                    at, grid_events=list(events))


def heat(**options: object) -> GridEvent:
    return grid_event("heat", "f1", [interval("PT2H", at_utc(14), mw=10)], **options)  # type: ignore[arg-type]


def at(snapshot: Snapshot, when: dt.datetime) -> Snapshot:
    return Snapshot(snapshot.factories, snapshot.fleets, snapshot.workloads, when, grid_events=snapshot.grid_events)


def run(snapshot: Snapshot, instants: Sequence[dt.datetime]) -> list[tuple[Snapshot, Outcome, list[Event]]]:
    """The operator at each instant: (the snapshot as stored then, the outcome, its Events)."""
    steps = []
    outcome: Outcome | None = None
    for when in instants:
        snapshot = at(snapshot, when)
        outcome = reconcile(snapshot, CONFIG, outcome.plan if outcome is not None else None)
        steps.append((snapshot, outcome, [e for c in changes(snapshot, outcome) for e in c.events]))
        snapshot = with_statuses(snapshot, outcome)
    return steps


def reasons(events: Sequence[Event], kind: str) -> list[str]:
    return [e.reason for e in events if e.involved.kind == kind]


# ------------------------------------------------------------------ phases, schedule


def test_the_event_goes_through_its_phases_and_says_so_once_each() -> None:
    instants = [at_utc(12), at_utc(13, 45), at_utc(14), at_utc(15), at_utc(16), at_utc(16, 15), at_utc(16, 30),
                at_utc(17), at_utc(18)]
    steps = run(mesh(heat(restore=("PT1H", 2))), instants)
    phases = [outcome.grid_events["heat"].phase for _, outcome, _ in steps]
    assert phases == ["Scheduled", "Preparing", "Active", "Active", "Restoring", "Restoring", "Restoring",
                      "Completed", "Completed"]
    assert [reasons(events, "GridEvent") for _, _, events in steps] == [
        ["GridEventScheduled"], ["PreparingForCurtailment"], ["CurtailmentStarted"], [], ["Restoring"], [], [],
        ["Completed"], [],
    ]
    curtailed = [outcome.grid_events["heat"].curtailed_mw for _, outcome, _ in steps]
    assert curtailed == [0.0, 0.0, 10.0, 10.0, 10.0, 10.0, 5.0, 0.0, 0.0]
    # the interruptible workload leaves at start - lead, not at start, and returns after the ramp
    flex = [outcome.workloads[FLEX].phase for _, outcome, _ in steps]
    assert flex == ["Placed", "Preempted", "Preempted", "Preempted", "Preempted", "Preempted", "Preempted",
                    "Placed", "Placed"]
    assert all(outcome.workloads[FIRM].phase == "Placed" for _, outcome, _ in steps)
    assert reasons(steps[1][2], "MeshWorkload") == ["Preempted"]
    assert reasons(steps[7][2], "MeshWorkload") == ["Rescheduled"]
    preparing = next(e for e in steps[1][2] if e.reason == "PreparingForCurtailment")
    assert preparing.message.startswith("1 workload(s) moved or preempted ahead of the curtailment")


def test_the_schedule_lists_every_level_and_ramp_step() -> None:
    event = grid_event("heat", "f1", [interval("PT1H", at_utc(14), limit=15), interval("PT1H", mw=10)],
                       restore=("PT1H", 2))
    status = reconcile(mesh(event), CONFIG).grid_events["heat"]
    assert [(s.start, s.end, s.curtailed_mw, s.limit_mw) for s in status.schedule] == [
        ("2026-07-14T14:00:00Z", "2026-07-14T15:00:00Z", 5.0, 15.0),
        ("2026-07-14T15:00:00Z", "2026-07-14T16:00:00Z", 10.0, None),
        ("2026-07-14T16:00:00Z", "2026-07-14T16:30:00Z", 10.0, None),
        ("2026-07-14T16:30:00Z", "2026-07-14T17:00:00Z", 5.0, None),
    ]
    assert (status.start, status.end) == ("2026-07-14T14:00:00Z", "2026-07-14T16:00:00Z")  # ramp excluded
    assert (status.limit_mw, status.peak_curtailed_mw, status.curtailed_mw) == (15.0, 10.0, 0.0)
    assert status.observed_generation == 1


# ------------------------------------------------------------------ moved workloads


def test_the_preempted_message_names_the_event() -> None:
    steps = run(mesh(heat()), [at_utc(12), at_utc(13, 45)])
    flex = steps[1][1].workloads[FLEX]
    assert flex.phase == "Preempted"
    assert flex.message.startswith(
        "preempted from f1: f1 is curtailed by 10 MW of its 10 MW flexible power for grid event heat")
    preempted = next(e for e in steps[1][2] if e.reason == "Preempted")
    assert preempted.type == "Warning" and "grid event heat" in preempted.message


def test_moved_workloads_are_recorded_once_and_kept_across_plans() -> None:
    steps = run(mesh(heat()), [at_utc(12), at_utc(13, 45), at_utc(14), at_utc(16, 30)])
    statuses = [outcome.grid_events["heat"] for _, outcome, _ in steps]
    assert [(s.moved_workloads, s.moved_count) for s in statuses] == [
        ([], 0), ([FLEX], 1), ([FLEX], 1), ([FLEX], 1),  # kept, also once the work has returned
    ]
    assert steps[3][1].workloads[FLEX].phase == "Placed"


def test_a_restarted_operator_does_not_count_a_move_twice() -> None:
    """The operator wrote the GridEvent's status, then stopped before the workload's: the
    next one plans the same move again from the workload's stale status."""
    settled = with_statuses(mesh(heat()), reconcile(mesh(heat()), CONFIG))
    preparing = at(settled, at_utc(13, 45))
    first = reconcile(preparing, CONFIG)
    assert first.grid_events["heat"].moved_count == 1
    written = [e.model_copy(update={"status": first.grid_events[e.metadata.name]}) for e in preparing.grid_events]
    restarted = Snapshot(preparing.factories, preparing.fleets, preparing.workloads, preparing.at,
                         grid_events=written)
    assert restarted.workloads[1].status is not None and restarted.workloads[1].status.phase == "Placed"
    again = reconcile(restarted, CONFIG)  # cold: a new process has no previous plan
    assert again.workloads[FLEX].phase == "Preempted"
    status = again.grid_events["heat"]
    assert (status.moved_workloads, status.moved_count) == ([FLEX], 1)
    ref = ObjectRef.of(written[0])
    assert grid_event_events(ref, written[0].status, status) == ()


def test_two_events_each_keep_their_own_moves() -> None:
    f1 = factory("f1", firm=10, flexible=10)
    f2 = factory("f2", firm=10, flexible=10, price=500)  # dearer: work goes to f1 first
    later = grid_event("later", "f2", [interval("PT1H", at_utc(15), mw=10)])
    snapshot = Snapshot([f1, f2], [], [workload("firm", 8000, False, 1000), workload("flex", 8000, True, 10),
                                       workload("firm2", 8000, False, 1000)],
                        at_utc(12), grid_events=[heat(), later])
    steps = run(snapshot, [at_utc(12), at_utc(13, 45), at_utc(14), at_utc(14, 45), at_utc(15)])
    placed_on = [outcome.workloads[FLEX].sites for _, outcome, _ in steps]
    assert placed_on[0] == "f1"
    assert placed_on[1] == "f2"  # moved ahead of heat to the dearer factory, which still has room
    assert steps[1][1].grid_events["heat"].moved_workloads == [FLEX]
    assert steps[3][1].workloads[FLEX].phase == "Preempted"  # and preempted ahead of later
    assert [(o.grid_events["heat"].moved_count, o.grid_events["later"].moved_count) for _, o, _ in steps] == [
        (0, 0), (1, 0), (1, 0), (1, 1), (1, 1),
    ]
    assert steps[3][1].workloads[FLEX].message.startswith(
        "preempted from f2: f2 is curtailed by 10 MW of its 10 MW flexible power for grid event later")


# ------------------------------------------------------------------------ conditions


def _condition(status: GridEventStatus, type_: str) -> tuple[str, str, str] | None:
    found = next((c for c in status.conditions if c.type == type_), None)
    return (found.status, found.reason, found.message) if found is not None else None


def test_a_limit_below_firm_is_reported_once_and_firm_work_is_kept() -> None:
    event = grid_event("low", "f1", [interval("PT2H", at_utc(14), limit=6)])
    steps = run(mesh(event), [at_utc(12), at_utc(13), at_utc(14), at_utc(15)])
    status, reason, message = _condition(steps[0][1].grid_events["low"], "LimitBelowFirm")  # type: ignore[misc]
    assert (status, reason) == ("True", "LimitBelowFirm")
    assert message == (
        "import limit 6.0 MW is below the firm power of f1 (10.0 MW) from 2026-07-14T14:00:00Z: all flexible "
        "power is withdrawn and firm work is kept, drawing up to 4.0 MW over the limit")
    warnings = [[e.reason for e in events if e.type == "Warning" and e.involved.kind == "GridEvent"]
                for _, _, events in steps]
    assert warnings == [["LimitBelowFirm"], [], [], []]
    active = steps[2][1]
    assert active.workloads[FIRM].phase == "Placed"  # 8 MW of firm work over a 6 MW limit: kept
    assert active.workloads[FLEX].phase == "Preempted"
    assert active.plan.sites["f1"].power_mw_used == pytest.approx(8.0)
    curtailed = next(c for c in active.factories["f1"].conditions if c.type == "Curtailed")
    assert curtailed.message.endswith("; import limit 6.0 MW is below firm power: firm work is kept")


def test_a_late_notice_is_reported_once_and_work_moves_at_once() -> None:
    before = run(mesh(), [at_utc(13, 50)])  # placed, before anyone knows of the event
    settled = with_statuses(*before[0][:2])
    assert before[0][1].workloads[FLEX].phase == "Placed"
    announced = Snapshot(settled.factories, [], settled.workloads, at_utc(13, 55),
                         grid_events=[heat(created=at_utc(13, 55))])
    steps = run(announced, [at_utc(13, 55), at_utc(14), at_utc(15)])
    condition = _condition(steps[0][1].grid_events["heat"], "LateNotice")
    assert condition == ("True", "LateNotice",
                         "announced at 2026-07-14T13:55:00Z, less than its lead time PT15M before its start "
                         "2026-07-14T14:00:00Z: work was moved at once")
    assert steps[0][1].workloads[FLEX].phase == "Preempted"
    assert steps[0][1].grid_events["heat"].phase == "Preparing"
    warnings = [[e.reason for e in events if e.type == "Warning" and e.involved.kind == "GridEvent"]
                for _, _, events in steps]
    assert warnings == [["LateNotice"], [], []]
    # announced in time: no such condition
    on_time = reconcile(mesh(heat(created=at_utc(13, 45)), at=at_utc(13, 50)), CONFIG).grid_events["heat"]
    assert _condition(on_time, "LateNotice") is None


def test_a_stale_source_is_reported_on_the_event_and_its_factory_and_lifted() -> None:
    stale = heat(annotations={STALE_ANNOTATION: "2026-07-14T13:00:00Z"})
    steps = run(mesh(stale), [at_utc(13, 10), at_utc(13, 20)])
    status = steps[0][1].grid_events["heat"]
    condition = _condition(status, "SourceStale")
    assert condition is not None and condition[:2] == ("True", "VtnUnreachable")
    assert "cannot reach the VTN since 2026-07-14T13:00:00Z" in condition[2] and "never lifted early" in condition[2]
    factory_condition = next(c for c in steps[0][1].factories["f1"].conditions if c.type == "GridSourceStale")
    assert (factory_condition.status, factory_condition.reason) == ("True", "VtnUnreachable")
    assert "grid event(s) heat" in factory_condition.message
    first = [(e.involved.kind, e.type, e.reason) for e in steps[0][2] if e.type == "Warning"]
    assert first == [("AIFactory", "Warning", "GridSourceStale"), ("GridEvent", "Warning", "SourceStale")]
    assert [e for e in steps[1][2] if e.type == "Warning"] == []  # once
    # the VEN reads the VTN again: the annotation goes, both conditions turn False
    settled = with_statuses(steps[1][0], steps[1][1])
    fresh = [e.model_copy(update={"metadata": e.metadata.model_copy(update={"annotations": {}})})
             for e in settled.grid_events]
    back = Snapshot(settled.factories, [], settled.workloads, at_utc(13, 30), grid_events=fresh)
    outcome = reconcile(back, CONFIG, steps[1][1].plan)
    assert _condition(outcome.grid_events["heat"], "SourceStale")[:2] == ("False", "VtnReachable")  # type: ignore[index]
    lifted = next(c for c in outcome.factories["f1"].conditions if c.type == "GridSourceStale")
    assert (lifted.status, lifted.reason) == ("False", "VtnReachable")
    events = [(e.involved.kind, e.type, e.reason) for c in changes(back, outcome) for e in c.events]
    assert events == [("AIFactory", "Normal", "GridSourceRestored")]


def test_a_stale_cancelled_event_does_not_mark_its_factory_stale() -> None:
    stale = heat(annotations={STALE_ANNOTATION: "2026-07-14T13:00:00Z"}, cancelled=True)
    outcome = reconcile(mesh(stale, at=at_utc(13)), CONFIG)
    assert [c.type for c in outcome.factories["f1"].conditions if c.type == "GridSourceStale"] == []
    assert outcome.grid_events["heat"].phase == "Cancelled"


def test_an_event_of_a_missing_factory_is_not_valid_and_changes_nothing() -> None:
    orphan = grid_event("orphan", "no-such-factory", [interval("PT2H", at_utc(12), mw=10)])
    outcome = reconcile(mesh(orphan, at=at_utc(13)), CONFIG)
    status = outcome.grid_events["orphan"]
    assert _condition(status, "Valid") == (
        "False", "FactoryNotFound", "AIFactory no-such-factory does not exist: the event applies to nothing")
    assert status.schedule == [] and status.curtailed_mw == 0.0 and status.phase == "Active"
    assert outcome.workloads[FLEX].phase == "Placed"
    assert _condition(reconcile(mesh(heat()), CONFIG).grid_events["heat"], "Valid") == ("True", "FactoryFound", "")


def test_a_cancelled_event_lets_the_work_return_at_once() -> None:
    steps = run(mesh(heat()), [at_utc(12), at_utc(14)])
    assert steps[1][1].workloads[FLEX].phase == "Preempted"
    settled = with_statuses(steps[1][0], steps[1][1])
    cancelled = [e.model_copy(update={"spec": e.spec.model_copy(update={"cancelled": True}),
                                      "metadata": e.metadata.model_copy(update={"generation": 2})})
                 for e in settled.grid_events]
    snapshot = Snapshot(settled.factories, [], settled.workloads, at_utc(14, 5), grid_events=cancelled)
    outcome = reconcile(snapshot, CONFIG, steps[1][1].plan)
    assert outcome.workloads[FLEX].phase == "Placed"
    status = outcome.grid_events["heat"]
    assert (status.phase, status.curtailed_mw, status.observed_generation) == ("Cancelled", 0.0, 2)
    assert status.moved_workloads == [FLEX]  # the record stays
    events = {(e.involved.kind, e.reason) for c in changes(snapshot, outcome) for e in c.events}
    assert {("GridEvent", "Cancelled"), ("MeshWorkload", "Rescheduled"), ("AIFactory", "CurtailmentLifted")} <= events


# ------------------------------------------------------------------- quiet, factory


@pytest.mark.parametrize("when", [at_utc(12), at_utc(13, 45), at_utc(14), at_utc(16, 10), at_utc(17)])
def test_an_unchanged_mesh_at_the_same_time_writes_nothing(when: dt.datetime) -> None:
    event = heat(restore=("PT1H", 2), created=at_utc(13, 50), annotations={STALE_ANNOTATION: "2026-07-14T13:00:00Z"})
    other = grid_event("low", "f1", [interval("PT1H", at_utc(13), limit=5)])
    steps = run(mesh(event, other), [at_utc(11), when])
    settled = with_statuses(steps[-1][0], steps[-1][1])
    assert list(changes(settled, reconcile(settled, CONFIG, steps[-1][1].plan))) == []
    assert list(changes(settled, reconcile(settled, CONFIG))) == []  # also cold, as after a restart


def test_the_factory_condition_names_the_event_in_force_and_the_one_prepared_for() -> None:
    steps = run(mesh(heat()), [at_utc(12), at_utc(13, 45), at_utc(14), at_utc(16)])
    curtailed = [next(c for c in outcome.factories["f1"].conditions if c.type == "Curtailed")
                 for _, outcome, _ in steps]
    assert [(c.status, c.reason, c.message) for c in curtailed] == [
        ("False", "NotCurtailed", "20.0 MW usable"),
        ("False", "NotCurtailed",
         "20.0 MW usable; preparing for grid event heat: interruptible work planned within 10.0 MW"),
        ("True", "GridEvent", "10.0 of 10.0 MW flexible power curtailed; 10.0 MW usable (grid event heat)"),
        ("False", "NotCurtailed", "20.0 MW usable"),
    ]
    factory_events = [[(e.type, e.reason) for e in events if e.involved.kind == "AIFactory"] for _, _, events in steps]
    assert factory_events == [[], [], [("Warning", "Curtailed")], [("Normal", "CurtailmentLifted")]]
    # with a manual curtailment in force too, the event is named only while it is the larger
    manual = factory("f1", firm=10, flexible=10, curtailed=4)
    condition = next(c for c in reconcile(mesh(heat(), at=at_utc(13), f1=manual), CONFIG).factories["f1"].conditions
                     if c.type == "Curtailed")
    assert (condition.status, condition.reason, condition.message) == (
        "True", "GridCurtailment", "4.0 of 10.0 MW flexible power curtailed; 16.0 MW usable")
