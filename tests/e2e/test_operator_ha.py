"""Two ``meshplane-operator`` replicas against the real API server, sharing one Lease
(the helpers' timings: 4 s duration, 3 s renew deadline, 0.5 s retry):

- exactly one holds the Lease; only it writes, the other watches and plans, reports
  ready and never writes (its log has no "solved" line, only "standby: planned"), and
  its HTTP API answers reads with the same phases as the leader's;
- statuses follow a spec change;
- SIGKILLed, the leader's Lease expires and the other replica takes over: a spec
  change made after the kill is in the statuses within the Lease duration, one solve
  and a margin.

The test owns what it creates (a namespace, a workload, an isolated site) and waits
until they are gone before it ends; what it reads from a log or an API it waits for
(with a deadline), since a solve's log line follows its writes.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.e2e_support import Kubectl, delete_and_wait, owned_namespace, unique_name
from tests.e2e.operator_support import (
    GROUP,
    OperatorProcess,
    current_status,
    isolated_factory,
    own_workload,
    settled,
    solves,
    wait_for,
)

LEASE = "meshplane-operator"
LEASE_DURATION_S = 4.0  # MESHPLANE_LEASE_DURATION_S in OperatorProcess
TAKEOVER_S = 30.0  # the Lease duration, one solve, and a generous margin for a busy machine
STARTED = re.compile(r"meshplane operator (\S+) started")


def _identity(process: OperatorProcess) -> str | None:
    found = STARTED.search(process.log_path.read_text(errors="replace"))
    return found.group(1) if found else None


def _holder(kubectl: Kubectl, namespace: str) -> str | None:
    lease = kubectl.json("get", "lease", LEASE, "-n", namespace)
    return lease["spec"].get("holderIdentity")


def _api_phases(process: OperatorProcess, token: str) -> dict[str, str] | None:
    """``namespace/name -> phase`` from a replica's HTTP API, or None until it has a plan."""
    request = urllib.request.Request(f"http://127.0.0.1:{process.api_port}/api/v1/workloads",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            items = json.loads(response.read())["items"]
    except urllib.error.HTTPError as error:
        if error.code == 503:  # no plan yet
            return None
        raise
    return {f"{i['namespace']}/{i['name']}": i["phase"] for i in items}


def _acquired(process: OperatorProcess) -> int:
    return process.log_path.read_text(errors="replace").count("acquired lease")


@pytest.fixture
def own_namespace(kubectl: Kubectl) -> Iterator[str]:
    """A namespace for this test, gone (with all it holds) when the test ends."""
    with owned_namespace(kubectl, "e2e-ha") as name:
        yield name


def test_two_replicas_one_leader_writes_and_the_other_takes_over(
    kubectl: Kubectl, operator_env: tuple[Path, str, Path], own_namespace: str
) -> None:
    kubeconfig, namespace, logs = operator_env
    suffix = unique_name("ha").split("-")[1]
    model, site, name = f"e2e-npu-{suffix}", f"e2e-ha-{suffix}", "ha-training"

    def devices_placed(devices: int) -> Any:
        def check() -> dict[str, Any] | None:
            status = current_status(kubectl, f"meshworkload/{name}", own_namespace)
            placed = status.get("phase") == "Placed" and [a["devices"] for a in status["assignments"]] == [devices]
            return status if placed else None
        return check

    def resize(devices: int) -> None:
        kubectl("patch", f"meshworkload/{name}", "-n", own_namespace, "--type=merge",
                "-p", json.dumps({"spec": {"accelerators": devices}}))

    replicas: list[OperatorProcess] = []
    try:
        kubectl.apply_obj(isolated_factory(site, model, count=1000))
        kubectl.apply_obj(own_workload(own_namespace, name, model, 100))
        replicas = [OperatorProcess(kubeconfig, namespace, logs / f"{unique_name(f'ha-{i}')}.log") for i in "ab"]
        for replica in replicas:
            wait_for(f"replica {replica.log_path.name} to be ready", replica.ready, timeout_s=60)
        wait_for("every example workload to be solved", lambda: settled(kubectl))
        wait_for("our workload placed", devices_placed(100), timeout_s=30)
        identities = {_identity(r): r for r in replicas}
        assert None not in identities and len(identities) == 2, identities
        holder = _holder(kubectl, namespace)
        assert holder in identities, f"the Lease is held by {holder}, none of {sorted(identities)}"
        leader = identities[holder]
        follower = next(r for r in replicas if r is not leader)

        time.sleep(2 * LEASE_DURATION_S)  # a few renewals: no flapping
        assert _holder(kubectl, namespace) == holder
        assert (_acquired(leader), _acquired(follower)) == (1, 0), (leader.tail(), follower.tail())
        assert solves(leader.log_path), leader.tail()
        assert solves(follower.log_path) == [], f"the follower solved:\n{follower.tail()}"
        assert follower.ready() and leader.ready()
        # both replicas answer reads alike (a Service sends a reader to either)
        # the operator's own ServiceAccount (operator_env) may list meshworkloads
        token = kubectl("create", "token", "meshplane-operator", "-n", namespace).stdout.strip()

        def alike() -> list[dict[str, str]] | None:
            # each replica re-plans on every change it sees (say, a namespace another
            # test deleted), each at its own moment: compare once both have the same plan
            phases = [_api_phases(r, token) for r in (leader, follower)]
            return phases if phases[0] is not None and phases[0] == phases[1] else None

        phases = wait_for("both replicas' APIs to answer alike", alike)
        assert phases[0][f"{own_namespace}/{name}"] == "Placed", phases

        before = len(solves(leader.log_path))
        resize(200)
        wait_for("the statuses to follow a spec change", devices_placed(200), timeout_s=30)
        # the solve's log line follows its writes: wait for it
        ran = wait_for("the leader's log line of the solve that wrote the change",
                       lambda: [s for s in solves(leader.log_path)[before:] if int(s["patches"]) >= 1])
        assert all(int(s["workloads"]) >= 1 for s in ran), ran
        assert solves(follower.log_path) == [], f"the follower solved:\n{follower.tail()}"

        leader.kill()
        killed = time.monotonic()
        resize(300)
        wait_for("the other replica to take over and place the change", devices_placed(300), timeout_s=TAKEOVER_S)
        took = time.monotonic() - killed
        assert took < TAKEOVER_S
        assert _holder(kubectl, namespace) == _identity(follower)
        assert _acquired(follower) == 1, follower.tail()
        # the statuses are written before the solve's log line: wait for the line
        wait_for("the new leader's \"solved\" log line", lambda: solves(follower.log_path), timeout_s=TAKEOVER_S)
        assert follower.process.poll() is None and follower.ready()
        print(f"takeover: the change made after the SIGKILL was in the status {took:.1f} s later")
    finally:
        # gone before the test ends (the namespace too, by the fixture), while a
        # replica still runs: the next test's operator never sees them
        try:
            delete_and_wait(kubectl, f"meshworkload.{GROUP}/{name}", own_namespace)
            delete_and_wait(kubectl, f"aifactory.{GROUP}/{site}")
        finally:
            for replica in replicas:
                replica.stop()
