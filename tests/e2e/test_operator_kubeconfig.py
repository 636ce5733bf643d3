"""``MESHPLANE_KUBECONFIG`` drives every client of a real ``meshplane-operator`` process,
kopf's watches included (controller/operator/connection.py):

- started with only ``MESHPLANE_KUBECONFIG`` (no ``KUBECONFIG`` at all), or with
  ``KUBECONFIG`` naming a file that is no kubeconfig, the operator places a workload
  created after it started, then follows a change of its spec. It lists the mesh once
  before it is ready, once more on taking the Lease, and then only every
  ``MESHPLANE_RELIST_EVERY_S``, set far beyond the test: one list reads one version of
  the workload, so seeing both versions takes a watch event; kopf logs no failed login.

The test owns what it creates (a namespace, the workload, an isolated site that no
example workload can use) and waits until they are gone before it ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.e2e_support import Kubectl, delete_and_wait, owned_namespace, unique_name
from tests.e2e.operator_support import (
    GROUP,
    OperatorProcess,
    current_status,
    isolated_factory,
    own_workload,
    wait_for,
)

NEVER_S = "1000000"  # MESHPLANE_RELIST_EVERY_S: no periodic re-list during the test
WATCHED_S = 60.0  # a watch event, one debounce and one solve on a busy machine (the re-list: 300 s)
# what kopf logs (at WARNING and above, the operator's level for kopf) when it cannot log in
LOGIN_FAILURES = ("Authentication has failed", "login' failed", "LoginError", "Ran out of valid credentials")


@pytest.fixture
def own_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace for one test, gone (with all it holds) when the test ends."""
    with owned_namespace(kubectl, "e2e-kubeconfig") as name:
        yield name


def _environment(case: str, tmp_path: Path) -> dict[str, str]:
    """``KUBECONFIG`` for each case (``MESHPLANE_KUBECONFIG`` is set by OperatorProcess)."""
    if case == "only MESHPLANE_KUBECONFIG":
        return {}
    garbage = tmp_path / "garbage.kubeconfig"
    garbage.write_text("this is: [not a kubeconfig\n")
    return {"KUBECONFIG": str(garbage)}


@pytest.mark.parametrize("case", ["only MESHPLANE_KUBECONFIG", "KUBECONFIG names garbage"])
def test_the_watches_use_meshplane_kubeconfig(
    kubectl: Kubectl, operator_env: tuple[Path, str, Path], own_namespace: str, tmp_path: Path, case: str
) -> None:
    kubeconfig, namespace, logs = operator_env
    suffix = unique_name("kc").split("-")[1]
    model, site, name = f"e2e-kc-npu-{suffix}", f"e2e-kc-{suffix}", "watched-training"

    def placed_with(devices: int) -> Any:
        def check() -> dict[str, Any] | None:
            status = current_status(kubectl, f"meshworkload/{name}", own_namespace)
            placed = status.get("phase") == "Placed" and [a["devices"] for a in status["assignments"]] == [devices]
            return status if placed else None
        return check

    operator = OperatorProcess(
        kubeconfig, namespace, logs / f"{unique_name('kubeconfig')}.log",
        extra_env={"MESHPLANE_RELIST_EVERY_S": NEVER_S, **_environment(case, tmp_path)},
        kubeconfig_variable="MESHPLANE_KUBECONFIG",
    )
    try:
        wait_for("the operator to be ready", operator.ready)
        # created after the operator listed the mesh (it is ready only after that)
        kubectl.apply_obj(isolated_factory(site, model, count=1000))
        kubectl.apply_obj(own_workload(own_namespace, name, model, 100))
        try:
            wait_for("the new workload placed", placed_with(100), timeout_s=WATCHED_S)
            # a second version of the workload: at most one of the two can come from
            # the list on taking the Lease, the other only from a watch event
            kubectl("patch", f"meshworkload/{name}", "-n", own_namespace, "--type=merge",
                    "-p", json.dumps({"spec": {"accelerators": 200}}))
            wait_for("the spec change placed", placed_with(200), timeout_s=WATCHED_S)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the operator's log ends:\n{operator.tail()}") from None
        log = operator.log_path.read_text(errors="replace")
        assert not [line for line in log.splitlines() if any(f in line for f in LOGIN_FAILURES)], operator.tail()
        assert operator.process.poll() is None and operator.ready()
    finally:
        try:
            delete_and_wait(kubectl, f"meshworkload.{GROUP}/{name}", own_namespace)
            delete_and_wait(kubectl, f"aifactory.{GROUP}/{site}")
        finally:
            operator.stop()
