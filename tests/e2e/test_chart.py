"""The Helm chart, with the real helm (built from Go modules by tests/tools/build.sh).

`helm lint`, the values schema, and `helm install` / `uninstall` against the API
server of the suite: the chart's ClusterRoles are aggregated into the built-in
view/edit roles, so that a namespace editor can create Workloads but not sites, and
uninstalling keeps the CRDs (and so everyone's data). That the chart's crds/ are the
generated files is checked by tests/controller/test_crdgen.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.e2e_support import REPO_ROOT, Kubectl, tail, unique_name

pytestmark = pytest.mark.e2e

CHART = REPO_ROOT / "helm" / "meshplane"
TOOLS = REPO_ROOT / "tests" / "tools"


@pytest.fixture(scope="session")
def helm(kubeconfig: str, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """The real helm, run against the suite's cluster with its own config/cache dirs."""
    build = subprocess.run(["bash", str(TOOLS / "build.sh")], capture_output=True, text=True, check=False)
    if build.returncode != 0:
        pytest.fail(f"building helm from Go modules failed:\n{tail(build.stderr)}", pytrace=False)
    home = tmp_path_factory.mktemp("helm-home")
    for variable in ("HELM_CONFIG_HOME", "HELM_CACHE_HOME", "HELM_DATA_HOME"):
        os.environ[variable] = str(home / variable.lower())
    return Kubectl(str(Path(build.stdout.strip().splitlines()[-1]) / "helm"), kubeconfig)


@pytest.fixture
def release(helm: Kubectl, kubectl: Kubectl, installed_crds) -> Iterator[str]:
    """A release of the chart in a namespace of its own, uninstalled afterwards."""
    name, namespace = unique_name("mp"), unique_name("meshplane-system")
    installed = helm("install", name, str(CHART), "--namespace", namespace, "--create-namespace", "--wait")
    assert "kubectl get meshplane -A" in installed.stdout  # NOTES.txt: next steps
    yield name, namespace
    helm("uninstall", name, "--namespace", namespace, check=False)
    kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false", check=False)


def test_chart_lints_strictly(helm: Kubectl):
    result = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout


def test_values_schema_refuses_a_typo(helm: Kubectl):
    result = helm("template", "x", str(CHART), "--set", "rbac.aggregateClusterRole=true", check=False)
    assert result.returncode != 0
    assert "aggregateClusterRole" in result.stderr


def test_clusterroles_can_be_turned_off(helm: Kubectl):
    rendered = helm("template", "x", str(CHART), "--set", "rbac.aggregateClusterRoles=false").stdout
    assert [d for d in yaml.safe_load_all(rendered) if d] == []


def test_install_aggregates_roles_for_namespace_editors(helm, kubectl: Kubectl, release, scratch_namespace):
    _, namespace = release
    labels = kubectl.json("get", "clusterrole", "meshplane-edit")["metadata"]["labels"]
    assert labels["app.kubernetes.io/instance"] == release[0]

    # The aggregation controller folds our rules into the built-in edit role.
    def edit_has_workloads() -> bool:
        rules = kubectl.json("get", "clusterrole", "edit")["rules"]
        return any("meshplane.io" in r.get("apiGroups", []) and "meshworkloads" in r.get("resources", [])
                   and "create" in r.get("verbs", []) for r in rules)

    kubectl("wait", "--for=create", "clusterrole/edit", "--timeout=10s")
    for _ in range(50):
        if edit_has_workloads():
            break
        time.sleep(0.2)
    assert edit_has_workloads(), "the built-in edit ClusterRole did not aggregate meshplane-edit"

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

    status = json.loads(helm("status", release[0], "--namespace", namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"


def test_uninstall_keeps_the_crds(helm: Kubectl, kubectl: Kubectl, installed_crds):
    name, namespace = unique_name("mp"), unique_name("meshplane-system")
    helm("install", name, str(CHART), "--namespace", namespace, "--create-namespace")
    helm("uninstall", name, "--namespace", namespace)
    assert kubectl("get", "clusterrole", "meshplane-view", "--ignore-not-found", "-o", "name").stdout.strip() == ""
    for crd in ("aifactories", "edgefleets", "meshworkloads"):
        kubectl("get", "crd", f"{crd}.meshplane.io")
    kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false", check=False)
