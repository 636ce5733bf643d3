"""Helpers for the operator's end-to-end tests: a real ``meshplane-operator`` process
(:class:`OperatorProcess`), the RBAC rules it runs with, fixtures that start one, and
waiting on the API server. Used by tests/e2e/test_operator*.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.e2e_support import Kubectl, unique_name

OPERATOR = Path(sys.executable).with_name("meshplane-operator")
GROUP = "meshplane.io"
# What the operator needs, and nothing more: read the mesh, write its statuses, record
# Events, hold its Lease. (The chart's ClusterRole and Role will ship exactly these.)
CLUSTER_RULES = [
    {"apiGroups": [GROUP], "resources": ["aifactories", "edgefleets", "meshworkloads"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": [GROUP], "resources": ["aifactories/status", "edgefleets/status", "meshworkloads/status"],
     "verbs": ["patch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]
LEASE_RULES = [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}]
EXAMPLE_WORKLOADS = {
    "research/frontier-pretrain", "gov-eu/eu-citizen-assistant", "serving/chat-us-west",
    "batch/dashcam-clip-indexing", "research/korean-llm-finetune", "serving/hindi-assistant",
    "serving/factory-floor-vision", "serving/japan-medical-llm",
}
TIMEOUT_S = 180.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, condition: Callable[[], Any], timeout_s: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)


class OperatorProcess:
    """One ``meshplane-operator`` process; ``kill()`` is SIGKILL, ``stop()`` SIGTERM."""

    def __init__(self, kubeconfig: Path, namespace: str, log_path: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "MESHPLANE_NAMESPACE": namespace,
            "MESHPLANE_HEALTH_PORT": str(self.port),
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
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture(scope="module")
def operator_env(
    kubectl: Kubectl, installed_crds: Any, example_objects: Any, service_account_kubeconfig: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, str, Path]:
    namespace = unique_name("meshplane-op")
    kubeconfig = service_account_kubeconfig(
        "meshplane-operator", namespace=namespace, rules=LEASE_RULES, cluster_rules=CLUSTER_RULES
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


def resource_versions(kubectl: Kubectl) -> dict[str, str]:
    versions = {}
    for plural in ("aifactories", "edgefleets", "meshworkloads"):
        for item in kubectl.json("get", plural, "-A")["items"]:
            meta = item["metadata"]
            versions[f"{plural}/{meta.get('namespace', '')}/{meta['name']}"] = meta["resourceVersion"]
    return versions




def patch_spec(kubectl: Kubectl, ref: str, spec: dict[str, Any]) -> None:
    kubectl("patch", ref, "--type=merge", "-p", json.dumps({"spec": spec}))
