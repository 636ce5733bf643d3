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


def _engine_default(cls, name):
    f = cls.__dataclass_fields__[name]
    return f.default


def _crd_default(model, name):
    value = model.model_fields[name].get_default(call_default_factory=True)
    return tuple(value) if isinstance(value, list) else value


def test_engine_defaults_are_the_crds():
    """A field the CRD defaults has the same default in the engine (a manifest that
    leaves it out and a Mesh built without it must plan alike)."""
    from controller.api.models import factory, fleet, workload
    from placement import problem

    pairs = [
        (factory.FactoryPower, problem.FactorySite, ["flexible_mw", "curtailed_mw", "pue", "price_per_mwh",
                                                     "carbon_grams_per_kwh"]),
        (factory.AIFactorySpec, problem.FactorySite, ["cordoned", "links"]),
        (factory.Link, problem.Link, ["bandwidth_gbps"]),
        (fleet.EdgeFleetSpec, problem.FleetSite, ["price_per_mwh", "carbon_grams_per_kwh", "cordoned", "availability",
                                                  "links"]),
        (fleet.AvailabilityWindow, problem.AvailabilityWindow, ["timezone"]),
        (workload.UserRegion, problem.UserRegion, ["weight"]),
        (workload.PlacementPolicy, problem.WorkloadDemand, ["allow_fleets", "splittable", "max_sites"]),
        (workload.MeshWorkloadSpec, problem.WorkloadDemand, ["min_memory_gib", "interruptible", "priority",
                                                             "accelerator_models"]),
    ]
    for model, engine, names in pairs:
        for name in names:
            assert _engine_default(engine, name) == _crd_default(model, name), f"{engine.__name__}.{name}"
    assert problem.FleetSite.__dataclass_fields__["uplink_bandwidth_mbps"].default == _crd_default(
        fleet.Uplink, "bandwidth_mbps")
    assert problem.WorkloadDemand(key="a/b", accelerators=1).priority == 100
    assert problem.FactorySite(name="f", region="r", country="US", firm_mw=1.0).pue == 1.2
