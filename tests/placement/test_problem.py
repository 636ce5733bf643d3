import datetime as dt

import pytest

from placement.problem import Mesh, WorkloadDemand


def test_exactly_one_demand():
    with pytest.raises(ValueError, match="exactly one"):
        WorkloadDemand(key="a/b")
    with pytest.raises(ValueError, match="exactly one"):
        WorkloadDemand(key="a/b", accelerators=1, tokens_per_second=5.0)
    assert WorkloadDemand(key="a/b", accelerators=2).accelerators == 2


def test_site_limit_gang_and_split():
    assert WorkloadDemand(key="a/t", type="training", accelerators=8, splittable=True, max_sites=3).site_limit == 1
    assert WorkloadDemand(key="a/i", tokens_per_second=10.0, splittable=True, max_sites=3).site_limit == 3
    assert WorkloadDemand(key="a/i", tokens_per_second=10.0, splittable=False, max_sites=3).site_limit == 1


def test_bad_values_rejected():
    with pytest.raises(ValueError):
        WorkloadDemand(key="a/b", accelerators=1, type="gaming")
    with pytest.raises(ValueError):
        WorkloadDemand(key="a/b", accelerators=1, priority=2_000_000)
    with pytest.raises(ValueError, match="timezone-aware"):
        Mesh(at=dt.datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="unique"):
        Mesh(workloads=(WorkloadDemand(key="a/b", accelerators=1),) * 2)
