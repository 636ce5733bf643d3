"""Operator settings, read from ``MESHPLANE_*`` environment variables (the chart sets them).

Called once by :mod:`controller.operator.main`. Every setting has a default that works
on a laptop against a kind cluster; units are in the names. A bad value stops the
operator at start with one line naming the variable.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields

ENV_PREFIX = "MESHPLANE_"


class SettingsError(ValueError):
    """A variable that cannot be read; the message names it."""


def values_from_env(cls: type, env: Mapping[str, str], prefix: str) -> dict[str, object]:
    """The fields of the settings dataclass ``cls`` given as ``<prefix><FIELD>`` variables,
    converted to the field's type, with the two defaults every process computes: a
    unique ``identity`` (the pod's name and a random suffix) and ``kubeconfig`` from
    ``KUBECONFIG``. Shared by the operator's and the VEN's settings."""
    values: dict[str, object] = {}
    for field in fields(cls):
        name = prefix + field.name.upper()
        if name not in env:
            continue
        text = env[name]
        try:
            if field.type in ("float", float):
                values[field.name] = float(text)
            elif field.type in ("int", int):
                values[field.name] = int(text)
            else:
                values[field.name] = text
        except ValueError:
            raise SettingsError(f"{name} must be a {field.type} (got {text!r})") from None
    if not values.get("identity"):
        values["identity"] = f"{env.get('POD_NAME') or socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    if not values.get("kubeconfig") and env.get("KUBECONFIG"):
        values["kubeconfig"] = env["KUBECONFIG"]
    return values


@dataclass(frozen=True)
class Settings:
    # where the Lease lives
    namespace: str = "meshplane-system"
    # Events about cluster-scoped sites: the API server accepts a core/v1 Event whose
    # involvedObject has no namespace only in "default" (then `kubectl describe
    # aifactory` shows it)
    site_events_namespace: str = "default"
    # identity in the Lease (pod name + a random suffix so a restarted pod is new)
    identity: str = ""
    kubeconfig: str = ""  # MESHPLANE_KUBECONFIG, else KUBECONFIG; empty: in-cluster config
    # the solve loop: a burst of changes costs one solve
    debounce_quiet_s: float = 0.2
    debounce_max_s: float = 2.0
    cold_solve_every_s: float = 600.0  # a full solve now and then, whatever the warm path says
    relist_every_s: float = 300.0  # drop objects deleted during a watch gap
    # the solver
    solver_time_limit_s: float = 300.0  # wall-clock safety net; the solver's budget is deterministic work
    solver_workers: int = 2
    # the Lease
    lease_name: str = "meshplane-operator"
    lease_duration_s: float = 15.0
    lease_renew_deadline_s: float = 10.0
    lease_retry_period_s: float = 2.0
    # the API server
    request_timeout_s: float = 10.0
    watch_server_timeout_s: float = 300.0
    watch_client_timeout_s: float = 330.0
    watch_connect_timeout_s: float = 10.0
    watch_inactivity_timeout_s: float = 600.0
    write_concurrency: int = 8
    # Deployments from spec.template (needs create/patch/list/delete on apps deployments)
    materialise: str = "true"
    # delivery to member clusters (MemberCluster objects; see docs/delivery.md)
    hub_name: str = "meshplane"  # the origin label on everything made in a member: unique per hub cluster
    lost_after_s: float = 60.0  # unreachable this long: its sites have no capacity (MemberCluster may override)
    probe_every_s: float = 5.0  # each cluster probed and its Deployments read this often
    probe_timeout_s: float = 3.0  # one probe or read of a member; longer counts as unreachable
    secret_refresh_s: float = 30.0  # a member's kubeconfig Secret is read again this often
    delivery_resync_every_s: float = 300.0  # every cluster listed again: leftovers deleted, hand edits repaired
    # publish each OCM ManagedCluster's headroom as an AddOnPlacementScore (needs the
    # chart's rights for addonplacementscores: delivery.ocm.placementScores)
    ocm_placement_scores: str = "false"
    # the clock the plan is made for (tests and demos: "what happens at 22:00"):
    # empty = the real clock; else an ISO 8601 time the clock starts at, running at
    # clock_rate x real time
    clock_start: str = ""
    clock_rate: float = 1.0
    # serving
    health_port: int = 8081
    # the HTTP API and dashboard (bearer tokens checked by TokenReview and
    # SubjectAccessReview); 0 = off. Its own port: the probes and /metrics on
    # health_port stay unauthenticated and independent of the API's load
    http_port: int = 8080
    log_format: str = "text"  # text or json

    def __post_init__(self) -> None:
        if self.debounce_quiet_s < 0 or self.debounce_max_s < self.debounce_quiet_s:
            raise SettingsError(
                f"{ENV_PREFIX}DEBOUNCE_MAX_S must be >= {ENV_PREFIX}DEBOUNCE_QUIET_S >= 0 "
                f"(got {self.debounce_max_s} and {self.debounce_quiet_s})"
            )
        if not self.lease_retry_period_s < self.lease_renew_deadline_s < self.lease_duration_s:
            raise SettingsError(
                f"the Lease timings must satisfy retry period < renew deadline < duration "
                f"(got {self.lease_retry_period_s} < {self.lease_renew_deadline_s} < {self.lease_duration_s})"
            )
        if self.clock_start:
            try:
                start = dt.datetime.fromisoformat(self.clock_start)
            except ValueError:
                raise SettingsError(
                    f"{ENV_PREFIX}CLOCK_START must be an ISO 8601 time (got {self.clock_start!r})"
                ) from None
            if start.tzinfo is None:
                raise SettingsError(f"{ENV_PREFIX}CLOCK_START needs a UTC offset (got {self.clock_start!r})")
        if self.clock_rate <= 0:
            raise SettingsError(f"{ENV_PREFIX}CLOCK_RATE must be > 0 (got {self.clock_rate})")
        if self.materialise not in ("true", "false"):
            raise SettingsError(f"{ENV_PREFIX}MATERIALISE must be true or false (got {self.materialise!r})")
        if self.ocm_placement_scores not in ("true", "false"):
            raise SettingsError(
                f"{ENV_PREFIX}OCM_PLACEMENT_SCORES must be true or false (got {self.ocm_placement_scores!r})")
        if not 0 <= self.http_port <= 65535 or not 0 < self.health_port <= 65535:
            raise SettingsError(
                f"{ENV_PREFIX}HTTP_PORT must be 0 (off) to 65535 and {ENV_PREFIX}HEALTH_PORT 1 to 65535 "
                f"(got {self.http_port} and {self.health_port})"
            )
        if self.http_port == self.health_port:
            raise SettingsError(f"{ENV_PREFIX}HTTP_PORT and {ENV_PREFIX}HEALTH_PORT must differ (both {self.http_port})")
        if not 0 < self.probe_timeout_s <= self.probe_every_s or self.lost_after_s <= 0:
            raise SettingsError(
                f"{ENV_PREFIX}PROBE_TIMEOUT_S must be > 0 and <= {ENV_PREFIX}PROBE_EVERY_S, and "
                f"{ENV_PREFIX}LOST_AFTER_S > 0 (got {self.probe_timeout_s}, {self.probe_every_s} and {self.lost_after_s})"
            )
        if not self.hub_name or len(self.hub_name) > 63 or not self.hub_name.replace("-", "").replace(".", "").isalnum():
            raise SettingsError(f"{ENV_PREFIX}HUB_NAME must be a label value of 1-63 characters (got {self.hub_name!r})")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"{ENV_PREFIX}LOG_FORMAT must be text or json (got {self.log_format!r})")

    def clock(self) -> Callable[[], dt.datetime]:
        """The wall clock the solve loop plans for (see ``clock_start``)."""
        if not self.clock_start:
            return lambda: dt.datetime.now(dt.UTC)
        start = dt.datetime.fromisoformat(self.clock_start)
        began = time.monotonic()
        rate = self.clock_rate
        return lambda: start + dt.timedelta(seconds=(time.monotonic() - began) * rate)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``MESHPLANE_<FIELD>`` variables (``MESHPLANE_DEBOUNCE_QUIET_S=0.5``)."""
        env = os.environ if environ is None else environ
        return cls(**values_from_env(cls, env, ENV_PREFIX))  # type: ignore[arg-type]
