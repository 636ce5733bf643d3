"""The statuses `meshctl plan -o json` prints are the ones the API server stores.

`meshctl plan` runs the reconcile core the operator runs; its JSON output is "the
status objects exactly as the operator will write them". Here each of them is written
through the status subresource of the example objects, read back, and compared: the
CRD's status schema must accept every field (nothing pruned, nothing refused), and
the printer columns must show the plan.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.e2e_support import EXAMPLES_DIR, Kubectl

pytestmark = pytest.mark.e2e

NIGHT_IN_CALIFORNIA = "2026-11-21T23:30:00-08:00"


def _plan() -> dict[str, list[dict[str, Any]]]:
    meshctl = Path(sys.executable).with_name("meshctl")
    result = subprocess.run(
        [str(meshctl), "plan", "-f", str(EXAMPLES_DIR), "--at", NIGHT_IN_CALIFORNIA, "-o", "json"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _ref(obj: dict[str, Any]) -> list[str]:
    ref = [f"{obj['kind'].lower()}.meshplane.io/{obj['metadata']['name']}"]
    if obj["metadata"].get("namespace"):
        ref += ["-n", obj["metadata"]["namespace"]]
    return ref


def test_planned_statuses_round_trip_through_the_api_server(kubectl: Kubectl, example_objects):
    plan = _plan()
    objects = plan["workloads"] + plan["factories"] + plan["fleets"]
    assert len(objects) == 16
    for obj in objects:  # clear what an operator test may have written first, then write the plan's
        kubectl("patch", *_ref(obj), "--subresource=status", "--type=merge", "-p", '{"status": null}')
        kubectl("patch", *_ref(obj), "--subresource=status", "--type=merge", "-p", json.dumps({"status": obj["status"]}))
    mismatches = []
    for obj in objects:
        stored = kubectl.json("get", *_ref(obj))["status"]
        if stored != obj["status"]:
            changed = sorted(k for k in set(stored) | set(obj["status"]) if stored.get(k) != obj["status"].get(k))
            mismatches.append(f"{obj['kind']}/{obj['metadata']['name']}: {changed}")
    assert not mismatches, "the API server changed these statuses (pruned or defaulted fields):\n" + "\n".join(mismatches)

    table = kubectl("get", "meshworkloads", "-A", "--no-headers").stdout
    lines = {line.split()[1]: line for line in table.splitlines()}
    assert "Placed" in lines["frontier-pretrain"] and "us-memphis-1" in lines["frontier-pretrain"]
    assert "Unschedulable" in lines["japan-medical-llm"]
    factories = kubectl("get", "aifactories", "--no-headers").stdout
    memphis = next(line.split() for line in factories.splitlines() if line.startswith("us-memphis-1"))
    used_mw, free_mw = float(memphis[3]), float(memphis[4])  # NAME REGION COUNTRY USED FREE AGE
    assert used_mw >= 450  # the pre-training gang alone draws 200,000 x 1.8 kW x PUE 1.25
    assert used_mw + free_mw == pytest.approx(900 + 300, abs=0.01)


def test_statuses_read_back_from_the_api_server_need_no_write(kubectl: Kubectl, example_objects):
    """The operator's loop without kopf: read the mesh from the API server, reconcile,
    write the merge patches the core asks for, read back, reconcile again: the second
    round asks for zero patches and zero events (the server neither prunes nor defaults
    anything the core writes, so an unchanged mesh stays quiet)."""
    from controller.core.changes import changes
    from controller.core.parse import parse_objects
    from controller.core.reconcile import Snapshot, reconcile

    at = dt.datetime.fromisoformat(NIGHT_IN_CALIFORNIA)

    def snapshot() -> Snapshot:
        items = [item for plural in ("aifactories", "edgefleets", "meshworkloads")
                 for item in kubectl.json("get", plural, "-A")["items"]]
        manifests = parse_objects(items, "the API server")
        assert manifests.problems == []
        assert len(manifests.workloads) >= 8 and len(manifests.factories) >= 5 and len(manifests.fleets) >= 3
        return Snapshot(manifests.factories, manifests.fleets, manifests.workloads, at)

    def write(change_list) -> None:
        for change in change_list:
            if change.patch is None:
                continue
            ref = [f"{change.ref.kind.lower()}.meshplane.io/{change.ref.name}"]
            if change.ref.namespace:
                ref += ["-n", change.ref.namespace]
            kubectl("patch", *ref, "--subresource=status", "--type=merge", "-p", json.dumps(change.patch))

    first = snapshot()
    pending = list(changes(first, reconcile(first)))
    assert any(c.patch is not None for c in pending)  # the statuses of meshctl plan lack observedGeneration
    write(pending)
    second = snapshot()
    assert list(changes(second, reconcile(second))) == []
