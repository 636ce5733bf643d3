"""``meshplane-ven`` settings, read from ``MESHPLANE_VEN_*`` environment variables (the chart sets them).

Called once by :mod:`controller.ven.main`. A bad value stops the VEN at start with one
line naming the variable. The client secret is read like every other setting, from the
environment; the chart fills ``MESHPLANE_VEN_CLIENT_ID`` and
``MESHPLANE_VEN_CLIENT_SECRET`` from a Secret (``secretKeyRef``), so it is never in the
Deployment's spec. docs/ven.md lists them all.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from controller.api.models.grid import parse_duration
from controller.core.openadr import DEFAULT_LEVELS, VenConfig, valid_vtn_name
from controller.operator.settings import SettingsError, values_from_env

ENV_PREFIX = "MESHPLANE_VEN_"


def _env(name: str) -> str:
    return ENV_PREFIX + name.upper()


@dataclass(frozen=True)
class VenSettings:
    # the VTN
    vtn_url: str = ""  # base URL of the VTN's OpenADR 3 API, e.g. https://vtn.example/openadr3/3.1.0
    vtn_name: str = "vtn"  # names and labels the GridEvents (a DNS label of at most 40 characters)
    token_url: str = ""  # OAuth2 token endpoint; empty: asked of the VTN (GET /auth/server, OpenADR 3.1)
    client_id: str = ""
    client_secret: str = ""
    scope: str = ""  # OAuth2 scope to ask for (empty: none)
    ca_file: str = ""  # CA bundle the VTN's and token endpoint's certificates are checked with (empty: system)
    client_name: str = "meshplane"  # clientName of the reports
    # polling
    poll_interval_s: float = 60.0
    stale_after_s: float = 0.0  # unreachable this long: GridEvents marked stale; 0: 3 poll intervals
    request_timeout_s: float = 10.0
    # what is mirrored
    programs: str = ""  # programName,programName (empty: every program)
    factories: str = ""  # factory=target,factory (no "=": its own name); empty: every AIFactory by its name
    levels: str = "0=0,1=0.25,2=0.5,3=1"  # SIMPLE level = share of flexible power withdrawn
    lead_time: str = "PT15M"  # leadTime of the GridEvents written
    restore_duration: str = ""  # their restore ramp (ISO 8601); empty: none
    restore_steps: int = 4
    open_ended_step_s: float = 86_400.0  # an until-further-notice interval is held this far ahead at a time
    reports: str = "true"  # POST DEMAND/BASELINE reports at each interval end
    # Kubernetes
    namespace: str = "meshplane-system"  # where the Lease lives
    lease_name: str = "meshplane-ven"
    lease_duration_s: float = 15.0
    lease_renew_deadline_s: float = 10.0
    lease_retry_period_s: float = 2.0
    identity: str = ""  # in the Lease; default: POD_NAME (or the host name) + a random suffix
    kubeconfig: str = ""  # MESHPLANE_VEN_KUBECONFIG, else KUBECONFIG; empty: in-cluster config
    events_namespace: str = "default"  # Kubernetes Events about GridEvents (cluster-scoped) go here
    # serving
    health_port: int = 8081  # /healthz, /readyz, /metrics
    log_format: str = "text"  # text or json

    def __post_init__(self) -> None:
        if not self.vtn_url:
            raise SettingsError(f"{_env('vtn_url')} is required (the VTN's base URL)")
        for name in ("vtn_url", "token_url"):
            url = getattr(self, name)
            if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
                raise SettingsError(f"{_env(name)} must be an http(s) URL (got {url!r})")
        if not self.client_id or not self.client_secret:
            raise SettingsError(f"{_env('client_id')} and {_env('client_secret')} are required (OAuth2 client "
                                "credentials of this VEN at the VTN)")
        if not valid_vtn_name(self.vtn_name):
            raise SettingsError(f"{_env('vtn_name')} must be a DNS label of 1-40 characters (got {self.vtn_name!r})")
        if not 1 <= len(self.client_name) <= 128:
            raise SettingsError(f"{_env('client_name')} must have 1-128 characters")
        if self.poll_interval_s <= 0 or self.stale_after_s < 0 or self.request_timeout_s <= 0:
            raise SettingsError(
                f"{_env('poll_interval_s')} and {_env('request_timeout_s')} must be > 0 and {_env('stale_after_s')} "
                f">= 0 (got {self.poll_interval_s}, {self.request_timeout_s} and {self.stale_after_s})")
        if self.open_ended_step_s <= 0:
            raise SettingsError(f"{_env('open_ended_step_s')} must be > 0 (got {self.open_ended_step_s})")
        for name in ("lead_time", "restore_duration"):
            text = getattr(self, name)
            if text or name == "lead_time":
                try:
                    parse_duration(text)
                except ValueError:
                    raise SettingsError(f"{_env(name)} must be an ISO 8601 duration such as PT15M "
                                        f"(got {text!r})") from None
        if not 1 <= self.restore_steps <= 96:
            raise SettingsError(f"{_env('restore_steps')} must be 1-96 (got {self.restore_steps})")
        if self.reports not in ("true", "false"):
            raise SettingsError(f"{_env('reports')} must be true or false (got {self.reports!r})")
        if not self.lease_retry_period_s < self.lease_renew_deadline_s < self.lease_duration_s:
            raise SettingsError(
                f"the Lease timings must satisfy retry period < renew deadline < duration "
                f"(got {self.lease_retry_period_s} < {self.lease_renew_deadline_s} < {self.lease_duration_s})")
        if not 0 < self.health_port <= 65535:
            raise SettingsError(f"{_env('health_port')} must be 1-65535 (got {self.health_port})")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"{_env('log_format')} must be text or json (got {self.log_format!r})")
        self.level_map  # noqa: B018 (parsed now, so a bad value stops the VEN at start)
        self.factory_map  # noqa: B018

    # ------------------------------------------------------------------ parsed values

    @property
    def program_names(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.programs.split(",") if p.strip())

    @property
    def factory_map(self) -> dict[str, str]:
        """factory -> OpenADR target name ("" for the factory's own name)."""
        out: dict[str, str] = {}
        for entry in (e.strip() for e in self.factories.split(",")):
            if not entry:
                continue
            factory, _, target = (part.strip() for part in entry.partition("="))
            if not factory:
                raise SettingsError(f"{_env('factories')}: an entry without a factory name ({entry!r})")
            out[factory] = target
        return out

    @property
    def level_map(self) -> dict[int, float]:
        if not self.levels.strip():
            return dict(DEFAULT_LEVELS)
        out: dict[int, float] = {}
        for entry in (e.strip() for e in self.levels.split(",")):
            if not entry:
                continue
            level, sep, ratio = entry.replace(":", "=").partition("=")
            try:
                value = float(ratio)
                out[int(level)] = value
            except ValueError:
                raise SettingsError(f"{_env('levels')} must be level=ratio pairs such as 1=0.25 (got {entry!r})") \
                    from None
            if not sep or not 0.0 <= value <= 1.0:
                raise SettingsError(f"{_env('levels')}: {entry!r}: a ratio must be within 0..1")
        return out

    @property
    def stale_after(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.stale_after_s or 3 * self.poll_interval_s)

    def config(self) -> VenConfig:
        """What :mod:`controller.core.openadr` maps with."""
        return VenConfig(
            vtn=self.vtn_name, program_names=self.program_names, level_map=self.level_map,
            lead_time=self.lead_time, restore_duration=self.restore_duration, restore_steps=self.restore_steps,
            open_ended_step=dt.timedelta(seconds=self.open_ended_step_s),
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VenSettings:
        """Settings from ``MESHPLANE_VEN_<FIELD>`` variables (``MESHPLANE_VEN_POLL_INTERVAL_S=30``)."""
        env = os.environ if environ is None else environ
        values = values_from_env(cls, env, ENV_PREFIX)
        return cls(**values)  # type: ignore[arg-type]


__all__ = ["ENV_PREFIX", "SettingsError", "VenSettings"]
