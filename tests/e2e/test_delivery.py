"""Delivery to member clusters, against three real control planes: the hub (the suite's
``control_plane``) and two members (``member_clusters``), each with its own API server,
Deployment controllers, scheduler and KWOK nodes labelled as sites.

The operator runs as a process on the hub with the chart's rules; it reaches each
member with a kubeconfig of the member's ``meshplane-delivery`` ServiceAccount, which
has only the rights of helm/meshplane-member: if delivery needed more, nothing would
land in the members and these tests would fail.

Every object a test makes has a unique name; the sites use an accelerator model and
per-device rates no example workload can use, so the examples' plan is untouched;
everything is deleted and awaited at the end.
"""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.cluster_support import delete_nodes, make_site_nodes
from tests.e2e.e2e_support import Kubectl, unique_name
from tests.e2e.member_support import (
    MemberCluster,
    apply_objects,
    condition_of,
    delete_objects_and_wait,
    delivery_factory,
    delivery_workload,
    kubeconfig_secret,
    member_kubeconfig,
    member_namespace_cleanup,
    origin_deployments,
    wait_origin_deployments,
)
from tests.e2e.operator_support import OperatorProcess, wait_for

LOST_AFTER_S = 6
TIMEOUT_S = 120.0


def member_cluster(name: str, secret: str, key: str = "kubeconfig") -> dict[str, Any]:
    return {"apiVersion": "meshplane.io/v1alpha1", "kind": "MemberCluster", "metadata": {"name": name},
            "spec": {"direct": {"kubeconfigSecretRef": {"name": secret, "key": key}},
                     "lostAfterSeconds": LOST_AFTER_S}}


def uids(member: MemberCluster) -> dict[tuple[str, str], str]:
    items = member.kubectl.json("get", "deployments.apps", "-A", "-l", "meshplane.io/origin")["items"]
    return {(i["metadata"]["namespace"], i["metadata"]["name"]): i["metadata"]["uid"] for i in items}


@pytest.fixture()
def delivery_operator(
    operator_env: tuple[Path, str, Path], kubectl: Kubectl
) -> Iterator[tuple[OperatorProcess, str, str]]:
    """An operator with short probe periods and its own hub name; (process, its
    namespace, hub name). Its kubeconfig Secrets go in its namespace."""
    kubeconfig, namespace, logs = operator_env
    hub = unique_name("hub")
    process = OperatorProcess(kubeconfig, namespace, logs / f"{unique_name('delivery')}.log", extra_env={
        "MESHPLANE_HUB_NAME": hub, "MESHPLANE_PROBE_EVERY_S": "1", "MESHPLANE_PROBE_TIMEOUT_S": "1",
        "MESHPLANE_LOST_AFTER_S": str(LOST_AFTER_S),
    })
    try:
        wait_for("the operator to be ready", process.ready)
        yield process, namespace, hub
    finally:
        process.stop()


def test_two_member_clusters_run_their_sites_work_and_a_lost_one_is_replaced_then_cleaned(
    member_clusters: dict[str, MemberCluster], kubectl: Kubectl, scratch_namespace: str,
    delivery_operator: tuple[OperatorProcess, str, str], tmp_path: Path,
) -> None:
    process, op_namespace, hub = delivery_operator
    a, b = member_clusters["member-a"], member_clusters["member-b"]
    tag = unique_name("dl")
    mc_a, mc_b = f"{tag}-a", f"{tag}-b"
    site_a, site_b, site_local = f"{tag}-fr", f"{tag}-de", f"{tag}-local"
    for member, name in ((a, mc_a), (b, mc_b)):
        kubeconfig_secret(kubectl, op_namespace, name, member_kubeconfig(member, tmp_path / f"{name}.kubeconfig"))
    nodes_a, nodes_b = a.make_site_nodes([site_a]), b.make_site_nodes([site_b])
    hub_nodes = make_site_nodes(kubectl, [site_local], per_site=1)
    # the cheapest site first: both workloads start in member a
    objects = [
        member_cluster(mc_a, mc_a), member_cluster(mc_b, mc_b),
        delivery_factory(site_a, "FR", 10, mc_a), delivery_factory(site_b, "DE", 50, mc_b), delivery_factory(site_local, "DE", 90, None),
        delivery_workload("anywhere", scratch_namespace, None), delivery_workload("sovereign", scratch_namespace, ["FR"]),
    ]
    ns = scratch_namespace
    try:
        with member_namespace_cleanup([a, b], ns):
            apply_objects(kubectl, objects)

            def workloads() -> dict[str, dict[str, Any]]:
                items = kubectl.json("get", "meshworkloads", "-n", ns)["items"]
                return {i["metadata"]["name"]: i for i in items}

            # 1. delivered to member a, ready there, readiness in the hub's status
            found = wait_origin_deployments(
                a, {(ns, f"anywhere-{site_a}"): 2, (ns, f"sovereign-{site_a}"): 2}, namespace=ns, origin=hub,
                what="both workloads' Deployments in member a")
            assert found
            statuses = wait_for("both workloads Available with 2/2 ready", lambda: (
                (w := workloads()) and all(condition_of(w[n], "Available").get("status") == "True"
                                           for n in ("anywhere", "sovereign")) and w))
            for name in ("anywhere", "sovereign"):
                status = statuses[name]["status"]
                assert status["ready"] == "2/2" and status["sites"] == site_a
                [assignment] = status["assignments"]
                assert (assignment["cluster"], assignment["replicas"], assignment["readyReplicas"]) == (mc_a, 2, 2)
            running = a.kubectl.json("get", "pods", "-n", ns, "-l", f"meshplane.io/site={site_a}")["items"]
            assert len(running) == 4 and all(p["status"].get("phase") == "Running" for p in running)
            assert all(p["spec"]["nodeName"] in nodes_a.names for p in running)
            assert origin_deployments(b, namespace=ns) == {}
            reasons = {e["reason"] for e in kubectl.json("get", "events", "-n", ns)["items"]}
            assert {"Placed", "Available"} <= reasons  # Delivered too when a pod was seen not ready first

            # 2. member a stops answering: after lostAfter its work moves where allowed
            sovereign_uid = uids(a)[(ns, f"sovereign-{site_a}")]
            with a.frozen():
                lost_at = time.monotonic()
                moved = wait_for("anywhere re-placed on member b and sovereign preempted", lambda: (
                    (w := workloads())["anywhere"]["status"].get("sites") == site_b
                    and w["sovereign"]["status"].get("phase") == "Preempted" and w), timeout_s=TIMEOUT_S)
                assert time.monotonic() - lost_at >= LOST_AFTER_S - 1  # not before lostAfter
                assert f"member cluster {mc_a} is lost" in moved["sovereign"]["status"]["message"]
                wait_origin_deployments(b, {(ns, f"anywhere-{site_b}"): 2}, namespace=ns, origin=hub,
                                        what="anywhere's Deployment in member b")
                site = kubectl.json("get", "aifactory", site_a)
                assert condition_of(site, "Reachable")["reason"] == "Lost"
                cluster = kubectl.json("get", "membercluster", mc_a)
                assert condition_of(cluster, "Reachable")["status"] == "False" and cluster["status"]["lastSeenTime"]
                # while it is away, "anywhere" may no longer run in France: the copy member a
                # still holds is stale for good (the cheaper site would otherwise win it back)
                kubectl("patch", "mwl", "anywhere", "-n", ns, "--type=merge",
                        "-p", json.dumps({"spec": {"sovereignty": {"allowedCountries": ["DE"]}}}))

            # 3. back on the same state: the stale copy is deleted there, the copy the
            # final plan puts there again is kept (same uid), and nothing else changes
            def final_plan_holds() -> bool:
                w = workloads()
                if any((i.get("status") or {}).get("observedGeneration") != i["metadata"]["generation"]
                       for i in w.values()):
                    return False
                want_a = {(ns, f"{name}-{site_a}"): 2 for name, i in w.items() if i["status"].get("sites") == site_a}
                want_b = {(ns, f"{name}-{site_b}"): 2 for name, i in w.items() if i["status"].get("sites") == site_b}
                return origin_deployments(a, namespace=ns) == want_a and origin_deployments(b, namespace=ns) == want_b
            wait_for("member a to hold exactly the final plan's Deployments", final_plan_holds, timeout_s=TIMEOUT_S)
            final = workloads()
            assert final["anywhere"]["status"]["sites"] == site_b and final["sovereign"]["status"]["sites"] == site_a
            assert uids(a)[(ns, f"sovereign-{site_a}")] == sovereign_uid  # kept through the outage, not re-created
            reachable = wait_for("member a reachable again", lambda: condition_of(
                kubectl.json("get", "membercluster", mc_a), "Reachable").get("status") == "True")
            assert reachable
            delete_objects_and_wait(kubectl, [o for o in objects if o["kind"] == "MeshWorkload"])
            wait_origin_deployments(a, {}, namespace=ns, what="no Deployment left in member a")
            wait_origin_deployments(b, {}, namespace=ns, what="no Deployment left in member b")
    finally:
        delete_objects_and_wait(kubectl, objects)
        for name in (mc_a, mc_b):
            kubectl("delete", "secret", name, "-n", op_namespace, "--ignore-not-found", check=False)
        a.delete_nodes(nodes_a)
        b.delete_nodes(nodes_b)
        delete_nodes(kubectl, hub_nodes)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bad_kubeconfigs_are_reported_on_the_member_cluster_and_nothing_else_breaks(
    member_clusters: dict[str, MemberCluster], kubectl: Kubectl, scratch_namespace: str,
    delivery_operator: tuple[OperatorProcess, str, str], tmp_path: Path,
) -> None:
    process, op_namespace, hub = delivery_operator
    good = yaml.safe_load(member_kubeconfig(member_clusters["member-a"], tmp_path / "good.kubeconfig"))
    cluster = good["clusters"][0]["cluster"]
    user = good["users"][0]["user"]
    insecure = json.loads(json.dumps(good))
    insecure["clusters"][0]["cluster"] = {"server": cluster["server"], "insecure-skip-tls-verify": True}
    plugin = json.loads(json.dumps(good))
    plugin["users"][0]["user"] = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "/bin/true"}}
    closed = json.loads(json.dumps(good))
    closed["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{_closed_port()}"
    assert user["token"]
    tag = unique_name("bad")
    cases = {  # MemberCluster -> (Secret data, the reason it must get)
        f"{tag}-missing-key": ({"other": "x"}, "SecretNotFound"),
        f"{tag}-insecure": ({"kubeconfig": yaml.safe_dump(insecure)}, "InvalidKubeconfig"),
        f"{tag}-exec": ({"kubeconfig": yaml.safe_dump(plugin)}, "InvalidKubeconfig"),
        f"{tag}-closed-port": ({"kubeconfig": yaml.safe_dump(closed)}, "Unreachable"),
    }
    secrets = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": op_namespace},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}
               for name, (data, _) in cases.items()]
    clusters = [member_cluster(name, name) for name in cases]
    site = delivery_factory(f"{tag}-site", "FR", 10, f"{tag}-exec")
    objects = [*secrets, *clusters, site, delivery_workload("still-placed", scratch_namespace, None)]
    try:
        apply_objects(kubectl, objects)
        for name, (_, reason) in cases.items():
            got = wait_for(f"MemberCluster {name} to say {reason}", lambda name=name, reason=reason: (
                (c := condition_of(kubectl.json("get", "membercluster", name), "Reachable")).get("reason") in (reason, "Lost")
                and c))
            assert got["status"] == "False", (name, got)
        exec_message = condition_of(kubectl.json("get", "membercluster", f"{tag}-exec"), "Reachable")["message"]
        assert "exec plugins are not allowed" in exec_message
        # the site on a cluster with a refused kubeconfig says so; the rest of the mesh
        # is solved as before: the workload goes to no site of a lost cluster, and the
        # operator is alive and placing
        wait_for("the site to report its cluster", lambda: condition_of(
            kubectl.json("get", "aifactory", site["metadata"]["name"]), "Reachable").get("status") == "False")
        assert process.process.poll() is None
        placed = wait_for("the examples still placed", lambda: kubectl.json(
            "get", "meshworkload", "-n", "research", "frontier-pretrain")["status"].get("phase") == "Placed")
        assert placed
    finally:
        delete_objects_and_wait(kubectl, objects)
