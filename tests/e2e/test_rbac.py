"""RBAC is enforced, and the ServiceAccount kubeconfig helper gives a restricted user
(the operator will be tested the same way with its Helm chart's ClusterRole).

What a test here creates lives in a namespace of its own, deleted and waited for before
the test ends: a MeshWorkload left behind would be solved by the next test's operator,
which is cluster-wide, with the examples."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml

from tests.e2e.e2e_support import Kubectl, KubectlError, owned_namespace, unique_name

pytestmark = pytest.mark.e2e

READ_MESH = [{"apiGroups": ["meshplane.io"], "resources": ["aifactories", "edgefleets", "meshworkloads"],
              "verbs": ["get", "list", "watch"]}]
WRITE_STATUS = [{"apiGroups": ["meshplane.io"], "resources": ["meshworkloads/status"],
                 "verbs": ["get", "patch", "update"]}]


@pytest.fixture
def own_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace for one test, gone (with all it holds) when the test ends."""
    with owned_namespace(kubectl, "e2e-rbac") as name:
        yield name


def test_admin_is_system_masters(kubectl: Kubectl, control_plane):
    if control_plane.external:
        pytest.skip("an external cluster's admin identity is its own business")
    who = kubectl.json("auth", "whoami")
    assert "system:masters" in who["status"]["userInfo"]["groups"]


def test_a_service_account_gets_only_what_it_is_granted(
    kubectl: Kubectl, service_account_kubeconfig, installed_crds, example_objects, own_namespace
):
    name = unique_name("reader")
    path = service_account_kubeconfig(name, namespace=own_namespace, cluster_rules=READ_MESH + WRITE_STATUS)
    sa = kubectl.with_kubeconfig(path)

    who = sa.json("auth", "whoami")
    assert who["status"]["userInfo"]["username"] == f"system:serviceaccount:{own_namespace}:{name}"

    def can(*args: str) -> bool:
        return sa("auth", "can-i", *args, check=False).stdout.strip() == "yes"

    assert can("list", "meshworkloads.meshplane.io", "-A")
    assert can("patch", "meshworkloads.meshplane.io", "--subresource=status", "-n", "research")
    assert not can("create", "meshworkloads.meshplane.io", "-n", "research")
    assert not can("delete", "aifactories.meshplane.io")
    assert not can("list", "secrets", "-A")

    # The answers of can-i hold for real requests.
    names = sa("get", "aifactories.meshplane.io", "-o", "name").stdout.split()
    assert names, "the reader should see the example factories"
    with pytest.raises(KubectlError) as err:
        sa("delete", names[0], "--dry-run=server")
    assert "forbidden" in err.value.stderr.lower()

    workload = next(d for d in example_objects if d["kind"] == "MeshWorkload")
    probe = {**workload, "metadata": {"name": unique_name("rbac-probe"), "namespace": own_namespace}}
    with pytest.raises(KubectlError) as err:
        sa("create", "-f", "-", input=yaml.safe_dump(probe))
    assert "forbidden" in err.value.stderr.lower()

    # What the operator does: write status only.
    kubectl("create", "-f", "-", input=yaml.safe_dump(probe))
    ref = [f"meshworkload.meshplane.io/{probe['metadata']['name']}", "-n", own_namespace]
    sa("patch", *ref, "--subresource=status", "--type=merge", "-p", json.dumps({"status": {"phase": "Pending"}}))
    assert kubectl.json("get", *ref)["status"]["phase"] == "Pending"


def test_requests_with_a_forged_token_are_refused(kubectl: Kubectl, tmp_path, control_plane):
    config = kubectl.json("config", "view", "--raw", "--minify")
    config["users"][0]["user"] = {"token": "not-a-real-token"}
    path = tmp_path / "forged.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    proc = kubectl.with_kubeconfig(path)("get", "namespaces", check=False)
    assert proc.returncode != 0
    assert "unauthorized" in proc.stderr.lower(), proc.stderr
