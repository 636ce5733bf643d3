"""controller.core.openadr: OpenADR 3 events as GridEvents, and the reports back.

The events are JSON as openleadr-vtn 0.2.8 serves them (durations as
``P0Y0M0DT0H0M20S``, times as ``...+00:00``), built by :func:`event` below; the
end-to-end test (tests/e2e/test_ven.py) sends the same through the real VTN. Property
tests: the mapping never raises on any JSON and never produces a GridEvent the model
refuses, kW -> MW is exact, names are valid, stable and distinct, and a GridEvent read
back is never re-applied.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from controller.api.models.grid import GridEventStatus, parse_duration
from controller.api.resources import GridEvent
from controller.core.grid import interval_bounds, span
from controller.core.grid_statuses import STALE_ANNOTATION
from controller.core.openadr import (
    BASELINE_ANNOTATION,
    FIRST_SEEN_ANNOTATION,
    LABEL_EVENT,
    LABEL_MANAGED_BY,
    LABEL_VTN,
    BadData,
    Known,
    VenConfig,
    cancelled_manifest,
    due_reports,
    duration_end,
    existing_of,
    factory_targets,
    format_duration,
    format_time,
    grid_event_name,
    label_value,
    last_report_status,
    map_events,
    missing_event_ids,
    mw_to_kw,
    next_interval_end,
    open_ended_end,
    own_selector,
    plan_sync,
    report_body,
    stale_targets,
    to_mw,
    unchanged,
)

NOW = dt.datetime(2026, 7, 14, 17, 0, tzinfo=dt.UTC)
CONFIG = VenConfig(vtn="utility")
FACTORIES = {"us-memphis-1": "us-memphis-1", "fr-grenoble-1": "fr-grenoble-1"}
PROGRAMS = [{"id": "p1", "programName": "dc-flex"}, {"id": "p2", "programName": "other"}]
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def kw_to_mw(kw: float) -> float:
    """kW -> MW as the mapping converts a payload in OpenADR's default unit."""
    return to_mw(kw, "KW")


def rust_duration(seconds: float) -> str:
    """A duration as openleadr-vtn writes it back (iso8601_duration's Display)."""
    return f"P0Y0M0DT0H0M{seconds:g}S"


def event(event_id: str = "ev-1", *, values: list[float] | None = None, start: str = "2026-07-14T18:00:00+00:00",
          duration: str = "P0Y0M0DT1H0M0S", kind: str = "IMPORT_CAPACITY_LIMIT", units: str | None = "KW",
          targets: list[Any] | None = None, program: str = "p1", modified: str = "2026-07-14T16:00:00+00:00",
          **extra: Any) -> dict[str, Any]:
    """An event as the VTN returns it: ``values`` one interval each, from the event's intervalPeriod."""
    body: dict[str, Any] = {
        "id": event_id, "createdDateTime": "2026-07-14T16:00:00+00:00", "modificationDateTime": modified,
        "objectType": "EVENT", "programID": program, "eventName": f"name of {event_id}", "priority": 0,
        "targets": targets if targets is not None else [],
        "payloadDescriptors": [{"payloadType": kind, "units": units}] if units else None,
        "intervalPeriod": {"start": start, "duration": duration},
        "intervals": [{"id": i, "payloads": [{"type": kind, "values": [v]}]}
                      for i, v in enumerate(values if values is not None else [90_000.0, 75_000.0, 75_000.0])],
    }
    body.update(extra)
    return body


def spec_of(mirror: Any, factory: str = "us-memphis-1") -> dict[str, Any]:
    [mapped] = [m for m in mirror.mapped if m.factory == factory]
    return dict(mapped.manifest["spec"])


# --------------------------------------------------------------------------- units


@pytest.mark.parametrize(("kw", "mw"), [(75_000, 75.0), (90_000.0, 90.0), (1234.5, 1.2345), (0.1, 0.0001),
                                        (0, 0.0), (74_999.9, 74.9999)])
def test_kw_become_mw_in_decimal(kw: float, mw: float):
    assert kw_to_mw(kw) == mw
    assert mw_to_kw(mw) == kw


@given(st.integers(0, 10**15 - 1), st.integers(-6, 3))
def test_kw_to_mw_shifts_the_decimal_point_exactly(mantissa: int, exponent: int):
    """Any kW figure of up to 15 significant digits (what a double holds exactly as a
    decimal) is the same digits in MW, three places on, and comes back unchanged."""
    kw = float(Decimal(mantissa).scaleb(exponent))
    assume(kw <= 1e8)
    mw = kw_to_mw(kw)
    assert Decimal(repr(mw)) == Decimal(repr(kw)) / 1000
    assert mw_to_kw(mw) == kw


@given(st.floats(min_value=0, max_value=1e8, allow_nan=False, allow_infinity=False))
def test_kw_to_mw_is_the_decimal_shift_of_any_float(kw: float):
    assert kw_to_mw(kw) == float(Decimal(repr(kw)) / 1000)


@pytest.mark.parametrize(("value", "unit", "mw"), [(75e6, "W", 75.0), (75_000, "KW", 75.0), (75, "MW", 75.0),
                                                   (75_000, None, 75.0), (75_000, "kw", 75.0)])
def test_the_payload_descriptor_units_are_honoured(value: float, unit: str | None, mw: float):
    assert to_mw(value, unit) == mw


def test_a_unit_that_is_not_a_power_is_bad_data():
    with pytest.raises(BadData, match="KVA"):
        to_mw(10, "KVA")


# --------------------------------------------------------------------------- durations and times


@pytest.mark.parametrize(("text", "end"), [
    ("P0Y0M0DT0H0M20S", NOW + dt.timedelta(seconds=20)),  # openleadr-vtn's form
    ("PT1H", NOW + dt.timedelta(hours=1)),
    ("P0Y0M0DT0H0M0.5S", NOW + dt.timedelta(seconds=0.5)),
    ("P1W", NOW + dt.timedelta(days=7)),
    ("P1DT2H", NOW + dt.timedelta(days=1, hours=2)),
    ("P1M", dt.datetime(2026, 8, 14, 17, tzinfo=dt.UTC)),  # the calendar month
    ("P1Y", dt.datetime(2027, 7, 14, 17, tzinfo=dt.UTC)),
    ("P9999Y", None),  # until further notice
    ("P9999Y0M0DT0H0M0S", None),
])
def test_openadr_durations(text: str, end: dt.datetime | None):
    assert duration_end(NOW, text, "here") == end


def test_a_month_from_the_31st_ends_on_the_last_day_of_a_shorter_month():
    assert duration_end(dt.datetime(2026, 1, 31, tzinfo=dt.UTC), "P1M", "x") == dt.datetime(2026, 2, 28, tzinfo=dt.UTC)


@pytest.mark.parametrize("text", ["", "P", "PT", "1H", "P1H", "PT-1S", "forever", 3600])
def test_what_is_not_a_duration_is_bad_data(text: Any):
    with pytest.raises(BadData):
        duration_end(NOW, text, "intervals[0]")


@given(st.timedeltas(min_value=dt.timedelta(0), max_value=dt.timedelta(days=400)))
def test_formatted_durations_are_read_back_by_the_model(span_: dt.timedelta):
    text = format_duration(span_)
    assert parse_duration(text) == span_
    assert duration_end(NOW, text, "x") == NOW + span_


def test_times_are_utc_with_a_z():
    assert format_time(dt.datetime(2026, 7, 14, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=-7)))) \
        == "2026-07-14T18:00:00Z"
    assert format_time(NOW + dt.timedelta(microseconds=5)) == "2026-07-14T17:00:00.000005Z"


def test_an_open_ended_interval_moves_once_a_step():
    step = dt.timedelta(days=1)
    start = NOW - dt.timedelta(hours=5)
    first = open_ended_end(start, NOW, step)
    assert first == start + 2 * step and NOW + step < first <= NOW + 2 * step
    assert open_ended_end(start, NOW + dt.timedelta(hours=18), step) == first  # still a step ahead: unchanged
    assert open_ended_end(start, NOW + dt.timedelta(hours=20), step) == start + 3 * step
    assert open_ended_end(NOW + dt.timedelta(days=3), NOW, step) == NOW + dt.timedelta(days=4)  # in the future


# --------------------------------------------------------------------------- names and labels


@given(st.text(min_size=1, max_size=40), st.text(min_size=1, max_size=128), st.text(min_size=1, max_size=253))
def test_names_are_dns_labels_and_stable(vtn: str, event_id: str, factory: str):
    name = grid_event_name(vtn, event_id, factory)
    assert DNS_LABEL.match(name) and len(name) <= 63
    assert grid_event_name(vtn, event_id, factory) == name


@given(st.lists(st.tuples(st.from_regex(r"[a-zA-Z0-9_-]{1,128}", fullmatch=True),
                          st.from_regex(r"[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True)),
                min_size=2, max_size=20, unique=True))
def test_names_of_different_events_or_factories_differ(pairs: list[tuple[str, str]]):
    names = {grid_event_name("utility", event_id, factory) for event_id, factory in pairs}
    assert len(names) == len(pairs)


def test_names_read_as_vtn_event_factory_and_tell_cases_apart():
    name = grid_event_name("utility", "ev-1", "us-memphis-1")
    assert name.startswith("utility-ev-1-us-memphis-1-") and len(name) == len("utility-ev-1-us-memphis-1-") + 10
    assert grid_event_name("utility", "Ev", "f") != grid_event_name("utility", "ev", "f")
    assert grid_event_name("u", "a-b", "c") != grid_event_name("u", "a", "b-c")
    assert len(grid_event_name("utility", "x" * 128, "f" * 200)) == 63


@given(st.text(max_size=300))
def test_label_values_are_valid(text: str):
    value = label_value(text)
    assert re.match(r"^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)$", value)
    if re.match(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$", text):
        assert value == text


def test_the_configured_factory_map_or_every_factory_by_its_name():
    assert factory_targets({}, ["a", "b"]) == {"a": "a", "b": "b"}
    assert factory_targets({"a": "site-a", "c": ""}, ["a", "b"]) == {"a": "site-a", "c": "c"}


def test_the_config_refuses_what_it_cannot_use():
    for bad in ({"vtn": "Utility"}, {"vtn": "x" * 41}, {"vtn": "u", "level_map": {1: 1.5}},
                {"vtn": "u", "lead_time": "15m"}, {"vtn": "u", "restore_steps": 0},
                {"vtn": "u", "open_ended_step": dt.timedelta(0)}):
        with pytest.raises(ValueError):
            VenConfig(**bad)


# --------------------------------------------------------------------------- mapping


def test_an_import_capacity_limit_event_becomes_intervals_in_mw():
    mirror = map_events(PROGRAMS, [event(targets=["us-memphis-1"])], FACTORIES, CONFIG, NOW,
                        allocated_mw={"us-memphis-1": 310.0})
    assert mirror.skipped == [] and mirror.event_ids == {"ev-1"}
    [mapped] = mirror.mapped
    assert mapped.name == grid_event_name("utility", "ev-1", "us-memphis-1")
    manifest = mapped.manifest
    assert manifest["apiVersion"] == "meshplane.io/v1alpha1" and manifest["kind"] == "GridEvent"
    assert manifest["spec"]["intervals"] == [
        {"start": "2026-07-14T18:00:00Z", "duration": "PT1H", "importLimitMW": 90.0},
        {"start": "2026-07-14T19:00:00Z", "duration": "PT1H", "importLimitMW": 75.0},
        {"start": "2026-07-14T20:00:00Z", "duration": "PT1H", "importLimitMW": 75.0},
    ]
    assert manifest["spec"]["factory"] == "us-memphis-1" and manifest["spec"]["leadTime"] == "PT15M"
    assert manifest["spec"]["cancelled"] is False and "restore" not in manifest["spec"]
    assert manifest["spec"]["source"] == {"openadr": {
        "vtn": "utility", "programName": "dc-flex", "programId": "p1", "eventId": "ev-1",
        "eventName": "name of ev-1", "modificationDateTime": "2026-07-14T16:00:00+00:00"}}
    assert manifest["metadata"]["labels"] == {LABEL_MANAGED_BY: "meshplane-ven", LABEL_VTN: "utility",
                                              LABEL_EVENT: "ev-1", "meshplane.io/factory": "us-memphis-1"}
    assert manifest["metadata"]["annotations"] == {FIRST_SEEN_ANNOTATION: "2026-07-14T17:00:00Z",
                                                   BASELINE_ANNOTATION: "310.0"}
    grid_event = GridEvent.model_validate(manifest)
    assert span(grid_event) == (dt.datetime(2026, 7, 14, 18, tzinfo=dt.UTC), dt.datetime(2026, 7, 14, 21, tzinfo=dt.UTC))


def test_the_lead_time_and_restore_ramp_are_the_configured_ones():
    config = VenConfig(vtn="utility", lead_time="PT30M", restore_duration="PT20M", restore_steps=2)
    spec = spec_of(map_events(PROGRAMS, [event(targets=["us-memphis-1"])], FACTORIES, config, NOW))
    assert spec["leadTime"] == "PT30M" and spec["restore"] == {"duration": "PT20M", "steps": 2}


def test_targets_choose_the_factories():
    targeted = map_events(PROGRAMS, [event(targets=["fr-grenoble-1", "somewhere-else"])], FACTORIES, CONFIG, NOW)
    assert [m.factory for m in targeted.mapped] == ["fr-grenoble-1"]
    untargeted = map_events(PROGRAMS, [event(targets=[])], FACTORIES, CONFIG, NOW)
    assert sorted(m.factory for m in untargeted.mapped) == sorted(FACTORIES)
    nobody = map_events(PROGRAMS, [event(targets=["somewhere-else"])], FACTORIES, CONFIG, NOW)
    assert nobody.mapped == [] and nobody.skipped == []
    # OpenADR 3.0's target objects
    v30 = map_events(PROGRAMS, [event(targets=[{"type": "RESOURCE_NAME", "values": ["us-memphis-1"]}])],
                     FACTORIES, CONFIG, NOW)
    assert [m.factory for m in v30.mapped] == ["us-memphis-1"]


def test_a_factory_is_targeted_by_its_configured_resource_name():
    factories = factory_targets({"us-memphis-1": "TVA-RES-0042"}, ["us-memphis-1", "fr-grenoble-1"])
    mirror = map_events(PROGRAMS, [event(targets=["TVA-RES-0042"])], factories, CONFIG, NOW)
    assert [m.factory for m in mirror.mapped] == ["us-memphis-1"]
    assert map_events(PROGRAMS, [event(targets=["us-memphis-1"])], factories, CONFIG, NOW).mapped == []


def test_only_the_configured_programs_are_mirrored():
    config = VenConfig(vtn="utility", program_names=("dc-flex",))
    mirror = map_events(PROGRAMS, [event("a", program="p1"), event("b", program="p2"), event("c", program="p9")],
                        FACTORIES, config, NOW)
    assert mirror.event_ids == {"a"}
    everything = map_events(PROGRAMS, [event("a", program="p1"), event("c", program="p9")], FACTORIES, CONFIG, NOW)
    assert everything.event_ids == {"a", "c"}
    [unknown_program] = [m for m in everything.mapped if m.event_id == "c"][:1]
    assert unknown_program.manifest["spec"]["source"]["openadr"]["programName"] == ""


def test_simple_levels_become_shares_of_flexible_power():
    mirror = map_events(PROGRAMS, [event(kind="SIMPLE", units=None, values=[0, 1, 2, 3], targets=["us-memphis-1"])],
                        FACTORIES, CONFIG, NOW)
    assert [i["curtailedFlexibleRatio"] for i in spec_of(mirror)["intervals"]] == [0.0, 0.25, 0.5, 1.0]
    custom = VenConfig(vtn="utility", level_map={1: 0.1, 2: 0.2, 3: 0.3})
    mirror = map_events(PROGRAMS, [event(kind="SIMPLE", units=None, values=[3], targets=["us-memphis-1"])],
                        FACTORIES, custom, NOW)
    assert spec_of(mirror)["intervals"][0]["curtailedFlexibleRatio"] == 0.3


def test_a_simple_level_outside_the_map_skips_the_event():
    mirror = map_events(PROGRAMS, [event(kind="SIMPLE", units=None, values=[1, 4])], FACTORIES, CONFIG, NOW)
    assert mirror.mapped == [] and [s.event_id for s in mirror.skipped] == ["ev-1"]
    assert "SIMPLE level 4" in mirror.skipped[0].reason


def test_an_interval_with_a_limit_and_a_level_gives_both_over_the_same_time():
    both = event(targets=["us-memphis-1"], values=[80_000])
    both["intervals"][0]["payloads"].append({"type": "SIMPLE", "values": [2]})
    both["intervals"][0]["payloads"].append({"type": "PRICE", "values": [0.2]})
    intervals = spec_of(map_events(PROGRAMS, [both], FACTORIES, CONFIG, NOW))["intervals"]
    assert intervals == [
        {"start": "2026-07-14T18:00:00Z", "duration": "PT1H", "importLimitMW": 80.0},
        {"start": "2026-07-14T18:00:00Z", "duration": "PT1H", "curtailedFlexibleRatio": 0.5},
    ]


def test_other_payload_types_are_ignored_and_an_event_of_only_those_is_not_mirrored():
    mirror = map_events(PROGRAMS, [event(kind="PRICE", units=None, values=[0.17])], FACTORIES, CONFIG, NOW)
    assert mirror.mapped == [] and mirror.skipped == []


def test_units_of_the_payload_descriptor():
    watts = map_events(PROGRAMS, [event(units="W", values=[75e6], targets=["us-memphis-1"])], FACTORIES, CONFIG, NOW)
    assert spec_of(watts)["intervals"][0]["importLimitMW"] == 75.0
    absent = map_events(PROGRAMS, [event(units=None, values=[75_000], targets=["us-memphis-1"])], FACTORIES,
                        CONFIG, NOW)
    assert spec_of(absent)["intervals"][0]["importLimitMW"] == 75.0  # kW: OpenADR's unit of power
    odd = map_events(PROGRAMS, [event(units="KVAR", values=[75_000])], FACTORIES, CONFIG, NOW)
    assert odd.mapped == [] and "KVAR" in odd.skipped[0].reason


def test_intervals_with_their_own_period_and_ones_that_follow():
    own = event(targets=["us-memphis-1"], values=[90_000, 80_000, 70_000])
    own["intervals"][1]["intervalPeriod"] = {"start": "2026-07-14T22:00:00+00:00", "duration": "P0Y0M0DT0H30M0S"}
    intervals = spec_of(map_events(PROGRAMS, [own], FACTORIES, CONFIG, NOW))["intervals"]
    assert [(i["start"], i["duration"], i["importLimitMW"]) for i in intervals] == [
        ("2026-07-14T18:00:00Z", "PT1H", 90.0),
        ("2026-07-14T22:00:00Z", "PT30M", 80.0),
        ("2026-07-14T22:30:00Z", "PT1H", 70.0),  # follows the previous one, the event's duration
    ]
    # no event intervalPeriod: every interval needs its own
    only_own = event(targets=["us-memphis-1"], values=[60_000], intervalPeriod=None)
    only_own["intervals"][0]["intervalPeriod"] = {"start": "2026-07-14T18:00:00-07:00", "duration": "PT2H"}
    [interval] = spec_of(map_events(PROGRAMS, [only_own], FACTORIES, CONFIG, NOW))["intervals"]
    assert interval == {"start": "2026-07-15T01:00:00Z", "duration": "PT2H", "importLimitMW": 60.0}
    no_start = event(values=[60_000], intervalPeriod=None)
    mirror = map_events(PROGRAMS, [no_start], FACTORIES, CONFIG, NOW)
    assert mirror.mapped == [] and "no start" in mirror.skipped[0].reason


def test_zero_length_intervals_are_dropped():
    mirror = map_events(PROGRAMS, [event(targets=["us-memphis-1"], duration="PT0S")], FACTORIES, CONFIG, NOW)
    assert mirror.mapped == [] and mirror.skipped == []


def test_start_now_is_when_the_event_was_first_seen_and_stays_there():
    now_event = event(targets=["us-memphis-1"], start="0001-01-01T00:00:00+00:00", values=[70_000])
    first = map_events(PROGRAMS, [now_event], FACTORIES, CONFIG, NOW)
    [mapped] = first.mapped
    assert mapped.manifest["spec"]["intervals"][0]["start"] == "2026-07-14T17:00:00Z"
    # a minute later, the GridEvent written then remembers when it was first seen
    existing = existing_of(mapped.manifest)
    assert existing is not None
    later = NOW + dt.timedelta(minutes=1)
    again = map_events(PROGRAMS, [now_event], FACTORIES, CONFIG, later, known={existing.name: existing.known})
    assert again.mapped[0].manifest == mapped.manifest
    assert plan_sync(again, [existing], later).apply == []


def test_until_further_notice_is_held_a_step_at_a_time():
    forever = event(targets=["us-memphis-1"], start="0001-01-01T00:00:00+00:00", duration="P9999Y0M0DT0H0M0S",
                    values=[50_000, 40_000])
    mirror = map_events(PROGRAMS, [forever], FACTORIES, CONFIG, NOW)
    [interval] = spec_of(mirror)["intervals"]  # the second interval would follow an endless one: never
    assert interval == {"start": "2026-07-14T17:00:00Z", "duration": "P2D", "importLimitMW": 50.0}
    existing = existing_of(mirror.mapped[0].manifest)
    assert existing is not None
    known = {existing.name: existing.known}
    # within the step nothing changes; past it, the end moves a step on
    same = map_events(PROGRAMS, [forever], FACTORIES, CONFIG, NOW + dt.timedelta(hours=20), known=known)
    assert plan_sync(same, [existing], NOW + dt.timedelta(hours=20)).apply == []
    moved = map_events(PROGRAMS, [forever], FACTORIES, CONFIG, NOW + dt.timedelta(hours=25), known=known)
    assert spec_of(moved)["intervals"][0]["duration"] == "P3D"
    # and a step of an hour holds it an hour or two ahead
    hourly = VenConfig(vtn="utility", open_ended_step=dt.timedelta(hours=1))
    assert spec_of(map_events(PROGRAMS, [forever], FACTORIES, hourly, NOW))["intervals"][0]["duration"] == "PT2H"


def test_an_end_more_than_31_days_ahead_is_held_like_until_further_notice():
    long = event(targets=["us-memphis-1"], start="2026-07-14T16:00:00+00:00", duration="P1Y", values=[50_000])
    [interval] = spec_of(map_events(PROGRAMS, [long], FACTORIES, CONFIG, NOW))["intervals"]
    assert interval["duration"] == "P2D"  # the first whole day after 16:00 more than a day after 17:00


@pytest.mark.parametrize(("change", "reason"), [
    (lambda e: e.pop("id"), "id"),
    (lambda e: e.update(programID=None), "programID"),
    (lambda e: e["intervalPeriod"].update(start="tomorrow"), "RFC 3339"),
    (lambda e: e["intervalPeriod"].update(start="2026-07-14T18:00:00"), "offset"),
    (lambda e: e["intervalPeriod"].update(duration="a while"), "duration"),
    (lambda e: e["intervals"][0]["payloads"][0].update(values=[-5]), "outside"),
    (lambda e: e["intervals"][0]["payloads"][0].update(values=[2e11]), "outside"),
    (lambda e: e["intervals"][0]["payloads"][0].update(values=["a lot"]), "not a number"),
    (lambda e: e["intervals"][0]["payloads"][0].update(values=[True]), "not a number"),
    (lambda e: e["intervals"][0]["payloads"][0].update(values=[]), "no value"),
    (lambda e: e["intervals"][0].update(payloads={"type": "x"}), "not a list"),
    (lambda e: e.update(intervals="many"), "not a list"),
    (lambda e: e.update(targets=[3]), "targets"),
    (lambda e: e["intervals"].__setitem__(0, "x"), "not an object"),
])
def test_bad_data_skips_that_event_alone(change: Any, reason: str):
    bad = event("bad")
    change(bad)
    mirror = map_events(PROGRAMS, [bad, event("good")], FACTORIES, CONFIG, NOW)
    assert mirror.event_ids == {"good"}
    [skipped] = mirror.skipped
    assert reason in skipped.reason, skipped.reason


def test_an_event_that_is_not_an_object_is_skipped():
    mirror = map_events(PROGRAMS, ["nonsense", None, event("good")], FACTORIES, CONFIG, NOW)
    assert mirror.event_ids == {"good"} and [s.event_id for s in mirror.skipped] == ["#0", "#1"]


def test_more_intervals_than_a_grid_event_holds_skip_the_event():
    many = event(values=[1000.0] * 289, duration="PT5M")
    mirror = map_events(PROGRAMS, [many], FACTORIES, CONFIG, NOW)
    assert mirror.mapped == [] and "289 intervals" in mirror.skipped[0].reason
    assert map_events(PROGRAMS, [event(values=[1000.0] * 288, duration="PT5M", targets=["us-memphis-1"])],
                      FACTORIES, CONFIG, NOW).mapped


# --------------------------------------------------------------------------- properties of the mapping

json_leaf = st.none() | st.booleans() | st.integers(-10**6, 10**12) | st.floats(allow_nan=True) | st.text(max_size=12)
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=10), inner, max_size=4), max_leaves=20)
times = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1),
                     timezones=st.just(dt.UTC)).map(lambda t: t.isoformat()) | st.just("0001-01-01T00:00:00+00:00")
durations = (st.integers(0, 10 * 86_400).map(lambda s: rust_duration(s)) | st.sampled_from(
    ["PT1H", "P1D", "P1M", "P9999Y", "P0Y0M0DT0H0M0.25S", "P1Y", "PT0S"]))
payload = st.one_of(
    st.fixed_dictionaries({"type": st.just("IMPORT_CAPACITY_LIMIT"),
                           "values": st.lists(st.floats(min_value=0, max_value=1e8) | st.integers(0, 10**8),
                                              min_size=1, max_size=2)}),
    st.fixed_dictionaries({"type": st.just("SIMPLE"), "values": st.lists(st.integers(0, 3), min_size=1, max_size=1)}),
    st.fixed_dictionaries({"type": st.sampled_from(["PRICE", "GHG", "ALERT_OTHER"]), "values": st.just([1])}),
)
period = st.fixed_dictionaries({"start": times}, optional={"duration": durations, "randomizeStart": durations})
intervals = st.lists(st.fixed_dictionaries({"id": st.integers(0, 99), "payloads": st.lists(payload, min_size=1,
                                                                                            max_size=3)},
                                           optional={"intervalPeriod": period}), max_size=12)
events = st.fixed_dictionaries(
    {"id": st.from_regex(r"[a-zA-Z0-9_-]{1,128}", fullmatch=True), "programID": st.sampled_from(["p1", "p2", "p3"]),
     "intervals": intervals},
    optional={"intervalPeriod": period, "targets": st.lists(st.sampled_from(["us-memphis-1", "fr-grenoble-1", "x"])),
              "modificationDateTime": times, "eventName": st.text(max_size=300),
              "payloadDescriptors": st.lists(st.fixed_dictionaries({
                  "payloadType": st.just("IMPORT_CAPACITY_LIMIT"), "units": st.sampled_from(["KW", "W", "MW"])}),
                  max_size=1)},
)
nows = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2035, 1, 1), timezones=st.just(dt.UTC))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events, max_size=4), nows)
def test_the_mapping_never_makes_a_grid_event_the_model_refuses(batch: list[dict[str, Any]], now: dt.datetime):
    mirror = map_events(PROGRAMS, batch, FACTORIES, CONFIG, now)
    for mapped in mirror.mapped:
        grid_event = GridEvent.model_validate(mapped.manifest)  # raises if refused
        assert grid_event.metadata.name == mapped.name and DNS_LABEL.match(mapped.name)
        for start, end in interval_bounds(grid_event):
            assert end > start
        existing = existing_of(mapped.manifest)
        assert existing is not None and unchanged(mapped.manifest, existing)


@settings(max_examples=300, deadline=None)
@given(st.lists(json_value | events.map(lambda e: {**e, "intervals": [json_value]}), max_size=4))
def test_the_mapping_never_raises_on_any_json(batch: list[Any]):
    mirror = map_events(PROGRAMS, batch, FACTORIES, CONFIG, NOW)
    for mapped in mirror.mapped:
        GridEvent.model_validate(mapped.manifest)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e8, allow_nan=False), min_size=1, max_size=5))
def test_limits_in_kw_arrive_in_mw_exactly(values: list[float]):
    mirror = map_events(PROGRAMS, [event(values=values, targets=["us-memphis-1"])], FACTORIES, CONFIG, NOW)
    assert [i["importLimitMW"] for i in spec_of(mirror)["intervals"]] == [kw_to_mw(v) for v in values]


# --------------------------------------------------------------------------- what to write


def existing(manifest: dict[str, Any], **status: Any) -> Any:
    obj = {**manifest, "metadata": {**manifest["metadata"], "generation": 1}}
    if status:
        obj["status"] = status
    found = existing_of(obj)
    assert found is not None
    return found


def test_a_new_event_is_applied_and_an_unchanged_one_is_not():
    mirror = map_events(PROGRAMS, [event(targets=["us-memphis-1"])], FACTORIES, CONFIG, NOW)
    first = plan_sync(mirror, [], NOW)
    assert [m.name for m in first.apply] == [mirror.mapped[0].name] and first.cancel == []
    stored = existing(mirror.mapped[0].manifest)
    again = plan_sync(map_events(PROGRAMS, [event(targets=["us-memphis-1"])], FACTORIES, CONFIG, NOW,
                                 known={stored.name: stored.known}), [stored], NOW)
    assert again.apply == [] and again.cancel == [] and again.unchanged == 1


def test_a_modified_event_is_applied_again():
    mirror = map_events(PROGRAMS, [event(targets=["us-memphis-1"])], FACTORIES, CONFIG, NOW)
    stored = existing(mirror.mapped[0].manifest)
    known = {stored.name: stored.known}
    modified = event(targets=["us-memphis-1"], values=[90_000, 60_000, 75_000], modified="2026-07-14T16:30:00+00:00")
    plan = plan_sync(map_events(PROGRAMS, [modified], FACTORIES, CONFIG, NOW, known=known), [stored], NOW)
    [applied] = plan.apply
    assert applied.manifest["spec"]["intervals"][1]["importLimitMW"] == 60.0
    # only the modification time changed: applied again too (the operator re-plans)
    touched = event(targets=["us-memphis-1"], modified="2026-07-14T16:45:00+00:00")
    assert len(plan_sync(map_events(PROGRAMS, [touched], FACTORIES, CONFIG, NOW, known=known), [stored],
                         NOW).apply) == 1


def test_an_event_gone_from_the_listing_is_cancelled_once_and_kept():
    mirror = map_events(PROGRAMS, [event(targets=["us-memphis-1"])], FACTORIES, CONFIG, NOW)
    stored = existing(mirror.mapped[0].manifest)
    gone = plan_sync(map_events(PROGRAMS, [], FACTORIES, CONFIG, NOW), [stored], NOW)
    assert gone.apply == [] and gone.cancel == [stored]
    body = cancelled_manifest(stored)
    assert body["spec"] == {**stored.spec, "cancelled": True}
    assert body["metadata"]["labels"] == stored.labels
    assert GridEvent.model_validate(body).spec.cancelled
    cancelled = existing(body)
    assert plan_sync(map_events(PROGRAMS, [], FACTORIES, CONFIG, NOW), [cancelled], NOW).cancel == []


def test_an_event_no_longer_targeting_a_factory_cancels_that_factorys_grid_event():
    both = map_events(PROGRAMS, [event(targets=[])], FACTORIES, CONFIG, NOW)
    stored = [existing(m.manifest) for m in both.mapped]
    narrowed = plan_sync(map_events(PROGRAMS, [event(targets=["fr-grenoble-1"])], FACTORIES, CONFIG, NOW,
                                    known={s.name: s.known for s in stored}), stored, NOW)
    assert [c.factory for c in narrowed.cancel] == ["us-memphis-1"] and narrowed.apply == []


def test_an_event_skipped_for_bad_data_keeps_its_grid_events():
    stored = existing(map_events(PROGRAMS, [event(targets=["us-memphis-1"])], FACTORIES, CONFIG, NOW)
                      .mapped[0].manifest)
    broken = event(targets=["us-memphis-1"])
    broken["intervalPeriod"]["start"] = "soon"
    plan = plan_sync(map_events(PROGRAMS, [broken], FACTORIES, CONFIG, NOW), [stored], NOW)
    assert plan.apply == [] and plan.cancel == []


def test_an_event_that_is_over_is_not_cancelled_when_the_vtn_drops_it():
    stored = existing(map_events(PROGRAMS, [event(targets=["us-memphis-1"])], FACTORIES, CONFIG, NOW)
                      .mapped[0].manifest)
    assert stored.ends == dt.datetime(2026, 7, 14, 21, tzinfo=dt.UTC)
    after = dt.datetime(2026, 7, 14, 21, 1, tzinfo=dt.UTC)
    assert plan_sync(map_events(PROGRAMS, [], FACTORIES, CONFIG, after), [stored], after).cancel == []
    assert missing_event_ids([stored], [], after) == [] and missing_event_ids([stored], [], NOW) == ["ev-1"]
    assert missing_event_ids([stored], [event()], NOW) == []


def test_not_ours_or_unreadable_objects_are_not_existing_grid_events():
    manual = {"apiVersion": "meshplane.io/v1alpha1", "kind": "GridEvent", "metadata": {"name": "by-hand"},
              "spec": {"factory": "f", "intervals": [{"start": "2026-07-14T18:00:00Z", "duration": "PT1H",
                                                      "curtailedMW": 5}]}}
    assert existing_of(manual) is None
    assert existing_of({"kind": "GridEvent"}) is None


def test_stale_marking_concerns_grid_events_to_come_or_in_force():
    mirror = map_events(PROGRAMS, [event("a", targets=["us-memphis-1"]), event("b", targets=["us-memphis-1"])],
                        FACTORIES, CONFIG, NOW)
    a = existing(mirror.mapped[0].manifest)
    b = mirror.mapped[1].manifest
    marked = existing({**b, "metadata": {**b["metadata"], "annotations": {
        **b["metadata"]["annotations"], STALE_ANNOTATION: "2026-07-14T17:00:00Z"}}})
    cancelled = existing(cancelled_manifest(a))
    assert stale_targets([a, marked], NOW) == [a]
    assert stale_targets([cancelled], NOW) == []
    assert stale_targets([a], dt.datetime(2026, 7, 15, tzinfo=dt.UTC)) == []  # over
    assert marked.stale and not a.stale
    assert own_selector("utility") == "app.kubernetes.io/managed-by=meshplane-ven,meshplane.io/openadr-vtn=utility"


# --------------------------------------------------------------------------- reports


def test_an_interval_end_is_reported_once_within_the_grace():
    stored = existing(map_events(PROGRAMS, [event(targets=["us-memphis-1"])], FACTORIES, CONFIG, NOW,
                                 allocated_mw={"us-memphis-1": 300.0}).mapped[0].manifest)
    grace = dt.timedelta(minutes=3)
    assert due_reports([stored], dt.datetime(2026, 7, 14, 18, 59, tzinfo=dt.UTC), grace) == []
    [due] = due_reports([stored], dt.datetime(2026, 7, 14, 19, 0, 5, tzinfo=dt.UTC), grace)
    assert (due.index, due.start, due.end, due.limit_mw, due.baseline_mw) == (
        0, dt.datetime(2026, 7, 14, 18, tzinfo=dt.UTC), dt.datetime(2026, 7, 14, 19, tzinfo=dt.UTC), 90.0, 300.0)
    assert due_reports([stored], dt.datetime(2026, 7, 14, 19, 4, tzinfo=dt.UTC), grace) == []  # too late
    status = last_report_status(due, dt.datetime(2026, 7, 14, 19, 0, 5, tzinfo=dt.UTC), 74.2, 300.0)
    assert status["status"]["lastReport"] == {"at": "2026-07-14T19:00:05Z", "demandMW": 74.2, "limitMW": 90.0,
                                              "baselineMW": 300.0}
    GridEventStatus.model_validate(status["status"])
    reported = existing(stored_manifest(stored), lastReport=status["status"]["lastReport"])
    assert due_reports([reported], dt.datetime(2026, 7, 14, 19, 0, 30, tzinfo=dt.UTC), grace) == []
    [second] = due_reports([reported], dt.datetime(2026, 7, 14, 20, 0, 1, tzinfo=dt.UTC), grace)
    assert (second.index, second.limit_mw) == (1, 75.0)
    assert next_interval_end([reported], dt.datetime(2026, 7, 14, 19, 30, tzinfo=dt.UTC)) \
        == dt.datetime(2026, 7, 14, 20, tzinfo=dt.UTC)
    assert next_interval_end([existing(cancelled_manifest(reported))], NOW) is None


def stored_manifest(found: Any) -> dict[str, Any]:
    return {"apiVersion": "meshplane.io/v1alpha1", "kind": "GridEvent",
            "metadata": {"name": found.name, "labels": found.labels, "annotations": found.annotations},
            "spec": found.spec}


def test_the_report_body_is_an_openadr_report_in_kw():
    stored = existing(map_events(PROGRAMS, [event(targets=["us-memphis-1"])], FACTORIES, CONFIG, NOW)
                      .mapped[0].manifest)
    [due] = due_reports([stored], dt.datetime(2026, 7, 14, 19, 0, 5, tzinfo=dt.UTC), dt.timedelta(minutes=3))
    body = report_body(due, client_name="meshplane", resource_name="TVA-RES-0042", demand_mw=74.2, baseline_mw=98.5)
    assert body == {
        "objectType": "REPORT", "programID": "p1", "eventID": "ev-1", "clientName": "meshplane",
        "reportName": f"{stored.name}/0",
        "payloadDescriptors": [{"payloadType": "DEMAND", "readingType": "ESTIMATED", "units": "KW"},
                               {"payloadType": "BASELINE", "readingType": "ESTIMATED", "units": "KW"}],
        "resources": [{"resourceName": "TVA-RES-0042",
                       "intervalPeriod": {"start": "2026-07-14T18:00:00Z", "duration": "PT1H"},
                       "intervals": [{"id": 0, "payloads": [{"type": "DEMAND", "values": [74_200.0]},
                                                            {"type": "BASELINE", "values": [98_500.0]}]}]}],
    }
    without_baseline = report_body(due, client_name="m", resource_name="r", demand_mw=1.0, baseline_mw=None)
    assert [p["type"] for p in without_baseline["resources"][0]["intervals"][0]["payloads"]] == ["DEMAND"]


def test_known_reads_what_the_vens_annotations_remember():
    assert Known() == existing({"apiVersion": "meshplane.io/v1alpha1", "kind": "GridEvent", "metadata": {
        "name": "x", "annotations": {FIRST_SEEN_ANNOTATION: "later", BASELINE_ANNOTATION: "nan"}},
        "spec": map_events(PROGRAMS, [event(targets=["us-memphis-1"])], FACTORIES, CONFIG, NOW)
        .mapped[0].manifest["spec"]}).known
