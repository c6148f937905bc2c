"""CDR helpers: the Q.850 cause of a SIP outcome, and the batching writer."""

from __future__ import annotations

import structlog

from softswitch.writebehind import WriteBehind
from storage.base import Store
from storage.cdr import Cdr

__all__ = ["CdrWriter", "q850_cause"]

log = structlog.get_logger(__name__)

# RFC 3398 section 8.2.6.1 (SIP -> ISUP), completed for the codes it leaves out.
_Q850: dict[int, tuple[int, str]] = {
    200: (16, "NORMAL_CLEARING"),
    400: (41, "NORMAL_TEMPORARY_FAILURE"),
    401: (21, "CALL_REJECTED"),
    402: (21, "CALL_REJECTED"),
    403: (21, "CALL_REJECTED"),
    404: (1, "UNALLOCATED_NUMBER"),
    405: (63, "SERVICE_UNAVAILABLE"),
    406: (79, "SERVICE_NOT_IMPLEMENTED"),
    407: (21, "CALL_REJECTED"),
    408: (102, "RECOVERY_ON_TIMER_EXPIRE"),
    410: (22, "NUMBER_CHANGED"),
    413: (127, "INTERWORKING"),
    414: (127, "INTERWORKING"),
    415: (79, "SERVICE_NOT_IMPLEMENTED"),
    416: (127, "INTERWORKING"),
    420: (127, "INTERWORKING"),
    421: (127, "INTERWORKING"),
    423: (127, "INTERWORKING"),
    480: (18, "NO_USER_RESPONSE"),
    481: (41, "NORMAL_TEMPORARY_FAILURE"),
    482: (25, "EXCHANGE_ROUTING_ERROR"),
    483: (25, "EXCHANGE_ROUTING_ERROR"),
    484: (28, "INVALID_NUMBER_FORMAT"),
    485: (1, "UNALLOCATED_NUMBER"),
    486: (17, "USER_BUSY"),
    487: (16, "NORMAL_CLEARING"),
    488: (65, "BEARERCAPABILITY_NOTIMPL"),
    500: (41, "NORMAL_TEMPORARY_FAILURE"),
    501: (79, "SERVICE_NOT_IMPLEMENTED"),
    502: (38, "NETWORK_OUT_OF_ORDER"),
    503: (41, "NORMAL_TEMPORARY_FAILURE"),
    504: (102, "RECOVERY_ON_TIMER_EXPIRE"),
    505: (127, "INTERWORKING"),
    513: (127, "INTERWORKING"),
    600: (17, "USER_BUSY"),
    603: (21, "CALL_REJECTED"),
    604: (1, "UNALLOCATED_NUMBER"),
    606: (58, "BEARERCAPABILITY_NOTAVAIL"),
}
NO_ANSWER = (19, "NO_ANSWER")


def q850_cause(status: int, *, no_answer: bool = False) -> tuple[int, str]:
    """The Q.850 cause for a call that ended with SIP ``status`` (``no_answer``: rang out)."""
    if no_answer:
        return NO_ANSWER
    found = _Q850.get(status)
    if found is not None:
        return found
    if 200 <= status < 300:
        return _Q850[200]
    if status >= 600:
        return (31, "NORMAL_UNSPECIFIED")
    if status >= 500:
        return (41, "NORMAL_TEMPORARY_FAILURE")
    return (31, "NORMAL_UNSPECIFIED")


class CdrWriter(WriteBehind):
    """Collects finished calls and writes them to the Store in batches.

    A batch is written ``flush_interval`` after the first record queued since the last
    write, or as soon as ``batch_size`` records wait; ``stop`` writes whatever is left, so a
    graceful shutdown loses nothing. A failed write keeps the records queued and is retried.
    """

    # One transaction per second at most at low call rates: each transaction costs more
    # than its rows (the search index writes a segment per commit, and the thread hand-offs
    # of BEGIN, INSERT and COMMIT), so at a few calls per second a write per CDR cost more
    # than the call's signalling. The rows are built in a thread (storable_cdrs), so a big
    # batch does not hold the event loop; at high rates ``batch_size`` writes sooner.
    def __init__(self, store: Store, *, flush_interval: float = 1.0, batch_size: int = 200):
        super().__init__(name="cdr-writer", flush_interval=flush_interval, batch_size=batch_size)
        self._store = store
        self._queue: list[Cdr] = []
        self.written = 0

    def add(self, cdr: Cdr) -> None:
        self._queue.append(cdr)
        self._queued(len(self._queue))

    @property
    def pending(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._start_writer()

    async def flush(self) -> None:
        while self._queue:
            batch = self._queue[: self._batch_size]
            del self._queue[: len(batch)]
            try:
                await self._store.save_cdrs(batch)
            except Exception:
                self._queue[:0] = batch
                self.failed_writes += 1
                log.exception("cdr_flush_failed", pending=len(self._queue))
                raise
            self.written += len(batch)
