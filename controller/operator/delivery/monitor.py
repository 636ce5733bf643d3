"""Monitors: each cluster meshplane delivers to, probed and read every ``probe_every_s``.

One :class:`ClusterMonitor` per target, each in its own thread so that a member that
hangs (a frozen process, a black-holed network) delays no other. Started and stopped
by :class:`controller.operator.delivery.layer.DeliveryLayer`. Each round:

1. (members) read the kubeconfig from the MemberCluster's Secret, in the operator's
   namespace, when first needed and every ``secret_refresh_s``; check it
   (:mod:`controller.operator.delivery.kubeconfig`); a missing Secret or key, or a
   refused kubeconfig, is a failed round with that reason;
2. probe ``GET /readyz`` with ``probe_timeout_s``;
3. list our Deployments there (one request, across namespaces) and, when some are not
   ready, our pods, to tell why in the cluster's own words (an image that cannot be
   pulled, a pod no node can take); Deployment conditions say the rest
   (``ProgressDeadlineExceeded``, ``ReplicaFailure`` for quota).

Health (:class:`controller.core.delivery.ClusterHealth`): ``Unknown`` until the first
round ends; ``Reachable`` after a round that answered; ``Unreachable`` from the first
failed round (the first error of the outage is kept as its message); ``Lost`` once
unreachable for ``lost_after_s``. Only the sites of a ``Lost`` cluster lose their
capacity, and nothing in a cluster is deleted while it does not answer: a partitioned
member may still run its pods. ``on_change(name, lost_changed)`` tells the layer when what
it reports changed (``lost_changed``: a re-plan is due, else statuses only).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from controller.api.models import SecretKeyRef
from controller.core.delivery import (
    UNKNOWN_HEALTH,
    ClusterHealth,
    DeploymentObservation,
    HealthState,
    origin_selector,
)
from controller.core.materialise import MANAGED_BY, MANAGED_BY_LABEL, MANAGED_SELECTOR, WORKLOAD_LABEL
from controller.operator.delivery.kubeconfig import REASON_INVALID, KubeconfigError, api_client, get_json

log = logging.getLogger("meshplane.operator.delivery")

# waiting reasons of a container that will not fix themselves soon
_STUCK = frozenset({
    "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "CrashLoopBackOff", "CreateContainerConfigError",
    "CreateContainerError", "RunContainerError",
})
_PROBLEM_LIMIT = 512


class RoundFailed(Exception):
    """One round could not talk to the cluster; ``reason`` is a condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def short_error(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}".strip()
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # urllib3 wraps the cause in long reprs: keep the end, which says what happened
    return text[-300:]


def observe_deployment(item: dict[str, Any], pod_problems: dict[tuple[str, str], str]) -> DeploymentObservation:
    """A Deployment as listed, with the problem its pods or its conditions report."""
    metadata = item.get("metadata") or {}
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    replicas = int(spec.get("replicas", 1) or 0)
    problem = ""
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("status") == "False" or condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            problem = f"{condition.get('reason')}: {condition.get('message', '')}"
    labels = metadata.get("labels") or {}
    problem = problem or pod_problems.get((metadata.get("namespace") or "", labels.get(WORKLOAD_LABEL, "")), "")
    ready = int(status.get("readyReplicas") or 0)
    if ready >= replicas:
        problem = ""  # whatever a pod said, every replica is ready now
    return DeploymentObservation(
        replicas=replicas,
        ready_replicas=ready,
        available_replicas=int(status.get("availableReplicas") or 0),
        current=int(status.get("observedGeneration") or 0) >= int(metadata.get("generation") or 0),
        problem=problem[:_PROBLEM_LIMIT],
    )


def pod_problems(pods: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(namespace, workload label) -> the first stuck pod's reason, in the cluster's words."""
    found: dict[tuple[str, str], str] = {}
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name", "")):
        metadata = pod.get("metadata") or {}
        key = (metadata.get("namespace") or "", (metadata.get("labels") or {}).get(WORKLOAD_LABEL, ""))
        if key in found:
            continue
        status = pod.get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                found[key] = f"pod {metadata.get('name')} {condition.get('reason', 'unscheduled')}: " \
                             f"{condition.get('message', '')}"
        for container in status.get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in _STUCK and key not in found:
                found[key] = f"pod {metadata.get('name')} {waiting['reason']}: {waiting.get('message', '')}"
    return found


class ClusterMonitor:
    """See the module docstring. ``secret_ref`` None with ``member`` True: the
    MemberCluster does not exist (every round fails with ``NotFound``)."""

    def __init__(
        self,
        name: str,
        *,
        member: bool,
        hub: str,
        lost_after_s: float,
        probe_every_s: float,
        probe_timeout_s: float,
        on_change: Callable[[str, bool], None],
        secret_ref: SecretKeyRef | None = None,
        read_secret: Callable[[str], dict[str, str]] | None = None,
        local_client: kubernetes.client.ApiClient | None = None,
        secret_refresh_s: float = 30.0,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.member = member
        self.hub = hub
        self.lost_after_s = lost_after_s
        self.probe_every_s = probe_every_s
        self.probe_timeout_s = probe_timeout_s
        self.secret_ref = secret_ref
        self.secret_refresh_s = secret_refresh_s
        self._read_secret = read_secret
        self._on_change = on_change
        self._now = now
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._client: kubernetes.client.ApiClient | None = local_client
        self._kubeconfig: str | None = None
        self._secret_read_at: float | None = None
        self._unreachable_since: float | None = None  # monotonic, for lostAfter
        self.health: ClusterHealth = UNKNOWN_HEALTH if member else ClusterHealth("Reachable", "Reachable")
        self.deployments: dict[tuple[str, str], DeploymentObservation] = {}
        self.read = False  # listed at least once since it last became reachable
        self.generation = 0  # bumped when a new client is made (the layer resets its applier)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"monitor-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def poke(self) -> None:
        """Run a round now (a changed MemberCluster or Secret)."""
        self._secret_read_at = None
        self._wake.set()

    def configure(self, secret_ref: SecretKeyRef | None, lost_after_s: float) -> None:
        with self._lock:
            changed = secret_ref != self.secret_ref
            self.secret_ref = secret_ref
            self.lost_after_s = lost_after_s
        if changed:
            self.poke()

    def client(self) -> kubernetes.client.ApiClient | None:
        with self._lock:
            return self._client

    def _run(self) -> None:
        while not self._stop.is_set():
            started = self._monotonic()
            try:
                self.round()
            except Exception:  # never let one odd answer end the monitor
                log.exception("monitor of %s: round failed", self.name)
            self._wake.wait(max(0.0, self.probe_every_s - (self._monotonic() - started)))
            self._wake.clear()

    # ----------------------------------------------------------------- one round

    def round(self) -> None:
        """Probe and read once, then update the health (also called by tests)."""
        try:
            client = self._connect()
            observations = self._read(client)
        except RoundFailed as failed:
            self._failed(failed.reason, failed.message)
            return
        self._answered(observations)

    def _connect(self) -> kubernetes.client.ApiClient:
        if not self.member:
            if self._client is None:
                raise RoundFailed("Unreachable", "no client for the operator's own cluster")
            return self._client
        if self.secret_ref is None:
            raise RoundFailed("NotFound", f"no MemberCluster named {self.name}")
        due = self._secret_read_at is None or self._monotonic() - self._secret_read_at >= self.secret_refresh_s
        if due and self._read_secret is not None:
            ref = self.secret_ref
            try:
                data = self._read_secret(ref.name)
            except ApiException as exc:
                if exc.status == 404:
                    raise RoundFailed("SecretNotFound", f"Secret {ref.name} not found in the operator's namespace") \
                        from None
                raise RoundFailed("SecretNotFound", f"reading Secret {ref.name}: {short_error(exc)}") from None
            except Exception as exc:
                raise RoundFailed("SecretNotFound", f"reading Secret {ref.name}: {short_error(exc)}") from None
            self._secret_read_at = self._monotonic()
            encoded = data.get(ref.key)
            if encoded is None:
                raise RoundFailed("SecretNotFound", f"Secret {ref.name} has no key {ref.key}")
            try:
                text = base64.b64decode(encoded).decode()
            except ValueError:
                raise RoundFailed(REASON_INVALID, f"Secret {ref.name} key {ref.key} is not base64 text") from None
            if text != self._kubeconfig:
                try:
                    client, _ = api_client(text)
                except KubeconfigError as exc:
                    with self._lock:
                        self._client, self._kubeconfig = None, None
                    raise RoundFailed(REASON_INVALID, f"Secret {ref.name} key {ref.key}: {exc}") from None
                with self._lock:
                    self._client, self._kubeconfig = client, text
                    self.generation += 1
        with self._lock:
            usable = self._client
        if usable is None:
            raise RoundFailed(REASON_INVALID, "no usable kubeconfig")
        return usable

    def _read(self, client: kubernetes.client.ApiClient) -> dict[tuple[str, str], DeploymentObservation]:
        timeout = self.probe_timeout_s
        try:
            get_json(client, "/readyz", None, timeout)
            selector = origin_selector(self.hub) if self.member else MANAGED_SELECTOR
            listed = get_json(client, "/apis/apps/v1/deployments", {"labelSelector": selector}, timeout)
            items = listed.get("items") or []
            problems: dict[tuple[str, str], str] = {}
            if any(int((i.get("status") or {}).get("readyReplicas") or 0) < int((i.get("spec") or {}).get("replicas", 1))
                   for i in items):
                problems = self._pod_problems(client)
        except Exception as exc:
            raise RoundFailed("Unreachable", short_error(exc)) from None
        return {
            ((i.get("metadata") or {}).get("namespace") or "", (i.get("metadata") or {}).get("name") or ""):
                observe_deployment(i, problems)
            for i in items
        }

    def _pod_problems(self, client: kubernetes.client.ApiClient) -> dict[tuple[str, str], str]:
        """Why pods are stuck; nothing when pods may not be listed (the reasons are a
        help, not a condition of delivery)."""
        try:
            pods = get_json(client, "/api/v1/pods", {"labelSelector": f"{MANAGED_BY_LABEL}={MANAGED_BY}"},
                            self.probe_timeout_s)
        except ApiException as exc:
            if exc.status in (401, 403):
                return {}
            raise
        return pod_problems(pods.get("items") or [])

    def _answered(self, observations: dict[tuple[str, str], DeploymentObservation]) -> None:
        now = self._now()
        with self._lock:
            before = self.health
            was_read = self.read
            since = before.since if before.state == "Reachable" and before.since else now
            self.health = ClusterHealth("Reachable", "Reachable", "", since, now)
            self._unreachable_since = None
            changed = observations != self.deployments or not was_read
            self.deployments = observations
            self.read = True
        if before.state != "Reachable":
            log.info("member cluster %s is reachable%s", self.name,
                     "" if before.state == "Unknown" else f" again (was {before.state}: {before.message})")
        if before.state != "Reachable" or changed:
            self._on_change(self.name, before.state == "Lost")

    def _failed(self, reason: str, message: str) -> None:
        now = self._now()
        mono = self._monotonic()
        with self._lock:
            before = self.health
            if self._unreachable_since is None:
                self._unreachable_since = mono
            lost = mono - self._unreachable_since >= self.lost_after_s
            state: HealthState = "Lost" if lost else "Unreachable"
            outage = before.state in ("Unreachable", "Lost")
            keep = outage and before.reason == reason
            self.health = ClusterHealth(
                state, reason, before.message if keep else message,
                before.since if outage and before.since else now,
                before.last_seen if before.state != "Unknown" else None,
            )
            self.read = False
        if (before.state, before.reason) != (state, reason):
            log.warning("member cluster %s: %s (%s): %s", self.name, state, reason, message)
            self._on_change(self.name, (before.state == "Lost") != (state == "Lost"))

    def snapshot(self) -> tuple[ClusterHealth, dict[tuple[str, str], DeploymentObservation], bool]:
        with self._lock:
            return self.health, dict(self.deployments), self.read


__all__ = ["ClusterMonitor", "RoundFailed", "observe_deployment", "pod_problems", "short_error"]
