"""``bench.timeline`` on a small mesh: both plannings of the day run, the events are
there, the planning-ahead rule holds for both, and the table says which one the
timeline uses at that size. (Times are figures of ``make bench``, never asserted.)"""

from __future__ import annotations

from bench.timeline import EVENTS, mesh_with_events, run, table


def test_the_mesh_has_one_event_on_each_of_the_busiest_factories() -> None:
    snapshot = mesh_with_events(120, 20, seed=3)
    assert len(snapshot.grid_events) == EVENTS
    assert len({e.spec.factory for e in snapshot.grid_events}) == EVENTS


def test_both_plannings_of_the_day_keep_every_factory_within_its_power() -> None:
    result = run(120, 20, seed=3)
    for name in ("greedy", "full"):
        figures = result[name]
        assert figures["instants"] >= 1 + 3 * EVENTS - 1  # start - lead, start and end of each event (some shared)
        assert figures["overloads"] == 0, figures
        assert figures["moves"] > 0  # the events take flexible power that is in use: work must move
    text = table(result)
    assert "CP-SAT and its bound, as the operator plans (the timeline's choice at this size)" in text
