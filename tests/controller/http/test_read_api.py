"""The read endpoints on the example mesh, every figure cross-checked against
``reconcile`` run directly on the same manifests."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from fastapi.testclient import TestClient

from controller.core.reconcile import Outcome, Snapshot, reconcile
from controller.http.app import create_app
from controller.http.source import Published

from .conftest import AT


def test_every_site_is_there_with_the_figures_of_its_status(client: TestClient, direct: tuple[Snapshot, Outcome]):
    snapshot, outcome = direct
    body = client.get("/api/v1/mesh").json()
    assert body["version"] == 1 and body["at"] == "2026-11-22T22:00:00Z"
    sites = {s["name"]: s for s in body["sites"]}
    expected = {**outcome.factories, **outcome.fleets}
    assert set(sites) == set(expected)
    for factory in snapshot.factories:
        view, status = sites[factory.metadata.name], expected[factory.metadata.name]
        assert view["kind"] == "AIFactory" and view["country"] == factory.spec.country
        assert view["power"]["firmMW"] == factory.spec.power.firm_mw
        assert view["power"]["curtailedMW"] == factory.spec.power.curtailed_mw
        assert view["onlineDevices"] is None and view["onlineDevicesNext24h"] == []
    for name, status in expected.items():
        view = sites[name]
        assert view["power"]["firmAllocatedMW"] == status.power.firm_allocated_mw
        assert view["power"]["flexibleAvailableMW"] == status.power.flexible_available_mw
        assert view["tokensPerSecond"] == status.tokens_per_second
        assert view["workloadCount"] == status.workload_count
        assert [(p["model"], p["devicesAllocated"], p["devicesAvailable"]) for p in view["pools"]] == [
            (p.model, p.devices_allocated, p.devices_available) for p in status.pools
        ]
        assert [(c["type"], c["status"]) for c in view["conditions"]] == [(c.type, c.status) for c in status.conditions]
    memphis = sites["us-memphis-1"]
    assert memphis["power"]["firmAllocatedMW"] > 0  # the examples place the pretraining run there


def test_fleets_show_their_online_devices_now_and_hourly_for_a_day(client: TestClient, direct):
    snapshot, outcome = direct
    sites = {s["name"]: s for s in client.get("/api/v1/mesh").json()["sites"]}
    for fleet in snapshot.fleets:
        view = sites[fleet.metadata.name]
        assert view["kind"] == "EdgeFleet"
        assert view["power"]["firmMW"] == fleet.spec.max_fleet_mw
        assert view["onlineDevices"] == outcome.fleets[fleet.metadata.name].online_devices
        points = view["onlineDevicesNext24h"]
        assert len(points) == 24
        times = [dt.datetime.fromisoformat(p["at"].replace("Z", "+00:00")) for p in points]
        assert times[0] == AT and all(b - a == dt.timedelta(hours=1) for a, b in zip(times, times[1:], strict=False))
        assert points[0]["devices"] == view["onlineDevices"]  # the forecast starts where the plan is
        assert all(0 <= p["devices"] <= fleet.spec.devices for p in points)
    # offline at 22:00 UTC, its windows open later in the day
    seoul = sites["home-clusters-seoul"]["onlineDevicesNext24h"]
    assert seoul[0]["devices"] == 0 and max(p["devices"] for p in seoul) > 0


def test_links_and_user_regions_come_from_the_specs(client: TestClient, direct):
    snapshot, _ = direct
    body = client.get("/api/v1/mesh").json()
    expected = {(s.metadata.name, link.to, link.latency_ms)
                for s in [*snapshot.factories, *snapshot.fleets] for link in s.spec.links}
    assert {(link["from"], link["to"], link["latencyMs"]) for link in body["links"]} == expected
    assert "jp-east" in body["userRegions"] and body["userRegions"] == sorted(body["userRegions"])


def test_every_workload_is_there_with_its_status(client: TestClient, direct):
    snapshot, outcome = direct
    body = client.get("/api/v1/workloads").json()
    items = {f"{i['namespace']}/{i['name']}": i for i in body["items"]}
    assert set(items) == {w.key for w in snapshot.workloads}
    for key, status in outcome.workloads.items():
        item = items[key]
        assert item["phase"] == status.phase and item["message"] == status.message
        assert ",".join(item["sites"]) == status.sites
        assert item["powerMW"] == status.power_mw and item["tokensPerSecond"] == status.tokens_per_second
        assert [(a["site"], a["devices"]) for a in item["assignments"]] == [
            (a.site, a.devices) for a in status.assignments
        ]
    assert items["serving/japan-medical-llm"]["users"] == [{"region": "jp-east", "weight": 1.0}]


def test_workloads_filter_by_phase_and_namespace(client: TestClient, direct):
    _, outcome = direct
    unschedulable = client.get("/api/v1/workloads", params={"phase": "Unschedulable"}).json()["items"]
    assert {f"{i['namespace']}/{i['name']}" for i in unschedulable} == {
        k for k, s in outcome.workloads.items() if s.phase == "Unschedulable"
    }
    serving = client.get("/api/v1/workloads", params={"namespace": "serving"}).json()["items"]
    assert serving and {i["namespace"] for i in serving} == {"serving"}
    assert client.get("/api/v1/workloads", params={"namespace": "nobody"}).json()["items"] == []


def test_the_explanation_of_japan_medical_llm_names_the_country_filter(client: TestClient, direct):
    _, outcome = direct
    body = client.get("/api/v1/workloads/serving/japan-medical-llm").json()
    decision = outcome.plan.workloads["serving/japan-medical-llm"]
    explanation = body["explanation"]
    assert explanation["rejections"] == decision.rejections
    assert explanation["rejections"]["country not allowed"] > 0
    assert "country not allowed" in explanation["message"]
    assert explanation["feasibleSites"] == [] and explanation["candidates"] == []


def test_the_explanation_of_a_placed_workload_lists_its_candidates_cheapest_first(client: TestClient, direct):
    _, outcome = direct
    explanation = client.get("/api/v1/workloads/serving/chat-us-west").json()["explanation"]
    decision = outcome.plan.workloads["serving/chat-us-west"]
    assert explanation["feasibleSiteCount"] == decision.feasible_sites == len(explanation["feasibleSites"])
    assert set(decision.sites) <= set(explanation["feasibleSites"])
    costs = [c["cost"] for c in explanation["candidates"]]
    assert costs == sorted(costs) and all(c["devices"] > 0 for c in explanation["candidates"])
    # sites rejected by a filter never appear as candidates
    assert sum(explanation["rejections"].values()) + decision.feasible_sites == len(outcome.plan.sites)


def test_unknown_workload_is_a_json_404(client: TestClient):
    response = client.get("/api/v1/workloads/serving/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "no MeshWorkload serving/nope"}


def test_solve_figures_are_the_plans(client: TestClient, direct):
    _, outcome = direct
    body = client.get("/api/v1/solve").json()
    stats = outcome.plan.stats
    assert body["status"] == str(stats.status) and body["objective"] == stats.placed_priority_demand
    assert body["bound"] == stats.bound and body["placedWorkloads"] == stats.placed_workloads
    assert body["workloads"] == len(outcome.workloads) and body["version"] == 1 and body["solveMs"] > 0


class _Changing:
    """A source whose publication a test replaces, as the operator's loop does."""

    def __init__(self) -> None:
        self.published: Published | None = None

    def current(self) -> Published | None:
        return self.published


def test_before_the_first_solve_reads_are_503_and_the_version_is_0(examples):
    source = _Changing()
    client = TestClient(create_app(source))
    response = client.get("/api/v1/mesh")
    assert response.status_code == 503 and "no plan yet" in response.json()["detail"]
    assert client.get("/api/v1/version").json() == {"version": 0}


def test_long_poll_answers_when_the_version_changes(examples):
    source = _Changing()
    snapshot = Snapshot(examples.factories, examples.fleets, examples.workloads, AT)
    outcome = reconcile(snapshot)
    source.published = Published(1, snapshot, outcome, AT, 1.0, False)
    client = TestClient(create_app(source, long_poll_max_s=10))
    started = time.monotonic()
    assert client.get("/api/v1/version", params={"after": 1, "wait": 0.3}).json() == {"version": 1}
    assert 0.3 <= time.monotonic() - started < 5  # waited, then answered unchanged

    def publish() -> None:
        time.sleep(0.5)
        source.published = Published(2, snapshot, outcome, AT, 1.0, True)

    threading.Thread(target=publish).start()
    started = time.monotonic()
    assert client.get("/api/v1/version", params={"after": 1, "wait": 8}).json() == {"version": 2}
    assert time.monotonic() - started < 5  # answered on the change, not at the timeout
    assert client.get("/api/v1/version", params={"after": 0}).json() == {"version": 2}


@pytest.mark.parametrize("path", ["/api/v1/mesh", "/api/v1/workloads/x/y", "/", "/no-such-file.js", "/api/v1/openapi.json"])
def test_every_response_carries_the_security_headers(client: TestClient, path: str):
    headers = client.get(path).headers
    assert headers["content-security-policy"].startswith("default-src 'self';")
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_a_placeholder_page_is_served_without_the_dashboard(source, tmp_path):
    client = TestClient(create_app(source, static_dir=tmp_path))
    response = client.get("/")
    assert response.status_code == 200 and "/api/v1/mesh" in response.text
    assert "<script" not in response.text  # the CSP forbids inline script anyway


def test_the_dashboard_files_are_served_at_the_root_and_under_static(source, tmp_path):
    (tmp_path / "index.html").write_text("<!doctype html><title>dash</title>")
    (tmp_path / "app.js").write_text("console.log('x')")
    client = TestClient(create_app(source, static_dir=tmp_path))
    assert client.get("/").text.endswith("<title>dash</title>")
    assert client.get("/app.js").text == client.get("/static/app.js").text == "console.log('x')"
