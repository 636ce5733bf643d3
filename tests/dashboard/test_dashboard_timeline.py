"""The dashboard's "Grid and power, next 24 h" card in a real headless Chromium, over a
real ``meshctl serve``.

Two meshes. The examples as they are (no grid event: the empty states), and the examples
with a grid event, after docs/grid-events.md's worked example: kr-sejong-1's firm power
lowered to 5 MW (as ``firm kr-sejong-1=5``) and a GridEvent curtailing its 20 MW of
flexible power for 3 h, 2 h after ``--at``, with a 15 min lead time, so the interruptible
Korean fine-tune (9.36 MW on flexible power) leaves at start - lead and comes back at
the end. What the card shows (the event's row, the planned moves, the step chart's
series read from the uPlot instance the page exposes as
``window.__meshplane.timelineCharts``, the markers, the readout under the cursor) is
compared with what the same server's ``GET /api/v1/timeline?hours=24`` answers, and the
local times with the browser's time zone (Asia/Seoul here, set on the context). Every
test ends by checking that no request left the server's origin and that Chromium logged
no error. The only stand-ins are in ``test_a_new_version_refetches_the_timeline`` (one
answer of ``/api/v1/version`` and ``/api/v1/mesh`` say version 2: ``meshctl serve``
publishes one version forever) and ``test_a_failed_timeline_says_so`` (a 503).

The screenshot of the card is always taken; it replaces ``docs/dashboard-grid.png`` when
``MESHPLANE_SCREENSHOTS=1`` (otherwise it goes to a temporary directory).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.dashboard.browser_support import (
    CHROMIUM,
    READY,
    REPO,
    VIEWPORT,
    Watched,
    get,
    meshctl_serve,
    watch,
)

pytestmark = pytest.mark.browser

EXAMPLES = REPO / "examples"
AT = "2026-07-14T06:00:00Z"  # 15:00 in Seoul
START = dt.datetime(2026, 7, 14, 8, 0, tzinfo=dt.UTC)  # the event: 2 h after --at, for 3 h
END = START + dt.timedelta(hours=3)
LEAVES = START - dt.timedelta(minutes=15)
EVENT = "kr-sejong-1-evening-peak"
FINETUNE = "research/korean-llm-finetune"
NIGHT = "2026-11-21T23:30:00-08:00"
ZONE = "Asia/Seoul"
TIMELINE = "api/v1/timeline?hours=24"

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (make browser installs it)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def rfc3339(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def local(text: str, zone: str = ZONE) -> str:
    """``Tue 17:00``: the page's format, in the browser's zone (written apart from it)."""
    at = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
    return f"{at:%a %H:%M}"


# ---- the meshes and their servers --------------------------------------------------


@pytest.fixture(scope="module")
def grid_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples, kr-sejong-1 on 5 MW of firm power, and one GridEvent on it."""
    directory = tmp_path_factory.mktemp("grid-mesh")
    for path in EXAMPLES.glob("*.yaml"):
        shutil.copy(path, directory / path.name)
    factories = directory / "10-factories.yaml"
    documents = [d for d in yaml.safe_load_all(factories.read_text()) if d]
    sejong = next(d for d in documents if d["metadata"]["name"] == "kr-sejong-1")
    assert sejong["spec"]["power"]["flexibleMW"] == 20
    sejong["spec"]["power"]["firmMW"] = 5
    factories.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    (directory / "40-grid-events.yaml").write_text(yaml.safe_dump({
        "apiVersion": "meshplane.io/v1alpha1", "kind": "GridEvent", "metadata": {"name": EVENT},
        "spec": {"factory": "kr-sejong-1", "leadTime": "PT15M", "source": {"manual": True},
                 "intervals": [{"start": rfc3339(START), "duration": "PT3H", "curtailedMW": 20}]},
    }, sort_keys=False))
    return directory


def several_events() -> list[dict[str, Any]]:
    """Grid events on every factory of the examples: one in force at ``--at``, four to
    come within 24 h (one from an OpenADR VTN, with two intervals and a ramp), one after
    the horizon, one cancelled."""
    at = dt.datetime(2026, 7, 14, 6, tzinfo=dt.UTC)

    def event(name: str, factory: str, start: dt.datetime, intervals: list[dict[str, Any]],
              **spec: Any) -> dict[str, Any]:
        intervals[0]["start"] = rfc3339(start)
        return {"apiVersion": "meshplane.io/v1alpha1", "kind": "GridEvent", "metadata": {"name": name},
                "spec": {"factory": factory, "intervals": intervals, **spec}}

    hours = lambda h: at + dt.timedelta(hours=h)  # noqa: E731
    return [
        event("rte-ecowatt", "fr-grenoble-1", hours(-1), [{"duration": "PT4H", "curtailedFlexibleRatio": 0.5}]),
        event(EVENT, "kr-sejong-1", START, [{"duration": "PT3H", "curtailedMW": 20}], leadTime="PT15M"),
        event("tva-peak", "us-memphis-1", hours(8), [{"duration": "PT2H", "importLimitMW": 1000},
                                                      {"duration": "PT1H", "importLimitMW": 950}],
              leadTime="PT30M", restore={"duration": "PT1H", "steps": 4},
              source={"openadr": {"vtn": "tva-vtn", "programId": "p-1", "eventId": "e-1"}}),
        event("mumbai-drill", "in-mumbai-1", hours(9), [{"duration": "PT1H", "curtailedMW": 10}]),
        event("frankfurt-evening", "de-frankfurt-1", hours(11), [{"duration": "PT1H", "curtailedMW": 1}]),
        event("frankfurt-cancelled", "de-frankfurt-1", hours(3), [{"duration": "PT1H", "curtailedMW": 1}], cancelled=True),
        event("frankfurt-later", "de-frankfurt-1", hours(30), [{"duration": "PT1H", "curtailedMW": 1}]),
    ]


@pytest.fixture(scope="module")
def several_dir(grid_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("several-events")
    for path in grid_dir.glob("*.yaml"):
        shutil.copy(path, directory / path.name)
    (directory / "40-grid-events.yaml").write_text(yaml.safe_dump_all(several_events(), sort_keys=False))
    return directory


@pytest.fixture(scope="module")
def several_server(several_dir: Path) -> Iterator[str]:
    with meshctl_serve(several_dir, AT) as base:
        yield base


@pytest.fixture(scope="module")
def grid_server(grid_dir: Path) -> Iterator[str]:
    with meshctl_serve(grid_dir, AT) as base:
        yield base


@pytest.fixture(scope="module")
def plain_server() -> Iterator[str]:
    with meshctl_serve(EXAMPLES, NIGHT) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture()
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, timezone_id=ZONE)
    yield context
    context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("MESHPLANE_SCREENSHOTS") == "1":
        return REPO / "docs"
    return tmp_path_factory.mktemp("screenshots")


def open_timeline(w: Watched, base: str) -> dict[str, Any]:
    w.page.goto(base)
    w.page.wait_for_function(READY)
    w.page.wait_for_function("() => window.__meshplane.timeline && window.__meshplane.timeline.ready")
    return dict(w.page.evaluate("() => window.__meshplane.timeline"))


def timeline_requests(w: Watched) -> list[str]:
    return [url for url in w.requests if "/api/v1/timeline" in url]


def shown_events(page: Any) -> list[dict[str, str]]:
    return list(page.eval_on_selector_all("#timeline-events tbody tr.event", """rows => rows.map(r => {
        const f = (name) => r.querySelector(`[data-field="${name}"]`).textContent;
        return { name: f("name"), factory: f("factory"), phase: f("phase"), start: r.dataset.start, end: r.dataset.end,
          when: r.querySelector("td.when .abs").textContent, lead: f("lead"), mw: f("mw"), source: f("source"),
          moves: f("moves") };
    })"""))


def shown_moves(page: Any) -> list[tuple[str, str, str, str, str, str]]:
    return [tuple(row) for row in page.eval_on_selector_all("#timeline-moves tbody tr.move", """rows => rows.map(r => {
        const f = (name) => r.querySelector(`[data-field="${name}"]`).textContent;
        return [r.dataset.at, f("at"), f("workload"), f("sites"), f("phase"), f("because")];
    })""")]


def expected_moves(timeline: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    def sites(names: list[str]) -> str:
        return ", ".join(names) or "—"

    return [(m["at"], local(m["at"]), m["workload"], f"{sites(m['beforeSites'])} → {sites(m['afterSites'])}",
             m["phase"], m["because"] or "—") for m in timeline["moves"]]


CHART = """(name) => { const u = window.__meshplane.timelineCharts[name];
    return { data: u.data, labels: u.series.map(s => s.label), bands: u.bands.map(b => b.series),
      width: u.width, height: u.height }; }"""


def check_series(page: Any, timeline: dict[str, Any], name: str) -> dict[str, Any]:
    """The chart of factory ``name``, read from its uPlot instance, holds the API's points:
    one per instant, the last held to the horizon's end. Returns what was read."""
    chart = dict(page.evaluate(CHART, name))
    factory = next(f for f in timeline["factories"] if f["name"] == name)
    points = factory["points"]
    capacity = factory["firmMW"] + factory["flexibleMW"]
    assert chart["labels"] == ["time", "firm + flexible", "usable, planned", "usable", "allocated"]
    assert chart["bands"] == [[1, 3], [3, 2]]  # curtailed in force; planned ahead, within the lead time
    assert chart["width"] >= 300 and chart["height"] >= 120
    assert chart["data"][0] == [epoch(at) for at in timeline["instants"]] + [epoch(timeline["end"])]

    def held(values: list[float]) -> list[float]:
        return [*values, values[-1]]

    expected = [held([capacity] * len(points)), held([capacity - p["plannedCurtailedMW"] for p in points]),
                held([p["usableMW"] for p in points]), held([p["allocatedMW"] for p in points])]
    for shown, wanted in zip(chart["data"][1:], expected, strict=True):
        assert shown == pytest.approx(wanted, abs=1e-9), name
    return chart


def changing_factories(timeline: dict[str, Any]) -> set[str]:
    """Factories with something happening: a grid event, or power or allocation changing."""
    keys = ("allocatedMW", "usableMW", "plannedCurtailedMW")
    changing = {f["name"] for f in timeline["factories"]
                if any(len({p[k] for p in f["points"]}) > 1 for k in keys)}
    return changing | {e["factory"] for e in timeline["events"]}


# ---- a grid event ------------------------------------------------------------------


def test_the_card_shows_the_event_the_moves_and_the_chart(context: Any, grid_server: str, shots: Path) -> None:
    watched = watch(context, grid_server)
    page = watched.page
    timeline = get(grid_server, TIMELINE)

    # what the API answers, first: the worked example of docs/grid-events.md
    assert [(e["name"], e["factory"], e["phase"], e["start"], e["end"], e["leadTime"], e["peakCurtailedMW"],
             e["limitMW"], e["source"]) for e in timeline["events"]] == [
        (EVENT, "kr-sejong-1", "Scheduled", rfc3339(START), rfc3339(END), "PT15M", 20.0, None, "manual")]
    grid_moves = [m for m in timeline["moves"] if m["workload"] == FINETUNE]
    assert [(m["at"], m["beforeSites"], m["afterSites"], m["phase"], m["because"]) for m in grid_moves] == [
        (rfc3339(LEAVES), ["kr-sejong-1"], [], "Preempted", EVENT),
        (rfc3339(END), [], ["kr-sejong-1"], "Placed", EVENT)]
    assert changing_factories(timeline) == {"kr-sejong-1"}

    hook = open_timeline(watched, grid_server)
    assert hook["error"] is None and hook["zone"] == ZONE
    assert hook["events"] == [EVENT] and hook["later"] == []

    # the event's row: phase, factory, local times (Seoul: UTC+9), lead, MW, source, moves
    assert shown_events(page) == [{
        "name": EVENT, "factory": "kr-sejong-1", "phase": "Scheduled", "start": rfc3339(START), "end": rfc3339(END),
        "when": f"{local(rfc3339(START))} → {local(rfc3339(END))[4:]}", "lead": "15 min", "mw": "— / 20 MW",
        "source": "manual", "moves": "1 out · 1 back"}]
    assert shown_events(page)[0]["when"] == "Tue 17:00 → 20:00"  # the same, by hand
    assert page.text_content("#timeline-events td.when .rel") == "in 2 h · lead 15 min"
    assert page.text_content("#timeline-zone") == f"times in {ZONE}"

    # the planned moves, in the API's order; the fine-tune leaves at start - lead (16:45 in Seoul)
    assert shown_moves(page) == expected_moves(timeline)
    assert (rfc3339(LEAVES), "Tue 16:45", FINETUNE, "kr-sejong-1 → —", "Preempted", EVENT) in shown_moves(page)
    assert page.text_content("#timeline-move-count") == str(len(timeline["moves"]))

    # one chart: kr-sejong-1, the only factory where something happens; the others steady
    assert hook["charted"] == hook["active"] == ["kr-sejong-1"]
    assert set(hook["steady"]) == {f["name"] for f in timeline["factories"]} - {"kr-sejong-1"}
    assert page.locator('#timeline-charts .tl-chart[data-factory="kr-sejong-1"] canvas').count() > 0
    steady = page.text_content("#timeline-steady") or ""
    assert all(name in steady for name in hook["steady"]), steady

    # its series, from the uPlot instance: one point per instant, the last held to the end
    chart = check_series(page, timeline, "kr-sejong-1")
    assert chart["data"][1][0] == 25  # 5 MW firm + 20 MW flexible
    # the worked example, by hand: at start - lead the plan already has 5 MW (the fine-tune
    # gone) while the full 25 MW are still usable; from the start 5 MW are usable; after the end, back
    value = {at: i for i, at in enumerate(timeline["instants"])}
    now, leaves, start, end = (value[rfc3339(t)] for t in (dt.datetime(2026, 7, 14, 6, tzinfo=dt.UTC), LEAVES, START, END))
    assert now == 0
    assert [chart["data"][s][now] for s in (2, 3, 4)] == [25, 25, 9.36]
    assert [chart["data"][s][leaves] for s in (2, 3, 4)] == [5, 25, 0]
    assert [chart["data"][s][start] for s in (2, 3, 4)] == [5, 5, 0]
    assert [chart["data"][s][end] for s in (2, 3, 4)] == [25, 25, 9.36]

    # the markers: the fine-tune leaving at start - lead and returning at the end
    assert hook["markers"]["kr-sejong-1"] == [
        {"at": rfc3339(LEAVES), "kind": "out", "count": 1, "workloads": [FINETUNE]},
        {"at": rfc3339(END), "kind": "back", "count": 1, "workloads": [FINETUNE]}]

    # the readout: now, and under the cursor at start - lead
    block = page.locator('.tl-chart[data-factory="kr-sejong-1"]')
    assert block.locator(".tl-read").text_content() == "now: 9.4 of 25 MW usable"
    assert "sejong" in (block.locator(".tl-what").text_content() or "")
    block.scroll_into_view_if_needed()
    over = block.locator(".u-over").bounding_box()
    assert over is not None
    x = page.evaluate(f"() => window.__meshplane.timelineCharts['kr-sejong-1'].valToPos({epoch(rfc3339(LEAVES))}, 'x')")
    page.mouse.move(over["x"] + x + 0.5, over["y"] + over["height"] / 2)
    page.wait_for_function("() => document.querySelector('.tl-chart .tl-read').textContent.startsWith('Tue 16:45')")
    assert block.locator(".tl-read").text_content() == (
        f"Tue 16:45: 0 of 25 MW usable · planning for 20 MW curtailed · {EVENT} · leaving: {FINETUNE}")

    # one request for the timeline (the version did not change)
    assert timeline_requests(watched) == [grid_server + TIMELINE]

    page.mouse.move(0, 0)
    card = page.locator("#timeline-section")
    card.scroll_into_view_if_needed()
    box = card.bounding_box()
    assert box is not None and box["height"] < VIEWPORT["height"]
    page.screenshot(path=str(shots / "dashboard-grid.png"), clip=box)
    watched.assert_clean()


def test_a_new_version_refetches_the_timeline(context: Any, grid_server: str) -> None:
    """The first long poll says version 2, and so does the mesh read then (stand-ins:
    meshctl serve stays at 1): the page asks for the timeline again, once."""
    watched = watch(context, grid_server)
    page = watched.page
    answered: list[str] = []

    def newer_version_once(route: Any) -> None:
        if "after=" in route.request.url and not answered:
            answered.append(route.request.url)
            route.fulfill(status=200, content_type="application/json", body=json.dumps({"version": 2}))
        else:
            route.continue_()

    def newer_mesh(route: Any) -> None:
        if not answered:
            route.continue_()
            return
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "version": 2})

    page.route(re.compile(r".*/api/v1/version(\?.*)?$"), newer_version_once)
    page.route(re.compile(r".*/api/v1/mesh$"), newer_mesh)
    hook = open_timeline(watched, grid_server)
    assert hook["version"] in (1, 2)
    page.wait_for_function("() => window.__meshplane.timeline.version === 2")
    assert answered and "after=1" in answered[0]
    assert timeline_requests(watched) == [grid_server + TIMELINE] * 2
    assert page.evaluate("() => window.__meshplane.timeline.events") == [EVENT]
    watched.assert_clean()


def test_a_failed_timeline_says_so(context: Any, grid_server: str) -> None:
    watched = watch(context, grid_server)
    page = watched.page
    page.route(re.compile(r".*/api/v1/timeline\?.*"), lambda route: route.fulfill(
        status=503, content_type="application/json", body=json.dumps({"detail": "no plan published yet"})))
    hook = open_timeline(watched, grid_server)
    assert hook["error"] == "no plan published yet"
    assert page.text_content("#timeline-charts") == "Cannot read the timeline: no plan published yet"
    assert page.locator("#timeline-charts canvas").count() == 0
    # an answer, not a fault of the page: Chromium logs the failed fetch itself
    watched.errors[:] = [e for e in watched.errors if not re.search(r"status of 503", e)]
    watched.assert_clean()


# ---- several factories -------------------------------------------------------------


def test_several_factories_are_small_multiples_soonest_event_first(
        context: Any, several_server: str, shots: Path) -> None:
    watched = watch(context, several_server)
    page = watched.page
    timeline = get(several_server, TIMELINE)
    phases = {e["name"]: e["phase"] for e in timeline["events"]}
    assert phases == {"rte-ecowatt": "Active", EVENT: "Scheduled", "tva-peak": "Scheduled", "mumbai-drill": "Scheduled",
                      "frankfurt-evening": "Scheduled", "frankfurt-cancelled": "Cancelled",
                      "frankfurt-later": "Scheduled"}
    hook = open_timeline(watched, several_server)

    # the events in force or to come within 24 h, in the API's order (by start); the later
    # one counted apart, the cancelled one left out
    listed = ["rte-ecowatt", EVENT, "tva-peak", "mumbai-drill", "frankfurt-evening"]
    assert [e["name"] for e in timeline["events"] if e["name"] in listed] == listed
    assert hook["events"] == listed and hook["later"] == ["frankfurt-later"]
    rows = {row["name"]: row for row in shown_events(page)}
    assert list(rows) == listed
    assert page.text_content("#timeline-event-count") == "5 (+1 later)"
    by_name = {e["name"]: e for e in timeline["events"]}
    for name, row in rows.items():
        e = by_name[name]
        assert (row["factory"], row["phase"], row["start"], row["end"]) == (e["factory"], e["phase"], e["start"], e["end"])
        assert row["when"].startswith(local(e["start"])), row
    assert rows["rte-ecowatt"]["phase"] == "Active"
    assert page.text_content('#timeline-events tr[data-event="rte-ecowatt"] .rel') == "ends in 3 h · lead 15 min"
    tva = by_name["tva-peak"]
    assert (tva["limitMW"], tva["peakCurtailedMW"], tva["leadTime"], tva["source"]) == (950, 250, "PT30M", "openadr:tva-vtn")
    assert (rows["tva-peak"]["mw"], rows["tva-peak"]["source"], rows["tva-peak"]["lead"]) == (
        "950 / 250 MW", "OpenADR · tva-vtn", "30 min")
    assert rows["tva-peak"]["when"] == "Tue 23:00 → Wed 02:00"  # 14:00-17:00 UTC, across midnight in Seoul

    # a chart per factory with an event, the soonest event first (the one in force: now);
    # four drawn, the fifth behind "show all"
    order = ["fr-grenoble-1", "kr-sejong-1", "us-memphis-1", "in-mumbai-1", "de-frankfurt-1"]
    assert hook["active"] == order and hook["charted"] == order[:4] and hook["steady"] == []
    assert page.eval_on_selector_all("#timeline-charts .tl-chart", "els => els.map(e => e.dataset.factory)") == order[:4]
    for name in order[:4]:
        check_series(page, timeline, name)
    memphis = page.evaluate(CHART, "us-memphis-1")
    # usable: 1,200 MW, the limits (1,000 then 950 MW), the ramp back in 4 steps of 62.5 MW
    assert sorted(set(memphis["data"][3])) == [950, 1000, 1012.5, 1075, 1137.5, 1200]

    # the cursor is shared: over one chart, every readout tells the same instant
    first = page.locator(".tl-chart").first
    first.scroll_into_view_if_needed()
    over = first.locator(".u-over").bounding_box()
    assert over is not None
    x = page.evaluate(f"() => window.__meshplane.timelineCharts['fr-grenoble-1'].valToPos({epoch(tva['start'])}, 'x')")
    page.mouse.move(over["x"] + x + 0.5, over["y"] + over["height"] / 2)
    page.wait_for_function("() => [...document.querySelectorAll('.tl-read')].every(e => e.textContent.startsWith('Tue 23:00'))")
    assert page.locator(".tl-chart", has_text="us-memphis-1").locator(".tl-read").text_content() == (
        "Tue 23:00: 452 of 1,000 MW usable · 200 MW curtailed · tva-peak")
    page.mouse.move(0, 0)

    card = page.locator("#timeline-section")
    card.scroll_into_view_if_needed()
    box = card.bounding_box()
    assert box is not None
    page.screenshot(path=str(shots / "dashboard-grid-several.png"), full_page=True, clip={
        "x": box["x"], "y": box["y"] + page.evaluate("() => window.scrollY"), "width": box["width"], "height": box["height"]})

    page.click("#timeline-more")
    page.wait_for_function("() => window.__meshplane.timeline.charted.length === 5")
    check_series(page, timeline, "de-frankfurt-1")
    assert page.text_content("#timeline-more") == "show the first 4"
    page.click("#timeline-more")
    page.wait_for_function("() => window.__meshplane.timeline.charted.length === 4")
    assert timeline_requests(watched) == [several_server + TIMELINE]  # drawn again, not asked again
    watched.assert_clean()


# ---- no grid event -----------------------------------------------------------------


def test_without_grid_events_the_card_says_so(browser: Any, plain_server: str) -> None:
    context = browser.new_context(viewport=VIEWPORT, timezone_id="America/Los_Angeles")
    try:
        watched = watch(context, plain_server)
        page = watched.page
        timeline = get(plain_server, TIMELINE)
        assert timeline["events"] == [] and changing_factories(timeline) == set()
        hook = open_timeline(watched, plain_server)
        assert hook["charted"] == [] and hook["events"] == []
        assert set(hook["steady"]) == {f["name"] for f in timeline["factories"]}

        assert page.text_content("#timeline-events tbody") == "No grid event in the next 24 h."
        assert page.text_content("#timeline-charts [data-empty=charts]") == (
            "No grid event and no change of power or allocation at any factory in the next 24 h.")
        assert page.locator("#timeline-charts canvas").count() == 0
        steady = page.text_content("#timeline-steady") or ""
        assert steady.startswith("Steady for 24 h (allocated/usable): us-memphis-1 452/1,200 MW"), steady
        # the fleet windows still move the dashcam indexing: listed, in Los Angeles time
        moves = page.eval_on_selector_all("#timeline-moves tbody tr.move", """rows => rows.map(r => [r.dataset.at,
            r.querySelector('[data-field="at"]').textContent, r.querySelector('[data-field="because"]').textContent])""")
        assert moves == [[m["at"], local(m["at"], "America/Los_Angeles"), m["because"]] for m in timeline["moves"]]
        assert moves and {m[2] for m in moves} == {"fleet window"}
        assert timeline_requests(watched) == [plain_server + TIMELINE]
        watched.assert_clean()
    finally:
        context.close()
