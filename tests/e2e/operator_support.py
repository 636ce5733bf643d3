"""Helpers for the operator's end-to-end tests: a real ``meshplane-operator`` process
(:class:`OperatorProcess`), the RBAC rules it runs with (the Helm chart's own ClusterRole
and Role, rendered by the real helm: :func:`chart_rules`), fixtures that start one, and
waiting on the API server. Used by tests/e2e/test_operator*.py and test_chart*.py."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.e2e_support import REPO_ROOT, Kubectl, tail, terminate, unique_name

OPERATOR = Path(sys.executable).with_name("meshplane-operator")
GROUP = "meshplane.io"
CHART = REPO_ROOT / "helm" / "meshplane"
TOOLS_BUILD = REPO_ROOT / "tests" / "tools" / "build.sh"
# The Lease name the operator uses when MESHPLANE_LEASE_NAME is unset, as OperatorProcess runs it.
DEFAULT_LEASE_NAME = "meshplane-operator"
EXAMPLE_WORKLOADS = {
    "research/frontier-pretrain", "gov-eu/eu-citizen-assistant", "serving/chat-us-west",
    "batch/dashcam-clip-indexing", "research/korean-llm-finetune", "serving/hindi-assistant",
    "serving/factory-floor-vision", "serving/japan-medical-llm",
}
TIMEOUT_S = 180.0


@cache
def helm_binary() -> str:
    """The real helm: ``MESHPLANE_HELM`` if set (``make`` sets it to the helm on the PATH
    when the tests run against a cluster of yours), else the one of tests/tools (built
    from Go modules by its build.sh, cached there)."""
    if os.environ.get("MESHPLANE_HELM"):
        return os.environ["MESHPLANE_HELM"]
    build = subprocess.run(["bash", str(TOOLS_BUILD)], capture_output=True, text=True, check=False)
    if build.returncode != 0:
        pytest.fail(f"building helm from Go modules failed:\n{tail(build.stderr)}", pytrace=False)
    return str(Path(build.stdout.strip().splitlines()[-1]) / "helm")


def helm_for(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """The real helm, run against the suite's cluster with its own config/cache dirs
    (what the ``helm`` fixtures of test_chart*.py return)."""
    home = tmp_path_factory.mktemp("helm-home")
    for variable in ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"):
        os.environ[variable] = str(home / variable.lower())
    return Kubectl(helm_binary(), kubeconfig)


def render_chart(*args: str, namespace: str = "meshplane-system", release: str = "meshplane") -> list[dict[str, Any]]:
    """The chart's objects as ``helm template`` renders them (no cluster needed)."""
    result = subprocess.run(
        [helm_binary(), "template", release, str(CHART), "--namespace", namespace, *args],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"helm template {' '.join(args)} failed:\n{tail(result.stderr)}", pytrace=False)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def rules_of(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The rules of the operator's one ClusterRole (kind="ClusterRole") or Role in ``objects``."""
    # the chart's Role in the release's namespace is the operator's (the -ocm Roles are in
    # ManagedClusters' namespaces); of its ClusterRoles, -view and -edit are for users
    name_ok = {"Role": lambda name: not name.endswith("-ocm"), "ClusterRole": lambda name: name.endswith("-operator")}
    [role] = [o for o in objects if o["kind"] == kind and name_ok[kind](o["metadata"]["name"])]
    return list(role["rules"])


@cache
def chart_rules() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(cluster rules, Lease rules) of the chart rendered with materialisation and OCM
    delivery on and the operator's default Lease name: what the operator tests run with,
    so they prove the chart's RBAC rather than a copy of it. Rendered once per session."""
    objects = render_chart("--set", "materialise.enabled=true", "--set", "delivery.ocm.enabled=true",
                           "--set", f"operator.leaseName={DEFAULT_LEASE_NAME}")
    return rules_of(objects, "ClusterRole"), rules_of(objects, "Role")


def free_port() -> int:
    """A TCP port free on the loopback now (for an operator's health endpoint)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token_kubeconfig(kubectl: Kubectl, account: str, namespace: str, path: Path) -> Path:
    """A kubeconfig holding a token of ``account`` (TokenRequest API) and the admin
    kubeconfig's server and CA: how a pod of the Deployment would authenticate."""
    cluster = kubectl.json("config", "view", "--raw", "--minify")["clusters"][0]["cluster"]
    token = kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    user = f"system:serviceaccount:{namespace}:{account}"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": {"cluster": "e2e", "user": user, "namespace": namespace}}],
        "current-context": user,
    }))
    path.chmod(0o600)
    return path


def deployment_env(deployment: dict[str, Any], pod_name: str) -> dict[str, str]:
    """The operator container's env as the kubelet would resolve it for a pod named
    ``pod_name`` of this Deployment (only the downward-API fields the chart uses)."""
    fields = {"metadata.namespace": deployment["metadata"]["namespace"], "metadata.name": pod_name}
    [operator] = deployment["spec"]["template"]["spec"]["containers"]
    env = {}
    for var in operator["env"]:
        env[var["name"]] = var["value"] if "value" in var else fields[var["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def wait_for(what: str, condition: Callable[[], Any], timeout_s: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)


KUBECONFIG_VARIABLES = ("KUBECONFIG", "MESHPLANE_KUBECONFIG")


class OperatorProcess:
    """One ``meshplane-operator`` process; ``kill()`` is SIGKILL, ``stop()`` SIGTERM.

    ``kubeconfig_variable`` is the one variable that names ``kubeconfig`` (``KUBECONFIG``
    or ``MESHPLANE_KUBECONFIG``): neither is inherited from this process, so the other
    is unset unless ``extra_env`` sets it."""

    def __init__(
        self, kubeconfig: Path, namespace: str, log_path: Path, extra_env: dict[str, str] | None = None,
        kubeconfig_variable: str = "KUBECONFIG",
    ) -> None:
        assert kubeconfig_variable in KUBECONFIG_VARIABLES, kubeconfig_variable
        self.port = free_port()
        self.api_port = free_port()  # several operators run at once: each its own API port
        env = {
            **{k: v for k, v in os.environ.items() if k not in KUBECONFIG_VARIABLES},
            kubeconfig_variable: str(kubeconfig),
            "MESHPLANE_NAMESPACE": namespace,
            "MESHPLANE_HEALTH_PORT": str(self.port),
            "MESHPLANE_HTTP_PORT": str(self.api_port),
            "MESHPLANE_LEASE_DURATION_S": "4",
            "MESHPLANE_LEASE_RENEW_DEADLINE_S": "3",
            "MESHPLANE_LEASE_RETRY_PERIOD_S": "0.5",
            "MESHPLANE_DEBOUNCE_QUIET_S": "0.2",
            "MESHPLANE_DEBOUNCE_MAX_S": "1",
            **(extra_env or {}),
        }
        self.log_path = log_path
        self.log = log_path.open("ab")
        self.process = subprocess.Popen([str(OPERATOR)], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            assert self.process.poll() is None, f"the operator exited; log:\n{self.tail()}"
            return False

    def tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        terminate(self.process)
        self.log.close()


@pytest.fixture(scope="module")
def operator_env(
    kubectl: Kubectl, installed_crds: Any, example_objects: Any, service_account_kubeconfig: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, str, Path]:
    namespace = unique_name("meshplane-op")
    cluster_rules, lease_rules = chart_rules()
    kubeconfig = service_account_kubeconfig(
        "meshplane-operator", namespace=namespace, rules=lease_rules, cluster_rules=cluster_rules
    )
    return kubeconfig, namespace, tmp_path_factory.mktemp("operator")


@pytest.fixture()
def fresh_operator(operator_env: tuple[Path, str, Path]) -> Iterator[OperatorProcess]:
    kubeconfig, namespace, logs = operator_env
    process = OperatorProcess(kubeconfig, namespace, logs / f"{unique_name('operator')}.log")
    try:
        wait_for("the operator to be ready", process.ready)
        yield process
    finally:
        process.stop()


def workloads(kubectl: Kubectl) -> dict[str, dict[str, Any]]:
    items = kubectl.json("get", "meshworkloads", "-A")["items"]
    found = {f"{i['metadata']['namespace']}/{i['metadata']['name']}": i for i in items}
    return {key: found[key] for key in EXAMPLE_WORKLOADS if key in found}


def settled(kubectl: Kubectl) -> dict[str, dict[str, Any]] | None:
    """Every example workload solved for its current spec, else None."""
    current = workloads(kubectl)
    for item in current.values():
        status = item.get("status") or {}
        if status.get("observedGeneration") != item["metadata"]["generation"]:
            return None
        if status.get("phase") not in ("Placed", "Unschedulable", "Preempted"):
            return None
    return current if len(current) == len(EXAMPLE_WORKLOADS) else None


def mesh_objects(kubectl: Kubectl) -> list[dict[str, Any]]:
    """Every object of every kind of the meshplane.io group the API server serves
    (AIFactory, EdgeFleet, MeshWorkload, MemberCluster, ...): what a cluster-wide
    operator reads."""
    resources = kubectl("api-resources", f"--api-group={GROUP}", "-o", "name").stdout.split()
    return [item for resource in sorted(resources) for item in kubectl.json("get", resource, "-A")["items"]]


def mesh_key(obj: dict[str, Any]) -> str:
    """``Kind/namespace/name`` (``Kind/name`` for a site) of an object or manifest."""
    meta = obj["metadata"]
    return "/".join(p for p in (obj["kind"], meta.get("namespace"), meta["name"]) if p)


def foreign_mesh_objects(kubectl: Kubectl, documents: list[dict[str, Any]]) -> list[str]:
    """The meshplane objects in the cluster that are not among ``documents`` (the
    examples' manifests), each said with whether it is being deleted."""
    ours = {mesh_key(d) for d in documents if d["apiVersion"].startswith(f"{GROUP}/")}
    foreign = [o for o in mesh_objects(kubectl) if mesh_key(o) not in ours]
    if not foreign:
        return []
    terminating = {ns["metadata"]["name"] for ns in kubectl.json("get", "namespaces")["items"]
                   if ns.get("status", {}).get("phase") == "Terminating"}
    said = []
    for obj in foreign:
        meta = obj["metadata"]
        going = meta.get("deletionTimestamp") or meta.get("namespace") in terminating
        said.append(f"{mesh_key(obj)} ({'being deleted' if going else 'left behind'})")
    return sorted(said)


def wait_for_the_examples_alone(kubectl: Kubectl, documents: list[dict[str, Any]], timeout_s: float = TIMEOUT_S) -> None:
    """Wait until the cluster's meshplane objects are the examples and nothing else: what
    other tests created (a namespace of theirs still terminating, say) is gone, so a
    plan of examples/ is the plan of the whole cluster."""
    deadline = time.monotonic() + timeout_s
    while foreign := foreign_mesh_objects(kubectl, documents):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"after {timeout_s:.0f} s the cluster still holds meshplane objects other than the examples "
                f"(a test did not delete, or wait for, what it created): {foreign}"
            )
        time.sleep(0.5)


def clear_statuses(kubectl: Kubectl, keys: Iterable[str] = EXAMPLE_WORKLOADS) -> None:
    """Remove the status of each ``namespace/name`` MeshWorkload (what an earlier operator wrote)."""
    for key in sorted(keys):
        ns, name = key.split("/")
        kubectl("patch", "meshworkload", name, "-n", ns, "--subresource=status", "--type=merge",
                "-p", '{"status": null}')


def final_statuses(kubectl: Kubectl, log_path: Path, workloads: int, sites: int) -> dict[str, dict[str, Any]] | None:
    """The example workloads as :func:`settled` gives them, once they are final: the
    operator of ``log_path`` has logged a finished solve (its line follows its writes) of
    exactly ``workloads`` workloads on ``sites`` sites, every example is solved for its
    current spec, and no other solve finished while they were read. Else None."""
    before = solves(log_path)
    if not before or (int(before[-1]["workloads"]), int(before[-1]["sites"])) != (workloads, sites):
        return None
    current = settled(kubectl)
    if current is None or solves(log_path) != before:
        return None
    return current


def resource_versions(kubectl: Kubectl) -> dict[str, str]:
    versions = {}
    for plural in ("aifactories", "edgefleets", "meshworkloads"):
        for item in kubectl.json("get", plural, "-A")["items"]:
            meta = item["metadata"]
            versions[f"{plural}/{meta.get('namespace', '')}/{meta['name']}"] = meta["resourceVersion"]
    return versions




def patch_spec(kubectl: Kubectl, ref: str, spec: dict[str, Any]) -> None:
    kubectl("patch", ref, "--type=merge", "-p", json.dumps({"spec": spec}))


# --------------------------------------------------------------------------- own sites and workloads, events, logs

# A region no link reaches and a country no example workload allows: a site there, with
# a pool of a model only it has, is invisible to every example workload (so the example
# placements never move because of it); only the tests' own workloads can use it.
ISOLATED_REGION = "e2e-isolated"
ISOLATED_COUNTRY = "AQ"
API_VERSION = f"{GROUP}/v1alpha1"


def isolated_factory(name: str, model: str, count: int = 1000) -> dict[str, Any]:
    """An AIFactory with fr-grenoble-1's power figures and one pool of ``model`` (1 kW a
    device), in :data:`ISOLATED_REGION`."""
    return {
        "apiVersion": API_VERSION, "kind": "AIFactory", "metadata": {"name": name},
        "spec": {
            "region": ISOLATED_REGION, "country": ISOLATED_COUNTRY,
            "power": {"firmMW": 40, "flexibleMW": 10, "pue": 1.15, "pricePerMWh": 90, "carbonGramsPerKWh": 45},
            "acceleratorPools": [{"model": model, "count": count, "wattsPerDevice": 1000,
                                  "tokensPerSecondPerDevice": 1000, "memoryGiB": 64}],
        },
    }


def own_workload(namespace: str, name: str, model: str, accelerators: int, priority: int = 100) -> dict[str, Any]:
    """A training MeshWorkload of ``accelerators`` devices of ``model`` (whole, one site)."""
    return {
        "apiVersion": API_VERSION, "kind": "MeshWorkload", "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "training", "accelerators": accelerators, "acceleratorModels": [model],
                 "priority": priority},
    }


def get_object(kubectl: Kubectl, ref: str, namespace: str | None = None) -> dict[str, Any] | None:
    """The object as the API server holds it, or None when it does not exist."""
    args = ["get", ref, "--ignore-not-found", "-o", "json"] + (["-n", namespace] if namespace else [])
    out = kubectl(*args).stdout.strip()
    return json.loads(out) if out else None


def current_status(kubectl: Kubectl, ref: str, namespace: str | None = None) -> dict[str, Any]:
    """The status of the object, if the operator has written one for its current spec, else {}."""
    obj = get_object(kubectl, ref, namespace)
    if obj is None:
        return {}
    status = obj.get("status") or {}
    return status if status.get("observedGeneration") == obj["metadata"].get("generation") else {}


def conditions_of(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions") or []}


def events_about(kubectl: Kubectl, namespace: str, name: str, reason: str | None = None) -> list[dict[str, Any]]:
    """core/v1 Events in ``namespace`` whose involvedObject is named ``name``."""
    selector = f"involvedObject.name={name}" + (f",reason={reason}" if reason else "")
    return list(kubectl.json("get", "events", "-n", namespace, "--field-selector", selector)["items"])


def event_counts(kubectl: Kubectl, namespace: str, name: str) -> dict[str, int]:
    """Name -> count of the Events about ``name``: what :func:`new_events` compares with."""
    return {e["metadata"]["name"]: int(e.get("count") or 1) for e in events_about(kubectl, namespace, name)}


def new_events(
    kubectl: Kubectl, namespace: str, name: str, before: dict[str, int], reason: str | None = None
) -> list[dict[str, Any]]:
    """Events about ``name`` created, or repeated (count + 1), since ``before``."""
    return [
        e for e in events_about(kubectl, namespace, name, reason)
        if int(e.get("count") or 1) > before.get(e["metadata"]["name"], 0)
    ]


def delete_quietly(kubectl: Kubectl, ref: str, namespace: str | None = None) -> None:
    args = ["delete", ref, "--ignore-not-found", "--wait=false"] + (["-n", namespace] if namespace else [])
    kubectl(*args, check=False)


SOLVED = re.compile(
    r"meshplane\.operator\.loop: solved (?P<workloads>\d+) workloads on (?P<sites>\d+) sites \((?P<mode>warm|cold)\)"
    r" in \S+ ms: (?P<patches>\d+) status patches, (?P<events>\d+) events; next wake-up (?P<window>\S+)"
)


def solves(log_path: Path) -> list[dict[str, str]]:
    """The "solved ..." lines (logger meshplane.operator.loop) of an operator's log, parsed."""
    if not log_path.exists():
        return []
    return [m.groupdict() for m in SOLVED.finditer(log_path.read_text(errors="replace"))]


def healthy(process: OperatorProcess) -> bool:
    """/healthz of the process says every thread of it is alive."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{process.port}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class StatusRecorder:
    """Every version of one object the API server reports from now on (``kubectl get
    -w -o json`` in a thread), so a test can tell which statuses it went through, not
    only the last one. ``close()`` when done."""

    def __init__(self, kubectl: Kubectl, ref: str, namespace: str | None = None) -> None:
        args = [kubectl.binary, "--kubeconfig", kubectl.kubeconfig, "get", ref, "-w", "-o", "json"]
        args += ["-n", namespace] if namespace else []
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self._lock = threading.Lock()
        self._versions: list[dict[str, Any]] = []
        self._seen_at: list[float] = []  # time.time() each version was read
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        decoder = json.JSONDecoder()
        buffer = ""
        for line in self._process.stdout:
            buffer += line
            while buffer.strip():
                try:
                    obj, end = decoder.raw_decode(buffer.lstrip())
                except json.JSONDecodeError:
                    break
                buffer = buffer.lstrip()[end:]
                with self._lock:
                    self._versions.append(obj)
                    self._seen_at.append(time.time())

    def versions(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._versions)

    def timed_versions(self) -> list[tuple[float, dict[str, Any]]]:
        """Every version with the wall-clock time (time.time()) it was read at."""
        with self._lock:
            return list(zip(self._seen_at, self._versions, strict=True))

    def statuses(self) -> list[dict[str, Any]]:
        """The distinct successive statuses seen (the first is the one held when recording began)."""
        seen: list[dict[str, Any]] = []
        for obj in self.versions():
            status = obj.get("status") or {}
            if not seen or seen[-1] != status:
                seen.append(status)
        return seen

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._thread.join(timeout=10)
