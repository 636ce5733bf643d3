"""Beside Kueue: a cluster that serves Kueue's ``Workload`` (kind Workload, plural
``workloads``, short name ``wl``, group kueue.x-k8s.io) must still give a user ours from
``kubectl get``, ``kubectl explain`` and the ``meshplane`` category without typing the
group.

Kueue itself does not run here: its CRD, with Kueue's group, kind, plural and short
name, stands in for it (the API server's discovery is what resolves names, and it is
real). On a cluster that already has Kueue, its own CRD is used and left alone.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.e2e_support import Kubectl, unique_name

pytestmark = pytest.mark.e2e

KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_CRD = f"workloads.{KUEUE_GROUP}"


def _kueue_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": KUEUE_CRD},
        "spec": {
            "group": KUEUE_GROUP,
            "names": {"kind": "Workload", "listKind": "WorkloadList", "plural": "workloads",
                      "singular": "workload", "shortNames": ["wl"]},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1beta1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object", "description": "Kueue's Workload (stand-in for the name test).",
                    "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }},
            }],
        },
    }


@pytest.fixture(scope="module")
def kueue_beside_us(kubectl: Kubectl, installed_crds: Any, example_objects: Any) -> Iterator[str]:
    """Kueue's Workload CRD installed beside ours, with one Kueue Workload in a namespace
    that also has one of our MeshWorkloads; yields that namespace."""
    preexisting = bool(kubectl("get", "crd", KUEUE_CRD, "--ignore-not-found", "-o", "name").stdout.strip())
    if not preexisting:
        kubectl.apply_obj(_kueue_crd())
        kubectl("wait", "--for", "condition=established", "--timeout=60s", f"crd/{KUEUE_CRD}")
    deadline = time.monotonic() + 30
    while "workloads" not in kubectl("api-resources", f"--api-group={KUEUE_GROUP}", "-o", "name", check=False).stdout:
        assert time.monotonic() < deadline, "Kueue's workloads never appeared in discovery"
        time.sleep(0.5)
    namespace = "research"  # holds frontier-pretrain, one of the examples
    name = unique_name("kueue-job")
    kubectl.apply_obj({"apiVersion": f"{KUEUE_GROUP}/v1beta1", "kind": "Workload",
                       "metadata": {"name": name, "namespace": namespace}, "spec": {"queueName": "main"}})
    yield namespace
    kubectl("delete", f"workloads.{KUEUE_GROUP}", name, "-n", namespace, "--ignore-not-found", check=False)
    if not preexisting:
        kubectl("delete", "crd", KUEUE_CRD, "--ignore-not-found", "--wait=false", check=False)


@pytest.mark.parametrize("name", ["mwl", "meshworkload", "meshworkloads", "MeshWorkload"])
def test_get_by_our_names_lists_our_workloads(kubectl: Kubectl, kueue_beside_us: str, name: str) -> None:
    listed = kubectl.json("get", name, "-n", kueue_beside_us)
    kinds = {(item["apiVersion"], item["kind"]) for item in listed["items"]}
    assert kinds == {("meshplane.io/v1alpha1", "MeshWorkload")}
    assert "frontier-pretrain" in {item["metadata"]["name"] for item in listed["items"]}


def test_kueue_keeps_its_own_names(kubectl: Kubectl, kueue_beside_us: str) -> None:
    """Nothing of ours shadows Kueue's: ``wl`` and ``workloads`` are still Kueue's."""
    for name in ("wl", "workloads"):
        listed = kubectl.json("get", name, "-n", kueue_beside_us)
        assert {item["apiVersion"].split("/")[0] for item in listed["items"]} == {KUEUE_GROUP}, name


def test_explain_resolves_to_ours_without_the_group(kubectl: Kubectl, kueue_beside_us: str) -> None:
    for name in ("meshworkload.spec", "mwl.spec.placement.maxSites"):
        out = kubectl("explain", name).stdout
        assert re.search(r"^GROUP:\s+meshplane\.io$", out, re.MULTILINE), out
        assert re.search(r"^KIND:\s+MeshWorkload$", out, re.MULTILINE), out


def test_our_category_holds_only_our_kinds(kubectl: Kubectl, kueue_beside_us: str) -> None:
    listed = kubectl.json("get", "meshplane", "-A")
    groups = {item["apiVersion"].split("/")[0] for item in listed["items"]}
    kinds = {item["kind"] for item in listed["items"]}
    assert groups == {"meshplane.io"}
    assert kinds == {"AIFactory", "EdgeFleet", "MeshWorkload"}
