"""meshplane-ven against a REAL OpenADR 3 VTN (tests/e2e/vtn_support.py: openleadr-vtn on
PostgreSQL, driven by the utility's side, ElaadNL's openadr3-client) and the real API
server, as a ``meshplane-ven`` process with the RBAC the Helm chart ships (its own
ClusterRole and Lease Role, rendered by the real helm).

- an IMPORT_CAPACITY_LIMIT event the utility creates becomes a GridEvent with its
  intervals in MW; modified at the VTN, it is applied again; deleted there, it is
  cancelled (and kept); an event the VEN cannot convert is skipped, the others not;
- with the operator running: the event's limit sheds the factory's interruptible work,
  the DEMAND report at the interval end reaches the utility and is within the limit
  (BASELINE: the allocation before the event); the VTN killed mid-event leaves the
  GridEvent exactly as it was and marks it stale (SourceStale, the factory's
  GridSourceStale), and once the VTN is back the mark goes;
- two VEN replicas: one polls and writes, the standby takes over when it stops.

Each test has a VTN name, a program, a VEN user and a target of its own (unique names);
polls every second, events seconds ahead, real clocks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.core.grid_statuses import STALE_ANNOTATION
from controller.core.openadr import grid_event_name
from tests.e2e.e2e_support import Kubectl, terminate, unique_name
from tests.e2e.operator_support import (
    API_VERSION,
    ISOLATED_COUNTRY,
    ISOLATED_REGION,
    OperatorProcess,
    conditions_of,
    current_status,
    delete_quietly,
    events_about,
    free_port,
    get_object,
    render_chart,
    wait_for,
)
from tests.e2e.vtn_support import Vtn, VtnClient

VEN = Path(sys.executable).with_name("meshplane-ven")
EVENTS_NAMESPACE = "default"
CHART_VEN_VALUES = ("--set", "ven.enabled=true", "--set", "ven.vtn.url=http://vtn.invalid",
                    "--set", "ven.credentials.secretName=vtn-credentials")
LEASE = "meshplane-ven"  # the chart's default VEN Lease for the release "meshplane"
POLL_S = 1.0
STALE_AFTER_S = 3.0


def ven_rules() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(ClusterRole rules, Role rules) of the VEN, as the chart renders them."""
    objects = render_chart(*CHART_VEN_VALUES)
    ven = {o["kind"]: o for o in objects if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "ven"}
    return list(ven["ClusterRole"]["rules"]), list(ven["Role"]["rules"])


@pytest.fixture(scope="module")
def ven_env(service_account_kubeconfig: Any, installed_crds: Any,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    """A ServiceAccount with exactly the chart's VEN rules, in a namespace of its own."""
    namespace = unique_name("meshplane-ven")
    cluster_rules, lease_rules = ven_rules()
    kubeconfig = service_account_kubeconfig("meshplane-ven", namespace=namespace, rules=lease_rules,
                                            cluster_rules=cluster_rules)
    return kubeconfig, namespace, tmp_path_factory.mktemp("ven")


class VenProcess:
    """One ``meshplane-ven`` process (SIGTERM on stop)."""

    def __init__(self, env_: tuple[Path, str, Path], vtn: Vtn, client: VtnClient, vtn_name: str,
                 **settings: str) -> None:
        kubeconfig, namespace, logs = env_
        self.port = free_port()
        self.log_path = logs / f"{unique_name('ven')}.log"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MESHPLANE_") and k != "KUBECONFIG"},
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
            "MESHPLANE_VEN_KUBECONFIG": str(kubeconfig),
            "MESHPLANE_VEN_NAMESPACE": namespace,
            "MESHPLANE_VEN_LEASE_NAME": LEASE,
            "MESHPLANE_VEN_LEASE_DURATION_S": "4",
            "MESHPLANE_VEN_LEASE_RENEW_DEADLINE_S": "3",
            "MESHPLANE_VEN_LEASE_RETRY_PERIOD_S": "0.5",
            "MESHPLANE_VEN_HEALTH_PORT": str(self.port),
            "MESHPLANE_VEN_VTN_URL": vtn.base_url,
            "MESHPLANE_VEN_VTN_NAME": vtn_name,
            "MESHPLANE_VEN_CLIENT_ID": client.client_id,
            "MESHPLANE_VEN_CLIENT_SECRET": client.client_secret,
            "MESHPLANE_VEN_POLL_INTERVAL_S": str(POLL_S),
            "MESHPLANE_VEN_STALE_AFTER_S": str(STALE_AFTER_S),
            "MESHPLANE_VEN_REQUEST_TIMEOUT_S": "2",
            "MESHPLANE_VEN_EVENTS_NAMESPACE": EVENTS_NAMESPACE,
            **{f"MESHPLANE_VEN_{k.upper()}": v for k, v in settings.items()},
        }
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen([str(VEN)], env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as response:
                return int(response.status), response.read().decode()
        except OSError:
            assert self.process.poll() is None, f"meshplane-ven exited; log:\n{self.tail()}"
            return 0, ""

    def ready(self) -> bool:
        return self.get("/readyz")[0] == 200

    def metric(self, name: str) -> float | None:
        for line in self.get("/metrics")[1].splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def stop(self) -> None:
        terminate(self.process)
        self.log.close()


class Setup:
    """One test's VTN name, program, VEN user, target and factory name."""

    def __init__(self, kubectl: Kubectl, vtn: Vtn) -> None:
        self.kubectl = kubectl
        self.vtn = vtn
        self.vtn_name = unique_name("vtn")
        self.factory = unique_name("e2e-ven-site")
        self.target = unique_name("RES").upper()  # the utility's name for the factory
        self.program = vtn.utility.create_program(unique_name("dc-flex"))
        self.client = vtn.new_ven_client()
        vtn.utility.create_ven(unique_name("meshplane"), self.client.client_id, targets=[self.target])
        self.vens: list[VenProcess] = []

    def start_ven(self, env_: tuple[Path, str, Path], **settings: str) -> VenProcess:
        settings = {"factories": f"{self.factory}={self.target}", "programs": self.program["programName"],
                    "lead_time": "PT5S", **settings}
        ven = VenProcess(env_, self.vtn, self.client, self.vtn_name, **settings)
        self.vens.append(ven)
        wait_for("meshplane-ven to start", ven.ready, 30)
        return ven

    def event(self, values: list[float], start_in_s: float, duration_s: int, **extra: Any) -> dict[str, Any]:
        start = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=start_in_s)).replace(microsecond=0)
        return self.vtn.utility.create_event(self.program["id"], values=values, start=start,
                                             duration=f"PT{duration_s}S", targets=[self.target],
                                             name=unique_name("cut"), **extra)

    def grid_event_name(self, event: dict[str, Any]) -> str:
        return grid_event_name(self.vtn_name, event["id"], self.factory)

    def grid_event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        return get_object(self.kubectl, f"gridevent/{self.grid_event_name(event)}")

    def own(self) -> list[dict[str, Any]]:
        return list(self.kubectl.json("get", "gridevents", "-l", f"meshplane.io/openadr-vtn={self.vtn_name}")["items"])

    def close(self) -> None:
        for ven in self.vens:
            ven.stop()
        self.kubectl("delete", "gridevents", "-l", f"meshplane.io/openadr-vtn={self.vtn_name}", "--ignore-not-found",
                     "--wait=false", check=False)


@pytest.fixture()
def setup(kubectl: Kubectl, vtn: Vtn) -> Iterator[Setup]:
    vtn.ensure_running()
    made = Setup(kubectl, vtn)
    try:
        yield made
    finally:
        made.close()


def reasons(kubectl: Kubectl, name: str) -> list[str]:
    return [e["reason"] for e in events_about(kubectl, EVENTS_NAMESPACE, name)]


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# --------------------------------------------------------------------------- the event's life


def test_a_utility_event_becomes_a_grid_event_is_reapplied_when_modified_and_cancelled_when_deleted(
    kubectl: Kubectl, vtn: Vtn, setup: Setup, ven_env: tuple[Path, str, Path]
) -> None:
    """The VEN finds its token URL itself (GET /auth/server): no MESHPLANE_VEN_TOKEN_URL."""
    ven = setup.start_ven(ven_env)
    created = time.monotonic()
    event = setup.event([90_000, 75_000, 75_000], start_in_s=120, duration_s=20)
    # an event the VEN cannot convert (a power limit in kVAr): skipped with a reason, nothing else changes
    odd = setup.event([5_000], start_in_s=120, duration_s=20, units="KVAR")

    grid_event = wait_for("the GridEvent of the utility's event", lambda: setup.grid_event(event), 30)
    appeared = time.monotonic() - created
    start = utc(event["intervalPeriod"]["start"])
    spec = grid_event["spec"]
    assert spec["factory"] == setup.factory and spec["leadTime"] == "PT5S" and spec["cancelled"] is False
    assert [(utc(i["start"]), i["duration"], i["importLimitMW"]) for i in spec["intervals"]] == [
        (start, "PT20S", 90.0), (start + dt.timedelta(seconds=20), "PT20S", 75.0),
        (start + dt.timedelta(seconds=40), "PT20S", 75.0)]
    source = spec["source"]["openadr"]
    assert (source["vtn"], source["eventId"], source["programId"], source["programName"]) == (
        setup.vtn_name, event["id"], setup.program["id"], setup.program["programName"])
    assert source["modificationDateTime"] and source["eventName"] == event["eventName"]
    labels = grid_event["metadata"]["labels"]
    assert (labels["meshplane.io/openadr-vtn"], labels["meshplane.io/openadr-event"],
            labels["app.kubernetes.io/managed-by"]) == (setup.vtn_name, event["id"], "meshplane-ven")
    with_fields = kubectl.json("get", f"gridevent/{setup.grid_event_name(event)}", "--show-managed-fields")
    managers = {m["manager"]: m["operation"] for m in with_fields["metadata"]["managedFields"]}
    assert managers == {"meshplane-ven": "Apply"}
    assert [g["metadata"]["name"] for g in setup.own()] == [setup.grid_event_name(event)]
    assert wait_for("the odd event skipped", lambda: f"event {odd['id']} of VTN {setup.vtn_name} skipped" in ven.text())
    assert "KVAR" in ven.text()

    # modified at the VTN: applied again, same name
    modified_at = time.monotonic()
    vtn.utility.update_event(event["id"], values=[80_000, 70_000])
    updated = wait_for("the modified intervals", lambda: (g := setup.grid_event(event)) is not None
                       and [i["importLimitMW"] for i in g["spec"]["intervals"]] == [80.0, 70.0] and g, 30)
    reapplied = time.monotonic() - modified_at
    assert updated["spec"]["source"]["openadr"]["modificationDateTime"] != source["modificationDateTime"]
    assert updated["metadata"]["generation"] == grid_event["metadata"]["generation"] + 1
    # polls of an unchanged event write nothing
    time.sleep(3 * POLL_S)
    assert setup.grid_event(event)["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]

    # deleted at the VTN: cancelled, its intervals kept for the record
    deleted_at = time.monotonic()
    vtn.utility.delete_event(event["id"])
    cancelled = wait_for("the GridEvent cancelled", lambda: (g := setup.grid_event(event)) is not None
                         and g["spec"]["cancelled"] and g, 30)
    cancelled_in = time.monotonic() - deleted_at
    assert cancelled["spec"]["intervals"] == updated["spec"]["intervals"]
    assert wait_for("its Events", lambda: {"OpenAdrEventReceived", "OpenAdrEventModified", "OpenAdrEventCancelled"}
                    <= set(reasons(kubectl, setup.grid_event_name(event))), 15)
    assert "Traceback" not in ven.text()
    assert ven.metric("meshplane_openadr_poll_errors_total") == 0
    assert (ven.metric("meshplane_openadr_leader"), ven.metric("meshplane_openadr_skipped_events")) == (1, 1)
    print(f"\nGridEvent written {appeared:.2f}s after the utility created the event, re-applied "
          f"{reapplied:.2f}s after its update, cancelled {cancelled_in:.2f}s after its deletion")


# --------------------------------------------------------------------------- with the operator


def factory_and_workloads(name: str, namespace: str, model: str) -> list[dict[str, Any]]:
    """1 MW firm + 1 MW flexible, PUE 1: a firm workload of 900 kW and an interruptible
    one of 600 kW (1.5 MW in all, 0.5 MW of it on flexible power)."""
    return [
        {"apiVersion": API_VERSION, "kind": "AIFactory", "metadata": {"name": name},
         "spec": {"region": ISOLATED_REGION, "country": ISOLATED_COUNTRY,
                  "power": {"firmMW": 1.0, "flexibleMW": 1.0, "pue": 1.0},
                  "acceleratorPools": [{"model": model, "count": 2000, "wattsPerDevice": 1000,
                                        "tokensPerSecondPerDevice": 1000, "memoryGiB": 64}]}},
        {"apiVersion": API_VERSION, "kind": "MeshWorkload", "metadata": {"name": "firm", "namespace": namespace},
         "spec": {"type": "training", "accelerators": 900, "acceleratorModels": [model], "interruptible": False,
                  "priority": 500}},
        {"apiVersion": API_VERSION, "kind": "MeshWorkload", "metadata": {"name": "flex", "namespace": namespace},
         "spec": {"type": "batch", "accelerators": 600, "acceleratorModels": [model], "interruptible": True,
                  "priority": 100}},
    ]


def test_the_limit_is_met_and_reported_and_a_killed_vtn_makes_the_event_stale_not_lifted(
    kubectl: Kubectl, vtn: Vtn, setup: Setup, ven_env: tuple[Path, str, Path], fresh_operator: OperatorProcess
) -> None:
    namespace = unique_name("e2e-ven")
    model = unique_name("e2e-ven-gpu")
    kubectl("create", "namespace", namespace)
    try:
        kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                      "items": factory_and_workloads(setup.factory, namespace, model)}))
        wait_for("both workloads placed", lambda: all(current_status(kubectl, f"meshworkload/{n}", namespace)
                                                      .get("phase") == "Placed" for n in ("firm", "flex")), 90)
        factory = f"aifactory/{setup.factory}"
        wait_for("1.5 MW allocated", lambda: abs(current_status(kubectl, factory).get("power", {})
                                                 .get("allocatedMW", 0) - 1.5) < 1e-9, 30)
        ven = setup.start_ven(ven_env, token_url=vtn.token_url)
        # 1.2 MW from 15 s ahead, three intervals of 20 s: "flex" must go 5 s (the lead) before
        event = setup.event([1_200, 1_200, 1_200], start_in_s=15, duration_s=20)
        start = utc(event["intervalPeriod"]["start"])
        name = setup.grid_event_name(event)
        wait_for("the GridEvent", lambda: setup.grid_event(event), 15)
        wait_for("the interruptible work shed", lambda: current_status(kubectl, "meshworkload/flex", namespace)
                 .get("phase") == "Preempted", 40)

        # the first interval ends: a DEMAND report, then status.lastReport
        report = wait_for("the DEMAND report at the utility", lambda: vtn.utility.reports(event_id=event["id"]),
                          45)
        reported_in = (dt.datetime.now(dt.UTC) - (start + dt.timedelta(seconds=20))).total_seconds()
        [first] = report
        assert first["clientName"] == "meshplane" and first["reportName"] == f"{name}/0"
        [resource] = first["resources"]
        assert resource["resourceName"] == setup.target
        payloads = {p["type"]: p["values"][0] for p in resource["intervals"][0]["payloads"]}
        assert payloads["DEMAND"] <= 1_200  # kW: within the limit
        assert payloads == {"DEMAND": 900.0, "BASELINE": 1_500.0}  # the firm work; the allocation before
        last = wait_for("status.lastReport", lambda: (get_object(kubectl, f"gridevent/{name}").get("status") or {})
                        .get("lastReport"), 15)
        assert (last["demandMW"], last["limitMW"], last["baselineMW"]) == (0.9, 1.2, 1.5)

        # the VTN killed mid-event: the GridEvent is kept as it was, and marked stale
        before = get_object(kubectl, f"gridevent/{name}")
        assert before is not None and STALE_ANNOTATION not in before["metadata"].get("annotations", {})
        with vtn.down():
            killed = time.monotonic()
            marked = wait_for("the stale annotation", lambda: (g := get_object(kubectl, f"gridevent/{name}"))
                              and STALE_ANNOTATION in g["metadata"].get("annotations", {}) and g, 15)
            marked_in = time.monotonic() - killed
            assert marked["spec"] == before["spec"]
            assert marked["metadata"]["generation"] == before["metadata"]["generation"]
            since = utc(marked["metadata"]["annotations"][STALE_ANNOTATION])
            assert dt.datetime.now(dt.UTC) - dt.timedelta(seconds=15) < since <= dt.datetime.now(dt.UTC)
            stale = wait_for("SourceStale and GridSourceStale", lambda: (
                conditions_of(get_object(kubectl, f"gridevent/{name}").get("status") or {}).get("SourceStale", {})
                .get("status") == "True"
                and conditions_of(current_status(kubectl, factory)).get("GridSourceStale", {}).get("status")
                == "True"), 15)
            assert stale
            assert current_status(kubectl, "meshworkload/flex", namespace).get("phase") == "Preempted"  # not lifted
            assert ven.metric("meshplane_openadr_stale") == 1
        back = time.monotonic()
        fresh = wait_for("the stale annotation removed", lambda: (g := get_object(kubectl, f"gridevent/{name}"))
                         and STALE_ANNOTATION not in g["metadata"].get("annotations", {}) and g, 20)
        fresh_in = time.monotonic() - back
        assert fresh["spec"] == before["spec"]
        wait_for("GridSourceStale False", lambda: conditions_of(current_status(kubectl, factory))
                 .get("GridSourceStale", {}).get("status") == "False", 15)
        assert {"VtnUnreachable", "VtnReachable", "DemandReported"} <= set(reasons(kubectl, name))

        # the second interval ends with the VTN back: reported too
        wait_for("the second report", lambda: len(vtn.utility.reports(event_id=event["id"])) >= 2, 40)
        assert "Traceback" not in ven.text()
        assert 'meshplane_openadr_reports_total{result="ok"} 2.0' in ven.get("/metrics")[1]
        print(f"\nfirst report {reported_in:.2f}s after the interval end; stale {marked_in:.2f}s after the VTN was "
              f"killed (threshold {STALE_AFTER_S:.0f}s); fresh {fresh_in:.2f}s after it was back")
    finally:
        kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=120s", check=False)
        delete_quietly(kubectl, f"aifactory/{setup.factory}")


# --------------------------------------------------------------------------- two replicas


def test_only_the_leader_writes_and_the_standby_takes_over(
    kubectl: Kubectl, vtn: Vtn, setup: Setup, ven_env: tuple[Path, str, Path]
) -> None:
    first = setup.start_ven(ven_env)
    second = setup.start_ven(ven_env)
    leaders = wait_for("one leader", lambda: [v for v in (first, second) if v.metric("meshplane_openadr_leader") == 1]
                       if sum(v.metric("meshplane_openadr_leader") or 0 for v in (first, second)) == 1 else None, 15)
    [leader] = leaders
    standby = second if leader is first else first
    event = setup.event([50_000], start_in_s=300, duration_s=60)
    wait_for("the GridEvent", lambda: setup.grid_event(event), 15)
    assert "written for event" in leader.text() and "written for event" not in standby.text()
    assert "leading: polling VTN" not in standby.text()

    leader.stop()  # releases the Lease: the standby takes over at its next try
    stopped = time.monotonic()
    vtn.utility.update_event(event["id"], values=[40_000])
    wait_for("the standby applying the change", lambda: (g := setup.grid_event(event)) is not None
             and g["spec"]["intervals"][0]["importLimitMW"] == 40.0, 20)
    print(f"\nthe standby applied a change {time.monotonic() - stopped:.2f}s after the leader stopped")
    assert "updated: event" in standby.text()
