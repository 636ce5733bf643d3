"""Leader election on a real Lease (controller/operator/lease.py), against the real
kube-apiserver with RBAC enforced.

Each elector authenticates as its own ServiceAccount whose Role allows exactly
``get, create, update`` on ``leases`` in its namespace (what the operator's chart must
grant). Timings are short (lease 3 s, renew deadline 2 s, retry 0.5 s); assertions
only bound times from above by the lease duration plus generous margins, since the
machine may be loaded. Throughout every test a monitor samples ``is_leader()`` of all
electors every few milliseconds and fails the test if two ever lead at once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes.client
import kubernetes.config
import pytest
from kubernetes.client.exceptions import ApiException

from controller.operator.lease import LeaderElector, LeaseConfig
from tests.e2e.e2e_support import Kubectl, unique_name

pytestmark = pytest.mark.e2e

LEASE_RULES = [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}]
LEASE_S, DEADLINE_S, RETRY_S = 3.0, 2.0, 0.5
MARGIN_S = 3.0  # for a loaded 2-core machine


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until predicate() holds; return the seconds it took. Fail after timeout."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            pytest.fail(f"not within {timeout:.1f}s: {what}")
        time.sleep(0.02)


class CountingLeases:
    """Delegates to the real CoordinationV1Api and counts calls and their errors."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls = 0
        self.errors: list[int | None] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            try:
                return method(*args, **kwargs)
            except ApiException as exc:
                self.errors.append(exc.status)
                raise

        return call


class Electors:
    """Makes electors for one test, watches that no two lead at once, stops them all."""

    def __init__(self, sa_kubeconfig: Any, namespace: str) -> None:
        self.sa_kubeconfig = sa_kubeconfig
        self.namespace = namespace
        self.lease = unique_name("lease")
        self.all: list[LeaderElector] = []
        self.overlaps: list[list[str]] = []
        self.samples = 0
        self._done = threading.Event()
        self._monitor = threading.Thread(target=self._watch, daemon=True, name="lease-overlap-monitor")
        self._monitor.start()

    def account(self, rules: list[dict[str, Any]] | None = LEASE_RULES) -> tuple[str, Any]:
        """A ServiceAccount (with a Role of ``rules``) and a client authenticated as it."""
        name = unique_name("elector")
        path = self.sa_kubeconfig(name, namespace=self.namespace, rules=rules)
        return name, kubernetes.config.new_client_from_config(config_file=str(path))

    def make(self, client: Any = None, rules: list[dict[str, Any]] | None = LEASE_RULES, *,
             lease_s: float = LEASE_S, start: bool = True) -> LeaderElector:
        if client is None:
            _, client = self.account(rules)
        config = LeaseConfig(namespace=self.namespace, name=self.lease, identity=f"replica-{uuid.uuid4().hex[:8]}",
                             lease_duration_s=lease_s, renew_deadline_s=DEADLINE_S, retry_period_s=RETRY_S)
        elector = LeaderElector(client, config)
        self.all.append(elector)
        if start:
            elector.start()
        return elector

    def leaders(self) -> list[LeaderElector]:
        return [e for e in self.all if e.is_leader()]

    def _watch(self) -> None:
        while not self._done.is_set():
            leading = [e.config.identity for e in list(self.all) if e.is_leader()]
            if len(leading) > 1:
                self.overlaps.append(leading)
            self.samples += 1
            time.sleep(0.005)

    def close(self) -> None:
        for elector in self.all:
            elector.stop()
        self._done.set()
        self._monitor.join(5)
        for elector in self.all:
            elector.api_client.close()


@pytest.fixture
def electors(service_account_kubeconfig: Any, scratch_namespace: str) -> Iterator[Electors]:
    group = Electors(service_account_kubeconfig, scratch_namespace)
    try:
        yield group
    finally:
        group.close()
    assert not group.overlaps, f"two electors led at the same time: {group.overlaps[:5]}"
    assert group.samples > 0


def lease_spec(kubectl: Kubectl, electors: Electors) -> dict[str, Any]:
    return kubectl.json("get", "lease", electors.lease, "-n", electors.namespace)["spec"]


def micro_time(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")


def the_leader(electors: Electors) -> LeaderElector:
    wait_for(lambda: len(electors.leaders()) == 1, LEASE_S + MARGIN_S, "one elector leads")
    return electors.leaders()[0]


def test_exactly_one_leads_and_the_other_sees_it(kubectl: Kubectl, electors: Electors):
    a, b = electors.make(), electors.make()
    leader = the_leader(electors)
    follower = b if leader is a else a
    wait_for(lambda: follower.holder == leader.config.identity, RETRY_S * 2 + MARGIN_S,
             "the follower observes the leader as holder")
    spec = lease_spec(kubectl, electors)
    assert spec["holderIdentity"] == leader.config.identity
    assert spec["leaseDurationSeconds"] == 3
    assert spec["leaseTransitions"] == 0
    assert spec["acquireTime"].endswith("Z") and "." in spec["renewTime"]  # MicroTime

    # Over more than two lease durations the leader keeps renewing and nothing changes hands
    # (the monitor checks that the follower never leads meanwhile).
    renew_times = {spec["renewTime"]}
    until = time.monotonic() + 2 * LEASE_S
    while time.monotonic() < until:
        assert leader.is_leader() and not follower.is_leader()
        assert follower.holder == leader.config.identity
        renew_times.add(lease_spec(kubectl, electors)["renewTime"])
    spec = lease_spec(kubectl, electors)
    assert spec["holderIdentity"] == leader.config.identity and spec["leaseTransitions"] == 0
    assert len(renew_times) >= 3, "the leader should renew every retry period"


def test_a_killed_leader_is_replaced_after_the_lease_expires(kubectl: Kubectl, electors: Electors):
    a, b = electors.make(), electors.make()
    leader = the_leader(electors)
    follower = b if leader is a else a
    wait_for(lambda: follower.holder == leader.config.identity, RETRY_S * 2 + MARGIN_S, "the follower sees the leader")
    before = lease_spec(kubectl, electors)

    leader.stop(release=False)  # as SIGKILL: the Lease is not released
    killed = time.monotonic()
    last = lease_spec(kubectl, electors)
    assert last["holderIdentity"] == leader.config.identity
    wait_for(follower.is_leader, LEASE_S + 2 * RETRY_S + MARGIN_S, "the follower takes over")
    after = lease_spec(kubectl, electors)
    assert after["holderIdentity"] == follower.config.identity
    # It waited for the lease to expire: it acquired (by the same machine's wall clock) at least
    # a lease duration after the dead leader's last renewal, whatever the load.
    waited = (micro_time(after["acquireTime"]) - micro_time(last["renewTime"])).total_seconds()
    assert waited >= LEASE_S - 0.05, f"took over {waited:.2f}s after the last renewal: before the lease expired"
    assert after["leaseTransitions"] == before["leaseTransitions"] + 1
    assert follower.holder == follower.config.identity
    print(f"killed leader replaced after {time.monotonic() - killed:.2f}s")


def test_a_gracefully_stopped_leader_releases_the_lease(kubectl: Kubectl, electors: Electors):
    # A long lease: a takeover well before it expires can only come from the release.
    long_lease = 15.0
    a, b = electors.make(lease_s=long_lease), electors.make(lease_s=long_lease)
    leader = the_leader(electors)
    follower = b if leader is a else a
    wait_for(lambda: follower.holder == leader.config.identity, RETRY_S * 2 + MARGIN_S, "the follower sees the leader")
    transitions = lease_spec(kubectl, electors)["leaseTransitions"]

    leader.stop()
    assert not leader.is_leader()
    spec = lease_spec(kubectl, electors)
    assert spec.get("holderIdentity") in (None, follower.config.identity), spec
    took = wait_for(follower.is_leader, RETRY_S * 2 + MARGIN_S, "the follower takes over the released lease")
    assert took < long_lease / 2
    spec = lease_spec(kubectl, electors)
    assert spec["holderIdentity"] == follower.config.identity
    assert spec["leaseTransitions"] == transitions + 1
    print(f"released lease taken over after {took:.2f}s")


def test_without_lease_permissions_an_elector_never_leads_and_keeps_running(kubectl: Kubectl, electors: Electors):
    # No Role at all: reading the Lease is forbidden.
    _, client = electors.account(rules=None)
    nobody = electors.make(client, start=False)
    nobody.leases = counted = CountingLeases(nobody.leases)
    # May read but not write: it sees the holder, and its updates are forbidden.
    _, client = electors.account(rules=[{**LEASE_RULES[0], "verbs": ["get"]}])
    reader = electors.make(client, start=False)
    reader.leases = counted_reader = CountingLeases(reader.leases)
    thread, reader_thread = nobody.start(), reader.start()

    wait_for(lambda: counted.calls >= 6, 6 * RETRY_S * 1.2 + MARGIN_S, "the unauthorized elector keeps trying")
    assert set(counted.errors) == {403}
    assert thread.is_alive() and not nobody.is_leader()
    assert kubectl("get", "lease", electors.lease, "-n", electors.namespace, check=False).returncode != 0

    # An unheld Lease (as a released one looks): the reader would take it at once, if it could write.
    kubectl.apply_obj({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": electors.lease, "namespace": electors.namespace},
                       "spec": {"leaseDurationSeconds": 1, "leaseTransitions": 5}})
    wait_for(lambda: 403 in counted_reader.errors and counted_reader.calls >= 6, 6 * RETRY_S * 1.2 + MARGIN_S,
             "the read-only elector tries to update and is refused")
    assert reader_thread.is_alive() and thread.is_alive()
    assert not reader.is_leader() and not nobody.is_leader()
    spec = lease_spec(kubectl, electors)
    assert "holderIdentity" not in spec and spec["leaseTransitions"] == 5


def test_fencing_a_leader_whose_renewals_fail_stops_leading_within_the_renew_deadline(
    kubectl: Kubectl, electors: Electors
):
    name_a, client_a = electors.account()
    a = electors.make(client_a, start=False)
    a.leases = counted = CountingLeases(a.leases)
    thread_a = a.start()
    wait_for(a.is_leader, LEASE_S + MARGIN_S, "the first elector leads")
    b = electors.make()
    wait_for(lambda: b.holder == a.config.identity, RETRY_S * 2 + MARGIN_S, "the second elector sees the first")

    # Revoke the leader's permissions: each renewal now fails with 403 Forbidden.
    kubectl("delete", "rolebinding", name_a, "-n", electors.namespace)
    revoked, calls_before = time.monotonic(), counted.calls
    last_renewal = micro_time(lease_spec(kubectl, electors)["renewTime"])
    # The last successful renewal was before the revocation (give the authorizer's cache a
    # moment), so the fence closes within the renew deadline of it, with no help from the
    # election thread.
    took = wait_for(lambda: not a.is_leader(), DEADLINE_S + 1.5, "the leader stops leading")
    assert thread_a.is_alive()
    # Only then, after the Lease expired by its own observation, does the other take over
    # (the monitor checks they never overlapped).
    wait_for(b.is_leader, LEASE_S + 2 * RETRY_S + MARGIN_S, "the other elector takes over")
    assert not a.is_leader()
    spec = lease_spec(kubectl, electors)
    assert spec["holderIdentity"] == b.config.identity
    assert (micro_time(spec["acquireTime"]) - last_renewal).total_seconds() >= LEASE_S - 0.05
    # Refused, the old leader keeps trying once per retry period (at most a read and an
    # update each), not in a busy loop.
    assert 403 in counted.errors and thread_a.is_alive()
    assert counted.calls - calls_before <= 2 * (time.monotonic() - revoked) / RETRY_S + 4
    print(f"fence closed {took:.2f}s after the revocation; takeover after {time.monotonic() - revoked:.2f}s")
