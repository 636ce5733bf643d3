"""The cluster in a box: Deployments become Running Pods on simulated Nodes.

The e2e control plane runs, besides the API server, the Deployment, ReplicaSet,
garbage-collector and pod-GC controllers of kube-controller-manager, the real
kube-scheduler and KWOK (a simulated kubelet); see docs/e2e.md. Nothing here is mocked:
the Nodes are API objects played by KWOK, every placement decision is the scheduler's.

Proven here:

- KWOK Nodes made for two sites become Ready, keeping the capacity they were created
  with; a Node without the KWOK annotation has no kubelet and never becomes Ready;
- a Deployment whose nodeSelector is ``meshplane.io/site=X`` gets Pods Running (pod IP,
  host IP) on the Nodes of site X only, bound by the scheduler (spec.nodeName and
  PodScheduled=True); the other site's Deployment lands on the other site's Nodes;
- a Pod whose nodeSelector matches no Node stays Pending, PodScheduled=False with
  reason Unschedulable and a FailedScheduling event from default-scheduler; a replica
  that would exceed a site's GPUs stays Pending too, the others run;
- deleting the Deployment removes its ReplicaSet and its Pods (garbage collection, and
  KWOK completing the graceful deletion as a kubelet does).

The Nodes are shared by the module's tests (unique site names, deleted at the end);
each test has its own namespace.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from controller.core.materialise import SITE_LABEL
from tests.e2e.cluster_support import (
    GPU_RESOURCE,
    SiteNodes,
    all_running,
    delete_nodes,
    list_pods,
    make_site_nodes,
    node_ready,
    pods_by_site,
    running_per_site,
    wait_pods,
)
from tests.e2e.e2e_support import Kubectl, unique_name

pytestmark = pytest.mark.e2e

PER_SITE = 2
GPUS_PER_NODE = 4
POD_CIDR = ipaddress.ip_network("10.244.0.0/16")  # the control plane's --kwok-pod-cidr default


@pytest.fixture(scope="module")
def sites(kubectl: Kubectl) -> Iterator[SiteNodes]:
    """Two sites of PER_SITE Ready KWOK Nodes each (GPUS_PER_NODE GPUs per Node)."""
    made = make_site_nodes(kubectl, [unique_name("site-a"), unique_name("site-b")],
                           per_site=PER_SITE, gpus=GPUS_PER_NODE)
    yield made
    delete_nodes(kubectl, made)


def deployment(name: str, site: str, replicas: int, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "nodeSelector": {SITE_LABEL: site},
                    "containers": [{"name": "main", "image": "registry.example/worker:1",
                                    "resources": {"requests": {"cpu": "5m", "memory": "8Mi"}},
                                    **container}],
                },
            },
        },
    }


def test_site_nodes_become_ready_with_their_capacity(kubectl: Kubectl, sites: SiteNodes) -> None:
    nodes = {n["metadata"]["name"]: n for n in kubectl.json("get", "nodes", "-l", SITE_LABEL)["items"]}
    for site, names in sites.by_site.items():
        assert len(names) == PER_SITE
        for name in names:
            node = nodes[name]
            assert node_ready(node), node["status"].get("conditions")
            assert node["metadata"]["labels"][SITE_LABEL] == site
            assert node["metadata"]["labels"]["kubernetes.io/hostname"] == name
            assert node["status"]["allocatable"][GPU_RESOURCE] == str(GPUS_PER_NODE)
            # KWOK filled in what a kubelet reports: an address and its endpoint.
            assert any(a["type"] == "InternalIP" for a in node["status"].get("addresses", []))

    # Without the annotation, nothing plays the kubelet: the Node never gets Ready.
    orphan = make_site_nodes(kubectl, [unique_name("site-nokubelet")], per_site=1, wait=False, kwok=False)
    try:
        time.sleep(3)  # KWOK made the annotated Nodes Ready well within this time
        node = kubectl.json("get", "node", orphan.names[0])
        assert not node_ready(node), node["status"].get("conditions")
    finally:
        delete_nodes(kubectl, orphan)


def test_deployment_runs_on_the_nodes_of_its_site_only(
    kubectl: Kubectl, sites: SiteNodes, scratch_namespace: str
) -> None:
    site_a, site_b = sites.by_site
    kubectl.apply_obj(deployment("web-a", site_a, replicas=4), "-n", scratch_namespace)
    kubectl.apply_obj(deployment("web-b", site_b, replicas=3), "-n", scratch_namespace)

    for app, site, replicas in (("web-a", site_a, 4), ("web-b", site_b, 3)):
        pods = wait_pods(kubectl, scratch_namespace, f"app={app}", partial(all_running, count=replicas),
                         what=f"{replicas} Running pods of {app}")
        for pod in pods:
            assert pod.node in sites.by_site[site], (pod, sites.by_site)
            assert pod.site == site
            assert pod.scheduled == "True"
            assert pod.pod_ip and ipaddress.ip_address(pod.pod_ip) in POD_CIDR, pod
            assert pod.host_ip, pod
        assert len({p.pod_ip for p in pods}) == replicas  # one IP per pod

    assert {site: len(pods) for site, pods in pods_by_site(kubectl, scratch_namespace).items()} == {
        site_a: 4, site_b: 3}
    # The Deployment controller saw its replicas become available through the status
    # KWOK wrote (Ready condition), as with a real kubelet.
    status = kubectl.json("get", "deployment", "web-a", "-n", scratch_namespace)["status"]
    deadline = time.monotonic() + 30
    while status.get("availableReplicas") != 4 and time.monotonic() < deadline:
        time.sleep(0.3)
        status = kubectl.json("get", "deployment", "web-a", "-n", scratch_namespace)["status"]
    assert status.get("availableReplicas") == 4, status


def test_pod_that_fits_no_node_stays_pending_unschedulable(
    kubectl: Kubectl, sites: SiteNodes, scratch_namespace: str
) -> None:
    nowhere = unique_name("site-nowhere")
    kubectl.apply_obj(deployment("lost", nowhere, replicas=1), "-n", scratch_namespace)
    [pod] = wait_pods(kubectl, scratch_namespace, "app=lost",
                      lambda ps: len(ps) == 1 and ps[0].scheduled == "False", what="the scheduler's verdict")
    assert pod.phase == "Pending" and pod.node is None
    assert pod.scheduled_reason == "Unschedulable"
    assert "node affinity/selector" in (pod.scheduled_message or ""), pod.scheduled_message
    events = kubectl.json("get", "events", "-n", scratch_namespace,
                          "--field-selector", f"involvedObject.name={pod.name},reason=FailedScheduling")["items"]
    assert events, "no FailedScheduling event"
    assert {e.get("reportingComponent") or e.get("source", {}).get("component") for e in events} == {"default-scheduler"}
    time.sleep(2)  # still Pending a while later: nothing else binds it
    [pod] = list_pods(kubectl, scratch_namespace, "app=lost")
    assert pod.phase == "Pending" and pod.node is None

    # Capacity is the scheduler's too: site A has PER_SITE * GPUS_PER_NODE GPUs, so one
    # replica asking for a whole Node's GPUs beyond that stays Pending.
    site_a = next(iter(sites.by_site))
    gpus = {"resources": {"limits": {GPU_RESOURCE: str(GPUS_PER_NODE)}}}
    kubectl.apply_obj(deployment("gpu", site_a, replicas=PER_SITE + 1, **gpus), "-n", scratch_namespace)
    pods = wait_pods(
        kubectl, scratch_namespace, "app=gpu",
        lambda ps: len(ps) == PER_SITE + 1 and running_per_site(ps).get(site_a) == PER_SITE
        and any(p.scheduled == "False" for p in ps),
        what=f"{PER_SITE} GPU pods Running and one Unschedulable",
    )
    [pending] = [p for p in pods if not p.running]
    assert pending.scheduled_reason == "Unschedulable"
    assert f"Insufficient {GPU_RESOURCE}" in (pending.scheduled_message or ""), pending.scheduled_message
    assert sorted(p.node or "" for p in pods if p.running) == sorted(sites.by_site[site_a])  # one per Node


def test_deleting_the_deployment_removes_its_pods(
    kubectl: Kubectl, sites: SiteNodes, scratch_namespace: str
) -> None:
    site_b = list(sites.by_site)[1]
    kubectl.apply_obj(deployment("short", site_b, replicas=3), "-n", scratch_namespace)
    wait_pods(kubectl, scratch_namespace, "app=short", lambda ps: all_running(ps, 3), what="3 Running pods")
    [rs] = kubectl.json("get", "replicasets", "-n", scratch_namespace, "-l", "app=short")["items"]
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"

    kubectl("delete", "deployment", "short", "-n", scratch_namespace, "--wait=false")
    wait_pods(kubectl, scratch_namespace, "app=short", lambda ps: not ps, what="the pods to be gone")
    assert kubectl.json("get", "replicasets", "-n", scratch_namespace, "-l", "app=short")["items"] == []
