"""``meshctl``: the command line of meshplane.

Subcommands:
- ``validate -f PATH...``: check manifests with the models; one line per problem.
- ``crds [--check]``: write the generated CRDs into ``crds/`` and the API reference
  into ``docs/`` (or check them for drift).

Installed as the ``meshctl`` console script (see pyproject.toml); every subcommand
is a small function taking parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from controller import apidocs, crdgen
from controller.manifests import Manifests, load_manifests

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def _console() -> Console:
    # soft_wrap: problem lines stay one line each, whatever the terminal width.
    return Console(soft_wrap=True, highlight=False)


def _print_problems(manifests: Manifests) -> None:
    out = _console()
    for problem in manifests.problems:
        out.print(str(problem), markup=False)
    files = {p.file for p in manifests.problems}
    out.print(
        f"{len(manifests.problems)} problem(s) in {len(files)} file(s)",
        style="bold red",
    )


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
    out.print(mesh_summary(manifests))
    out.print(f"{manifests.files_read} file(s) valid", style="bold green")
    return EXIT_OK


def _generated_files(crds_dir: Path, docs_dir: Path) -> dict[Path, str]:
    files = {crds_dir / name: text for name, text in crdgen.rendered_crds().items()}
    files[docs_dir / apidocs.REFERENCE_FILENAME] = apidocs.render_reference()
    return files


def cmd_crds(args: argparse.Namespace) -> int:
    files = _generated_files(Path(args.output_dir), Path(args.docs_dir))
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

    crds = commands.add_parser("crds", help="write the CRDs and the API reference generated from the models")
    crds.add_argument("--output-dir", default="crds", help="folder of the CRDs (default: crds)")
    crds.add_argument("--docs-dir", default="docs", help="folder of api-reference.md (default: docs)")
    crds.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    crds.set_defaults(handler=cmd_crds)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
