"""The materialiser against the real API server, authenticated as a ServiceAccount that
holds exactly MATERIALISER_RULES (RBAC enforced).

The statuses come from the core: the example mesh (parsed from examples/) plus a
workload with a template created in a scratch namespace (read back from the API server
for its uid), reconciled at night in California. The control plane is the cluster in a box: its
Deployment controller writes each Deployment's status (so "unchanged" is judged by the
spec's generation and by who applied the spec, not by resourceVersion), and its garbage
collector proves the owner references. Pods running at their sites are
tests/e2e/test_quickstart.py's.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from controller.api.models import MeshWorkloadStatus
from controller.api.resources import MeshWorkload
from controller.cli.files import load_manifests
from controller.core.materialise import MANAGED_SELECTOR, SITE_LABEL
from controller.core.parse import Manifests, parse_object
from controller.core.reconcile import Snapshot, reconcile
from controller.operator.materialiser import Materialiser, MaterialiseStats
from tests.e2e.e2e_support import EXAMPLES_DIR, Kubectl, unique_name

pytestmark = pytest.mark.e2e

NIGHT_IN_CALIFORNIA = dt.datetime.fromisoformat("2026-11-21T23:30:00-08:00")

# What the materialiser needs, and no more: server-side apply (a PATCH, authorised as
# "patch", and as "create" too when the Deployment does not exist yet), the listing of
# leftovers, and their deletion.
MATERIALISER_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create", "patch", "list", "delete"]},
]

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "trainer"}},
    "spec": {
        "nodeSelector": {"kubernetes.io/arch": "amd64"},
        "containers": [{"name": "trainer", "image": "registry.example/trainer:1",
                        "resources": {"limits": {"nvidia.com/gpu": "8"}}}],
    },
}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def materialiser_kubeconfig(kubectl: Kubectl, service_account_kubeconfig, installed_crds) -> Path:
    path = service_account_kubeconfig("meshplane-materialiser", namespace=unique_name("materialiser"),
                                      cluster_rules=MATERIALISER_RULES)
    sa = kubectl.with_kubeconfig(path)
    deadline = time.monotonic() + 30  # the RBAC authorizer's caches take a moment
    while sa("auth", "can-i", "patch", "deployments.apps", "-A", check=False).stdout.strip() != "yes":
        assert time.monotonic() < deadline, "the materialiser's ClusterRole never took effect"
        time.sleep(0.2)
    for denied in ("update", "get", "watch", "deletecollection"):
        assert sa("auth", "can-i", denied, "deployments.apps", "-A", check=False).stdout.strip() == "no", denied
    return path


@pytest.fixture(scope="module")
def api_client(materialiser_kubeconfig: Path) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=str(materialiser_kubeconfig))
    yield client
    client.close()


@pytest.fixture
def requests_sent(api_client: kubernetes.client.ApiClient) -> Iterator[list[str]]:
    """Every HTTP request the client sends, as 'METHOD path'."""
    sent: list[str] = []
    original = api_client.rest_client.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(f"{method} {url.split('//', 1)[-1].split('/', 1)[-1]}")
        return original(method, url, *args, **kwargs)

    api_client.rest_client.request = request
    yield sent
    api_client.rest_client.request = original


@pytest.fixture(scope="module")
def example_mesh() -> Manifests:
    manifests = load_manifests([EXAMPLES_DIR])
    assert manifests.problems == [] and manifests.factories
    return manifests


@pytest.fixture
def namespace(kubectl: Kubectl, installed_crds) -> Iterator[str]:
    name = unique_name("mat")
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "deployments.apps", "--all", "-n", name, "--wait=false", check=False)
    kubectl("delete", "meshworkloads.meshplane.io", "--all", "-n", name, "--wait=true", "--timeout=60s", check=False)
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)


# --------------------------------------------------------------------------- helpers


def _create_workload(kubectl: Kubectl, namespace: str, name: str, **spec: Any) -> tuple[MeshWorkload, str]:
    body = {"apiVersion": "meshplane.io/v1alpha1", "kind": "MeshWorkload",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"type": "training", "accelerators": 64, "acceleratorModels": ["nvidia-gb200"],
                     "devicesPerReplica": 8, "priority": 10, "template": TEMPLATE, **spec}}
    kubectl.apply_obj(body)
    return _read_workload(kubectl, namespace, name)


def _read_workload(kubectl: Kubectl, namespace: str, name: str) -> tuple[MeshWorkload, str]:
    stored = kubectl.json("get", "meshworkloads.meshplane.io", name, "-n", namespace)
    manifests = Manifests()
    workload = parse_object(stored, "api", 0, manifests)
    assert isinstance(workload, MeshWorkload), manifests.problems
    return workload, stored["metadata"]["uid"]


def _status(mesh: Manifests, workload: MeshWorkload, cordoned: Collection[str] = ()) -> MeshWorkloadStatus:
    """The workload's status as the operator computes it: the example mesh plus it."""
    factories = [f.model_copy(update={"spec": f.spec.model_copy(update={"cordoned": True})})
                 if f.metadata.name in cordoned else f for f in mesh.factories]
    snapshot = Snapshot(factories, mesh.fleets, [*mesh.workloads, workload], NIGHT_IN_CALIFORNIA)
    return reconcile(snapshot).workloads[workload.key]


def _deployments(kubectl: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    items = kubectl.json("get", "deployments.apps", "-n", namespace, "-l", MANAGED_SELECTOR,
                         "--show-managed-fields")["items"]
    return {d["metadata"]["name"]: d for d in items}


def _only(stats: MaterialiseStats, **expected: int) -> None:
    assert stats.counts() == {**dict.fromkeys(stats.counts(), 0), **expected}, stats


def _timed(call: Callable[[], MaterialiseStats], timings: dict[str, float], what: str) -> MaterialiseStats:
    started = time.perf_counter()
    stats = call()
    timings[what] = (time.perf_counter() - started) * 1e3
    return stats


# --------------------------------------------------------------------------- tests


def test_a_placed_template_becomes_a_deployment_that_follows_its_placement(
    kubectl: Kubectl, api_client, example_mesh: Manifests, namespace: str, requests_sent: list[str],
    record_property: Callable[[str, object], None],
) -> None:
    timings: dict[str, float] = {}
    workload, uid = _create_workload(kubectl, namespace, "trainer")
    status = _status(example_mesh, workload)
    assert status.phase == "Placed" and len(status.assignments) == 1, status
    site = status.assignments[0].site
    materialiser = Materialiser(api_client)

    # 1. created: one list (leftovers) and one apply
    stats = _timed(lambda: materialiser.sync([(workload, status, uid)]), timings, "first sync")
    _only(stats, applied=1, listed=1)
    assert [r.split(" ")[0] for r in requests_sent] == ["GET", "PATCH"]
    (stored,) = _deployments(kubectl, namespace).values()
    meta, spec = stored["metadata"], stored["spec"]
    assert meta["name"] == f"trainer-{site}"
    assert meta["labels"] == {"app.kubernetes.io/managed-by": "meshplane", "meshplane.io/workload": "trainer",
                              "meshplane.io/site": site, "meshplane.io/accelerator-model": "nvidia-gb200"}
    assert meta["ownerReferences"] == [{"apiVersion": "meshplane.io/v1alpha1", "kind": "MeshWorkload",
                                        "name": "trainer", "uid": uid, "controller": True,
                                        "blockOwnerDeletion": True}]
    assert spec["replicas"] == 8  # 64 devices, 8 per pod
    assert spec["template"]["spec"]["nodeSelector"] == {"kubernetes.io/arch": "amd64", SITE_LABEL: site}
    assert spec["template"]["metadata"]["labels"]["app"] == "trainer"
    assert spec["selector"]["matchLabels"] == {"meshplane.io/workload": "trainer", "meshplane.io/site": site}
    assert spec["template"]["spec"]["containers"][0]["image"] == "registry.example/trainer:1"
    # the Deployment controller of the cluster writes the status (an Update); the spec is ours alone
    managers = {(m["manager"], m["operation"]) for m in meta["managedFields"] if m["operation"] == "Apply"}
    assert managers == {("meshplane-operator", "Apply")}, meta["managedFields"]

    # 2. unchanged: nothing sent, nothing written
    requests_sent.clear()
    stats = _timed(lambda: materialiser.sync([(workload, status, uid)]), timings, "unchanged sync")
    _only(stats, unchanged=1)
    assert requests_sent == []
    # the spec stored is the same (the Deployment controller may have written its status meanwhile)
    assert _deployments(kubectl, namespace)[meta["name"]]["metadata"]["generation"] == meta["generation"]

    # 3. its site cordoned: placed elsewhere, the Deployment moves
    moved = _status(example_mesh, workload, cordoned={site})
    assert moved.phase == "Placed" and moved.assignments[0].site != site, moved
    new_site = moved.assignments[0].site
    stats = _timed(lambda: materialiser.sync([(workload, moved, uid)]), timings, "move")
    _only(stats, applied=1, deleted=1)
    (stored,) = _deployments(kubectl, namespace).values()
    assert stored["metadata"]["name"] == f"trainer-{new_site}"
    assert stored["spec"]["template"]["spec"]["nodeSelector"][SITE_LABEL] == new_site

    # 4. the template removed (as a user would): the Deployment goes
    kubectl("patch", "meshworkloads.meshplane.io", "trainer", "-n", namespace, "--type=json",
            "-p", '[{"op": "remove", "path": "/spec/template"}]')
    plain, _ = _read_workload(kubectl, namespace, "trainer")
    assert plain.spec.template is None
    stats = _timed(lambda: materialiser.sync([(plain, _status(example_mesh, plain, {site}), uid)]), timings,
                   "template removed")
    _only(stats, deleted=1)
    assert _deployments(kubectl, namespace) == {}
    _only(materialiser.sync([(plain, _status(example_mesh, plain, {site}), uid)]))
    record_property("materialise_ms", timings)
    print(f"\nmaterialiser timings (ms): { {k: round(v, 1) for k, v in timings.items()} }")


def test_a_new_leader_deletes_leftovers_and_rewrites_nothing(
    kubectl: Kubectl, api_client, example_mesh: Manifests, namespace: str, requests_sent: list[str],
) -> None:
    """A restarted process (or a new leader) knows nothing it applied: it lists the
    namespaces, re-applies what is desired (the server stores nothing new) and deletes
    the Deployments of workloads that are not placed any more."""
    kept, kept_uid = _create_workload(kubectl, namespace, "kept")
    gone, gone_uid = _create_workload(kubectl, namespace, "gone")
    kept_status, gone_status = _status(example_mesh, kept), _status(example_mesh, gone)
    _only(Materialiser(api_client).sync([(kept, kept_status, kept_uid), (gone, gone_status, gone_uid)]),
          applied=2, listed=1)
    before = {n: d["metadata"]["generation"] for n, d in _deployments(kubectl, namespace).items()}
    assert len(before) == 2

    requests_sent.clear()
    unplaced = gone_status.model_copy(update={"phase": "Preempted", "assignments": []})
    stats = Materialiser(api_client).sync([(kept, kept_status, kept_uid), (gone, unplaced, gone_uid)])
    _only(stats, applied=1, deleted=1, listed=1)
    assert sorted(r.split(" ")[0] for r in requests_sent) == ["DELETE", "GET", "PATCH"]
    after = {n: d["metadata"]["generation"] for n, d in _deployments(kubectl, namespace).items()}
    (name,) = after
    assert name.startswith("kept-") and after[name] == before[name]  # applied again, unchanged on the server


def test_a_closed_fence_sends_nothing(
    kubectl: Kubectl, api_client, example_mesh: Manifests, namespace: str, requests_sent: list[str],
) -> None:
    workload, uid = _create_workload(kubectl, namespace, "fenced")
    status = _status(example_mesh, workload)
    stats = Materialiser(api_client, may_write=lambda: False).sync([(workload, status, uid)])
    _only(stats, fenced=1)
    assert requests_sent == [] and _deployments(kubectl, namespace) == {}

    # the Lease lost between the listing and the apply
    answers = iter([True, True])
    materialiser = Materialiser(api_client, may_write=lambda: next(answers, False))
    _only(materialiser.sync([(workload, status, uid)]), listed=1, fenced=1)
    assert _deployments(kubectl, namespace) == {}
    # leading again: everything is applied (nothing cached is trusted)
    answers = iter([True] * 10)
    _only(materialiser.sync([(workload, status, uid)]), applied=1, listed=1)


def test_an_invalid_template_is_counted_once_sent_and_the_rest_applied(
    kubectl: Kubectl, api_client, example_mesh: Manifests, namespace: str, requests_sent: list[str],
) -> None:
    """Two kinds of bad template: not of the pod schema (server-side apply answers 500)
    and invalid (422)."""
    untyped, untyped_uid = _create_workload(kubectl, namespace, "untyped",
                                            template={"spec": {"containers": "not a list"}})
    invalid, invalid_uid = _create_workload(kubectl, namespace, "invalid", template={"spec": {"containers": []}})
    good, good_uid = _create_workload(kubectl, namespace, "good")
    items = [(w, _status(example_mesh, w), uid)
             for w, uid in ((untyped, untyped_uid), (invalid, invalid_uid), (good, good_uid))]
    materialiser = Materialiser(api_client)
    _only(materialiser.sync(items), applied=1, errors=2, listed=1)
    assert [n.split("-")[0] for n in _deployments(kubectl, namespace)] == ["good"]
    requests_sent.clear()
    _only(materialiser.sync(items), unchanged=1, errors=2)  # the refused bodies are not sent again
    assert requests_sent == []
    # fixed: applied at once
    fixed, _ = _create_workload(kubectl, namespace, "invalid")
    items[1] = (fixed, _status(example_mesh, fixed), invalid_uid)
    _only(materialiser.sync(items), applied=1, unchanged=1, errors=1)


def test_deleting_the_workload_deletes_its_deployment(
    kubectl: Kubectl, api_client, example_mesh: Manifests, namespace: str,
) -> None:
    """The owner reference at work: the API server's garbage collector deletes the
    Deployment of a deleted workload (no request of the materialiser needed)."""
    workload, uid = _create_workload(kubectl, namespace, "owned")
    _only(Materialiser(api_client).sync([(workload, _status(example_mesh, workload), uid)]), applied=1, listed=1)
    assert len(_deployments(kubectl, namespace)) == 1
    kubectl("delete", "meshworkloads.meshplane.io", "owned", "-n", namespace, "--wait=true")
    deadline = time.monotonic() + 60
    while _deployments(kubectl, namespace):
        assert time.monotonic() < deadline, "the garbage collector never deleted the Deployment"
        time.sleep(0.5)
