"""Simulated nodes for the "cluster in a box" (helpers; no fixtures here).

The e2e control plane runs the real kube-scheduler and KWOK (see docs/e2e.md): a Node
annotated ``kwok.x-k8s.io/node: fake`` is played by KWOK, which makes it Ready and makes
the Pods the scheduler binds to it Running, with a pod IP. This module creates such
Nodes for meshplane sites, labelled ``meshplane.io/site=<site>`` (the label a
materialised Deployment selects), and reads back where Pods landed::

    nodes = make_site_nodes(kubectl, ["us-memphis-1", "kr-sejong-1"], per_site=2)
    try:
        ...  # create Deployments whose pods select meshplane.io/site
        placed = wait_pods(kubectl, ns, "app=trainer", lambda ps: all_running(ps, 4))
        by_site = pods_by_site(kubectl, ns, "app=trainer")   # {"us-memphis-1": [...], ...}
    finally:
        delete_nodes(kubectl, nodes)

Every Node made here carries the label ``meshplane.io/e2e-node-group=<group>`` so that
one call deletes them all. A Pod left on a deleted Node is removed by the control
plane's pod garbage collector within about a minute.

On an external cluster (``MESHPLANE_E2E_KUBECONFIG``) these helpers work only if KWOK
runs there and manages Nodes with that annotation; otherwise :func:`wait_nodes_ready`
fails saying so.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from controller.core.materialise import SITE_LABEL
from tests.e2e.e2e_support import Kubectl, unique_name

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"
NODE_GROUP_LABEL = "meshplane.io/e2e-node-group"
GPU_RESOURCE = "nvidia.com/gpu"
HOSTNAME_LABEL = "kubernetes.io/hostname"

# Big enough that capacity never decides a test unless it asks for it: the examples'
# templates request a few millicores and MiB per replica.
DEFAULT_CPU = "64"
DEFAULT_MEMORY = "512Gi"
DEFAULT_PODS = "110"
DEFAULT_GPUS = 8

NODE_READY_TIMEOUT_S = 60.0
POD_TIMEOUT_S = 60.0


# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True)
class SiteNodes:
    """The Nodes made by one :func:`make_site_nodes` call: ``site -> [node name]``."""

    group: str
    by_site: Mapping[str, list[str]]

    @property
    def names(self) -> list[str]:
        return [name for names in self.by_site.values() for name in names]

    def site_of(self, node: str) -> str | None:
        return next((site for site, names in self.by_site.items() if node in names), None)


def node_manifest(
    name: str,
    site: str,
    *,
    group: str,
    cpu: str = DEFAULT_CPU,
    memory: str = DEFAULT_MEMORY,
    pods: str = DEFAULT_PODS,
    gpus: int = DEFAULT_GPUS,
    labels: Mapping[str, str] | None = None,
    kwok: bool = True,
) -> dict[str, Any]:
    """A Node for ``site``: the labels a kubelet would set (hostname, os, arch) plus
    ``meshplane.io/site``, and a status with its capacity.

    A Node may be created with its status (the API server keeps it, as KWOK's own docs
    do); KWOK then adds the conditions, addresses, daemon endpoints and node info. ``kwok=False``
    leaves out the annotation: no simulated kubelet then, so the Node never gets Ready.
    """
    capacity = {"cpu": cpu, "memory": memory, "pods": pods}
    if gpus:
        capacity[GPU_RESOURCE] = str(gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_ANNOTATION: KWOK_ANNOTATION_VALUE} if kwok else {},
            "labels": {
                HOSTNAME_LABEL: name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                SITE_LABEL: site,
                NODE_GROUP_LABEL: group,
                **(labels or {}),
            },
        },
        "spec": {},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
        },
    }


def make_site_nodes(
    kubectl: Kubectl,
    sites: Iterable[str],
    per_site: int = 2,
    *,
    wait: bool = True,
    timeout_s: float = NODE_READY_TIMEOUT_S,
    **node_options: Any,
) -> SiteNodes:
    """Create ``per_site`` KWOK Nodes labelled ``meshplane.io/site=<site>`` for each
    site and (by default) wait until all are Ready. ``node_options`` go to
    :func:`node_manifest` (``gpus``, ``cpu``, ``labels``, ``kwok``, ...).

    Node names are ``<site>-<n>-<random>``, unique across calls; delete them with
    :func:`delete_nodes` (the same sites may be made again afterwards).
    """
    group = unique_name("nodes")
    by_site: dict[str, list[str]] = {}
    manifests = []
    for site in sites:
        suffix = uuid.uuid4().hex[:5]
        names = [f"{site}-{i}-{suffix}" for i in range(per_site)]
        by_site[site] = names
        manifests += [node_manifest(name, site, group=group, **node_options) for name in names]
    made = SiteNodes(group=group, by_site=by_site)
    if not manifests:
        return made
    kubectl("create", "-f", "-", input=_as_list(manifests))
    if wait:
        try:
            wait_nodes_ready(kubectl, made.names, timeout_s=timeout_s)
        except BaseException:
            delete_nodes(kubectl, made)
            raise
    return made


def delete_nodes(kubectl: Kubectl, nodes: SiteNodes) -> None:
    """Delete the Nodes of one :func:`make_site_nodes` call (missing ones are fine)."""
    kubectl("delete", "nodes", "-l", f"{NODE_GROUP_LABEL}={nodes.group}",
            "--ignore-not-found", "--wait=false", check=False)


def node_ready(node: Mapping[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def wait_nodes_ready(kubectl: Kubectl, names: Iterable[str], timeout_s: float = NODE_READY_TIMEOUT_S) -> list[dict[str, Any]]:
    """Wait until every named Node has Ready=True; return the Nodes."""
    wanted = set(names)
    deadline = time.monotonic() + timeout_s
    while True:
        nodes = {n["metadata"]["name"]: n for n in kubectl.json("get", "nodes")["items"]
                 if n["metadata"]["name"] in wanted}
        if set(nodes) == wanted and all(node_ready(n) for n in nodes.values()):
            return list(nodes.values())
        if time.monotonic() > deadline:
            missing = sorted(wanted - set(nodes))
            not_ready = sorted(name for name, n in nodes.items() if not node_ready(n))
            raise AssertionError(
                f"Nodes not Ready after {timeout_s:.0f} s (missing: {missing}, not Ready: {not_ready}). "
                f"Nodes annotated {KWOK_ANNOTATION}={KWOK_ANNOTATION_VALUE} are made Ready by KWOK, "
                "which the e2e control plane runs unless started with --kwok=false; "
                "an external cluster needs KWOK installed."
            )
        time.sleep(0.3)


# --------------------------------------------------------------------------- pods


@dataclass(frozen=True)
class PodInfo:
    """Where a Pod is and how it is, as the scheduler and the (simulated) kubelet left it."""

    name: str
    phase: str
    node: str | None
    site: str | None
    """``meshplane.io/site`` of its Node (None when unbound or the Node has no such label)."""
    pod_ip: str | None
    host_ip: str | None
    scheduled: str | None
    """Status of the PodScheduled condition ("True"/"False"), None before the scheduler saw it."""
    scheduled_reason: str | None
    scheduled_message: str | None
    deleting: bool
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return self.phase == "Running" and not self.deleting


def pod_info(pod: Mapping[str, Any], node_sites: Mapping[str, str]) -> PodInfo:
    status = pod.get("status", {})
    scheduled: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {})
    node = pod.get("spec", {}).get("nodeName") or None
    return PodInfo(
        name=pod["metadata"]["name"],
        phase=status.get("phase", ""),
        node=node,
        site=node_sites.get(node) if node else None,
        pod_ip=status.get("podIP") or None,
        host_ip=status.get("hostIP") or None,
        scheduled=scheduled.get("status"),
        scheduled_reason=scheduled.get("reason"),
        scheduled_message=scheduled.get("message"),
        deleting=bool(pod["metadata"].get("deletionTimestamp")),
        labels=pod["metadata"].get("labels") or {},
    )


def node_sites(kubectl: Kubectl) -> dict[str, str]:
    """``node name -> meshplane.io/site`` of every Node that has the label."""
    nodes = kubectl.json("get", "nodes", "-l", SITE_LABEL)["items"]
    return {n["metadata"]["name"]: n["metadata"]["labels"][SITE_LABEL] for n in nodes}


def list_pods(kubectl: Kubectl, namespace: str, selector: str = "") -> list[PodInfo]:
    """The Pods of ``namespace`` matching the label ``selector``, sorted by name."""
    args = ["get", "pods", "-n", namespace] + (["-l", selector] if selector else [])
    pods = kubectl.json(*args)["items"]
    sites = node_sites(kubectl) if any(p.get("spec", {}).get("nodeName") for p in pods) else {}
    return sorted((pod_info(p, sites) for p in pods), key=lambda p: p.name)


def pods_by_site(kubectl: Kubectl, namespace: str, selector: str = "") -> dict[str | None, list[PodInfo]]:
    """``site -> Pods`` on that site's Nodes; unbound Pods (and Pods on a Node without a
    site label) under ``None``."""
    out: dict[str | None, list[PodInfo]] = {}
    for pod in list_pods(kubectl, namespace, selector):
        out.setdefault(pod.site, []).append(pod)
    return out


def running_per_site(pods: Iterable[PodInfo]) -> dict[str | None, int]:
    """How many Running (not terminating) Pods each site has."""
    out: dict[str | None, int] = {}
    for pod in pods:
        if pod.running:
            out[pod.site] = out.get(pod.site, 0) + 1
    return out


def wait_pods(
    kubectl: Kubectl,
    namespace: str,
    selector: str,
    condition: Callable[[list[PodInfo]], bool],
    what: str = "",
    timeout_s: float = POD_TIMEOUT_S,
) -> list[PodInfo]:
    """Poll :func:`list_pods` until ``condition(pods)`` holds; return those Pods.

    On timeout the AssertionError lists every Pod's phase, Node and PodScheduled reason.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        pods = list_pods(kubectl, namespace, selector)
        if condition(pods):
            return pods
        if time.monotonic() > deadline:
            lines = "\n".join(
                f"  {p.name}: {p.phase} node={p.node} site={p.site} scheduled={p.scheduled}"
                f" {p.scheduled_reason or ''} {p.scheduled_message or ''}".rstrip()
                for p in pods
            ) or "  (no pods)"
            raise AssertionError(
                f"timed out after {timeout_s:.0f} s waiting for {what or 'pods'} "
                f"({selector or 'all'} in {namespace}):\n{lines}"
            )
        time.sleep(0.3)


def all_running(pods: list[PodInfo], count: int) -> bool:
    """Exactly ``count`` Pods, all Running (a handy :func:`wait_pods` condition)."""
    return len(pods) == count and all(p.running for p in pods)


def _as_list(manifests: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": manifests})
