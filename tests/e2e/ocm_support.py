"""Open Cluster Management (OCM) run as processes, for the e2e tests of the ``ocm``
delivery backend (helpers; the fixture is ``ocm_hub`` in conftest.py).

``tests/ocm/build.sh`` builds one binary from OCM's own Go module (see docs/e2e.md,
"Open Cluster Management"), cached outside the clone, with the CRDs the hub and the
agent need. :class:`OcmHub` installs the hub CRDs on the suite's ``control_plane``,
starts OCM's registration hub controller and work hub manager against it, and joins
member clusters as ManagedClusters: for each, the klusterlet agent (registration and
work agent in one process) runs against the member's API server, and the harness does
what the hub's admin does (accept the cluster, approve and sign its CSR)::

    def test_ocm(ocm_hub, member_clusters):
        hub = ocm_hub                               # member-a and member-b joined
        hub.kubectl.apply_obj(manifest_work)        # namespace "member-a" on the hub
        ...                                         # the agent applies it in member-a
        with hub.agent_down("member-b"):            # SIGTERM (then SIGKILL) the agent
            hub.wait_available("member-b", "Unknown")   # ~5 s: lease 1 s x 5
        # restarted on the same hub kubeconfig (no new CSR), Available=True again

Rules for tests that use it (the hub and its agents are shared by the whole session):

- ManifestWorks go in the hub namespace named after the cluster (``member-a``); give
  them unique names and the namespaces they create in the member unique names too;
  delete both at the end and wait until they are gone (:meth:`OcmHub.delete_work`,
  ``member.delete_namespaces``);
- stop an agent only inside :meth:`OcmHub.agent_down` (or restart it in a ``finally``
  with :meth:`OcmHub.ensure_agent`), so the next test finds every cluster Available;
- wait for the final state (:meth:`OcmHub.wait_available`, :func:`wait_for_value`);
  never sleep and assert.

Test seams, on purpose: the agent's bootstrap kubeconfig is a copy of the hub's admin
kubeconfig (a real hub hands out a restricted bootstrap token), and the CSR is signed
here with the hub's CA and ``openssl`` (no kube-controller-manager signer runs in the
built-in control plane; on an external hub, e.g. kind, its own signer signs it).
Everything OCM opens listens on 127.0.0.1 only (``--listen 127.0.0.1:<free port>``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.e2e.e2e_support import REPO_ROOT, ControlPlane, Kubectl, file_tail, run_build_script, say, stop_process, tail
from tests.e2e.member_support import MemberCluster
from tests.e2e.operator_support import free_port

OCM_DIR = REPO_ROOT / "tests" / "ocm"
OCM_BUILD_SCRIPT = OCM_DIR / "build.sh"
OCM_BINARY_NAME = "meshplane-test-ocm"
OCM_BUILD_TIMEOUT_S = 30 * 60  # a cold build is ~4 min on 2 cores; more with the module download

HUB_NAMESPACE = "open-cluster-management-hub"
DEFAULT_AGENT_NAMESPACE = "open-cluster-management-agent"
# The agent takes its component namespace from this file when it exists (in a Pod);
# no flag sets it. A CI job running in a Pod has one: the harness reads it the same way.
SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

CLUSTER_NAME_LABEL = "open-cluster-management.io/cluster-name"
ADDON_NAME_LABEL = "open-cluster-management.io/addon-name"
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
AVAILABLE = "ManagedClusterConditionAvailable"
ACCEPTED = "HubAcceptedManagedCluster"
JOINED = "ManagedClusterJoined"

LEASE_DURATION_S = 1
"""spec.leaseDurationSeconds of every joined cluster: the agent renews its lease every
second and the hub's lease controller marks the cluster Available=Unknown 5 lease
durations (``leaseDurationTimes``) after the last renewal, i.e. ~5 s after the agent
stops."""
STATUS_SYNC_INTERVAL = "1s"  # --status-sync-interval: ManifestWork status and feedback
HEALTHCHECK_PERIOD = "1s"  # --cluster-healthcheck-period: the member's /livez -> Available
CERT_DAYS = 1  # the signed client certificate; the agent renews only near its end

START_TIMEOUT_S = 60.0
JOIN_TIMEOUT_S = 120.0
WAIT_TIMEOUT_S = 60.0

T = TypeVar("T")


# --------------------------------------------------------------------------- the build


@dataclass(frozen=True)
class OcmBuild:
    """What tests/ocm/build.sh made: ``<cache>/ocm/<version>-<hash>/`` with
    ``bin/meshplane-test-ocm``, ``crds/hub/*.yaml`` and ``crds/spoke/*.yaml``."""

    directory: Path

    @property
    def binary(self) -> Path:
        return self.directory / "bin" / OCM_BINARY_NAME

    @property
    def hub_crds(self) -> Path:
        return self.directory / "crds" / "hub"

    @property
    def spoke_crds(self) -> Path:
        return self.directory / "crds" / "spoke"

    @property
    def version(self) -> str:
        """The OCM version, e.g. ``v1.2.1``."""
        return self.directory.name.rsplit("-", 1)[0]


def build_ocm(config: pytest.Config) -> OcmBuild:
    """Run tests/ocm/build.sh (a no-op when nothing changed); fail the test with the end
    of the build's output when it fails."""
    directory = run_build_script(config, OCM_BUILD_SCRIPT, "OCM", "go", OCM_BUILD_TIMEOUT_S)
    built = OcmBuild(directory) if directory else None
    if built is None or not built.binary.exists() or not any(built.hub_crds.glob("*.yaml")):
        pytest.fail(f"{OCM_BUILD_SCRIPT.name} succeeded but printed no complete build directory: "
                    f"{directory}", pytrace=False)
    return built


# --------------------------------------------------------------------------- helpers


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    """The condition of ``type_`` in ``obj["status"]["conditions"]``, or None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def condition_status(obj: dict[str, Any], type_: str) -> str | None:
    cond = condition(obj, type_)
    return None if cond is None else str(cond.get("status"))


def wait_for_value(fetch: Callable[[], T], done: Callable[[T], bool], *, timeout_s: float = WAIT_TIMEOUT_S,
                   what: str = "a condition", interval_s: float = 0.3) -> T:
    """Poll ``fetch()`` until ``done(value)``; return the value. On timeout the
    AssertionError shows the last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last seen: "
                                 f"{tail(json.dumps(value, indent=1, default=str) if not isinstance(value, str) else value, 30)}")
        time.sleep(interval_s)


def agent_component_namespace() -> str:
    """The namespace the agent keeps its hub kubeconfig Secret in (on the member):
    ``open-cluster-management-agent``, or the Pod's namespace when running in one."""
    try:
        text = SERVICE_ACCOUNT_NAMESPACE_FILE.read_text().strip()
    except OSError:
        return DEFAULT_AGENT_NAMESPACE
    return text or DEFAULT_AGENT_NAMESPACE


def listening_sockets(pid: int) -> list[tuple[str, int]]:
    """``(address, port)`` of every TCP socket of ``pid`` in LISTEN state (from /proc)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    found = []
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if len(parts) < 10 or parts[3] != "0A" or parts[9] not in inodes:  # 0A: LISTEN
                    continue
                hex_addr, hex_port = parts[1].split(":")
                raw = bytes.fromhex(hex_addr)
                # /proc prints the address as 32-bit words in host (little-endian) order
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.append((socket.inet_ntop(family, raw), int(hex_port, 16)))
    return found


def is_loopback(address: str) -> bool:
    return address.startswith("127.") or address in ("::1", "::ffff:127.0.0.1")


# --------------------------------------------------------------------------- one process


@dataclass(eq=False)
class OcmProcess:
    """One ``meshplane-test-ocm <command>`` process: its own process group, stdin a pipe
    (``--exit-on-stdin-eof``: it does not outlive the tests), output in ``log``; each
    start after the first keeps the log of the run before as ``<name>.<n>.log``."""

    name: str
    binary: Path
    command: str
    args: list[str]
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is running already")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.starts and self.log.exists():
            self.log.rename(self.workdir / f"{self.name}.{self.starts}.log")
        self.starts += 1
        self.port = free_port()
        tmp = self.workdir / "tmp"  # its self-signed serving certificate goes to TMPDIR
        tmp.mkdir(exist_ok=True)
        cmd = [str(self.binary), self.command, "--exit-on-stdin-eof",
               f"--listen=127.0.0.1:{self.port}", *self.args]
        with open(self.log, "wb") as log:
            log.write(("$ " + " ".join(cmd) + "\n").encode())
            log.flush()
            self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True, cwd=self.workdir,
                                            env={**os.environ, "TMPDIR": str(tmp)})

    def wait_serving(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait for its ``Serving securely on 127.0.0.1:<port>`` line (the health and
        metrics server: the process is configured and connected); RuntimeError with the
        end of the log if it exits or does not get there."""
        deadline = time.monotonic() + timeout_s
        needle = f"Serving securely on 127.0.0.1:{self.port}"
        while True:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            if needle in text:
                return
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(f"{self.name} exited with code {code} before serving\n"
                                   f"---- last lines of {self.log} ----\n{file_tail(self.log, 40)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not serve within {timeout_s:.0f}s\n"
                                   f"---- last lines of {self.log} ----\n{file_tail(self.log, 40)}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Close its stdin (``--exit-on-stdin-eof``) and SIGTERM its process group, SIGKILL
        if it is still there after a while (:func:`tests.e2e.e2e_support.stop_process`)."""
        if self.process is not None:
            stop_process(self.process)

    def log_tail(self, lines: int = 40) -> str:
        return f"---- last lines of {self.log} ----\n{file_tail(self.log, lines)}"


@dataclass(eq=False)
class Agent:
    """The klusterlet agent of one joined cluster."""

    cluster_name: str
    member: MemberCluster
    process: OcmProcess
    hub_kubeconfig_dir: Path
    join_seconds: float = 0.0
    """From the agent's first start to Available=True (accepted, CSR approved and signed)."""
    restart_seconds: list[float] = field(default_factory=list)
    """Each restart, from the start of the new process to Available=True."""
    csrs_signed: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- the hub


@dataclass(eq=False)
class OcmHub:
    """OCM on the suite's hub: ``start()`` installs the hub CRDs and starts the
    registration hub controller and the work hub manager; ``join(member, name)`` makes
    ``member`` the ManagedCluster ``name``; ``close()`` stops everything.

    ``kubectl`` is bound to the hub's admin kubeconfig. ``ca`` is the hub CA's
    (certificate, key) that signs the agents' CSRs; None on an external hub, whose own
    signer then signs approved CSRs.
    """

    build: OcmBuild
    hub: ControlPlane
    kubectl_binary: str
    workdir: Path
    registration: OcmProcess | None = None
    work: OcmProcess | None = None
    agents: dict[str, Agent] = field(default_factory=dict)
    agent_namespace: str = field(default_factory=agent_component_namespace)
    startup_seconds: float = 0.0

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()

    def __repr__(self) -> str:
        return f"OcmHub({self.build.version}, {self.hub.server or self.hub.kubeconfig}, {sorted(self.agents)})"

    @property
    def kubectl(self) -> Kubectl:
        return Kubectl(self.kubectl_binary, self.hub.kubeconfig)

    @property
    def ca(self) -> tuple[Path, Path] | None:
        if self.hub.external or self.hub.workdir is None:
            return None
        pki = self.hub.workdir / "data" / "pki"
        return pki / "ca.crt", pki / "ca.key"

    @property
    def bootstrap_kubeconfig(self) -> Path:
        return self.workdir / "bootstrap.kubeconfig"

    @property
    def processes(self) -> list[OcmProcess]:
        hub = [p for p in (self.registration, self.work) if p is not None]
        return hub + [agent.process for agent in self.agents.values()]

    # ------------------------------------------------------------------ the hub side

    def start(self) -> None:
        """Install the hub CRDs (server-side apply; never deleted), write the bootstrap
        kubeconfig, start both hub processes and wait until the registration controller
        works (it makes the ``default`` and ``global`` ManagedClusterSets)."""
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        install_crds(self.kubectl, self.build.hub_crds)
        self.kubectl.apply_obj({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": HUB_NAMESPACE}})
        # Test seam: the agents bootstrap with the hub's admin identity (self-contained copy).
        text = self.kubectl("config", "view", "--raw", "--minify", "--flatten").stdout
        self.bootstrap_kubeconfig.write_text(text)
        self.bootstrap_kubeconfig.chmod(0o600)
        common = [f"--kubeconfig={self.hub.kubeconfig}", f"--namespace={HUB_NAMESPACE}", "--disable-leader-election"]
        self.registration = OcmProcess("hub-registration", self.build.binary, "hub-registration", common,
                                       self.workdir / "hub-registration")
        # The work hub manager runs the ManifestWorkReplicaSet controller only behind its
        # (alpha, off by default) feature gate; plain ManifestWorks need no hub controller.
        self.work = OcmProcess("hub-work", self.build.binary, "hub-work",
                               [*common, "--feature-gates=ManifestWorkReplicaSet=true"], self.workdir / "hub-work")
        for process in (self.registration, self.work):
            process.start()
        for process in (self.registration, self.work):
            process.wait_serving()
        wait_for_value(lambda: self.kubectl("get", "managedclustersets", "-o", "name").stdout.split(),
                       lambda names: "managedclusterset.cluster.open-cluster-management.io/default" in names,
                       what="the registration controller's default ManagedClusterSet")
        self.startup_seconds = time.monotonic() - started

    def close(self) -> None:
        """Stop every agent, then the hub processes. On an external hub, delete the
        ManagedClusters first (while the hub controllers still clean up after them)."""
        if self.hub.external:
            for name in list(self.agents):
                with contextlib.suppress(Exception):
                    self.kubectl("delete", "managedcluster", name, "--ignore-not-found", "--wait=true",
                                 "--timeout=60s", check=False)
                    self.kubectl("delete", "csr", "-l", f"{CLUSTER_NAME_LABEL}={name}", "--ignore-not-found",
                                 check=False)
        for agent in self.agents.values():
            agent.process.stop()
        for process in (self.work, self.registration):
            if process is not None:
                process.stop()

    # ------------------------------------------------------------------ reading

    def managed_cluster(self, name: str) -> dict[str, Any]:
        """The ManagedCluster ``name`` of the hub (``kubectl get -o json``)."""
        return dict(self.kubectl.json("get", "managedcluster", name))

    def available(self, name: str) -> str | None:
        """``ManagedClusterConditionAvailable`` status of ``name``: True, False, Unknown or None."""
        return condition_status(self.managed_cluster(name), AVAILABLE)

    def wait_available(self, name: str, status: str = "True", timeout_s: float = WAIT_TIMEOUT_S) -> dict[str, Any]:
        """Wait until ``name`` has ``ManagedClusterConditionAvailable`` = ``status``
        ("True", "Unknown" or "False"); return the ManagedCluster."""
        return wait_for_value(lambda: self.managed_cluster(name),
                              lambda mc: condition_status(mc, AVAILABLE) == status, timeout_s=timeout_s,
                              what=f"ManagedCluster {name} {AVAILABLE}={status}")

    def csrs(self, name: str) -> list[dict[str, Any]]:
        """The registration CSRs of cluster ``name`` (addon CSRs left out)."""
        items = self.kubectl.json("get", "csr", "-l", f"{CLUSTER_NAME_LABEL}={name}")["items"]
        return [c for c in items if ADDON_NAME_LABEL not in (c["metadata"].get("labels") or {})]

    def agent_log(self, name: str, lines: int = 40) -> str:
        return self.agents[name].process.log_tail(lines)

    # ------------------------------------------------------------------ joining

    def join(self, member: MemberCluster, cluster_name: str, timeout_s: float = JOIN_TIMEOUT_S) -> Agent:
        """Make ``member`` the ManagedCluster ``cluster_name`` of the hub.

        On the member: the spoke CRDs (AppliedManifestWork, ClusterClaim) and the
        agent's component namespace. Then the agent starts (its kubeconfig the member's
        admin one; the bootstrap kubeconfig a copy of the hub's admin one: a test seam)
        and creates the ManagedCluster and a CSR on the hub. The harness then does what
        a hub admin does (as OCM's integration tests): sets ``hubAcceptsClient: true``
        and ``leaseDurationSeconds: 1``, approves the CSR and signs it with the hub's
        CA. Returns once the cluster is accepted, joined and Available, with the hub's
        namespace ``cluster_name`` made.
        """
        if cluster_name in self.agents:
            raise RuntimeError(f"{cluster_name} has joined already")
        install_crds(member.kubectl, self.build.spoke_crds)
        member.kubectl.apply_obj({"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": self.agent_namespace}})
        workdir = self.workdir / cluster_name
        hub_kubeconfig_dir = workdir / "hub-kubeconfig"
        hub_kubeconfig_dir.mkdir(parents=True, exist_ok=True)
        args = [
            f"--kubeconfig={member.kubeconfig}",
            f"--bootstrap-kubeconfig={self.bootstrap_kubeconfig}",
            f"--cluster-name={cluster_name}",
            f"--hub-kubeconfig-dir={hub_kubeconfig_dir}",
            f"--hub-kubeconfig-secret=hub-kubeconfig-{cluster_name}",
            # the work agent reads the hub kubeconfig from this path (default /spoke/...)
            f"--workload-source-config={hub_kubeconfig_dir / 'kubeconfig'}",
            f"--spoke-external-server-urls={member.server}",
            f"--namespace={self.agent_namespace}",
            "--disable-leader-election",
            f"--status-sync-interval={STATUS_SYNC_INTERVAL}",
            f"--cluster-healthcheck-period={HEALTHCHECK_PERIOD}",
        ]
        agent = Agent(cluster_name, member, OcmProcess("agent", self.build.binary, "agent", args, workdir),
                      hub_kubeconfig_dir)
        self.agents[cluster_name] = agent
        started = time.monotonic()
        agent.process.start()
        self._wait_joined(agent, started + timeout_s)
        agent.join_seconds = time.monotonic() - started
        return agent

    def join_all(self, config: pytest.Config, members: dict[str, MemberCluster]) -> None:
        """Join ``{cluster name: member}`` in parallel; say how long each took."""
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(1, len(members))) as pool:
            futures = {name: pool.submit(self.join, member, name) for name, member in members.items()}
        for name, future in futures.items():
            error = future.exception()
            if error is not None:
                log = self.agent_log(name, 60) if name in self.agents else ""
                pytest.fail(f"joining {name} to the OCM hub failed: {error}\n{log}", pytrace=False)
        say(config, "meshplane e2e: OCM joined " + ", ".join(
            f"{name} ({self.agents[name].join_seconds:.1f}s)" for name in members)
            + f", all in {time.monotonic() - started:.1f}s")

    def _wait_joined(self, agent: Agent, deadline: float) -> None:
        """Until ``agent``'s cluster is accepted, joined and Available: accept it, and
        approve (and sign) each new CSR of it."""
        name = agent.cluster_name
        last: Any = None
        while True:
            if not agent.process.running:
                raise RuntimeError(f"the agent of {name} exited with code "
                                   f"{agent.process.process.returncode if agent.process.process else None}\n"
                                   f"{agent.process.log_tail()}")
            cluster = self.kubectl.json("get", "managedclusters", "--field-selector", f"metadata.name={name}")["items"]
            if cluster:
                mc = cluster[0]
                last = {"spec": mc.get("spec"), "conditions": (mc.get("status") or {}).get("conditions")}
                spec = mc.get("spec") or {}
                if not spec.get("hubAcceptsClient") or spec.get("leaseDurationSeconds") != LEASE_DURATION_S:
                    self.kubectl("patch", "managedcluster", name, "--type=merge", "-p", json.dumps(
                        {"spec": {"hubAcceptsClient": True, "leaseDurationSeconds": LEASE_DURATION_S}}))
                for csr in self.csrs(name):
                    if not (csr.get("status") or {}).get("conditions"):
                        self._approve(agent, csr)
                    elif self.ca is not None and condition(csr, "Approved") and not csr["status"].get("certificate"):
                        self._sign(agent, csr)  # approved by someone, never signed
                if all(condition_status(mc, t) == "True" for t in (ACCEPTED, JOINED, AVAILABLE)) and \
                        self.kubectl("get", "namespace", name, "--ignore-not-found", "-o", "name").stdout.strip():
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"ManagedCluster {name} not accepted, joined and Available in time; last "
                                     f"seen: {json.dumps(last, default=str)}\n{agent.process.log_tail()}")
            time.sleep(0.3)

    def _approve(self, agent: Agent, csr: dict[str, Any]) -> None:
        """Approve (``/approval`` subresource) a registration CSR of the agent's cluster
        and, on the built-in hub, sign it."""
        spec, name = csr["spec"], csr["metadata"]["name"]
        if spec.get("signerName") != CLIENT_SIGNER:
            raise AssertionError(f"CSR {name} of {agent.cluster_name} asks for signer {spec.get('signerName')!r}")
        self.kubectl("certificate", "approve", name)
        if self.ca is not None:
            self._sign(agent, self.kubectl.json("get", "csr", name))

    def _sign(self, agent: Agent, csr: dict[str, Any]) -> None:
        """Sign the CSR with the hub CA (``openssl x509 -req``, a client certificate
        valid ``CERT_DAYS``) and write it to ``status.certificate`` (``/status``)."""
        assert self.ca is not None
        ca_cert, ca_key = self.ca
        name = csr["metadata"]["name"]
        where = agent.process.workdir / "csr"
        where.mkdir(parents=True, exist_ok=True)
        request, cert = where / f"{name}.csr.pem", where / f"{name}.crt.pem"
        extensions = where / "client.ext"
        request.write_bytes(base64.b64decode(csr["spec"]["request"]))
        extensions.write_text("basicConstraints=critical,CA:FALSE\n"
                              "keyUsage=critical,digitalSignature,keyEncipherment\n"
                              "extendedKeyUsage=clientAuth\n")
        proc = subprocess.run(
            ["openssl", "x509", "-req", "-in", str(request), "-CA", str(ca_cert), "-CAkey", str(ca_key),
             "-set_serial", "0x" + secrets.token_hex(16), "-days", str(CERT_DAYS), "-sha256",
             "-extfile", str(extensions), "-out", str(cert)],
            capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise AssertionError(f"openssl could not sign CSR {name}: {tail(proc.stderr or proc.stdout)}")
        patch = {"status": {"certificate": base64.b64encode(cert.read_bytes()).decode()}}
        self.kubectl("patch", "csr", name, "--subresource=status", "--type=merge", "-p", json.dumps(patch))
        agent.csrs_signed.append(name)

    # ------------------------------------------------------------------ agent outages

    def stop_agent(self, name: str) -> None:
        """Stop the agent of ``name`` (SIGTERM, then SIGKILL). The hub marks the
        cluster Available=Unknown ~5 s later (its lease is no longer renewed)."""
        self.agents[name].process.stop()

    def start_agent(self, name: str, timeout_s: float = JOIN_TIMEOUT_S) -> None:
        """Start the agent of ``name`` again with the same flags and hub kubeconfig
        dir (the agent also reloads the hub kubeconfig Secret it keeps on the member),
        so it needs no new CSR (one that does appear is approved and signed); returns
        once the cluster is Available=True."""
        agent = self.agents[name]
        started = time.monotonic()
        agent.process.start()
        self._wait_joined(agent, started + timeout_s)
        agent.restart_seconds.append(time.monotonic() - started)

    def ensure_agent(self, name: str) -> None:
        """Whatever a test left: start the agent of ``name`` if it is not running, then
        wait until the cluster is Available=True."""
        agent = self.agents[name]
        if agent.process.running:
            self._wait_joined(agent, time.monotonic() + JOIN_TIMEOUT_S)
        else:
            self.start_agent(name)

    @contextlib.contextmanager
    def agent_down(self, name: str) -> Iterator[Agent]:
        """Stop the agent of ``name`` for the block; on exit, even on an error, start it
        again and wait until the cluster is Available=True."""
        self.stop_agent(name)
        try:
            yield self.agents[name]
        finally:
            self.ensure_agent(name)

    # ------------------------------------------------------------------ ManifestWorks

    def delete_work(self, cluster_name: str, name: str, timeout_s: float = WAIT_TIMEOUT_S) -> None:
        """Delete ManifestWork ``name`` of ``cluster_name`` (missing is fine) and wait
        until it is gone: its agent removed what it applied first (finalizer)."""
        self.kubectl("delete", "manifestwork", name, "-n", cluster_name, "--ignore-not-found", "--wait=false")
        wait_for_value(lambda: self.kubectl("get", "manifestwork", name, "-n", cluster_name, "--ignore-not-found",
                                            "-o", "name").stdout.strip(),
                       lambda out: out == "", timeout_s=timeout_s,
                       what=f"ManifestWork {cluster_name}/{name} to be gone")

    def delete_works_of(self, origin: str, timeout_s: float = WAIT_TIMEOUT_S) -> None:
        """Delete every ManifestWork labelled ``meshplane.io/origin=<origin>`` (one
        operator's) in every joined cluster's namespace and wait until they are gone:
        before a test deletes what they created in a member, or the agent re-creates it."""
        for cluster_name in sorted(self.agents):
            self.kubectl("delete", "manifestwork", "-n", cluster_name, "-l", f"meshplane.io/origin={origin}",
                         "--wait=true", f"--timeout={timeout_s:.0f}s", check=False)


def install_crds(kubectl: Kubectl, directory: Path) -> list[str]:
    """``kubectl apply --server-side`` every CRD of ``directory`` and wait until each
    is Established; returns their names."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise AssertionError(f"no CRDs in {directory}")
    out = kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=meshplane-e2e",
                  *(arg for f in files for arg in ("-f", str(f))), "-o", "name").stdout.split()
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *out)
    return [ref.split("/", 1)[1] for ref in out]


# --------------------------------------------------------------------------- the session's hub


@contextlib.contextmanager
def started_ocm_hub(
    config: pytest.Config,
    build: OcmBuild,
    hub: ControlPlane,
    kubectl_binary: str,
    members: Iterable[tuple[str, MemberCluster]] = (),
) -> Iterator[OcmHub]:
    """Start OCM on ``hub`` in a temp dir and join ``members`` (``(cluster name,
    member)`` pairs); yield the :class:`OcmHub`; at the end stop every process and
    remove the dir (kept with ``MESHPLANE_E2E_KEEP=1``). A process that fails to start
    or a member that fails to join fails the test with the end of its log."""
    root = Path(tempfile.mkdtemp(prefix="meshplane-ocm-"))
    ocm = OcmHub(build, hub, kubectl_binary, root)
    try:
        try:
            ocm.start()
        except (RuntimeError, AssertionError) as exc:
            logs = "\n".join(p.log_tail(30) for p in ocm.processes)
            pytest.fail(f"starting the OCM hub controllers failed: {exc}\n{logs}", pytrace=False)
        say(config, f"\nmeshplane e2e: OCM {build.version} hub controllers up in {ocm.startup_seconds:.1f}s "
                    f"(logs: {root})")
        ocm.join_all(config, dict(members))
        yield ocm
    finally:
        with contextlib.suppress(Exception):
            ocm.close()
        if os.environ.get("MESHPLANE_E2E_KEEP") == "1":
            say(config, f"meshplane e2e: kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
