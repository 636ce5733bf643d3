"""The dashboard in a real headless Chromium, over a real ``meshctl serve -f examples/``.

Each test opens the page served by a ``meshctl serve`` process and drives it with
Playwright; what the page shows is compared with what the same server's API answers
(read here with urllib), and every test ends by checking that no request left the
server's origin and that Chromium logged no error (CSP violations included). The only
stand-in is in ``test_new_version_refetches_the_mesh``: ``meshctl serve`` publishes one
version forever, so the browser's view of one ``/api/v1/version`` answer is replaced.

The screenshots (1280x800) are always taken; they replace ``docs/dashboard.png`` and
``docs/dashboard-what-if.png`` when ``MESHPLANE_SCREENSHOTS=1`` (otherwise they go to a
temporary directory, so a test run leaves the tree as it was).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dashboard.browser_support import (
    CHROMIUM,
    READY,
    VIEWPORT,
    Watched,
    assert_png_size,
    check_graph_geometry,
    expected_flows,
    get,
    meshctl_serve,
    watch,
)

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
NIGHT = "2026-11-21T23:30:00-08:00"  # the vehicles are parked and online: every kind of placement shows
# Several changes at once, so the diff has a move, preemptions and three sites.
RICH_WHAT_IF = ["curtail us-memphis-1=200", "cordon fr-grenoble-1", "firm us-memphis-1=400"]

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (make browser installs it)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


# ---- the server --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``meshctl serve -f examples/`` on a free loopback port; its base URL."""
    with meshctl_serve(EXAMPLES, NIGHT) as base:
        yield base


def post_plan(base: str, changes: list[str]) -> tuple[int, Any]:
    request = urllib.request.Request(
        base + "api/v1/plan", data=json.dumps({"changes": changes}).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


# ---- the browser -------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield instance
        instance.close()


@pytest.fixture()
def watched(browser: Any, server: str) -> Iterator[Watched]:
    context = browser.new_context(viewport=VIEWPORT)
    yield watch(context, server)
    context.close()


def open_dashboard(w: Watched, base: str) -> None:
    w.page.goto(base)
    w.page.wait_for_function(READY)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("MESHPLANE_SCREENSHOTS") == "1":
        return REPO / "docs"
    return tmp_path_factory.mktemp("screenshots")


def example_names() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                meta = doc["metadata"]
                key = f"{meta['namespace']}/{meta['name']}" if doc["kind"] == "MeshWorkload" else meta["name"]
                names.setdefault(doc["kind"], set()).add(key)
    return names


# ---- what the page shows -----------------------------------------------------------


def test_every_example_site_and_workload_is_shown(watched: Watched, server: str, shots: Path) -> None:
    page = watched.page
    open_dashboard(watched, server)
    mesh = get(server, "api/v1/mesh")
    workloads = get(server, "api/v1/workloads")["items"]
    solve = get(server, "api/v1/solve")
    examples = example_names()
    assert len(examples["AIFactory"]) == 5 and len(examples["EdgeFleet"]) == 3 and len(examples["MeshWorkload"]) == 8

    # power bars: one row per site, fleets styled apart, the allocated MW the API reports
    rows = page.eval_on_selector_all(
        "#power .site", "els => els.map(e => [e.dataset.site, e.classList.contains('fleet')])")
    assert {name for name, fleet in rows if not fleet} == examples["AIFactory"]
    assert {name for name, fleet in rows if fleet} == examples["EdgeFleet"]
    figures = page.eval_on_selector_all("#power .figure", "els => els.map(e => e.textContent)")
    for site, figure in zip(mesh["sites"], figures, strict=True):
        used = site["power"]["firmAllocatedMW"] + site["power"]["flexibleAllocatedMW"]
        shown_mw = float(figure.split(" / ")[0].replace(",", ""))
        assert abs(shown_mw - used) <= 0.05 + 1e-9, (site["name"], figure, used)

    # the workload table: every workload, with the phase and sites the API gives
    shown = page.eval_on_selector_all(
        "#workloads tbody tr", "els => els.map(e => [e.dataset.key, e.dataset.phase, e.cells[3].textContent])")
    assert {key for key, _, _ in shown} == examples["MeshWorkload"]
    expected = {f"{w['namespace']}/{w['name']}": (w["phase"], ", ".join(w["sites"]) or "—") for w in workloads}
    assert {key: (phase, sites) for key, phase, sites in shown} == expected
    assert page.text_content("#workload-count") == "8 of 8"
    # meshctl serve delivers nothing: no ready counts
    ready = page.eval_on_selector_all("#workloads tbody tr", "els => els.map(e => e.cells[4].textContent)")
    assert ready == ["—"] * 8 and all(w.get("ready") is None for w in workloads)

    # the clusters: meshctl serve has no member clusters, so every site is local's
    assert mesh["clusters"] == [] and {s["cluster"] for s in mesh["sites"]} == {"local"}
    clusters = page.eval_on_selector_all(
        "#clusters .cluster-name", "els => els.map(e => [e.dataset.cluster, e.nextElementSibling.dataset.state, "
        "e.nextElementSibling.nextElementSibling.textContent])")
    assert clusters == [["local", "Reachable", ", ".join(s["name"] for s in mesh["sites"])]]

    # the graph: a cytoscape canvas; a box per region (site regions, user regions, link
    # targets) holding its sites and, where users are, a users node; an edge per link and
    # one per (main user region, site) carrying placed work, counted
    assert page.locator("#graph canvas").count() > 0
    graph = page.evaluate("() => window.__meshplane.graph")
    users = set(mesh["userRegions"]) | {link["to"] for link in mesh["links"]} | {
        u["region"] for w in workloads for u in w["users"]}
    regions = users | {s["region"] for s in mesh["sites"]}
    assert set(graph["nodes"]) == ({f"site:{s['name']}" for s in mesh["sites"]} | {f"group:{r}" for r in regions}
                                   | {f"region:{r}" for r in users})
    assert int(page.get_attribute("#graph", "data-nodes") or 0) == len(graph["nodes"]) == 8 + len(regions) + len(users)
    parents = page.evaluate("() => window.__meshplane.cy.nodes('[type = \"factory\"], [type = \"fleet\"]')"
                            ".map(n => [n.id(), n.parent().id()])")
    assert dict(parents) == {f"site:{s['name']}": f"group:{s['region']}" for s in mesh["sites"]}
    edges = set(graph["edges"])
    assert {f"link:{link['from']}->{link['to']}" for link in mesh["links"]} <= edges
    flows, local, total = expected_flows(mesh, workloads)
    assert flows and {e for e in edges if e.startswith("flow:")} == set(flows)
    assert {f["id"]: f["count"] for f in graph["flows"]} == flows
    assert graph["local"] == local and graph["assignments"] == total == 7
    assert graph["unplaced"] == {"jp-east": 1}  # serving/japan-medical-llm, its users in jp-east
    check_graph_geometry(page)

    # the solver panel and the fleet chart
    assert page.text_content('#solver [data-field="status"]') == solve["status"]
    assert page.text_content('#solver [data-field="placed"]') == f"{solve['placedWorkloads']} / {solve['workloads']}"
    assert page.locator("#fleets canvas").count() > 0
    legend = page.eval_on_selector_all("#fleets .u-legend .u-series .u-label", "els => els.map(e => e.textContent)")
    assert set(legend[1:]) == examples["EdgeFleet"]
    assert all(len(s["onlineDevicesNext24h"]) == 24 for s in mesh["sites"] if s["kind"] == "EdgeFleet")

    page.screenshot(path=str(shots / "dashboard.png"))
    assert_png_size(shots / "dashboard.png", 1280, 800)
    watched.assert_clean()


def test_the_table_filters_by_text_and_phase(watched: Watched, server: str) -> None:
    page = watched.page
    open_dashboard(watched, server)
    workloads = get(server, "api/v1/workloads")["items"]

    def keys() -> set[str]:
        return set(page.eval_on_selector_all("#workloads tbody tr[data-key]", "els => els.map(e => e.dataset.key)"))

    page.select_option("#filter-phase", "Unschedulable")
    unschedulable = {f"{w['namespace']}/{w['name']}" for w in workloads if w["phase"] == "Unschedulable"}
    assert unschedulable and keys() == unschedulable

    page.select_option("#filter-phase", "")
    page.fill("#filter-text", "us-memphis-1")
    on_memphis = {f"{w['namespace']}/{w['name']}" for w in workloads if "us-memphis-1" in w["sites"]}
    assert on_memphis and keys() == on_memphis
    assert page.text_content("#workload-count") == f"{len(on_memphis)} of {len(workloads)}"

    page.fill("#filter-text", "serving/")
    assert keys() == {f"{w['namespace']}/{w['name']}" for w in workloads if w["namespace"] == "serving"}

    page.fill("#filter-text", "no-such-workload")
    assert keys() == set()
    assert page.text_content("#workloads tbody") == "No workload matches."
    watched.assert_clean()


def test_a_row_opens_the_workloads_explanation(watched: Watched, server: str) -> None:
    page = watched.page
    open_dashboard(watched, server)
    for key in ("serving/japan-medical-llm", "serving/chat-us-west"):
        detail = get(server, f"api/v1/workloads/{key}")
        page.click(f'#workloads tr[data-key="{key}"]')
        body = page.locator(f'#workloads tr[data-detail="{key}"]')
        body.locator(".explain").wait_for()
        assert body.locator(".explain-message").text_content() == detail["explanation"]["message"]
        shown = body.locator(".rejections li").evaluate_all("els => els.map(e => [e.dataset.filter, e.textContent])")
        assert dict(shown) == {
            why: f"{count} × {why}" for why, count in detail["explanation"]["rejections"].items()}
        assert body.locator(".feasible").text_content() == (", ".join(detail["explanation"]["feasibleSites"]) or "—")
        assert page.get_attribute(f'#workloads tr[data-key="{key}"]', "aria-expanded") == "true"
    # one open at a time, and a second click closes it
    assert page.locator("#workloads tr.detail").count() == 1
    page.click('#workloads tr[data-key="serving/chat-us-west"]')
    assert page.locator("#workloads tr.detail").count() == 0
    watched.assert_clean()


# ---- what-if -----------------------------------------------------------------------


def run_what_if(page: Any, changes: list[str]) -> None:
    page.fill("#whatif-changes", "\n".join(changes))
    page.click("#whatif-run")
    page.wait_for_function("() => window.__meshplane.whatIf !== null")


def shown_diff(page: Any) -> tuple[dict[str, set[tuple[str, str, str, str]]], dict[str, tuple[float, ...]]]:
    rows = page.eval_on_selector_all("#whatif-workloads tbody tr[data-change]", """els => els.map(e => [
        e.dataset.change, e.dataset.key, e.cells[2].textContent,
        e.cells[3].dataset.before || '', e.cells[3].dataset.after || '', e.cells[3].textContent])""")
    workloads: dict[str, set[tuple[str, str, str, str]]] = {}
    for change, key, phases, before, after, text in rows:
        if before or after:
            assert text == f"{before} → {after}"
        workloads.setdefault(change, set()).add((key, phases, before, after))
    sites = page.eval_on_selector_all("#whatif-sites tbody tr[data-site]", """els => els.map(e => [e.dataset.site,
        +e.cells[2].dataset.before, +e.cells[2].dataset.after, +e.cells[3].dataset.before, +e.cells[3].dataset.after])""")
    return workloads, {row[0]: tuple(row[1:]) for row in sites}


def expected_diff(diff: dict[str, Any]) -> tuple[dict[str, set[tuple[str, str, str, str]]], dict[str, tuple[float, ...]]]:
    def sites(names: list[str]) -> str:
        return ", ".join(names) or "—"

    workloads: dict[str, set[tuple[str, str, str, str]]] = {}
    for change in ("moved", "newlyPlaced", "newlyUnschedulable", "newlyPreempted"):
        for move in diff[change]:
            workloads.setdefault(change, set()).add((
                move["key"], f"{move['beforePhase']} → {move['afterPhase']}",
                sites(move["beforeSites"]), sites(move["afterSites"])))
    for change in ("removed", "added"):
        for key in diff[change]:
            workloads.setdefault(change, set()).add((key, "", "", ""))
    return workloads, {
        s["site"]: (s["mwBefore"], s["mwAfter"], s["tokensPerSecondBefore"], s["tokensPerSecondAfter"])
        for s in diff["sites"]
    }


@pytest.mark.parametrize("changes", [["curtail us-memphis-1=200"], RICH_WHAT_IF], ids=["curtail", "curtail-cordon-firm"])
def test_what_if_shows_the_diff_the_api_answers(watched: Watched, server: str, shots: Path, changes: list[str]) -> None:
    page = watched.page
    open_dashboard(watched, server)
    run_what_if(page, changes)
    status, answer = post_plan(server, changes)
    assert status == 200, answer
    assert page.evaluate("() => window.__meshplane.whatIf.changes") == changes
    assert shown_diff(page) == expected_diff(answer["diff"])
    if changes == RICH_WHAT_IF:
        # a diff worth a picture: something moved and something was preempted
        assert answer["diff"]["moved"] and answer["diff"]["newlyPreempted"]
        page.locator("#whatif-section").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "dashboard-what-if.png"))
        assert_png_size(shots / "dashboard-what-if.png", 1280, 800)
    else:
        empty = not any(answer["diff"][k] for k in ("moved", "newlyPlaced", "newlyUnschedulable", "newlyPreempted"))
        assert (page.text_content("#whatif-workloads tbody") == "No workload changes.") is empty
    watched.assert_clean()


def test_a_refused_change_shows_the_api_detail(watched: Watched, server: str) -> None:
    page = watched.page
    open_dashboard(watched, server)
    changes = ["curtail us-memphis-1=5000"]  # more than the site's flexible power
    run_what_if(page, changes)
    status, answer = post_plan(server, changes)
    assert status == 400
    assert page.text_content("#whatif-status") == answer["detail"]
    assert page.is_hidden("#whatif-result")
    # a 400 is an answer, not a fault of the page: Chromium logs the failed fetch itself
    watched.errors[:] = [e for e in watched.errors if not re.search(r"status of 400", e)]
    watched.assert_clean()


# ---- live and token ----------------------------------------------------------------


def test_new_version_refetches_the_mesh(watched: Watched, server: str) -> None:
    """The first long poll is answered with version 2 (stand-in: meshctl serve stays at 1)."""
    page = watched.page
    answered: list[str] = []

    def newer_version_once(route: Any) -> None:
        if "after=" in route.request.url and not answered:
            answered.append(route.request.url)
            route.fulfill(status=200, content_type="application/json", body=json.dumps({"version": 2}))
        else:
            route.continue_()

    page.route(re.compile(r".*/api/v1/version(\?.*)?$"), newer_version_once)
    open_dashboard(watched, server)
    page.wait_for_function("() => window.__meshplane.renders >= 2")
    assert answered and "after=1" in answered[0]
    assert sum(url.endswith("/api/v1/mesh") for url in watched.requests) == 2
    assert sum(url.endswith("/api/v1/workloads") for url in watched.requests) == 2
    watched.assert_clean()


def test_the_token_is_sent_as_a_bearer_header(watched: Watched, server: str) -> None:
    page = watched.page
    authorizations: list[str | None] = []
    page.on("request", lambda r: authorizations.append(r.headers.get("authorization")) if "/api/" in r.url else None)
    open_dashboard(watched, server)
    assert authorizations and set(authorizations) == {None}

    authorizations.clear()
    page.fill("#token", "s3cret-token")
    page.press("#token", "Enter")
    page.wait_for_function("() => window.__meshplane.renders >= 2")
    assert "Bearer s3cret-token" in authorizations
    assert page.evaluate("() => sessionStorage.getItem('meshplane.token')") == "s3cret-token"

    page.reload()  # the token outlives a reload (sessionStorage), and is sent at once
    page.wait_for_function(READY)
    assert page.input_value("#token") == "s3cret-token"
    assert authorizations[-1] == "Bearer s3cret-token"

    page.click("#token-clear")
    assert page.evaluate("() => sessionStorage.getItem('meshplane.token')") is None
    watched.assert_clean()
