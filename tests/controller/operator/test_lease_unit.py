"""Fast tests of the Lease election's logic: fencing and expiry by our own clock.

These run without a cluster: the clock is injected, and the one seam to the API server
(``LeaderElector.leases``, the typed ``CoordinationV1Api``) is replaced by a small fake
that keeps one Lease and enforces ``resourceVersion`` on update (409) and existence on
create (409) and read (404), as the API server does. The real API server, with RBAC, is
exercised by tests/e2e/test_lease.py.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from controller.operator.lease import LeaderElector, LeaseConfig

NS = "meshplane-system"
NAME = "meshplane-operator"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeLeases:
    """One namespace's Leases, with the API server's concurrency rules."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.version = 100
        self.fail: Exception | None = None  # raised by every call while set
        self.calls: list[str] = []
        self._client = kubernetes.client.ApiClient()

    def _typed(self, obj: dict[str, Any]) -> Any:
        return self._client.deserialize(json.dumps(obj), "V1Lease", "application/json")

    def _store(self, body: dict[str, Any]) -> Any:
        self.version += 1
        obj = json.loads(json.dumps(body))
        obj["metadata"]["resourceVersion"] = str(self.version)
        self.objects[obj["metadata"]["name"]] = obj
        return self._typed(obj)

    def read_namespaced_lease(self, name: str, namespace: str, **kw: Any) -> Any:
        assert namespace == NS and kw.get("_request_timeout")
        self.calls.append("read")
        if self.fail:
            raise self.fail
        if name not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        return self._typed(self.objects[name])

    def create_namespaced_lease(self, namespace: str, body: dict[str, Any], **kw: Any) -> Any:
        assert namespace == NS and kw.get("_request_timeout")
        self.calls.append("create")
        if self.fail:
            raise self.fail
        if body["metadata"]["name"] in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        return self._store(body)

    def replace_namespaced_lease(self, name: str, namespace: str, body: dict[str, Any], **kw: Any) -> Any:
        assert namespace == NS and kw.get("_request_timeout")
        self.calls.append("replace")
        if self.fail:
            raise self.fail
        current = self.objects[name]
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        return self._store(body)

    # helpers of the tests: what another replica (with its own wall clock) would write
    def put(self, holder: str | None, renew: dt.datetime, duration: int = 15, transitions: int = 3) -> None:
        spec: dict[str, Any] = {"leaseDurationSeconds": duration, "leaseTransitions": transitions,
                                "acquireTime": renew.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                                "renewTime": renew.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        if holder:
            spec["holderIdentity"] = holder
        self._store({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": NAME, "namespace": NS}, "spec": spec})

    def spec(self) -> dict[str, Any]:
        return self.objects[NAME]["spec"]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def elector(clock: FakeClock, leases: FakeLeases, identity: str = "me", **callbacks: Any) -> LeaderElector:
    config = LeaseConfig(namespace=NS, identity=identity, lease_duration_s=15, renew_deadline_s=10, retry_period_s=2)
    e = LeaderElector(kubernetes.client.ApiClient(), config, clock=clock, **callbacks)
    e.leases = leases
    return e


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def leases() -> FakeLeases:
    return FakeLeases()


def test_config_checks_its_timings():
    assert LeaseConfig(namespace="ns", identity="a").name == "meshplane-operator"
    with pytest.raises(TypeError):
        LeaseConfig(namespace="ns")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="identity"):
        LeaseConfig(namespace="ns", identity="")
    with pytest.raises(ValueError, match="lease_duration_s"):
        LeaseConfig(namespace="ns", identity="a", lease_duration_s=10, renew_deadline_s=10)
    with pytest.raises(ValueError, match="renew_deadline_s"):
        LeaseConfig(namespace="ns", identity="a", renew_deadline_s=2, retry_period_s=2)


def test_creates_a_missing_lease_and_leads(clock, leases):
    started: list[int] = []
    e = elector(clock, leases, on_started_leading=lambda: started.append(1))
    assert not e.is_leader() and e.holder is None
    assert e.step()
    assert leases.calls == ["read", "create"]
    assert e.is_leader() and e.holder == "me" and started == [1]
    spec = leases.spec()
    assert spec["holderIdentity"] == "me"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert spec["renewTime"].endswith("Z") and len(spec["renewTime"]) == len("2026-01-01T00:00:00.000000Z")


def test_fencing_without_any_thread(clock, leases):
    """is_leader() turns False by itself once the renew deadline has passed since the
    last successful renewal: no thread, no API call, nothing else runs."""
    e = elector(clock, leases)
    assert e.step()
    assert e._next_wait() == 2  # leading: renew every retry period
    clock.advance(9.9)
    assert e.is_leader()
    assert e._next_wait() == pytest.approx(0.101)  # wake at the deadline to report the loss
    calls = len(leases.calls)
    clock.advance(0.2)
    assert not e.is_leader()
    assert len(leases.calls) == calls  # nothing had to happen for the fence to close


def test_renewals_keep_leading_and_failed_ones_lose_it_at_the_deadline(clock, leases):
    stopped: list[int] = []
    e = elector(clock, leases, on_stopped_leading=lambda: stopped.append(1))
    assert e.step()
    acquired = leases.spec()["acquireTime"]
    for _ in range(20):  # 40 s of renewals every retry period
        clock.advance(2)
        assert e.step() and e.is_leader()
    assert leases.spec()["acquireTime"] == acquired
    assert leases.spec()["leaseTransitions"] == 0

    leases.fail = ApiException(status=503, reason="Service Unavailable")
    for _ in range(4):  # 8 s of failures: still inside the 10 s deadline
        clock.advance(2)
        assert not e.step()
        assert e.is_leader() and stopped == []
    clock.advance(2)
    assert not e.step()
    assert not e.is_leader() and stopped == [1]
    assert e._next_wait() >= 2  # not leading: back to one attempt per retry period, no busy loop

    # Network errors are survived the same way; when the server answers again, the
    # Lease (still ours) is renewed without a transition.
    leases.fail = ConnectionResetError("connection reset by peer")
    clock.advance(2)
    assert not e.step()
    leases.fail = None
    clock.advance(2)
    assert e.step() and e.is_leader()
    assert leases.spec()["leaseTransitions"] == 0


def test_expiry_is_judged_by_our_clock_not_the_records_renew_time(clock, leases):
    """Another holder's record written long ago by ITS wall clock (skewed by an hour) is
    still valid for a full lease duration after WE first saw it."""
    leases.put("other", utcnow() - dt.timedelta(hours=1), duration=15, transitions=3)
    e = elector(clock, leases)
    assert not e.step()
    assert e.holder == "other" and not e.is_leader()
    clock.advance(14.9)
    assert not e.step() and not e.is_leader()
    assert "replace" not in leases.calls
    clock.advance(0.2)
    assert e.step() and e.is_leader()
    spec = leases.spec()
    assert spec["holderIdentity"] == "me"
    assert spec["leaseTransitions"] == 4  # holder changed
    assert spec["acquireTime"] == spec["renewTime"]


def test_a_renewal_by_the_holder_restarts_our_observation(clock, leases):
    """A record whose renewTime lies in the future (the holder's clock runs ahead) is not
    trusted longer either, and each change of the record restarts the wait."""
    leases.put("other", utcnow() + dt.timedelta(hours=1))
    e = elector(clock, leases)
    assert not e.step()
    for _ in range(10):  # the holder renews every 10 s: we never take over
        clock.advance(10)
        leases.put("other", utcnow() + dt.timedelta(hours=1))
        assert not e.step() and not e.is_leader()
    clock.advance(15.1)  # it stops renewing
    assert e.step() and e.is_leader()


def test_an_unheld_lease_is_taken_at_once(clock, leases):
    leases.put(None, utcnow(), duration=1, transitions=7)  # as a released Lease looks
    e = elector(clock, leases)
    assert e.step() and e.is_leader()
    assert leases.spec()["leaseTransitions"] == 8


def test_a_conflict_means_someone_else_wrote(clock, leases):
    leases.put("other", utcnow())
    e = elector(clock, leases)
    assert not e.step()
    clock.advance(16)
    real_replace = leases.replace_namespaced_lease

    def racing(name: str, namespace: str, body: dict[str, Any], **kw: Any) -> Any:
        leases.put("third", utcnow(), transitions=4)  # another replica wins the race
        return real_replace(name, namespace, body, **kw)

    leases.replace_namespaced_lease = racing
    assert not e.step()  # 409: not leader, no exception
    assert not e.is_leader()
    leases.replace_namespaced_lease = real_replace
    assert not e.step()
    assert e.holder == "third" and not e.is_leader()
    assert leases.spec()["holderIdentity"] == "third"


def test_losing_the_record_to_another_holder_ends_leading_at_once(clock, leases):
    e = elector(clock, leases)
    assert e.step()
    leases.put("other", utcnow())  # e.g. we were stuck for longer than the lease duration
    clock.advance(2)
    assert not e.step()
    assert not e.is_leader() and e.holder == "other"


def test_release_clears_the_holder(clock, leases):
    e = elector(clock, leases)
    assert e.step()
    assert e.release()
    assert not e.is_leader() and e.holder is None
    spec = leases.spec()
    assert "holderIdentity" not in spec
    assert spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 0
    other = elector(clock, leases, identity="other")
    assert other.step() and other.is_leader()
    assert leases.spec()["leaseTransitions"] == 1
    assert e.release()  # not ours any more: nothing to do
    assert leases.spec()["holderIdentity"] == "other"


def test_run_survives_errors_and_releases_on_stop(leases):
    """The real loop (real clock, short timings): errors never end the thread, and a
    stop releases the Lease."""
    config = LeaseConfig(namespace=NS, identity="me", lease_duration_s=1.5, renew_deadline_s=1.0,
                         retry_period_s=0.05)
    e = LeaderElector(kubernetes.client.ApiClient(), config)
    e.leases = leases
    leases.fail = RuntimeError("boom")
    thread = e.start()
    try:
        deadline = threading.Event()
        while len(leases.calls) < 3 and not deadline.wait(0.01):
            pass
        assert thread.is_alive() and not e.is_leader()
        leases.fail = None
        for _ in range(500):
            if e.is_leader():
                break
            deadline.wait(0.01)
        assert e.is_leader()
    finally:
        e.stop()
    assert not thread.is_alive()
    assert not e.is_leader()
    assert "holderIdentity" not in leases.spec()


def test_the_fence_closes_while_the_thread_is_stuck_in_a_request(leases):
    """A renewal hanging in the API call (a stuck connection) does not keep us leader:
    is_leader() turns False at the renew deadline, while the thread is still blocked;
    stop() fences at once, even against the request still in flight."""
    config = LeaseConfig(namespace=NS, identity="me", lease_duration_s=1.5, renew_deadline_s=1.0,
                         retry_period_s=0.05)
    e = LeaderElector(kubernetes.client.ApiClient(), config)
    e.leases = leases
    unblock, blocked = threading.Event(), threading.Event()
    real_replace = leases.replace_namespaced_lease

    def stuck(*args: Any, **kw: Any) -> Any:
        blocked.set()
        unblock.wait(10)
        return real_replace(*args, **kw)

    thread = e.start()
    try:
        for _ in range(500):
            if e.is_leader():
                break
            unblock.wait(0.01)
        assert e.is_leader()
        leases.replace_namespaced_lease = stuck
        assert blocked.wait(5)
        for _ in range(300):
            if not e.is_leader():
                break
            unblock.wait(0.01)
        assert not e.is_leader()
        assert thread.is_alive()

        # The renewal completes after all: it started in time, so we lead again...
        unblock.set()
        for _ in range(300):
            if e.is_leader():
                break
            threading.Event().wait(0.01)
        assert e.is_leader()
        # ...until stop(), which fences at once, before the thread has even ended.
        unblock.clear()
        blocked.clear()
        assert blocked.wait(5)
        e.stop(timeout_s=0.1, release=False)
        assert not e.is_leader()
        unblock.set()
        thread.join(5)
        assert not thread.is_alive() and not e.is_leader()
        assert leases.spec()["holderIdentity"] == "me"  # not released: as a killed process
    finally:
        unblock.set()
        e.stop()
