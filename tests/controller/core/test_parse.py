"""Reading manifests: the example mesh, the bad-input corpus, and the odd cases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import main
from controller.cli.files import load_manifests
from controller.core.parse import field_path

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
CORPUS = sorted((REPO / "tests" / "corpus" / "bad").glob("*.yaml"))


def _expectation(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("# expect: "):
            return line.removeprefix("# expect: ").strip()
    raise AssertionError(f"{path} has no '# expect:' line")


def test_the_example_mesh_is_valid_and_complete():
    manifests = load_manifests([EXAMPLES])
    assert manifests.problems == []
    assert len(manifests.factories) >= 4
    assert len(manifests.fleets) >= 3
    assert len(manifests.workloads) >= 8
    assert {f.spec.country for f in manifests.factories} >= {"US", "KR", "IN", "FR"}
    assert {f.spec.device_class for f in manifests.fleets} >= {"vehicle", "home-cluster", "robot"}
    kinds = {w.spec.type for w in manifests.workloads}
    assert kinds == {"training", "fine-tuning", "inference", "batch"}
    assert any(w.spec.interruptible and w.spec.type == "fine-tuning" for w in manifests.workloads)
    assert manifests.other_objects == 4  # the Namespaces


def test_the_corpus_is_large_enough():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_bad_manifest_is_rejected_naming_its_field(path, capsys):
    code = main(["validate", "-f", str(path)])
    out = capsys.readouterr().out
    problem_lines = [line for line in out.splitlines() if line.startswith(str(path))]
    assert code == 1
    assert len(problem_lines) == 1, out
    line = problem_lines[0]
    kind = next(k for k in ("AIFactory", "EdgeFleet", "MeshWorkload", "MemberCluster", "GridEvent")
                if f"kind: {k}" in path.read_text())
    assert f": {kind}/" in line
    assert f": {_expectation(path)}" in line, f"expected field {_expectation(path)!r} in: {line}"
    assert "Traceback" not in out


def test_every_problem_of_a_folder_is_one_line(capsys):
    assert main(["validate", "-f", str(CORPUS[0].parent)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"{len(CORPUS)} problem(s) in {len(CORPUS)} file(s)"
    assert len(lines) == len(CORPUS) + 1


def test_multi_document_files_other_kinds_and_default_namespace(tmp_path):
    good = (EXAMPLES / "30-workloads.yaml").read_text()
    without_namespace = good.replace("  namespace: research\n", "", 1)
    (tmp_path / "mesh.yml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n---\n" + without_namespace
    )
    manifests = load_manifests([tmp_path])
    assert manifests.problems == []
    assert manifests.other_objects == 1
    assert manifests.workloads[0].key == "default/frontier-pretrain"


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("kind: AIFactory\napiVersion: meshplane.io/v1alpha1\nmetadata: {name: a}\nspec: [1, 2\n", "line 5, column 1", "invalid YAML"),
        ("- just\n- a list\n", "(document)", "expected a mapping"),
        ("apiVersion: meshplane.io/v1alpha1\nmetadata: {name: a}\n", "kind", "required field is missing"),
        ("apiVersion: meshplane.io/v1alpha1\nkind: Factory\nmetadata: {name: a}\n", "kind", "unknown kind"),
        ("apiVersion: meshplane.io/v1\nkind: AIFactory\nmetadata: {name: a}\n", "apiVersion", "must be meshplane.io/v1alpha1"),
    ],
)
def test_malformed_documents_are_problems_not_crashes(tmp_path, text, field, message):
    (tmp_path / "bad.yaml").write_text(text)
    [problem] = load_manifests([tmp_path]).problems
    assert problem.field == field
    assert message in problem.message


def test_duplicate_names_and_namespaced_sites(tmp_path):
    factories = (EXAMPLES / "10-factories.yaml").read_text()
    (tmp_path / "a.yaml").write_text(factories)
    (tmp_path / "b.yaml").write_text(
        factories.split("---")[0].replace("name: us-memphis-1", "name: us-memphis-1\n  namespace: default")
    )
    fleet = (EXAMPLES / "20-fleets.yaml").read_text().split("---")[0]
    (tmp_path / "c.yaml").write_text(fleet.replace("name: vehicles-california", "name: kr-sejong-1"))
    manifests = load_manifests([tmp_path])
    messages = {(p.file.rsplit("/", 1)[-1], p.field): p.message for p in manifests.problems}
    assert "cluster-scoped" in messages[("b.yaml", "metadata.namespace")]
    assert "site names are unique" in messages[("c.yaml", "metadata.name")]
    assert len(manifests.factories) == 5 and manifests.fleets == []


def test_missing_path_is_a_problem(tmp_path):
    [problem] = load_manifests([tmp_path / "absent.yaml"]).problems
    assert problem.field == "(file)"


def test_field_path_formatting():
    assert field_path(["spec", "acceleratorPools", 0, "count"]) == "spec.acceleratorPools[0].count"
    assert field_path([]) == "(object)"


def test_meshctl_console_script_validates_the_examples():
    meshctl = Path(sys.executable).with_name("meshctl")
    result = subprocess.run([str(meshctl), "validate", "-f", str(EXAMPLES)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "AI factories" in result.stdout and "Workloads" in result.stdout
    assert "4 file(s) valid" in result.stdout


def test_unreachable_user_region_is_a_warning_not_an_error(tmp_path, capsys):
    (tmp_path / "sites.yaml").write_text((EXAMPLES / "10-factories.yaml").read_text())
    (tmp_path / "w.yaml").write_text(
        "apiVersion: meshplane.io/v1alpha1\nkind: MeshWorkload\nmetadata: {name: mars}\n"
        "spec: {type: inference, tokensPerSecond: 10, latency: {maxMs: 50, users: [{region: jp-east}, {region: mars-base}]}}\n"
    )
    assert main(["validate", "-f", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (
        "warning: MeshWorkload/default/mars: spec.latency.users[1].region: region 'mars-base' is not in the topology"
        in out
    )
    assert "jp-east" not in out  # reached through kr-sejong-1's link


def test_a_null_field_is_absent_as_on_the_api_server() -> None:
    """The API server prunes a null of a non-nullable field (then defaults it), keeps
    nulls inside free-form objects, and stores a null annotation as ""."""
    from tests.support.manifests import parse_texts

    text = (
        "apiVersion: meshplane.io/v1alpha1\nkind: MeshWorkload\n"
        "metadata: {name: w, namespace: n, annotations: {note: null}}\n"
        "spec: {type: batch, accelerators: 4, priority: null, interruptible: ~, latency: null,\n"
        "       template: {metadata: {labels: null}}}\n"
    )
    manifests = parse_texts([("null.yaml", text)])
    assert manifests.problems == []
    [workload] = manifests.workloads
    assert workload.spec.priority == 100 and workload.spec.interruptible is False and workload.spec.latency is None
    assert workload.spec.template == {"metadata": {"labels": None}}
    assert workload.metadata.annotations == {"note": ""}


def test_parse_objects_keeps_every_valid_object_and_reports_duplicates() -> None:
    from controller.core.parse import parse_objects

    factory = {
        "apiVersion": "meshplane.io/v1alpha1", "kind": "AIFactory", "metadata": {"name": "f"},
        "spec": {"region": "r", "country": "US", "power": {"firmMW": 1},
                 "acceleratorPools": [{"model": "h100", "count": 1, "wattsPerDevice": 700,
                                       "tokensPerSecondPerDevice": 1000, "memoryGiB": 80}]},
    }
    manifests = parse_objects([factory, factory, {"kind": "ConfigMap", "apiVersion": "v1"}], "listed")
    assert [f.metadata.name for f in manifests.factories] == ["f"]
    assert [p.field for p in manifests.problems] == ["metadata.name"]
    assert manifests.other_objects == 1
