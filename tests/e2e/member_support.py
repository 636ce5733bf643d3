"""Member clusters for the delivery tests (helpers; the fixture is ``member_clusters``
in conftest.py).

A member cluster is one more "cluster in a box" (tests/controlplane, see docs/e2e.md),
started in a directory of its own with only what a member needs: the Deployment and
ReplicaSet controllers, the namespace and garbage collectors, the node lifecycle
controller (it lifts the not-ready taint of new Nodes), the kube-scheduler and KWOK,
with one KWOK Node per site, labelled ``meshplane.io/site=<site>``. The hub is the
suite's own ``control_plane``; the operator there reaches a member with a kubeconfig
held in a Secret of the hub, for the member's ``meshplane-delivery`` ServiceAccount
(the rights of helm/meshplane-member)::

    def test_delivery(member_clusters, kubectl, scratch_namespace, tmp_path):
        a = member_clusters["member-a"]                       # sites a.sites
        text = member_kubeconfig(a, tmp_path / "a.kubeconfig")  # installs the chart once
        ref = kubeconfig_secret(kubectl, "meshplane-system", "member-a", text)
        with member_namespace_cleanup(member_clusters.values(), scratch_namespace):
            ...  # the hub's MemberCluster names ref; the operator delivers
            wait_origin_deployments(a, {(scratch_namespace, "train-member-a-site-1"): 2})
            with a.frozen():          # SIGSTOP: unreachable, keeps its state
                ...                   # e.g. wait until the hub re-places the work
            # SIGCONT'd and healthy again here, also when the block failed
            with a.down():            # SIGKILL: gone; restarted on exit
                ...
            # restarted on the same data dir and port: the kubeconfig still works

Rules for tests that use members (they are shared by the whole session):

- own what you create there: unique namespaces (the hub test's namespace name is
  fine, see :func:`member_namespace_cleanup`), deleted at the end, with the wait;
- freeze or kill a member only inside :meth:`MemberCluster.frozen` /
  :meth:`MemberCluster.down` (or restore it in a ``finally``), so the next test finds
  it healthy; while frozen, ``member.kubectl`` hangs until its timeout;
- wait for the final state (:func:`wait_origin_deployments`); never sleep and assert.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.e2e.cluster_support import SiteNodes, delete_nodes, make_site_nodes, node_ready
from tests.e2e.e2e_support import (
    REPO_ROOT,
    ControlPlane,
    Kubectl,
    file_tail,
    say,
    start_controlplane,
    stop_process,
    tail,
)
from tests.e2e.operator_support import helm_binary

MEMBER_NAMES = ("member-a", "member-b")
# What a member runs besides kube-apiserver and etcd: enough for a Deployment to become
# Running Pods on KWOK Nodes and for a deleted namespace or Deployment to go away; no
# serviceaccount controller (nothing here needs a namespace's "default"
# ServiceAccount: the ServiceAccount admission plugin is off), no pod GC, no
# ClusterRole aggregation.
MEMBER_CONTROLLERS = ("namespace", "garbagecollector", "deployment", "replicaset", "nodelifecycle")
MEMBER_ARGS = (f"--controllers={','.join(MEMBER_CONTROLLERS)}", "--scheduler=true", "--kwok=true")

MEMBER_CHART = REPO_ROOT / "helm" / "meshplane-member"
MEMBER_RELEASE = "meshplane-member"
MEMBER_NAMESPACE = "meshplane-system"
DELIVERY_SERVICE_ACCOUNT = "meshplane-delivery"
TOKEN_DURATION = "24h"
ORIGIN_LABEL = "meshplane.io/origin"
# Taints the node lifecycle controller puts on a Node that is not (or no longer) Ready;
# the scheduler passes such a Node over.
UNHEALTHY_TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")

HEALTHY_TIMEOUT_S = 120.0
RESTART_TIMEOUT_S = 60.0  # of "address already in use" retries on the same port
WAIT_TIMEOUT_S = 120.0


def default_sites(name: str) -> tuple[str, ...]:
    """The sites a member is made with: ``<name>-site-1`` and ``<name>-site-2``."""
    return (f"{name}-site-1", f"{name}-site-2")


# --------------------------------------------------------------------------- one member


@dataclass(eq=False)
class MemberCluster:
    """A member cluster: its own control plane process, data dir and KWOK site Nodes.

    ``start()`` starts it and makes ``nodes_per_site`` Nodes for each of ``sites``;
    ``stop(sig)`` signals the whole process (SIGSTOP freezes it: unreachable, state
    kept; SIGCONT resumes it and waits until it is healthy; SIGKILL kills it; SIGTERM
    shuts it down); ``restart()`` starts it again on the same data dir and API server
    port, so kubeconfigs and tokens minted before stay valid. ``kubectl`` is bound to
    its admin (system:masters) kubeconfig.
    """

    name: str
    binary: Path
    kubectl_binary: str
    workdir: Path
    sites: tuple[str, ...] = ()
    nodes_per_site: int = 1
    extra_args: tuple[str, ...] = ()
    state: str = "new"
    """new, running, frozen or stopped."""
    control_plane: ControlPlane | None = None
    nodes: SiteNodes | None = None
    port: int | None = None
    startup_seconds: float = 0.0
    """From the first start to its READY line."""
    healthy_seconds: float = 0.0
    """From the first start until its Nodes were Ready."""
    restart_seconds: list[float] = field(default_factory=list)
    """Each restart, from the start of the new process to healthy (Nodes Ready)."""
    rbac_installed: bool = False
    starts: int = 0

    def __post_init__(self) -> None:
        self.binary = Path(self.binary).resolve()  # the process runs in workdir
        self.workdir = Path(self.workdir).resolve()
        if not self.sites:
            self.sites = default_sites(self.name)

    def __repr__(self) -> str:
        return f"MemberCluster({self.name!r}, {self.state}, {self.server or 'not started'})"

    # ------------------------------------------------------------------ properties

    @property
    def server(self) -> str:
        """``https://127.0.0.1:PORT``; the same across restarts."""
        return self.control_plane.server if self.control_plane else ""

    @property
    def kubeconfig(self) -> str:
        """Path of the admin kubeconfig (rewritten, identical, by each restart)."""
        return str(self.workdir / "admin.kubeconfig")

    @property
    def kubectl(self) -> Kubectl:
        return Kubectl(self.kubectl_binary, self.kubeconfig)

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.control_plane.process if self.control_plane else None

    @property
    def log(self) -> Path:
        return self.workdir / "controlplane.log"

    def ca_data(self) -> str:
        """The base64 PEM of its CA (``certificate-authority-data``), as in its admin kubeconfig."""
        config = yaml.safe_load(Path(self.kubeconfig).read_text())
        return str(config["clusters"][0]["cluster"]["certificate-authority-data"])

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """First start: the control plane (any free ports), then its site Nodes."""
        if self.state != "new":
            raise RuntimeError(f"{self.name} was started already; use restart()")
        self.workdir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            self.control_plane = self._launch([])
        except RuntimeError:
            # The free ports are picked just before they are bound: another process can
            # take one in between (as the hub fixture, try once more in that case only).
            if "address already in use" not in file_tail(self.log, 200):
                raise
            shutil.rmtree(self.workdir / "data", ignore_errors=True)
            self.control_plane = self._launch([])
        self.state = "running"
        self.startup_seconds = self.control_plane.startup_seconds
        self.port = urlsplit(self.server).port
        self.nodes = make_site_nodes(self.kubectl, self.sites, per_site=self.nodes_per_site)
        self.wait_healthy()
        self.healthy_seconds = time.monotonic() - started

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the member's process group.

        - SIGSTOP: frozen. Connections are accepted by the kernel and then hang: to
          a client it is unreachable; its state (etcd, Nodes, Pods) is kept.
        - SIGCONT: resumed; returns once it is healthy again (:meth:`wait_healthy`).
        - SIGKILL: killed at once (what a crash or a power cut does); etcd's data stays.
        - SIGTERM (or SIGINT): a graceful shutdown (about 1 s).

        After SIGKILL or SIGTERM, :meth:`restart` brings it back.
        """
        process = self.process
        if process is None or self.state in ("new", "stopped"):
            raise RuntimeError(f"{self.name} is not running ({self.state})")
        if sig == signal.SIGSTOP:
            os.killpg(process.pid, signal.SIGSTOP)
            self.state = "frozen"
        elif sig == signal.SIGCONT:
            os.killpg(process.pid, signal.SIGCONT)
            self.state = "running"
            self.wait_healthy()
        elif sig == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            self._close_stdin()
            self.state = "stopped"
        elif sig in (signal.SIGTERM, signal.SIGINT):
            if self.state == "frozen":
                # a stopped process only handles the signal once continued
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                    os.killpg(process.pid, signal.SIGCONT)
            stop_process(process)
            self._close_stdin()
            self.state = "stopped"
        else:
            raise ValueError(f"stop() takes SIGSTOP, SIGCONT, SIGKILL, SIGTERM or SIGINT, not {sig}")

    def resume(self) -> None:
        """``stop(SIGCONT)``: resume a frozen member and wait until it is healthy."""
        self.stop(signal.SIGCONT)

    def restart(self, sig: int = signal.SIGTERM) -> None:
        """Start the member again on the same data dir and API server port (stopping it
        first with ``sig`` if it runs); returns once it is healthy. Kubeconfigs minted
        before (CA data, ServiceAccount tokens) work again: the control plane reuses its
        certificates and keys, and etcd keeps every object."""
        if self.state == "new" or self.port is None:
            raise RuntimeError(f"{self.name} was never started")
        if self.state in ("running", "frozen"):
            self.stop(sig)
        previous = self.log.with_name(f"controlplane.{self.starts}.log")
        with contextlib.suppress(OSError):
            self.log.rename(previous)  # keep the log of the run before
        started = time.monotonic()
        deadline = started + RESTART_TIMEOUT_S
        while True:
            try:
                self.control_plane = self._launch(["--apiserver-port", str(self.port)])
                break
            except RuntimeError:
                # The port of a killed process is free at once; but a client socket of
                # this machine may have been given it as its local port meanwhile.
                if "address already in use" not in file_tail(self.log, 200) or time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self.state = "running"
        if urlsplit(self.server).port != self.port:
            raise AssertionError(f"{self.name} restarted on {self.server}, not on port {self.port}")
        self.wait_healthy()
        self.restart_seconds.append(time.monotonic() - started)

    def close(self) -> None:
        """Stop for good (end of the session); a frozen member is killed."""
        if self.process is None or self.state in ("new", "stopped"):
            return
        self.stop(signal.SIGKILL if self.state == "frozen" else signal.SIGTERM)

    def _launch(self, args: list[str]) -> ControlPlane:
        self.starts += 1
        return start_controlplane(self.binary, self.workdir, [*MEMBER_ARGS, *self.extra_args, *args])

    def _close_stdin(self) -> None:
        process = self.process
        if process is not None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()

    # ------------------------------------------------------------------ health

    def health_problem(self) -> str | None:
        """None when healthy: /readyz answers, every Node of :attr:`nodes` is Ready and
        carries no not-ready/unreachable taint (the scheduler would pass it over). Else
        what is wrong."""
        if self.state != "running":
            return f"{self.name} is {self.state}"
        if self.process is not None and self.process.poll() is not None:
            return f"{self.name}'s process exited with code {self.process.returncode}"
        probe = self.kubectl("get", "--raw", "/readyz", "--request-timeout=5s", check=False, timeout=15)
        if probe.returncode != 0:
            return f"/readyz: {tail(probe.stderr or probe.stdout, 3)}"
        if self.nodes is None:
            return None
        wanted = set(self.nodes.names)
        nodes = {n["metadata"]["name"]: n for n in self.kubectl.json("get", "nodes")["items"]
                 if n["metadata"]["name"] in wanted}
        for name in sorted(wanted):
            node = nodes.get(name)
            if node is None:
                return f"Node {name} is missing"
            if not node_ready(node):
                return f"Node {name} is not Ready"
            taints = [t["key"] for t in node.get("spec", {}).get("taints") or [] if t["key"] in UNHEALTHY_TAINTS]
            if taints:
                return f"Node {name} is tainted {taints}"
        return None

    def wait_healthy(self, timeout_s: float = HEALTHY_TIMEOUT_S) -> None:
        """Wait until :meth:`health_problem` finds nothing wrong."""
        deadline = time.monotonic() + timeout_s
        while True:
            problem = self.health_problem()
            if problem is None:
                return
            if time.monotonic() > deadline or (self.process is not None and self.process.poll() is not None):
                raise AssertionError(
                    f"member cluster {self.name} not healthy after {timeout_s:.0f} s: {problem}\n"
                    f"---- last lines of {self.log} ----\n{file_tail(self.log, 30)}")
            time.sleep(0.5)

    def ensure_healthy(self) -> None:
        """Bring the member back to health whatever a test left: resume it if frozen,
        restart it if stopped, then wait until healthy."""
        if self.state == "frozen":
            self.resume()
        elif self.state == "stopped" or (self.process is not None and self.process.poll() is not None):
            self.state = "stopped"
            self.restart()
        else:
            self.wait_healthy()

    # ------------------------------------------------------------------ outages

    @contextlib.contextmanager
    def frozen(self) -> Iterator[MemberCluster]:
        """SIGSTOP the member for the block (unreachable, state kept); on exit, even on
        an error, SIGCONT it and wait until it is healthy."""
        self.stop(signal.SIGSTOP)
        try:
            yield self
        finally:
            self.ensure_healthy()

    @contextlib.contextmanager
    def down(self, sig: int = signal.SIGKILL) -> Iterator[MemberCluster]:
        """Stop the member with ``sig`` (SIGKILL: a crash; SIGTERM: a shutdown) for the
        block; on exit, even on an error, restart it on the same data dir and port and
        wait until it is healthy."""
        self.stop(sig)
        try:
            yield self
        finally:
            self.ensure_healthy()

    # ------------------------------------------------------------------ objects

    def make_site_nodes(self, sites: Iterable[str], per_site: int = 1, **node_options: Any) -> SiteNodes:
        """More KWOK Nodes (see cluster_support.make_site_nodes); delete them with
        :meth:`delete_nodes` at the end of the test."""
        return make_site_nodes(self.kubectl, sites, per_site=per_site, **node_options)

    def delete_nodes(self, nodes: SiteNodes) -> None:
        delete_nodes(self.kubectl, nodes)

    def delete_namespaces(self, *names: str, wait: bool = True, timeout_s: float = WAIT_TIMEOUT_S) -> None:
        """Delete namespaces (missing ones are fine) and, with ``wait``, wait until they
        are gone (their Deployments, ReplicaSets and Pods with them)."""
        if not names:
            return
        self.kubectl("delete", "namespace", *names, "--ignore-not-found", "--wait=false")
        if wait:
            deadline = time.monotonic() + timeout_s
            while True:
                left = self.kubectl("get", "namespace", *names, "--ignore-not-found", "-o", "name").stdout.split()
                if not left:
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(f"namespaces {left} of {self.name} still there after {timeout_s:.0f} s")
                time.sleep(0.5)


# --------------------------------------------------------------------------- the session's members


@contextlib.contextmanager
def started_members(
    config: pytest.Config,
    binary: Path,
    kubectl_binary: str,
    names: Iterable[str] = MEMBER_NAMES,
) -> Iterator[dict[str, MemberCluster]]:
    """Start the members (in parallel) in a temp dir; yield ``{name: MemberCluster}``;
    at the end stop them and remove the dir (kept with ``MESHPLANE_E2E_KEEP=1``).
    A member that fails to start fails the test with the end of its log."""
    root = Path(tempfile.mkdtemp(prefix="meshplane-members-"))
    members = {name: MemberCluster(name, binary, kubectl_binary, root / name) for name in names}
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(members)) as pool:
            futures = {name: pool.submit(member.start) for name, member in members.items()}
        for name, future in futures.items():
            error = future.exception()
            if error is not None:
                member = members[name]
                pytest.fail(f"starting member cluster {name} failed: {error}\n"
                            f"---- last lines of {member.log} ----\n{file_tail(member.log, 60)}", pytrace=False)
        say(config, "\nmeshplane e2e: member clusters "
                    + ", ".join(f"{m.name} {m.server} (ready {m.startup_seconds:.1f}s, Nodes Ready {m.healthy_seconds:.1f}s)"
                                for m in members.values())
                    + f", both in {time.monotonic() - started:.1f}s")
        yield members
    finally:
        for member in members.values():
            with contextlib.suppress(Exception):
                member.close()
        if os.environ.get("MESHPLANE_E2E_KEEP") == "1":
            say(config, f"meshplane e2e: kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- RBAC and kubeconfigs


def helm_env(member: MemberCluster) -> dict[str, str]:
    """The environment of a helm run for ``member``: its own config, cache and data dirs."""
    home = member.workdir / "helm"
    return {**os.environ, **{v: str(home / v.lower()) for v in ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME")}}


def run_helm(member: MemberCluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real helm (operator_support.helm_binary) against ``member``'s admin kubeconfig."""
    proc = subprocess.run([helm_binary(), "--kubeconfig", member.kubeconfig, *args], capture_output=True, text=True,
                          env=helm_env(member), timeout=300, check=False, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} against {member.name} exited {proc.returncode}:\n"
                             f"{tail(proc.stderr or proc.stdout)}")
    return proc


def install_member_rbac(member: MemberCluster) -> None:
    """``helm upgrade --install meshplane-member helm/meshplane-member -n
    meshplane-system --create-namespace --wait`` into ``member``, once per session
    (the release survives restarts: etcd keeps it)."""
    if member.rbac_installed:
        return
    run_helm(member, "upgrade", "--install", MEMBER_RELEASE, str(MEMBER_CHART), "--namespace", MEMBER_NAMESPACE,
             "--create-namespace", "--wait", "--timeout", "2m")
    member.rbac_installed = True


def member_kubeconfig(member: MemberCluster, path: str | os.PathLike[str], *, duration: str = TOKEN_DURATION) -> str:
    """A kubeconfig for ``member``'s ``meshplane-delivery`` ServiceAccount, as the hub
    gets it: written to ``path`` (mode 0600) and returned as text.

    Installs the member RBAC chart first (idempotent). The kubeconfig holds the
    member's server URL, its CA as ``certificate-authority-data`` and a bearer token
    from the TokenRequest API (``kubectl create token``, valid ``duration``); no file
    path, no exec plugin, no insecure TLS. It stays valid across restarts of the member.
    """
    install_member_rbac(member)
    token = member.kubectl("create", "token", DELIVERY_SERVICE_ACCOUNT, "-n", MEMBER_NAMESPACE,
                           f"--duration={duration}").stdout.strip()
    user = f"{member.name}-{DELIVERY_SERVICE_ACCOUNT}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": member.name,
                      "cluster": {"server": member.server, "certificate-authority-data": member.ca_data()}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": member.name, "context": {"cluster": member.name, "user": user}}],
        "current-context": member.name,
    }
    text = yaml.safe_dump(config, sort_keys=False)
    out = Path(path)
    out.write_text(text)
    out.chmod(0o600)
    return text


def kubeconfig_secret(
    kubectl_hub: Kubectl, namespace: str, name: str, kubeconfig_text: str, key: str = "kubeconfig"
) -> dict[str, str]:
    """Create (or update) Secret ``name`` in the hub's ``namespace`` holding the
    kubeconfig under ``key``; returns ``{"name": name, "key": key}`` (a secret key
    reference). Server-side apply: no copy of the kubeconfig in an annotation."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {key: base64.b64encode(kubeconfig_text.encode()).decode()},
    }
    kubectl_hub("apply", "--server-side", "--force-conflicts", "--field-manager=meshplane-e2e", "-f", "-",
                input=json.dumps(secret))
    return {"name": name, "key": key}


# --------------------------------------------------------------------------- what landed in a member


def origin_deployments(
    member: MemberCluster,
    *,
    namespace: str | None = None,
    origin: str | None = None,
    include_deleting: bool = True,
    count: str = "replicas",
) -> dict[tuple[str, str], int]:
    """``{(namespace, name): spec.replicas}`` of every Deployment in ``member`` labelled
    ``meshplane.io/origin`` (with value ``origin`` if given; in ``namespace`` if given),
    read with kubectl, not with the operator's code. ``count="readyReplicas"`` (or any
    other status count) reads that count of the status instead (0 when absent). A Deployment
    being deleted counts until it is gone, unless ``include_deleting=False``."""
    selector = f"{ORIGIN_LABEL}={origin}" if origin is not None else ORIGIN_LABEL
    where = ["-n", namespace] if namespace else ["-A"]
    items = member.kubectl.json("get", "deployments.apps", *where, "-l", selector)["items"]
    out = {}
    for item in items:
        meta = item["metadata"]
        if not include_deleting and meta.get("deletionTimestamp"):
            continue
        spec, status = item.get("spec", {}), item.get("status", {})
        value = spec.get("replicas", 1) if count == "replicas" else status.get(count, 0)
        out[(meta["namespace"], meta["name"])] = int(value)
    return out


def wait_origin_deployments(
    member: MemberCluster,
    expected: Mapping[tuple[str, str], int] | Callable[[dict[tuple[str, str], int]], bool],
    *,
    timeout_s: float = WAIT_TIMEOUT_S,
    what: str = "",
    **filters: Any,
) -> dict[tuple[str, str], int]:
    """Poll :func:`origin_deployments` (``filters`` go to it) until it equals
    ``expected`` (or ``expected(found)`` holds); return what it found. On timeout the
    AssertionError shows the last listing."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = origin_deployments(member, **filters)
        if (expected(found) if callable(expected) else found == dict(expected)):
            return found
        if time.monotonic() > deadline:
            want = "a condition" if callable(expected) else dict(sorted(expected.items()))
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what or 'origin Deployments'} "
                                 f"in {member.name}: want {want}, found {dict(sorted(found.items()))}")
        time.sleep(0.5)


@contextlib.contextmanager
def member_namespace_cleanup(members: Iterable[MemberCluster], *names: str) -> Iterator[None]:
    """At the end of the block (even on an error), delete ``names`` in every member and
    wait until they are gone: stop whatever delivers there first (the operator, the
    hub's workloads), or it may deliver again."""
    members = list(members)
    try:
        yield
    finally:
        for member in members:
            member.ensure_healthy()
            member.delete_namespaces(*names)


# --------------------------------------------------------------------------- the hub's objects for delivery tests

DELIVERY_MODEL = "e2e-delivery-gpu"
"""The accelerator model of the delivery tests' sites: no example workload uses it, so
the examples' plan is untouched."""


def delivery_factory(name: str, country: str, price: float, member_cluster: str | None) -> dict[str, Any]:
    """A factory of 8 devices of :data:`DELIVERY_MODEL` (in ``member_cluster`` when given)."""
    spec: dict[str, Any] = {
        "region": "e2e-delivery", "country": country,
        "power": {"firmMW": 1, "pricePerMWh": price},
        # one token per second per device: no example workload's token demand fits here
        "acceleratorPools": [{"model": DELIVERY_MODEL, "count": 8, "wattsPerDevice": 700,
                              "tokensPerSecondPerDevice": 1, "memoryGiB": 80}],
    }
    if member_cluster:
        spec["memberCluster"] = member_cluster
    return {"apiVersion": "meshplane.io/v1alpha1", "kind": "AIFactory", "metadata": {"name": name}, "spec": spec}


def delivery_workload(name: str, namespace: str, allowed: list[str] | None) -> dict[str, Any]:
    """Two replicas of one device each on :data:`DELIVERY_MODEL`, with a pod template
    (``allowed``: the countries it may run in)."""
    spec: dict[str, Any] = {
        "type": "inference", "accelerators": 2, "acceleratorModels": [DELIVERY_MODEL], "devicesPerReplica": 1,
        "placement": {"allowFleets": False},
        "template": {"spec": {"containers": [{"name": "server", "image": "registry.example/serve:1"}]}},
    }
    if allowed:
        spec["sovereignty"] = {"allowedCountries": allowed}
    return {"apiVersion": "meshplane.io/v1alpha1", "kind": "MeshWorkload",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def condition_of(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    """The condition ``type_`` of an object's status ({} when it has none)."""
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def apply_objects(kubectl: Kubectl, objects: list[dict[str, Any]]) -> None:
    """Server-side apply ``objects`` in one request."""
    kubectl("apply", "--server-side", "--field-manager=meshplane-e2e", "-f", "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))


def delete_objects_and_wait(kubectl: Kubectl, objects: list[dict[str, Any]]) -> None:
    """Delete ``objects`` in reverse order, each waited for until it is gone."""
    for obj in reversed(objects):
        group = obj["apiVersion"].rpartition("/")[0]
        kind = obj["kind"].lower() + (f".{group}" if group else "")
        ns = ["-n", obj["metadata"]["namespace"]] if obj["metadata"].get("namespace") else []
        kubectl("delete", kind, obj["metadata"]["name"], *ns, "--ignore-not-found", "--wait=true",
                "--timeout=60s", check=False)
