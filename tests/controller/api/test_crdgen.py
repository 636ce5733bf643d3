"""The generated CRDs: no drift from the models, structural, CEL rules present."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.api import crdgen
from controller.api.models.base import ApiModel
from controller.api.resources import KINDS

REPO = Path(__file__).resolve().parents[3]
CRDS_DIR = REPO / "crds"


def _schemas() -> dict[str, dict[str, Any]]:
    return {
        kind: crdgen.crd_for(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for kind, info in KINDS.items()
    }


def _walk(node: Any, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for name, sub in node.get("properties", {}).items():
            yield from _walk(sub, f"{path}.{name}")
        if "items" in node:
            yield from _walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_committed_crds_match_the_models():
    rendered = crdgen.rendered_crds()
    on_disk = {p.name: p.read_text() for p in CRDS_DIR.glob("*.yaml")}
    assert set(on_disk) == set(rendered), "crds/ holds other files than the generator writes"
    stale = [name for name, text in rendered.items() if on_disk[name] != text]
    assert not stale, f"crds/ is out of date for {stale}: run `make crds`"


def test_the_chart_ships_the_generated_crds_unchanged():
    chart_crds = REPO / "helm" / "meshplane" / "crds"
    assert {p.name for p in chart_crds.glob("*.yaml")} == {p.name for p in CRDS_DIR.glob("*.yaml")}
    for path in CRDS_DIR.glob("*.yaml"):
        assert (chart_crds / path.name).read_bytes() == path.read_bytes(), f"{path.name}: run `make crds`"


def test_committed_api_reference_matches_the_models():
    from controller.api import apidocs

    committed = (REPO / "docs" / apidocs.REFERENCE_FILENAME).read_text()
    assert committed == apidocs.render_reference(), "docs/api-reference.md is out of date: run `make crds`"


def test_drift_check_notices_an_edited_file(tmp_path, capsys):
    from controller.cli import main

    dirs = ["--output-dir", str(tmp_path / "crds"), "--docs-dir", str(tmp_path / "docs"),
            "--chart-dir", str(tmp_path / "chart")]
    assert main(["crds", *dirs]) == 0
    assert main(["crds", "--check", *dirs]) == 0
    victim = next((tmp_path / "crds").glob("*meshworkloads.yaml"))
    victim.write_text(victim.read_text().replace("maxSites", "maxSite"))
    (tmp_path / "docs" / "api-reference.md").unlink()
    chart_copy = tmp_path / "chart" / "crds" / "meshplane.io_aifactories.yaml"
    chart_copy.write_text(chart_copy.read_text() + "# edited by hand\n")
    capsys.readouterr()
    assert main(["crds", "--check", *dirs]) == 1
    out = capsys.readouterr().out
    assert victim.name in out and "api-reference.md" in out and str(chart_copy) in out


@pytest.mark.parametrize("kind", list(KINDS))
def test_schema_is_structural(kind):
    schema = _schemas()[kind]
    text = yaml.safe_dump(schema)
    for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "$defs", "title:"):
        assert forbidden not in text, f"{kind}: {forbidden} in the schema"
    for path, node in _walk(schema):
        if path == ".metadata":
            continue
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), f"{kind}{path} has no type"
        if node.get("type") == "object" and "properties" in node:
            assert "additionalProperties" not in node, f"{kind}{path}: properties and additionalProperties"


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_spec_and_status_field_is_described(kind):
    schema = _schemas()[kind]
    undocumented = [
        path for part in ("spec", "status")
        for path, node in _walk(schema["properties"][part], f".{part}")
        if not node.get("description") and not path.endswith("[]")
    ]
    assert not undocumented, f"{kind}: fields without description (kubectl explain text): {undocumented}"


@pytest.mark.parametrize("kind", list(KINDS))
def test_cel_cost_is_bounded(kind):
    """Every string has maxLength and every list maxItems, so that CEL rules have a
    finite estimated cost within the API server's budget."""
    schema = _schemas()[kind]
    unbounded = []
    for path, node in _walk(schema["properties"]["spec"], ".spec"):
        if node.get("type") == "string" and "maxLength" not in node and "enum" not in node:
            unbounded.append(path)
        if node.get("type") == "array" and "maxItems" not in node:
            unbounded.append(path)
    assert not unbounded, f"{kind}: unbounded {unbounded}"


def _models(model: type[ApiModel]):
    yield model
    for field in model.model_fields.values():
        for candidate in _nested(field.annotation):
            yield from _models(candidate)


def _nested(annotation: Any):
    """ApiModel classes inside a field annotation (``list[X]``, ``X | None``, ``X``)."""
    if isinstance(annotation, type) and issubclass(annotation, ApiModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        yield from _nested(arg)


def test_every_cross_field_rule_is_a_cel_rule():
    rules_in_crds = {
        (rule["rule"], rule["message"])
        for schema in _schemas().values()
        for _, node in _walk(schema)
        for rule in node.get("x-kubernetes-validations", [])
    }
    expected = {
        (rule.cel, rule.message)
        for info in KINDS.values()
        for model in _models(info.spec_model)
        for rule in model.cross_field_rules
    }
    assert expected, "no cross-field rules found: the model walk is broken"
    assert expected <= rules_in_crds, f"rules missing from the CRDs: {expected - rules_in_crds}"
    for _, node in ((p, n) for s in _schemas().values() for p, n in _walk(s)):
        for rule in node.get("x-kubernetes-validations", []):
            if "fieldPath" in rule:
                assert rule["fieldPath"].lstrip(".").split(".")[0] in node["properties"], rule


def test_names_columns_and_categories():
    expected_columns = {
        "AIFactory": ["Region", "Country", "Used MW", "Free MW", "Cluster", "Workloads", "Tokens/J", "Age"],
        "EdgeFleet": ["Region", "Class", "Devices", "Online", "Power MW", "Cluster", "Age"],
        "MeshWorkload": ["Type", "Phase", "Sites", "Ready", "Power MW", "Latency ms", "Message", "Age"],
        "MemberCluster": ["Reachable", "Reason", "Sites", "Last seen", "Age"],
        "GridEvent": ["Factory", "Phase", "Start", "End", "Limit MW", "Curtailed MW", "Moved", "Source", "Age"],
    }
    for kind, info in KINDS.items():
        crd = crdgen.crd_for(info)
        names = crd["spec"]["names"]
        assert names["categories"] == ["meshplane"]
        assert names["shortNames"]
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert [c["name"] for c in version["additionalPrinterColumns"]] == expected_columns[kind]
        schema = version["schema"]["openAPIV3Schema"]
        for column in version["additionalPrinterColumns"]:
            node = schema
            # a filter (conditions[?(@.type=="Reachable")]) selects items of the list it follows
            path = re.sub(r"\[\?\(@\.type==\"[A-Za-z]+\"\)\]", ".[]", column["jsonPath"])
            for part in path.strip(".").split("."):
                if part == "[]":
                    node = node.get("items")
                else:
                    node = node["properties"][part] if part in node.get("properties", {}) else None
                if node is None:
                    break
            assert node is not None or column["jsonPath"] == ".metadata.creationTimestamp", (
                f"{kind} column {column['name']} points at {column['jsonPath']}, which the schema lacks"
            )
    assert KINDS["MeshWorkload"].scope == "Namespaced"
    assert KINDS["AIFactory"].scope == KINDS["EdgeFleet"].scope == KINDS["MemberCluster"].scope == "Cluster"
