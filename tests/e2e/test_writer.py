"""The operator's writer against the real API server, authenticated as a ServiceAccount
that holds exactly the writer's RBAC (WRITER_RULES).

The example mesh is shared by the session: the tests that use it start by clearing its
statuses (as on a fresh install), so they hold whatever other tests wrote before.
Objects a test creates live in namespaces of its own and are deleted (and waited
for) before it ends, so no other test's mesh sees them.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from controller.api.resources import KINDS, AIFactory, EdgeFleet
from controller.core.changes import Change, Event, ObjectRef, changes
from controller.core.parse import Manifests, parse_object
from controller.core.reconcile import Outcome, Snapshot, reconcile
from controller.operator.writer import StatusWriter, WriteStats
from tests.e2e.e2e_support import Kubectl, KubectlError, unique_name

pytestmark = pytest.mark.e2e

NIGHT_IN_CALIFORNIA = dt.datetime.fromisoformat("2026-11-21T23:30:00-08:00")
MESH = ["aifactories", "edgefleets", "meshworkloads"]

# What the writer needs, and no more (the read verbs are for the operator's watches).
WRITER_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["meshplane.io"], "resources": MESH, "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["meshplane.io"], "resources": [f"{p}/status" for p in MESH], "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def writer_namespace(kubectl: Kubectl) -> Iterator[str]:
    """The operator's namespace: its ServiceAccount and the events of the sites."""
    name = unique_name("writer")
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)


@pytest.fixture(scope="module")
def writer_kubeconfig(kubectl: Kubectl, service_account_kubeconfig, installed_crds, writer_namespace: str) -> Path:
    path = service_account_kubeconfig("meshplane-writer", namespace=writer_namespace, cluster_rules=WRITER_RULES)
    sa = kubectl.with_kubeconfig(path)
    deadline = time.monotonic() + 30  # the RBAC authorizer's caches take a moment
    while sa("auth", "can-i", "patch", "meshworkloads.meshplane.io", "--subresource=status", "-A",
             check=False).stdout.strip() != "yes":
        assert time.monotonic() < deadline, "the writer's ClusterRole never took effect"
        time.sleep(0.2)
    # exactly what is granted: no reads of events, no update/get of statuses
    for denied in (["get", "events"], ["list", "events"], ["update", "events"],
                   ["update", "meshworkloads.meshplane.io", "--subresource=status"],
                   ["get", "meshworkloads.meshplane.io", "--subresource=status"]):
        assert sa("auth", "can-i", *denied, "-A", check=False).stdout.strip() == "no", denied
    return path


@pytest.fixture(scope="module")
def api_client(writer_kubeconfig: Path) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=str(writer_kubeconfig))
    yield client
    client.close()


@pytest.fixture
def make_writer(api_client, writer_namespace: str) -> Callable[..., StatusWriter]:
    """StatusWriter as the ServiceAccount; a unique ``instance`` per writer, so a test
    finds its own events by ``reportingInstance``."""

    def make(**kwargs: Any) -> StatusWriter:
        kwargs.setdefault("events_namespace", writer_namespace)
        kwargs.setdefault("instance", unique_name("writer-test"))
        return StatusWriter(api_client, **kwargs)

    return make


@pytest.fixture
def own_namespace(kubectl: Kubectl, installed_crds) -> Iterator[str]:
    """A namespace for the test's own workloads, emptied (and waited for) at the end."""
    name = unique_name("writer-ws")
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "meshworkloads.meshplane.io", "--all", "-n", name, "--wait=true", "--timeout=60s", check=False)
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)


# --------------------------------------------------------------------------- helpers


def _example_namespaces(example_objects: list[dict[str, Any]]) -> list[str]:
    return sorted({d["metadata"]["namespace"] for d in example_objects if d["kind"] == "MeshWorkload"})


def _items(kubectl: Kubectl, plural: str, namespaces: list[str] | None) -> list[dict[str, Any]]:
    if namespaces is None:
        return kubectl.json("get", f"{plural}.meshplane.io")["items"]
    return [item for ns in namespaces for item in kubectl.json("get", f"{plural}.meshplane.io", "-n", ns)["items"]]


def _read(kubectl: Kubectl, workload_namespaces: list[str]) -> tuple[Snapshot, dict[ObjectRef, str]]:
    """The mesh as the API server holds it (all sites, the workloads of the given
    namespaces), and the uid of every object."""
    manifests = Manifests()
    uids: dict[ObjectRef, str] = {}
    for plural in MESH:
        items = _items(kubectl, plural, workload_namespaces if plural == "meshworkloads" else None)
        for index, item in enumerate(items):
            resource = parse_object(item, plural, index, manifests)  # checks; adds to no list
            assert resource is not None, manifests.problems
            if isinstance(resource, AIFactory):
                manifests.factories.append(resource)
            elif isinstance(resource, EdgeFleet):
                manifests.fleets.append(resource)
            else:
                manifests.workloads.append(resource)
            uids[ObjectRef.of(resource)] = item["metadata"]["uid"]
    assert manifests.problems == []
    assert manifests.factories, "no AIFactory read: the mesh is missing"
    return Snapshot(manifests.factories, manifests.fleets, manifests.workloads, NIGHT_IN_CALIFORNIA), uids


def _clear_statuses(kubectl: Kubectl, workload_namespaces: list[str]) -> None:
    for plural in MESH:
        for item in _items(kubectl, plural, workload_namespaces if plural == "meshworkloads" else None):
            if "status" in item:
                ns = ["-n", item["metadata"]["namespace"]] if item["metadata"].get("namespace") else []
                kubectl("patch", f"{plural}.meshplane.io/{item['metadata']['name']}", *ns,
                        "--subresource=status", "--type=merge", "-p", '{"status": null}')


def _own_events(kubectl: Kubectl, namespace: str, writer: StatusWriter) -> list[dict[str, Any]]:
    items = kubectl.json("get", "events", "-n", namespace)["items"]
    return [e for e in items if e.get("reportingInstance") == writer.instance]


def _status(kubectl: Kubectl, ref: ObjectRef) -> Any:
    plural = KINDS[ref.kind].plural
    ns = ["-n", ref.namespace] if ref.namespace else []
    return kubectl.json("get", f"{plural}.meshplane.io/{ref.name}", *ns).get("status")


def _workloads(kubectl: Kubectl, example_objects, namespace: str, count: int) -> list[ObjectRef]:
    """``count`` small workloads (the spec of an example one) in ``namespace``."""
    template = next(d for d in example_objects if d["kind"] == "MeshWorkload")
    docs = [{"apiVersion": template["apiVersion"], "kind": "MeshWorkload",
             "metadata": {"name": f"w{i}", "namespace": namespace}, "spec": template["spec"]}
            for i in range(count)]
    kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
    return [ObjectRef("MeshWorkload", f"w{i}", namespace) for i in range(count)]


def _assert_zero(stats: WriteStats) -> None:
    assert stats.counts() == dict.fromkeys(stats.counts(), 0) and not stats.written, stats


def _round(kubectl: Kubectl, writer: StatusWriter, namespaces: list[str]) -> tuple[Snapshot, Outcome, list[Change],
                                                                                   WriteStats]:
    snapshot, uids = _read(kubectl, namespaces)
    outcome = reconcile(snapshot)
    todo = list(changes(snapshot, outcome))
    return snapshot, outcome, todo, writer.write(todo, uids=uids)


# --------------------------------------------------------------------------- tests


def test_the_example_mesh_is_written_as_the_core_computed_it(kubectl: Kubectl, example_objects, make_writer,
                                                             writer_namespace: str):
    """(1) statuses stored as computed, Events with the right involvedObject and reason
    (workloads' in their namespace, sites' in the writer's), then (2) a second round
    writes nothing at all."""
    namespaces = _example_namespaces(example_objects)
    _clear_statuses(kubectl, namespaces)
    writer = make_writer()
    started = time.monotonic()
    snapshot, outcome, todo, stats = _round(kubectl, writer, namespaces)
    elapsed = time.monotonic() - started

    patches = [c for c in todo if c.patch is not None]
    events = [e for c in todo for e in c.events]
    assert len(patches) == len(snapshot.workloads) + len(snapshot.factories) + len(snapshot.fleets)
    assert (stats.errors, stats.not_found, stats.conflicts, stats.fenced) == (0, 0, 0, 0), stats
    assert stats.status_patches == len(patches) and stats.written == {c.ref for c in patches}
    assert stats.events_created == len(events) and stats.events_updated == 0
    assert elapsed < 60

    for workload in snapshot.workloads:
        stored = _status(kubectl, ObjectRef.of(workload))
        computed = outcome.workloads[workload.key]
        assert stored == computed.to_api()
        assert stored["phase"] == computed.phase
        assert stored["observedGeneration"] == workload.metadata.generation
    for factory in snapshot.factories:
        assert _status(kubectl, ObjectRef.of(factory)) == outcome.factories[factory.metadata.name].to_api()

    _, uids = _read(kubectl, namespaces)
    workload_events = [e for e in events if e.involved.kind == "MeshWorkload"]
    assert {e.reason for e in workload_events} >= {"Placed", "Unschedulable"}
    assert len(workload_events) == len(snapshot.workloads)  # a first status: one event each
    site_events = [e for e in events if e.involved.kind != "MeshWorkload"]
    assert site_events, "at night in California some site has a condition that is True"
    stored_events = {ns: _own_events(kubectl, ns, writer) for ns in [*namespaces, writer_namespace]}
    for event in events:
        ref = event.involved
        where = ref.namespace or writer_namespace
        found = [e for e in stored_events[where]
                 if e["involvedObject"]["kind"] == ref.kind and e["involvedObject"]["name"] == ref.name
                 and e["reason"] == event.reason]
        assert len(found) == 1, (event, stored_events[where])
        stored = found[0]
        assert stored["type"] == event.type and stored["message"] == event.message[:1024]
        assert stored["count"] == 1
        assert stored["source"]["component"] == "meshplane-operator"
        assert stored["reportingComponent"] == "meshplane-operator"
        assert stored["involvedObject"]["apiVersion"] == "meshplane.io/v1alpha1"
        assert stored["involvedObject"]["uid"] == uids[ref]
        assert stored["involvedObject"]["namespace"] == where
    # what 'kubectl get events' shows for a workload
    placed = next(e for e in workload_events if e.reason == "Placed")
    table = kubectl("get", "events", "-n", str(placed.involved.namespace)).stdout
    assert f"meshworkload/{placed.involved.name}" in table and "Placed" in table

    # (2) the same again: zero patches, zero events
    _, _, again, second = _round(kubectl, writer, namespaces)
    assert again == []
    _assert_zero(second)
    assert sum(len(_own_events(kubectl, ns, writer)) for ns in stored_events) == len(events)


def test_a_second_writer_writes_nothing_for_an_unchanged_mesh(kubectl: Kubectl, example_objects, make_writer):
    """(2) whatever wrote the statuses before (another test, another replica), an
    unchanged mesh costs zero requests."""
    namespaces = _example_namespaces(example_objects)
    _round(kubectl, make_writer(), namespaces)  # bring the statuses up to date
    _, _, todo, stats = _round(kubectl, make_writer(), namespaces)
    assert todo == []
    _assert_zero(stats)


def test_a_null_in_the_merge_patch_deletes_the_field_on_the_server(kubectl: Kubectl, example_objects, make_writer,
                                                                   own_namespace: str):
    """(3) the python client really sends application/merge-patch+json."""
    (ref,) = _workloads(kubectl, example_objects, own_namespace, 1)
    writer = make_writer()
    first = {"status": {"phase": "Unschedulable", "message": "no site", "latencyMs": 12.5, "observedGeneration": 1}}
    assert writer.write([Change(ref, first, ())]).status_patches == 1
    stored = _status(kubectl, ref)
    assert {key: stored.get(key) for key in first["status"]} == first["status"]
    stats = writer.write([Change(ref, {"status": {"latencyMs": None, "observedGeneration": None}}, ())])
    assert stats.status_patches == 1 and stats.errors == 0
    stored = _status(kubectl, ref)
    assert "latencyMs" not in stored and "observedGeneration" not in stored
    assert stored["phase"] == "Unschedulable" and stored["message"] == "no site"  # the rest is kept: a merge


def test_an_object_deleted_before_the_write_is_skipped_and_the_rest_written(
    kubectl: Kubectl, example_objects, make_writer, own_namespace: str
):
    """(4) the core's changes for some workloads; one is deleted before the write."""
    refs = _workloads(kubectl, example_objects, own_namespace, 4)
    snapshot, uids = _read(kubectl, [own_namespace])
    outcome = reconcile(snapshot)
    todo = [c for c in changes(snapshot, outcome) if c.ref.kind == "MeshWorkload"]  # sites are shared
    assert {c.ref for c in todo} == set(refs) and all(c.patch and c.events for c in todo)
    kubectl("delete", "meshworkloads.meshplane.io", "w1", "-n", own_namespace, "--wait=true")
    writer = make_writer()
    stats = writer.write(todo, uids=uids)
    assert stats.not_found == 1 and stats.errors == 0
    assert stats.status_patches == 3 and stats.events_created == 3  # no event about the deleted one
    assert stats.written == set(refs) - {refs[1]}
    for ref in stats.written:
        assert _status(kubectl, ref) == outcome.workloads[f"{ref.namespace}/{ref.name}"].to_api()
    names = {e["involvedObject"]["name"] for e in _own_events(kubectl, own_namespace, writer)}
    assert names == {"w0", "w2", "w3"}


def test_a_status_computed_from_an_older_version_is_refused_and_the_current_one_written(
    kubectl: Kubectl, example_objects, make_writer, own_namespace: str
):
    """(4b) the precondition: a patch carrying the resourceVersion its status was computed
    from is refused with 409 once the spec changed (nothing stored, no Event), is stored
    when the object is still that version, and the answer gives the new version (the
    next patch's precondition). The ServiceAccount's ``patch`` on ``/status`` suffices."""
    stale_ref, fresh_ref = _workloads(kubectl, example_objects, own_namespace, 2)
    versions = {ref: kubectl.json("get", f"meshworkloads.meshplane.io/{ref.name}", "-n", own_namespace)
                ["metadata"]["resourceVersion"] for ref in (stale_ref, fresh_ref)}
    kubectl("patch", f"meshworkloads.meshplane.io/{stale_ref.name}", "-n", own_namespace, "--type=merge",
            "-p", '{"spec": {"priority": 12345}}')  # the spec changes after the "snapshot"
    writer = make_writer()
    todo = [Change(ref, {"status": {"phase": "Pending", "message": "computed from the old spec"}},
                   (Event(ref, "Normal", "Placed", "test"),), version=versions[ref]) for ref in (stale_ref, fresh_ref)]
    stats = writer.write(todo)
    assert (stats.conflicts, stats.errors, stats.status_patches, stats.events_created) == (1, 0, 1, 1)
    assert stats.conflicted == {stale_ref} and stats.written == {fresh_ref}
    assert _status(kubectl, stale_ref) is None  # nothing written for the changed object
    assert _status(kubectl, fresh_ref)["message"] == "computed from the old spec"
    stored = kubectl.json("get", f"meshworkloads.meshplane.io/{fresh_ref.name}", "-n", own_namespace)
    assert stats.versions == {fresh_ref: stored["metadata"]["resourceVersion"]} != {fresh_ref: versions[fresh_ref]}
    assert "resourceVersion" not in (stored.get("status") or {})
    names = {e["involvedObject"]["name"] for e in _own_events(kubectl, own_namespace, writer)}
    assert names == {fresh_ref.name}  # no Event of a status that was not stored
    again = writer.write([Change(fresh_ref, {"status": {"message": "next"}}, (), version=stats.versions[fresh_ref])])
    assert again.status_patches == 1 and again.conflicts == 0


def test_a_closed_fence_stops_the_writes_mid_batch(kubectl: Kubectl, example_objects, make_writer,
                                                   own_namespace: str):
    """(5) may_write() is asked before each request: after its first False nothing
    more is sent, in this batch or (while it stays False) the next."""
    refs = _workloads(kubectl, example_objects, own_namespace, 8)
    allowed = 3
    asked = []

    def may_write() -> bool:
        asked.append(1)
        return len(asked) <= allowed

    writer = make_writer(may_write=may_write, max_concurrency=4)
    todo = [Change(ref, {"status": {"phase": "Pending", "message": f"batch {i}"}},
                   (Event(ref, "Normal", "Placed", "test"),)) for i, ref in enumerate(refs)]
    stats = writer.write(todo)
    assert stats.status_patches + stats.events_created == allowed
    assert stats.fenced == 2 * len(refs) - allowed and stats.errors == 0
    written = [ref for ref in refs if _status(kubectl, ref) is not None]
    assert sorted(written) == sorted(stats.written) and len(written) == stats.status_patches
    assert len(_own_events(kubectl, own_namespace, writer)) == stats.events_created

    closed = make_writer(may_write=lambda: False)
    again = closed.write(todo)
    assert again.fenced == 2 * len(refs) and again.requests == 0
    assert [ref for ref in refs if _status(kubectl, ref) is not None] == written


def test_the_same_event_twice_is_one_event_with_count_2(kubectl: Kubectl, example_objects, make_writer,
                                                        own_namespace: str):
    """(6) deduplication like client-go's correlator: count and lastTimestamp."""
    (ref,) = _workloads(kubectl, example_objects, own_namespace, 1)
    uid = kubectl.json("get", "meshworkloads.meshplane.io/w0", "-n", own_namespace)["metadata"]["uid"]
    writer = make_writer()
    event = Event(ref, "Warning", "Unschedulable", "0/3 sites fit: " + "x" * 2000)  # truncated to 1024 bytes
    first = writer.write([Change(ref, None, (event,))], uids={ref: uid})
    assert (first.events_created, first.events_updated) == (1, 0)
    time.sleep(1.1)  # timestamps have one-second resolution
    second = writer.write([Change(ref, None, (event,))], uids={ref: uid})
    assert (second.events_created, second.events_updated, second.status_patches) == (0, 1, 0)
    (stored,) = _own_events(kubectl, own_namespace, writer)
    assert stored["count"] == 2
    assert stored["lastTimestamp"] > stored["firstTimestamp"]
    assert len(stored["message"].encode()) <= 1024 and stored["message"].endswith("...")
    assert stored["involvedObject"]["uid"] == uid
    # 'kubectl describe' shows it (it matches on involvedObject name, namespace and uid)
    described = kubectl("describe", "meshworkloads.meshplane.io", "w0", "-n", own_namespace).stdout
    assert "Unschedulable" in described and "x2 over" in described.replace("(", "").replace(")", "")


def test_site_events_in_default_show_in_kubectl_describe(kubectl: Kubectl, example_objects, make_writer):
    """Why the events namespace of cluster-scoped sites matters: the API server takes
    an Event whose involvedObject has no namespace only in "default", and 'kubectl
    describe aifactory' looks for exactly that."""
    factory = kubectl.json("get", "aifactories.meshplane.io")["items"][0]
    ref = ObjectRef("AIFactory", factory["metadata"]["name"])
    message = f"test event {unique_name('m')}"
    writer = make_writer(events_namespace="default")
    stats = writer.write([Change(ref, None, (Event(ref, "Normal", "Cordoned", message),))],
                         uids={ref: factory["metadata"]["uid"]})
    assert stats.events_created == 1, stats
    (stored,) = _own_events(kubectl, "default", writer)
    try:
        assert "namespace" not in stored["involvedObject"]
        described = kubectl("describe", "aifactories.meshplane.io", ref.name).stdout
        assert message in described and "Cordoned" in described

        refused = {"apiVersion": "v1", "kind": "Event",
                   "metadata": {"name": unique_name("probe"), "namespace": "kube-public"},
                   "involvedObject": {"apiVersion": "meshplane.io/v1alpha1", "kind": "AIFactory", "name": ref.name},
                   "reason": "Probe", "message": "m", "type": "Normal"}
        with pytest.raises(KubectlError) as err:
            kubectl("create", "-f", "-", input=json.dumps(refused))
        assert "does not match event.namespace" in err.value.stderr
    finally:
        kubectl("delete", "event", stored["metadata"]["name"], "-n", "default", "--ignore-not-found", check=False)
