"""docs/quickstart-kind.md, run as written against the cluster in a box.

The page's ``sh`` blocks are read from the file and every ``kubectl`` and ``helm`` line
runs, in order, with the real programs, against the suite's control plane (the real
kube-apiserver, kube-scheduler, Deployment and ReplicaSet controllers, and KWOK's
simulated nodes). After each block the test checks what the page says the reader will
see. So a change to the page's commands changes what runs here, and the two cannot
drift.

Two things cannot run here, and the test does their part itself:

- ``kind create cluster``: instead, one KWOK node per worker of
  docs/quickstart/kind-config.yaml, with that worker's labels (so the config and the
  nodes cannot drift either);
- ``docker build`` / ``kind load``: the chart's operator pods are simulated by KWOK
  (they are scheduled and reported Running, but run nothing), so the operator runs as a
  local process with the token of the ServiceAccount the chart created and the env of
  the chart's Deployment: the chart's RBAC is what it runs with. (That the image's
  steps install a working operator is tests/e2e/test_wheel.py.)

The reader's namespace ``meshplane-system`` becomes a unique one, so the test never
touches an install of the chart that already exists in the cluster.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.core.materialise import SITE_LABEL
from tests.e2e.cluster_support import (
    SiteNodes,
    delete_nodes,
    list_pods,
    node_manifest,
    node_ready,
    wait_nodes_ready,
)
from tests.e2e.e2e_support import REPO_ROOT, Kubectl, tail, unique_name
from tests.e2e.operator_support import OperatorProcess, deployment_env, helm_for, token_kubeconfig, wait_for

pytestmark = pytest.mark.e2e

DOC = REPO_ROOT / "docs" / "quickstart-kind.md"
KIND_CONFIG = REPO_ROOT / "docs" / "quickstart" / "kind-config.yaml"
HOST_ONLY = ("kind", "docker")  # what only the reader's machine can run
READER_NAMESPACE = "meshplane-system"
MANAGED = "app.kubernetes.io/managed-by=meshplane"
UNSCHEDULABLE_EXAMPLE = "serving/japan-medical-llm"  # no site in Japan, at any hour
# runs only on parked cars: Placed at night in California, else not placed, with a reason
BY_THE_HOUR_EXAMPLE = "batch/dashcam-clip-indexing"


def doc_blocks(text: str) -> list[list[str]]:
    """The command lines of every ```sh block, in order."""
    blocks = re.findall(r"^```sh\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def kind_workers(config: dict[str, Any]) -> list[dict[str, str]]:
    return [node.get("labels", {}) for node in config["nodes"] if node["role"] == "worker"]


class Reader:
    """Runs the page's lines as a reader would, against the suite's cluster."""

    def __init__(self, kubectl: Kubectl, helm: Kubectl, namespace: str) -> None:
        self.kubectl, self.helm, self.namespace = kubectl, helm, namespace
        self.ran: list[str] = []

    def run(self, line: str) -> str:
        if line.split()[0] == "sed":
            return self._pipe(line)
        words = [self.namespace if w == READER_NAMESPACE else w for w in shlex.split(line)]
        program = {"kubectl": self.kubectl, "helm": self.helm}[words[0]]
        result = subprocess.run(
            [program.binary, "--kubeconfig", program.kubeconfig, *words[1:]],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
        )
        assert result.returncode == 0, (
            f"the quickstart's line failed: {line}\n(run as: {' '.join(words)})\n"
            f"stdout:\n{tail(result.stdout)}\nstderr:\n{tail(result.stderr)}"
        )
        self.ran.append(line)
        return result.stdout

    def _pipe(self, line: str) -> str:
        """``sed ... FILE | kubectl apply -f -``: run by bash as written, the kubectl of
        the pipe being the suite's (its binary and kubeconfig)."""
        head, bar, tail_ = line.partition(" | kubectl ")
        assert bar and "|" not in tail_ and READER_NAMESPACE not in line, f"a pipe this test cannot run: {line}"
        kubectl = f"{shlex.quote(self.kubectl.binary)} --kubeconfig {shlex.quote(self.kubectl.kubeconfig)}"
        result = subprocess.run(["bash", "-c", f"set -o pipefail; {head} | {kubectl} {tail_}"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, (
            f"the quickstart's line failed: {line}\nstdout:\n{tail(result.stdout)}\nstderr:\n{tail(result.stderr)}")
        self.ran.append(line)
        return result.stdout


@pytest.fixture
def site_nodes(kubectl: Kubectl) -> Iterator[SiteNodes]:
    """What ``kind create cluster --config docs/quickstart/kind-config.yaml`` gives: one
    node per worker, with its labels, simulated by KWOK. On a cluster of yours
    (``MESHPLANE_E2E_KUBECONFIG``) made from that config, its own nodes serve, and are
    left as they are."""
    workers = kind_workers(yaml.safe_load(KIND_CONFIG.read_text()))
    existing: dict[str, list[str]] = {}
    for node in kubectl.json("get", "nodes", "-l", SITE_LABEL)["items"]:
        if node_ready(node):
            existing.setdefault(node["metadata"]["labels"][SITE_LABEL], []).append(node["metadata"]["name"])
    if os.environ.get("MESHPLANE_E2E_KUBECONFIG") and all(w[SITE_LABEL] in existing for w in workers):
        yield SiteNodes(group="", by_site={w[SITE_LABEL]: existing[w[SITE_LABEL]] for w in workers})
        return
    group = unique_name("quickstart")
    by_site: dict[str, list[str]] = {}
    manifests = []
    for index, labels in enumerate(workers):
        site = labels[SITE_LABEL]
        name = f"quickstart-worker-{index}-{group[-5:]}"
        by_site.setdefault(site, []).append(name)
        manifests.append(node_manifest(name, site, group=group, labels=labels))
    nodes = SiteNodes(group=group, by_site=by_site)
    kubectl("create", "-f", "-", input=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": manifests}))
    try:
        wait_nodes_ready(kubectl, nodes.names)
        yield nodes
    finally:
        delete_nodes(kubectl, nodes)


def placed_sites(kubectl: Kubectl, namespace: str, name: str) -> set[str]:
    status = kubectl.json("get", "mwl", name, "-n", namespace).get("status") or {}
    return {a["site"] for a in status.get("assignments", [])} if status.get("phase") == "Placed" else set()


def where_pods_run(kubectl: Kubectl, namespaces: set[str]) -> tuple[dict[str, set[str]], list[str]]:
    """``workload -> sites of its running pods`` over the pods meshplane materialised,
    and what is wrong: a pod not running (yet), a pod on a node of another site than
    its Deployment's, or a templated workload whose pods are not exactly at its
    placed sites."""
    seen: dict[str, set[str]] = {}
    problems: list[str] = []
    for namespace in sorted(namespaces):
        for pod in list_pods(kubectl, namespace, MANAGED):
            if pod.deleting:
                continue
            key = f"{namespace}/{pod.labels['meshplane.io/workload']}"
            if not pod.running:
                problems.append(f"{namespace}/{pod.name} is {pod.phase or 'new'} (node {pod.node})")
            elif pod.site != pod.labels[SITE_LABEL]:
                problems.append(f"{namespace}/{pod.name} of site {pod.labels[SITE_LABEL]} runs on {pod.node} "
                                f"of site {pod.site}")
            else:
                seen.setdefault(key, set()).add(pod.site)
    for key, sites in seen.items():
        namespace, name = key.split("/")
        if sites != placed_sites(kubectl, namespace, name):
            problems.append(f"{key}: pods at {sorted(sites)}, placed at {sorted(placed_sites(kubectl, namespace, name))}")
    return seen, problems


def pods_settle(kubectl: Kubectl, namespaces: set[str], expected: Any, timeout_s: float = 180.0) -> dict[str, set[str]]:
    """Wait until every materialised pod runs where the plan says and ``expected``
    (a mapping, or a number of workloads) holds; fail with what is still wrong."""
    last: list[Any] = [None, []]

    def settled() -> bool:
        seen, problems = where_pods_run(kubectl, namespaces)
        last[:] = [seen, problems]
        matches = len(seen) == expected if isinstance(expected, int) else seen == expected
        return not problems and matches

    try:
        wait_for(f"the pods of {sorted(namespaces)} to run where the plan says", settled, timeout_s)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: seen {last[0]}, expected {expected}; problems: {last[1]}") from None
    return last[0]


def test_the_kind_quickstart_as_written(
    kubectl: Kubectl, site_nodes: SiteNodes, installed_crds: Any, tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
):
    blocks = doc_blocks(DOC.read_text())
    assert len(blocks) == 9, f"the page's sh blocks changed ({len(blocks)}): update this test's checks"
    for line in (line for block in blocks for line in block):
        assert line.split()[0] in ("kubectl", "helm", "sed", *HOST_ONLY), f"a line this test cannot run or skip: {line}"
    namespace = unique_name("quickstart-system")
    reader = Reader(kubectl, helm_for(kubectl.kubeconfig, tmp_path_factory), namespace)
    cluster, image, install, mesh, drill, curtail, lift, scheduled, cleanup = blocks
    process: OperatorProcess | None = None
    try:
        # 1. the cluster: its nodes carry the sites of the kind config
        assert [line.split()[0] for line in cluster][0] == "kind"
        nodes_table = [reader.run(line) for line in cluster if line.split()[0] not in HOST_ONLY][-1]
        rows = {row.split()[0]: row.split()[-1] for row in nodes_table.splitlines()[1:] if row.strip()}
        for site, names in site_nodes.by_site.items():
            assert all(rows.get(name) == site for name in names), f"{site} not shown:\n{nodes_table}"

        # 2. the image: only the reader's machine builds and loads it
        assert all(line.split()[0] in HOST_ONLY for line in image)

        # 3. the chart, in a namespace enforcing the restricted Pod Security Standard
        for line in install:
            reader.run(line)
        labels = kubectl.json("get", "namespace", namespace)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        operator_pods = list_pods(kubectl, namespace)
        assert len(operator_pods) == 2 and all(p.running for p in operator_pods), operator_pods
        [release] = [line.split()[2] for line in install if line.startswith("helm install")]
        objects = [d for d in yaml.safe_load_all(
            reader.helm("get", "manifest", release, "--namespace", namespace).stdout) if d]
        [deployment] = [o for o in objects if o["kind"] == "Deployment"]
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        kubeconfig = token_kubeconfig(kubectl, account, namespace, tmp_path / "operator.kubeconfig")
        env = deployment_env(deployment, operator_pods[0].name)
        for port in ("MESHPLANE_HEALTH_PORT", "MESHPLANE_HTTP_PORT"):  # a local process takes free ports
            env.pop(port)
        process = OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", extra_env=env)
        wait_for("the operator (with the chart's ServiceAccount) to be ready", process.ready)

        # 4. the example mesh: six placed, two unschedulable, pods on their sites
        outputs = [reader.run(line) for line in mesh]
        listing = outputs[2]  # kubectl get meshplane -A
        def row(key: str) -> str:
            namespace_of, name = key.split("/")
            rows = [r for r in listing.splitlines()
                    if r.split()[:1] == [namespace_of] and r.split()[1].split("/")[-1] == name]
            assert len(rows) == 1, (key, listing)
            return rows[0]

        assert row(UNSCHEDULABLE_EXAMPLE).split()[3] == "Unschedulable"
        assert row(BY_THE_HOUR_EXAMPLE).split()[3] in ("Placed", "Unschedulable", "Preempted")
        example_namespaces = {"research", "serving", "gov-eu", "batch"}
        pods_settle(kubectl, example_namespaces, 5)  # the five templated examples are placed
        pods_table = outputs[3]
        assert "SITE" in pods_table.splitlines()[0]

        # 5. the drill: on Hellisheiði's flexible power ...
        for line in drill:
            reader.run(line)
        pods_settle(kubectl, {"drill"}, {"drill/eval-sweep": {"is-hellisheidi-1"}})
        # ... curtailed: it moves to Akureyri, its pods with it
        curtailed = [reader.run(line) for line in curtail]
        pods_settle(kubectl, {"drill"}, {"drill/eval-sweep": {"is-akureyri-1"}})
        assert len([p for p in list_pods(kubectl, "drill", MANAGED) if p.running]) == 2
        assert curtailed[5].strip() == "GridCurtailment"
        assert re.search(r"\bMoved\b.*is-hellisheidi-1.*is-akureyri-1", curtailed[6]), curtailed[6]
        # ... lifted: back to the cheaper power
        for line in lift:
            reader.run(line)
        pods_settle(kubectl, {"drill"}, {"drill/eval-sweep": {"is-hellisheidi-1"}})

        # 6. a grid event announced 40 s ahead with a 20 s lead: the job leaves while
        # Hellisheidi still has its power (Preparing), and comes back after the end
        outputs, moved_at = [], 0.0
        for line in scheduled:
            outputs.append(reader.run(line))
            if "=is-akureyri-1" in line:
                moved_at = time.time()
        assert "hellisheidi-evening-peak" in outputs[1] and "is-hellisheidi-1" in outputs[1], outputs[1]
        assert "drill/eval-sweep" in outputs[5], outputs[5]
        start = kubectl.json("get", "gridevent", "hellisheidi-evening-peak")["status"]["start"]
        assert moved_at < dt.datetime.fromisoformat(start).timestamp(), "the job left only once the power was gone"
        for reason in ("GridEventScheduled", "PreparingForCurtailment", "CurtailmentStarted", "Completed"):
            assert reason in outputs[8], outputs[8]
        pods_settle(kubectl, {"drill"}, {"drill/eval-sweep": {"is-hellisheidi-1"}})

        # 7. clean up: helm uninstall keeps the CRDs (the cluster is the reader's to delete).
        # Uninstalling deletes the operator's pods, and its RBAC with them: stop ours first.
        process.stop()
        for line in cleanup:
            if line.split()[0] not in HOST_ONLY:
                reader.run(line)
        assert wait_for("the chart's Deployment to go",
                        lambda: not kubectl.json("get", "deployments", "-n", namespace)["items"], 60)
        assert kubectl.json("get", "crd", "meshworkloads.meshplane.io")["metadata"]["name"]
    finally:
        if process is not None:
            process.stop()
        log = tmp_path / "operator.log"
        if log.exists():
            text = log.read_text(errors="replace")
            assert "Forbidden" not in text, "the operator was refused something:\n" + tail(text)
        kubectl("delete", "-f", str(REPO_ROOT / "docs" / "quickstart" / "drill.yaml"),
                "--ignore-not-found", "--wait=false", check=False)
        kubectl("delete", "gridevent", "hellisheidi-evening-peak", "--ignore-not-found", "--wait=false", check=False)
        kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false", check=False)
    assert reader.ran  # every runnable line of the page ran (a failure above names its line)
