"""What every meshplane process serves and logs the same way: ``/healthz``, ``/readyz``
and ``/metrics`` on one port, and its log lines (text, or JSON for log pipelines).

Called by :mod:`controller.operator.main` and :mod:`controller.ven.main`.
"""

from __future__ import annotations

import functools
import gc
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def health_server(port: int, ready: threading.Event, alive: Sequence[threading.Thread],
                  exposition: Callable[[], bytes]) -> ThreadingHTTPServer:
    """A server (not started) answering ``/healthz`` (every thread of ``alive`` runs),
    ``/readyz`` (``ready`` is set) and ``/metrics`` (``exposition()``). It binds every
    interface: the kubelet's probes and Prometheus reach the pod on its IP."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body = exposition()
                self.send_response(200)
                self.send_header("Content-Type", METRICS_CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if self.path == "/healthz":
                ok = all(t.is_alive() for t in alive)
            elif self.path == "/readyz":
                ok = ready.is_set()
            else:
                self.send_error(404)
                return
            self.send_response(200 if ok else 503)
            self.end_headers()
            self.wfile.write(b"ok\n" if ok else b"not ready\n")

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    return ThreadingHTTPServer(("0.0.0.0", port), Handler)  # nosec B104 # a pod's own network namespace


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (and exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record), "level": record.levelname, "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_format: str, quiet: Sequence[str] = ()) -> None:
    """Log lines to stderr, as text or ``json``; the loggers named in ``quiet`` say only
    their warnings (kopf's "handler succeeded", httpx's one line per request)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)


__all__ = ["METRICS_CONTENT_TYPE", "JsonFormatter", "configure_logging", "health_server", "limit_malloc_arenas",
           "release_free_memory", "settle_heap"]


# glibc's mallopt parameter M_ARENA_MAX (malloc.h)
_M_ARENA_MAX = -8
MALLOC_ARENAS = 2


@functools.cache
def _glibc() -> Any:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018  # glibc only (musl has neither call)
        return libc
    except (OSError, AttributeError):
        return None


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS, env: Mapping[str, str] | None = None) -> bool:
    """Cap glibc's malloc arenas (as ``MALLOC_ARENA_MAX`` would), unless that variable is
    set: called before any thread starts. glibc gives each thread that contends its own
    arena (up to 8 per core); the solver's threads, kopf's and the writers' fill and free
    different ones, and memory freed in one arena is never reused by another: the
    operator's RSS then grows to about twice what it holds (docs/benchmarks.md, "Where
    the operator's time goes"). True when the cap was set."""
    env = os.environ if env is None else env
    if "MALLOC_ARENA_MAX" in env:
        return False
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas) == 1)


def settle_heap(collect: bool) -> None:
    """After a solve: the objects alive now (the mesh, its statuses, the plan) are the
    operator's steady heap. Move them out of the cyclic collector's generations
    (``gc.freeze``), so the collections the next solve triggers scan only what it
    allocates rather than the whole mesh: at 10,000 workloads those full collections
    were 0.3-0.6 s of a stream solve of 0.9-1.5 s (docs/benchmarks.md, "The evening of
    2026-12-07"). An object that dies by its reference count is freed at once
    either way; only a cycle that dies after it was frozen waits, for ``collect`` (the
    caller's periodic full collection: unfreeze, collect, freeze again)."""
    if collect:
        gc.unfreeze()
        gc.collect()
    else:
        # the young generations' garbage first, so what is frozen is alive (about 1 ms
        # after a solve at 10,000 workloads, and it found none there)
        gc.collect(1)
    gc.freeze()


def release_free_memory() -> None:
    """Give the memory malloc holds free back to the system (``malloc_trim``): after a
    large solve, so the RSS between solves is what the process holds."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
