"""Kubeconfigs of member clusters: checked the way Kueue's MultiKueue checks them, then
turned into a kubernetes client.

Called by :mod:`controller.operator.delivery.monitor` with the text of a Secret's key.
A kubeconfig must carry everything inline: the server's CA as data, and a token or a
client certificate and key as data. Refused, with a message naming what and where:
``insecure-skip-tls-verify``, any file path (``certificate-authority``,
``client-certificate``, ``client-key``, ``tokenFile``: they would read the operator's
own filesystem), ``exec`` and ``auth-provider`` plugins (they would run programs or
fetch credentials in the operator's pod), no current context, or a server that is not
``https://``. The operator then never reads anything but the Secret it is pointed to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import kubernetes
import yaml

REASON_INVALID = "InvalidKubeconfig"


class KubeconfigError(ValueError):
    """A kubeconfig the operator will not use; the message says why."""


@dataclass(frozen=True)
class Target:
    """The server and identity a checked kubeconfig points at."""

    server: str
    context: str
    user: str


def _named(items: Any, name: str, what: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(what)
            if not isinstance(body, dict):
                raise KubeconfigError(f"{what} {name!r} has no {what} section")
            return body
    raise KubeconfigError(f"no {what} named {name!r}")


def check(text: str) -> tuple[dict[str, Any], Target]:
    """The parsed kubeconfig and where it points, or :class:`KubeconfigError`."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise KubeconfigError("not a kubeconfig (expected a mapping)")
    context_name = config.get("current-context")
    if not context_name:
        raise KubeconfigError("no current-context")
    context = _named(config.get("contexts"), str(context_name), "context")
    cluster_name, user_name = context.get("cluster"), context.get("user")
    if not cluster_name or not user_name:
        raise KubeconfigError(f"context {context_name!r} must name a cluster and a user")
    cluster = _named(config.get("clusters"), str(cluster_name), "cluster")
    user = _named(config.get("users"), str(user_name), "user")
    server = str(cluster.get("server") or "")
    if not server.startswith("https://"):
        raise KubeconfigError(f"cluster {cluster_name!r}: server must be an https:// URL (got {server[:80]!r})")
    if cluster.get("insecure-skip-tls-verify"):
        raise KubeconfigError(f"cluster {cluster_name!r}: insecure-skip-tls-verify is not allowed")
    if cluster.get("certificate-authority"):
        raise KubeconfigError(
            f"cluster {cluster_name!r}: certificate-authority is a file path; use certificate-authority-data"
        )
    for field in ("client-certificate", "client-key", "tokenFile"):
        if user.get(field):
            raise KubeconfigError(f"user {user_name!r}: {field} is a file path; give the credential inline")
    for field in ("exec", "auth-provider"):
        if user.get(field):
            raise KubeconfigError(f"user {user_name!r}: {field} plugins are not allowed")
    has_token = bool(user.get("token"))
    has_cert = bool(user.get("client-certificate-data")) and bool(user.get("client-key-data"))
    if not has_token and not has_cert:
        raise KubeconfigError(
            f"user {user_name!r}: no credential (token, or client-certificate-data and client-key-data)"
        )
    return config, Target(server=server, context=str(context_name), user=str(user_name))


def api_client(text: str) -> tuple[kubernetes.client.ApiClient, Target]:
    """A client for the cluster of a checked kubeconfig (:class:`KubeconfigError` else)."""
    config, target = check(text)
    configuration = kubernetes.client.Configuration()
    try:
        loader = kubernetes.config.kube_config.KubeConfigLoader(config_dict=config)
        loader.load_and_set(configuration)
    except Exception as exc:  # the library's own checks (bad base64, ...): still a bad kubeconfig
        raise KubeconfigError(f"cannot be loaded: {exc}") from None
    # the member's own timeouts and retries: one hung member must not hold a thread for long
    configuration.retries = 0
    return kubernetes.client.ApiClient(configuration), target




def request_json(
    client: kubernetes.client.ApiClient, method: str, path: str, query: dict[str, str] | None, timeout_s: float,
    body: Any = None, content_type: str = "application/json",
) -> Any:
    """One request, its answer decoded as JSON (or text for non-JSON answers such as
    ``/readyz``), without building typed models: a list of a thousand Deployments
    decodes in milliseconds this way, and an apply's answer costs nothing to read.
    Raises :class:`kubernetes.client.exceptions.ApiException` on an HTTP error."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type
    params = client.param_serialize(
        method=method, resource_path=path, query_params=list((query or {}).items()),
        header_params=headers, body=body, auth_settings=["BearerToken"],
    )
    response = client.call_api(*params, _request_timeout=timeout_s)
    data = response.read()
    if not 200 <= int(response.status) < 300:
        raise kubernetes.client.exceptions.ApiException(status=response.status, reason=response.reason,
                                                        body=(data or b"").decode(errors="replace"))
    text = (data or b"").decode(errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def get_json(client: kubernetes.client.ApiClient, path: str, query: dict[str, str] | None, timeout_s: float) -> Any:
    """``GET path`` (see :func:`request_json`)."""
    return request_json(client, "GET", path, query, timeout_s)


__all__ = ["REASON_INVALID", "KubeconfigError", "Target", "api_client", "check", "get_json", "request_json"]
