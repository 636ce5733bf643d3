"""``controller.core.explanations``: one workload explained on the mesh of every site
and that workload alone gives exactly the verdicts of the whole mesh (the examples, and
synthetic meshes whose other workloads name regions, countries and placements the
explained one does not); the explanation agrees with the plan's counts when sites are
lost, curtailed by a grid event or named like a factory; fleets' online devices are the
engine's count."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from controller.api.resources import EdgeFleet
from controller.core.changes import with_statuses
from controller.core.convert import PHASE_PLACED, fleet_site
from controller.core.delivery import ClusterHealth, Observed
from controller.core.explanations import explain, online_devices, plan_mesh, verdicts
from controller.core.parse import Manifests, parse_objects
from controller.core.reconcile import Snapshot, reconcile
from placement.capacity import fleet_effective_devices
from placement.explain import column_verdicts
from placement.problem import SolverConfig
from tests.support.meshes import family_mesh, synthetic_mesh, to_manifests

from .conftest import CONFIG, NIGHT_IN_CALIFORNIA

GREEDY = SolverConfig(use_cpsat=False, compute_bound=False)
DAY_IN_CALIFORNIA = NIGHT_IN_CALIFORNIA + dt.timedelta(hours=12)


def _placed(snapshot: Snapshot, config: SolverConfig) -> Snapshot:
    """The snapshot once its statuses are written back: placed workloads carry their
    assignments, which the cost's stability tier reads."""
    return with_statuses(snapshot, reconcile(snapshot, config))


def _assert_same_verdicts(snapshot: Snapshot, keys: list[str], config: SolverConfig) -> None:
    whole = plan_mesh(snapshot, snapshot.workloads)
    by_key = {w.key: w for w in snapshot.workloads}
    for key in keys:
        alone = verdicts(snapshot, by_key[key], config)
        assert alone == column_verdicts(whole, key, config), key
        assert len(alone) == sum(len(f.pools) for f in whole.factories) + len(whole.fleets)


@pytest.mark.parametrize("at", [NIGHT_IN_CALIFORNIA, DAY_IN_CALIFORNIA], ids=["night", "day"])
def test_one_workload_alone_has_the_verdicts_of_the_whole_example_mesh(examples: Manifests, at: dt.datetime) -> None:
    snapshot = _placed(Snapshot(examples.factories, examples.fleets, examples.workloads, at), CONFIG)
    assert any(w.status is not None and w.status.phase == PHASE_PLACED for w in snapshot.workloads)
    _assert_same_verdicts(snapshot, [w.key for w in snapshot.workloads], CONFIG)


def _synthetic(family: str, workloads: int, sites: int, seed: int) -> Snapshot:
    """A synthetic mesh as manifests; every third workload with users also serves a
    region no site names (sorted first, so the other regions' rows shift in the whole
    mesh's latency matrix), and every fifth allows only a country no site is in."""
    mesh = family_mesh(family, workloads, sites, seed) if family != "base" else synthetic_mesh(workloads, sites, seed)
    objects: list[dict[str, Any]] = to_manifests(mesh)
    drafts = [o for o in objects if o["kind"] == "MeshWorkload"]
    for index, draft in enumerate(drafts):
        spec = draft["spec"]
        if index % 3 == 0 and "latency" in spec:
            spec["latency"]["users"].append({"region": f"aa-nowhere-{index}", "weight": 0.5})
        if index % 5 == 0:
            spec["sovereignty"] = {"allowedCountries": ["AQ"], "deniedCountries": []}
    manifests = parse_objects(objects, "synthetic")
    assert manifests.problems == []
    return Snapshot(manifests.factories, manifests.fleets, manifests.workloads, mesh.at)


@pytest.mark.parametrize(("family", "seed"), [("base", 0), ("base", 1), ("sovereignty", 2), ("night", 3)])
def test_one_workload_alone_has_the_verdicts_of_a_whole_synthetic_mesh(family: str, seed: int) -> None:
    snapshot = _placed(_synthetic(family, 240, 40, seed), GREEDY)
    keys = [w.key for w in snapshot.workloads]
    # the odd ones do not name the region or the country the others add
    _assert_same_verdicts(snapshot, keys[::7] + keys[1::11], GREEDY)


def _fleet_named(name: str, fleet: EdgeFleet) -> EdgeFleet:
    return fleet.model_copy(update={"metadata": fleet.metadata.model_copy(update={"name": name})})


def test_the_explanation_agrees_with_the_plans_counts_on_lost_curtailed_and_conflicting_sites(
    examples: Manifests,
) -> None:
    """The verdicts are computed on the sites as the reconcile planned them: a factory of
    a lost member cluster has no capacity, a grid event curtails Sejong, and a fleet
    named like a factory is left out (the whole mesh could not even hold it)."""
    factories = [
        f.model_copy(update={"spec": f.spec.model_copy(update={"member_cluster": "eu-member"})})
        if f.metadata.name == "fr-grenoble-1" else f
        for f in examples.factories
    ]
    event = parse_objects([{
        "apiVersion": "meshplane.io/v1alpha1", "kind": "GridEvent", "metadata": {"name": "heatwave"},
        "spec": {"factory": "kr-sejong-1", "leadTime": "PT30M",
                 "intervals": [{"start": "2026-11-22T08:00:00Z", "duration": "PT2H", "importLimitMW": 5}]},
    }], "test").grid_events
    lost = Observed(clusters={"eu-member": ClusterHealth("Lost", "Unreachable", "connection refused")})
    fleets = [*examples.fleets, _fleet_named("de-frankfurt-1", examples.fleets[0])]
    snapshot = Snapshot(factories, fleets, examples.workloads, NIGHT_IN_CALIFORNIA, observed=lost,
                        grid_events=event)
    outcome = reconcile(snapshot, CONFIG)
    sites = len(outcome.plan.sites)
    assert sites == len(examples.factories) + len(examples.fleets)
    mesh = plan_mesh(snapshot, [])
    assert next(f for f in mesh.factories if f.name == "fr-grenoble-1").cordoned
    assert next(f for f in mesh.factories if f.name == "kr-sejong-1").curtailed_mw > 0
    for workload in snapshot.workloads:
        decision = outcome.plan.workloads[workload.key]
        found = explain(snapshot, outcome, workload, CONFIG)
        assert found.rejections == decision.rejections and found.message == decision.message
        assert len(found.feasible_sites) == found.feasible_site_count == decision.feasible_sites, workload.key
        assert sum(found.rejections.values()) + decision.feasible_sites == sites
        assert "fr-grenoble-1" not in found.feasible_sites
        assert set(decision.sites) <= set(found.feasible_sites)
        costs = [(v.cost, v.site, v.accelerator_model) for v in found.candidates]
        assert costs == sorted(costs) and all(not v.rejected_by for v in found.candidates)


def test_a_fleets_online_devices_are_the_engines_count_hour_by_hour(examples: Manifests) -> None:
    moments = [NIGHT_IN_CALIFORNIA + dt.timedelta(hours=h) for h in range(24)]
    for fleet in examples.fleets:
        counts = online_devices(fleet, moments)
        assert counts == [fleet_effective_devices(fleet_site(fleet), m) for m in moments]
        assert 0 < max(counts) <= fleet.spec.devices
