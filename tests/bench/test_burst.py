"""bench.burst at a size that runs in seconds: one row per step, the first cold, the
moves counted against the step before, the table and JSON forms, bad steps refused."""

from __future__ import annotations

import json

import pytest

from bench import burst


def test_each_step_is_planned_from_the_last_and_its_moves_counted() -> None:
    rows = burst.run(240, 20, [80, 160, 240], seed=3)
    assert [r["workloads"] for r in rows] == [80, 160, 240]
    assert rows[0]["warm"] is False and rows[0]["warm_fallback"] == "" and rows[0]["moved"] == 0
    for before, row in zip(rows, rows[1:], strict=False):
        assert 0 <= row["moved"] <= before["placed"]  # only workloads placed before can move
        assert row["warm"] or row["warm_fallback"]  # a cold re-plan says why
        assert 0 <= row["floor_shortfall"] < 1
        assert row["placed"] <= row["workloads"]


def test_the_command_prints_json_and_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    burst.main(["--workloads", "120", "--sites", "12", "--steps", "60,120", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["sites"] == 12 and [s["workloads"] for s in out["steps"]] == [60, 120]
    burst.main(["--workloads", "120", "--sites", "12", "--steps", "60,120"])
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| workloads |") and len(table) == 4
    assert table[2].startswith("| 60 | cold (first plan)")


def test_steps_must_grow_within_the_mesh() -> None:
    with pytest.raises(SystemExit):
        burst.main(["--workloads", "100", "--steps", "60,50"])
    with pytest.raises(SystemExit):
        burst.main(["--workloads", "100", "--steps", "60,150"])
