"""``meshplane-ven``: the OpenADR 3 VEN the chart runs beside the operator (``ven.enabled``).

It turns a utility's VTN events into GridEvents and reports demand back
(:mod:`controller.ven.poller`); the operator plans with GridEvents whoever wrote them.
One process, three threads:

- the Lease (:class:`controller.operator.lease.LeaderElector`, on the VEN's OWN Lease,
  ``MESHPLANE_VEN_LEASE_NAME``, default ``meshplane-ven``): only the holder polls and
  writes, so the chart's two replicas never write twice;
- the poll loop, in an asyncio event loop (httpx's async client to the VTN; the
  Kubernetes calls in worker threads);
- ``/healthz`` (the Lease and poll threads run), ``/readyz`` (started) and ``/metrics``
  (:mod:`controller.ven.metrics`) on ``MESHPLANE_VEN_HEALTH_PORT``.

Settings come from ``MESHPLANE_VEN_*`` variables (:mod:`controller.ven.settings`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from controller.operator.connection import api_client
from controller.operator.lease import LeaderElector, LeaseConfig
from controller.operator.process import configure_logging, health_server
from controller.operator.settings import Settings as OperatorSettings
from controller.ven.client import OpenAdrClient
from controller.ven.cluster import Cluster
from controller.ven.metrics import VenMetrics
from controller.ven.poller import Ven
from controller.ven.settings import SettingsError, VenSettings

log = logging.getLogger("meshplane.ven")


async def _serve(settings: VenSettings, ven_of: Any, stop: threading.Event, ready: threading.Event) -> None:
    async with OpenAdrClient(
        settings.vtn_url, settings.client_id, settings.client_secret, token_url=settings.token_url,
        scope=settings.scope, timeout_s=settings.request_timeout_s, verify=settings.ca_file or True,
    ) as client:
        ven: Ven = ven_of(client)
        stopped = asyncio.Event()

        async def watch_stop() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.1)
            stopped.set()

        watcher = asyncio.create_task(watch_stop())
        ready.set()
        try:
            await ven.run(stopped)
        finally:
            watcher.cancel()


def run(settings: VenSettings, stop: threading.Event) -> None:
    """Run the VEN until ``stop`` is set (also the test entry point)."""
    client = api_client(OperatorSettings(kubeconfig=settings.kubeconfig))
    elector = LeaderElector(client, LeaseConfig(
        namespace=settings.namespace, name=settings.lease_name, identity=settings.identity,
        lease_duration_s=settings.lease_duration_s, renew_deadline_s=settings.lease_renew_deadline_s,
        retry_period_s=settings.lease_retry_period_s,
    ))
    metrics = VenMetrics()
    cluster = Cluster(client, events_namespace=settings.events_namespace, identity=settings.identity,
                      request_timeout_s=settings.request_timeout_s, may_write=elector.is_leader)
    ready = threading.Event()

    def poll_thread() -> None:
        asyncio.run(_serve(settings, lambda vtn: Ven(settings, vtn, cluster, metrics, elector.is_leader), stop,
                           ready))

    # the Lease is released (by the election thread, when lease_stop is set) only once
    # the poll loop has stopped: a poll in flight never writes after the release
    lease_stop = threading.Event()
    lease = threading.Thread(target=elector.run, args=(lease_stop,), name="lease", daemon=True)
    poller = threading.Thread(target=poll_thread, name="ven-poll", daemon=True)
    threads = [lease, poller]
    server = health_server(settings.health_port, ready, threads, metrics.exposition)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    for thread in threads:
        thread.start()
    log.info("meshplane-ven %s started (namespace %s, lease %s, VTN %s at %s)", settings.identity,
             settings.namespace, settings.lease_name, settings.vtn_name, settings.vtn_url)
    while not stop.wait(0.2):
        metrics.leader.set(1 if elector.is_leader() else 0)
    poller.join(timeout=10)
    lease_stop.set()
    lease.join(timeout=10)
    server.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = VenSettings.from_env()
    except SettingsError as exc:
        print(f"meshplane-ven: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format, quiet=("httpx",))  # httpx: one INFO line per request otherwise
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run(settings, stop)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
