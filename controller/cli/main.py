"""``meshctl``: the command line of meshplane.

Subcommands:
- ``validate -f PATH...``: check manifests with the models; one line per problem.
- ``plan -f PATH... [--at TIME] [-o table|json|yaml]``: run the reconcile core the
  operator runs on the manifests in memory and print the placements; with
  ``--what-if CHANGE`` (repeatable) or ``--diff PREVIOUS.json``, also what changes
  (:mod:`controller.cli.whatif`).
- ``crds [--check]``: write the generated CRDs into ``crds/`` and the chart's
  ``crds/``, and the API reference and ``docs/openapi.json`` into ``docs/`` (or check
  them all for drift).
- ``serve -f PATH... [--host] [--port] [--at TIME]``: the HTTP API and dashboard
  (``controller.http``) over the manifests, reconciled once; loopback and no auth.

``-f -`` reads standard input. Bad arguments give one line naming the argument and
exit 2; bad manifests one line per problem and exit 1; never a traceback. Installed as
the ``meshctl`` console script (see pyproject.toml); every subcommand is a small
function taking parsed arguments and returning the exit code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

import yaml

import placement_ext
from controller.api import codegen
from controller.api.resources import API_VERSION
from controller.cli import horizon, render, whatif
from controller.cli.files import load_manifests
from controller.core.parse import Manifests
from controller.core.reconcile import Snapshot, reconcile
from placement.problem import SolverConfig

_DEFAULTS = SolverConfig()

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2

MAX_WORKERS = 256
MAX_SEED = 2**31 - 1
MAX_TIME_LIMIT_S = 24 * 3600.0


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``meshctl plan: error: argument --workers: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _bounded(kind: type[int] | type[float], low: float, high: float, low_open: bool = False) -> Callable[[str], float]:
    noun = "an integer" if kind is int else "a number"
    low_text = f"> {low:g}" if low_open else f">= {low:g}"

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {noun} {low_text} and <= {high:g} (got {text!r})") from None
        if not (value > low if low_open else value >= low) or value > high:  # NaN fails the first test
            raise argparse.ArgumentTypeError(f"must be {noun} {low_text} and <= {high:g} (got {text!r})")
        return value

    return parse


def _parse_time(text: str) -> dt.datetime:
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {text!r} (e.g. 2026-11-21T23:00:00-08:00)"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _no_manifests(manifests: Manifests, paths: Sequence[str]) -> bool:
    if manifests.files_read == 0 and not manifests.problems:
        render.console().print(f"no YAML files found in {', '.join(paths)}", markup=False)
        return True
    return False


def cmd_validate(args: argparse.Namespace) -> int:
    manifests = load_manifests(args.filename)
    if _no_manifests(manifests, args.filename):
        return EXIT_PROBLEMS
    out = render.console()
    if manifests.problems:
        render.print_problems(manifests, out)
        return EXIT_PROBLEMS
    render.print_warnings(manifests, out)
    out.print(render.mesh_table(manifests))
    out.print(f"{manifests.files_read} file(s) valid", style="bold green")
    return EXIT_OK


def _plannable(args: argparse.Namespace) -> tuple[Manifests, dt.datetime] | int:
    """The manifests of ``-f`` and the time to plan for, or the exit code after saying
    why there is nothing to plan (shared by ``plan`` and ``serve``)."""
    manifests = load_manifests(args.filename)
    if _no_manifests(manifests, args.filename):
        return EXIT_PROBLEMS
    if manifests.problems:
        render.print_problems(manifests, render.console())
        return EXIT_PROBLEMS
    return manifests, args.at or dt.datetime.now(dt.UTC).replace(microsecond=0)


def cmd_plan(args: argparse.Namespace) -> int:
    plannable = _plannable(args)
    if isinstance(plannable, int):
        return plannable
    manifests, at = plannable
    config = SolverConfig(time_limit_s=args.time_limit, num_workers=args.workers, random_seed=args.seed)
    if args.horizon is not None:
        if args.diff:
            sys.stderr.write("meshctl plan: --horizon and --diff cannot be combined\n")
            return EXIT_USAGE
        return horizon.run(args, manifests, at, config)
    if whatif.wanted(args):
        return whatif.run(args, manifests, at, config)
    outcome = reconcile(Snapshot(manifests.factories, manifests.fleets, manifests.workloads, at, grid_events=manifests.grid_events), config)
    if args.output == "json":
        sys.stdout.write(json.dumps(render.status_objects(manifests, outcome), indent=2) + "\n")
    elif args.output == "yaml":
        sys.stdout.write(yaml.safe_dump(render.status_objects(manifests, outcome), sort_keys=False))
    else:
        out = render.console()
        render.print_warnings(manifests, out)
        out.print(f"Plan for {at.isoformat()}", style="bold")
        out.print(render.workload_table(manifests, outcome))
        out.print(render.site_table(manifests, outcome))
        out.print(render.summary_line(outcome), markup=False)
    return EXIT_OK


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def cmd_serve(args: argparse.Namespace) -> int:
    # imported here: the HTTP stack is not loaded by the other subcommands
    from controller.http.app import create_app
    from controller.http.server import serve
    from controller.http.source import StaticSource

    # no auth here, so anyone who reaches the port reads the mesh: loopback unless told
    if args.host not in LOOPBACK_HOSTS and not args.insecure_no_auth:
        sys.stderr.write(
            f"meshctl serve: error: --host {args.host} is not loopback and meshctl serve has no authentication; "
            "add --insecure-no-auth to serve anyone who reaches the port\n"
        )
        return EXIT_USAGE
    plannable = _plannable(args)
    if isinstance(plannable, int):
        return plannable
    manifests, at = plannable
    app = create_app(StaticSource(manifests, at))
    shown = f"[{args.host}]" if ":" in args.host else args.host
    render.console().print(f"serving the plan for {at.isoformat()} at http://{shown}:{args.port}/", markup=False)
    serve(app, args.host, args.port)
    return EXIT_OK


def cmd_crds(args: argparse.Namespace) -> int:
    from controller.http.openapi import FILENAME as OPENAPI_FILENAME
    from controller.http.openapi import openapi_text

    files = codegen.generated_files(Path(args.output_dir), Path(args.docs_dir), Path(args.chart_dir))
    files[Path(args.docs_dir) / OPENAPI_FILENAME] = openapi_text()  # the HTTP API's, from controller.http
    out = render.console()
    if args.check:
        stale = codegen.stale_files(files)
        for path in stale:
            out.print(f"{path}: out of date; run `meshctl crds` (make crds)", markup=False)
        return EXIT_PROBLEMS if stale else EXIT_OK
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out.print(f"wrote {path}", markup=False)
    return EXIT_OK


def version_text() -> str:
    try:
        release = version("meshplane")
    except PackageNotFoundError:  # run from a source tree without an install
        release = "unknown"
    openmp = "OpenMP" if getattr(placement_ext, "OPENMP", False) else "serial"
    return f"meshctl {release} (API {API_VERSION}; placement kernels: {openmp})"


def _filename_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-f", "--filename", action="append", required=True, metavar="PATH",
        help="a YAML file, a folder of them, or - for standard input (repeatable; multi-document files allowed)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="meshctl",
        description="Place AI work across AI factories and edge fleets: power, latency and sovereignty.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    validate = commands.add_parser("validate", help="check manifests; one line per problem")
    _filename_argument(validate)
    validate.set_defaults(handler=cmd_validate)

    plan = commands.add_parser("plan", help="place the workloads of manifests in memory and print the plan")
    _filename_argument(plan)
    plan.add_argument(
        "--at", type=_parse_time, help="plan for this time (ISO 8601; default: now): fleets' windows depend on it"
    )
    plan.add_argument("-o", "--output", choices=("table", "json", "yaml"), default="table", help="output format")
    plan.add_argument(
        "--time-limit", type=_bounded(float, 0.0, MAX_TIME_LIMIT_S, low_open=True), default=_DEFAULTS.time_limit_s,
        metavar="SECONDS",
        help="wall-clock safety net of one solve (default: %(default)s); the solver's own budget is deterministic "
        "work, so the same mesh gives the same plan on any machine unless this limit is hit (then the summary says so)",
    )
    plan.add_argument(
        "--workers", type=_bounded(int, 1, MAX_WORKERS), default=_DEFAULTS.num_workers,
        help="CP-SAT worker threads (default: %(default)s)",
    )
    plan.add_argument(
        "--seed", type=_bounded(int, 0, MAX_SEED), default=_DEFAULTS.random_seed,
        help="CP-SAT random seed (default: %(default)s)",
    )
    whatif.add_arguments(plan)
    horizon.add_arguments(plan)
    plan.set_defaults(handler=cmd_plan)

    serve = commands.add_parser("serve", help="serve the HTTP API and dashboard over manifests (no auth)")
    _filename_argument(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    serve.add_argument("--port", type=_bounded(int, 0, 65535), default=8080, help="port (default: %(default)s)")
    serve.add_argument("--at", type=_parse_time, help="plan for this time (ISO 8601; default: now)")
    serve.add_argument(
        "--insecure-no-auth", action="store_true",
        help="allow a non-loopback --host although nothing checks who calls (the operator's API has auth)",
    )
    serve.set_defaults(handler=cmd_serve)

    crds = commands.add_parser("crds", help="write the CRDs and the API reference generated from the models")
    crds.add_argument("--output-dir", default=str(codegen.DEFAULT_CRDS_DIR), help="folder of the CRDs (default: crds)")
    crds.add_argument("--docs-dir", default=str(codegen.DEFAULT_DOCS_DIR), help="folder of api-reference.md (default: docs)")
    crds.add_argument(
        "--chart-dir", default=str(codegen.DEFAULT_CHART_DIR),
        help="Helm chart whose crds/ gets copies (default: helm/meshplane)",
    )
    crds.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    crds.set_defaults(handler=cmd_crds)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
