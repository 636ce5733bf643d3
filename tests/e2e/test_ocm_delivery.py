"""Delivery through Open Cluster Management, against real OCM: the hub's registration
controller and work manager, and a klusterlet agent (registration and work agent) per
member, built from OCM's Go module (tests/ocm) and started as processes by the
``ocm_hub`` fixture (tests/e2e/ocm_support.py) on the suite's three control planes:
the hub (``control_plane``, also the OCM hub) and two members (``member_clusters``,
joined as ManagedClusters ``member-a`` and ``member-b``).

The operator runs as a process on the hub with the chart's rules for
``delivery.ocm.enabled`` and no credential of any member: everything it knows of them
comes from the ManagedClusters and the ManifestWorks' status feedback. What lands in
the members is applied by OCM's real work agent.

Every object a test makes has a unique name (the hub name on our ManifestWorks too);
the sites use an accelerator model no example workload can use; everything is deleted
and awaited at the end.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.e2e_support import Kubectl, unique_name
from tests.e2e.member_support import (
    MemberCluster,
    apply_objects,
    condition_of,
    delete_objects_and_wait,
    delivery_factory,
    delivery_workload,
    member_namespace_cleanup,
    origin_deployments,
    wait_origin_deployments,
)
from tests.e2e.ocm_support import OcmHub
from tests.e2e.operator_support import DEFAULT_LEASE_NAME, OperatorProcess, render_chart, rules_of, wait_for

LOST_AFTER_S = 6
TIMEOUT_S = 150.0
WORKS = "manifestworks.work.open-cluster-management.io"
SCORES = "addonplacementscores.cluster.open-cluster-management.io"


def ocm_member_cluster(name: str, managed_cluster: str) -> dict[str, Any]:
    return {"apiVersion": "meshplane.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": name},
            "spec": {"ocm": {"managedClusterName": managed_cluster}, "lostAfterSeconds": LOST_AFTER_S}}


def our_works(kubectl: Kubectl, managed_cluster: str, hub: str) -> dict[str, dict[str, Any]]:
    """Our ManifestWorks (origin ``hub``) in a ManagedCluster's namespace, by name."""
    items = kubectl.json("get", WORKS, "-n", managed_cluster, "-l", f"meshplane.io/origin={hub}")["items"]
    return {i["metadata"]["name"]: i for i in items}


def foreign_work(name: str, namespace: str, managed_cluster: str) -> dict[str, Any]:
    """A ManifestWork that is not ours (no origin label): holds one ConfigMap."""
    return {
        "apiVersion": "work.open-cluster-management.io/v1", "kind": "ManifestWork",
        "metadata": {"name": name, "namespace": managed_cluster},
        "spec": {"workload": {"manifests": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
             "data": {"owner": "someone else"}}]}},
    }


@pytest.fixture()
def ocm_operator(
    kubectl: Kubectl, installed_crds: Any, example_objects: Any, service_account_kubeconfig: Any, tmp_path: Path,
    ocm_hub: OcmHub,
) -> Iterator[tuple[OperatorProcess, str]]:
    """An operator with the chart's rules for OCM delivery (cluster-wide) and placement
    scores, short probe periods and its own hub name; (process, hub name)."""
    for managed_cluster in ("member-a", "member-b"):  # whatever an earlier test did to a member
        ocm_hub.ensure_agent(managed_cluster)
    namespace = unique_name("meshplane-ocm-op")
    objects = render_chart("--set", "materialise.enabled=true", "--set", "delivery.ocm.enabled=true",
                           "--set", "delivery.ocm.placementScores=true",
                           "--set", f"operator.leaseName={DEFAULT_LEASE_NAME}")
    kubeconfig = service_account_kubeconfig("meshplane-operator", namespace=namespace,
                                            rules=rules_of(objects, "Role"), cluster_rules=rules_of(objects, "ClusterRole"))
    hub = unique_name("hub")
    process = OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", extra_env={
        "MESHPLANE_HUB_NAME": hub, "MESHPLANE_PROBE_EVERY_S": "1", "MESHPLANE_PROBE_TIMEOUT_S": "1",
        "MESHPLANE_LOST_AFTER_S": str(LOST_AFTER_S), "MESHPLANE_OCM_PLACEMENT_SCORES": "true",
    })
    try:
        wait_for("the operator to be ready", process.ready)
        yield process, hub
    finally:
        process.stop()
        # its placement scores, once it can no longer write them again
        for managed_cluster in ("member-a", "member-b"):
            kubectl("delete", SCORES, "meshplane", "-n", managed_cluster, "--ignore-not-found", check=False)
        kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false", check=False)


def test_managed_clusters_run_their_sites_work_through_manifest_works_and_a_lost_one_is_replaced_then_cleaned(
    member_clusters: dict[str, MemberCluster], ocm_hub: OcmHub, kubectl: Kubectl, scratch_namespace: str,
    ocm_operator: tuple[OperatorProcess, str],
) -> None:
    process, hub = ocm_operator
    a, b = member_clusters["member-a"], member_clusters["member-b"]
    tag = unique_name("ocm")
    mc_a, mc_b = f"{tag}-a", f"{tag}-b"
    site_a, site_b = f"{tag}-fr", f"{tag}-de"
    ns = scratch_namespace
    nodes_a, nodes_b = a.make_site_nodes([site_a]), b.make_site_nodes([site_b])
    # left by an earlier operator of this hub (ours: deleted once member a answers) and
    # someone else's ManifestWork (never touched)
    stale = {"apiVersion": "work.open-cluster-management.io/v1", "kind": "ManifestWork",
             "metadata": {"name": f"{ns}.{tag}-stale", "namespace": "member-a",
                          "labels": {"meshplane.io/origin": hub, "app.kubernetes.io/managed-by": "meshplane"}},
             "spec": {"workload": {"manifests": []}}}
    foreign = foreign_work(f"{tag}-foreign", ns, "member-a")
    objects = [
        ocm_member_cluster(mc_a, "member-a"), ocm_member_cluster(mc_b, "member-b"),
        delivery_factory(site_a, "FR", 10, mc_a), delivery_factory(site_b, "DE", 50, mc_b),
        delivery_workload("anywhere", ns, None), delivery_workload("sovereign", ns, ["FR"]),
    ]
    try:
        with member_namespace_cleanup([a, b], ns), contextlib.ExitStack() as works:
            # this hub's ManifestWorks go first (their agents then delete what they
            # applied), before the members' namespaces: one left would re-create them
            works.callback(ocm_hub.delete_works_of, hub)
            apply_objects(kubectl, [stale, foreign])
            apply_objects(kubectl, objects)

            def workloads() -> dict[str, dict[str, Any]]:
                items = kubectl.json("get", "meshworkloads", "-n", ns)["items"]
                return {i["metadata"]["name"]: i for i in items}

            # 1. one ManifestWork per (workload, site) on the hub; the work agent applies
            # them in member a; ready replicas come back through status feedback
            works = wait_for("our two ManifestWorks in member-a's namespace, the stale one gone", lambda: (
                set(w := our_works(kubectl, "member-a", hub)) == {f"{ns}.anywhere-{site_a}", f"{ns}.sovereign-{site_a}"}
                and w), timeout_s=TIMEOUT_S)
            for work in works.values():
                kinds = [m["kind"] for m in work["spec"]["workload"]["manifests"]]
                assert kinds == ["Namespace", "Deployment"]
            wait_origin_deployments(a, {(ns, f"anywhere-{site_a}"): 2, (ns, f"sovereign-{site_a}"): 2},
                                    namespace=ns, origin=hub, what="both Deployments applied by the work agent")
            statuses = wait_for("both workloads Available with 2/2 ready", lambda: (
                (w := workloads()) and all(condition_of(w[n], "Available").get("status") == "True"
                                           for n in ("anywhere", "sovereign")) and w), timeout_s=TIMEOUT_S)
            for name in ("anywhere", "sovereign"):
                status = statuses[name]["status"]
                assert status["ready"] == "2/2" and status["sites"] == site_a
                [assignment] = status["assignments"]
                assert (assignment["cluster"], assignment["replicas"], assignment["readyReplicas"]) == (mc_a, 2, 2)
            running = a.kubectl.json("get", "pods", "-n", ns, "-l", f"meshplane.io/site={site_a}")["items"]
            assert len(running) == 4 and all(p["status"].get("phase") == "Running" for p in running)
            assert all(p["spec"]["nodeName"] in nodes_a.names for p in running)
            assert our_works(kubectl, "member-b", hub) == {} and origin_deployments(b, namespace=ns) == {}
            assert kubectl("get", WORKS, foreign["metadata"]["name"], "-n", "member-a", check=False).returncode == 0
            cluster = kubectl.json("get", "membercluster", mc_a)
            assert condition_of(cluster, "Reachable")["status"] == "True"
            # each ManagedCluster's headroom for OCM Placements: 4 of site a's 8 devices are used
            def score(managed_cluster: str) -> dict[str, int]:
                got = kubectl("get", SCORES, "meshplane", "-n", managed_cluster, "-o", "json", check=False)
                found = json.loads(got.stdout) if got.returncode == 0 else {}
                return {s["name"]: s["value"] for s in (found.get("status") or {}).get("scores") or []}

            wait_for("the placement scores of member-a and member-b", lambda: (
                score("member-a").get(f"{site_a}.freeAcceleratorsPercent") == 50
                and score("member-b").get(f"{site_b}.freeAcceleratorsPercent") == 100))
            assert score("member-a")["freeAcceleratorsPercent"] == 50

            # 2. member a's agent stops: OCM marks the ManagedCluster unavailable, and after
            # lostAfter its work moves where allowed; its ManifestWorks stay while it is away
            sovereign_uid = works[f"{ns}.sovereign-{site_a}"]["metadata"]["uid"]
            with ocm_hub.agent_down("member-a"):
                lost_at = time.monotonic()
                moved = wait_for("anywhere re-placed on member b and sovereign preempted", lambda: (
                    (w := workloads())["anywhere"]["status"].get("sites") == site_b
                    and w["sovereign"]["status"].get("phase") == "Preempted" and w), timeout_s=TIMEOUT_S)
                assert time.monotonic() - lost_at >= LOST_AFTER_S - 1  # not before lostAfter
                assert f"member cluster {mc_a} is lost" in moved["sovereign"]["status"]["message"]
                wait_for("anywhere's ManifestWork in member-b's namespace", lambda: set(
                    our_works(kubectl, "member-b", hub)) == {f"{ns}.anywhere-{site_b}"}, timeout_s=TIMEOUT_S)
                wait_origin_deployments(b, {(ns, f"anywhere-{site_b}"): 2}, namespace=ns, origin=hub,
                                        what="anywhere's Deployment in member b")
                reachable = condition_of(kubectl.json("get", "membercluster", mc_a), "Reachable")
                assert reachable["status"] == "False" and reachable["reason"] == "Lost", reachable
                assert condition_of(kubectl.json("get", "aifactory", site_a), "Reachable")["reason"] == "Lost"
                # never deleted on a guess: member a may still run them
                assert set(our_works(kubectl, "member-a", hub)) == {f"{ns}.anywhere-{site_a}", f"{ns}.sovereign-{site_a}"}
                # while it is away, "anywhere" may no longer run in France: its copy in member
                # a is stale for good
                kubectl("patch", "mwl", "anywhere", "-n", ns, "--type=merge",
                        "-p", json.dumps({"spec": {"sovereignty": {"allowedCountries": ["DE"]}}}))

            # 3. back: the stale ManifestWork is deleted and the agent removes its
            # Deployment; the one the final plan puts there again is kept (same uid)
            def final_plan_holds() -> bool:
                w = workloads()
                if any((i.get("status") or {}).get("observedGeneration") != i["metadata"]["generation"]
                       for i in w.values()):
                    return False
                want_a = {f"{ns}.{n}-{site_a}" for n, i in w.items() if i["status"].get("sites") == site_a}
                want_b = {f"{ns}.{n}-{site_b}" for n, i in w.items() if i["status"].get("sites") == site_b}
                return set(our_works(kubectl, "member-a", hub)) == want_a \
                    and set(our_works(kubectl, "member-b", hub)) == want_b
            wait_for("the hub to hold exactly the final plan's ManifestWorks", final_plan_holds, timeout_s=TIMEOUT_S)
            final = workloads()
            assert final["anywhere"]["status"]["sites"] == site_b and final["sovereign"]["status"]["sites"] == site_a
            assert our_works(kubectl, "member-a", hub)[f"{ns}.sovereign-{site_a}"]["metadata"]["uid"] == sovereign_uid
            wait_origin_deployments(a, {(ns, f"sovereign-{site_a}"): 2}, namespace=ns, origin=hub,
                                    what="member a to hold only sovereign's Deployment")
            wait_for("sovereign Available again", lambda: condition_of(
                workloads()["sovereign"], "Available").get("status") == "True", timeout_s=TIMEOUT_S)
            assert kubectl("get", WORKS, foreign["metadata"]["name"], "-n", "member-a", check=False).returncode == 0

            # 4. workloads deleted: their ManifestWorks go, and with them the Deployments
            delete_objects_and_wait(kubectl, [o for o in objects if o["kind"] == "MeshWorkload"])
            wait_for("no ManifestWork of ours left", lambda: not our_works(kubectl, "member-a", hub)
                     and not our_works(kubectl, "member-b", hub), timeout_s=TIMEOUT_S)
            wait_origin_deployments(a, {}, namespace=ns, what="no Deployment left in member a")
            wait_origin_deployments(b, {}, namespace=ns, what="no Deployment left in member b")
            assert process.process.poll() is None
            delete_objects_and_wait(kubectl, [foreign])
    finally:
        delete_objects_and_wait(kubectl, [stale, foreign, *objects])
        a.delete_nodes(nodes_a)
        b.delete_nodes(nodes_b)


def test_a_member_cluster_naming_no_managed_cluster_is_reported_and_nothing_else_breaks(
    ocm_hub: OcmHub, kubectl: Kubectl, scratch_namespace: str, ocm_operator: tuple[OperatorProcess, str],
) -> None:
    process, _ = ocm_operator
    tag = unique_name("ocm-missing")
    objects = [ocm_member_cluster(tag, f"{tag}-nowhere"), delivery_factory(f"{tag}-site", "FR", 10, tag),
               delivery_workload("still-placed", scratch_namespace, None)]
    try:
        apply_objects(kubectl, objects)
        said = wait_for("the MemberCluster to say its ManagedCluster does not exist", lambda: (
            (c := condition_of(kubectl.json("get", "membercluster", tag), "Reachable")).get("reason")
            in ("ManagedClusterNotFound", "Lost") and c))
        assert said["status"] == "False"
        wait_for("its site to report the cluster unreachable", lambda: condition_of(
            kubectl.json("get", "aifactory", f"{tag}-site"), "Reachable").get("status") == "False")
        assert process.process.poll() is None
        placed = wait_for("the examples still placed", lambda: kubectl.json(
            "get", "meshworkload", "-n", "research", "frontier-pretrain")["status"].get("phase") == "Placed")
        assert placed
    finally:
        delete_objects_and_wait(kubectl, objects)
