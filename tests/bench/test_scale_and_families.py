"""The scale benchmark and the family benchmark's engine part, at sizes that run in
seconds: the figures ``make bench`` reports exist, are consistent with each other, and
the tables state them (each target met or missed, the new family columns)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench import families, scale
from bench.run import scale_table


@pytest.fixture(scope="module")
def small_scale() -> dict[str, Any]:
    # check=True runs tests.support.invariants.check_plan on the cold and the warm plan:
    # an invalid plan raises here, so a result at all means both plans are valid
    return scale.run(300, 30, seed=0, check=True)


def test_scale_run_reports_cold_and_warm_figures(small_scale: dict[str, Any]) -> None:
    r = small_scale
    assert (r["workloads"], r["sites"], r["factories"] + r["fleets"]) == (300, 30, 30)
    assert r["checked"] is True and r["check_s"] >= 0
    assert r["changed_workloads"] == 3  # 1% of 300
    for solve in (r["cold"], r["warm"]):
        assert 0 < solve["ratio_to_bound"] <= 1
        assert solve["num_workloads"] == 300
        assert 0 < solve["placed_workloads"] <= 300
        assert isinstance(solve["stop_reason"], str) and isinstance(solve["partitions"], int)
    assert r["cold"]["ratio_to_bound"] == pytest.approx(r["cold"]["objective"] / r["cold"]["bound"])
    assert r["mesh_s"] > 0 and r["cold_s"] > 0 and r["warm_s"] > 0
    assert r["peak_rss_mib"] >= r["peak_rss_after_mesh_mib"] > 0
    assert "baseline_s" not in r and "cold_changed_s" not in r  # off unless asked for


def test_scale_targets_follow_the_figures(small_scale: dict[str, Any]) -> None:
    r = small_scale
    assert r["targets"] == {
        "cold_within_60_s": r["cold_s"] <= 60,
        "ratio_at_least_98_pct": r["cold"]["ratio_to_bound"] >= 0.98,
        "peak_rss_within_8_gib": r["peak_rss_mib"] <= 8192,
        "warm_within_6_s": r["warm_s"] <= 6,
    }
    missed = {**r, "cold_s": 61.0, "warm_s": 1.5, "peak_rss_mib": 9000.0,
              "cold": {**r["cold"], "ratio_to_bound": 0.975}}
    text = scale.table(missed)
    lines = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "61.0 s" in lines["cold plan"] and lines["cold plan"].endswith("**no** |")
    assert "97.5000%" in lines["cold plan / its bound"] and lines["cold plan / its bound"].endswith("**no** |")
    assert "9,000 MiB" in lines["peak RSS (mesh and plans)"]
    assert lines["peak RSS (mesh and plans)"].endswith("**no** |")
    warm = next(v for k, v in lines.items() if k.startswith("warm re-solve"))
    assert "1.5 s" in warm and warm.endswith("| yes |")


def test_the_scale_table_says_when_the_warm_re_solve_fell_back_to_cold(small_scale: dict[str, Any]) -> None:
    r = small_scale
    assert isinstance(r["warm"]["warm"], bool) and r["cold"]["warm"] is False
    assert r["warm"]["preemption_candidates"] >= 0
    fell_back = {**r, "warm": {**r["warm"], "warm": False}}
    warm = next(line for line in scale.table(fell_back).splitlines() if line.startswith("| warm re-solve"))
    assert "**fell back to cold**" in warm
    stayed = {**r, "warm": {**r["warm"], "warm": True}}
    assert "stayed warm" in next(line for line in scale.table(stayed).splitlines() if line.startswith("| warm re-solve"))


def test_a_failed_scale_run_misses_every_target() -> None:
    text = scale_table({"workloads": 50_000, "sites": 5_000, "failed": "exit status -9"})
    assert "exit status -9" in text and "**missed**" in text


def test_scale_baseline_and_cold_changed_when_asked() -> None:
    r = scale.run(120, 12, seed=1, cold_changed=True, baseline=True, check=True)
    assert r["baseline_s"] > 0 and r["cold_changed_s"] > 0
    assert r["warm_speedup"] == pytest.approx(r["cold_changed_s"] / r["warm_s"])
    engine, base = r["cold"]["objective"], r["baseline"]
    assert r["gain_over_baseline"] == pytest.approx((engine - base) / base)
    assert "gain over the kube-scheduler-style baseline" in scale.table(r)


def test_families_engine_part_reports_gap_warm_and_rss() -> None:
    g = families.engine_group("base", 50, 10, 1)
    assert g["peak_rss_mib"] > 0
    [row] = g["rows"]
    assert (row["family"], row["workloads"], row["sites"], row["seed"]) == ("base", 50, 10, 0)
    assert row["gap05_s"] > 0 and row["cold_s"] > 0 and row["warm_s"] > 0
    assert row["gap05_proven"] == (row["gap05_gap"] <= 0.005)
    assert 0 < row["ratio_to_bound"] <= 1 and 0 < row["warm_ratio_to_bound"] <= 1
    assert isinstance(row["stop_reason"], str) and isinstance(row["bound_method"], str)


def _row(seed: int, gap05_s: float, gap: float, warm_s: float, gain: float) -> dict[str, Any]:
    return {"family": "gangs", "workloads": 50, "sites": 10, "seed": seed, "ratio_to_bound": 0.99,
            "gain_over_baseline": gain, "cold_s": 1.0, "gap05_s": gap05_s, "gap05_gap": gap,
            "gap05_proven": gap <= 0.005, "warm_s": warm_s, "warm_ratio_to_bound": 0.98, "peak_rss_mib": 321.4}


def test_family_table_counts_only_proven_gap_times() -> None:
    rows = [_row(0, 1.0, 0.001, 0.2, 0.0), _row(1, 9.0, 0.012, 0.4, -0.000012), _row(2, 3.0, math.nan, 0.3, 0.1)]
    [s] = families.summarise(rows)
    assert (s["gap05_proven"], s["gap05_s_median"], s["gap05_s_max"]) == (1, 1.0, 1.0)
    assert math.isnan(s["gap05_worst_unproven_gap"])  # no bound at all is worse than any gap
    assert (s["warm_s_median"], s["warm_s_max"], s["peak_rss_mib"]) == (0.3, 0.4, 321.4)
    assert s["below_baseline"] == [1]
    header, _, line = families.table([s]).splitlines()
    for column in ("time to proven 0.5% gap (median / max; proven n/m)", "warm s (median / max)", "peak RSS MiB",
                   "gain over baseline (median / worst)", "below baseline (seeds)"):
        assert column in header
    cells = [c.strip() for c in line.split("|")[1:-1]]
    headers = [h.strip() for h in header.split("|")[1:-1]]
    cell = dict(zip(headers, cells, strict=True))
    assert cell["time to proven 0.5% gap (median / max; proven n/m)"] == "1.0 / 1.0 (1/3 proven; worst unproven gap no bound)"
    assert cell["warm s (median / max)"] == "0.30 / 0.40"
    assert cell["peak RSS MiB"] == "321"
    assert cell["gain over baseline (median / worst)"] == "+0.0000% / -0.0012%"  # unrounded loss shown
    assert cell["below baseline (seeds)"] == "1"


def test_family_table_without_a_proven_gap() -> None:
    [s] = families.summarise([_row(0, 2.0, 0.02, 0.1, 0.0)])
    line = families.table([s]).splitlines()[2]
    assert "- (0/1 proven; worst unproven gap 2.0000%)" in line
