"""controller.core.schedule: the next moment a fleet window opens or closes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from controller.core.parse import Manifests
from controller.core.schedule import next_window_change

LA = ZoneInfo("America/Los_Angeles")


def _fleet(examples: Manifests, name: str):
    return next(f for f in examples.fleets if f.metadata.name == name)


def test_the_parked_car_window_opens_at_22_and_closes_at_6(examples: Manifests) -> None:
    cars = _fleet(examples, "vehicles-california")  # 22:00-06:00 and 10:00-15:00, Los Angeles
    evening = dt.datetime(2026, 11, 21, 21, 0, tzinfo=LA)
    assert next_window_change([cars], evening) == dt.datetime(2026, 11, 21, 22, 0, tzinfo=LA).astimezone(dt.UTC)
    night = dt.datetime(2026, 11, 21, 23, 30, tzinfo=LA)
    assert next_window_change([cars], night) == dt.datetime(2026, 11, 22, 6, 0, tzinfo=LA).astimezone(dt.UTC)
    exactly = dt.datetime(2026, 11, 22, 6, 0, tzinfo=LA)  # strictly after: the next one is 10:00
    assert next_window_change([cars], exactly) == dt.datetime(2026, 11, 22, 10, 0, tzinfo=LA).astimezone(dt.UTC)


def test_the_earliest_change_over_all_fleets_wins(examples: Manifests) -> None:
    at = dt.datetime(2026, 11, 21, 23, 30, tzinfo=LA)
    each = [next_window_change([f], at) for f in examples.fleets]
    assert next_window_change(examples.fleets, at) == min(x for x in each if x is not None)


def test_no_windows_no_wake_up(examples: Manifests) -> None:
    cars = _fleet(examples, "vehicles-california")
    always = cars.model_copy(update={"spec": cars.spec.model_copy(update={"availability": []})})
    assert next_window_change([always], dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) is None
    assert next_window_change([], dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) is None
