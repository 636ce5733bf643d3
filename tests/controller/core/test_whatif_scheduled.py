"""What-if of a scheduled curtailment: ``curtail SITE=MW from TIME for DURATION`` (text and
JSON ``{op, target, value, from, for}``), its one-line errors, and the plan it makes: a
manual GridEvent of one interval, planned at TIME unless a ``clock`` change says when."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from controller.api.models.grid import parse_duration
from controller.core.grid import phase, span
from controller.core.reconcile import Snapshot
from controller.core.whatif import (
    Change,
    WhatIfError,
    apply_changes,
    change_from_dict,
    parse_change,
    parse_duration_text,
    what_if,
)
from tests.controller.core.conftest import CONFIG
from tests.controller.core.test_grid import at_utc, factory, workload

FLEX = "team/flex"
EVENT = "what-if-1-f1"


def mesh() -> Snapshot:
    """f1: 10 MW firm + 10 MW flexible; 8 MW of firm work and 8 MW of interruptible work."""
    return Snapshot([factory("f1", firm=10, flexible=10), factory("f2", firm=1, flexible=0)], [],
                    [workload("firm", 8000, False, priority=1000), workload("flex", 8000, True, priority=10)],
                    at_utc(12))


# ------------------------------------------------------------------------------ syntax


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("curtail f1=5 from 2026-07-14T14:00:00Z for 3h",
         Change("curtail", "f1", 5.0, "2026-07-14T14:00:00+00:00", "PT3H")),
        ("curtail f1=5 from 2026-07-14T16:00:00+02:00 for 90m",
         Change("curtail", "f1", 5.0, "2026-07-14T16:00:00+02:00", "PT1H30M")),
        ("curtail f1=2.5 from 2026-07-14T14:00:00 for 1h30m",  # no zone: UTC
         Change("curtail", "f1", 2.5, "2026-07-14T14:00:00+00:00", "PT1H30M")),
        ("curtail f1=5 from 2026-07-14T14:00:00Z for PT3H",
         Change("curtail", "f1", 5.0, "2026-07-14T14:00:00+00:00", "PT3H")),
        ("curtail f1=5 from 2026-07-14T14:00:00Z for pt45m",
         Change("curtail", "f1", 5.0, "2026-07-14T14:00:00+00:00", "PT45M")),
        ("curtail f1=5 from 2026-07-14T14:00:00Z for 45s",
         Change("curtail", "f1", 5.0, "2026-07-14T14:00:00+00:00", "PT45S")),
        ("curtail f1=5 from 2026-07-14T14:00:00Z for 1d", Change("curtail", "f1", 5.0, "2026-07-14T14:00:00+00:00",
                                                                   "PT24H")),
        ("  curtail  f1 = 5   from  2026-07-14T14:00:00Z   for  3h ",
         Change("curtail", "f1", 5.0, "2026-07-14T14:00:00+00:00", "PT3H")),
    ],
)
def test_a_scheduled_curtailment_is_read_from_text(text: str, expected: Change) -> None:
    assert parse_change(text) == expected
    assert parse_change(str(expected)) == expected  # str() is the text form again
    assert str(expected).startswith(f"curtail f1={expected.value:g} from {expected.start} for ")


def test_the_json_form_is_the_same_change() -> None:
    document: dict[str, Any] = {"op": "curtail", "target": "f1", "value": 5, "from": "2026-07-14T14:00:00Z",
                                "for": "3h"}
    assert change_from_dict(document) == parse_change("curtail f1=5 from 2026-07-14T14:00:00Z for 3h")
    assert change_from_dict({**document, "for": "PT3H", "value": "5"}) == change_from_dict(document)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("curtail f1=5 from tomorrow for 3h", "not an ISO 8601 time: 'tomorrow' (e.g. 2026-07-14T18:00:00Z)"),
        ("curtail f1=5 from 2026-07-14T14:00:00Z for soon", "not a duration: 'soon' (e.g. 3h, 90m, PT3H)"),
        ("curtail f1=5 from 2026-07-14T14:00:00Z for 1.5h", "not a duration: '1.5h'"),
        ("curtail f1=5 from 2026-07-14T14:00:00Z for P1Y", "not a duration: 'P1Y'"),
        ("curtail f1=5 from 2026-07-14T14:00:00Z for 0h", "the duration must be whole seconds, at least 1 s and at most 31 days"),
        ("curtail f1=5 from 2026-07-14T14:00:00Z for 32d", "the duration must be whole seconds, at least 1 s and at most 31 days"),
        ("firm f1=5 from 2026-07-14T14:00:00Z for 3h", "only curtail takes 'from TIME for DURATION'"),
        ("curtail f1=5 at 2026-07-14T14:00:00Z for 3h", "expected curtail SITE=MW from ISO-TIME for DURATION"),
        ("curtail f1=5 from 2026-07-14T14:00:00Z", "expected curtail SITE=MW from ISO-TIME for DURATION"),
        ("curtail f1=5 from 2026-07-14T14:00:00Z for 3h please",
         "expected curtail SITE=MW from ISO-TIME for DURATION"),
        ("curtail f1=lots from 2026-07-14T14:00:00Z for 3h", "MW must be a number (got 'lots')"),
    ],
)
def test_a_bad_scheduled_curtailment_is_one_line_naming_it(text: str, says: str) -> None:
    with pytest.raises(WhatIfError) as raised:
        parse_change(text)
    message = str(raised.value)
    assert says in message and "\n" not in message
    assert message.startswith(" ".join(text.split()) + ":")


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ({"op": "firm", "target": "f1", "value": 5, "from": "2026-07-14T14:00:00Z", "for": "3h"},
         "only curtail takes 'from TIME for DURATION'"),
        ({"op": "cordon", "target": "f1", "from": "2026-07-14T14:00:00Z", "for": "3h"},
         "only curtail takes 'from TIME for DURATION'"),
        ({"op": "curtail", "target": "f1", "value": 5, "from": "2026-07-14T14:00:00Z"},
         "a scheduled curtailment needs both from TIME and for DURATION"),
        ({"op": "curtail", "target": "f1", "value": 5, "for": "3h"},
         "a scheduled curtailment needs both from TIME and for DURATION"),
        ({"op": "curtail", "target": "f1", "value": 5, "from": 1700000000, "for": "3h"},
         "a scheduled curtailment needs both from TIME and for DURATION"),
        ({"op": "curtail", "target": "f1", "value": 5, "from": "noon", "for": "3h"}, "not an ISO 8601 time: 'noon'"),
        ({"op": "curtail", "target": "f1", "value": 5, "from": "2026-07-14T14:00:00Z", "for": "-1h"},
         "not a duration: '-1h'"),
        ({"op": "curtail", "target": "f1", "value": 5, "from": "2026-07-14T14:00:00Z", "for": "3h", "lead": "1h"},
         "unknown field(s) lead"),
    ],
)
def test_a_bad_json_scheduled_curtailment_is_one_line(document: dict[str, Any], says: str) -> None:
    with pytest.raises(WhatIfError) as raised:
        change_from_dict(document)
    assert says in str(raised.value) and "\n" not in str(raised.value)


def test_short_durations() -> None:
    assert parse_duration_text("3h") == dt.timedelta(hours=3)
    assert parse_duration_text("1d2h3m4s") == dt.timedelta(days=1, hours=2, minutes=3, seconds=4)
    assert parse_duration_text(" PT15M ") == dt.timedelta(minutes=15)
    for bad in ("", "h", "3", "3x", "-3h", "1h 30m"):
        with pytest.raises(ValueError):
            parse_duration_text(bad)


def test_a_duration_is_kept_or_refused_never_truncated_to_nothing() -> None:
    try:
        change = parse_change("curtail f1=5 from 2026-07-14T14:00:00Z for PT0.5S")
    except WhatIfError:
        return
    assert change.duration is not None and parse_duration(change.duration) > dt.timedelta(0)


# --------------------------------------------------------------------- applying it


def test_the_change_adds_a_manual_grid_event_and_plans_at_its_start() -> None:
    snapshot = mesh()
    changed = apply_changes(snapshot, [parse_change("curtail f1=10 from 2026-07-14T14:00:00Z for 2h")])
    assert changed.at == at_utc(14)  # no clock given: the plan is for when it is in force
    [event] = changed.grid_events
    assert event.metadata.name == EVENT and event.spec.factory == "f1"
    assert event.spec.lead_time == "PT15M" and event.spec.source is not None and event.spec.source.manual
    assert [(i.start, i.duration, i.curtailed_mw) for i in event.spec.intervals] == [
        ("2026-07-14T14:00:00+00:00", "PT2H", 10.0)]
    assert span(event) == (at_utc(14), at_utc(16))
    assert phase(event, changed.at) == "Active"
    # the input is untouched
    assert snapshot.grid_events == () and snapshot.at == at_utc(12)
    assert [f.spec.power.curtailed_mw for f in changed.factories] == [0.0, 0.0]  # not the manual "now" value


def test_a_clock_change_says_when_to_plan_and_several_events_plan_at_the_first() -> None:
    clocked = apply_changes(mesh(), [parse_change("curtail f1=10 from 2026-07-14T14:00:00Z for 2h"),
                                     parse_change("clock 2026-07-14T13:00:00Z")])
    assert clocked.at == at_utc(13)
    clock_first = apply_changes(mesh(), [parse_change("clock 2026-07-14T13:00:00Z"),
                                         parse_change("curtail f1=10 from 2026-07-14T14:00:00Z for 2h")])
    assert clock_first.at == at_utc(13)
    two = apply_changes(mesh(), [parse_change("curtail f1=10 from 2026-07-14T18:00:00Z for 1h"),
                                 parse_change("curtail f1=4 from 2026-07-14T15:00:00+00:00 for 1h")])
    assert two.at == at_utc(15)
    assert sorted(e.metadata.name for e in two.grid_events) == ["what-if-1-f1", "what-if-2-f1"]


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("curtail f1=10.5 from 2026-07-14T14:00:00Z for 2h",
         "curtail f1=10.5 from 2026-07-14T14:00:00+00:00 for PT2H: more than its flexibleMW 10"),
        ("curtail f2=0.5 from 2026-07-14T14:00:00Z for 2h", "more than its flexibleMW 0"),
        ("curtail nowhere=1 from 2026-07-14T14:00:00Z for 2h", "no AIFactory named nowhere (known: f1, f2)"),
    ],
)
def test_a_scheduled_curtailment_the_mesh_cannot_take_is_one_line(change: str, says: str) -> None:
    with pytest.raises(WhatIfError) as raised:
        apply_changes(mesh(), [parse_change(change)])
    assert says in str(raised.value) and "\n" not in str(raised.value)


def test_the_what_if_plans_the_mesh_when_the_event_is_in_force() -> None:
    after, diff = what_if(mesh(), [parse_change("curtail f1=10 from 2026-07-14T14:00:00Z for 2h")], CONFIG)
    flex = after.workloads[FLEX]
    assert flex.phase == "Preempted"
    assert flex.message.startswith(
        f"preempted from f1: f1 is curtailed by 10 MW of its 10 MW flexible power for grid event {EVENT}")
    assert [m.key for m in diff.newly_preempted] == [FLEX]
    assert after.grid_events[EVENT].phase == "Active" and after.grid_events[EVENT].curtailed_mw == 10.0
    assert after.grid_events[EVENT].moved_workloads == [FLEX]
    curtailed = next(c for c in after.factories["f1"].conditions if c.type == "Curtailed")
    assert (curtailed.status, curtailed.reason) == ("True", "GridEvent") and f"(grid event {EVENT})" in curtailed.message
    # planned before the start minus the lead: nothing moves yet
    early, early_diff = what_if(mesh(), [parse_change("curtail f1=10 from 2026-07-14T14:00:00Z for 2h"),
                                         parse_change("clock 2026-07-14T13:44:00Z")], CONFIG)
    assert early.workloads[FLEX].phase == "Placed" and early_diff.newly_preempted == ()
    assert early.grid_events[EVENT].phase == "Scheduled"
    # within the lead: it has left already
    ready, _ = what_if(mesh(), [parse_change("curtail f1=10 from 2026-07-14T14:00:00Z for 2h"),
                                parse_change("clock 2026-07-14T13:45:00Z")], CONFIG)
    assert ready.workloads[FLEX].phase == "Preempted" and ready.grid_events[EVENT].phase == "Preparing"
