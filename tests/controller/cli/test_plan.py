"""`meshctl plan`: the embedded default, its output formats and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from controller.api.models import MeshWorkloadStatus, SiteStatus
from controller.cli import main

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = str(REPO / "examples")
NIGHT = "2026-11-21T23:30:00-08:00"


def test_plan_table_lists_workloads_sites_and_the_gap(capsys):
    assert main(["plan", "-f", EXAMPLES, "--at", NIGHT]) == 0
    out = capsys.readouterr().out
    for expected in ("Workloads", "Sites", "frontier-pretrain", "us-memphis-1", "vehicles-california",
                     "country not allowed", "gap", "bound"):
        assert expected in out, expected


def test_plan_json_is_the_status_the_operator_writes(capsys):
    assert main(["plan", "-f", EXAMPLES, "--at", NIGHT, "-o", "json"]) == 0
    objects = json.loads(capsys.readouterr().out)
    assert len(objects["workloads"]) == 8 and len(objects["factories"]) == 5 and len(objects["fleets"]) == 3
    for obj in objects["workloads"]:
        assert obj["apiVersion"] == "meshplane.io/v1alpha1" and obj["kind"] == "MeshWorkload"
        assert obj["metadata"]["namespace"]
        status = MeshWorkloadStatus.model_validate(obj["status"])
        assert "solver" not in obj["status"]  # mesh-wide figures stay out of every status
        assert status.phase in ("Placed", "Unschedulable")
    for obj in objects["factories"] + objects["fleets"]:
        SiteStatus.model_validate(obj["status"])


def test_plan_yaml_matches_json(capsys):
    main(["plan", "-f", EXAMPLES, "--at", NIGHT, "-o", "json"])
    as_json = json.loads(capsys.readouterr().out)
    main(["plan", "-f", EXAMPLES, "--at", NIGHT, "-o", "yaml"])
    as_yaml = yaml.safe_load(capsys.readouterr().out)
    assert as_json == as_yaml


def test_plan_refuses_bad_manifests_with_one_line_each(capsys):
    bad = REPO / "tests" / "corpus" / "bad" / "workload-both-demands.yaml"
    assert main(["plan", "-f", EXAMPLES, "-f", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "MeshWorkload/bad-workload: spec.accelerators: set exactly one of accelerators or tokensPerSecond" in out
