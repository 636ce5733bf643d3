"""The delivery sink: a plan made while a cluster was lost never reaches that cluster,
not even through a refresh made after the cluster came back (it would delete there the
work the next plan puts back). The layer is a recording fake: this tests the sink's
decision, the delivery layer itself runs against real clusters in tests/e2e."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from controller.core.delivery import ClusterHealth, ClusterObjects, Observed
from controller.core.reconcile import Snapshot, reconcile
from controller.operator.sinks import DeliverySink, Solved, SolveMode, SolveReport
from placement.problem import SolverConfig
from tests.support.delivery import factory, member_cluster, workload

AT = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
CONFIG = SolverConfig(time_limit_s=10, num_workers=1)


@dataclass
class RecordingLayer:
    settings: Any = field(default_factory=lambda: SimpleNamespace(hub="hub-eu"))
    calls: list[tuple[dict[str, ClusterObjects], frozenset[str]]] = field(default_factory=list)

    def update(self, clusters: Sequence[Any], site_targets: Mapping[str, str]) -> None:
        pass

    def targets(self) -> list[str]:
        return ["paris"]

    def submit(self, desired: Mapping[str, ClusterObjects], namespaces: Collection[str],
               planned_without: Collection[str] = ()) -> None:
        self.calls.append((dict(desired), frozenset(planned_without)))


class EveryUid(dict[Any, str]):
    """Every workload's uid is known."""

    def get(self, key: Any, default: Any = None) -> str:
        return "uid-1"


class KnownUids:
    def uids(self) -> dict[Any, str]:
        return EveryUid()


def _solved(state: str, mode: SolveMode) -> Solved:
    health = ClusterHealth(state, state, "", AT, AT)  # type: ignore[arg-type]
    observed = Observed(clusters={"paris": health}, delivering=frozenset({"paris"}))
    snapshot = Snapshot([factory("fr-1", "FR", 10, "paris")], [], [workload("a")], AT,
                        clusters=[member_cluster("paris")], observed=observed)
    report = SolveReport(at=AT, warm=False, solve_ms=0.0, changes=0, status_patches=0, events=0, mode=mode)
    return Solved(snapshot=snapshot, outcome=reconcile(snapshot, CONFIG), changes=[], refused=[], leading=True,
                  mode=mode, at=AT, config=CONFIG, version=1, report=report)


def test_a_plan_made_while_a_cluster_was_lost_is_never_delivered_to_it() -> None:
    layer = RecordingLayer()
    sink = DeliverySink(layer, KnownUids())  # type: ignore[arg-type]
    sink.accept(_solved("Reachable", "cold"))  # placed there, delivered
    sink.accept(_solved("Lost", "warm"))  # planned without it
    sink.accept(_solved("Reachable", "refresh"))  # back, but the statuses are from the plan made without it
    sink.accept(_solved("Reachable", "warm"))  # the plan made with it again
    assert [without for _, without in layer.calls] == [frozenset(), {"paris"}, {"paris"}, frozenset()]
    first, _ = layer.calls[0]
    assert first["paris"].deployments  # the work was there before, and is there in the last plan
    assert layer.calls[-1][0]["paris"].deployments.keys() == first["paris"].deployments.keys()
