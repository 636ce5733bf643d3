"""docs/quickstart-multicluster.md, run as written against three control planes.

The page's ``sh`` blocks are read from the file and run, in order, with the real
programs (kubectl, helm, bash, sed), against the suite's clusters: the cluster in a box
(``control_plane``) is the hub and the two member clusters (``member_clusters``) are
``grenoble`` (member-a) and ``memphis`` (member-b). The page names every cluster by its
kind context (``kubectl --context kind-<name>``, ``helm --kube-context kind-<name>``):
here those contexts are real, in the ``~/.kube/config`` of a HOME of the test's own
(where kind would have written them), and point to the box's clusters with their admin
credentials; the current context is one that does not exist, so a line that names no
cluster fails. After each block the test checks what the page says the reader will see.

What cannot run here, by an explicit rule each (:data:`HOST_RULES`):

- ``kind create cluster --name N --config F``: the test makes one KWOK node per worker
  of F, with its labels, in the box cluster of N (so the configs and the nodes cannot
  drift);
- ``docker build`` / ``kind load docker-image``: the chart's operator pods are
  simulated by KWOK (scheduled, reported Running, running nothing), so the operator
  runs as a local process with the token of the ServiceAccount the chart created and
  the env of the chart's Deployment, the page's values file included (its drill values
  probe every second and count a member lost after 6 s);
- ``docker pause N-control-plane`` / ``docker unpause N-control-plane``: the member's
  control plane is frozen (SIGSTOP of its processes, :meth:`MemberCluster.frozen`) and
  resumed (SIGCONT, then it is waited healthy);
- ``kind delete cluster``: the test's own clean-up.

One stand-in: ``kind get kubeconfig --internal --name N``, which a line runs inside
``$(...)`` for the address the hub reaches a member at, is answered by a ``kind`` on
the PATH that knows only this command and prints the member's admin kubeconfig (the
operator runs on this machine, so that address is the member's ``https://127.0.0.1``
port). Any other ``kind`` command fails it.

The reader's namespace ``meshplane-system`` becomes a unique one in every cluster, so
the test never touches an install of either chart that already exists. The page's
other names are fixed (the MemberClusters, the examples' factories and namespaces):
the test deletes what it made and waits until it is gone, makes the two factories
local again (``kubectl apply -f examples/10-factories.yaml``) and leaves the examples
as other tests expect them.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.core.materialise import SITE_LABEL
from tests.e2e.cluster_support import (
    NODE_GROUP_LABEL,
    SiteNodes,
    delete_nodes,
    list_pods,
    node_manifest,
    node_ready,
    wait_nodes_ready,
)
from tests.e2e.e2e_support import (
    EXAMPLES_DIR,
    REPO_ROOT,
    Kubectl,
    load_documents,
    tail,
    unique_name,
    yaml_files,
)
from tests.e2e.member_support import (
    ORIGIN_LABEL,
    MemberCluster,
    origin_deployments,
    run_helm,
    wait_origin_deployments,
)
from tests.e2e.operator_support import (
    OperatorProcess,
    deployment_env,
    helm_binary,
    token_kubeconfig,
    wait_for,
    wait_for_the_examples_alone,
)

pytestmark = pytest.mark.e2e

DOC = REPO_ROOT / "docs" / "quickstart-multicluster.md"
QUICKSTART_DIR = REPO_ROOT / "docs" / "quickstart"
MANIFESTS_DIR = QUICKSTART_DIR / "multicluster"
EXAMPLE_FACTORIES = EXAMPLES_DIR / "10-factories.yaml"
READER_NAMESPACE = "meshplane-system"
MANAGED = "app.kubernetes.io/managed-by=meshplane"
# The page's kind clusters and the suite's clusters that stand for them.
HUB = "hub"
MEMBERS = {"grenoble": "member-a", "memphis": "member-b"}
EXAMPLE_NAMESPACES = ("research", "serving", "gov-eu", "batch")

# What only the reader's machine can run, and what the test does instead (see the
# module docstring). A line is matched by its first words.
HOST_RULES = {
    ("kind", "create", "cluster"): "KWOK nodes of the config's workers in the box cluster of that name",
    ("docker", "build"): "none: the operator runs from the built wheel",
    ("kind", "load", "docker-image"): "none: the operator runs from the built wheel",
    ("docker", "pause"): "MemberCluster.frozen() entered: SIGSTOP of the member's control plane",
    ("docker", "unpause"): "MemberCluster.frozen() left: SIGCONT, then the member is waited healthy",
    ("kind", "delete", "cluster"): "none: the test cleans up what it made",
}
STAND_IN = re.compile(r"\$\(kind get kubeconfig --internal --name (\S+) \|")
# What a runnable line may start with: the programs the page asks for, and the
# ``NAME=$(...)`` of the kubeconfig steps.
RUNNABLE = re.compile(r"^(kubectl|helm|rm) |^[A-Z]+=\$\((kubectl|kind get kubeconfig --internal) ")

# What the page says the plan is (the examples' plan, every hour of the day: see
# README.md) and what each cluster then runs.
READY = {  # templated workload -> READY once delivered (one pod stands for 1,024 devices)
    "gov-eu/eu-citizen-assistant": "2/2", "serving/factory-floor-vision": "1/1",
    "serving/chat-us-west": "1/1", "research/korean-llm-finetune": "4/4", "serving/hindi-assistant": "2/2",
}
IN_MEMBERS = {
    "grenoble": {("gov-eu", "eu-citizen-assistant-fr-grenoble-1"): 2, ("serving", "factory-floor-vision-fr-grenoble-1"): 1},
    "memphis": {("serving", "chat-us-west-us-memphis-1"): 1},
}
IN_HUB = {("research", "korean-llm-finetune-kr-sejong-1"): 4, ("serving", "hindi-assistant-in-mumbai-1"): 2}
HUB_SITES = {"kr-sejong-1": 4, "in-mumbai-1": 2}  # running pods
DRILL_MEMBER = "grenoble"
MOVED = ("serving", "factory-floor-vision", "de-frankfurt-1")  # Grenoble lost: where it goes
PREEMPTED = ("gov-eu", "eu-citizen-assistant")  # Grenoble lost: nowhere else to go
ROBOTS = "warehouse-robots-de"  # Grenoble lost, on Berlin evenings: a little of MOVED goes there too
LOST_AFTER_S = 6.0  # the drill value of docs/quickstart/multicluster-hub-values.yaml


# --------------------------------------------------------------------------- the page


def doc_blocks(text: str) -> list[list[str]]:
    """The command lines of every ```sh block, in order."""
    blocks = re.findall(r"^```sh\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return [[line for line in block.splitlines() if line.strip()] for block in blocks]


def host_rule(line: str) -> tuple[str, ...] | None:
    words = tuple(line.split())
    return next((rule for rule in HOST_RULES if words[:len(rule)] == rule), None)


def kind_config(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def worker_labels(config: dict[str, Any]) -> list[dict[str, str]]:
    return [node.get("labels", {}) for node in config["nodes"] if node["role"] == "worker"]


def member_sites() -> dict[str, set[str]]:
    """member cluster -> the sites whose factory names it, in the page's manifests."""
    out: dict[str, set[str]] = {}
    for path in yaml_files(MANIFESTS_DIR):
        for doc in load_documents(path):
            if doc["kind"] == "AIFactory":
                out.setdefault(doc["spec"]["memberCluster"], set()).add(doc["metadata"]["name"])
    return out


# --------------------------------------------------------------------------- the reader's machine


def kind_kubeconfig(clusters: dict[str, str]) -> dict[str, Any]:
    """One kubeconfig with the contexts kind would have made (``kind-<name>``: cluster,
    user and context of that name) for each ``name -> admin kubeconfig path``."""
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": [],
                              # no default: a line of the page that names no cluster fails
                              "current-context": "the-page-names-every-cluster"}
    for name, path in clusters.items():
        admin = yaml.safe_load(Path(path).read_text())
        context = f"kind-{name}"
        config["clusters"].append({"name": context, "cluster": admin["clusters"][0]["cluster"]})
        config["users"].append({"name": context, "user": admin["users"][0]["user"]})
        config["contexts"].append({"name": context, "context": {"cluster": context, "user": context}})
    return config


STAND_IN_KIND = """#!/bin/sh
# A stand-in for kind (tests/e2e/test_quickstart_multicluster.py): only
# `kind get kubeconfig --internal --name NAME`, from the files next to it.
if [ "$#" -eq 5 ] && [ "$1 $2 $3 $4" = "get kubeconfig --internal --name" ] && [ -f "$0.$5" ]; then
  exec cat "$0.$5"
fi
echo "stand-in kind: not here: kind $*" >&2
exit 2
"""


class Reader:
    """The reader's shell: bash in a working directory of its own (the page's relative
    paths, ``docs/``, ``examples/`` and ``helm/``, lead to this repository), HOME with
    the kind contexts, the real kubectl and helm and the stand-in kind first on PATH."""

    def __init__(self, root: Path, namespace: str, kubectl_binary: str, clusters: dict[str, str],
                 internal: dict[str, str]) -> None:
        self.namespace = namespace
        self.cwd = root / "repo"
        self.cwd.mkdir()
        for entry in ("docs", "examples", "helm"):
            (self.cwd / entry).symlink_to(REPO_ROOT / entry)
        home, bin_dir = root / "home", root / "bin"
        (home / ".kube").mkdir(parents=True)
        self.kubeconfig = home / ".kube" / "config"
        self.kubeconfig.write_text(yaml.safe_dump(kind_kubeconfig(clusters)))
        self.kubeconfig.chmod(0o600)
        bin_dir.mkdir()
        (bin_dir / "kubectl").symlink_to(kubectl_binary)
        (bin_dir / "helm").symlink_to(helm_binary())
        stand_in = bin_dir / "kind"
        stand_in.write_text(STAND_IN_KIND)
        stand_in.chmod(0o755)
        for name, path in internal.items():
            Path(f"{stand_in}.{name}").write_text(Path(path).read_text())
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "HELM_KUBECONTEXT")},
            "HOME": str(home),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            **{v: str(root / "helm-home" / v.lower()) for v in ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME")},
        }
        self.ran: list[str] = []

    def as_run(self, line: str) -> str:
        return re.sub(rf"(?<![\w.-]){READER_NAMESPACE}(?![\w.-])", self.namespace, line)

    def run(self, lines: list[str]) -> list[str]:
        """Run ``lines`` in one bash (``set -euo pipefail``), so that a variable set by
        one is seen by the next; return each line's standard output."""
        marker = f"@@line-{unique_name('m')}"
        script = ["set -euo pipefail"]
        for index, line in enumerate(lines):
            script += [f"printf '\\n{marker} {index}\\n'", self.as_run(line)]
        result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=self.cwd, env=self.env, capture_output=True,
                                text=True, timeout=900, check=False, stdin=subprocess.DEVNULL)
        parts = re.split(rf"\n{marker} (\d+)\n", result.stdout)
        outputs = {int(parts[i]): parts[i + 1] for i in range(1, len(parts) - 1, 2)}
        if result.returncode != 0:
            failed = max(outputs, default=0)
            raise AssertionError(
                f"the quickstart's line failed: {lines[failed]}\n(run as: {self.as_run(lines[failed])})\n"
                f"stdout:\n{tail(outputs.get(failed, ''))}\nstderr:\n{tail(result.stderr)}")
        self.ran += lines
        return [outputs[i] for i in range(len(lines))]


# --------------------------------------------------------------------------- checks


def table(text: str) -> list[dict[str, str]]:
    """The rows of one ``kubectl get`` table, by column header: each cell read from where
    its header starts (kubectl aligns them so), so that an empty cell stays empty."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return []
    starts = [m.start() for m in re.finditer(r"(?:(?<=\s\s)|^)\S", lines[0])]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    header = [lines[0][a:b].strip() for a, b in bounds]
    return [{h: line[a:b].strip() for h, (a, b) in zip(header, bounds, strict=True)} for line in lines[1:]]


def rows_by_workload(text: str) -> dict[str, dict[str, str]]:
    return {f"{r['NAMESPACE']}/{r['NAME']}": r for r in table(text)}


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def pods_on_their_sites(kubectl: Kubectl, namespaces: set[str], nodes: SiteNodes) -> dict[str, int]:
    """``site -> Running pods`` of meshplane's pods in ``namespaces``; fails when one
    runs on a node of another site or on a node that is not among ``nodes``. A pod
    bound to a node that no longer exists (another test's simulated node, deleted at
    its end; the box runs no pod garbage collector) runs nowhere and is not counted."""
    existing = {n["metadata"]["name"] for n in kubectl.json("get", "nodes")["items"]}
    running: dict[str, int] = {}
    for namespace in sorted(namespaces):
        for pod in list_pods(kubectl, namespace, MANAGED):
            if not pod.running or pod.node not in existing:
                continue
            assert pod.node in nodes.names and pod.site == pod.labels[SITE_LABEL], pod
            running[pod.site or ""] = running.get(pod.site or "", 0) + 1
    return running


def make_nodes(kubectl: Kubectl, config: Path, prefix: str, reuse: bool = False) -> SiteNodes:
    """What ``kind create cluster --config <config>`` gives: one node per worker, with
    its labels, simulated by KWOK. With ``reuse`` (a hub of yours, made from that
    config: ``MESHPLANE_E2E_KUBECONFIG``), its own Ready nodes of those sites serve when
    it has them all, and are left as they are (group "")."""
    workers = worker_labels(kind_config(config))
    if reuse:
        existing: dict[str, list[str]] = {}
        for node in kubectl.json("get", "nodes", "-l", SITE_LABEL)["items"]:
            if node_ready(node):
                existing.setdefault(node["metadata"]["labels"][SITE_LABEL], []).append(node["metadata"]["name"])
        if all(w[SITE_LABEL] in existing for w in workers):
            return SiteNodes(group="", by_site={w[SITE_LABEL]: existing[w[SITE_LABEL]] for w in workers})
    group = unique_name(prefix)
    by_site: dict[str, list[str]] = {}
    manifests = []
    for index, labels in enumerate(workers):
        name = f"{prefix}-worker-{index}-{group[-6:]}"
        by_site.setdefault(labels[SITE_LABEL], []).append(name)
        manifests.append(node_manifest(name, labels[SITE_LABEL], group=group, labels=labels))
    nodes = SiteNodes(group=group, by_site=by_site)
    kubectl("create", "-f", "-", input=yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": manifests}))
    try:
        wait_nodes_ready(kubectl, nodes.names)
    except BaseException:
        delete_nodes(kubectl, nodes)
        raise
    return nodes


# --------------------------------------------------------------------------- the test


@pytest.fixture
def examples_alone(kubectl: Kubectl, installed_crds: Any) -> list[dict[str, Any]]:
    """The examples' manifests, once the hub holds no meshplane object but theirs (what
    other tests made is gone), so the page's plan is the examples' plan."""
    documents = [doc for path in yaml_files(EXAMPLES_DIR) for doc in load_documents(path)]
    wait_for_the_examples_alone(kubectl, documents)
    return documents


def test_the_page_s_files_agree_with_the_examples():
    """The factories of docs/quickstart/multicluster/ are the examples' but for
    spec.memberCluster; each member's kind config has a worker for each site whose
    factory names it, and the hub's for the sites it runs (the examples' placements)."""
    examples = {d["metadata"]["name"]: d for d in load_documents(EXAMPLE_FACTORIES)}
    for path in yaml_files(MANIFESTS_DIR):
        for doc in load_documents(path):
            if doc["kind"] == "AIFactory":
                local = {**doc, "spec": {k: v for k, v in doc["spec"].items() if k != "memberCluster"}}
                assert local == examples[doc["metadata"]["name"]], f"{path.name}: {doc['metadata']['name']} drifted"
    for member, sites in member_sites().items():
        config = kind_config(QUICKSTART_DIR / f"kind-multicluster-{member}.yaml")
        assert {w[SITE_LABEL] for w in worker_labels(config)} == sites, member
    hub_sites = {w[SITE_LABEL] for w in worker_labels(kind_config(QUICKSTART_DIR / "kind-multicluster-hub.yaml"))}
    assert hub_sites == {*HUB_SITES, MOVED[2], ROBOTS}
    assert set(member_sites()) == set(MEMBERS)


def test_the_multicluster_quickstart_as_written(
    kubectl: Kubectl, kubectl_binary: tuple[str, str], member_clusters: dict[str, MemberCluster],
    examples_alone: list[dict[str, Any]], tmp_path: Path,
):
    blocks = doc_blocks(DOC.read_text())
    assert len(blocks) == 11, f"the page's sh blocks changed ({len(blocks)}): update this test's checks"
    for line in (line for block in blocks for line in block):
        known = host_rule(line) if line.split()[0] in ("kind", "docker") else RUNNABLE.match(line)
        assert known, f"a line this test cannot run or skip: {line}"
        assert set(STAND_IN.findall(line)) <= set(MEMBERS), f"the stand-in kind knows only the members: {line}"
    clusters, image, install, member_charts, mint_grenoble, mint_memphis, mesh, where, pause, unpause, cleanup = blocks
    # the Memphis steps are the Grenoble steps for Memphis
    assert mint_memphis == [line.replace("grenoble", "memphis") for line in mint_grenoble]

    members = {name: member_clusters[box] for name, box in MEMBERS.items()}
    box_kubectl = {HUB: kubectl, **{name: m.kubectl for name, m in members.items()}}
    namespace = unique_name("quickstart-mc-system")
    reader = Reader(tmp_path, namespace, kubectl_binary[0],
                    {HUB: kubectl.kubeconfig, **{name: m.kubeconfig for name, m in members.items()}},
                    {name: m.kubeconfig for name, m in members.items()})
    nodes: dict[str, SiteNodes] = {}
    hub_managed_before = {(d["metadata"]["namespace"], d["metadata"]["name"]) for ns in EXAMPLE_NAMESPACES
                          for d in kubectl.json("get", "deployments", "-n", ns, "-l", MANAGED)["items"]}
    process: OperatorProcess | None = None
    hub_name = "meshplane"  # the chart's delivery.hubName, read from its env below
    outages = contextlib.ExitStack()
    frozen_at: dict[str, float] = {}

    def run_block(block: list[str]) -> list[str | None]:
        """Run the block's lines; a host-only line does its rule's part here instead."""
        outputs: list[str | None] = []
        pending: list[str] = []

        def flush() -> None:
            if pending:
                outputs.extend(reader.run(list(pending)))
                pending.clear()

        for line in block:
            rule = host_rule(line)
            if rule is None:
                pending.append(line)
                continue
            flush()
            words = shlex.split(line)
            if rule == ("kind", "create", "cluster"):
                name = words[words.index("--name") + 1]
                config = REPO_ROOT / words[words.index("--config") + 1]
                nodes[name] = make_nodes(box_kubectl[name], config, f"qsmc-{name}",
                                         reuse=name == HUB and bool(os.environ.get("MESHPLANE_E2E_KUBECONFIG")))
            elif rule == ("docker", "pause"):
                [container] = words[2:]
                name = container.removesuffix("-control-plane")
                assert name in members, f"only a member's control plane is paused here: {line}"
                outages.enter_context(members[name].frozen())
                frozen_at[name] = time.monotonic()
            elif rule == ("docker", "unpause"):
                [container] = words[2:]
                assert container.removesuffix("-control-plane") in frozen_at, line
                outages.close()  # resumed, and waited healthy
            outputs.append(None)
        flush()
        return outputs

    try:
        # 1. three clusters whose nodes are sites
        out = run_block(clusters)
        assert sorted(nodes) == sorted([HUB, *MEMBERS])
        for name, text in zip((HUB, "grenoble", "memphis"), [o for o in out if o is not None], strict=True):
            rows = {r["NAME"]: r.get("SITE") for r in table(text)}
            for site, names in nodes[name].by_site.items():
                assert all(rows.get(n) == site for n in names), f"{name}: {site} not shown:\n{text}"

        # 2. the image: only the reader's machine builds and loads it
        assert all(host_rule(line) for line in image)

        # 3. the chart in the hub, with the page's values; the operator as a process
        # with the chart's ServiceAccount and env
        run_block(install)
        labels = kubectl.json("get", "namespace", namespace)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        operator_pods = list_pods(kubectl, namespace)
        assert len(operator_pods) == 2 and all(p.running for p in operator_pods), operator_pods
        [release] = [line.split()[4] for line in install if line.startswith("helm ")]
        manifest = subprocess.run([helm_binary(), "--kubeconfig", kubectl.kubeconfig, "get", "manifest", release,
                                   "--namespace", namespace], env=reader.env, capture_output=True, text=True,
                                  check=True, timeout=120).stdout
        objects = [d for d in yaml.safe_load_all(manifest) if d]
        [deployment] = [o for o in objects if o["kind"] == "Deployment"]
        secret_rules = [r for o in objects if o["kind"] == "Role" for r in o["rules"] if "secrets" in r["resources"]]
        assert {n for r in secret_rules for n in r.get("resourceNames", [])} == {f"{m}-kubeconfig" for m in MEMBERS}
        env = deployment_env(deployment, operator_pods[0].name)
        assert (env["MESHPLANE_PROBE_EVERY_S"], env["MESHPLANE_LOST_AFTER_S"]) == ("1", "6")  # the drill values
        for port in ("MESHPLANE_HEALTH_PORT", "MESHPLANE_HTTP_PORT"):  # a local process takes free ports
            env.pop(port)
        hub_name = env["MESHPLANE_HUB_NAME"]
        account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        operator_kubeconfig = token_kubeconfig(kubectl, account, namespace, tmp_path / "operator.kubeconfig")
        process = OperatorProcess(operator_kubeconfig, namespace, tmp_path / "operator.log", extra_env=env)
        wait_for("the operator (with the chart's ServiceAccount) to be ready", process.ready)

        # 4. the member chart in each member
        run_block(member_charts)
        for name, member in members.items():
            assert member.kubectl.json("get", "serviceaccount", "meshplane-delivery", "-n", namespace), name

        # 5. the kubeconfigs: in the hub's Secrets, for the member's delivery identity,
        # at the address the hub reaches; none left in the working directory
        run_block(mint_grenoble)
        run_block(mint_memphis)
        assert not list(reader.cwd.glob("*.kubeconfig"))
        for name, member in members.items():
            secret = kubectl.json("get", "secret", f"{name}-kubeconfig", "-n", namespace)
            config = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
            [cluster], [user] = config["clusters"], config["users"]
            assert cluster["cluster"] == {"server": member.server, "certificate-authority-data": member.ca_data()}
            assert set(user["user"]) == {"token"} and config["current-context"] == name

        # 6. the mesh: both members reachable, every templated workload ready in the
        # cluster of its site
        out = run_block(mesh)
        reachable = {r["NAME"]: r for r in table(out[3] or "")}
        for name, sites in member_sites().items():
            assert (reachable[name]["REACHABLE"], reachable[name]["REASON"]) == ("True", "Reachable"), out[3]
            assert all(f'"{site}"' in reachable[name]["SITES"] for site in sites), out[3]
        workloads = rows_by_workload(out[-1] or "")
        assert {key: workloads[key]["READY"] for key in READY} == READY, out[-1]
        assert workloads["serving/japan-medical-llm"]["PHASE"] == "Unschedulable"
        assert (workloads["research/frontier-pretrain"]["PHASE"], workloads["research/frontier-pretrain"]["SITES"]) == (
            "Placed", "us-memphis-1")
        for name, member in members.items():
            found = origin_deployments(member, origin=hub_name, include_deleting=False)
            assert found == IN_MEMBERS[name], (name, found)
            assert pods_on_their_sites(member.kubectl, {ns for ns, _ in found}, nodes[name]) == {
                site: sum(n for (_, d), n in found.items() if d.endswith(site)) for site in nodes[name].by_site
                if any(d.endswith(site) for _, d in found)}
        # the moment between the two applies left nothing of the members' sites in the hub
        wait_for("the hub to hold only its own sites' Deployments", lambda: hub_deployments(kubectl) == IN_HUB)
        # pods an earlier test left on its deleted nodes are replaced once the pod
        # garbage collector deletes them (40 s after their node went)
        wait_for("the hub's pods on this page's nodes", lambda: pods_on_their_sites(
            kubectl, {ns for ns, _ in IN_HUB}, nodes[HUB]) == HUB_SITES, timeout_s=180)

        # where the pods run, as the page lists them
        out = run_block(where)
        for name, text in (("grenoble", out[0]), ("memphis", out[1])):
            for (_, deployment_name), _count in IN_MEMBERS[name].items():
                assert f"deployment.apps/{deployment_name}" in (text or ""), text
        assert all(site in (out[2] or "") for site in ("kr-sejong-1", "in-mumbai-1"))

        # 7. the failover drill: Grenoble frozen, lost after lostAfterSeconds, its work
        # re-placed where it may go
        drill = members[DRILL_MEMBER]
        uids_before = deployment_uids(drill, hub_name)
        assert uids_before.keys() == IN_MEMBERS[DRILL_MEMBER].keys()
        out = run_block(pause)
        lost_after = time.monotonic() - frozen_at[DRILL_MEMBER]
        assert drill.state == "frozen"
        assert lost_after >= LOST_AFTER_S - 1, f"lost after {lost_after:.1f} s"
        cluster = kubectl.json("get", "membercluster", DRILL_MEMBER)
        assert condition(cluster, "Reachable")["reason"] == "Lost" and cluster["status"]["lastSeenTime"]
        namespace_of, name, site = MOVED
        preempted = kubectl.json("get", "mwl", PREEMPTED[1], "-n", PREEMPTED[0])["status"]
        assert f"member cluster {DRILL_MEMBER} is lost" in preempted["message"], preempted
        workloads = rows_by_workload(out[-1] or "")
        assert workloads["gov-eu/eu-citizen-assistant"]["PHASE"] == "Preempted"
        assert site in workloads["serving/factory-floor-vision"]["SITES"].split(","), out[-1]
        moved = wait_for(f"{name} ready where it moved", lambda: (
            (s := kubectl.json("get", "mwl", name, "-n", namespace_of)["status"]).get("ready")
            and s["ready"].split("/")[0] == s["ready"].split("/")[1] and s))
        # at de-frankfurt-1, and on Berlin evenings a little on the robots (a node of the hub)
        assert site in moved["sites"].split(",") and set(moved["sites"].split(",")) <= {site, ROBOTS}
        assert pods_on_their_sites(kubectl, {namespace_of}, nodes[HUB]).get(site) == 1

        # ... and back: the plan puts the work there again, so the copies Grenoble kept
        # are the plan's own (kept, same uids: nothing restarts), its copy in the hub
        # deleted, every workload ready
        out = run_block(unpause)
        assert drill.state == "running"
        found = wait_origin_deployments(drill, IN_MEMBERS[DRILL_MEMBER], origin=hub_name, include_deleting=False,
                                        what="Grenoble's work back in Grenoble")
        assert not deployment_uids(drill, hub_name).keys() - found.keys()
        assert deployment_uids(drill, hub_name) == uids_before, (
            "the copies the new plan wants again were deleted and re-created", uids_before)
        assert all(f"{name}" in (out[5] or "") for _, name in IN_MEMBERS[DRILL_MEMBER]), out[5]
        wait_for("the hub's copies of Grenoble's work to go", lambda: hub_deployments(kubectl) == IN_HUB)
        wait_for("every templated workload ready again", lambda: ready_column(kubectl) == READY)
        assert pods_on_their_sites(drill.kubectl, {ns for ns, _ in found}, nodes[DRILL_MEMBER])

        # 8. clean up: only the reader deletes kind clusters
        assert all(host_rule(line) == ("kind", "delete", "cluster") for line in cleanup)
    finally:
        try:
            outages.close()  # a member still frozen is resumed, and waited healthy
        finally:
            if process is not None:
                process.stop()
            try:
                clean_up(kubectl, members, namespace, nodes, hub_managed_before, reader, hub_name)
            finally:
                log = tmp_path / "operator.log"
                text = log.read_text(errors="replace") if log.exists() else ""
                assert "Forbidden" not in text, "the operator was refused something:\n" + tail(text)
    assert reader.ran  # every runnable line of the page ran (a failure above names its line)


def deployment_uids(member: MemberCluster, origin: str) -> dict[tuple[str, str], str]:
    """``(namespace, name) -> uid`` of the Deployments ``origin`` holds in ``member``."""
    items = member.kubectl.json("get", "deployments.apps", "-A", "-l", f"{ORIGIN_LABEL}={origin}")["items"]
    return {(i["metadata"]["namespace"], i["metadata"]["name"]): i["metadata"]["uid"] for i in items}


def ready_column(kubectl: Kubectl) -> dict[str, str]:
    """``namespace/name -> READY`` of the templated workloads, as ``kubectl get mwl -A`` shows it."""
    items = kubectl.json("get", "mwl", "-A")["items"]
    return {f"{i['metadata']['namespace']}/{i['metadata']['name']}": (i.get("status") or {}).get("ready", "")
            for i in items if f"{i['metadata']['namespace']}/{i['metadata']['name']}" in READY}


def hub_deployments(kubectl: Kubectl) -> dict[tuple[str, str], int]:
    """meshplane's Deployments in the hub's example namespaces (not being deleted)."""
    out = {}
    for namespace in EXAMPLE_NAMESPACES:
        for item in kubectl.json("get", "deployments", "-n", namespace, "-l", MANAGED)["items"]:
            if not item["metadata"].get("deletionTimestamp"):
                out[(namespace, item["metadata"]["name"])] = int(item["spec"].get("replicas", 1))
    return out


def clean_up(kubectl: Kubectl, members: dict[str, MemberCluster], namespace: str, nodes: dict[str, SiteNodes],
             hub_managed_before: set[tuple[str, str]], reader: Reader, hub_name: str) -> None:
    """Everything the page made, deleted and waited for; the examples as they were."""
    # the hub: the MemberClusters, the factories local again, the release and its namespace
    kubectl("delete", "memberclusters", *MEMBERS, "--ignore-not-found", "--wait=true", "--timeout=60s", check=False)
    names = [doc["metadata"]["name"] for doc in load_documents(EXAMPLE_FACTORIES)]
    def member_factories() -> list[str]:
        live = kubectl.json("get", "aifactories", *names, "--ignore-not-found")
        return [i["metadata"]["name"] for i in live.get("items", []) if "memberCluster" in i["spec"]]
    if member_factories():
        kubectl("apply", "-f", str(EXAMPLE_FACTORIES))
    assert not member_factories(), "the examples' factories still name member clusters"
    for ns, name in sorted(hub_deployments(kubectl).keys() - hub_managed_before):
        kubectl("delete", "deployment", name, "-n", ns, "--ignore-not-found", "--wait=false", check=False)
    subprocess.run([helm_binary(), "--kubeconfig", kubectl.kubeconfig, "uninstall", "meshplane", "--namespace",
                    namespace, "--wait"], env=reader.env, capture_output=True, text=True, timeout=300, check=False)
    kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)
    # the members: the member chart, the namespaces delivery made there, their nodes
    for name, member in members.items():
        member.ensure_healthy()
        run_helm(member, "uninstall", "meshplane-member", "--namespace", namespace, "--wait", check=False)
        made = member.kubectl("get", "namespaces", "-l", f"{ORIGIN_LABEL}={hub_name}", "-o", "name").stdout.split()
        member.delete_namespaces(namespace, *(n.split("/", 1)[1] for n in made))
        if name in nodes:
            member.delete_nodes(nodes[name])
    if HUB in nodes and nodes[HUB].group:
        delete_nodes(kubectl, nodes[HUB])

    def left() -> list[str]:
        found = [*kubectl("get", "memberclusters", *MEMBERS, "--ignore-not-found", "-o", "name").stdout.split(),
                 *kubectl("get", "namespace", namespace, "--ignore-not-found", "-o", "name").stdout.split()]
        for name, made in nodes.items():
            if made.group:
                where = kubectl if name == HUB else members[name].kubectl
                found += where("get", "nodes", "-l", f"{NODE_GROUP_LABEL}={made.group}", "-o", "name").stdout.split()
        return found

    wait_for("the page's objects to be gone", lambda: not left(), 120)
