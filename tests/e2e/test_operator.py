"""The operator against the real API server: ``meshplane-operator`` (the console script,
a real process) authenticated as a ServiceAccount with only the rules of
tests/e2e/operator_support.py (RBAC enforced), watching the example mesh.

- every example MeshWorkload reaches Placed or Unschedulable for its current
  generation, with its reason, and Events say so;
- killed (SIGKILL) and restarted, it takes the Lease again and writes nothing: the
  unchanged mesh keeps every resourceVersion;
- a cordon preempts the work that can run nowhere else, naming the cordon, and
  lifting it lets the work back;
- ``/metrics`` describes the mesh it solved (read with prometheus-client's parser).
"""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.e2e_support import Kubectl
from tests.e2e.operator_support import (
    OperatorProcess,
    patch_spec,
    resource_versions,
    settled,
    wait_for,
    workloads,
)

pytestmark = pytest.mark.e2e


def test_every_example_workload_is_placed_or_says_why(kubectl: Kubectl, fresh_operator: OperatorProcess) -> None:
    current = wait_for("every example workload to be solved", lambda: settled(kubectl))
    pretrain = current["research/frontier-pretrain"]["status"]
    assert pretrain["phase"] == "Placed" and pretrain["sites"] == "us-memphis-1"
    japan = current["serving/japan-medical-llm"]["status"]
    assert japan["phase"] == "Unschedulable" and japan["message"].startswith("0/8 sites fit")
    assert japan["conditions"][0]["reason"] == "Unschedulable"
    events = kubectl.json("get", "events", "-n", "research", "--field-selector",
                          "involvedObject.name=frontier-pretrain")["items"]
    assert any(e["reason"] in ("Placed", "Rescheduled", "Moved") for e in events), events
    table = kubectl("get", "mwl", "-n", "serving", "--no-headers").stdout
    assert "Unschedulable" in table and "Placed" in table


def test_metrics_describe_the_solved_mesh(kubectl: Kubectl, fresh_operator: OperatorProcess) -> None:
    current = wait_for("every example workload to be solved", lambda: settled(kubectl))
    with urllib.request.urlopen(f"http://127.0.0.1:{fresh_operator.port}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(name: str, **labels: str) -> float:
        return sum(s.value for s in samples if s.name == name and labels.items() <= s.labels.items())

    assert value("meshplane_leader") == 1
    phases = {p: sum(1 for w in current.values() if w["status"]["phase"] == p) for p in ("Placed", "Unschedulable")}
    assert value("meshplane_workloads", phase="Placed") == phases["Placed"] > 0
    assert value("meshplane_workloads", phase="Unschedulable") == phases["Unschedulable"] > 0
    memphis = kubectl.json("get", "aifactory", "us-memphis-1")["status"]["power"]
    assert value("meshplane_site_power_allocated_watts", site="us-memphis-1", power="firm") == (
        pytest.approx(memphis["firmAllocatedMW"] * 1e6, rel=1e-3))
    assert value("meshplane_solves_total") >= 1 and value("meshplane_api_errors_total") == 0
    # an earlier operator may have written every status already: then this one wrote none
    assert "meshplane_status_writes_total" in text


def test_a_killed_operator_restarts_and_writes_nothing(kubectl: Kubectl, operator_env: tuple[Path, str, Path]) -> None:
    kubeconfig, namespace, logs = operator_env
    first = OperatorProcess(kubeconfig, namespace, logs / "killed.log")
    try:
        wait_for("the operator to be ready", first.ready)
        wait_for("every example workload to be solved", lambda: settled(kubectl))
        time.sleep(3)  # let the last writes of the first solves land
        before = resource_versions(kubectl)
    finally:
        first.kill()
        first.stop()
    second = OperatorProcess(kubeconfig, namespace, logs / "operator-2.log")
    try:
        wait_for("the restarted operator to take the Lease and solve", second.ready)
        time.sleep(3)  # a few debounce periods: any write would have happened
        after = resource_versions(kubectl)
        changed = sorted(k for k in before if after.get(k) != before[k])
        assert changed == [], f"the restarted operator rewrote an unchanged mesh: {changed}\n{second.tail()}"
    finally:
        second.stop()


def test_cordon_preempts_and_uncordon_lets_it_back(kubectl: Kubectl, fresh_operator: OperatorProcess) -> None:
    """Korean fine-tuning may run in KR only: cordoning kr-sejong-1 preempts it, naming
    the cordon; uncordoning places it again."""
    korean = "research/korean-llm-finetune"
    wait_for("every example workload to be solved", lambda: settled(kubectl))
    patch_spec(kubectl, "aifactory/kr-sejong-1", {"cordoned": True})
    try:
        status = wait_for(
            "the fine-tune to be preempted",
            lambda: (s := workloads(kubectl)[korean].get("status", {})).get("phase") == "Preempted" and s,
        )
        assert "kr-sejong-1 is cordoned" in status["message"], status
        conditions = {c["type"]: c for c in kubectl.json("get", "aifactory", "kr-sejong-1")["status"]["conditions"]}
        assert conditions["Cordoned"]["status"] == "True"
    finally:
        patch_spec(kubectl, "aifactory/kr-sejong-1", {"cordoned": False})
    wait_for("the fine-tune to be placed again",
             lambda: workloads(kubectl)[korean].get("status", {}).get("phase") == "Placed")
    events = kubectl.json("get", "events", "-n", "research", "--field-selector",
                          "involvedObject.name=korean-llm-finetune")["items"]
    reasons = {e["reason"] for e in events}
    assert {"Preempted", "Rescheduled"} <= reasons, reasons


def test_a_template_becomes_a_deployment_on_its_site(
    kubectl: Kubectl, fresh_operator: OperatorProcess, scratch_namespace: str
) -> None:
    """spec.template: one Deployment per assignment, pinned to the site by nodeSelector,
    owned by the workload, gone when the workload is."""
    workload = {
        "apiVersion": "meshplane.io/v1alpha1", "kind": "MeshWorkload",
        "metadata": {"name": "vision-pods", "namespace": scratch_namespace},
        "spec": {
            "type": "inference", "accelerators": 16, "devicesPerReplica": 8,
            "sovereignty": {"allowedCountries": ["FR"]},
            "template": {"spec": {"containers": [{"name": "server", "image": "registry.invalid/vision:1"}]}},
        },
    }
    kubectl.apply_obj(workload)
    status = wait_for(
        "the workload to be placed",
        lambda: (s := kubectl.json("get", "mwl", "vision-pods", "-n", scratch_namespace).get("status", {}))
        .get("phase") == "Placed" and s,
    )
    assert status["sites"] == "fr-grenoble-1"
    deployment = wait_for(
        "its Deployment",
        lambda: kubectl.json("get", "deployments", "-n", scratch_namespace)["items"],
    )[0]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"meshplane.io/site": "fr-grenoble-1"}
    [owner] = deployment["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("MeshWorkload", "vision-pods", True)
    kubectl("delete", "mwl", "vision-pods", "-n", scratch_namespace)
    wait_for("the Deployment to go", lambda: not kubectl.json("get", "deployments", "-n", scratch_namespace)["items"])
