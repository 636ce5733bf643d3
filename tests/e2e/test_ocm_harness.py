"""The Open Cluster Management harness (tests/e2e/ocm_support.py) really works: OCM's
own hub controllers and klusterlet agents, run as processes against the suite's hub and
the two member clusters, deliver a ManifestWork, report its status back, remove what
they applied, and the hub notices an agent that stops.

These tests check OCM through the harness, not meshplane: they are what the ``ocm``
delivery backend's tests rely on. Every object has a unique name and is deleted (and
awaited) at the end; the stopped agent is restarted by ``agent_down`` even on failure.
"""

from __future__ import annotations

import json
import time
from typing import Any

from controller.core.materialise import SITE_LABEL
from tests.e2e.e2e_support import unique_name
from tests.e2e.member_support import MemberCluster
from tests.e2e.ocm_support import (
    ACCEPTED,
    AVAILABLE,
    JOINED,
    LEASE_DURATION_S,
    OcmHub,
    condition,
    condition_status,
    is_loopback,
    listening_sockets,
    wait_for_value,
)

IMAGE = "meshplane-e2e/worker:1"  # KWOK plays the kubelet: nothing is pulled


def manifest_work(name: str, namespace: str, site: str) -> dict[str, Any]:
    """A ManifestWork holding a Namespace and a 1-replica Deployment pinned to ``site``,
    with the Deployment's well-known status fed back to the hub."""
    return {
        "apiVersion": "work.open-cluster-management.io/v1",
        "kind": "ManifestWork",
        "metadata": {"name": name},
        "spec": {
            "workload": {"manifests": [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                {"apiVersion": "apps/v1", "kind": "Deployment",
                 "metadata": {"name": "web", "namespace": namespace, "labels": {"app": "web"}},
                 "spec": {"replicas": 1,
                          "selector": {"matchLabels": {"app": "web"}},
                          "template": {"metadata": {"labels": {"app": "web"}},
                                       "spec": {"nodeSelector": {SITE_LABEL: site},
                                                "containers": [{"name": "main", "image": IMAGE,
                                                                "resources": {"requests": {"cpu": "5m"}}}]}}}},
            ]},
            "manifestConfigs": [{
                "resourceIdentifier": {"group": "apps", "resource": "deployments", "namespace": namespace,
                                       "name": "web"},
                "feedbackRules": [{"type": "WellKnownStatus"}],
            }],
        },
    }


def feedback(work: dict[str, Any], kind: str) -> dict[str, Any]:
    """``{name: value}`` of the status feedback of the manifest of ``kind``."""
    for manifest in (work.get("status") or {}).get("resourceStatus", {}).get("manifests") or []:
        if manifest.get("resourceMeta", {}).get("kind") == kind:
            values = (manifest.get("statusFeedback") or {}).get("values") or []
            # fieldValue: {"type": "Integer", "integer": 1} (or string, boolean, jsonRaw)
            return {v["name"]: next(val for key, val in v["fieldValue"].items() if key != "type")
                    for v in values}
    return {}


def test_both_members_joined_as_available_managed_clusters(ocm_hub: OcmHub,
                                                           member_clusters: dict[str, MemberCluster]) -> None:
    for name, member in member_clusters.items():
        mc = ocm_hub.managed_cluster(name)
        assert mc["spec"]["hubAcceptsClient"] is True
        assert mc["spec"]["leaseDurationSeconds"] == LEASE_DURATION_S
        assert [c["url"] for c in mc["spec"]["managedClusterClientConfigs"]] == [member.server]
        for type_ in (ACCEPTED, JOINED, AVAILABLE):
            assert condition_status(mc, type_) == "True", condition(mc, type_)
        # The agent reports the member's own Nodes (KWOK's) as the cluster's capacity.
        assert int(mc["status"]["capacity"]["nvidia.com/gpu"]) == 8 * len(member.nodes.names)  # type: ignore[union-attr]
        # The agent's identity is the certificate the harness signed for its CSR.
        [csr] = [c for c in ocm_hub.csrs(name) if c["metadata"]["name"] in ocm_hub.agents[name].csrs_signed]
        assert condition(csr, "Approved") is not None and csr["status"]["certificate"]


def test_a_manifest_work_lands_in_its_member_reports_feedback_and_is_removed(
    ocm_hub: OcmHub, member_clusters: dict[str, MemberCluster]
) -> None:
    a, b = member_clusters["member-a"], member_clusters["member-b"]
    site = a.sites[0]
    name, namespace = unique_name("ocm-work"), unique_name("ocm-e2e")
    hub = ocm_hub.kubectl
    try:
        hub("create", "-n", "member-a", "-f", "-", input=json.dumps(manifest_work(name, namespace, site)))

        # The agent applies it in member-a: a Deployment whose Pod runs on the site's Node.
        deployment = wait_for_value(
            lambda: a.kubectl.json("get", "deployments", "-n", namespace)["items"],
            lambda items: bool(items) and items[0].get("status", {}).get("readyReplicas") == 1,
            what=f"Deployment {namespace}/web Ready in member-a")[0]
        assert deployment["metadata"]["name"] == "web"
        [pod] = a.kubectl.json("get", "pods", "-n", namespace, "-l", "app=web")["items"]
        assert pod["spec"]["nodeName"] in a.nodes.by_site[site]  # type: ignore[union-attr]
        assert b.kubectl("get", "namespace", namespace, "--ignore-not-found", "-o", "name").stdout == ""

        # ... and reports back to the hub: Applied, Available, ReadyReplicas 1.
        work = wait_for_value(lambda: hub.json("get", "manifestwork", name, "-n", "member-a"),
                              lambda w: feedback(w, "Deployment").get("ReadyReplicas") == 1,
                              what=f"ManifestWork {name} feedback ReadyReplicas=1")
        assert condition_status(work, "Applied") == "True", condition(work, "Applied")
        assert condition_status(work, "Available") == "True", condition(work, "Available")
        assert feedback(work, "Deployment") == {"ReadyReplicas": 1, "Replicas": 1, "AvailableReplicas": 1}

        # Deleted on the hub: the agent removes what it applied before the work goes.
        ocm_hub.delete_work("member-a", name)
        wait_for_value(lambda: a.kubectl("get", "namespace", namespace, "--ignore-not-found", "-o", "name").stdout,
                       lambda out: out == "", timeout_s=120, what=f"namespace {namespace} gone from member-a")
        assert a.kubectl("get", "appliedmanifestworks", "-o", "name").stdout.count(name) == 0
    finally:
        ocm_hub.delete_work("member-a", name)
        a.delete_namespaces(namespace)


def test_a_stopped_agent_makes_its_cluster_unknown_and_a_restarted_one_available(ocm_hub: OcmHub) -> None:
    ocm_hub.wait_available("member-b", "True")
    csrs_before = {c["metadata"]["name"] for c in ocm_hub.csrs("member-b")}
    with ocm_hub.agent_down("member-b") as agent:
        stopped = time.monotonic()
        assert not agent.process.running
        mc = ocm_hub.wait_available("member-b", "Unknown", timeout_s=30)
        unknown_after = time.monotonic() - stopped
        assert condition(mc, AVAILABLE)["reason"] == "ManagedClusterLeaseUpdateStopped"  # type: ignore[index]
        assert ocm_hub.available("member-a") == "True"  # only the stopped agent's cluster
    assert ocm_hub.available("member-b") == "True"
    # The restarted agent reused its hub kubeconfig: no new CSR was needed.
    assert {c["metadata"]["name"] for c in ocm_hub.csrs("member-b")} == csrs_before
    assert unknown_after < 30
    print(f"member-b Available=Unknown {unknown_after:.1f}s after its agent stopped; "
          f"True again {ocm_hub.agents['member-b'].restart_seconds[-1]:.1f}s after the restart")


def test_every_ocm_process_listens_on_loopback_only(ocm_hub: OcmHub) -> None:
    processes = ocm_hub.processes
    assert len(processes) == 4  # hub-registration, hub-work, two agents
    for process in processes:
        assert process.running and process.process is not None, process.log_tail()
        sockets = listening_sockets(process.process.pid)
        assert sockets, f"{process.name} listens on nothing (its health server should be on 127.0.0.1)"
        assert all(is_loopback(address) for address, _ in sockets), f"{process.name}: {sockets}"
        assert (("127.0.0.1", process.port)) in sockets

