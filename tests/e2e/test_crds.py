"""The generated CRDs, served by a real kube-apiserver: install, examples, printer
columns, explain, and the status subresource."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml

from tests.e2e.e2e_support import GROUP, Kubectl, KubectlError, object_ref

pytestmark = pytest.mark.e2e

KINDS = {"AIFactory": "Cluster", "EdgeFleet": "Cluster", "MeshWorkload": "Namespaced", "MemberCluster": "Cluster",
         "GridEvent": "Cluster"}
# The kinds examples/ shows: a MemberCluster needs a real member cluster, so it is in
# docs/delivery.md and the multi-cluster quickstart instead; a GridEvent is about a
# moment, so it is in the quickstart drill and docs/grid-events.md.
EXAMPLE_KINDS = {"AIFactory", "EdgeFleet", "MeshWorkload"}


def served_version(crd: dict[str, Any]) -> dict[str, Any]:
    return next(v for v in crd["spec"]["versions"] if v.get("storage"))


def spec_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return served_version(crd)["schema"]["openAPIV3Schema"]["properties"]["spec"]


def header_lines(table: str) -> list[str]:
    """Header lines of kubectl's table output (one per resource type)."""
    return [line for line in table.splitlines() if re.match(r"^(NAMESPACE\s+)?NAME\s", line)]


def expected_headers(crd: dict[str, Any]) -> list[str]:
    """The column headers kubectl prints by default (priority 0), upper-cased."""
    return ["NAME"] + [
        col["name"].upper()
        for col in served_version(crd).get("additionalPrinterColumns", [])
        if not col.get("priority")
    ]


def test_every_crd_is_established(kubectl: Kubectl, installed_crds: dict[str, dict[str, Any]]):
    assert set(installed_crds) == set(KINDS)
    for kind, scope in KINDS.items():
        crd = kubectl.json("get", "crd", installed_crds[kind]["metadata"]["name"])
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions.get("Established") == "True", crd["status"]
        assert conditions.get("NamesAccepted") == "True", crd["status"]
        assert crd["spec"]["scope"] == scope
        assert crd["spec"]["group"] == GROUP
        assert "meshplane" in crd["spec"]["names"].get("categories", [])
    resources = kubectl("api-resources", f"--api-group={GROUP}", "-o", "name").stdout.split()
    assert sorted(resources) == sorted(f"{c['spec']['names']['plural']}.{GROUP}" for c in installed_crds.values())


def test_examples_apply(kubectl: Kubectl, example_objects: list[dict[str, Any]]):
    ours = [doc for doc in example_objects if doc["apiVersion"].startswith(GROUP + "/")]
    assert {doc["kind"] for doc in ours} == EXAMPLE_KINDS, "examples/ should show every kind of the mesh"
    for doc in ours:
        args = ["get", object_ref(doc)]
        if doc["metadata"].get("namespace"):
            args += ["-n", doc["metadata"]["namespace"]]
        live = kubectl.json(*args)
        # What was applied is what is stored: the schema prunes nothing the examples
        # say, and defaults do not change what they say.
        assert _contains(live["spec"], doc["spec"]), (
            f"{object_ref(doc)}: the stored spec lost or changed fields of the example\n"
            f"applied: {json.dumps(doc['spec'], sort_keys=True)}\n"
            f"stored:  {json.dumps(live['spec'], sort_keys=True)}"
        )


def _contains(stored: Any, applied: Any) -> bool:
    """True when every value of ``applied`` is in ``stored`` (which may add defaults)."""
    if isinstance(applied, dict):
        return isinstance(stored, dict) and all(
            k in stored and _contains(stored[k], v) for k, v in applied.items()
        )
    if isinstance(applied, list):
        return isinstance(stored, list) and len(stored) == len(applied) and all(
            _contains(s, a) for s, a in zip(stored, applied, strict=True)
        )
    if isinstance(applied, (int, float)) and not isinstance(applied, bool):
        return isinstance(stored, (int, float)) and not isinstance(stored, bool) and stored == applied
    return stored == applied


@pytest.mark.parametrize(
    "what",
    [["meshplane"], ["aifactories,edgefleets,meshworkloads"]],
    ids=["category", "kinds"],
)
def test_get_shows_printer_columns(kubectl: Kubectl, installed_crds, example_objects, what):
    out = kubectl("get", *what, "-A").stdout
    headers = header_lines(out)
    assert len(headers) == len(EXAMPLE_KINDS), f"expected one table per kind of the examples:\n{out}"
    for kind, crd in installed_crds.items():
        if kind not in EXAMPLE_KINDS:
            continue  # kubectl prints no table for a kind with no object
        wanted = expected_headers(crd)
        assert any(all(h in line for h in wanted) for line in headers), (
            f"{kind}: no table header with columns {wanted}:\n{out}"
        )
    for doc in example_objects:
        if doc["apiVersion"].startswith(GROUP + "/"):
            assert re.search(rf"\b{re.escape(doc['metadata']['name'])}\b", out), (
                f"{doc['metadata']['name']} missing from:\n{out}"
            )


def test_wide_output_adds_priority_columns(kubectl: Kubectl, installed_crds, example_objects):
    for kind, crd in installed_crds.items():
        version = served_version(crd)
        extra = [c["name"].upper() for c in version.get("additionalPrinterColumns", []) if c.get("priority")]
        if not extra or kind not in EXAMPLE_KINDS:
            continue
        out = kubectl("get", crd["spec"]["names"]["plural"] + "." + GROUP, "-A", "-o", "wide").stdout
        header = header_lines(out)[0]
        for name in expected_headers(crd) + extra:
            assert name in header, f"{name} missing from {header!r}"


def _normalise(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_explain_spec_shows_field_descriptions(kubectl: Kubectl, installed_crds, kind):
    crd = installed_crds[kind]
    singular = crd["spec"]["names"]["singular"]
    out = kubectl("explain", f"{singular}.spec").stdout
    text = _normalise(out)
    schema = spec_schema(crd)
    assert "FIELDS:" in out, out
    assert schema.get("description"), f"{kind}.spec has no description in the CRD"
    assert _normalise(schema["description"])[:60] in text, out
    missing = [name for name, prop in schema["properties"].items() if not prop.get("description")]
    assert not missing, f"{kind}.spec fields without a description: {missing}"
    for name, prop in schema["properties"].items():
        assert re.search(rf"^\s+{re.escape(name)}\s+<", out, re.M), f"field {name} not listed:\n{out}"
        assert _normalise(prop["description"])[:60] in text, (
            f"description of {kind}.spec.{name} not shown:\n{out}"
        )


def test_explain_meshworkload_spec_by_kind_name(kubectl: Kubectl, installed_crds):
    """The exact command from the docs."""
    out = kubectl("explain", "meshworkload.spec").stdout
    assert "DESCRIPTION:" in out and "FIELDS:" in out, out
    assert re.search(r"^\s+type\s+<string>\s+-required-", out, re.M), out


# --------------------------------------------------------------------------- status subresource


def _probe_workload(example_objects: list[dict[str, Any]], namespace: str) -> dict[str, Any]:
    base = next(doc for doc in example_objects if doc["kind"] == "MeshWorkload")
    return {
        "apiVersion": base["apiVersion"],
        "kind": "MeshWorkload",
        "metadata": {"name": "status-probe", "namespace": namespace},
        "spec": base["spec"],
    }


def test_status_is_a_subresource(kubectl: Kubectl, installed_crds, example_objects, scratch_namespace):
    ns = scratch_namespace
    obj = _probe_workload(example_objects, ns)
    kubectl("create", "-f", "-", input=yaml.safe_dump(obj))
    ref = ["meshworkload.meshplane.io/status-probe", "-n", ns]

    created = kubectl.json("get", *ref)
    generation = created["metadata"]["generation"]
    assert "status" not in created or not created["status"]

    # A status write bumps neither generation nor spec.
    status = {"phase": "Placed", "observedGeneration": generation, "message": "placed by the e2e probe"}
    kubectl("patch", *ref, "--subresource=status", "--type=merge", "-p", json.dumps({"status": status}))
    after_status = kubectl.json("get", *ref)
    assert after_status["metadata"]["generation"] == generation
    assert after_status["status"] == {**after_status["status"], **status}
    assert after_status["spec"] == created["spec"]

    # Status cannot be written through the main resource ...
    kubectl("patch", *ref, "--type=merge", "-p", json.dumps({"status": {"phase": "Preempted"}}))
    assert kubectl.json("get", *ref)["status"]["phase"] == "Placed"

    # ... and a spec update bumps generation and leaves status alone.
    new_priority = int(obj["spec"].get("priority", 0)) + 7
    kubectl("patch", *ref, "--type=merge", "-p", json.dumps({"spec": {"priority": new_priority}}))
    after_spec = kubectl.json("get", *ref)
    assert after_spec["spec"]["priority"] == new_priority
    assert after_spec["metadata"]["generation"] == generation + 1
    assert after_spec["status"] == after_status["status"]

    # Spec cannot be written through the status subresource.
    kubectl("patch", *ref, "--subresource=status", "--type=merge", "-p",
            json.dumps({"spec": {"priority": new_priority + 1}}))
    assert kubectl.json("get", *ref)["spec"]["priority"] == new_priority


def test_status_is_validated_too(kubectl: Kubectl, installed_crds, example_objects, scratch_namespace):
    ns = scratch_namespace
    kubectl("create", "-f", "-", input=yaml.safe_dump(_probe_workload(example_objects, ns)))
    with pytest.raises(KubectlError) as err:
        kubectl("patch", "meshworkload.meshplane.io/status-probe", "-n", ns, "--subresource=status",
                "--type=merge", "-p", json.dumps({"status": {"phase": "Sleeping"}}))
    assert "status.phase" in err.value.stderr, err.value.stderr


def test_objects_owned_by_a_workload_are_garbage_collected(
    kubectl: Kubectl, installed_crds, example_objects, scratch_namespace
):
    """What the operator's materialised objects rely on: ownerReferences to a MeshWorkload
    cascade when it is deleted (the garbage collector knows the CRD)."""
    ns = scratch_namespace
    kubectl("create", "-f", "-", input=yaml.safe_dump(_probe_workload(example_objects, ns)))
    owner = kubectl.json("get", "meshworkload.meshplane.io/status-probe", "-n", ns)
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "status-probe-materialised",
            "namespace": ns,
            "ownerReferences": [{
                "apiVersion": owner["apiVersion"], "kind": "MeshWorkload", "name": "status-probe",
                "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "data": {"placement": "probe"},
    }
    kubectl("create", "-f", "-", input=yaml.safe_dump(child))
    kubectl("delete", "meshworkload.meshplane.io/status-probe", "-n", ns, "--cascade=foreground", "--timeout=60s")
    kubectl("wait", "--for=delete", "configmap/status-probe-materialised", "-n", ns, "--timeout=60s")
