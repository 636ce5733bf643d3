import datetime as dt

from placement import capacity
from placement.problem import AvailabilityWindow, FactorySite, FleetSite

UTC = dt.UTC


def fleet(*windows):
    return FleetSite(name="cars", region="r", country="DE", devices=1000, opt_in_ratio=0.5,
                     availability=tuple(windows))


def test_no_windows_always_online():
    assert capacity.online_ratio(fleet(), dt.datetime(2025, 1, 1, 12, tzinfo=UTC)) == 1.0
    assert capacity.fleet_effective_devices(fleet(), dt.datetime(2025, 1, 1, tzinfo=UTC)) == 500


def test_window_wraps_midnight_in_local_time():
    night = AvailabilityWindow(dt.time(22), dt.time(6), "Europe/Berlin", 0.8)
    f = fleet(night)
    # 21:30 UTC in January = 22:30 in Berlin -> online
    assert capacity.online_ratio(f, dt.datetime(2025, 1, 1, 21, 30, tzinfo=UTC)) == 0.8
    # 04:00 UTC = 05:00 Berlin -> online; 05:30 UTC = 06:30 -> offline
    assert capacity.online_ratio(f, dt.datetime(2025, 1, 2, 4, 0, tzinfo=UTC)) == 0.8
    assert capacity.online_ratio(f, dt.datetime(2025, 1, 2, 5, 30, tzinfo=UTC)) == 0.0
    # noon: outside every window -> 0 devices
    assert capacity.fleet_effective_devices(f, dt.datetime(2025, 1, 2, 12, tzinfo=UTC)) == 0
    assert capacity.fleet_effective_devices(f, dt.datetime(2025, 1, 1, 21, 30, tzinfo=UTC)) == 400


def test_overlapping_windows_take_highest_ratio():
    f = fleet(AvailabilityWindow(dt.time(0), dt.time(12), "UTC", 0.3),
              AvailabilityWindow(dt.time(6), dt.time(8), "UTC", 0.9))
    assert capacity.online_ratio(f, dt.datetime(2025, 1, 1, 7, tzinfo=UTC)) == 0.9
    assert capacity.online_ratio(f, dt.datetime(2025, 1, 1, 9, tzinfo=UTC)) == 0.3


def test_curtailment_removes_flexible_first():
    f = FactorySite(name="f", region="r", country="US", firm_mw=10, flexible_mw=5, curtailed_mw=3)
    assert capacity.factory_usable_mw(f) == 12
    f2 = FactorySite(name="f", region="r", country="US", firm_mw=10, flexible_mw=5, curtailed_mw=9)
    assert capacity.factory_usable_mw(f2) == 10


def test_integer_rounding_is_conservative():
    assert capacity.device_watts(700, 1.25) == 875
    assert capacity.device_watts(700, 1.2501) == 876
    assert capacity.budget_watts(1.0000005) == 1_000_000
    assert capacity.tps_milli(2.5) == 2500
    assert capacity.demand_milli(2.5001) == 2501
