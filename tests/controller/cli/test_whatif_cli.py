"""``meshctl plan --what-if`` and ``--diff``: the "What changes" table, the JSON documents,
and bad input (one line, never a traceback). Expectations come from plain ``meshctl plan
-o json`` runs on manifests edited on disk, as a user would edit them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from controller.cli import main
from controller.cli.main import EXIT_USAGE

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
NIGHT = "2026-11-21T23:30:00-08:00"
MESHCTL = Path(sys.executable).with_name("meshctl")


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    assert main(["plan", "--at", NIGHT, "-o", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def edited_examples(tmp_path: Path, kind: str, name: str, path: tuple[str, ...], value: Any) -> Path:
    """A copy of the examples with one spec field of one object set, as a user edits YAML."""
    folder = tmp_path / "edited"
    shutil.copytree(EXAMPLES, folder)
    for file in folder.glob("*.yaml"):
        documents = list(yaml.safe_load_all(file.read_text()))
        for document in documents:
            if document and document.get("kind") == kind and document["metadata"]["name"] == name:
                target = document["spec"]
                for part in path[:-1]:
                    target = target.setdefault(part, {})
                target[path[-1]] = value
        file.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return folder


def placements(document: Any) -> dict[str, tuple[bool, list[tuple[str, int]]]]:
    """Workload key -> (placed, sorted (site, devices)), from a `meshctl plan -o json` document."""
    found = {}
    for obj in document["workloads"]:
        status = obj["status"]
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        found[key] = (status["phase"] == "Placed", sorted((a["site"], a["devices"]) for a in status["assignments"]))
    return found


def changed_keys(before: Any, after: Any) -> set[str]:
    old, new = placements(before), placements(after)
    return {key for key in new if key in old and old[key] != new[key]}


def diff_keys(diff: dict[str, Any]) -> set[str]:
    return {m["key"] for field in ("moved", "newlyPlaced", "newlyUnschedulable", "newlyPreempted")
            for m in diff[field]}


def test_what_if_prints_the_plan_and_the_table_of_what_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = plan_json(capsys, "-f", str(EXAMPLES))
    after = plan_json(capsys, "-f", str(edited_examples(tmp_path, "AIFactory", "fr-grenoble-1", ("cordoned",), True)))
    expected = changed_keys(before, after)
    assert expected  # cordoning Grenoble displaces the EU work placed there

    assert main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, "--what-if", "cordon fr-grenoble-1"]) == 0
    out = capsys.readouterr().out
    assert "Plan for 2026-11-21T23:30:00-08:00 if cordon fr-grenoble-1" in out
    assert "Workloads" in out and "Sites" in out and "What changes against the plan without the change(s)" in out
    table = out[out.index("What changes"):]
    for key in expected:
        assert key in table, key
    assert "newly preempted" in table and "fr-grenoble-1 is cordoned" in table
    assert "fr-grenoble-1 (AIFactory)" in table  # its MW fall to zero


def test_memphis_losing_200_mw_moves_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = plan_json(capsys, "-f", str(EXAMPLES))
    after = plan_json(
        capsys, "-f", str(edited_examples(tmp_path, "AIFactory", "us-memphis-1", ("power", "curtailedMW"), 200))
    )
    assert changed_keys(before, after) == set()
    assert main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, "--what-if", "curtail us-memphis-1=200"]) == 0
    out = capsys.readouterr().out
    assert "What changes against the plan without the change(s): nothing" in out
    assert "Curtailed" in out  # the site table shows the grid event


def test_what_if_json_has_the_plan_and_the_diff(capsys: pytest.CaptureFixture[str]) -> None:
    usual = plan_json(capsys, "-f", str(EXAMPLES))
    document = plan_json(capsys, "-f", str(EXAMPLES), "--what-if", "firm us-memphis-1=400",
                         "--what-if", "remove serving/japan-medical-llm")
    assert set(document) == {"plan", "diff"}
    assert set(document["plan"]) == set(usual)
    keys = [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in document["plan"]["workloads"]]
    assert "serving/japan-medical-llm" not in keys and len(keys) == len(usual["workloads"]) - 1
    diff = document["diff"]
    assert diff["removed"] == ["serving/japan-medical-llm"]
    assert diff_keys(diff) == changed_keys(usual, document["plan"])
    memphis = next(s for s in diff["sites"] if s["site"] == "us-memphis-1")
    planned = {o["metadata"]["name"]: o["status"]["power"]["allocatedMW"] for o in document["plan"]["factories"]}
    before = {o["metadata"]["name"]: o["status"]["power"]["allocatedMW"] for o in usual["factories"]}
    assert (memphis["mwBefore"], memphis["mwAfter"]) == (before["us-memphis-1"], planned["us-memphis-1"])


def test_what_if_add_brings_new_workloads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "apiVersion: meshplane.io/v1alpha1\nkind: MeshWorkload\nmetadata: {name: hindi-twin, namespace: serving}\n"
        "spec: {type: inference, tokensPerSecond: 1000, sovereignty: {allowedCountries: [IN]}}\n"
    )
    document = plan_json(capsys, "-f", str(EXAMPLES), "--add", str(extra))
    assert document["diff"]["added"] == ["serving/hindi-twin"]
    assert [m["key"] for m in document["diff"]["newlyPlaced"]] == ["serving/hindi-twin"]
    assert document["diff"]["newlyPlaced"][0]["afterSites"] == ["in-mumbai-1"]


def test_diff_against_a_saved_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "before.json"
    saved.write_text(json.dumps(plan_json(capsys, "-f", str(EXAMPLES))))
    edited = edited_examples(tmp_path, "AIFactory", "kr-sejong-1", ("cordoned",), True)
    after = plan_json(capsys, "-f", str(edited))
    diff = plan_json(capsys, "-f", str(edited), "--diff", str(saved))
    assert diff_keys(diff) == changed_keys(json.loads(saved.read_text()), after) == {"research/korean-llm-finetune"}
    assert [m["afterPhase"] for m in diff["newlyUnschedulable"]] == ["Unschedulable"]
    assert main(["plan", "-f", str(edited), "--at", NIGHT, "--diff", str(saved)]) == 0
    out = capsys.readouterr().out
    assert f"What changes since {saved}" in out and "research/korean-llm-finetune" in out
    # the same manifests: nothing changed
    assert main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, "--diff", str(saved)]) == 0
    assert f"What changes since {saved}: nothing" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--what-if", "curtail us-memphis-1"], "argument --what-if: curtail us-memphis-1: curtail needs SITE=MW"),
        (["--what-if", "evaporate us-memphis-1"], "argument --what-if: evaporate us-memphis-1: unknown change"),
        (["--what-if", "clock noon"], "argument --what-if: clock noon: not an ISO 8601 time"),
        (["--what-if", "cordon x", "--diff", "x.json"], "argument --diff: not allowed with argument --what-if"),
    ],
)
def test_bad_what_if_syntax_is_one_line_and_exit_2(
    arguments: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "-f", str(EXAMPLES), *arguments])
    assert exited.value.code == EXIT_USAGE
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert captured.out == "" and line.startswith("meshctl plan: error: ") and expected in line, line


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--what-if", "curtail us-memphis-9=200"],
         "curtail us-memphis-9=200: no AIFactory named us-memphis-9 (known: de-frankfurt-1, fr-grenoble-1, "
         "in-mumbai-1, kr-sejong-1, us-memphis-1)"),
        (["--what-if", "curtail us-memphis-1=500"], "curtail us-memphis-1=500: more than its flexibleMW 300"),
        (["--diff", "/nonexistent/plan.json"], "--diff /nonexistent/plan.json: No such file or directory"),
        (["--diff", str(EXAMPLES / "10-factories.yaml")], "not JSON"),
    ],
)
def test_a_change_the_mesh_cannot_take_is_one_line_and_exit_1(
    arguments: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, *arguments]) == 1
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert captured.out == "" and line.startswith("meshctl plan: error: ") and expected in line, line


def test_a_diff_of_another_document_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"kind": "List", "items": []}))
    assert main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, "--diff", str(other)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "not a `meshctl plan -o json` document" in line


def test_the_console_script_prints_no_traceback_on_a_bad_change() -> None:
    for change, code in (("curtail us-memphis-1=x", EXIT_USAGE), ("remove nowhere", 1)):
        result = subprocess.run(
            [str(MESHCTL), "plan", "-f", str(EXAMPLES), "--what-if", change], capture_output=True, text=True,
            check=False,
        )
        assert result.returncode == code, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr


def test_what_if_json_is_the_same_on_every_run() -> None:
    outputs = {
        subprocess.run(
            [str(MESHCTL), "plan", "-f", str(EXAMPLES), "--at", NIGHT, "-o", "json",
             "--what-if", "cordon fr-grenoble-1", "--what-if", "clock 2026-11-22T12:00:00-08:00"],
            capture_output=True, text=True, check=True,
        ).stdout
        for _ in range(3)
    }
    assert len(outputs) == 1
    assert json.loads(outputs.pop())["diff"]["newlyPreempted"]


def _without_timing(text: str) -> str:
    return re.sub(r"solve [\d,]+ ms", "solve N ms", text).strip()


def test_the_memphis_example_in_the_docs_is_what_meshctl_prints(capsys: pytest.CaptureFixture[str]) -> None:
    command = "meshctl plan -f examples/ --at 2026-11-21T23:30:00-08:00 --what-if 'curtail us-memphis-1=200'"
    docs = (REPO / "docs" / "what-if.md").read_text()
    block = docs[docs.index(f"$ {command}\n") + len(command) + 3:]
    block = block[:block.index("```")]
    assert main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, "--what-if", "curtail us-memphis-1=200"]) == 0
    assert _without_timing(capsys.readouterr().out) == _without_timing(block)
