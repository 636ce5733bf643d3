"""What every meshplane process serves and logs the same way: ``/healthz``, ``/readyz``
and ``/metrics`` on one port, and its log lines (text, or JSON for log pipelines).

Called by :mod:`controller.operator.main` and :mod:`controller.ven.main`.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Sequence
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


__all__ = ["METRICS_CONTENT_TYPE", "JsonFormatter", "configure_logging", "health_server"]
