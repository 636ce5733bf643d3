"""Run an app with uvicorn: the one place that imports it, so ``controller.cli`` and the
operator never do (an import-linter contract keeps uvicorn out of the CLI).

:func:`serve` blocks (``meshctl serve``); :class:`BackgroundServer` runs in a thread
of its own with its own event loop (the operator, where kopf owns another loop).
"""

from __future__ import annotations

import logging
import threading

import uvicorn
from fastapi import FastAPI

log = logging.getLogger("meshplane.http")


def _config(app: FastAPI, host: str, port: int, log_level: str) -> uvicorn.Config:
    # proxy headers off: nothing in front of the server is trusted to rewrite the client
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, proxy_headers=False,
                          server_header=False, lifespan="off")


def serve(app: FastAPI, host: str = "127.0.0.1", port: int = 8080, log_level: str = "info") -> None:
    """Serve ``app`` until interrupted (Ctrl-C)."""
    uvicorn.Server(_config(app, host, port, log_level)).run()


class BackgroundServer:
    """``app`` served from a daemon thread; :meth:`stop` asks it to finish and waits."""

    def __init__(self, app: FastAPI, host: str, port: int, log_level: str = "warning") -> None:
        self._server = uvicorn.Server(_config(app, host, port, log_level))
        # uvicorn installs signal handlers only on the main thread; the operator owns those
        self._thread = threading.Thread(target=self._server.run, name="http-api", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def started(self) -> bool:
        return bool(self._server.started)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=timeout_s)
