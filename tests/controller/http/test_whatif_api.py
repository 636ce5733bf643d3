"""``POST /api/v1/plan``: the diff is the core's ``what_if`` on the same snapshot, the
published mesh is untouched, and bad questions are one-line 400s."""

from __future__ import annotations

from fastapi.testclient import TestClient

from controller.core.whatif import parse_change, what_if


def test_curtailing_memphis_returns_the_cores_diff(client: TestClient, direct):
    snapshot, outcome = direct
    before = client.get("/api/v1/mesh").json()
    response = client.post("/api/v1/plan", json={"changes": ["curtail us-memphis-1=200"]})
    assert response.status_code == 200, response.text
    body = response.json()
    after, diff = what_if(snapshot, [parse_change("curtail us-memphis-1=200")], current=outcome)
    assert body["diff"] == diff.to_dict()
    memphis = next(s for s in body["plan"]["sites"] if s["name"] == "us-memphis-1")
    assert memphis["power"]["curtailedMW"] == 200.0
    assert memphis["power"]["flexibleAvailableMW"] == after.factories["us-memphis-1"].power.flexible_available_mw
    phases = {f"{w['namespace']}/{w['name']}": w["phase"] for w in body["plan"]["workloads"]}
    assert phases == {k: s.phase for k, s in after.workloads.items()}
    assert body["plan"]["solve"]["workloads"] == len(after.workloads)
    # nothing was written: the published mesh is what it was
    assert client.get("/api/v1/mesh").json() == before


def test_json_changes_and_a_time_are_the_same_question_as_text(client: TestClient):
    text = client.post("/api/v1/plan", json={"changes": ["cordon kr-sejong-1", "clock 2026-11-23T06:00:00Z"]})
    as_json = client.post("/api/v1/plan", json={
        "changes": [{"op": "cordon", "target": "kr-sejong-1"}], "at": "2026-11-23T06:00:00Z",
    })
    assert text.status_code == as_json.status_code == 200
    assert text.json()["diff"] == as_json.json()["diff"]
    assert as_json.json()["plan"]["solve"]["at"] == "2026-11-23T06:00:00Z"
    sejong = next(s for s in as_json.json()["plan"]["sites"] if s["name"] == "kr-sejong-1")
    assert sejong["cordoned"] is True


def test_added_manifests_are_planned(client: TestClient, examples):
    workload = examples.workloads[0].model_dump(by_alias=True, exclude_none=True)
    workload["metadata"] = {"name": "extra-run", "namespace": "research"}
    response = client.post("/api/v1/plan", json={"manifests": [workload]})
    assert response.status_code == 200, response.text
    names = {(w["namespace"], w["name"]) for w in response.json()["plan"]["workloads"]}
    assert ("research", "extra-run") in names
    assert "research/extra-run" in response.json()["diff"]["added"]


def test_bad_questions_are_one_line_400s(client: TestClient):
    for body in (
        {"changes": ["curtail us-memphis-1"]},
        {"changes": ["melt us-memphis-1"]},
        {"changes": ["cordon no-such-site"]},
        {"changes": ["curtail us-memphis-1=100000"]},  # more than its flexible power
        {"changes": [{"op": "curtail", "target": "us-memphis-1", "value": "lots"}]},
        {"at": "tomorrow"},
        {"manifests": [{"apiVersion": "meshplane.io/v1alpha1", "kind": "AIFactory", "metadata": {"name": "x"}}]},
    ):
        response = client.post("/api/v1/plan", json=body)
        assert response.status_code == 400, (body, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and detail


def test_a_body_of_the_wrong_shape_is_a_json_422(client: TestClient):
    response = client.post("/api/v1/plan", json={"changes": "curtail"})
    assert response.status_code == 422 and response.headers["content-type"] == "application/json"
    assert response.json()["detail"]
    response = client.post("/api/v1/plan", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
