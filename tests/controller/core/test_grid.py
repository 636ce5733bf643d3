"""controller.core.grid: the time arithmetic of grid events (levels, in force and planned
curtailment, phases, wake-ups), checked against figures worked out by hand from the
rules of the module docstring and docs/grid-events.md.

The builders here (``factory``, ``interval``, ``grid_event``, ``workload``, ``at_utc``)
are shared by the other grid tests (test_grid_properties, test_grid_statuses,
test_timeline, test_whatif_scheduled)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from controller.api.models.grid import parse_duration
from controller.api.resources import API_VERSION, AIFactory, GridEvent, MeshWorkload
from controller.core.grid import (
    change_points,
    curtailment_of,
    factory_grid,
    interval_bounds,
    level_at,
    level_within,
    levels,
    next_grid_change,
    notice_was_late,
    phase,
    span,
)

DAY = dt.date(2026, 7, 14)
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def at_utc(hour: int, minute: int = 0, second: int = 0, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=dt.UTC)


def factory(name: str = "f1", firm: float = 100.0, flexible: float = 50.0, curtailed: float = 0.0, *,
            count: int = 200_000, watts: float = 1000.0, price: float = 50.0, region: str = "r1",
            generation: int = 1) -> AIFactory:
    """A factory of ``count`` devices of ``watts`` each (PUE 1.0: a device's facility power is its watts)."""
    return AIFactory.model_validate({
        "apiVersion": API_VERSION, "kind": "AIFactory", "metadata": {"name": name, "generation": generation},
        "spec": {
            "region": region, "country": "US",
            "power": {"firmMW": firm, "flexibleMW": flexible, "curtailedMW": curtailed, "pue": 1.0,
                      "pricePerMWh": price},
            "acceleratorPools": [{"model": "gpu", "count": count, "wattsPerDevice": watts,
                                  "tokensPerSecondPerDevice": 100, "memoryGiB": 80}],
        },
    })


def workload(name: str, accelerators: int, interruptible: bool, priority: int = 100,
             namespace: str = "team") -> MeshWorkload:
    """A batch workload of ``accelerators`` devices (1 kW each on ``factory``'s pool)."""
    return MeshWorkload.model_validate({
        "apiVersion": API_VERSION, "kind": "MeshWorkload",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"type": "batch", "accelerators": accelerators, "interruptible": interruptible,
                 "priority": priority},
    })


def interval(duration: str, start: dt.datetime | str | None = None, *, limit: float | None = None,
             mw: float | None = None, ratio: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"duration": duration}
    if start is not None:
        out["start"] = start if isinstance(start, str) else start.isoformat()
    if limit is not None:
        out["importLimitMW"] = limit
    if mw is not None:
        out["curtailedMW"] = mw
    if ratio is not None:
        out["curtailedFlexibleRatio"] = ratio
    return out


def grid_event(name: str, factory_name: str, intervals: list[dict[str, Any]], *, lead: str = "PT15M",
               restore: tuple[str, int] | None = None, cancelled: bool = False,
               created: dt.datetime | None = None, annotations: dict[str, str] | None = None,
               source: dict[str, Any] | None = None, generation: int = 1) -> GridEvent:
    metadata: dict[str, Any] = {"name": name, "generation": generation}
    if created is not None:
        metadata["creationTimestamp"] = created.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if annotations:
        metadata["annotations"] = annotations
    spec: dict[str, Any] = {"factory": factory_name, "leadTime": lead, "intervals": intervals,
                            "cancelled": cancelled}
    if restore is not None:
        spec["restore"] = {"duration": restore[0], "steps": restore[1]}
    if source is not None:
        spec["source"] = source
    return GridEvent.model_validate({"apiVersion": API_VERSION, "kind": "GridEvent", "metadata": metadata,
                                     "spec": spec})


# --------------------------------------------------------------- levels of one interval


@pytest.mark.parametrize(
    ("limit", "curtailed", "shortfall"),
    [
        (200.0, 0.0, 0.0),  # above firm + flexible: nothing to take
        (150.0, 0.0, 0.0),  # exactly firm + flexible
        (130.0, 20.0, 0.0),  # between: the part of flexible power above the limit
        (100.0, 50.0, 0.0),  # exactly firm: all flexible power, no shortfall
        (70.0, 50.0, 30.0),  # below firm: all flexible, and 30 MW short, reported
        (0.0, 50.0, 100.0),
    ],
)
def test_an_import_limit_becomes_a_curtailment_of_flexible_power_only(
    limit: float, curtailed: float, shortfall: float
) -> None:
    f1 = factory(firm=100, flexible=50)
    assert curtailment_of(f1.spec.power, limit_mw=limit) == (pytest.approx(curtailed), pytest.approx(shortfall))
    event = grid_event("e", "f1", [interval("PT1H", at_utc(14), limit=limit)])
    grid = factory_grid(f1, [event], at_utc(14, 30))
    assert grid.in_force_mw == pytest.approx(curtailed)
    assert grid.limit_mw == limit
    assert grid.firm_shortfall_mw == pytest.approx(shortfall)
    assert grid.usable_in_force_mw(f1.spec.power) == pytest.approx(max(limit, 100.0) if limit < 150 else 150.0)


def test_megawatts_are_capped_at_flexible_power_and_a_ratio_is_a_share_of_it() -> None:
    power = factory(firm=100, flexible=50).spec.power
    assert curtailment_of(power, curtailed_mw=20) == (20.0, 0.0)
    assert curtailment_of(power, curtailed_mw=80) == (50.0, 0.0)  # never firm power
    assert curtailment_of(power, ratio=0.4) == (pytest.approx(20.0), 0.0)
    assert curtailment_of(power, ratio=1.0) == (50.0, 0.0)
    no_flexible = factory(firm=100, flexible=0).spec.power
    assert curtailment_of(no_flexible, curtailed_mw=10) == (0.0, 0.0)
    assert curtailment_of(no_flexible, limit_mw=60) == (0.0, 40.0)


def test_intervals_without_a_start_follow_the_one_before() -> None:
    event = grid_event("e", "f1", [
        interval("PT1H", "2026-07-14T16:00:00+02:00", mw=10),  # 14:00Z
        interval("PT30M", mw=20),
        interval("PT2H", ratio=0.5),
    ])
    assert interval_bounds(event) == [
        (at_utc(14), at_utc(15)), (at_utc(15), at_utc(15, 30)), (at_utc(15, 30), at_utc(17, 30)),
    ]
    assert span(event) == (at_utc(14), at_utc(17, 30))
    found = levels(event, factory(flexible=50).spec.power)
    assert [(lv.start, lv.end, lv.curtailed_mw) for lv in found] == [
        (at_utc(14), at_utc(15), 10.0), (at_utc(15), at_utc(15, 30), 20.0), (at_utc(15, 30), at_utc(17, 30), 25.0),
    ]
    assert [level_at(found, t) for t in (at_utc(13, 59, 59), at_utc(14), at_utc(15), at_utc(15, 30), at_utc(17, 30))] \
        == [0.0, 10.0, 20.0, 25.0, 0.0]


def test_a_gap_between_intervals_is_uncurtailed_but_planned_within_the_lead() -> None:
    f1 = factory(firm=100, flexible=50)
    event = grid_event("e", "f1", [interval("PT1H", at_utc(14), mw=10), interval("PT1H", at_utc(16), mw=30)])
    gap = factory_grid(f1, [event], at_utc(15, 30))
    assert (gap.in_force_mw, gap.planned_mw, gap.driver) == (0.0, 0.0, None)
    ahead = factory_grid(f1, [event], at_utc(15, 45))
    assert (ahead.in_force_mw, ahead.planned_mw, ahead.driver) == (0.0, 30.0, "e")


# ------------------------------------------------------------- several events, manual


# event "a": 14:00-16:00 at 30 MW, lead 15 min; event "b": 15:00-17:00 at 45 MW, lead 1 h
OVERLAP = [
    # (at, in force, in force by, planned, driver)
    (at_utc(13, 0), 0.0, None, 0.0, None),
    (at_utc(13, 44, 59), 0.0, None, 0.0, None),
    (at_utc(13, 45), 0.0, None, 30.0, "a"),  # a within its lead
    (at_utc(13, 59, 59), 0.0, None, 30.0, "a"),  # b not yet within its hour
    (at_utc(14, 0), 30.0, "a", 45.0, "b"),  # a in force, b within its lead: b is planned
    (at_utc(15, 0), 45.0, "b", 45.0, "b"),
    (at_utc(16, 0), 45.0, "b", 45.0, "b"),  # a is over
    (at_utc(16, 59, 59), 45.0, "b", 45.0, "b"),
    (at_utc(17, 0), 0.0, None, 0.0, None),
]


@pytest.mark.parametrize(("at", "in_force", "by", "planned", "driver"), OVERLAP)
def test_overlapping_events_the_most_restrictive_wins_at_every_instant(
    at: dt.datetime, in_force: float, by: str | None, planned: float, driver: str | None
) -> None:
    f1 = factory(firm=100, flexible=50)
    a = grid_event("a", "f1", [interval("PT2H", at_utc(14), mw=30)], lead="PT15M")
    b = grid_event("b", "f1", [interval("PT2H", at_utc(15), mw=45)], lead="PT1H")
    for events in ([a, b], [b, a]):  # the order of the events does not matter
        grid = factory_grid(f1, events, at)
        assert (grid.in_force_mw, grid.in_force_by, grid.planned_mw, grid.driver) == (in_force, by, planned, driver)


def test_when_the_weaker_event_leads_the_stronger_one_plans_only_within_its_own_lead() -> None:
    f1 = factory(firm=100, flexible=50)
    a = grid_event("a", "f1", [interval("PT3H", at_utc(14), mw=20)], lead="PT1H")
    b = grid_event("b", "f1", [interval("PT1H", at_utc(15), mw=40)], lead="PT15M")
    assert factory_grid(f1, [a, b], at_utc(13)).planned_mw == 20.0
    assert factory_grid(f1, [a, b], at_utc(14, 44, 59)).planned_mw == 20.0
    assert factory_grid(f1, [a, b], at_utc(14, 45)).planned_mw == 40.0
    assert factory_grid(f1, [a, b], at_utc(16)).planned_mw == 20.0  # b is over, a is not
    assert factory_grid(f1, [a, b], at_utc(17)).planned_mw == 0.0


def test_the_manual_curtailment_is_a_floor() -> None:
    f1 = factory(firm=100, flexible=50, curtailed=25)
    weaker = grid_event("weaker", "f1", [interval("PT1H", at_utc(14), mw=10)])
    grid = factory_grid(f1, [weaker], at_utc(14, 30))
    assert (grid.manual_mw, grid.in_force_mw, grid.planned_mw) == (25.0, 25.0, 25.0)
    assert (grid.in_force_by, grid.driver) == (None, None)  # the manual value is nobody's event
    stronger = grid_event("stronger", "f1", [interval("PT1H", at_utc(14), mw=40)])
    grid = factory_grid(f1, [weaker, stronger], at_utc(14, 30))
    assert (grid.in_force_mw, grid.in_force_by, grid.planned_mw, grid.driver) == (40.0, "stronger", 40.0, "stronger")
    after = factory_grid(f1, [weaker, stronger], at_utc(15, 30))
    assert (after.in_force_mw, after.planned_mw) == (25.0, 25.0)  # back to the manual value, not to zero


def test_events_of_another_or_a_missing_factory_are_ignored() -> None:
    f1, f2 = factory("f1"), factory("f2")
    other = grid_event("other", "f2", [interval("PT1H", at_utc(14), mw=40)])
    nowhere = grid_event("nowhere", "no-such-factory", [interval("PT1H", at_utc(13), mw=40)])
    grid = factory_grid(f1, [other, nowhere], at_utc(14, 30))
    assert (grid.in_force_mw, grid.planned_mw) == (0.0, 0.0)
    assert factory_grid(f2, [other, nowhere], at_utc(14, 30)).in_force_mw == 40.0
    # the missing factory's event wakes nothing (it starts an hour before f2's)
    assert next_grid_change([f1, f2], [nowhere, other], at_utc(12)) == at_utc(13, 45)
    assert next_grid_change([f1], [nowhere, other], at_utc(12)) is None


# ------------------------------------------------------------------- look-ahead, lead


def test_the_full_level_is_planned_at_start_minus_lead_and_not_a_second_before() -> None:
    f1 = factory(firm=100, flexible=50)
    event = grid_event("e", "f1", [interval("PT2H", at_utc(14), mw=40)], lead="PT30M")
    before = factory_grid(f1, [event], at_utc(13, 29, 59))
    assert (before.in_force_mw, before.planned_mw, before.driver) == (0.0, 0.0, None)
    preparing = factory_grid(f1, [event], at_utc(13, 30))
    assert (preparing.in_force_mw, preparing.planned_mw, preparing.driver) == (0.0, 40.0, "e")
    active = factory_grid(f1, [event], at_utc(15, 59, 59))
    assert (active.in_force_mw, active.in_force_by, active.planned_mw) == (40.0, "e", 40.0)
    after = factory_grid(f1, [event], at_utc(16))
    assert (after.in_force_mw, after.planned_mw, after.driver, after.in_force_by) == (0.0, 0.0, None, None)
    found = levels(event, f1.spec.power)
    assert level_within(found, at_utc(13, 30), dt.timedelta(minutes=30)) == 40.0
    assert level_within(found, at_utc(13, 29, 59), dt.timedelta(minutes=30)) == 0.0
    assert level_within(found, at_utc(16), dt.timedelta(minutes=30)) == 0.0


def test_phases_over_time() -> None:
    event = grid_event("e", "f1", [interval("PT2H", at_utc(14), mw=40)], lead="PT30M", restore=("PT1H", 4))
    expected = [
        (at_utc(13, 29, 59), "Scheduled"), (at_utc(13, 30), "Preparing"), (at_utc(13, 59, 59), "Preparing"),
        (at_utc(14), "Active"), (at_utc(15, 59, 59), "Active"), (at_utc(16), "Restoring"),
        (at_utc(16, 59, 59), "Restoring"), (at_utc(17), "Completed"),
    ]
    assert [(t, phase(event, t)) for t, _ in expected] == expected


# ------------------------------------------------------------------------- restore ramp


def test_the_restore_ramp_lifts_the_last_level_in_equal_steps_ending_at_end_plus_duration() -> None:
    f1 = factory(firm=100, flexible=50)
    event = grid_event("e", "f1", [interval("PT1H", at_utc(13), mw=20), interval("PT1H", mw=40)],
                       restore=("PT1H", 4))
    ramp = [lv for lv in levels(event, f1.spec.power) if lv.ramp]
    assert [(lv.start, lv.end, lv.curtailed_mw) for lv in ramp] == [
        (at_utc(15), at_utc(15, 15), 40.0), (at_utc(15, 15), at_utc(15, 30), 30.0),
        (at_utc(15, 30), at_utc(15, 45), 20.0), (at_utc(15, 45), at_utc(16), 10.0),
    ]
    in_force = [factory_grid(f1, [event], t).in_force_mw
                for t in (at_utc(14, 59), at_utc(15), at_utc(15, 20), at_utc(15, 40), at_utc(15, 50), at_utc(16))]
    assert in_force == [40.0, 40.0, 30.0, 20.0, 10.0, 0.0]
    assert phase(event, at_utc(15, 50)) == "Restoring" and phase(event, at_utc(16)) == "Completed"
    # the ramp is planned within the lead like any level: nothing new lands on the 10 MW that are about to return
    assert factory_grid(f1, [event], at_utc(15, 50)).planned_mw == 10.0


def test_a_ramp_of_one_step_holds_the_level_until_end_plus_duration() -> None:
    f1 = factory(firm=100, flexible=50)
    event = grid_event("e", "f1", [interval("PT1H", at_utc(14), limit=120)], restore=("PT30M", 1))
    assert factory_grid(f1, [event], at_utc(15, 29, 59)).in_force_mw == 30.0
    assert factory_grid(f1, [event], at_utc(15, 30)).in_force_mw == 0.0
    # the import limit itself ends with the interval: the ramp is a curtailment, not a limit
    assert factory_grid(f1, [event], at_utc(15, 10)).limit_mw is None


# ---------------------------------------------------------------------------- cancelled


def test_a_cancelled_event_contributes_nothing_and_its_phase_is_cancelled() -> None:
    f1 = factory(firm=100, flexible=50, curtailed=5)
    event = grid_event("e", "f1", [interval("PT2H", at_utc(14), mw=40)], restore=("PT1H", 2), cancelled=True)
    assert levels(event, f1.spec.power) == []
    assert change_points(event, f1.spec.power) == []
    for t in (at_utc(13, 50), at_utc(14), at_utc(16, 30)):
        grid = factory_grid(f1, [event], t)
        assert (grid.in_force_mw, grid.planned_mw, grid.driver, grid.in_force_by) == (5.0, 5.0, None, None)
        assert phase(event, t) == "Cancelled"
    assert next_grid_change([f1], [event], at_utc(12)) is None
    assert notice_was_late(event, at_utc(13, 55)) is False


# ---------------------------------------------------------------------------- wake-ups


def _all_changes(factories: list[AIFactory], events: list[GridEvent], after: dt.datetime) -> list[dt.datetime]:
    found = []
    while (nxt := next_grid_change(factories, events, after)) is not None:
        found.append(nxt)
        after = nxt
    return found


def test_next_grid_change_returns_every_edge_in_order() -> None:
    f1 = factory(firm=100, flexible=50)
    event = grid_event("e", "f1", [interval("PT1H", at_utc(14), limit=120), interval("PT1H", mw=40)],
                       lead="PT20M", restore=("PT1H", 2))
    assert _all_changes([f1], [event], at_utc(12)) == [
        at_utc(13, 40),  # start - lead
        at_utc(14),  # start
        at_utc(14, 40),  # the second interval - lead
        at_utc(15),  # interval edge
        at_utc(15, 40),  # the first ramp step - lead
        at_utc(16),  # end
        at_utc(16, 10),  # the second ramp step - lead
        at_utc(16, 30),  # ramp step
        at_utc(17),  # end of the ramp
    ]
    # strictly after, and always in UTC
    assert next_grid_change([f1], [event], at_utc(13, 40)) == at_utc(14)
    assert next_grid_change([f1], [event], at_utc(13, 40) - dt.timedelta(microseconds=1)) == at_utc(13, 40)
    assert next_grid_change([f1], [event], at_utc(17)) is None
    assert next_grid_change([f1], [event], at_utc(12)).tzinfo == dt.UTC


def test_next_grid_change_merges_the_edges_of_several_events() -> None:
    f1, f2 = factory("f1"), factory("f2")
    a = grid_event("a", "f1", [interval("PT1H", at_utc(14), mw=10)], lead="PT30M")
    b = grid_event("b", "f2", [interval("PT2H", at_utc(14, 15), mw=10)], lead="PT5M")
    assert _all_changes([f1, f2], [a, b], at_utc(12)) == [
        at_utc(13, 30), at_utc(14), at_utc(14, 10), at_utc(14, 15), at_utc(15), at_utc(16, 15),
    ]


def test_an_event_that_curtails_nothing_still_wakes_at_its_phase_changes() -> None:
    f1 = factory(firm=100, flexible=50)
    event = grid_event("e", "f1", [interval("PT1H", at_utc(14), limit=500)])
    assert levels(event, f1.spec.power)[0].curtailed_mw == 0.0
    assert _all_changes([f1], [event], at_utc(12)) == [at_utc(13, 45), at_utc(14), at_utc(15)]


# ------------------------------------------------------------------ daylight saving


def test_an_event_across_the_spring_change_ends_after_its_elapsed_duration() -> None:
    # 01:30 PST + 2 h of elapsed time = 04:30 PDT (the clocks skip 02:00-03:00)
    event = grid_event("e", "f1", [interval("PT2H", "2026-03-08T01:30:00-08:00", mw=10)])
    start, end = span(event)
    assert end == dt.datetime.fromisoformat("2026-03-08T04:30:00-07:00")
    assert end == dt.datetime(2026, 3, 8, 4, 30, tzinfo=LOS_ANGELES)
    assert end - start == dt.timedelta(hours=2)
    f1 = factory(firm=100, flexible=50)
    just_before = dt.datetime(2026, 3, 8, 4, 29, tzinfo=LOS_ANGELES)
    assert factory_grid(f1, [event], just_before).in_force_mw == 10.0
    assert phase(event, just_before) == "Active"
    assert factory_grid(f1, [event], end).in_force_mw == 0.0
    assert phase(event, dt.datetime(2026, 3, 8, 4, 30, tzinfo=LOS_ANGELES)) == "Completed"
    assert next_grid_change([f1], [event], start) == end.astimezone(dt.UTC)


def test_a_day_is_twenty_four_hours_also_across_the_autumn_change() -> None:
    assert parse_duration("P1D") == dt.timedelta(hours=24)
    assert parse_duration("P1W") == dt.timedelta(days=7)
    assert parse_duration("P1DT2H30M15.5S") == dt.timedelta(days=1, hours=2, minutes=30, seconds=15.5)
    for bad in ("P", "PT", "P1Y", "P1M", "1H", "PT1H30", "PT-1H"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    # 2026-11-01: the Pacific clocks go back from 02:00 PDT to 01:00 PST, a local day is 25 h long
    event = grid_event("e", "f1", [interval("P1D", "2026-11-01T00:00:00-07:00", mw=10)])
    start, end = span(event)
    assert end - start == dt.timedelta(hours=24)
    assert end == dt.datetime.fromisoformat("2026-11-01T23:00:00-08:00")
    assert end.astimezone(LOS_ANGELES).hour == 23  # not midnight: elapsed time, not the calendar


def test_an_event_in_the_repeated_hour_is_told_apart_by_its_offset() -> None:
    f1 = factory(firm=100, flexible=50)
    first = grid_event("first", "f1", [interval("PT30M", "2026-11-01T01:00:00-07:00", mw=10)])  # 08:00Z
    second = grid_event("second", "f1", [interval("PT30M", "2026-11-01T01:00:00-08:00", mw=20)])  # 09:00Z
    utc = dt.datetime(2026, 11, 1, 8, 10, tzinfo=dt.UTC)
    assert factory_grid(f1, [first, second], utc).in_force_mw == 10.0
    assert factory_grid(f1, [first, second], utc + dt.timedelta(hours=1)).in_force_mw == 20.0
    assert _all_changes([f1], [first, second], utc - dt.timedelta(hours=1)) == [
        dt.datetime(2026, 11, 1, h, m, tzinfo=dt.UTC) for h, m in ((7, 45), (8, 0), (8, 30), (8, 45), (9, 0), (9, 30))
    ]


def test_the_look_ahead_is_elapsed_time_also_for_an_instant_given_in_a_zone() -> None:
    f1 = factory(firm=100, flexible=50)
    # 01:40 PST on 2026-11-01 (the second 01:40) = 09:40Z, lead 15 min
    event = grid_event("e", "f1", [interval("PT1H", "2026-11-01T01:40:00-08:00", mw=40)])
    at = dt.datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=LOS_ANGELES)  # 09:30Z: ten minutes before the start
    assert phase(event, at) == "Preparing"
    assert factory_grid(f1, [event], at.astimezone(dt.UTC)).planned_mw == 40.0
    assert factory_grid(f1, [event], at).planned_mw == 40.0  # the same instant


# ---------------------------------------------------------------------- late notice


@pytest.mark.parametrize(
    ("created", "late"),
    [
        (None, False),
        (at_utc(12), False),  # well ahead
        (at_utc(13, 45), False),  # exactly the lead time ahead
        (at_utc(13, 45, 1), True),  # less than the lead time ahead
        (at_utc(14, 30), True),  # after the start, while it runs
        (at_utc(15), False),  # after the end: nothing was late any more
    ],
)
def test_late_notice_is_less_than_the_lead_time_before_the_start(created: dt.datetime | None, late: bool) -> None:
    event = grid_event("e", "f1", [interval("PT1H", at_utc(14), mw=10)], lead="PT15M")
    assert notice_was_late(event, created) is late
