"""The write fence: ``may_write()`` (the Lease) asked before each request of one batch.

Used by the status writer (:mod:`controller.operator.writer`) and the delivery
appliers (:mod:`controller.operator.delivery.applier`): once the Lease says no, or
asking it fails, the rest of the batch is skipped, so a replica that lost the Lease
stops writing within one request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("meshplane.operator.fence")


class Fence:
    """``allows()`` asks ``may_write()`` until its first no; closed from then on."""

    def __init__(self, may_write: Callable[[], bool], who: str) -> None:
        self._may_write = may_write
        self._who = who
        self.closed = threading.Event()

    def allows(self) -> bool:
        if self.closed.is_set():
            return False
        try:
            allowed = bool(self._may_write())
        except Exception:  # a broken fence is a closed fence
            log.exception("%s: may_write() failed; not writing", self._who)
            allowed = False
        if not allowed:
            self.closed.set()
        return allowed


__all__ = ["Fence"]
