"""The pure part of the ``ocm`` backend: the ManifestWorks a member's work travels in,
what their status feedback says, and a ManagedCluster read as reachability.

The ManifestWork status fixtures have the shape OCM v1.2's work agent writes (the e2e
test ``tests/e2e/test_ocm_delivery.py`` checks the same functions against the real agent).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from controller.api.models import SiteStatus
from controller.core.delivery import LOCAL, ORIGIN_LABEL, WORKLOAD_UID_LABEL, ClusterHealth, Observed, desired_objects
from controller.core.ocm import (
    managed_cluster_health,
    manifest_work_name,
    manifest_works,
    observe_manifest_work,
    placement_scores,
)
from controller.core.reconcile import Snapshot, reconcile
from placement.problem import SolverConfig
from tests.support.delivery import factory, member_cluster, workload

AT = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
CONFIG = SolverConfig(time_limit_s=10, num_workers=1)


def _member_objects() -> Any:
    clusters = {"paris": ClusterHealth("Reachable", "Reachable", "", AT, AT)}
    observed = Observed(clusters=clusters, delivering=frozenset({"paris"}))
    snapshot = Snapshot([factory("fr-1", "FR", 10, "paris")], [], [workload("a"), workload("b")], AT,
                        clusters=[member_cluster("paris")], observed=observed)
    outcome = reconcile(snapshot, CONFIG)
    desired = desired_objects([(w, outcome.workloads[w.key], f"uid-{w.metadata.name}") for w in snapshot.workloads],
                              snapshot.site_targets(), "hub-eu", targets=[LOCAL, "paris"])
    return desired["paris"]


def test_each_deployment_travels_in_its_own_labelled_manifest_work_that_orphans_the_namespace() -> None:
    member = _member_objects()
    works = manifest_works(member, "paris-mc")
    assert works.namespaces == {}
    assert sorted(works.deployments) == sorted(("paris-mc", manifest_work_name(ns, name)) for ns, name in member.deployments)
    for (namespace, name), deployment in member.deployments.items():
        work = works.deployments[("paris-mc", f"{namespace}.{name}")]
        assert work["metadata"]["namespace"] == "paris-mc"
        labels = work["metadata"]["labels"]
        assert labels[ORIGIN_LABEL] == "hub-eu" and labels[WORKLOAD_UID_LABEL] == deployment["metadata"]["labels"][
            WORKLOAD_UID_LABEL]
        manifests = work["spec"]["workload"]["manifests"]
        # the same bodies as the direct backend: the namespace first, then the Deployment
        assert manifests == [member.namespaces[namespace], deployment]
        orphans = work["spec"]["deleteOption"]["selectivelyOrphans"]["orphaningRules"]
        assert orphans == [{"group": "", "resource": "namespaces", "name": namespace}]
        [config] = work["spec"]["manifestConfigs"]
        assert config["resourceIdentifier"] == {"group": "apps", "resource": "deployments", "namespace": namespace,
                                                "name": name}
        assert {"type": "WellKnownStatus"} in config["feedbackRules"]
        assert works.owners[("paris-mc", f"{namespace}.{name}")] == member.owners[(namespace, name)]


def _work(replicas: int, feedback: dict[str, int] | None, *, generation: int = 1, applied_generation: int = 1,
          applied: bool = True, message: str = "") -> dict[str, Any]:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "a-fr-1", "namespace": "team"}, "spec": {"replicas": replicas}}
    manifest: dict[str, Any] = {
        "resourceMeta": {"group": "apps", "kind": "Deployment", "namespace": "team", "name": "a-fr-1",
                         "ordinal": 1, "resource": "deployments", "version": "v1"},
        "conditions": [{"type": "Applied", "status": "True" if applied else "False", "reason": "AppliedManifestComplete"
                        if applied else "AppliedManifestFailed", "message": message}],
    }
    if feedback is not None:
        manifest["statusFeedback"] = {"values": [{"name": name, "fieldValue": {"type": "Integer", "integer": value}}
                                                 for name, value in feedback.items()]}
    return {
        "metadata": {"name": "team.a-fr-1", "namespace": "paris", "generation": generation},
        "spec": {"workload": {"manifests": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}},
                                            deployment]}},
        "status": {"conditions": [{"type": "Applied", "status": "True" if applied else "False",
                                   "observedGeneration": applied_generation, "reason": "x", "message": message}],
                   "resourceStatus": {"manifests": [manifest]}},
    }


def _feedback(ready: int, available: int, spec: int, generation: int = 2, observed: int = 2) -> dict[str, int]:
    return {"ReadyReplicas": ready, "Replicas": spec, "AvailableReplicas": available, "specReplicas": spec,
            "generation": generation, "observedGeneration": observed}


def test_status_feedback_becomes_the_deployments_observation() -> None:
    key, seen = observe_manifest_work(_work(3, _feedback(2, 1, 3))) or (None, None)
    assert key == ("team", "a-fr-1") and seen is not None
    assert (seen.replicas, seen.ready_replicas, seen.available_replicas, seen.current, seen.problem) == (3, 2, 1, True, "")


def test_nothing_reported_yet_is_no_observation_and_a_stale_report_is_not_current() -> None:
    assert observe_manifest_work(_work(3, None)) is None
    # the agent has not seen the ManifestWork's new generation yet
    _, stale = observe_manifest_work(_work(3, _feedback(2, 2, 2), generation=2, applied_generation=1)) or (None, None)
    assert stale is not None and not stale.current
    # the Deployment controller has not caught up with the Deployment's generation
    _, behind = observe_manifest_work(_work(3, _feedback(3, 3, 3, generation=3, observed=2))) or (None, None)
    assert behind is not None and not behind.current


def test_a_manifest_the_agent_cannot_apply_is_a_problem_said_in_its_words() -> None:
    _, seen = observe_manifest_work(_work(2, None, applied=False, message="admission webhook denied")) or (None, None)
    assert seen is not None and "admission webhook denied" in seen.problem


@given(st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))
def test_feedback_values_are_read_back_as_given(wanted: int, ready: int, available: int) -> None:
    _, seen = observe_manifest_work(_work(wanted, _feedback(ready, available, wanted))) or (None, None)
    assert seen is not None
    assert (seen.replicas, seen.ready_replicas, seen.available_replicas) == (wanted, ready, available)


def _cluster(available: str | None, accepted: bool = True, taints: tuple[str, ...] = ()) -> dict[str, Any]:
    conditions = [] if available is None else [
        {"type": "ManagedClusterConditionAvailable", "status": available, "reason": "r", "message": "lease expired"}]
    return {"metadata": {"name": "paris"},
            "spec": {"hubAcceptsClient": accepted, "taints": [{"key": k, "effect": "NoSelect"} for k in taints]},
            "status": {"conditions": conditions}}


def test_a_managed_cluster_is_reachable_only_when_accepted_available_and_untainted() -> None:
    assert managed_cluster_health("paris", _cluster("True")).available
    said = {
        "missing": managed_cluster_health("paris", None),
        "not accepted": managed_cluster_health("paris", _cluster("True", accepted=False)),
        "never reported": managed_cluster_health("paris", _cluster(None)),
        "lease expired": managed_cluster_health("paris", _cluster("Unknown")),
        "unavailable": managed_cluster_health("paris", _cluster("False")),
        "tainted": managed_cluster_health("paris", _cluster("True", taints=[
            "cluster.open-cluster-management.io/unreachable"])),
    }
    assert not any(h.available for h in said.values())
    assert {name: h.reason for name, h in said.items()} == {
        "missing": "ManagedClusterNotFound", "not accepted": "NotAccepted",
        "never reported": "ManagedClusterAvailableUnknown", "lease expired": "ManagedClusterAvailableUnknown",
        "unavailable": "ManagedClusterUnavailable", "tainted": "Tainted",
    }
    # a taint of the user's own does not stop delivery (OCM's Placement reads those)
    assert managed_cluster_health("paris", _cluster("True", taints=["example.com/maintenance"])).available


def _site(free_mw: float, allocated_mw: float, free_devices: int, allocated_devices: int) -> SiteStatus:
    return SiteStatus.model_validate({
        "power": {"availableMW": free_mw, "allocatedMW": allocated_mw},
        "pools": [{"model": "m", "devicesAvailable": free_devices, "devicesAllocated": allocated_devices}],
    })


def test_placement_scores_are_the_free_shares_of_the_cluster_and_of_each_site() -> None:
    scores = {s["name"]: s["value"] for s in placement_scores({"fr-1": _site(30, 70, 10, 90), "fr-2": _site(50, 50, 0, 0)})}
    assert scores == {
        "freePowerPercent": 40, "freeAcceleratorsPercent": 10,  # (30 + 50) / 200, 10 / 100
        "fr-1.freePowerPercent": 30, "fr-1.freeAcceleratorsPercent": 10,
        "fr-2.freePowerPercent": 50, "fr-2.freeAcceleratorsPercent": 0,  # no devices: nothing free
    }
    assert placement_scores({}) == [{"name": "freeAcceleratorsPercent", "value": 0},
                                    {"name": "freePowerPercent", "value": 0}]


@given(st.lists(st.tuples(st.floats(0, 1e4), st.floats(0, 1e4), st.integers(0, 10**6), st.integers(0, 10**6)),
                max_size=6))
def test_placement_scores_stay_in_ocms_range_and_are_sorted(sites: list[tuple[float, float, int, int]]) -> None:
    scores = placement_scores({f"s{i}": _site(*figures) for i, figures in enumerate(sites)})
    assert all(isinstance(s["value"], int) and 0 <= s["value"] <= 100 for s in scores)
    assert [s["name"] for s in scores] == sorted(s["name"] for s in scores)
