"""``meshctl``: the command line of meshplane.

Subcommands:
- ``validate -f PATH...``: check manifests with the models; one line per problem.
- ``plan -f PATH... [--at TIME] [-o table|json|yaml]``: run the reconcile core the
  operator runs on the manifests in memory and print the placements.
- ``crds [--check]``: write the generated CRDs into ``crds/`` and the chart's
  ``crds/``, and the API reference into ``docs/`` (or check them all for drift).

Installed as the ``meshctl`` console script (see pyproject.toml); every subcommand
is a small function taking parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from controller.api import apidocs, crdgen
from controller.cli.files import load_manifests
from controller.core.parse import Manifests, topology_warnings
from controller.core.reconcile import Outcome, Snapshot, reconcile
from controller.core.statuses import status_object
from placement.problem import SolverConfig

EXIT_OK = 0
EXIT_PROBLEMS = 1


# Tables printed into a pipe or a CI log get this width rather than rich's 80 columns.
_PIPE_WIDTH = 200


def _console() -> Console:
    # soft_wrap: problem lines stay one line each, whatever the terminal width.
    return Console(soft_wrap=True, highlight=False, width=None if sys.stdout.isatty() else _PIPE_WIDTH)


def _print_problems(manifests: Manifests) -> None:
    out = _console()
    for problem in manifests.problems:
        out.print(str(problem), markup=False)
    files = {p.file for p in manifests.problems}
    out.print(
        f"{len(manifests.problems)} problem(s) in {len(files)} file(s)",
        style="bold red",
    )


def _print_warnings(manifests: Manifests, out: Console) -> None:
    for warning in topology_warnings(manifests):
        out.print(f"warning: {warning}", style="yellow", markup=False)


def mesh_summary(manifests: Manifests) -> Table:
    """A short table of the mesh: sites, power, devices, workloads."""
    factory_devices = sum(p.count for f in manifests.factories for p in f.spec.accelerator_pools)
    firm_mw = sum(f.spec.power.firm_mw for f in manifests.factories)
    flexible_mw = sum(f.spec.power.flexible_mw for f in manifests.factories)
    fleet_devices = sum(f.spec.devices for f in manifests.fleets)
    opted_in = sum(round(f.spec.devices * f.spec.opt_in_ratio) for f in manifests.fleets)
    fleet_cap_mw = sum(f.spec.max_fleet_mw for f in manifests.fleets)
    by_type = Counter(w.spec.type for w in manifests.workloads)

    table = Table(title="Mesh", show_header=True, header_style="bold")
    table.add_column("What")
    table.add_column("Count", justify="right")
    table.add_column("Detail")
    table.add_row(
        "AI factories", str(len(manifests.factories)),
        f"{firm_mw:,.0f} MW firm + {flexible_mw:,.0f} MW flexible; {factory_devices:,} devices",
    )
    table.add_row(
        "Edge fleets", str(len(manifests.fleets)),
        f"{fleet_devices:,} devices, {opted_in:,} opted in; cap {fleet_cap_mw:,.1f} MW",
    )
    table.add_row(
        "Workloads", str(len(manifests.workloads)),
        ", ".join(f"{count} {kind}" for kind, count in sorted(by_type.items())) or "-",
    )
    return table


def cmd_validate(args: argparse.Namespace) -> int:
    manifests = load_manifests(args.filename)
    if manifests.files_read == 0 and not manifests.problems:
        _console().print(f"no YAML files found in {', '.join(args.filename)}")
        return EXIT_PROBLEMS
    if manifests.problems:
        _print_problems(manifests)
        return EXIT_PROBLEMS
    out = _console()
    _print_warnings(manifests, out)
    out.print(mesh_summary(manifests))
    out.print(f"{manifests.files_read} file(s) valid", style="bold green")
    return EXIT_OK


def _parse_time(text: str) -> dt.datetime:
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r} (e.g. 2026-11-21T23:00:00-08:00)") from exc
    return at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)


def status_objects(manifests: Manifests, outcome: Outcome) -> dict[str, list[dict]]:
    """Every resource's status exactly as the operator writes it, keyed by kind."""
    return {
        "workloads": [status_object(w, outcome.workloads[w.key]) for w in manifests.workloads],
        "factories": [status_object(f, outcome.factories[f.metadata.name]) for f in manifests.factories],
        "fleets": [status_object(f, outcome.fleets[f.metadata.name]) for f in manifests.fleets],
    }


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _workload_table(manifests: Manifests, outcome: Outcome) -> Table:
    table = Table(title="Workloads", header_style="bold")
    for name, justify in (("Workload", "left"), ("Type", "left"), ("Phase", "left"), ("Sites", "left"),
                          ("Devices", "right"), ("MW", "right"), ("Latency ms", "right"),
                          ("Tokens/J", "right"), ("Reason", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for workload in manifests.workloads:
        status = outcome.workloads[workload.key]
        devices = sum(a.devices for a in status.assignments)
        watts = status.power_mw * 1e6
        style = {"Placed": "green", "Unschedulable": "red"}.get(status.phase, "yellow")
        table.add_row(
            workload.key, workload.spec.type, f"[{style}]{status.phase}[/]", status.sites.replace(",", ", ") or "-",
            f"{devices:,}" if devices else "-", _fmt(status.power_mw, 2) if devices else "-",
            _fmt(status.latency_ms), _fmt(status.tokens_per_second / watts if watts else None, 3),
            "" if status.phase == "Placed" else status.message,
        )
    return table


def _site_table(manifests: Manifests, outcome: Outcome) -> Table:
    table = Table(title="Sites", header_style="bold")
    for name in ("Site", "Kind", "Firm MW used/free", "Flexible MW used/free", "Devices used/free", "Workloads", "Tokens/J"):
        table.add_column(name, justify="left" if name in ("Site", "Kind") else "right")
    rows = [(f, outcome.factories[f.metadata.name]) for f in manifests.factories]
    rows += [(f, outcome.fleets[f.metadata.name]) for f in manifests.fleets]
    for site, status in rows:
        power = status.power
        used = sum(p.devices_allocated for p in status.pools)
        free = sum(p.devices_available for p in status.pools)
        table.add_row(
            site.metadata.name, site.kind,
            f"{_fmt(power.firm_allocated_mw)} / {_fmt(power.firm_available_mw)}" if power else "-",
            f"{_fmt(power.flexible_allocated_mw)} / {_fmt(power.flexible_available_mw)}" if power else "-",
            f"{used:,} / {free:,}", str(status.workload_count), _fmt(status.tokens_per_joule, 3),
        )
    return table


def _summary_line(outcome: Outcome) -> str:
    stats = outcome.plan.stats
    decisions = outcome.plan.workloads.values()
    placed = [d for d in decisions if d.phase == "Placed"]
    total_mw = sum(d.power_mw for d in placed)
    tokens = sum(d.tokens_per_second for d in placed)
    return (
        f"placed {len(placed)}/{len(decisions)} workloads (priority-weighted demand "
        f"{stats.placed_priority_demand:,.0f}, greedy {stats.greedy_placed_priority_demand:,.0f}); "
        f"{total_mw:,.1f} MW; {tokens:,.0f} tokens/s; objective {stats.objective:,.0f}, "
        f"bound {stats.bound:,.0f}, gap {stats.gap:.2%} ({stats.status}"
        f"{', greedy fallback' if stats.fallback_used else ''}); solve {stats.wall_ms:,.0f} ms"
    )


def cmd_plan(args: argparse.Namespace) -> int:
    manifests = load_manifests(args.filename)
    if manifests.problems:
        _print_problems(manifests)
        return EXIT_PROBLEMS
    at = args.at or dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    config = SolverConfig(time_limit_s=args.time_limit, num_workers=args.workers, random_seed=args.seed)
    outcome = reconcile(Snapshot(manifests.factories, manifests.fleets, manifests.workloads, at), config)
    if args.output == "json":
        sys.stdout.write(json.dumps(status_objects(manifests, outcome), indent=2) + "\n")
    elif args.output == "yaml":
        sys.stdout.write(yaml.safe_dump(status_objects(manifests, outcome), sort_keys=False))
    else:
        out = _console()
        _print_warnings(manifests, out)
        out.print(f"Plan for {at.isoformat()}", style="bold")
        out.print(_workload_table(manifests, outcome))
        out.print(_site_table(manifests, outcome))
        out.print(_summary_line(outcome), markup=False)
    return EXIT_OK


def _generated_files(crds_dir: Path, docs_dir: Path, chart_dir: Path) -> dict[Path, str]:
    """Every file generated from the models: CRDs, the chart's identical copies, docs."""
    files = {}
    for name, text in crdgen.rendered_crds().items():
        files[crds_dir / name] = text
        files[chart_dir / "crds" / name] = text
    files[docs_dir / apidocs.REFERENCE_FILENAME] = apidocs.render_reference()
    return files


def cmd_crds(args: argparse.Namespace) -> int:
    files = _generated_files(Path(args.output_dir), Path(args.docs_dir), Path(args.chart_dir))
    out = _console()
    if args.check:
        stale = [path for path, text in files.items() if not path.is_file() or path.read_text() != text]
        for path in stale:
            out.print(f"{path}: out of date; run `meshctl crds` (make crds)", markup=False)
        return EXIT_PROBLEMS if stale else EXIT_OK
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out.print(f"wrote {path}", markup=False)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshctl",
        description="Place AI work across AI factories and edge fleets: power, latency and sovereignty.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check manifests; one line per problem")
    validate.add_argument(
        "-f", "--filename", action="append", required=True, metavar="PATH",
        help="a YAML file or a folder of them (repeatable; multi-document files allowed)",
    )
    validate.set_defaults(handler=cmd_validate)

    plan = commands.add_parser("plan", help="place the workloads of manifests in memory and print the plan")
    plan.add_argument(
        "-f", "--filename", action="append", required=True, metavar="PATH",
        help="a YAML file or a folder of them (repeatable)",
    )
    plan.add_argument("--at", type=_parse_time, help="plan for this time (ISO 8601; default: now) — fleets' windows depend on it")
    plan.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table", help="output format")
    plan.add_argument("--time-limit", type=float, default=10.0, metavar="SECONDS", help="CP-SAT time limit")
    plan.add_argument("--workers", type=int, default=2, help="CP-SAT worker threads")
    plan.add_argument("--seed", type=int, default=0, help="CP-SAT random seed")
    plan.set_defaults(handler=cmd_plan)

    crds = commands.add_parser("crds", help="write the CRDs and the API reference generated from the models")
    crds.add_argument("--output-dir", default="crds", help="folder of the CRDs (default: crds)")
    crds.add_argument("--docs-dir", default="docs", help="folder of api-reference.md (default: docs)")
    crds.add_argument("--chart-dir", default="helm/meshplane", help="Helm chart whose crds/ gets copies (default: helm/meshplane)")
    crds.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    crds.set_defaults(handler=cmd_crds)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
