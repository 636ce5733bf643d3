"""``meshctl plan --horizon``: the timeline table with a scheduled what-if curtailment, the
JSON document (the same as ``GET /api/v1/timeline`` on the same mesh), and bad input
(one line, exit 2, never a traceback)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from controller.cli import main
from controller.cli.files import load_manifests
from controller.cli.main import EXIT_USAGE
from controller.http.app import create_app
from controller.http.source import StaticSource

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
NIGHT = "2026-11-21T23:30:00-08:00"  # 07:30 UTC
MESHCTL = Path(sys.executable).with_name("meshctl")
# Sejong with 5 MW of firm power: the interruptible Korean fine-tune (9.4 MW) runs on its
# flexible power, which a curtailment from 02:00 to 05:00 Pacific (10:00-13:00 UTC) takes
FIRM = "firm kr-sejong-1=5"
CURTAIL = "curtail kr-sejong-1=20 from 2026-11-22T02:00:00-08:00 for 3h"
EVENT = "what-if-1-kr-sejong-1"  # the GridEvent the what-if adds
KOREAN = "research/korean-llm-finetune"


def grid_event_manifest(name: str = "heatwave", lead: str = "PT15M") -> dict[str, Any]:
    return {"apiVersion": "meshplane.io/v1alpha1", "kind": "GridEvent", "metadata": {"name": name},
            "spec": {"factory": "kr-sejong-1", "leadTime": lead, "source": {"manual": True},
                     "intervals": [{"start": "2026-11-22T02:00:00-08:00", "duration": "PT3H", "curtailedMW": 20}]}}


@pytest.fixture(scope="module")
def with_event(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples with Sejong's firm power at 5 MW and a GridEvent on it, as files."""
    folder = tmp_path_factory.mktemp("horizon") / "mesh"
    shutil.copytree(EXAMPLES, folder)
    factories = folder / "10-factories.yaml"
    documents = list(yaml.safe_load_all(factories.read_text()))
    for document in documents:
        if document and document["metadata"]["name"] == "kr-sejong-1":
            document["spec"]["power"]["firmMW"] = 5
    factories.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    (folder / "40-grid-events.yaml").write_text(yaml.safe_dump(grid_event_manifest(), sort_keys=False))
    return folder


def test_the_table_names_the_event_and_the_instant_it_prepares_at(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, "--horizon", "12h", "--what-if", FIRM,
                 "--what-if", CURTAIL])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("Timeline from Sun 07:30 UTC to Sun 19:30 UTC: ")
    events_row = next(line for line in out.splitlines() if line.startswith(f"│ {EVENT} "))
    assert "│ kr-sejong-1 │ Scheduled │" in events_row
    assert "Sun 10:00 UTC" in events_row and "Sun 13:00 UTC" in events_row and "PT15M" in events_row
    assert "20.0" in events_row and "manual" in events_row
    # the power table: the preparing instant, start - lead, with the power planned for
    power = out[out.index("Power: allocated / usable MW"):out.index("Planned moves")]
    rows = {line.split("│")[1].strip(): line for line in power.splitlines() if line.startswith("│ Sun ")}
    assert "(preparing: 5.0)" in rows["Sun 09:45 UTC"]
    assert "preparing" not in rows["Sun 10:00 UTC"] and "preparing" not in rows.get("Sun 09:00 UTC", "")
    # the moves: the fine-tune leaves at 09:45 and returns at 13:00, because of the event
    moves = out[out.index("Planned moves"):].splitlines()
    korean = [[cell.strip() for cell in line.split("│")[1:-1]] for line in moves if KOREAN in line]
    assert korean == [
        ["Sun 09:45 UTC", KOREAN, "kr-sejong-1", "-", "Preempted", EVENT],
        ["Sun 13:00 UTC", KOREAN, "-", "kr-sejong-1", "Placed", EVENT],
    ]


def test_times_are_shown_in_the_zone_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, "--horizon", "12h", "--what-if", FIRM,
                 "--what-if", CURTAIL, "--timezone", "America/Los_Angeles"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Timeline from Sat 23:30 PST to Sun 11:30 PST")
    assert any(line.startswith("│ Sun 01:45 PST") and "(preparing: 5.0)" in line for line in out.splitlines())


def test_json_is_the_http_timeline_of_the_same_mesh(with_event: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-f", str(with_event), "--at", NIGHT, "--horizon", "12h", "-o", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    manifests = load_manifests([with_event])
    assert manifests.problems == []
    at = dt.datetime.fromisoformat(NIGHT)
    with TestClient(create_app(StaticSource(manifests, at))) as client:
        response = client.get("/api/v1/timeline", params={"hours": 12})
    assert response.status_code == 200, response.text
    assert printed == response.json()
    # and it says what matters
    assert printed["instants"][:4] == ["2026-11-22T07:30:00Z", "2026-11-22T09:00:00Z", "2026-11-22T09:45:00Z",
                                       "2026-11-22T10:00:00Z"]
    assert [e["name"] for e in printed["events"]] == ["heatwave"]
    assert [(m["at"], m["workload"], m["phase"], m["because"]) for m in printed["moves"] if m["workload"] == KOREAN] \
        == [("2026-11-22T09:45:00Z", KOREAN, "Preempted", "heatwave"),
            ("2026-11-22T13:00:00Z", KOREAN, "Placed", "heatwave")]


def test_the_what_if_json_is_the_timeline_of_the_mesh_with_that_event(
    with_event: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--what-if 'curtail ... from ... for ...'`` is the same as applying the GridEvent it stands for."""
    assert main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, "--horizon", "12h", "--what-if", FIRM,
                 "--what-if", CURTAIL, "-o", "json"]) == 0
    asked = json.loads(capsys.readouterr().out)
    [event] = asked["events"]
    folder = tmp_path / "mesh"
    shutil.copytree(with_event, folder)
    (folder / "40-grid-events.yaml").write_text(yaml.safe_dump(grid_event_manifest(event["name"]), sort_keys=False))
    assert main(["plan", "-f", str(folder), "--at", NIGHT, "--horizon", "12h", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == asked


def test_yaml_is_the_same_document(with_event: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["plan", "-f", str(with_event), "--at", NIGHT, "--horizon", "6h", "-o", "json"])
    as_json = json.loads(capsys.readouterr().out)
    main(["plan", "-f", str(with_event), "--at", NIGHT, "--horizon", "6h", "-o", "yaml"])
    assert yaml.safe_load(capsys.readouterr().out) == as_json


def test_added_manifests_are_in_the_timeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    added = tmp_path / "event.yaml"
    added.write_text(yaml.safe_dump(grid_event_manifest("added-event"), sort_keys=False))
    assert main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, "--horizon", "12h", "--what-if", FIRM,
                 "--add", str(added), "-o", "json"]) == 0
    assert [e["name"] for e in json.loads(capsys.readouterr().out)["events"]] == ["added-event"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--horizon", "soon"], "argument --horizon: not a duration: 'soon' (e.g. 24h, 90m, PT6H)"),
        (["--horizon", "0h"], "argument --horizon: the horizon must be more than 0 and at most 72h (got '0h')"),
        (["--horizon", "73h"], "argument --horizon: the horizon must be more than 0 and at most 72h (got '73h')"),
        (["--horizon", "P4D"], "the horizon must be more than 0 and at most 72h"),
        (["--horizon", "12h", "--timezone", "Mars/Olympus"], "argument --timezone: not an IANA time zone"),
        (["--horizon", "12h", "--what-if", "curtail kr-sejong-1=5 from never for 3h"],
         "argument --what-if: curtail kr-sejong-1=5 from never for 3h: not an ISO 8601 time: 'never'"),
    ],
)
def test_a_bad_horizon_is_one_line_and_exit_2(
    arguments: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, *arguments])
    assert exited.value.code == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("meshctl plan: error: ") and expected in line, line


def test_a_horizon_with_a_diff_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tmp_path / "before.json"
    before.write_text("{}")
    assert main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, "--horizon", "12h", "--diff", str(before)]) == EXIT_USAGE
    captured = capsys.readouterr()
    assert captured.err == "meshctl plan: --horizon and --diff cannot be combined\n"


def test_a_what_if_the_mesh_cannot_take_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "-f", str(EXAMPLES), "--at", NIGHT, "--horizon", "12h", "--what-if",
                 "curtail kr-sejong-1=50 from 2026-11-22T02:00:00-08:00 for 3h"])
    assert code == 1
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("meshctl plan: curtail kr-sejong-1=50 from 2026-11-22T02:00:00-08:00 for PT3H: more than "
                           "its flexibleMW 20")


def test_the_console_script_prints_no_traceback_on_a_bad_horizon() -> None:
    result = subprocess.run([str(MESHCTL), "plan", "-f", str(EXAMPLES), "--horizon", "-3h"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == EXIT_USAGE
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "argument --horizon" in result.stderr and result.stdout == ""
