"""The operator under chaos: a real ``meshplane-operator`` process (RBAC-restricted
ServiceAccount, the 4 s Lease of operator_support) placing 500 synthetic workloads (on
30 sites of their own, beside the example mesh) while a background stream creates them
in batches, then patches random ones (priority, demand, interruptible). The process is
SIGKILLed 5 times at seeded moments (before it can take the Lease, during its cold
solve, halfway through its writes, during warm solves) and restarted; the last one
takes over a half-written mesh with the stream still on. Once the stream stops and the
operator settles (every workload solved for its current generation, then no write for
QUIET_S), the statuses stored in the API server must be a valid placement of the
manifests as stored at the end (re-derived by tests/support/invariants.py, without the
engine):

- each of our workloads (and the example ones) is Placed with assignments, or
  Unschedulable/Preempted with a message;
- no factory pool or fleet over its devices (fleets: online at the operator's time), no
  factory over its usable power nor its non-interruptible load over firm power, no
  fleet over maxFleetMW;
- no workload breaks a placement rule (demand placed whole, maxSites, countries,
  fleets, training on one factory, models, memory, cordons); latency is not re-derived;
- every site's status agrees with the workloads' statuses (devices per pool, power,
  workload count), with its generation and (fleets) with its devices online.

Two of the factories are sites of member clusters (``member_clusters``: their own
control planes), one per delivery backend: member-a reached with the member role's
kubeconfig (``direct``), member-b through Open Cluster Management (``ocm``: ManifestWorks
on the hub applied by member-b's real work agent, ``ocm_hub``). Every fifth workload
has a pod template (a few pods per assignment), so the kills also land amid deliveries:
once settled, each member must hold exactly the Deployments of the final plan (listed
with kubectl, matched by their origin labels against the stored statuses), nothing
more, nothing less.

The operator's clock is frozen (``MESHPLANE_CLOCK_START``, a tiny rate) so fleets'
online devices are known exactly. The stream and the kills are seeded (``SEED``, or
``MESHPLANE_CHAOS_SEED``; the mesh is seed 7), so a failure replays (up to thread
timing). Every object created here (namespaces, sites, workloads, the sites' Events) is
deleted at the end: sites are cluster-scoped and other tests share the cluster.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

from controller.api.resources import GROUP, VERSION
from tests.e2e.e2e_support import Kubectl, unique_name
from tests.e2e.member_support import MemberCluster, kubeconfig_secret, member_kubeconfig
from tests.e2e.ocm_support import OcmHub, condition
from tests.e2e.operator_support import EXAMPLE_WORKLOADS, OperatorProcess, wait_for
from tests.support.invariants import fleet_online_devices, status_violations
from tests.support.meshes import synthetic_mesh, to_manifests

pytestmark = pytest.mark.e2e

# MESHPLANE_CHAOS_SEED replays another stream of changes and kills (the mesh stays seed 7).
SEED = int(os.environ.get("MESHPLANE_CHAOS_SEED", "7"))
MESH_SEED = 7
WORKLOADS, SITES = 500, 30
KILLS = 5
# Each kill (seeded): one in STANDBY_KILLS before the process can take the Lease (the
# killed leader's Lease runs 4 s), the others a moment after it took the Lease: during
# its first (cold) solve, its writes (hundreds of status patches and Events) or the
# warm solves of the stream that follow.
STANDBY_KILLS = 0.2
KILL_STANDBY_S = (0.5, 3.0)
KILL_LEADING_S = (0.2, 16.0)
LEADING = "leading: solving the whole mesh"
LIVE_AFTER_TAKEOVER_S = 4.0
BURST_S = 3.0
BATCH = 50
AT = dt.datetime(2025, 6, 1, 23, 30, tzinfo=dt.UTC)  # fleets' night windows are open then
CLOCK = {"MESHPLANE_CLOCK_START": AT.isoformat(), "MESHPLANE_CLOCK_RATE": "1e-9"}
SETTLE_S = 60.0  # settling takes 5-30 s
# the members' Deployments follow the statuses: member-b's through its OCM work agent,
# which applies each ManifestWork on its own informer (seconds to tens of seconds when
# the machine is busy with hundreds of them)
DELIVERY_S = 180.0
QUIET_S = 4.0  # settled: no write to any meshplane object for this long
MERGE_PATCH = "application/merge-patch+json"
PLURALS = {"AIFactory": "aifactories", "EdgeFleet": "edgefleets", "MeshWorkload": "meshworkloads",
           "MemberCluster": "memberclusters"}


# factory -> the member cluster that runs its work (the others are local)
MEMBER_SITES = {"factory-0": "member-a", "factory-1": "member-b"}
TEMPLATE_EVERY = 5  # every fifth workload has a pod template: one replica per assignment
ONE_REPLICA = 1024  # devicesPerReplica (its maximum): few pods per assignment


def _objects(prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """The synthetic mesh's sites and workloads under names of our own (``prefix``),
    so the example mesh is untouched; and the namespaces the workloads live in. The
    factories of MEMBER_SITES name MemberClusters ``<prefix>-<member>``."""
    sites, workloads = [], []
    rename = {}
    manifests = to_manifests(synthetic_mesh(WORKLOADS, SITES, seed=MESH_SEED))
    for obj in manifests:
        if obj["kind"] != "MeshWorkload":
            rename[obj["metadata"]["name"]] = f"{prefix}-{obj['metadata']['name']}"
    for obj in manifests:
        meta = obj["metadata"]
        if obj["kind"] == "MeshWorkload":
            meta["namespace"] = f"{prefix}-{meta['namespace']}"
            if len(workloads) % TEMPLATE_EVERY == 0:
                obj["spec"]["template"] = {"spec": {"containers": [{"name": "serve", "image": "registry.example/s:1"}]}}
                obj["spec"]["devicesPerReplica"] = ONE_REPLICA
            workloads.append(obj)
        else:
            if meta["name"] in MEMBER_SITES:
                obj["spec"]["memberCluster"] = f"{prefix}-{MEMBER_SITES[meta['name']]}"
            meta["name"] = rename[meta["name"]]
            sites.append(obj)
    namespaces = sorted({w["metadata"]["namespace"] for w in workloads})
    return sites, workloads, namespaces


class Stream(threading.Thread):
    """Creates the workloads in batches, then patches random ones until stopped."""

    def __init__(self, client: Any, workloads: list[dict[str, Any]], seed: int) -> None:
        super().__init__(name="chaos-stream", daemon=True)
        self.api = kubernetes.client.CustomObjectsApi(client)
        self.workloads = workloads
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.created = threading.Event()
        self.patches: Counter[str] = Counter()
        self.error: BaseException | None = None
        self.burst_until = 0.0  # until then (monotonic), patches follow each other without a pause
        self.last_patch: dict[str, str] = {}  # key -> when (wall clock, as in the operator's log) and what

    def run(self) -> None:
        try:
            for start in range(0, len(self.workloads), BATCH):
                for obj in self.workloads[start:start + BATCH]:
                    self.api.create_namespaced_custom_object(
                        GROUP, VERSION, obj["metadata"]["namespace"], "meshworkloads", obj
                    )
                time.sleep(self.rng.uniform(0.2, 1.0))
            self.created.set()
            while not self.stop.is_set():
                self._patch_one()
                if time.monotonic() >= self.burst_until:
                    time.sleep(self.rng.uniform(0.03, 0.15))
        except BaseException as exc:  # reported by the test
            self.error = exc

    def _patch_one(self) -> None:
        obj = self.workloads[self.rng.randrange(len(self.workloads))]
        spec = obj["spec"]
        what = self.rng.choice(["priority", "demand", "interruptible"])
        if what == "priority":
            patch: dict[str, Any] = {"priority": self.rng.choice([0, 100, 1000, 10_000, 100_000])}
        elif what == "interruptible":
            patch = {"interruptible": self.rng.random() < 0.5}
        elif spec.get("accelerators") is not None:
            patch = {"accelerators": max(1, round(spec["accelerators"] * self.rng.uniform(0.5, 1.5)))}
        else:
            patch = {"tokensPerSecond": spec["tokensPerSecond"] * self.rng.uniform(0.5, 1.5)}
        meta = obj["metadata"]
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, meta["namespace"], "meshworkloads", meta["name"], {"spec": patch},
            _content_type=MERGE_PATCH,
        )
        self.patches[what] += 1
        self.last_patch[f"{meta['namespace']}/{meta['name']}"] = f"{_wall()} {what}"


def _wall() -> str:
    return dt.datetime.now().strftime("%H:%M:%S,%f")[:-3]


def _list(api: Any, kind: str) -> list[dict[str, Any]]:
    items = api.list_cluster_custom_object(GROUP, VERSION, PLURALS[kind])["items"]
    for item in items:
        item.setdefault("kind", kind)
    return list(items)


def _key(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def _settled(api: Any, watched: set[str]) -> dict[str, dict[str, Any]] | None:
    """Every watched workload solved for its current generation, else None."""
    found = {_key(w): w for w in _list(api, "MeshWorkload") if _key(w) in watched}
    if len(found) != len(watched):
        return None
    for w in found.values():
        status = w.get("status") or {}
        if status.get("observedGeneration") != w["metadata"]["generation"]:
            return None
        if status.get("phase") not in ("Placed", "Unschedulable", "Preempted"):
            return None
    return found


def _unsettled(api: Any, watched: set[str], stream: Stream, process: OperatorProcess) -> str:
    """Why the operator did not settle: the workloads whose status is not for their
    current generation, when the stream last patched them, and the operator's log."""
    lines = [f"not settled after {SETTLE_S:.0f} s (now {_wall()}):"]
    for w in sorted(_list(api, "MeshWorkload"), key=_key):
        status = w.get("status") or {}
        if _key(w) in watched and status.get("observedGeneration") != w["metadata"]["generation"]:
            lines.append(f"  {_key(w)}: generation {w['metadata']['generation']}, status "
                         f"{status.get('phase')} for generation {status.get('observedGeneration')}; "
                         f"last patched {stream.last_patch.get(_key(w), 'never')}")
    return "\n".join(lines) + f"\n---- {process.log_path} ----\n{process.tail()}"


def _all_objects(api: Any) -> list[dict[str, Any]]:
    return [obj for kind in PLURALS for obj in _list(api, kind)]


def _versions(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {f"{o['kind']}/{_key(o)}": o["metadata"]["resourceVersion"] for o in objects}


def _quiet(api: Any) -> list[dict[str, Any]]:
    """All meshplane objects, once none has been written for QUIET_S."""
    before = _all_objects(api)
    while True:
        time.sleep(QUIET_S)
        after = _all_objects(api)
        if _versions(after) == _versions(before):
            return after
        before = after


def _site_disagreements(objects: list[dict[str, Any]]) -> list[str]:
    """Sites whose stored status disagrees with the stored statuses of the workloads
    placed there (devices per pool, power, workload count), with their own generation,
    or (fleets) with the devices online at the operator's time."""
    used: Counter[tuple[str, str]] = Counter()
    power: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for w in objects:
        status = w.get("status") or {}
        if w["kind"] == "MeshWorkload" and status.get("phase") == "Placed":
            for a in status.get("assignments") or []:
                used[(a["site"], a["acceleratorModel"])] += a["devices"]
                power[a["site"]] += a.get("powerMW", 0.0)
            for site in {a["site"] for a in status.get("assignments") or []}:
                count[site] += 1
    bad = []
    for site in objects:
        if site["kind"] == "MeshWorkload":
            continue
        name, status = site["metadata"]["name"], site.get("status") or {}
        where = f"{site['kind']} {name}"
        if status.get("observedGeneration") != site["metadata"]["generation"]:
            bad.append(f"{where}: observedGeneration {status.get('observedGeneration')} "
                       f"!= generation {site['metadata']['generation']}")
        for pool in status.get("pools") or []:
            if pool.get("devicesAllocated", 0) != used[(name, pool["model"])]:
                bad.append(f"{where}: status says {pool.get('devicesAllocated', 0)} {pool['model']} allocated, "
                           f"the workloads' statuses {used[(name, pool['model'])]}")
        allocated = (status.get("power") or {}).get("allocatedMW", 0.0)
        if abs(allocated - power[name]) > 1e-4 * (count[name] + 1):
            bad.append(f"{where}: status says {allocated} MW allocated, the workloads' statuses {power[name]:.4f}")
        if status.get("workloadCount", 0) != count[name]:
            bad.append(f"{where}: status says {status.get('workloadCount', 0)} workloads, "
                       f"the workloads' statuses {count[name]}")
        if site["kind"] == "EdgeFleet" and not site["spec"].get("cordoned"):
            online = fleet_online_devices(site["spec"], AT)
            if status.get("onlineDevices") != online:
                bad.append(f"{where}: status says {status.get('onlineDevices')} devices online, "
                           f"{online} at {AT.isoformat()}")
    return bad


def _wait_alive(process: OperatorProcess, stream: Stream, seconds: float = 0.0, leading: bool = False) -> None:
    """Wait until ``process`` took the Lease (``leading``), then ``seconds`` more,
    checking that neither the process nor the stream failed meanwhile."""
    deadline = time.monotonic() + 60
    while leading and LEADING not in process.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"the operator did not take the Lease:\n{process.tail()}"
        _check_alive(process, stream)
        time.sleep(0.1)
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        _check_alive(process, stream)
        time.sleep(0.1)


def _check_alive(process: OperatorProcess, stream: Stream) -> None:
    assert process.process.poll() is None, f"the operator exited by itself:\n{process.tail()}"
    assert stream.error is None, f"the stream of changes failed: {stream.error!r}"


def _log_summary(process: OperatorProcess, core: Any) -> str:
    """What a process did: took the Lease, solves completed, Events it recorded (its
    writes: an Event follows its object's status patch), errors logged."""
    text = process.log_path.read_text(errors="replace")
    found = re.search(r"leader election for lease \S+ as (\S+) ", text)
    identity = found.group(1) if found else "?"
    events = sum(1 for e in core.list_event_for_all_namespaces().items if e.reporting_instance == identity)
    return (f"leading={LEADING in text} solves={text.count(' solved ')} events={events} "
            f"errors={text.count(' ERROR ')}")


def _cleanup(client: Any, sites: list[dict[str, Any]], namespaces: list[str], prefix: str) -> None:
    custom = kubernetes.client.CustomObjectsApi(client)
    core = kubernetes.client.CoreV1Api(client)
    for namespace in namespaces:
        with contextlib.suppress(ApiException):
            custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, "meshworkloads")
        with contextlib.suppress(ApiException):
            core.delete_namespace(namespace)
    for site in sites:
        with contextlib.suppress(ApiException):
            custom.delete_cluster_custom_object(GROUP, VERSION, PLURALS[site["kind"]], site["metadata"]["name"])
    with contextlib.suppress(ApiException):  # Events of cluster-scoped sites live in "default"
        for event in core.list_namespaced_event("default").items:
            if (event.involved_object.name or "").startswith(f"{prefix}-"):
                with contextlib.suppress(ApiException):
                    core.delete_namespaced_event(event.metadata.name, "default")
    left = [_key(o) for kind in PLURALS for o in _list(custom, kind) if _key(o).startswith(f"{prefix}-")]
    print(f"chaos: {len(left)} objects left behind {left[:5]}" if left else "chaos: every object deleted", flush=True)


def _member_deployments(member: MemberCluster, hub: str) -> Counter[tuple[str, str, str]]:
    """(workload namespace, workload, site) -> Deployments there, from the member's own
    API server (kubectl; a Deployment being deleted does not count)."""
    items = member.kubectl.json("get", "deployments.apps", "-A", "-l", f"meshplane.io/origin={hub}")["items"]
    found: Counter[tuple[str, str, str]] = Counter()
    for item in items:
        labels = item["metadata"]["labels"]
        if item["metadata"].get("deletionTimestamp"):
            found[("?", item["metadata"]["name"], "being deleted")] += 1
            continue
        found[(labels["meshplane.io/workload-namespace"], labels["meshplane.io/workload"],
               labels["meshplane.io/site"])] += 1
    return found


def _on_site(held: Counter[tuple[str, str, str]], site: str) -> Counter[tuple[str, str, str]]:
    """What a member holds for ``site``, with any Deployment still being deleted."""
    return +Counter({k: v for k, v in held.items() if k[2] == site or k[0] == "?"})


def _hub_works(ocm_hub: OcmHub, cluster_name: str, hub: str) -> dict[tuple[str, str, str], str]:
    """(workload namespace, workload, site) -> how each of this operator's ManifestWorks
    for ``cluster_name`` stands on the hub (its generation, the Applied condition)."""
    items = ocm_hub.kubectl.json("get", "manifestwork", "-n", cluster_name, "-l", f"meshplane.io/origin={hub}")["items"]
    found: dict[tuple[str, str, str], str] = {}
    for item in items:
        deployments = [m for m in item["spec"]["workload"]["manifests"] if m.get("kind") == "Deployment"]
        for deployment in deployments:
            labels = deployment["metadata"].get("labels") or {}
            applied = condition(item.get("status") or {}, "Applied") or {}
            found[(labels.get("meshplane.io/workload-namespace", "?"), labels.get("meshplane.io/workload", "?"),
                   labels.get("meshplane.io/site", "?"))] = (
                f"{item['metadata']['name']} generation {item['metadata']['generation']}"
                f"{' (being deleted)' if item['metadata'].get('deletionTimestamp') else ''}, Applied="
                f"{applied.get('status')} for generation {applied.get('observedGeneration')} ({applied.get('reason')})")
    return found


def _undelivered(
    timeout: str, member: MemberCluster, site: str, want: Counter[tuple[str, str, str]], hub: str,
    ocm_hub: OcmHub, process: OperatorProcess,
) -> str:
    """Why a member does not hold the plan's Deployments: each Deployment missing or
    extra, and (OCM) how its ManifestWork stands on the hub, so a late agent tells
    itself apart from an operator that did not write; the delivery lines of the log."""
    held = _on_site(_member_deployments(member, hub), site)
    lines = [f"{timeout}: {sum(want.values())} wanted, {sum(held.values())} held"]
    works = _hub_works(ocm_hub, member.name, hub) if member.name in ocm_hub.agents else None
    for key in sorted(set(want) | set(held)):
        if want[key] != held[key]:
            work = "" if works is None else f"; its ManifestWork: {works.get(key, 'none')}"
            lines.append(f"  {key}: wanted {want[key]}, held {held[key]}{work}")
    if works is not None:
        stray = sorted(k for k in works if k[2] == site and not want[k])
        lines += [f"  ManifestWork of no planned Deployment {k}: {works[k]}" for k in stray[:20]]
        lines.append(f"---- {member.name}'s work agent ----\n{ocm_hub.agent_log(member.name)}")
    log = process.log_path.read_text(errors="replace").splitlines()
    delivery = [line for line in log if member.name in line or "deliver" in line.lower()]
    return "\n".join(lines) + f"\n---- {process.log_path} (delivery) ----\n" + "\n".join(delivery[-40:])


def _planned_deployments(stored: dict[str, dict[str, Any]], site: str) -> Counter[tuple[str, str, str]]:
    """What the stored statuses put on ``site``: one Deployment per accelerator model of
    each placed workload with a template."""
    want: Counter[tuple[str, str, str]] = Counter()
    for obj in stored.values():
        status = obj.get("status") or {}
        if not obj["spec"].get("template") or status.get("phase") != "Placed":
            continue
        models = {a["acceleratorModel"] for a in status.get("assignments", []) if a["site"] == site and a["devices"]}
        if models:
            want[(obj["metadata"]["namespace"], obj["metadata"]["name"], site)] += len(models)
    return want


def test_operator_survives_kills_under_a_stream_of_changes(
    kubectl: Kubectl, operator_env: tuple[Path, str, Path], member_clusters: dict[str, MemberCluster],
    ocm_hub: OcmHub, tmp_path: Path,
) -> None:
    kubeconfig, lease_namespace, logs = operator_env
    ocm_hub.ensure_agent("member-b")  # Available, whatever an earlier test did to the member
    prefix = unique_name("chaos")
    sites, workloads, namespaces = _objects(prefix)
    hub = prefix  # the origin label of this test's operators
    backends = {"member-a": {"direct": {"kubeconfigSecretRef": {"name": f"{prefix}-member-a"}}},
                "member-b": {"ocm": {"managedClusterName": "member-b"}}}
    clusters = [{"apiVersion": f"{GROUP}/{VERSION}", "kind": "MemberCluster", "metadata": {"name": f"{prefix}-{m}"},
                 "spec": backends[m]} for m in member_clusters]
    kubeconfig_secret(kubectl, lease_namespace, f"{prefix}-member-a",
                      member_kubeconfig(member_clusters["member-a"], tmp_path / "member-a.kubeconfig"))
    mine = {_key(w) for w in workloads}
    client = kubernetes.config.new_client_from_config(config_file=kubectl.kubeconfig)
    stream_client = kubernetes.config.new_client_from_config(config_file=kubectl.kubeconfig)
    api = kubernetes.client.CustomObjectsApi(client)
    kill_rng = random.Random(SEED + 1)
    stream = Stream(stream_client, workloads, SEED)
    process: OperatorProcess | None = None
    timings: dict[str, float] = {}
    clock = time.monotonic()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.monotonic()
        timings[name] = now - clock
        clock = now
        print(f"chaos: {name}: {timings[name]:.1f} s", flush=True)

    def start(n: int) -> OperatorProcess:
        return OperatorProcess(kubeconfig, lease_namespace, logs / f"chaos-{prefix}-{n}.log", extra_env={
            **CLOCK, "MESHPLANE_HUB_NAME": hub, "MESHPLANE_PROBE_EVERY_S": "1", "MESHPLANE_PROBE_TIMEOUT_S": "1"})

    try:
        core = kubernetes.client.CoreV1Api(client)
        for namespace in namespaces:
            core.create_namespace({"metadata": {"name": namespace}})
        for obj in [*clusters, *sites]:
            api.create_cluster_custom_object(GROUP, VERSION, PLURALS[obj["kind"]], obj)
        phase(f"created {len(sites)} sites ({len(MEMBER_SITES)} in member clusters) and {len(namespaces)} "
              f"namespaces (seed {SEED})")

        process = start(0)
        stream.start()
        for n in range(1, KILLS + 1):
            standby = kill_rng.random() < STANDBY_KILLS
            delay = kill_rng.uniform(*(KILL_STANDBY_S if standby else KILL_LEADING_S))
            begun = time.monotonic()
            _wait_alive(process, stream, delay, leading=not standby)
            process.kill()
            process.stop()
            print(f"chaos: kill {n} {delay:.1f} s after {'its start' if standby else 'taking the Lease'} "
                  f"({time.monotonic() - begun:.1f} s up; {_log_summary(process, core)}); "
                  f"{'all created' if stream.created.is_set() else 'creating'}, {sum(stream.patches.values())} "
                  f"patches so far", flush=True)
            process = start(n)
        wait_for("the stream to create every workload", stream.created.is_set, timeout_s=60)
        # The last operator takes over a half-written mesh with the stream still on (a
        # burst of changes as it takes the Lease): its cold solve, then warm solves of
        # live changes for a few seconds.
        _wait_alive(process, stream, leading=True)
        stream.burst_until = time.monotonic() + BURST_S  # a burst of changes while it re-lists on takeover
        last = process
        wait_for("the last operator's first solve",
                 lambda: " solved " in last.log_path.read_text(errors="replace"), timeout_s=90)
        _wait_alive(process, stream, LIVE_AFTER_TAKEOVER_S)
        stream.stop.set()
        stream.join(timeout=30)
        assert stream.error is None, f"the stream of changes failed: {stream.error!r}"
        phase(f"stream with {KILLS} kills ({dict(stream.patches)} patches)")

        watched = mine | (EXAMPLE_WORKLOADS & {_key(w) for w in _list(api, "MeshWorkload")})
        try:
            wait_for("every workload to be solved for its current generation", lambda: _settled(api, watched),
                     timeout_s=SETTLE_S)
        except AssertionError:
            raise AssertionError(_unsettled(api, watched, stream, process)) from None
        objects = [o for o in _quiet(api) if o["kind"] != "MemberCluster"]  # the placement's objects
        assert process.process.poll() is None, f"the operator exited by itself:\n{process.tail()}"
        phase("settled")

        stored = {_key(o): o for o in objects if o["kind"] == "MeshWorkload"}
        phases = Counter((stored[k].get("status") or {}).get("phase") for k in mine)
        print(f"chaos: {len(mine)} workloads: {dict(phases)}; last operator: {_log_summary(process, core)}",
              flush=True)
        violations = status_violations(objects, AT, workloads=watched)
        assert not violations, f"{len(violations)} violations:\n" + "\n".join(violations[:50])
        disagreements = _site_disagreements(objects)
        assert not disagreements, "\n".join(disagreements[:50])
        assert phases["Placed"] > 0, phases
        phase("checked")

        # every member holds exactly the Deployments of the final plan (delivery runs
        # after the statuses are written: wait for it, then compare)
        by_name = {s["metadata"]["name"]: s for s in sites}
        delivered = 0
        for site_name, site in by_name.items():
            member_name = (site["spec"].get("memberCluster") or "").removeprefix(f"{prefix}-")
            if not member_name:
                continue
            member = member_clusters[member_name]
            want = _planned_deployments(stored, site_name)
            try:
                wait_for(f"{member_name} to hold exactly the plan's Deployments on {site_name}",
                         lambda m=member, w=want, n=site_name: _on_site(_member_deployments(m, hub), n) == +w,
                         timeout_s=DELIVERY_S)
            except AssertionError as timeout:
                raise AssertionError(_undelivered(str(timeout), member, site_name, want, hub, ocm_hub, process)) from None
            delivered += sum(want.values())
        assert delivered > 0, "no workload with a template was placed on a member site: the check checked nothing"
        phase(f"members hold the plan's {delivered} Deployments")
    finally:
        stream.stop.set()
        if stream.is_alive():
            stream.join(timeout=30)
        if process is not None:
            process.stop()
        _cleanup(client, [*sites, *clusters], namespaces, prefix)
        # this hub's ManifestWorks, before the namespaces: a ManifestWork left behind
        # would make member-b's agent re-create what it holds
        ocm_hub.delete_works_of(hub)
        for member in member_clusters.values():
            member.ensure_healthy()
            member.delete_namespaces(*namespaces)
        for name in member_clusters:
            kubectl("delete", "secret", f"{prefix}-{name}", "-n", lease_namespace, "--ignore-not-found", check=False)
        phase("cleaned up")
        print(f"chaos: total {sum(timings.values()):.1f} s", flush=True)
