"""How the operator reaches the API server: one source of credentials for every client.

``Settings.kubeconfig`` (``MESHPLANE_KUBECONFIG``, else ``KUBECONFIG``: see
:meth:`~controller.operator.settings.Settings.from_env`) names a kubeconfig; when it is
empty, the pod's service account is used (in-cluster config). Both clients of the
process are built from that one setting, so the watches and the writes always reach the
same cluster as the same user:

- :func:`api_client`: the ``kubernetes`` client that :func:`controller.operator.main.run`
  gives the Lease, the status writer, the materialiser, the re-list and the HTTP API's
  token reviews;
- :func:`kopf_login`: the credentials of kopf's watches, returned by the
  ``@kopf.on.login`` handler of :func:`controller.operator.main.build_registry`. kopf's
  own ``login_via_client`` reads only ``KUBECONFIG`` or the in-cluster config, so it
  would ignore ``MESHPLANE_KUBECONFIG``, or watch another cluster than the one written
  to. kopf calls the handler again whenever the API server answers 401, so the file (or
  the service account's token) is read again each time.
"""

from __future__ import annotations

import kopf
import kubernetes

from controller.operator.settings import Settings


def client_configuration(settings: Settings) -> kubernetes.client.Configuration:
    """A fresh client configuration from the kubeconfig of the settings, else in-cluster."""
    config = kubernetes.client.Configuration()
    if settings.kubeconfig:
        kubernetes.config.load_kube_config(config_file=settings.kubeconfig, client_configuration=config)
    else:
        kubernetes.config.load_incluster_config(client_configuration=config)
    return config


def api_client(settings: Settings) -> kubernetes.client.ApiClient:
    """A kubernetes client from the kubeconfig in the settings, else in-cluster, with a
    connection pool large enough for the status and Event writers' threads and the rest
    (urllib3 discards a connection returned to a full pool: the next request would
    open, and handshake, a new one)."""
    config = client_configuration(settings)
    config.connection_pool_maxsize = max(config.connection_pool_maxsize or 0, 2 * settings.write_concurrency + 8)
    return kubernetes.client.ApiClient(configuration=config)


def _default_namespace(settings: Settings) -> str | None:
    """The namespace of the kubeconfig's current context (kopf uses it for Events about
    cluster-scoped objects, which this operator does not post), if any."""
    if not settings.kubeconfig:
        return None
    _, current = kubernetes.config.list_kube_config_contexts(config_file=settings.kubeconfig)
    namespace = (current or {}).get("context", {}).get("namespace")
    return str(namespace) if namespace else None


def kopf_login(settings: Settings, trust_env: bool = False) -> kopf.ConnectionInfo:
    """kopf's credentials, read from the same source as :func:`api_client`.

    The fields are interpreted as kopf's ``login_via_client`` does with the client's
    default configuration: the ``Authorization`` header the client would send (a
    refreshed token included) split into scheme and token; the CA, client certificate
    and key as files (the client writes inline ``*-data`` to temporary files).
    ``trust_env`` is kopf's ``settings.networking.trust_env``.
    """
    config = client_configuration(settings)
    # kubernetes >= 36 keeps the header under "BearerToken" (with its scheme: "Bearer
    # ...", "bearer ..." in-cluster, "Basic ..." for a user and password), older
    # versions under "authorization"
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    return kopf.ConnectionInfo(
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme,
        token=token,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        default_namespace=_default_namespace(settings),
        proxy_url=config.proxy,
        trust_env=trust_env,
    )
