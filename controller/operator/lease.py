"""Leader election on a ``coordination.k8s.io/v1`` Lease, with fencing.

Both replicas of the operator watch and serve reads; only the holder of the Lease
solves and writes. kopf's peering is not leader election (no fencing), so this module
does it, following the semantics of client-go's ``tools/leaderelection``:

- **Acquire** when the Lease is unheld (no ``holderIdentity``) or expired. Expiry is
  judged by OUR clock: a record expires ``leaseDurationSeconds`` after the moment we
  first observed it unchanged, never by comparing its ``renewTime`` with our wall
  clock, so clock skew between nodes cannot make two replicas lead at once.
- **Renew** every retry period; every write is an update carrying the
  ``resourceVersion`` we read (optimistic concurrency: a 409 Conflict means someone
  else wrote, and we read again next period). ``leaseTransitions`` is incremented when
  the holder changes; ``acquireTime`` and ``renewTime`` are MicroTimes.
- **Fencing**: :meth:`LeaderElector.is_leader` is True only while the last successful
  acquire/renew started less than ``renew_deadline_s`` ago by our clock. It turns
  False by itself when that deadline passes, even if the election thread is stuck in a
  request, so a writer that checks it before each write stops writing at once. Another
  replica can take over only ``lease_duration_s`` after it observed our last write,
  and ``renew_deadline_s < lease_duration_s``, so the two never lead at the same time
  (as long as the clocks of the two machines run at roughly the same rate).
- **Release** on a graceful stop (client-go's ``ReleaseOnCancel``): the holder writes
  the Lease with no ``holderIdentity`` and a lease duration of 1 s, so the other
  replica takes over at its next retry instead of waiting for the lease to expire.

The election loop never raises: API errors (403, 409, 5xx, ...) and network errors
are logged and retried every retry period; leadership is lost when no renewal has
succeeded within the renew deadline.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("meshplane.operator.lease")

# While not leading, wait retry_period * (1 + U(0, JITTER)) between attempts so that
# replicas started together do not hit the API server in lockstep. client-go uses 1.2;
# a smaller factor keeps the takeover after a release close to one retry period.
JITTER = 0.2


@dataclass(frozen=True)
class LeaseConfig:
    """Where the Lease is, who we are, and the election's timings (seconds).

    ``identity`` must be unique per replica and per process start (e.g. pod name plus a
    uuid). Timings follow client-go's rules: ``lease_duration_s > renew_deadline_s >
    retry_period_s > 0`` (client-go's defaults for the kube-controller-manager are
    15 / 10 / 2, and so are ours).
    """

    namespace: str
    name: str = "meshplane-operator"
    identity: str = field(kw_only=True)  # required, keyword-only (it follows fields with defaults)
    lease_duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_period_s: float = 2.0

    def __post_init__(self) -> None:
        if not self.namespace:
            raise ValueError("LeaseConfig.namespace is required")
        if not self.name:
            raise ValueError("LeaseConfig.name is required")
        if not self.identity:
            raise ValueError("LeaseConfig.identity is required (e.g. the pod name plus a uuid)")
        if not self.retry_period_s > 0:
            raise ValueError(f"retry_period_s must be > 0 (got {self.retry_period_s})")
        if not self.renew_deadline_s > self.retry_period_s:
            raise ValueError(
                f"renew_deadline_s ({self.renew_deadline_s}) must be greater than retry_period_s "
                f"({self.retry_period_s})"
            )
        if not self.lease_duration_s > self.renew_deadline_s:
            raise ValueError(
                f"lease_duration_s ({self.lease_duration_s}) must be greater than renew_deadline_s "
                f"({self.renew_deadline_s}): otherwise another replica may lead before we stop"
            )
        if self.lease_duration_s < 1:
            raise ValueError(f"lease_duration_s must be at least 1 s (got {self.lease_duration_s})")


@dataclass(frozen=True)
class _Record:
    """The election fields of a Lease's spec, as last read or written."""

    holder: str | None
    lease_duration_s: int | None
    acquire_time: dt.datetime | None
    renew_time: dt.datetime | None
    transitions: int


def _micro_time(moment: dt.datetime) -> str:
    """A MicroTime as the API server writes it (always 6 fraction digits, UTC, 'Z')."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}".strip()
    return f"{type(exc).__name__}: {exc}"


class LeaderElector:
    """Acquires and renews a Lease; :meth:`is_leader` is the fence for writers.

    ``run(stop)`` is the loop (blocking); ``start()`` runs it in a daemon thread and
    ``stop()`` ends it, releasing the Lease if held. ``on_started_leading`` and
    ``on_stopped_leading`` are called from the election thread on each transition and
    must return quickly; an exception in them is logged and otherwise ignored. Writers
    must not rely on the callbacks for fencing: check :meth:`is_leader` before each write.
    """

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        config: LeaseConfig,
        clock: Callable[[], float] = time.monotonic,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.api_client = api_client
        # The seam to the API server: the typed CoordinationV1Api (unit tests swap in a fake).
        self.leases: Any = kubernetes.client.CoordinationV1Api(api_client)
        self._clock = clock
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._lock = threading.Lock()
        # Last record read or written, the resourceVersion it came with, and when (by our
        # clock) we first saw it as it is: the basis of the expiry check.
        self._observed: _Record | None = None
        self._observed_meta: dict[str, Any] | None = None
        self._observed_at: float | None = None
        # Our clock when the last successful acquire/renew started (None: not leading).
        self._renewed_at: float | None = None
        self._leading = False  # what the callbacks were last told
        self._last_error: str | None = None
        self._release_on_stop = True
        self._running_stop: threading.Event | None = None  # the stop event of the current run()
        self._thread: threading.Thread | None = None
        self._stop_event: threading.Event | None = None

    # ------------------------------------------------------------------ public

    def is_leader(self) -> bool:
        """True only while our last successful acquire/renew is younger than the renew deadline."""
        with self._lock:
            renewed_at = self._renewed_at
        return renewed_at is not None and self._clock() - renewed_at < self.config.renew_deadline_s

    @property
    def holder(self) -> str | None:
        """The holderIdentity last observed (None: unheld or never read)."""
        with self._lock:
            return self._observed.holder if self._observed else None

    def run(self, stop: threading.Event) -> None:
        """The acquire/renew loop; returns when ``stop`` is set (releasing the Lease if held)."""
        cfg = self.config
        log.info("leader election for lease %s/%s as %s (lease %.1fs, renew deadline %.1fs, retry %.1fs)",
                 cfg.namespace, cfg.name, cfg.identity, cfg.lease_duration_s, cfg.renew_deadline_s,
                 cfg.retry_period_s)
        with self._lock:
            self._running_stop = stop
        try:
            while not stop.is_set():
                try:
                    self.step()
                except Exception:  # never let the election thread die
                    log.exception("leader election step for lease %s/%s failed", cfg.namespace, cfg.name)
                stop.wait(self._next_wait())
        finally:
            if self._release_on_stop:
                self.release()
            with self._lock:
                self._renewed_at = None
            self._report_transition()

    def start(self) -> threading.Thread:
        """Run :meth:`run` in a daemon thread with its own stop event."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("this LeaderElector is already running")
        self._release_on_stop = True
        self._stop_event = threading.Event()
        self._thread = threading.Thread(
            target=self.run, args=(self._stop_event,), daemon=True,
            name=f"lease-{self.config.name}",
        )
        self._thread.start()
        return self._thread

    def stop(self, timeout_s: float = 5.0, *, release: bool = True) -> None:
        """Stop the thread started by :meth:`start` and wait for it (at most ``timeout_s``).

        With ``release`` (the default) the Lease is released if held, so the other replica
        takes over at once. ``release=False`` stops like a killed process: the Lease is
        left to expire (tests use it to simulate SIGKILL).
        """
        self._release_on_stop = release
        if self._stop_event is not None:
            with self._lock:
                # Fence at once: a request still in flight cannot make us leader again.
                self._stop_event.set()
                self._renewed_at = None
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("the leader election thread of lease %s/%s did not stop within %.1fs",
                            self.config.namespace, self.config.name, timeout_s)

    # ------------------------------------------------------------------ one attempt

    def step(self) -> bool:
        """One acquire/renew attempt, then the transition callbacks. True if it succeeded.

        :meth:`run` calls this every retry period; unit tests call it directly with a
        fake clock.
        """
        ok = self._try_acquire_or_renew()
        self._report_transition()
        return ok

    def _try_acquire_or_renew(self) -> bool:
        cfg = self.config
        started = self._clock()
        now = dt.datetime.now(dt.UTC)
        timeout = self._request_timeout()

        # 1. Read the Lease; create it if it does not exist.
        try:
            lease = self.leases.read_namespaced_lease(cfg.name, cfg.namespace, _request_timeout=timeout)
        except ApiException as exc:
            if exc.status != 404:
                self._failed("reading", exc)
                return False
            return self._create(now, started, timeout)
        except Exception as exc:  # network errors, timeouts
            self._failed("reading", exc)
            return False

        old = self._record_of(lease)
        meta = self._metadata_of(lease)
        with self._lock:
            if old != self._observed:
                self._note_holder(old.holder)
                self._observed = old
                self._observed_at = self._clock()
            self._observed_meta = meta  # the newest resourceVersion, even if the record is the same
            observed_at = self._observed_at
            if old.holder != cfg.identity:
                self._renewed_at = None  # someone else holds (or nobody does): we are not leading

        # 2. Held by another and not expired by our own observation: wait.
        duration = old.lease_duration_s if old.lease_duration_s and old.lease_duration_s > 0 else cfg.lease_duration_s
        assert observed_at is not None  # nosec B101 # narrows the type for mypy: set above on every path
        if old.holder and old.holder != cfg.identity and self._clock() < observed_at + duration:
            self._last_error = None
            return False

        # 3. Acquire or renew: an update with the resourceVersion we read.
        ours = old.holder == cfg.identity
        new = _Record(
            holder=cfg.identity,
            lease_duration_s=self._duration_field(),
            acquire_time=old.acquire_time if ours and old.acquire_time else now,
            renew_time=now,
            transitions=old.transitions if ours else old.transitions + 1,
        )
        body = self._body(new, meta)
        try:
            written = self.leases.replace_namespaced_lease(cfg.name, cfg.namespace, body, _request_timeout=timeout)
        except ApiException as exc:
            if exc.status == 409:
                log.debug("lease %s/%s changed under us (409 Conflict): reading it again", cfg.namespace, cfg.name)
                self._last_error = None
                return False
            self._failed("updating", exc)
            return False
        except Exception as exc:
            self._failed("updating", exc)
            return False
        self._succeeded(written, new, started)
        return True

    def _create(self, now: dt.datetime, started: float, timeout: float) -> bool:
        cfg = self.config
        new = _Record(holder=cfg.identity, lease_duration_s=self._duration_field(), acquire_time=now,
                      renew_time=now, transitions=0)
        body = self._body(new, {"name": cfg.name, "namespace": cfg.namespace})
        try:
            written = self.leases.create_namespaced_lease(cfg.namespace, body, _request_timeout=timeout)
        except ApiException as exc:
            if exc.status == 409:  # AlreadyExists: another replica created it first
                log.debug("lease %s/%s was created by someone else: reading it next", cfg.namespace, cfg.name)
                self._last_error = None
                return False
            self._failed("creating", exc)
            return False
        except Exception as exc:
            self._failed("creating", exc)
            return False
        self._succeeded(written, new, started)
        return True

    def _succeeded(self, written: Any, new: _Record, started: float) -> None:
        meta = self._metadata_of(written)
        record = self._record_of(written) if getattr(written, "spec", None) is not None else new
        with self._lock:
            self._note_holder(record.holder)
            self._observed = record
            self._observed_at = self._clock()
            self._observed_meta = meta
            if not self._stopped():  # stop() fences even a renewal that was in flight
                self._renewed_at = started
        if self._last_error is not None:
            log.info("lease %s/%s: the API server answers again", self.config.namespace, self.config.name)
        self._last_error = None

    def _failed(self, action: str, exc: BaseException) -> None:
        """Log an API or network error: a warning when it is new, then at debug level."""
        cfg = self.config
        what = _describe(exc)
        level = logging.DEBUG if what == self._last_error else logging.WARNING
        log.log(level, "%s lease %s/%s failed: %s", action, cfg.namespace, cfg.name, what)
        self._last_error = what

    # ------------------------------------------------------------------ release

    def release(self) -> bool:
        """Give the Lease up if we hold it: no holder, lease duration 1 s (client-go's ReleaseOnCancel).

        The update carries the resourceVersion of our last write, so it fails harmlessly
        (409) if someone else took the Lease in between. True if released or not ours.
        """
        cfg = self.config
        with self._lock:
            observed, meta = self._observed, self._observed_meta
            self._renewed_at = None  # stop writing before the release is even sent
        if observed is None or observed.holder != cfg.identity or not meta:
            return True
        now = dt.datetime.now(dt.UTC)
        record = _Record(holder=None, lease_duration_s=1, acquire_time=now, renew_time=now,
                         transitions=observed.transitions)
        try:
            written = self.leases.replace_namespaced_lease(
                cfg.name, cfg.namespace, self._body(record, meta), _request_timeout=self._request_timeout())
        except Exception as exc:
            log.warning("releasing lease %s/%s failed: %s", cfg.namespace, cfg.name, _describe(exc))
            return False
        meta_after = self._metadata_of(written)
        with self._lock:
            self._note_holder(None)
            self._observed = record
            self._observed_at = self._clock()
            self._observed_meta = meta_after
        log.info("released lease %s/%s", cfg.namespace, cfg.name)
        return True

    # ------------------------------------------------------------------ helpers

    def _report_transition(self) -> None:
        leading = self.is_leader()
        if leading == self._leading:
            return
        self._leading = leading
        cfg = self.config
        if leading:
            log.info("acquired lease %s/%s as %s", cfg.namespace, cfg.name, cfg.identity)
            callback = self._on_started
        else:
            if self._stopped():
                log.info("stopped leading lease %s/%s", cfg.namespace, cfg.name)
            else:
                log.warning("lost lease %s/%s: not renewed within the %.1fs renew deadline (holder now %s)",
                            cfg.namespace, cfg.name, cfg.renew_deadline_s, self.holder or "(none)")
            callback = self._on_stopped
        if callback is not None:
            try:
                callback()
            except Exception:
                log.exception("leader election callback failed")

    def _stopped(self) -> bool:
        return self._running_stop is not None and self._running_stop.is_set()

    def _note_holder(self, holder: str | None) -> None:
        """Log a change of holder (called with the lock held)."""
        previous = self._observed.holder if self._observed else None
        if self._observed is None or holder != previous:
            log.info("lease %s/%s: holder %s -> %s", self.config.namespace, self.config.name,
                     previous or "(none)", holder or "(none)")

    def _next_wait(self) -> float:
        retry = self.config.retry_period_s
        with self._lock:
            renewed_at = self._renewed_at
        until_deadline = -1.0 if renewed_at is None else renewed_at + self.config.renew_deadline_s - self._clock()
        if until_deadline <= 0:  # not leading
            return retry * (1 + random.uniform(0, JITTER))  # nosec B311 # retry jitter, not a secret
        # Leading: renew every retry period, but wake at the deadline to report a loss at once.
        return min(retry, until_deadline + 0.001)

    def _request_timeout(self) -> float:
        """Every API call is bounded: one retry period, but at least 1 s (a loaded API
        server answers a Lease update well within that) and at most the renew deadline."""
        return min(self.config.renew_deadline_s, max(1.0, self.config.retry_period_s))

    def _metadata_of(self, lease: Any) -> dict[str, Any]:
        """The Lease's metadata as a dict to send back on update (with its resourceVersion,
        labels, annotations and owners; without managedFields, which the server keeps)."""
        meta = self.api_client.sanitize_for_serialization(getattr(lease, "metadata", None)) or {}
        meta.pop("managedFields", None)
        return dict(meta)

    def _duration_field(self) -> int:
        return max(1, round(self.config.lease_duration_s))

    @staticmethod
    def _record_of(lease: Any) -> _Record:
        spec = lease.spec
        if spec is None:
            return _Record(None, None, None, None, 0)
        return _Record(
            holder=spec.holder_identity or None,
            lease_duration_s=spec.lease_duration_seconds,
            acquire_time=spec.acquire_time,
            renew_time=spec.renew_time,
            transitions=spec.lease_transitions or 0,
        )

    @staticmethod
    def _body(record: _Record, meta: dict[str, Any]) -> dict[str, Any]:
        """A Lease as a plain dict (MicroTimes pre-formatted: the client's isoformat drops
        a zero fraction, which the API server's MicroTime parser refuses)."""
        spec: dict[str, Any] = {
            "leaseDurationSeconds": record.lease_duration_s,
            "leaseTransitions": record.transitions,
        }
        if record.holder:
            spec["holderIdentity"] = record.holder
        if record.acquire_time is not None:
            spec["acquireTime"] = _micro_time(record.acquire_time)
        if record.renew_time is not None:
            spec["renewTime"] = _micro_time(record.renew_time)
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}
