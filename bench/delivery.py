"""Delivery benchmark: a real operator on a hub delivering to two real member clusters.

``python -m bench.delivery --workloads 1000 --json [--backend direct|ocm]`` (a
benchmark, never a timed test):

- starts three test control planes (tests/controlplane): the hub (no scheduler, no
  KWOK: nothing runs there) and two members with KWOK nodes labelled as sites, as the
  e2e suite does (tests/e2e/member_support.py); installs the member chart in each and
  mints its kubeconfig (a ServiceAccount token, the member role's rights only);
- on the hub: the CRDs, the two kubeconfig Secrets, two MemberClusters and two
  factories, ``fr-a`` in member-a (cheaper, room for half the workloads) and ``de-b`` in
  member-b (room for all of them);
- one operator process (admin kubeconfig: RBAC is not what is measured), probe every
  1 s, ``lostAfter`` ``--lost-after`` s, no local delivery;
- **burst**: ``--workloads`` MeshWorkloads with a pod template (1 device, 1 replica
  each) created by ``--threads`` threads; ``seconds_to_all_available`` = first create
  -> every workload's ``Available`` condition True in the hub (its pod Running and
  ready in its member, read back by the operator); also from the last create;
- **failover**: member-a is frozen (SIGSTOP: it stops answering, as a partitioned
  cluster does); ``seconds_to_failover`` = the freeze -> every workload that was on
  ``fr-a`` is Placed elsewhere or Preempted, as the hub's statuses say; the target is
  ``lostAfter + 5 s``;
- ``--backend ocm``: the same through Open Cluster Management instead (the e2e
  harness tests/e2e/ocm_support.py: OCM's hub controllers on the hub, a klusterlet
  agent per member, ManagedCluster lease 1 s, the agents' status sync every 1 s; OCM's
  default is 10 s): MemberClusters with ``spec.ocm``, one ManifestWork per workload,
  readiness from status feedback; failover stops member-a's agent instead of freezing
  the member (OCM sees a partition as a lease that stops: ~5 s with a 1 s lease);
- prints one JSON object (``--json``: only that line on stdout; progress on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import kubernetes

from bench.operator import GROUP, PLURAL, VERSION, Operator, code_version, install, load_average, say, wait_until
from tests.e2e.e2e_support import Kubectl, build_controlplane, find_kubectl, start_controlplane, stop_process
from tests.e2e.member_support import kubeconfig_secret, member_kubeconfig, started_members
from tests.e2e.ocm_support import build_ocm, started_ocm_hub

OPERATOR_NAMESPACE = "meshplane-bench"
NAMESPACES = 10


def _factory(name: str, cluster: str, devices: int, price: float) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AIFactory", "metadata": {"name": name}, "spec": {
        "region": "eu", "country": "FR", "memberCluster": cluster,
        "power": {"firmMW": devices * 700 * 1.2 / 1e6 + 0.1, "pricePerMWh": price},
        "acceleratorPools": [{"model": "gpu", "count": devices, "wattsPerDevice": 700,
                              "tokensPerSecondPerDevice": 1000, "memoryGiB": 80}]}}


def _workload(index: int) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MeshWorkload",
            "metadata": {"name": f"wl-{index}", "namespace": f"bench-{index % NAMESPACES}"},
            "spec": {"type": "inference", "accelerators": 1, "devicesPerReplica": 1,
                     "template": {"spec": {"containers": [{"name": "serve", "image": "registry.example/s:1"}]}}}}


def _available(item: dict[str, Any]) -> bool:
    status = item.get("status") or {}
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in status.get("conditions") or [])


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    kubectl_path, kubectl_version = find_kubectl()
    stub = types.SimpleNamespace(pluginmanager=types.SimpleNamespace(getplugin=lambda _: None))
    binary = build_controlplane(stub)  # type: ignore[arg-type]
    (workdir / "hub").mkdir()
    hub_cp = start_controlplane(binary, workdir / "hub", ["--kwok=false", "--scheduler=false"])
    result: dict[str, Any] = {"workloads": args.workloads, "lost_after_s": args.lost_after, "backend": args.backend}
    try:
        kubectl = Kubectl(kubectl_path, hub_cp.kubeconfig, kubectl_version)
        client = kubernetes.config.new_client_from_config(config_file=hub_cp.kubeconfig)
        api = kubernetes.client.CustomObjectsApi(client)
        core = kubernetes.client.CoreV1Api(client)
        with contextlib.ExitStack() as stack:
            members = stack.enter_context(started_members(stub, binary, kubectl_path))  # type: ignore[arg-type]
            a, b = members["member-a"], members["member-b"]
            ocm = None
            if args.backend == "ocm":
                ocm = stack.enter_context(started_ocm_hub(
                    stub, build_ocm(stub), hub_cp, kubectl_path, list(members.items())))  # type: ignore[arg-type]
            half = args.workloads // 2
            site_a, site_b = a.sites[0], b.sites[0]
            a.make_site_nodes([site_a], per_site=2, pods=str(half + 50))
            b.make_site_nodes([site_b], per_site=2, pods=str(args.workloads + 50))
            factories = [_factory(site_a, "member-a", half, 10), _factory(site_b, "member-b", args.workloads, 50)]
            install(kubectl, core, factories, [f"bench-{i}" for i in range(NAMESPACES)])
            for name, member in members.items():
                spec: dict[str, Any] = {"ocm": {}}
                if ocm is None:
                    kubeconfig_secret(kubectl, OPERATOR_NAMESPACE, name,
                                      member_kubeconfig(member, workdir / f"{name}.kc"))
                    spec = {"direct": {"kubeconfigSecretRef": {"name": name}}}
                kubectl("apply", "--server-side", "-f", "-", input=json.dumps({
                    "apiVersion": f"{GROUP}/{VERSION}", "kind": "MemberCluster", "metadata": {"name": name},
                    "spec": spec}))
            operator = Operator(hub_cp.kubeconfig, workdir / "operator.log", extra_env={
                "MESHPLANE_NAMESPACE": OPERATOR_NAMESPACE, "MESHPLANE_MATERIALISE": "false",
                "MESHPLANE_HUB_NAME": "bench-hub", "MESHPLANE_PROBE_EVERY_S": "1", "MESHPLANE_PROBE_TIMEOUT_S": "1",
                "MESHPLANE_LOST_AFTER_S": str(args.lost_after)})
            try:
                wait_until("the operator to be ready", operator.ready, 120, 0.2)
                say(f"operator ready; creating {args.workloads} workloads")
                workloads = [_workload(i) for i in range(args.workloads)]
                created_last = [0.0]
                lock = threading.Lock()

                def create(obj: dict[str, Any]) -> None:
                    api.create_namespaced_custom_object(GROUP, VERSION, obj["metadata"]["namespace"], PLURAL, obj)
                    with lock:
                        created_last[0] = time.monotonic()

                first = time.monotonic()
                with ThreadPoolExecutor(args.threads) as pool:
                    list(pool.map(create, workloads))
                result["seconds_to_create"] = round(created_last[0] - first, 2)

                def items() -> list[dict[str, Any]]:
                    return list(api.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"])

                wait_until("every workload Available", lambda: (w := items()) and len(w) == args.workloads
                           and all(_available(i) for i in w), args.timeout, 0.5)
                done = time.monotonic()
                result["seconds_to_all_available"] = round(done - first, 2)
                result["seconds_to_all_available_after_last_create"] = round(done - created_last[0], 2)
                on_a = {f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in items()
                        if (i.get("status") or {}).get("sites") == site_a}
                result["workloads_on_member_a"] = len(on_a)
                say(f"all Available after {result['seconds_to_all_available']} s; {len(on_a)} on member-a; "
                    + ("stopping member-a's agent" if ocm else "freezing member-a"))
                with ocm.agent_down("member-a") if ocm else a.frozen():
                    frozen = time.monotonic()

                    def failed_over() -> bool:
                        for i in items():
                            key = f"{i['metadata']['namespace']}/{i['metadata']['name']}"
                            status = i.get("status") or {}
                            if key in on_a and status.get("phase") == "Placed" and status.get("sites") == site_a:
                                return False
                        return True

                    wait_until("member-a's work re-placed or preempted", failed_over, args.timeout, 0.2)
                    result["seconds_to_failover"] = round(time.monotonic() - frozen, 2)
                    phases: dict[str, int] = {}
                    for i in items():
                        key = f"{i['metadata']['namespace']}/{i['metadata']['name']}"
                        if key in on_a:
                            phase = (i.get("status") or {}).get("phase", "?")
                            phases[phase] = phases.get(phase, 0) + 1
                    result["failover_phases"] = phases
                    say(f"failed over in {result['seconds_to_failover']} s: {phases}")
                result["operator_rss_mb"] = operator.memory_mb()
            finally:
                operator.stop()
    finally:
        if hub_cp.process is not None:
            stop_process(hub_cp.process)
    result["targets"] = {
        "all_available_within_30s_of_last_create": result.get("seconds_to_all_available_after_last_create", 1e9) <= 30,
        "failover_within_lost_after_plus_5s": result.get("seconds_to_failover", 1e9) <= args.lost_after + 5,
    }
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", type=int, default=1000)
    ap.add_argument("--backend", choices=("direct", "ocm"), default="direct",
                    help="deliver with kubeconfigs (direct) or through Open Cluster Management (ocm)")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--lost-after", type=float, default=10.0, help="the operator's lostAfter, in seconds")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--json", action="store_true", help="print only the JSON result on stdout")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (the operator's log)")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="meshplane-bench-delivery-"))
    try:
        result = measure(args, workdir)
    finally:
        if args.keep:
            say(f"kept {workdir}")
        else:
            with contextlib.suppress(Exception):
                shutil.rmtree(workdir, ignore_errors=True)
    result["load_average"] = load_average()
    result["operator_code"] = code_version()
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
