"""A projection worker: one projection, one process, following the event log as events are committed.

    casecore projections run --projection roster [--poll 1.0] [--db postgresql://…]

Each batch is folded in one transaction that also moves the projection's tracked position by compare-and-set
(projections/runner.py): a worker killed at any point (SIGKILL included) leaves the table and the position of
the last committed batch, and its restart continues from there — nothing is folded twice, nothing skipped.
Two workers of the SAME projection are safe too (the compare-and-set lets one fold each batch), so a spare
can stand by; workers of different projections run side by side.

On PostgreSQL the worker LISTENs on the channel the event store NOTIFYs on every insert, so it wakes as soon
as events are committed (polling every `poll` seconds as well, in case a notification is missed); on SQLite
it polls. SIGTERM or SIGINT stop it gracefully: the batch being folded is finished (or rolled back whole by
the database), then the process exits with status 0.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import structlog

from adapters.bootstrap import Wiring
from adapters.readside.readmodels import ReadModels
from casecore.application import CaseManagement
from projections.runner import Projection

log = structlog.get_logger("casecore.worker")


@dataclass
class WorkerStats:
    batches: int = 0
    events: int = 0
    started: float = field(default_factory=time.monotonic)


class Wakeup:
    """Waits for new events: a PostgreSQL LISTEN on the event store's channel, or plain sleeping."""

    def __init__(self, app: CaseManagement):
        self._conn: Any = None
        channel = getattr(app.recorder, "channel_name", None)
        wiring = Wiring.of(app)
        store = wiring.store if wiring is not None else None
        if channel and store is not None and store.kind == "postgres":
            import psycopg
            from psycopg import sql

            e = store.env
            self._conn = psycopg.connect(host=e["POSTGRES_HOST"], port=e["POSTGRES_PORT"], dbname=e["POSTGRES_DBNAME"],
                                         user=e["POSTGRES_USER"], password=e.get("POSTGRES_PASSWORD") or None,
                                         autocommit=True, connect_timeout=5)
            self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Return when events may have been committed, after `seconds`, or soon after `stop` is set."""
        deadline = time.monotonic() + seconds
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            step = min(left, 0.25)   # short steps, so a stop request is honoured promptly
            if self._conn is None:
                stop.wait(step)
                continue
            if any(True for _ in self._conn.notifies(timeout=step, stop_after=1)):
                return

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def run_worker(app: CaseManagement, projections: list[Projection], poll: float = 1.0, batch_size: int = 2000,
               stop: threading.Event | None = None,
               on_batch: Callable[[str, int, int], None] | None = None) -> WorkerStats:
    """Fold new events into the projections (usually one) until `stop` is set, one batch at a time, so a
    stop request is honoured between batches. `on_batch(projection name, events folded, position)`."""
    stop = stop or threading.Event()
    stats = WorkerStats()
    with ReadModels(app, projections, batch_size=batch_size) as rm:
        runner = rm.runner
        wakeup = Wakeup(app)
        try:
            for p in runner.projections:
                log.info("worker started", projection=p.name, position=runner.position(p))
            while not stop.is_set():
                busy = False
                for p in runner.projections:
                    if stop.is_set():
                        break
                    n = runner.catch_up(p, stop_after_batches=1)
                    position = runner.position(p)
                    if n:
                        stats.batches += 1
                        stats.events += n
                        log.info("folded", projection=p.name, events=n, position=position)
                        if on_batch:
                            on_batch(p.name, n, position)
                    # more to do: a full batch, or one of events this projection does not read
                    busy = busy or bool(n) or position < runner.max_position() or runner.tables_partial(p)
                if not busy:
                    wakeup.wait(poll, stop)
        finally:
            wakeup.close()
            for p in runner.projections:
                log.info("worker stopped", projection=p.name, position=runner.position(p), events=stats.events)
    return stats


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT ask the worker to stop after the batch it is folding."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
