"""The resource models: API names, cross-field rules, round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.api.models import AIFactorySpec, FactoryPower, MeshWorkloadSpec
from controller.api.models.base import to_api_name
from controller.cli.files import load_manifests

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("attribute", "api_name"),
    [
        ("firm_mw", "firmMW"),
        ("price_per_mwh", "pricePerMWh"),
        ("carbon_grams_per_kwh", "carbonGramsPerKWh"),
        ("memory_gib", "memoryGiB"),
        ("latency_ms", "latencyMs"),
        ("tokens_per_second_per_device", "tokensPerSecondPerDevice"),
        ("region", "region"),
    ],
)
def test_api_names_keep_units(attribute, api_name):
    assert to_api_name(attribute) == api_name


def test_examples_round_trip_through_the_api_form():
    manifests = load_manifests([REPO / "examples"])
    for resource in [*manifests.factories, *manifests.fleets, *manifests.workloads]:
        spec = resource.spec
        assert type(spec).model_validate(spec.to_api()) == spec


power_mw = st.floats(min_value=0, max_value=100_000, allow_nan=False)


@given(firm=power_mw, flexible=power_mw, curtailed=power_mw)
def test_power_rules_accept_exactly_the_consistent_budgets(firm, flexible, curtailed):
    consistent = curtailed <= flexible and firm + flexible > 0
    data = {"firmMW": firm, "flexibleMW": flexible, "curtailedMW": curtailed}
    if consistent:
        power = FactoryPower.model_validate(data)
        assert power.curtailed_mw <= power.flexible_mw
    else:
        with pytest.raises(ValidationError):
            FactoryPower.model_validate(data)


@given(accelerators=st.none() | st.integers(1, 1000), tokens=st.none() | st.floats(1, 1e6))
def test_a_workload_asks_for_devices_or_tokens_not_both(accelerators, tokens):
    data = {"type": "inference"}
    if accelerators is not None:
        data["accelerators"] = accelerators
    if tokens is not None:
        data["tokensPerSecond"] = tokens
    if (accelerators is None) != (tokens is None):
        MeshWorkloadSpec.model_validate(data)
    else:
        with pytest.raises(ValidationError, match="set exactly one of accelerators or tokensPerSecond"):
            MeshWorkloadSpec.model_validate(data)


def test_defaults_are_the_documented_ones():
    spec = AIFactorySpec.model_validate(
        {
            "region": "eu-west",
            "country": "FR",
            "power": {"firmMW": 10},
            "acceleratorPools": [
                {"model": "nvidia-gb200", "count": 8, "wattsPerDevice": 1800,
                 "tokensPerSecondPerDevice": 3000, "memoryGiB": 186}
            ],
        }
    )
    assert spec.power.pue == 1.2 and spec.power.flexible_mw == 0 and spec.links == [] and not spec.cordoned
    workload = MeshWorkloadSpec.model_validate({"type": "batch", "accelerators": 4})
    assert workload.placement.max_sites == 1 and not workload.placement.allow_fleets
    assert workload.priority == 100


def test_yaml_unquoted_times_are_refused_with_the_field():
    """PyYAML reads an unquoted 22:00 as the base-60 integer 1320; the model says which field."""
    from controller.api.models import AvailabilityWindow

    with pytest.raises(ValidationError) as error:
        AvailabilityWindow.model_validate({"start": 1320, "end": "06:00", "onlineRatio": 0.5})
    assert error.value.errors()[0]["loc"] == ("start",)
