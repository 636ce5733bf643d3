"""``GET /api/v1/timeline``: the next hours of a served mesh with a GridEvent among its
manifests, checked against the core's timeline of the same snapshot; the horizon's
bounds; one computation per publication and horizon."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

import controller.http.routers.timeline as timeline_router
from controller.core.changes import with_statuses
from controller.core.parse import Manifests, parse_objects
from controller.core.reconcile import Snapshot, reconcile
from controller.core.timeline import timeline
from controller.http.app import create_app
from controller.http.source import Published, StaticSource
from controller.http.timeline import timeline_view

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
AT = dt.datetime(2026, 11, 22, 7, 30, tzinfo=dt.UTC)  # night in California
KOREAN = "research/korean-llm-finetune"
HEATWAVE = {
    "apiVersion": "meshplane.io/v1alpha1", "kind": "GridEvent", "metadata": {"name": "heatwave"},
    "spec": {"factory": "kr-sejong-1", "leadTime": "PT30M",
             "source": {"openadr": {"vtn": "kepco", "programId": "dr-1", "eventId": "ev-7"}},
             "intervals": [{"start": "2026-11-22T10:00:00Z", "duration": "PT2H", "importLimitMW": 5},
                           {"duration": "PT1H", "curtailedFlexibleRatio": 0.5}]},
}


@pytest.fixture(scope="module")
def manifests() -> Manifests:
    """The examples, Sejong with 5 MW of firm power (the Korean fine-tune lives on its
    flexible power), and a grid event on Sejong."""
    objects: list[dict[str, Any]] = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        objects += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for obj in objects:
        if obj["metadata"]["name"] == "kr-sejong-1":
            obj["spec"]["power"]["firmMW"] = 5
    parsed = parse_objects([*objects, HEATWAVE], "test")
    assert parsed.problems == [] and len(parsed.grid_events) == 1
    return parsed


@pytest.fixture(scope="module")
def source(manifests: Manifests) -> StaticSource:
    return StaticSource(manifests, AT)


@pytest.fixture()
def client(source: StaticSource) -> Iterator[TestClient]:
    with TestClient(create_app(source)) as test_client:
        yield test_client


def test_the_timeline_is_the_cores_for_the_published_mesh(client: TestClient, source: StaticSource) -> None:
    response = client.get("/api/v1/timeline", params={"hours": 12})
    assert response.status_code == 200, response.text
    body = response.json()
    published = source.current()
    assert published is not None
    expected = timeline_view(timeline(published.snapshot, published.config, dt.timedelta(hours=12)),
                             published.snapshot)
    assert body == expected.model_dump(by_alias=True, mode="json")
    assert (body["start"], body["end"], body["truncated"]) == ("2026-11-22T07:30:00Z", "2026-11-22T19:30:00Z", False)
    # the event's wake-ups: start - lead, start, the interval edge, the end
    assert {"2026-11-22T09:30:00Z", "2026-11-22T10:00:00Z", "2026-11-22T12:00:00Z", "2026-11-22T13:00:00Z"} \
        <= set(body["instants"])
    [event] = body["events"]
    assert event == {"name": "heatwave", "factory": "kr-sejong-1", "phase": "Scheduled",
                     "start": "2026-11-22T10:00:00Z", "end": "2026-11-22T13:00:00Z", "leadTime": "PT30M",
                     "peakCurtailedMW": 20.0, "limitMW": 5.0, "source": "openadr:kepco", "movedCount": 0}
    sejong = next(f for f in body["factories"] if f["name"] == "kr-sejong-1")
    by_time = dict(zip(body["instants"], sejong["points"], strict=True))
    assert by_time["2026-11-22T09:30:00Z"]["plannedCurtailedMW"] == 20.0  # the limit of 5 MW: all flexible
    assert by_time["2026-11-22T09:30:00Z"]["curtailedMW"] == 0.0
    assert by_time["2026-11-22T09:30:00Z"]["driver"] == "heatwave"
    assert by_time["2026-11-22T12:00:00Z"]["curtailedMW"] == 10.0  # half of the flexible power
    assert by_time["2026-11-22T13:00:00Z"]["usableMW"] == 25.0
    moves = [(m["at"], m["phase"], m["because"]) for m in body["moves"] if m["workload"] == KOREAN]
    assert moves[0] == ("2026-11-22T09:30:00Z", "Preempted", "heatwave")  # ahead of the start, by its lead
    assert moves[-1][1:] == ("Placed", "heatwave")


@pytest.mark.parametrize("hours", ["0", "-1", "72.5", "73", "abc", "nan", "inf"])
def test_a_horizon_out_of_range_is_a_422(client: TestClient, hours: str) -> None:
    response = client.get("/api/v1/timeline", params={"hours": hours})
    assert response.status_code == 422, (hours, response.text)
    assert response.json()["detail"]


def test_the_default_horizon_is_a_day_and_72_hours_are_allowed(client: TestClient) -> None:
    day = client.get("/api/v1/timeline").json()
    assert (day["start"], day["end"]) == ("2026-11-22T07:30:00Z", "2026-11-23T07:30:00Z")
    three_days = client.get("/api/v1/timeline", params={"hours": 72})
    assert three_days.status_code == 200 and three_days.json()["end"] == "2026-11-25T07:30:00Z"


class _Counting:
    """``planned_timeline`` with a count of its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float]] = []
        self.inner = timeline_router.planned_timeline

    def __call__(self, snapshot: Any, outcome: Any, config: Any, hours: float) -> Any:
        self.calls.append((id(outcome), hours))
        return self.inner(snapshot, outcome, config, hours)


class _Switchable:
    """A source whose publication the test replaces (as the operator's loop does)."""

    def __init__(self, published: Published) -> None:
        self.published = published

    def current(self) -> Published | None:
        return self.published


def test_the_timeline_is_computed_once_per_publication_and_horizon(
    source: StaticSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no minimum age: a new horizon or a new publication is computed again, the
    same one is served from the cache."""
    counting = _Counting()
    monkeypatch.setattr(timeline_router, "planned_timeline", counting)
    first = source.current()
    assert first is not None
    switchable = _Switchable(first)
    app = create_app(switchable, timeline_max_age_s=0)
    with TestClient(app) as client:
        one = client.get("/api/v1/timeline", params={"hours": 6})
        cached = app.state.timeline_cache
        two = client.get("/api/v1/timeline", params={"hours": 6})
        assert one.status_code == two.status_code == 200 and one.json() == two.json()
        assert len(counting.calls) == 1
        assert app.state.timeline_cache is cached and (cached.version, cached.hours) == (1, 6.0)
        # another horizon: computed, and it replaces the cached one
        assert client.get("/api/v1/timeline", params={"hours": 3}).status_code == 200
        assert len(counting.calls) == 2 and app.state.timeline_cache.hours == 3.0
        # a new publication: computed again for it
        switchable.published = dataclasses.replace(first, version=2)
        again = client.get("/api/v1/timeline", params={"hours": 3})
        assert again.status_code == 200 and len(counting.calls) == 3
        assert app.state.timeline_cache.version == 2
        client.get("/api/v1/timeline", params={"hours": 3})
        assert len(counting.calls) == 3


def test_a_new_publication_within_the_minimum_age_is_served_the_last_timeline(
    source: StaticSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator publishes at every solve and readiness refresh: within
    ``timeline_max_age_s`` the dashboards following it get the timeline already planned
    (its ``start`` says from when), not a new day's planning each time."""
    counting = _Counting()
    monkeypatch.setattr(timeline_router, "planned_timeline", counting)
    first = source.current()
    assert first is not None
    switchable = _Switchable(first)
    app = create_app(switchable, timeline_max_age_s=3600)
    with TestClient(app) as client:
        one = client.get("/api/v1/timeline", params={"hours": 6}).json()
        switchable.published = dataclasses.replace(first, version=2)
        assert client.get("/api/v1/timeline", params={"hours": 6}).json() == one
        assert len(counting.calls) == 1
        # another horizon is another question: computed
        assert client.get("/api/v1/timeline", params={"hours": 3}).status_code == 200
        assert len(counting.calls) == 2


def test_the_event_says_how_many_workloads_it_moved_so_far(manifests: Manifests) -> None:
    first = StaticSource(manifests, AT).current()
    assert first is not None
    snapshot, outcome = first.snapshot, first.outcome
    for hour, minute in ((9, 30), (10, 0)):  # the move at 09:30, then its status written back and kept at 10:00
        settled = with_statuses(snapshot, outcome)
        snapshot = Snapshot(settled.factories, settled.fleets, settled.workloads,
                            dt.datetime(2026, 11, 22, hour, minute, tzinfo=dt.UTC), grid_events=settled.grid_events)
        outcome = reconcile(snapshot, first.config, outcome.plan)
    stored = snapshot.grid_events[0].status
    assert stored is not None and stored.moved_workloads == [KOREAN] and stored.moved_count == 1
    assert outcome.grid_events["heatwave"].moved_count == 1
    published = Published(2, snapshot, outcome, snapshot.at, 0.0, warm=True, config=first.config)
    with TestClient(create_app(_Switchable(published))) as client:
        body = client.get("/api/v1/timeline", params={"hours": 6}).json()
    assert body["events"][0]["phase"] == "Active"
    assert body["events"][0]["movedCount"] == 1  # what its status says so far


def test_before_the_first_solve_there_is_no_timeline() -> None:
    class Empty:
        def current(self) -> Published | None:
            return None

    with TestClient(create_app(Empty())) as client:
        response = client.get("/api/v1/timeline", params={"hours": 6})
    assert response.status_code == 503 and response.json()["detail"]
