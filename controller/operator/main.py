"""``meshplane-operator``: the process the chart runs.

Wires the parts together, each in its own thread so none can stall another:
- kopf, in its own event loop (kopf cancels every task of its loop when it exits),
  watching AIFactory, EdgeFleet and MeshWorkload with ``@kopf.on.event`` only, so it
  writes no annotation and no finalizer on what it merely watches
  (:func:`build_registry`), feeding :class:`~controller.operator.state.MeshState`;
- the Lease (:mod:`controller.operator.lease`): both replicas watch and plan, only the
  holder writes;
- the solve loop (:mod:`controller.operator.loop`), writing through
  :mod:`controller.operator.writer`;
- a periodic re-list that drops objects deleted during a watch gap;
- ``/healthz``, ``/readyz`` and ``/metrics`` (:mod:`controller.operator.metrics`) on
  ``health_port``;
- the HTTP API and dashboard (:mod:`controller.http`) on ``http_port`` (0 = off), served
  by uvicorn in a thread with its own event loop, reading the solve loop's last
  publication and checking bearer tokens with :mod:`controller.operator.reviews`.
Settings come from ``MESHPLANE_*`` variables (:mod:`controller.operator.settings`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import kopf
import kubernetes

from controller.api.resources import GROUP, KINDS, VERSION
from controller.core.changes import Change
from controller.http.app import create_app
from controller.http.server import BackgroundServer
from controller.operator.connection import api_client, kopf_login
from controller.operator.delivery.layer import DeliveryLayer, DeliverySettings
from controller.operator.delivery.scores import PlacementScorePublisher
from controller.operator.lease import LeaderElector, LeaseConfig
from controller.operator.loop import SolveLoop
from controller.operator.metrics import OperatorMetrics
from controller.operator.process import configure_logging, health_server, limit_malloc_arenas
from controller.operator.reviews import ReviewAuthorizer
from controller.operator.settings import Settings, SettingsError
from controller.operator.sinks import DeliverySink, MetricsSink, PlacementScoreSink, Publisher, Sink, StatusSink
from controller.operator.state import MeshState
from controller.operator.writer import StatusWriter, WriteStats

log = logging.getLogger("meshplane.operator")


def build_registry(state: MeshState, loop: SolveLoop, settings: Settings) -> kopf.OperatorRegistry:
    """kopf handlers: observe every event of our kinds; configure kopf to write nothing."""
    registry = kopf.OperatorRegistry()
    this = settings  # kopf passes its own settings as ``settings`` to the startup handler

    # a coroutine: kopf runs it on its own loop (a plain function would be handed to a
    # thread pool, one Future and thread hop per watch event); it only parses one object
    async def observe(event: kopf.RawEvent, **_: Any) -> None:
        if state.observe(event.get("type"), event["object"]):
            loop.mark_dirty()

    for info in KINDS.values():
        kopf.on.event(GROUP, VERSION, info.plural, registry=registry, id=f"observe-{info.plural}")(observe)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.enabled = False  # kopf's own log lines are not Kubernetes Events
        settings.scanning.disabled = True
        settings.watching.server_timeout = int(this.watch_server_timeout_s)
        settings.watching.client_timeout = int(this.watch_client_timeout_s)
        settings.watching.connect_timeout = int(this.watch_connect_timeout_s)
        settings.watching.inactivity_timeout = int(this.watch_inactivity_timeout_s)
        settings.networking.request_timeout = this.request_timeout_s
        settings.networking.connect_timeout = this.request_timeout_s

    @kopf.on.login(registry=registry)
    def login(settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo:
        # the same credentials as every other client of the process (MESHPLANE_KUBECONFIG)
        return kopf_login(this, trust_env=settings.networking.trust_env)

    return registry


def list_all(state: MeshState, api: Any, settings: Settings) -> bool:
    """List every kind into the state (dropping what is gone); True when it changed."""
    changed = False
    for info in KINDS.values():
        listed_at = time.monotonic()
        listed = cast(dict[str, Any], api.list_cluster_custom_object(
            GROUP, VERSION, info.plural, _request_timeout=settings.request_timeout_s
        ))
        changed |= state.replace_all(info.kind, listed.get("items", []), listed_at)
    return changed


def relist(
    state: MeshState, client: Any, loop: SolveLoop, settings: Settings, stop: threading.Event,
    is_leader: Callable[[], bool],
) -> None:
    """Every ``relist_every_s``, and on taking the Lease: list each kind and drop what
    the watch missed (an object deleted during a watch gap)."""
    api = kubernetes.client.CustomObjectsApi(client)
    last = time.monotonic()
    was_leader = False
    while not stop.wait(1.0):
        leader = is_leader()
        taken_over, was_leader = leader and not was_leader, leader
        if not taken_over and time.monotonic() - last < settings.relist_every_s:
            continue
        last = time.monotonic()
        try:
            if list_all(state, api, settings):
                loop.mark_dirty()
        except Exception:  # the next round retries; the watch keeps the state meanwhile
            log.exception("re-list failed")


def run(settings: Settings, stop: threading.Event) -> None:
    """Run the operator until ``stop`` is set (also the test entry point)."""
    client = api_client(settings)
    metrics = OperatorMetrics()
    state = MeshState()
    elector = LeaderElector(client, LeaseConfig(
        namespace=settings.namespace, name=settings.lease_name, identity=settings.identity,
        lease_duration_s=settings.lease_duration_s, renew_deadline_s=settings.lease_renew_deadline_s,
        retry_period_s=settings.lease_retry_period_s,
    ))
    writer = StatusWriter(
        client, events_namespace=settings.site_events_namespace, instance=settings.identity,
        max_concurrency=settings.write_concurrency, request_timeout_s=settings.request_timeout_s,
        may_write=elector.is_leader, events_in_background=True,  # the next solve need not wait for Events
        on_event_stats=lambda stats: metrics.observe_writes(stats),
    )
    loop_ref: list[SolveLoop] = []  # the layer calls back into the loop built after it
    delivery = DeliveryLayer(
        client,
        DeliverySettings(
            hub=settings.hub_name, namespace=settings.namespace, local=settings.materialise == "true",
            lost_after_s=settings.lost_after_s, probe_every_s=settings.probe_every_s,
            probe_timeout_s=settings.probe_timeout_s, secret_refresh_s=settings.secret_refresh_s,
            resync_every_s=settings.delivery_resync_every_s, request_timeout_s=settings.request_timeout_s,
        ),
        may_write=elector.is_leader,
        on_replan=lambda: loop_ref[0].mark_dirty() if loop_ref else None,
        on_observed=lambda: loop_ref[0].mark_observed() if loop_ref else None,
        now=settings.clock(),
        on_stats=metrics.observe_delivery,
    )
    def write(pending: list[Change]) -> WriteStats:
        stats = writer.write(pending, uids=state.uids_of(c.ref for c in pending if c.events))
        metrics.observe_writes(stats)
        return stats

    sinks: list[Sink] = [StatusSink(write, state, on_conflict=lambda: loop_ref[0].mark_dirty() if loop_ref else None),
                         DeliverySink(delivery, state)]
    if settings.ocm_placement_scores == "true":
        sinks.append(PlacementScoreSink(PlacementScorePublisher(
            client, settings.hub_name, elector.is_leader, request_timeout_s=settings.request_timeout_s)))
    sinks += [MetricsSink(metrics, state), Publisher()]
    loop = SolveLoop(state, settings, sinks, is_leader=elector.is_leader, now=settings.clock(),
                     observe=delivery.observed, on_lead=delivery.reset)
    loop_ref.append(loop)
    kopf_ready = threading.Event()
    registry = build_registry(state, loop, settings)

    def kopf_thread() -> None:
        # our identity, given: kopf would otherwise name itself by getpass.getuser(),
        # which fails for a uid without a passwd entry (any uid a cluster may assign)
        asyncio.run(kopf.operator(registry=registry, clusterwide=True, standalone=True,
                                  identity=settings.identity,  # type: ignore[arg-type]  # kopf's Identity is a NewType of str, not exported
                                  stop_flag=stop, ready_flag=kopf_ready))

    threads = [
        threading.Thread(target=kopf_thread, name="kopf", daemon=True),
        threading.Thread(target=elector.run, args=(stop,), name="lease", daemon=True),
        threading.Thread(target=loop.run, args=(stop,), name="solve-loop", daemon=True),
        threading.Thread(target=relist, args=(state, client, loop, settings, stop, elector.is_leader), name="relist",
                         daemon=True),
    ]
    ready = threading.Event()
    server = health_server(settings.health_port, ready, threads, metrics.exposition)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    # the watches start at once; the solve loop only once the whole mesh has been listed,
    # so the first solve never sees half of it (and writes no transient Unschedulable)
    solve_thread = threads.pop(2)
    for thread in threads:
        thread.start()
    api_server = _start_api(client, loop, settings)
    if api_server is not None:
        threads.append(api_server.thread)  # a crashed API makes /healthz fail, so the pod restarts
    api = kubernetes.client.CustomObjectsApi(client)
    while not stop.is_set():
        try:
            list_all(state, api, settings)
            break
        except Exception:
            log.exception("listing the mesh failed; retrying")
            stop.wait(settings.lease_retry_period_s)
    threads.insert(2, solve_thread)
    solve_thread.start()
    log.info("meshplane operator %s started (namespace %s)", settings.identity, settings.namespace)
    while not stop.wait(0.2):
        metrics.set_leader(elector.is_leader())
        if kopf_ready.is_set() and (loop.solves > 0 or not elector.is_leader()):
            ready.set()
    server.shutdown()
    writer.stop()
    delivery.stop()
    if api_server is not None:
        api_server.stop()
    for thread in threads:
        thread.join(timeout=10)


API_START_TIMEOUT_S = 10.0


def _start_api(client: Any, loop: SolveLoop, settings: Settings) -> BackgroundServer | None:
    """The HTTP API on ``http_port``, or None when it is off or cannot bind (logged: the
    operator still places and writes statuses without it)."""
    if not settings.http_port:
        return None
    app = create_app(loop, authorizer=ReviewAuthorizer(client, request_timeout_s=settings.request_timeout_s))
    # every interface, as the health server: the Service reaches the pod on its IP
    api_server = BackgroundServer(app, "0.0.0.0", settings.http_port)  # nosec B104 # a pod's own network namespace
    api_server.start()
    deadline = time.monotonic() + API_START_TIMEOUT_S
    while not api_server.started and api_server.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not api_server.started:
        log.error("the HTTP API is not serving on port %d (see the error above); the operator runs on without it",
                  settings.http_port)
        api_server.stop(timeout_s=1.0)
        return None
    log.info("HTTP API on port %d", settings.http_port)
    return api_server


def main(argv: Sequence[str] | None = None) -> int:
    limit_malloc_arenas()  # before any thread starts
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"meshplane-operator: {exc}", file=sys.stderr)
        return 2
    # kopf says "handler succeeded" for every watch event: only its warnings matter here
    configure_logging(settings.log_format, quiet=("kopf",))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run(settings, stop)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
