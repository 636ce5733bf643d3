"""The operator's HTTP API against a real kube-apiserver: bearer tokens checked by
TokenReview and SubjectAccessReview (``controller.operator.reviews``).

The operator runs as a ServiceAccount with the chart's rules plus the two review rules
the API needs (``create`` on tokenreviews and subjectaccessreviews), and callers get
real tokens from ``kubectl create token``: no token -> 401, a token of a ServiceAccount
without ``list meshworkloads`` -> 403, one with it -> 200 and the mesh the operator
solved; a forged token -> 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.e2e_support import Kubectl, unique_name
from tests.e2e.operator_support import OperatorProcess, chart_rules, free_port, settled, wait_for

pytestmark = pytest.mark.e2e

REVIEW_RULES = [
    {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
]
READ_WORKLOADS = [{"apiGroups": ["meshplane.io"], "resources": ["meshworkloads"], "verbs": ["list"]}]


def _have(rules: list[dict[str, Any]], wanted: dict[str, Any]) -> bool:
    return any(set(wanted["apiGroups"]) <= set(r.get("apiGroups", [])) and set(wanted["resources"]) <= set(r.get(
        "resources", [])) and set(wanted["verbs"]) <= set(r.get("verbs", [])) for r in rules)


@pytest.fixture(scope="module")
def api_operator(
    kubectl: Kubectl, installed_crds: Any, example_objects: Any, service_account_kubeconfig: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, str]]:
    """(base URL of the operator's API, its namespace), the examples solved."""
    namespace = unique_name("meshplane-api")
    cluster_rules, lease_rules = chart_rules()  # exactly the chart's, the reviews included
    assert all(_have(cluster_rules, r) for r in REVIEW_RULES), cluster_rules
    kubeconfig = service_account_kubeconfig(
        "meshplane-operator", namespace=namespace, rules=lease_rules, cluster_rules=cluster_rules
    )
    port = free_port()
    logs: Path = tmp_path_factory.mktemp("api-operator")
    process = OperatorProcess(kubeconfig, namespace, logs / "operator.log", extra_env={
        "MESHPLANE_HTTP_PORT": str(port), "MESHPLANE_MATERIALISE": "false",
    })
    try:
        wait_for("the operator to be ready", process.ready)
        wait_for("the examples to be solved", lambda: settled(kubectl))
        yield f"http://127.0.0.1:{port}", namespace
    finally:
        process.stop()


def _token(kubectl: Kubectl, service_account_kubeconfig: Any, namespace: str, rules: list[dict[str, Any]] | None) -> str:
    name = unique_name("reader")
    service_account_kubeconfig(name, namespace=namespace, cluster_rules=rules)
    return kubectl("create", "token", name, "-n", namespace, "--duration", "1h").stdout.strip()


def test_no_token_is_401(api_operator: tuple[str, str]):
    base, _ = api_operator
    response = httpx.get(f"{base}/api/v1/workloads", timeout=10)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{base}/api/v1/workloads", headers={"Authorization": "Bearer forged.token.value"},
                     timeout=10).status_code == 401


def test_a_service_account_without_list_meshworkloads_is_403(
    api_operator: tuple[str, str], kubectl: Kubectl, service_account_kubeconfig: Any
):
    base, namespace = api_operator
    token = _token(kubectl, service_account_kubeconfig, namespace, rules=None)
    response = httpx.get(f"{base}/api/v1/workloads", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 403, response.text
    assert f"system:serviceaccount:{namespace}:" in response.json()["detail"]


def test_a_service_account_with_list_meshworkloads_reads_the_mesh(
    api_operator: tuple[str, str], kubectl: Kubectl, service_account_kubeconfig: Any
):
    base, namespace = api_operator
    token = _token(kubectl, service_account_kubeconfig, namespace, rules=READ_WORKLOADS)
    headers = {"Authorization": f"Bearer {token}"}
    response = httpx.get(f"{base}/api/v1/workloads", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["version"] >= 1
    solved = settled(kubectl)
    assert solved is not None
    phases = {f"{i['namespace']}/{i['name']}": i["phase"] for i in body["items"]}
    # what the API shows is what the operator wrote into the statuses
    assert {k: phases[k] for k in solved} == {k: v["status"]["phase"] for k, v in solved.items()}
    # the version never goes back (a solve may have run between the two reads)
    assert httpx.get(f"{base}/api/v1/version", headers=headers, timeout=10).json()["version"] >= body["version"]
    assert httpx.get(f"{base}/", timeout=10).status_code == 200  # the dashboard's files need no token
