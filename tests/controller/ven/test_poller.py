"""What the VEN's poll decides to write, poll by poll, with a clock the test moves.

The end-to-end test (tests/e2e/test_ven.py) runs the VEN against the real VTN and API
server. What it cannot make happen is here: a VTN that fails half-way through a
listing, pages that miss an event, a token endpoint that is down. The VTN is the
stand-in of test_client.py at the client's transport seam; the cluster is an in-memory
recorder of the VEN's writes (:class:`Recorder`: it applies as server-side apply would,
for the fields the VEN owns), since the question is what the poll writes, not how the
API server stores it.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
from typing import Any

import httpx

from controller.core.grid_statuses import STALE_ANNOTATION
from controller.core.openadr import grid_event_name
from controller.ven.client import OpenAdrClient
from controller.ven.metrics import VenMetrics
from controller.ven.poller import Ven
from controller.ven.settings import VenSettings
from tests.controller.ven.test_client import BASE, FakeVtn

T0 = dt.datetime(2026, 7, 14, 17, 0, tzinfo=dt.UTC)
FACTORY = "us-memphis-1"


def event(event_id: str, values: list[float], start: dt.datetime, **extra: Any) -> dict[str, Any]:
    return {"id": event_id, "programID": "p1", "modificationDateTime": "2026-07-14T16:00:00+00:00",
            "targets": [FACTORY], "intervalPeriod": {"start": start.isoformat(), "duration": "P0Y0M0DT0H1M0S"},
            "intervals": [{"id": i, "payloads": [{"type": "IMPORT_CAPACITY_LIMIT", "values": [v]}]}
                          for i, v in enumerate(values)], **extra}


class Recorder:
    """The cluster as the VEN sees it: its GridEvents and one factory, and every write."""

    def __init__(self, allocated_mw: float | None = 120.0) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []
        self.events: list[tuple[str, str]] = []
        self.allocated_mw = allocated_mw

    def own_grid_events(self, vtn: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for o in self.objects.values()
                if o["metadata"]["labels"].get("meshplane.io/openadr-vtn") == vtn]

    def factories(self) -> list[dict[str, Any]]:
        status = {"power": {"allocatedMW": self.allocated_mw}} if self.allocated_mw is not None else {}
        return [{"metadata": {"name": FACTORY}, "status": status}]

    def apply(self, manifest: dict[str, Any]) -> None:
        name = manifest["metadata"]["name"]
        old = self.objects.get(name, {"metadata": {"annotations": {}}})
        stale = {k: v for k, v in old["metadata"].get("annotations", {}).items() if k == STALE_ANNOTATION}
        new = copy.deepcopy(manifest)
        new["metadata"]["annotations"] = {**new["metadata"]["annotations"], **stale}
        if "status" in old:
            new["status"] = old["status"]
        self.objects[name] = new
        self.writes.append(("cancel" if manifest["spec"]["cancelled"] else "apply", name))

    def apply_status(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        self.objects[name].setdefault("status", {}).update(copy.deepcopy(body["status"]))
        self.writes.append(("status", name))

    def mark_stale(self, name: str, since: str | None) -> None:
        annotations = self.objects[name]["metadata"]["annotations"]
        if since is None:
            annotations.pop(STALE_ANNOTATION, None)
        else:
            annotations[STALE_ANNOTATION] = since
        self.writes.append(("stale" if since else "fresh", name))

    def record(self, events: Any) -> None:
        self.events += [(name, reason) for name, _, _, reason, _ in events]


class Harness:
    def __init__(self, vtn: FakeVtn, cluster: Recorder, **env: str) -> None:
        self.now = T0
        self.vtn = vtn
        self.cluster = cluster
        self.settings = VenSettings.from_env({
            "MESHPLANE_VEN_VTN_URL": BASE, "MESHPLANE_VEN_CLIENT_ID": "ven", "MESHPLANE_VEN_CLIENT_SECRET": "secret",
            "MESHPLANE_VEN_VTN_NAME": "utility", "MESHPLANE_VEN_POLL_INTERVAL_S": "60",
            "MESHPLANE_VEN_FACTORIES": FACTORY, **env})
        self.metrics = VenMetrics()

    def poll(self, at: dt.datetime | None = None) -> None:
        if at is not None:
            self.now = at

        async def go() -> None:
            async with OpenAdrClient(BASE, "ven", "secret", transport=httpx.MockTransport(self.vtn.handle)) as client:
                ven = self.ven(client)
                await ven.poll_once()

        asyncio.run(go())

    def ven(self, client: OpenAdrClient) -> Ven:
        if not hasattr(self, "_ven"):
            self._ven = Ven(self.settings, client, self.cluster, self.metrics,
                            is_leader=lambda: True, clock=lambda: self.now)
            self._ven._leader()
        self._ven.client = client
        return self._ven

    def name(self, event_id: str) -> str:
        return grid_event_name("utility", event_id, FACTORY)


def test_a_listing_that_fails_half_way_cancels_nothing_and_marks_stale_only_after_the_threshold():
    vtn = FakeVtn()
    vtn.events = [event(f"e{i}", [90_000], T0 + dt.timedelta(hours=1)) for i in range(60)]  # two pages
    cluster = Recorder()
    harness = Harness(vtn, cluster)
    harness.poll()
    assert len(cluster.objects) == 60 and {w for w, _ in cluster.writes} == {"apply"}
    specs = {name: copy.deepcopy(o["spec"]) for name, o in cluster.objects.items()}
    cluster.writes.clear()

    pages = {"n": 0}

    def second_page_fails(request: httpx.Request) -> httpx.Response:
        pages["n"] += 1
        if request.url.params["skip"] == "50":
            return httpx.Response(500, json={"title": "Internal Server Error"})
        return httpx.Response(200, json=vtn.events[:50])

    vtn.override["/events"] = second_page_fails
    harness.poll(T0 + dt.timedelta(seconds=60))
    harness.poll(T0 + dt.timedelta(seconds=120))
    assert cluster.writes == []  # neither cancelled nor marked yet: 120 s < 3 polls
    harness.poll(T0 + dt.timedelta(seconds=180))
    assert {w for w, _ in cluster.writes} == {"stale"} and len(cluster.writes) == 60
    since = {o["metadata"]["annotations"][STALE_ANNOTATION] for o in cluster.objects.values()}
    assert since == {"2026-07-14T17:01:00Z"}  # the first failed poll
    assert {name: o["spec"] for name, o in cluster.objects.items()} == specs  # never changed
    assert harness.metrics.stale._value.get() == 1
    assert ("VtnUnreachable" in {reason for _, reason in cluster.events})
    cluster.writes.clear()
    harness.poll(T0 + dt.timedelta(seconds=240))
    assert cluster.writes == []  # marked once

    del vtn.override["/events"]
    harness.poll(T0 + dt.timedelta(seconds=300))
    assert {w for w, _ in cluster.writes} == {"fresh"} and len(cluster.writes) == 60
    assert not any(STALE_ANNOTATION in o["metadata"]["annotations"] for o in cluster.objects.values())
    assert harness.metrics.poll_errors._value.get() == 4  # at 60, 120, 180 and 240 s


def test_an_event_a_page_missed_is_asked_for_and_kept():
    vtn = FakeVtn()
    vtn.events = [event("e0", [90_000], T0 + dt.timedelta(hours=1))]
    cluster = Recorder()
    harness = Harness(vtn, cluster)
    harness.poll()
    vtn.override["/events"] = lambda _: httpx.Response(200, json=[])  # the listing misses it; GET /events/e0 has it
    cluster.writes.clear()
    harness.poll(T0 + dt.timedelta(seconds=60))
    assert cluster.writes == []
    assert any(r.url.path.endswith("/events/e0") for r in vtn.requests)
    vtn.events = []  # now it is really gone: 404
    harness.poll(T0 + dt.timedelta(seconds=120))
    assert cluster.writes == [("cancel", harness.name("e0"))]


def test_a_token_endpoint_that_is_down_is_a_failed_poll():
    vtn = FakeVtn()
    vtn.events = [event("e0", [90_000], T0 + dt.timedelta(hours=1))]
    cluster = Recorder()
    harness = Harness(vtn, cluster)
    harness.poll()
    cluster.writes.clear()
    vtn.override["/token"] = lambda _: httpx.Response(502, text="bad gateway")
    vtn.valid.clear()
    for seconds in (60, 120, 180):
        harness.poll(T0 + dt.timedelta(seconds=seconds))
    assert cluster.writes == [("stale", harness.name("e0"))]


def test_bad_data_skips_one_event_and_the_others_are_written():
    vtn = FakeVtn()
    vtn.events = [event("good", [90_000], T0 + dt.timedelta(hours=1)),
                  event("bad", [90_000], T0 + dt.timedelta(hours=1), intervalPeriod={"start": "soon"}),
                  {"no": "id"}]
    cluster = Recorder()
    harness = Harness(vtn, cluster)
    harness.poll()
    assert cluster.writes == [("apply", harness.name("good"))]
    assert harness.metrics.skipped_events._value.get() == 2


def test_each_interval_end_is_reported_then_written_to_the_status():
    vtn = FakeVtn()
    vtn.events = [event("e0", [90_000, 75_000], T0 + dt.timedelta(minutes=5))]
    cluster = Recorder(allocated_mw=74.2)
    harness = Harness(vtn, cluster)
    harness.poll()
    name = harness.name("e0")
    harness.poll(T0 + dt.timedelta(minutes=6, seconds=1))
    [report] = vtn.reports.values()
    assert report["eventID"] == "e0" and report["resources"][0]["resourceName"] == FACTORY
    assert report["resources"][0]["intervals"][0]["payloads"] == [
        {"type": "DEMAND", "values": [74_200.0]}, {"type": "BASELINE", "values": [74_200.0]}]
    assert cluster.objects[name]["status"]["lastReport"] == {
        "at": "2026-07-14T17:06:01Z", "demandMW": 74.2, "limitMW": 90.0, "baselineMW": 74.2}
    harness.poll(T0 + dt.timedelta(minutes=6, seconds=30))
    assert len(vtn.reports) == 1  # once per interval end
    # a report the VTN refuses is not written to the status; it is tried again next poll
    vtn.override["/reports"] = lambda _: httpx.Response(500, json={"title": "oops"})
    harness.poll(T0 + dt.timedelta(minutes=7, seconds=1))
    assert cluster.objects[name]["status"]["lastReport"]["limitMW"] == 90.0
    del vtn.override["/reports"]
    harness.poll(T0 + dt.timedelta(minutes=7, seconds=40))
    assert len(vtn.reports) == 2 and cluster.objects[name]["status"]["lastReport"]["limitMW"] == 75.0


def test_a_standby_writes_nothing():
    vtn = FakeVtn()
    vtn.events = [event("e0", [90_000], T0 + dt.timedelta(hours=1))]
    cluster = Recorder()
    harness = Harness(vtn, cluster)

    async def go() -> None:
        async with OpenAdrClient(BASE, "ven", "secret", transport=httpx.MockTransport(vtn.handle)) as client:
            ven = Ven(harness.settings, client, cluster, harness.metrics,
                      is_leader=lambda: False, clock=lambda: T0)
            stop = asyncio.Event()
            task = asyncio.create_task(ven.run(stop))
            await asyncio.sleep(1.2)
            stop.set()
            await task

    asyncio.run(go())
    assert cluster.writes == [] and vtn.requests == []
