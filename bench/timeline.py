"""Timeline benchmark: a day of grid events planned ahead, as ``meshctl plan --horizon 24h``
and ``GET /api/v1/timeline`` plan it.

``python -m bench.timeline --workloads 1000 --sites 50 [--seed 0] [--json]`` builds
``synthetic_mesh(workloads, sites, seed, factory_share=0.3)`` as manifests, adds a
GridEvent on each of the five factories with the most flexible power in use (a limit
that withdraws all of it, for 3 h, starting 1 to 5 h ahead, 15 min lead), and plans the
next 24 h twice, side by side:

* ``greedy``: the instants ahead planned by the engine's greedy stage (what the timeline
  does above ``controller.core.timeline.FULL_SOLVE_MAX_PAIRS``);
* ``full``: every instant planned with CP-SAT and its bound, as the operator will plan it.

For each: wall time, instants, planned moves, and a check of the planning-ahead rule at
every instant: the power a factory is allocated never exceeds the power in force until
the next instant, unless its firm work alone does (``overloads`` counts the misses; it
must be 0). ``same_moves`` says whether both found the same (workload, instant) moves.

Called by ``bench.run`` (``make bench``; ``--skip-timeline`` skips it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any

from controller.core.conditions import timestamp
from controller.core.grid import factory_grid
from controller.core.parse import parse_objects
from controller.core.reconcile import Snapshot, reconcile
from controller.core.timeline import FULL_SOLVE_MAX_PAIRS, Timeline, timeline
from placement.problem import SolverConfig
from tests.support.meshes import synthetic_mesh, to_manifests

AT = dt.datetime(2026, 7, 14, 12, 0, tzinfo=dt.UTC)
EVENTS = 5
EPSILON_MW = 1e-6


def mesh_with_events(workloads: int, sites: int, seed: int) -> Snapshot:
    objects = to_manifests(synthetic_mesh(workloads, sites, seed=seed, factory_share=0.3, at=AT))
    manifests = parse_objects(objects, "bench")
    snapshot = Snapshot(manifests.factories, manifests.fleets, manifests.workloads, AT)
    used = reconcile(snapshot, SolverConfig(use_cpsat=False, compute_bound=False)).plan.sites
    busiest = sorted(manifests.factories, key=lambda f: -used[f.metadata.name].flexible_mw_used)[:EVENTS]
    events = []
    for index, factory in enumerate(busiest):
        power = factory.spec.power
        events.append({
            "apiVersion": "meshplane.io/v1alpha1", "kind": "GridEvent",
            "metadata": {"name": f"bench-{factory.metadata.name}"},
            "spec": {"factory": factory.metadata.name, "leadTime": "PT15M", "intervals": [{
                "start": timestamp(AT + dt.timedelta(hours=1 + index)), "duration": "PT3H",
                "importLimitMW": round(power.firm_mw, 6)}]},
        })
    grid = parse_objects(events, "bench-events")
    return Snapshot(manifests.factories, manifests.fleets, manifests.workloads, AT, grid_events=grid.grid_events)


def overloads(found: Timeline, snapshot: Snapshot) -> int:
    """Instants at which a factory is allocated more than the power in force until the
    next instant (beyond what its firm work alone draws)."""
    factories = {f.metadata.name: f for f in snapshot.factories}
    misses = 0
    ends = [*found.instants[1:], found.end]
    for index, (at, until) in enumerate(zip(found.instants, ends, strict=True)):
        for name, points in found.factories.items():
            factory = factories[name]
            point = points[index]
            # the power in force is constant between instants: check its start and just before the next
            worst = max(factory_grid(factory, snapshot.grid_events, moment).in_force_mw
                        for moment in (at, max(at, until - dt.timedelta(seconds=1))))
            usable = factory.spec.power.firm_mw + max(0.0, factory.spec.power.flexible_mw - worst)
            if point.allocated_mw > max(usable, factory.spec.power.firm_mw) + EPSILON_MW:
                misses += 1
    return misses


def run(workloads: int, sites: int, seed: int = 0) -> dict[str, Any]:
    started = time.perf_counter()
    snapshot = mesh_with_events(workloads, sites, seed)
    mesh_s = time.perf_counter() - started
    config = SolverConfig(num_workers=2)
    first = reconcile(snapshot, config)
    result: dict[str, Any] = {"workloads": workloads, "sites": sites, "seed": seed, "events": EVENTS,
                              "mesh_s": round(mesh_s, 2)}
    moves: dict[str, set[tuple[str, str]]] = {}
    for name, max_pairs in (("greedy", 0), ("full", 10**12)):
        started = time.perf_counter()
        found = timeline(snapshot, config, dt.timedelta(hours=24), first=first, full_solve_max_pairs=max_pairs)
        seconds = time.perf_counter() - started
        moves[name] = {(m.workload, timestamp(m.at)) for m in found.moves}
        result[name] = {"seconds": round(seconds, 2), "instants": len(found.instants), "moves": len(found.moves),
                        "overloads": overloads(found, snapshot)}
    result["same_moves"] = moves["greedy"] == moves["full"]
    result["speedup"] = round(result["full"]["seconds"] / max(result["greedy"]["seconds"], 1e-9), 1)
    return result


def table(r: dict[str, Any]) -> str:
    head = (f'`python -m bench.timeline --workloads {r["workloads"]} --sites {r["sites"]} --json`: the next 24 h '
            f'planned at every wake-up, {r["events"]} grid events (all flexible power of the factories using '
            f'the most, 3 h each, 15 min lead).\n\n')
    rows = ["| instants ahead planned by | wall time | instants | planned moves | overloads |",
            "| --- | ---: | ---: | ---: | ---: |"]
    greedy_default = r["workloads"] * r["sites"] > FULL_SOLVE_MAX_PAIRS
    for name, label in (("greedy", "the greedy stage" + (" (the timeline's choice at this size)" if greedy_default
                                                           else "")),
                        ("full", "CP-SAT and its bound, as the operator plans" + (
                            "" if greedy_default else " (the timeline's choice at this size)"))):
        x = r[name]
        rows.append(f'| {label} | {x["seconds"]:.1f} s | {x["instants"]} | {x["moves"]} | {x["overloads"]} |')
    tail = (f'\n\nGreedy is {r["speedup"]}x faster; the same (workload, instant) moves: '
            f'{"yes" if r["same_moves"] else "no"}. Overloads (a factory allocated more than the power in force '
            'before the next wake-up) must be 0.')
    return head + "\n".join(rows) + tail


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", type=int, default=1000)
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    result = run(a.workloads, a.sites, a.seed)
    sys.stdout.write(json.dumps(result, indent=2) + "\n" if a.json else table(result) + "\n")


if __name__ == "__main__":
    main()
