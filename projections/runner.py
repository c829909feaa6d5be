"""Folding the event log into SQLAlchemy tables, exactly once.

Each projection owns its tables and one row in `projection_positions` (its tracked position). A batch of
notifications is decoded, folded by the projection (set-based writes: it loads the rows the batch touches,
changes them in memory, writes them back) and the new position is written IN THE SAME TRANSACTION as the
rows — so a crash anywhere leaves table and position consistent, and a rerun continues where it stopped
without applying anything twice.

On SQLite the runner follows the log by polling `select_notifications`; on PostgreSQL the same loop works
(ids can have gaps — a rolled-back insert — but commit in id order, so "after the last position" is safe).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from casecore.application import CaseManagement
from casecore.events import CaseEvent

positions_metadata = sa.MetaData()
positions = sa.Table(
    "projection_positions",
    positions_metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("rebuilding", sa.Boolean, nullable=False, default=False),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)


class Projection:
    """A read model: its own tables and a fold over batches of events.

    Subclasses set `name` and `metadata` (the tables) and implement `fold(conn, events)`, which must be
    deterministic: the same events give the same rows, whether in one batch or many.
    """

    name: ClassVar[str]
    metadata: ClassVar[sa.MetaData]
    #: event topics the projection reads (empty: all)
    topics: ClassVar[Sequence[str]] = ()

    def create(self, conn: Connection) -> None:
        self.metadata.create_all(conn)

    def drop(self, conn: Connection) -> None:
        self.metadata.drop_all(conn)

    def fold(self, conn: Connection, events: list[CaseEvent]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def fold_at(self, conn: Connection, events: list[CaseEvent], positions: list[int]) -> None:
        """Fold a batch knowing each event's global position (a projection that records positions overrides
        this; the others only fold)."""
        self.fold(conn, events)


ProgressFn = Callable[[int, int], None]


class ProjectionRunner:
    """Runs projections against one application's event log and one SQLAlchemy engine."""

    def __init__(self, app: CaseManagement, engine: Engine, projections: Iterable[Projection],
                 batch_size: int = 2000):
        self.app = app
        self.engine = engine
        self.projections = list(projections)
        self.batch_size = batch_size
        with self.engine.begin() as conn:
            positions_metadata.create_all(conn)
            for p in self.projections:
                p.create(conn)

    # ------------------------------------------------------------------ positions

    def position(self, projection: Projection) -> int:
        with self.engine.connect() as conn:
            return self._position(conn, projection)[0]

    def _position(self, conn: Connection, projection: Projection) -> tuple[int, bool]:
        row = conn.execute(sa.select(positions.c.position, positions.c.rebuilding)
                           .where(positions.c.name == projection.name)).first()
        return (row[0], bool(row[1])) if row else (0, False)

    def _set_position(self, conn: Connection, projection: Projection, position: int, rebuilding: bool) -> None:
        from datetime import UTC, datetime

        values = {"position": position, "rebuilding": rebuilding, "updated_at": datetime.now(UTC)}
        updated = conn.execute(positions.update().where(positions.c.name == projection.name).values(**values))
        if updated.rowcount == 0:
            conn.execute(positions.insert().values(name=projection.name, **values))

    # ------------------------------------------------------------------ running

    def max_position(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def catch_up(self, projection: Projection, progress: ProgressFn | None = None,
                 stop_after_batches: int | None = None) -> int:
        """Fold every event after the tracked position. Returns how many events were folded."""
        with self.engine.connect() as conn:
            start, rebuilding = self._position(conn, projection)
        head = self.max_position()
        done = 0
        batches = 0
        while True:
            notifications = self.app.recorder.select_notifications(
                start=start, limit=self.batch_size, topics=projection.topics, inclusive_of_start=False
            )
            if not notifications:
                break
            events = [self.app.mapper.to_domain_event(n) for n in notifications]
            last = notifications[-1].id
            with self.engine.begin() as conn:
                projection.fold_at(conn, events, [n.id for n in notifications])  # type: ignore[arg-type]
                self._set_position(conn, projection, last, rebuilding and last < head)
            done += len(events)
            start = last
            batches += 1
            if progress:
                progress(start, head)
            if stop_after_batches is not None and batches >= stop_after_batches:
                return done
        if rebuilding:
            with self.engine.begin() as conn:
                self._set_position(conn, projection, start, False)
        return done

    def rebuild(self, projection: Projection, progress: ProgressFn | None = None, restart: bool = False,
                stop_after_batches: int | None = None) -> int:
        """Fold the whole log from position 0 into empty tables. A rebuild that was interrupted continues
        from where it stopped (unless `restart`)."""
        with self.engine.begin() as conn:
            _, rebuilding = self._position(conn, projection)
            if restart or not rebuilding:
                projection.drop(conn)
                projection.create(conn)
                self._set_position(conn, projection, 0, True)
        return self.catch_up(projection, progress, stop_after_batches)

    def is_rebuilding(self, projection: Projection) -> bool:
        with self.engine.connect() as conn:
            return self._position(conn, projection)[1]

    def follow(self, projection: Projection, poll_seconds: float = 0.5, stop: Callable[[], bool] | None = None,
               on_batch: Callable[[int], None] | None = None) -> None:
        """Keep folding new events as they are committed, until `stop()` says so."""
        while not (stop and stop()):
            n = self.catch_up(projection)
            if on_batch and n:
                on_batch(n)
            if n == 0:
                time.sleep(poll_seconds)


def rows_by_key(conn: Connection, table: sa.Table, key: str, keys: Iterable[Any]) -> dict[Any, dict[str, Any]]:
    """Load the rows a batch touches, as dicts by key (one query per 500 keys)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[Any, dict[str, Any]] = {}
    column = table.c[key]
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        for row in conn.execute(sa.select(table).where(column.in_(chunk))).mappings():
            found[row[key]] = dict(row)
    return found


def upsert(conn: Connection, table: sa.Table, key: str, rows: dict[Any, dict[str, Any]],
           existing: set[Any]) -> None:
    """Write back changed rows: one executemany for updates, one for inserts."""
    updates = [r for k, r in rows.items() if k in existing]
    inserts = [r for k, r in rows.items() if k not in existing]
    if updates:
        column = table.c[key]
        stmt = table.update().where(column == sa.bindparam("_key"))
        conn.execute(stmt, [dict(r, _key=r[key]) for r in updates])
    if inserts:
        conn.execute(table.insert(), inserts)
