"""The pure part of delivery: what each cluster should hold, lost clusters' sites, and
readiness in the statuses."""

from __future__ import annotations

import datetime as dt

from controller.api.resources import MeshWorkload
from controller.core.changes import changes, with_statuses
from controller.core.delivery import (
    LOCAL,
    ORIGIN_LABEL,
    WORKLOAD_UID_LABEL,
    ClusterHealth,
    DeploymentObservation,
    Observed,
    desired_objects,
    lost_sites,
)
from controller.core.reconcile import Snapshot, reconcile
from placement.problem import SolverConfig
from tests.support.delivery import factory, member_cluster, workload

AT = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
CONFIG = SolverConfig(time_limit_s=10, num_workers=1)


def _snapshot(observed: Observed, **workloads: MeshWorkload) -> Snapshot:
    factories = [factory("fr-1", "FR", 10, "paris"), factory("de-1", "DE", 50, "berlin"),
                 factory("de-local", "DE", 90, None)]
    return Snapshot(factories, [], list(workloads.values()), AT, clusters=[member_cluster("paris"), member_cluster("berlin")],
                    observed=observed)


def _reachable(*names: str) -> dict[str, ClusterHealth]:
    return {n: ClusterHealth("Reachable", "Reachable", "", AT, AT) for n in names}


def test_member_objects_carry_origin_labels_and_no_owner_and_local_ones_are_owned() -> None:
    observed = Observed(clusters=_reachable("paris", "berlin"), delivering=frozenset({LOCAL, "paris", "berlin"}))
    snapshot = _snapshot(observed, a=workload("a"))
    outcome = reconcile(snapshot, CONFIG)
    assert outcome.workloads["team/a"].sites == "fr-1"
    uid = "0f6f-uid"
    desired = desired_objects([(w, outcome.workloads[w.key], uid) for w in snapshot.workloads],
                              snapshot.site_targets(), "hub-eu", targets=[LOCAL, "paris", "berlin"])
    assert set(desired) == {LOCAL, "paris", "berlin"}
    assert desired[LOCAL].deployments == {} and desired["berlin"].deployments == {}
    [body] = desired["paris"].deployments.values()
    labels = body["metadata"]["labels"]
    assert labels[ORIGIN_LABEL] == "hub-eu" and labels[WORKLOAD_UID_LABEL] == uid
    assert "ownerReferences" not in body["metadata"]
    assert body["spec"]["replicas"] == 2
    assert body["spec"]["template"]["spec"]["nodeSelector"] == {"meshplane.io/site": "fr-1"}
    assert desired["paris"].namespaces["team"]["metadata"]["labels"][ORIGIN_LABEL] == "hub-eu"
    # the same workload on a local site: owned by the workload, no namespace body
    local = desired_objects([(w, outcome.workloads[w.key], uid) for w in snapshot.workloads],
                            {"fr-1": LOCAL}, "hub-eu", targets=[LOCAL])
    [owned] = local[LOCAL].deployments.values()
    assert owned["metadata"]["ownerReferences"][0]["uid"] == uid and local[LOCAL].namespaces == {}


def test_a_lost_clusters_sites_have_no_capacity_and_the_work_moves_or_is_preempted_naming_it() -> None:
    reachable = Observed(clusters=_reachable("paris", "berlin"), delivering=frozenset({"paris", "berlin"}))
    settled = with_statuses(*(lambda s: (s, reconcile(s, CONFIG)))(
        _snapshot(reachable, anywhere=workload("anywhere"), sovereign=workload("sovereign", ["FR"]))))
    assert {w.status.sites for w in settled.workloads if w.status} == {"fr-1"}
    lost = ClusterHealth("Lost", "Unreachable", "connection refused", AT, AT - dt.timedelta(minutes=2))
    observed = Observed(clusters={**_reachable("berlin"), "paris": lost}, delivering=frozenset({"paris", "berlin"}))
    after = Snapshot(settled.factories, [], settled.workloads, AT, clusters=settled.clusters, observed=observed)
    assert lost_sites(after.factories, observed) == {"fr-1": lost_sites(after.factories, observed)["fr-1"]}
    outcome = reconcile(after, CONFIG)
    assert outcome.workloads["team/anywhere"].sites == "de-1"
    sovereign = outcome.workloads["team/sovereign"]
    assert sovereign.phase == "Preempted" and "member cluster paris is lost" in sovereign.message
    reach = next(c for c in outcome.factories["fr-1"].conditions if c.type == "Reachable")
    assert (reach.status, reach.reason) == ("False", "Lost")
    assert outcome.clusters["paris"].last_seen_time == "2026-12-06T11:58:00Z"
    events = {(c.ref.name, e.reason) for c in changes(after, outcome) for e in c.events}
    assert ("sovereign", "Preempted") in events and ("paris", "Lost") in events and ("fr-1", "Lost") in events


def test_unreachable_is_reported_but_not_acted_on_before_lost() -> None:
    down = ClusterHealth("Unreachable", "Unreachable", "timed out", AT, AT)
    observed = Observed(clusters={**_reachable("berlin"), "paris": down}, delivering=frozenset({"paris", "berlin"}))
    outcome = reconcile(_snapshot(observed, a=workload("a")), CONFIG)
    status = outcome.workloads["team/a"]
    assert status.sites == "fr-1"  # a partitioned member may still run it: never moved on a guess
    available = next(c for c in status.conditions if c.type == "Available")
    assert (available.status, available.reason) == ("False", "ClusterUnreachable")


def test_readiness_from_the_member_becomes_ready_counts_and_the_available_condition() -> None:
    base = Observed(clusters=_reachable("paris", "berlin"), delivering=frozenset({"paris", "berlin"}))
    snapshot = _snapshot(base, a=workload("a"))
    outcome = reconcile(snapshot, CONFIG)
    status = outcome.workloads["team/a"]
    assert status.ready == "0/2"
    assert next(c for c in status.conditions if c.type == "Available").reason == "Delivering"
    key = ("paris", "team", "a-fr-1")
    for seen, reason, ready in (
        (DeploymentObservation(2, 1, 1), "Progressing", "1/2"),
        (DeploymentObservation(2, 0, 0, problem="pod a-1 ImagePullBackOff: no such image"), "Degraded", "0/2"),
        (DeploymentObservation(2, 2, 2), "Available", "2/2"),
    ):
        observed = Observed(clusters=base.clusters, deployments={key: seen},
                            delivering=base.delivering)
        status = reconcile(_snapshot(observed, a=workload("a")), CONFIG).workloads["team/a"]
        available = next(c for c in status.conditions if c.type == "Available")
        assert (available.reason, status.ready) == (reason, ready)
        [assignment] = status.assignments
        assert (assignment.cluster, assignment.replicas, assignment.ready_replicas) == ("paris", 2, seen.ready_replicas)
        if reason == "Degraded":
            assert "ImagePullBackOff" in (assignment.delivery_message or "")


def test_without_delivery_the_status_is_as_before() -> None:
    outcome = reconcile(_snapshot(Observed(), a=workload("a"), b=workload("b", template=False)), CONFIG)
    for status in outcome.workloads.values():
        assert status.ready is None and [c.type for c in status.conditions] == ["Placed"]
        assert all(a.cluster is None for a in status.assignments)
