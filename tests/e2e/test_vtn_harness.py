"""The OpenADR VTN harness (tests/e2e/vtn_support.py) really works: a real openleadr-vtn
on PostgreSQL 18, in a network namespace of its own and reached through the bridges,
takes a program and an IMPORT_CAPACITY_LIMIT event from the utility (ElaadNL's
openadr3-client), serves the event to a VEN that authenticates with OAuth2 client
credentials (plain httpx here, as meshplane's VEN does), stores the VEN's report for the
utility, and keeps its data across a crash.

These tests check the VTN through the harness, not meshplane: they are what the grid
demand-response tests rely on. Every program has a unique name and each test a VEN
user of its own; the killed VTN is restarted by ``vtn.down()`` even on failure.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.e2e_support import unique_name
from tests.e2e.ocm_support import is_loopback, wait_for_value
from tests.e2e.vtn_support import (
    VTN_INNER_PORT,
    Vtn,
    VtnClient,
    interfaces,
    network_namespace,
    socket_inodes,
    tcp_listeners,
)


def token(vtn: Vtn, client: VtnClient) -> str:
    """An access token by the OAuth2 client-credentials grant at the VTN's token URL."""
    response = httpx.post(vtn.token_url, data={"grant_type": "client_credentials", "client_id": client.client_id,
                                               "client_secret": client.client_secret}, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"].lower() == "bearer" and body["expires_in"] > 0
    return str(body["access_token"])


def ven_get(vtn: Vtn, access_token: str, path: str, **params: str) -> Any:
    response = httpx.get(f"{vtn.base_url}{path}", params=params, timeout=10,
                         headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.text
    return response.json()


def capacity_event(vtn: Vtn, target: str, values: list[float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A fresh program and an IMPORT_CAPACITY_LIMIT event (KW, 1 h intervals from now+2 h)."""
    program = vtn.utility.create_program(unique_name("vtn-harness"))
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    event = vtn.utility.create_event(program["id"], values=values, start=start, duration="PT1H",
                                     targets=[target], name=unique_name("cap"))
    return program, event


def test_the_vtn_is_healthy_and_advertises_its_token_url(vtn: Vtn) -> None:
    assert httpx.get(f"{vtn.base_url}/health", timeout=10).text == "OK"
    # OpenADR 3.1 token-URL discovery: what a VEN configured with the base URL alone uses.
    assert httpx.get(f"{vtn.base_url}/auth/server", timeout=10).json() == {"tokenURL": vtn.token_url}
    # Without a token the VTN refuses; a wrong secret gets no token.
    assert httpx.get(f"{vtn.base_url}/programs", timeout=10).status_code == 401
    bad = httpx.post(vtn.token_url, data={"grant_type": "client_credentials", "client_id": vtn.ven_client_id,
                                          "client_secret": "wrong"}, timeout=10)
    assert bad.status_code in (400, 401), bad.text


def test_a_utility_event_reaches_a_ven_of_its_target(vtn: Vtn) -> None:
    target = unique_name("site")
    program, event = capacity_event(vtn, target, [90_000, 75_000, 75_000])
    assert event["programID"] == program["id"]
    assert event["payloadDescriptors"] == [{"payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KW",
                                            "objectType": "EVENT_PAYLOAD_DESCRIPTOR"}]

    ven = vtn.new_ven_client()
    access = token(vtn, ven)
    # No VEN object yet: the VEN sees only untargeted events, so not this one.
    assert ven_get(vtn, access, "/events", programID=program["id"]) == []
    vtn.utility.create_ven(unique_name("ven"), ven.client_id, targets=[target])

    [seen] = ven_get(vtn, access, "/events", programID=program["id"])
    assert seen["id"] == event["id"] and seen["targets"] == [target]
    assert [iv["payloads"] for iv in seen["intervals"]] == [
        [{"type": "IMPORT_CAPACITY_LIMIT", "values": [v]}] for v in (90_000, 75_000, 75_000)]
    assert datetime.fromisoformat(seen["intervalPeriod"]["start"]) == datetime.fromisoformat(
        event["intervalPeriod"]["start"])
    assert seen["intervalPeriod"]["duration"] in ("PT1H", "P0Y0M0DT1H0M0S")

    # An event for another target stays invisible to this VEN; the utility sees both.
    other = vtn.utility.create_event(program["id"], values=[1], payload_type="SIMPLE",
                                     start=event["intervalPeriod"]["start"], duration="PT1H",
                                     targets=[unique_name("elsewhere")])
    assert [e["id"] for e in ven_get(vtn, access, "/events", programID=program["id"])] == [event["id"]]
    assert {e["id"] for e in vtn.utility.events(program["id"])} == {event["id"], other["id"]}

    # An update reaches the VEN; a deleted (cancelled) event is gone for it.
    vtn.utility.update_event(event["id"], values=[80_000, 70_000])
    [updated] = ven_get(vtn, access, "/events", programID=program["id"])
    assert [iv["payloads"][0]["values"] for iv in updated["intervals"]] == [[80_000], [70_000]]
    vtn.utility.delete_event(event["id"])
    assert ven_get(vtn, access, "/events", programID=program["id"]) == []


def test_a_ven_demand_report_is_visible_to_the_utility(vtn: Vtn) -> None:
    target = unique_name("site")
    program, event = capacity_event(vtn, target, [75_000])
    ven = vtn.new_ven_client()
    vtn.utility.create_ven(target, ven.client_id, targets=[target])
    access = token(vtn, ven)
    report = {
        "eventID": event["id"],
        "clientName": target,
        "reportName": unique_name("demand"),
        "payloadDescriptors": [{"objectType": "REPORT_PAYLOAD_DESCRIPTOR", "payloadType": "DEMAND",
                                "readingType": "MEAN", "units": "KW"}],
        "resources": [{"resourceName": target, "intervals": [
            {"id": 0, "payloads": [{"type": "DEMAND", "values": [74_200]}]}]}],
    }
    posted = httpx.post(f"{vtn.base_url}/reports", json=report, timeout=10,
                        headers={"Authorization": f"Bearer {access}"})
    assert posted.status_code == 201, posted.text
    assert posted.json()["clientID"] == ven.client_id

    for found in (vtn.utility.reports(event_id=event["id"]), vtn.utility.reports(program_id=program["id"])):
        [seen] = found
        assert seen["id"] == posted.json()["id"] and seen["clientName"] == target
        assert seen["resources"][0]["intervals"][0]["payloads"] == [{"type": "DEMAND", "values": [74_200]}]

    # The VTN keeps an event with reports: deleting it needs the reports gone first.
    with pytest.raises(AssertionError) as refused:
        vtn.utility.delete_event(event["id"])
    assert getattr(refused.value, "status", None) == 409
    vtn.utility.delete_event(event["id"], with_reports=True)
    assert vtn.utility.reports(program_id=program["id"]) == []


def test_a_killed_vtn_comes_back_with_its_data(vtn: Vtn) -> None:
    target = unique_name("site")
    program, event = capacity_event(vtn, target, [60_000, 50_000])
    ven = vtn.new_ven_client()
    vtn.utility.create_ven(target, ven.client_id, targets=[target])
    access = token(vtn, ven)  # taken before the crash: the OAuth secret stays the same
    before = ven_get(vtn, access, "/events", programID=program["id"])

    old_pid = vtn.vtn_pid()
    with vtn.down():
        assert not vtn.running
        with pytest.raises(httpx.ConnectError):  # connection refused, as for a VTN that is down
            httpx.get(f"{vtn.base_url}/health", timeout=5)
        killed = time.monotonic()
    back = time.monotonic() - killed
    assert vtn.running and vtn.vtn_pid() != old_pid

    assert ven_get(vtn, access, "/events", programID=program["id"]) == before
    assert [e["id"] for e in vtn.utility.events(program["id"])] == [event["id"]]
    assert token(vtn, ven)  # the seeded users are still there
    print(f"VTN killed and healthy again {back:.2f}s later (restarts: {vtn.start_seconds})")


def test_nothing_listens_beyond_loopback_on_the_host(vtn: Vtn) -> None:
    vtn.ensure_running()
    groups = wait_for_value(vtn.process_groups, lambda g: len(g.get("vtn", [])) == 2,
                            what="the VTN and its namespace's bridge")
    assert set(groups) == {"postgres", "vtn", "bridge"}
    host_ns = network_namespace()

    # On the host, the harness's processes listen on 127.0.0.1 only: the host's bridge.
    host_listeners = {name: tcp_listeners("self", set().union(*(socket_inodes(p) for p in pids)))
                      for name, pids in groups.items()}
    assert all(is_loopback(address) for found in host_listeners.values() for address, _ in found), host_listeners
    assert host_listeners == {"postgres": [], "vtn": [], "bridge": [("127.0.0.1", vtn.port)]}

    # PostgreSQL has no TCP socket at all (a unix socket only), and runs in the host's netns.
    for pid in groups["postgres"]:
        assert network_namespace(pid) == host_ns
        assert tcp_listeners(pid, socket_inodes(pid)) == []

    # The VTN binds 0.0.0.0, but in a namespace of its own that has nothing but loopback.
    pid = vtn.vtn_pid()
    assert pid is not None
    assert network_namespace(pid) != host_ns
    assert interfaces(pid) == ["lo"]
    assert ("0.0.0.0", VTN_INNER_PORT) in tcp_listeners(pid, socket_inodes(pid))
    assert ("0.0.0.0", VTN_INNER_PORT) not in tcp_listeners("self")
