"""The Helm chart installed with the real helm into the suite's API server.

- into a namespace enforcing Pod Security Standards "restricted": the install succeeds
  without a warning, the operator's pod template is admitted there (created as a Pod,
  server-side dry run, which runs the PodSecurity admission; the control plane has no
  ReplicaSet controller or kubelet, so no pod of the Deployment is ever created), and
  the same pod made less strict is refused, so the check can fail;
- ``helm upgrade`` changes the Deployment, ``helm uninstall`` removes the release's
  objects and keeps the CRDs (and so everyone's data);
- two releases of the same name in two namespaces install side by side;
- the aggregated ClusterRoles let a namespace editor create Workloads but not sites;
- the operator, run as a local process (no kubelet here) with the token of the
  ServiceAccount the chart created and the env of the chart's Deployment, solves the
  example mesh and materialises a workload's template: the chart's RBAC is
  sufficient; ``kubectl auth can-i`` shows what it may not do.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.e2e_support import Kubectl, unique_name
from tests.e2e.operator_support import (
    CHART,
    EXAMPLE_WORKLOADS,
    OperatorProcess,
    deployment_env,
    helm_for,
    settled,
    token_kubeconfig,
    wait_for,
    workloads,
)

pytestmark = pytest.mark.e2e

Release = tuple[str, str]  # (name, namespace)
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted"}


@pytest.fixture(scope="session")
def helm(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return helm_for(kubeconfig, tmp_path_factory)


@pytest.fixture
def releases(helm: Kubectl, kubectl: Kubectl, installed_crds: Any) -> Iterator[Callable[..., tuple[Release, str]]]:
    """Factory: ``install(*helm_args, name=None, labels=None)`` installs the chart as a
    new release in a new namespace (labelled ``labels``) and returns ((name, namespace),
    helm's stderr). Every release is uninstalled afterwards."""
    made: list[Release] = []

    def install(*args: str, name: str | None = None, labels: dict[str, str] | None = None) -> tuple[Release, str]:
        release = (name or unique_name("mp"), unique_name("meshplane-system"))
        kubectl.apply_obj({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": release[1], "labels": labels or {}}})
        made.append(release)
        installed = helm("install", release[0], str(CHART), "--namespace", release[1], *args)
        assert "kubectl get meshplane -A" in installed.stdout  # NOTES.txt: next steps
        assert "kubectl apply --server-side -f meshplane/crds/" in installed.stdout
        return release, installed.stderr

    yield install
    for name, namespace in made:
        helm("uninstall", name, "--namespace", namespace, check=False)
        kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false", check=False)


def manifest(helm: Kubectl, release: Release) -> list[dict[str, Any]]:
    """The objects of the release as helm stored them."""
    out = helm("get", "manifest", release[0], "--namespace", release[1]).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def the(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [obj] = [o for o in objects if o["kind"] == kind]
    return obj


def status(helm: Kubectl, release: Release) -> dict[str, Any]:
    return dict(json.loads(helm("status", release[0], "--namespace", release[1], "-o", "json").stdout))


def as_pod(deployment: dict[str, Any], namespace: str) -> dict[str, Any]:
    template = deployment["spec"]["template"]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": unique_name("operator-pod"), "namespace": namespace, **template["metadata"]},
            "spec": copy.deepcopy(template["spec"])}


# --------------------------------------------------------------------------- install, upgrade, uninstall


def test_install_under_restricted_pod_security_upgrade_and_uninstall(
    helm: Kubectl, kubectl: Kubectl, releases: Callable[..., tuple[Release, str]]
):
    release, stderr = releases(labels=RESTRICTED)
    name, namespace = release
    assert "violate PodSecurity" not in stderr and "would violate" not in stderr, stderr
    assert status(helm, release)["info"]["status"] == "deployed"
    deployment = kubectl.json("get", "deployment", "-n", namespace, "-l", f"app.kubernetes.io/instance={name}")
    [deployment] = deployment["items"]
    assert deployment["spec"]["replicas"] == 2

    # The pods of this Deployment would be admitted: PodSecurity judges the Pod itself.
    pod = as_pod(deployment, namespace)
    admitted = kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(pod), check=False)
    assert admitted.returncode == 0 and "Warning" not in admitted.stderr, admitted.stderr
    # ... and a pod less strict would not: the check above can fail.
    lax = copy.deepcopy(pod)
    lax["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    del lax["spec"]["containers"][0]["securityContext"]["capabilities"]
    refused = kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(lax), check=False)
    assert refused.returncode != 0 and 'violates PodSecurity "restricted' in refused.stderr, refused.stderr

    helm("upgrade", name, str(CHART), "--namespace", namespace, "--reuse-values", "--set", "replicaCount=3")
    assert status(helm, release)["version"] == 2
    upgraded = kubectl.json("get", "deployment", deployment["metadata"]["name"], "-n", namespace)
    assert upgraded["spec"]["replicas"] == 3

    objects = manifest(helm, release)
    helm("uninstall", name, "--namespace", namespace)
    for obj in objects:
        args = ["get", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found", "-o", "name"]
        args += ["-n", namespace] if obj["metadata"].get("namespace") else []
        assert kubectl(*args).stdout.strip() == "", f"{obj['kind']} {obj['metadata']['name']} outlived the release"
    for crd in ("aifactories", "edgefleets", "meshworkloads"):
        kubectl("get", "crd", f"{crd}.meshplane.io")  # kept: deleting a CRD deletes every object of it


def test_two_releases_of_one_name_in_two_namespaces_coexist(
    helm: Kubectl, kubectl: Kubectl, releases: Callable[..., tuple[Release, str]]
):
    name = unique_name("mp")
    first, _ = releases(name=name)
    second, _ = releases(name=name)
    for release in (first, second):
        assert status(helm, release)["info"]["status"] == "deployed"
    roles = {r["metadata"]["name"] for r in kubectl.json(
        "get", "clusterroles", "-l", f"app.kubernetes.io/instance={name}")["items"]}
    assert len(roles) == 6  # operator, -view and -edit of each release
    for release in (first, second):
        binding = kubectl.json("get", "clusterrolebinding", f"{release[1]}-{name}-meshplane-operator")
        assert binding["subjects"][0]["namespace"] == release[1]


def test_install_aggregates_roles_for_namespace_editors(
    kubectl: Kubectl, releases: Callable[..., tuple[Release, str]], scratch_namespace: str
):
    (name, namespace), _ = releases()
    labels = kubectl.json("get", "clusterrole", f"{namespace}-{name}-meshplane-edit")["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == name

    # The aggregation controller folds our rules into the built-in edit role.
    def edit_has_workloads() -> bool:
        rules = kubectl.json("get", "clusterrole", "edit")["rules"]
        return any("meshplane.io" in r.get("apiGroups", []) and "meshworkloads" in r.get("resources", [])
                   and "create" in r.get("verbs", []) for r in rules)

    kubectl("wait", "--for=create", "clusterrole/edit", "--timeout=10s")
    wait_for("the built-in edit ClusterRole to aggregate meshplane's", edit_has_workloads, timeout_s=10)

    user = f"system:serviceaccount:{scratch_namespace}:editor"
    kubectl("create", "serviceaccount", "editor", "-n", scratch_namespace)
    kubectl("create", "rolebinding", "editor", "--clusterrole=edit", f"--serviceaccount={scratch_namespace}:editor",
            "-n", scratch_namespace)

    def can(*args: str) -> bool:
        return kubectl("auth", "can-i", *args, "--as", user, check=False).stdout.strip() == "yes"

    assert can("create", "meshworkloads.meshplane.io", "-n", scratch_namespace)
    assert can("list", "meshworkloads.meshplane.io", "-n", scratch_namespace)
    assert not can("patch", "meshworkloads.meshplane.io", "--subresource=status", "-n", scratch_namespace)
    assert not can("create", "aifactories.meshplane.io")
    assert not can("create", "meshworkloads.meshplane.io", "-n", namespace)  # only where bound


# --------------------------------------------------------------------------- the operator with the chart's RBAC


TEMPLATED = {
    "type": "inference", "accelerators": 16, "devicesPerReplica": 8,
    "sovereignty": {"allowedCountries": ["FR"]},
    "template": {"spec": {"containers": [{"name": "server", "image": "registry.invalid/vision:1"}]}},
}


def test_the_operator_runs_with_the_charts_service_account(
    helm: Kubectl, kubectl: Kubectl, example_objects: Any, releases: Callable[..., tuple[Release, str]],
    scratch_namespace: str, tmp_path: Path,
):
    # Materialisation on, explicitly: the broadest RBAC the chart ships.
    (name, namespace), _ = releases("--set", "materialise.enabled=true")
    objects = manifest(helm, (name, namespace))
    deployment = the(objects, "Deployment")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    kubeconfig = token_kubeconfig(kubectl, account, namespace, tmp_path / "operator.kubeconfig")
    as_operator = kubectl.with_kubeconfig(kubeconfig)
    pod_name = f"{deployment['metadata']['name']}-5d8f7c9b4-x2x7q"
    env = deployment_env(deployment, pod_name)
    assert env["MESHPLANE_NAMESPACE"] == namespace and env["MESHPLANE_MATERIALISE"] == "true"
    env.pop("MESHPLANE_HEALTH_PORT")  # a local process takes a free port instead of 8081

    # Least privilege, as the API server's authorizer sees it (RBAC caches settle first).
    def can(*args: str) -> bool:
        return as_operator("auth", "can-i", *args, check=False).stdout.strip() == "yes"

    wait_for("the chart's RBAC to be in force", lambda: can("watch", "meshworkloads.meshplane.io", "-A"), 30)
    assert can("patch", "meshworkloads.meshplane.io", "--subresource=status", "-n", "research")
    assert can("create", "deployments.apps", "-n", scratch_namespace)
    assert can("update", f"lease/{env['MESHPLANE_LEASE_NAME']}", "-n", namespace)
    assert can("get", "secrets", "-n", namespace)  # MemberClusters' kubeconfigs: its own namespace only
    for denied in (("patch", "meshworkloads.meshplane.io", "-n", "research"),  # the spec is the user's
                   ("get", "secrets", "-n", scratch_namespace), ("list", "secrets", "-n", namespace),
                   ("create", "pods", "-n", scratch_namespace),
                   ("update", "deployments.apps", "-n", scratch_namespace),
                   ("update", "lease/some-other-controller", "-n", namespace),
                   ("create", "leases.coordination.k8s.io", "-n", "default"),
                   ("delete", "aifactories.meshplane.io")):
        assert not can(*denied), f"the operator may {' '.join(denied)}"

    # Drop the example statuses written earlier in the session, so that every status
    # seen below is this operator's.
    for key in EXAMPLE_WORKLOADS:
        ns, workload = key.split("/")
        kubectl("patch", "mwl", workload, "-n", ns, "--subresource=status", "--type=merge", "-p", '{"status": null}')
    assert all(not w.get("status") for w in workloads(kubectl).values())

    kubectl.apply_obj({"apiVersion": "meshplane.io/v1alpha1", "kind": "MeshWorkload",
                       "metadata": {"name": "vision-pods", "namespace": scratch_namespace}, "spec": TEMPLATED})
    process = OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", extra_env=env)
    try:
        wait_for("the operator to be ready", process.ready)
        wait_for("every example workload to be solved", lambda: settled(kubectl))
        lease = kubectl.json("get", "lease", env["MESHPLANE_LEASE_NAME"], "-n", namespace)
        assert lease["spec"]["holderIdentity"].startswith(f"{pod_name}-")
        deployments = wait_for("the workload's Deployment",
                               lambda: kubectl.json("get", "deployments", "-n", scratch_namespace)["items"])
        assert deployments[0]["metadata"]["ownerReferences"][0]["name"] == "vision-pods"
        events = kubectl.json("get", "events", "-n", scratch_namespace, "--field-selector",
                              "involvedObject.name=vision-pods")["items"]
        assert events, "no Event about the workload"
    finally:
        process.stop()
    log = (tmp_path / "operator.log").read_text(errors="replace")
    assert "Forbidden" not in log and " 403" not in log, process.tail()
    assert '"logger": "meshplane.operator' in log  # logFormat json, as the chart sets it
