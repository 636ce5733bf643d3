"""Member clusters in the read API: each site's delivery target, the clusters' health
and sites, and readiness per workload and assignment, from a snapshot with member
clusters and what the operator observed of them (one Reachable, one Lost)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from controller.core.delivery import ClusterHealth, DeploymentObservation, Observed
from controller.core.reconcile import Snapshot, reconcile
from controller.http.app import create_app
from controller.http.source import Published
from controller.http.views import mesh_view
from placement.problem import SolverConfig
from tests.support.delivery import factory, member_cluster, workload

AT = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
CONFIG = SolverConfig(time_limit_s=10, num_workers=1)
LOST_SINCE = AT - dt.timedelta(minutes=3)
LAST_SEEN = AT - dt.timedelta(minutes=4)


class _Source:
    def __init__(self, published: Published) -> None:
        self.published = published

    def current(self) -> Published | None:
        return self.published


@pytest.fixture(scope="module")
def published() -> Published:
    observed = Observed(
        clusters={
            "paris": ClusterHealth("Reachable", "Reachable", "", AT - dt.timedelta(hours=1), AT),
            "berlin": ClusterHealth("Lost", "Unreachable", "connection refused", LOST_SINCE, LAST_SEEN),
        },
        deployments={("paris", "team", "sovereign-fr-1"): DeploymentObservation(2, 1, 1)},
        delivering=frozenset({"local", "paris", "berlin"}),
    )
    factories = [factory("fr-1", "FR", 10, "paris"), factory("de-1", "DE", 50, "berlin"),
                 factory("de-local", "DE", 90, None), factory("jp-1", "JP", 90, "tokyo")]
    workloads = [workload("sovereign", ["FR"]), workload("german", ["DE"]), workload("plain", ["JP"], template=False)]
    snapshot = Snapshot(factories, [], workloads, AT, clusters=[member_cluster("paris"), member_cluster("berlin")],
                        observed=observed)
    return Published(3, snapshot, reconcile(snapshot, CONFIG), AT, 1.0, warm=False, config=CONFIG)


@pytest.fixture(scope="module")
def client(published: Published) -> Iterator[TestClient]:
    with TestClient(create_app(_Source(published), long_poll_max_s=0.5)) as test_client:
        yield test_client


def test_every_site_says_where_its_work_is_delivered(client: TestClient) -> None:
    sites = {s["name"]: s for s in client.get("/api/v1/mesh").json()["sites"]}
    assert {name: s["cluster"] for name, s in sites.items()} == {
        "fr-1": "paris", "de-1": "berlin", "de-local": "local", "jp-1": "tokyo"}
    reachable = {name: next((c["status"], c["reason"]) for c in s["conditions"] if c["type"] == "Reachable")
                 for name, s in sites.items() if s["cluster"] != "local"}
    assert reachable["fr-1"] == ("True", "Reachable") and reachable["de-1"] == ("False", "Lost")
    assert not any(c["type"] == "Reachable" for c in sites["de-local"]["conditions"])


def test_member_clusters_with_their_health_and_sites(client: TestClient) -> None:
    clusters = client.get("/api/v1/mesh").json()["clusters"]
    assert clusters == [
        {"name": "paris", "state": "Reachable", "reason": "Reachable", "message": "member cluster paris answers",
         "since": "2026-12-06T11:00:00Z", "lastSeen": "2026-12-06T12:00:00Z", "sites": ["fr-1"], "defined": True},
        {"name": "berlin", "state": "Lost", "reason": "Unreachable",
         "message": "member cluster berlin is lost: unreachable since 2026-12-06T11:57:00Z; last seen "
                    "2026-12-06T11:56:00Z (connection refused)",
         "since": "2026-12-06T11:57:00Z", "lastSeen": "2026-12-06T11:56:00Z", "sites": ["de-1"], "defined": True},
        # named by a site, no MemberCluster: never probed
        {"name": "tokyo", "state": "Unknown", "reason": "Unknown", "message": "not probed yet",
         "since": None, "lastSeen": None, "sites": ["jp-1"], "defined": False},
    ]


def test_workloads_carry_ready_counts_and_each_assignments_delivery(client: TestClient, published: Published) -> None:
    items = {w["name"]: w for w in client.get("/api/v1/workloads").json()["items"]}
    sovereign = items["sovereign"]
    assert sovereign["phase"] == "Placed" and sovereign["sites"] == ["fr-1"]
    assert sovereign["ready"] == "1/2"
    assert sovereign["available"]["status"] == "False" and sovereign["available"]["reason"] == "Progressing"
    [assignment] = sovereign["assignments"]
    assert {k: assignment[k] for k in ("cluster", "replicas", "readyReplicas", "availableReplicas",
                                       "deliveryMessage")} == {
        "cluster": "paris", "replicas": 2, "readyReplicas": 1, "availableReplicas": 1,
        "deliveryMessage": "1/2 replicas available"}
    # the only German site's cluster is lost: de-local (local) takes it, not delivered yet
    german = items["german"]
    assert german["sites"] == ["de-local"] and german["ready"] == "0/2"
    assert german["assignments"][0]["cluster"] == "local"
    assert german["available"]["reason"] == "Delivering"
    # no pod template: nothing delivered, the fields are null and the old ones unchanged
    plain = items["plain"]
    assert plain["ready"] is None and plain["available"] is None
    assert plain["assignments"][0]["cluster"] is None and plain["assignments"][0]["deliveryMessage"] is None
    detail = client.get("/api/v1/workloads/team/sovereign").json()
    assert detail["ready"] == "1/2" and detail["assignments"][0]["cluster"] == "paris"
    assert mesh_view(published).model_dump(by_alias=True)["clusters"][0]["name"] == "paris"


def test_without_member_clusters_the_list_is_empty_and_every_site_is_local() -> None:
    local = Snapshot([factory("a", "FR", 10, None)], [], [], AT)
    view = mesh_view(Published(1, local, reconcile(local, CONFIG), AT, 1.0, warm=False))
    assert view.clusters == [] and [s.cluster for s in view.sites] == ["local"]
