"""Folding the event log into SQLAlchemy tables, exactly once.

Each projection owns its tables and one row in `projection_positions` (its tracked position: every event
at or below it has been folded, none above it). A batch is read from the notification log, decoded, folded
by the projection (set-based: it loads the rows the batch touches, changes them in memory, writes them
back) and the new position is written IN THE SAME TRANSACTION as the rows. So:

- a crash anywhere leaves table and position consistent: the batch that was being folded is rolled back
  whole, and a rerun reads it again from the position;
- two runners of the same projection (two `casecore roster` at once, a `follow` beside a `catch-up`)
  cannot both fold a batch: the first statement of every batch transaction is a compare-and-set of the
  position (`UPDATE … WHERE position = <the one we read from>`). It takes the position row's lock
  (PostgreSQL) or the database's write lock (SQLite) before anything is folded, and if another runner has
  moved the position meanwhile it changes nothing, the transaction is dropped and the loser re-reads from
  the new position.

Reading stops at the head of the log as it was when the batch was read (`stop=head`); a batch shorter
than the limit means everything up to that head has been seen, so the position becomes the head even when
the projection filters topics and the last events were not its own (`status` then shows it up to date).

On SQLite the runner follows the log by polling `select_notifications`; on PostgreSQL the same loop is
safe: notification ids can have gaps (a rolled-back insert) but the library takes an EXCLUSIVE table lock
for every insert, so ids commit in id order and nothing can appear below a position already passed.
"""

from __future__ import annotations

import hashlib
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
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
#: the shape of each projection's tables when they were (re)built: a projection whose tables changed in code
#: is rebuilt by its next catch-up instead of folding into tables of the old shape
schemas = sa.Table(
    "projection_schemas",
    positions_metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
)


def fingerprint(projection: Projection, dialect: sa.Dialect) -> str:
    """A digest of the projection's tables and indexes as this dialect would create them."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    parts = []
    for t in projection.metadata.sorted_tables:
        parts.append(str(CreateTable(t).compile(dialect=dialect)))
        parts += sorted(str(CreateIndex(ix).compile(dialect=dialect)) for ix in t.indexes)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class Projection:
    """A read model: its own tables and a fold over batches of events.

    Subclasses set `name` and `metadata` (the tables) and implement `fold(conn, events)`, which must be
    deterministic: the same events give the same rows, whether in one batch or many. `fold` runs inside
    the batch's transaction and must not commit.
    """

    name: ClassVar[str]
    #: what people call it (the terminal shows it beside `name`, which `--projection` takes)
    label: ClassVar[str] = ""
    metadata: ClassVar[sa.MetaData]
    #: event topics the projection reads (empty: all); a class or an instance attribute
    topics: Sequence[str] = ()
    #: names of indexes no fold reads (only queries do): a rebuild builds them once, when it completes —
    #: building an index once is cheaper than keeping it up to date row by row
    deferred_indexes: ClassVar[tuple[str, ...]] = ()

    def deferred(self) -> list[sa.Index]:
        return [ix for t in self.metadata.sorted_tables for ix in t.indexes if ix.name in self.deferred_indexes]

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


#: progress(position reached, head of the log)
ProgressFn = Callable[[int, int], None]


class PositionMoved(Exception):
    """Another runner folded past the position this batch was read from; the batch is dropped."""


@dataclass(frozen=True)
class Status:
    name: str
    position: int
    head: int
    rebuilding: bool
    updated_at: datetime | None
    #: the tables in code differ from the ones in the database: the next catch-up rebuilds
    stale: bool = False

    @property
    def behind(self) -> int:
        """Notifications not yet seen (ids above the position; PostgreSQL's gaps make it an upper bound)."""
        return max(0, self.head - self.position)


class ProjectionRunner:
    """Runs projections against one application's event log and one SQLAlchemy engine."""

    def __init__(self, app: CaseManagement, engine: Engine, projections: Iterable[Projection],
                 batch_size: int = 2000):
        self.app = app
        self.engine = engine
        self.projections = list(projections)
        self.batch_size = batch_size
        self.fingerprints = {p.name: fingerprint(p, engine.dialect) for p in self.projections}
        #: projections whose stored tables have another shape than the code's (rebuilt by the next catch-up)
        self.stale: set[str] = set()
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # runners started together (a worker per projection) would race on CREATE TABLE IF NOT EXISTS:
                # one at a time, the others then find the tables (PostgreSQL DDL is transactional)
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('casecore:projection-tables'))"))
            positions_metadata.create_all(conn)
            for p in self.projections:
                p.create(conn)
        for p in self.projections:
            self._ensure_position(p)

    def get(self, name: str) -> Projection:
        for p in self.projections:
            if p.name == name:
                return p
        raise KeyError(name)

    # ------------------------------------------------------------------ positions

    def _ensure_position(self, projection: Projection) -> None:
        """Every projection has its row from the start, so each batch can compare-and-set it; and its
        tables' fingerprint, so a change of shape in code is noticed."""
        try:
            with self.engine.begin() as conn:
                found = self._read(conn, projection)
                if found is None:
                    conn.execute(positions.insert().values(name=projection.name, position=0, rebuilding=False,
                                                           updated_at=datetime.now(UTC)))
                stored = self._fingerprint(conn, projection)
                if stored is None and (found is None or found[0] == 0):
                    self._set_fingerprint(conn, projection)  # nothing folded yet: the tables are the code's
                elif stored != self.fingerprints[projection.name]:
                    self.stale.add(projection.name)
        except sa.exc.IntegrityError:  # another runner inserted them first: fine
            pass

    @staticmethod
    def _fingerprint(conn: Connection, projection: Projection) -> str | None:
        return conn.execute(sa.select(schemas.c.fingerprint).where(schemas.c.name == projection.name)).scalar()

    def _set_fingerprint(self, conn: Connection, projection: Projection) -> None:
        value = self.fingerprints[projection.name]
        if conn.execute(schemas.update().where(schemas.c.name == projection.name)
                        .values(fingerprint=value)).rowcount == 0:
            conn.execute(schemas.insert().values(name=projection.name, fingerprint=value))

    @staticmethod
    def _read(conn: Connection, projection: Projection) -> tuple[int, bool] | None:
        row = conn.execute(sa.select(positions.c.position, positions.c.rebuilding)
                           .where(positions.c.name == projection.name)).first()
        return (int(row[0]), bool(row[1])) if row else None

    def _position(self, conn: Connection, projection: Projection) -> tuple[int, bool]:
        return self._read(conn, projection) or (0, False)

    def position(self, projection: Projection) -> int:
        with self.engine.connect() as conn:
            return self._position(conn, projection)[0]

    def is_rebuilding(self, projection: Projection) -> bool:
        with self.engine.connect() as conn:
            return self._position(conn, projection)[1]

    def _advance(self, conn: Connection, projection: Projection, expected: int, position: int,
                 rebuilding: bool) -> None:
        """Compare-and-set: move the position from `expected` to `position`, or raise PositionMoved."""
        result = conn.execute(
            positions.update()
            .where(positions.c.name == projection.name, positions.c.position == expected)
            .values(position=position, rebuilding=rebuilding, updated_at=datetime.now(UTC))
        )
        if result.rowcount != 1:
            raise PositionMoved(projection.name)

    def max_position(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def status(self) -> list[Status]:
        head = self.max_position()
        with self.engine.connect() as conn:
            rows = {r.name: r for r in conn.execute(sa.select(positions))}
        out = []
        for p in self.projections:
            r = rows.get(p.name)
            out.append(Status(p.name, int(r.position) if r else 0, head, bool(r.rebuilding) if r else False,
                              r.updated_at if r else None, p.name in self.stale))
        return out

    # ------------------------------------------------------------------ running

    def catch_up(self, projection: Projection, progress: ProgressFn | None = None,
                 stop_after_batches: int | None = None) -> int:
        """Fold every event after the tracked position, batch by batch. Returns how many events this call
        folded. `stop_after_batches` ends the call early (the rest is left for the next call). A projection
        whose tables changed shape in code is rebuilt instead."""
        if projection.name in self.stale:
            return self.rebuild(projection, progress, stop_after_batches=stop_after_batches, reshape=True)
        done = 0
        batches = 0
        with self.engine.connect() as conn:
            start, rebuilding = self._position(conn, projection)
        while True:
            head = self.max_position()
            if start >= head and not rebuilding:
                return done
            notifications = self.app.recorder.select_notifications(
                start=start, limit=self.batch_size, stop=head, topics=projection.topics, inclusive_of_start=False
            )
            # a short batch means every id up to `head` has been seen
            reached = notifications[-1].id if len(notifications) >= self.batch_size else head
            reached = max(reached, start)
            events = [self.app.mapper.to_domain_event(n) for n in notifications]
            still_rebuilding = rebuilding and reached < head
            try:
                with self.engine.begin() as conn:
                    self._advance(conn, projection, start, reached, still_rebuilding)
                    if events:
                        projection.fold_at(conn, events, [n.id for n in notifications])  # type: ignore[arg-type]
                    if rebuilding and not still_rebuilding:
                        self._create_deferred(conn, projection)
            except PositionMoved:
                with self.engine.connect() as conn:
                    start, rebuilding = self._position(conn, projection)
                continue
            done += len(events)
            batches += 1
            if rebuilding:
                self._refresh_statistics(projection, batches, done=not still_rebuilding)
            start, rebuilding = reached, still_rebuilding
            if progress:
                progress(start, head)
            if start >= head:
                # caught up with the head as it was; events committed meanwhile wait for the next call
                # unless the batch was full (then the loop goes on)
                if len(notifications) < self.batch_size:
                    return done
            if stop_after_batches is not None and batches >= stop_after_batches:
                return done

    def rebuild(self, projection: Projection, progress: ProgressFn | None = None, restart: bool = False,
                stop_after_batches: int | None = None, reshape: bool = False) -> int:
        """Fold the whole log from position 0 into empty tables. A rebuild that was interrupted (its row
        still says `rebuilding`) continues from where it stopped, unless `restart`. `reshape`: the tables
        changed shape in code; start again unless the stored tables already have the new shape."""
        self._begin_rebuild(projection, restart, reshape)
        return self.catch_up(projection, progress, stop_after_batches)

    def _begin_rebuild(self, projection: Projection, restart: bool = False, reshape: bool = False) -> None:
        """Mark the projection rebuilding at position 0 and recreate its tables (unless an interrupted rebuild
        continues)."""
        while True:
            try:
                with self.engine.begin() as conn:
                    # the position update comes first: it takes the write lock, so on SQLite the DDL below
                    # runs in the same transaction (a crash cannot leave empty tables behind an old position)
                    position, rebuilding = self._position(conn, projection)
                    # reshaping: another runner may already have rebuilt (or begun to) in the new shape
                    done = reshape and self._fingerprint(conn, projection) == self.fingerprints[projection.name]
                    if not done and (restart or reshape or not rebuilding or position == 0):
                        self._advance(conn, projection, position, 0, True)
                        projection.drop(conn)
                        projection.create(conn)
                        for ix in projection.deferred():   # built when the rebuild completes
                            ix.drop(conn, checkfirst=True)
                        self._set_fingerprint(conn, projection)
                break
            except PositionMoved:  # another runner folded a batch between our read and our write
                continue
        self.stale.discard(projection.name)

    def _refresh_statistics(self, projection: Projection, batches: int, done: bool) -> None:
        """PostgreSQL plans a rebuild's lookups by the statistics of tables it just created empty: without
        fresh ones it keeps choosing sequential scans as the tables grow (every batch then reads whole tables:
        a rebuild slowed from 5,000 to under 2,000 events/s at a million events, with autovacuum off). So a
        rebuild vacuums and analyses its tables itself after its 1st, 2nd, 4th, 8th … batch and at its end —
        the rows that were updated since are also vacuumed away."""
        if self.engine.dialect.name != "postgresql" or not (done or batches & (batches - 1) == 0):
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for t in projection.metadata.sorted_tables:
                conn.execute(sa.text(f"VACUUM ANALYZE {conn.dialect.identifier_preparer.format_table(t)}"))

    @staticmethod
    def _create_deferred(conn: Connection, projection: Projection) -> None:
        for ix in projection.deferred():
            ix.create(conn, checkfirst=True)

    def rebuild_many(self, projections: Iterable[Projection] | None = None,
                     progress: Callable[[Projection, int, int], None] | None = None,
                     restart: bool = False) -> dict[str, int]:
        """Rebuild several projections (default: all) reading the log once for all of them."""
        chosen = self.projections if projections is None else list(projections)
        for p in chosen:
            self._begin_rebuild(p, restart)
        return self.catch_up_many(chosen, progress)

    def catch_up_many(self, projections: Iterable[Projection] | None = None,
                      progress: Callable[[Projection, int, int], None] | None = None) -> dict[str, int]:
        """Fold what is new into several projections (default: all), reading and decoding each batch of the
        log ONCE for all of them. Each projection still folds in its own transaction with its own
        compare-and-set of its position, so this is the same as catching each up in turn: a projection
        behind the others gets the events above its own position, one with topics only its topics."""
        chosen = self.projections if projections is None else list(projections)
        for p in chosen:
            if p.name in self.stale:
                self._begin_rebuild(p, reshape=True)
        done = {p.name: 0 for p in chosen}
        batches: dict[str, int] = {}
        with self.engine.connect() as conn:
            at = {p.name: self._position(conn, p) for p in chosen}
        while True:
            head = self.max_position()
            active = [p for p in chosen if at[p.name][0] < head or at[p.name][1]]
            if not active:
                return done
            start = min(at[p.name][0] for p in active)
            topics: list[str] = []
            if all(p.topics for p in active):
                topics = sorted({t for p in active for t in p.topics})
            notifications = self.app.recorder.select_notifications(
                start=start, limit=self.batch_size, stop=head, topics=topics, inclusive_of_start=False)
            reached = max(notifications[-1].id if len(notifications) >= self.batch_size else head, start)
            events = [self.app.mapper.to_domain_event(n) for n in notifications]
            for p in active:
                position, rebuilding = at[p.name]
                if position >= reached and not rebuilding:
                    continue
                wanted = set(p.topics)
                if position <= start and not wanted:   # the usual case: the whole batch
                    mine = list(zip(events, [n.id for n in notifications], strict=True))
                else:
                    mine = [(e, n.id) for e, n in zip(events, notifications, strict=True)
                            if n.id > position and (not wanted or n.topic in wanted)]
                still = rebuilding and max(reached, position) < head
                try:
                    with self.engine.begin() as conn:
                        self._advance(conn, p, position, max(reached, position), still)
                        if mine:
                            p.fold_at(conn, [e for e, _ in mine], [i for _, i in mine])
                        if rebuilding and not still:
                            self._create_deferred(conn, p)
                except PositionMoved:
                    with self.engine.connect() as conn:
                        at[p.name] = self._position(conn, p)
                    continue
                at[p.name] = (max(reached, position), still)
                done[p.name] += len(mine)
                if rebuilding:
                    batches[p.name] = batches.get(p.name, 0) + 1
                    self._refresh_statistics(p, batches[p.name], done=not still)
                if progress:
                    progress(p, at[p.name][0], head)
            if len(notifications) < self.batch_size and all(at[p.name][0] >= head and not at[p.name][1]
                                                             for p in chosen):
                # caught up with the head as it was; events committed meanwhile wait for the next call
                return done

    def catch_up_all(self, progress: Callable[[Projection, int, int], None] | None = None) -> dict[str, int]:
        done = {}
        for p in self.projections:
            each: ProgressFn | None = None
            if progress is not None:
                def each(s: int, h: int, p: Projection = p) -> None:
                    progress(p, s, h)
            done[p.name] = self.catch_up(p, each)
        return done

    def follow(self, projection: Projection | None = None, poll_seconds: float = 0.5,
               stop: Callable[[], bool] | None = None, on_batch: Callable[[int], None] | None = None) -> None:
        """Keep folding new events as they are committed (one projection, or all), until `stop()`."""
        targets = [projection] if projection is not None else self.projections
        while not (stop and stop()):
            n = 0
            for p in targets:
                n += self.catch_up(p)
            if on_batch and n:
                on_batch(n)
            if n == 0:
                time.sleep(poll_seconds)


# ---------------------------------------------------------------------- helpers for set-based folds

Key = str | tuple[str, ...]


def _key_of(row: dict[str, Any], key: Key) -> Any:
    return row[key] if isinstance(key, str) else tuple(row[k] for k in key)


def rows_by_key(conn: Connection, table: sa.Table, key: Key, keys: Iterable[Any]) -> dict[Any, dict[str, Any]]:
    """Load the rows a batch touches, as dicts by key (one query per 500 keys). `key` is a column name,
    or a tuple of names (then `keys` are tuples and rows are matched on the first column, filtered on all)."""
    wanted = list(dict.fromkeys(keys))
    found: dict[Any, dict[str, Any]] = {}
    if isinstance(key, str):
        column = table.c[key]
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            result = conn.execute(sa.select(table).where(column.in_(chunk)))
            names = list(result.keys())
            at = names.index(key)
            for row in result.all():   # one fetchall, plain tuples (iterating mappings fetched row by row)
                found[row[at]] = dict(zip(names, row, strict=True))
        return found
    want = set(wanted)
    firsts = list(dict.fromkeys(k[0] for k in wanted))
    column = table.c[key[0]]
    for i in range(0, len(firsts), 500):
        chunk = firsts[i : i + 500]
        result = conn.execute(sa.select(table).where(column.in_(chunk)))
        names = list(result.keys())
        for row in result.all():
            as_dict = dict(zip(names, row, strict=True))
            k = _key_of(as_dict, key)
            if k in want:
                found[k] = as_dict
    return found


def upsert(conn: Connection, table: sa.Table, key: Key, rows: dict[Any, dict[str, Any]],
           existing: set[Any]) -> None:
    """Write back changed rows: one executemany for updates, one for inserts. `existing` holds the keys that
    were loaded from the table (they are updated; the others are inserted)."""
    updates = [r for k, r in rows.items() if k in existing]
    inserts = [r for k, r in rows.items() if k not in existing]
    if updates:
        names = (key,) if isinstance(key, str) else key
        if not _driver_executemany(conn, table, updates, names):
            stmt = table.update().where(*(table.c[n] == sa.bindparam(f"_key_{n}") for n in names))
            conn.execute(stmt, [dict(r, **{f"_key_{n}": r[n] for n in names}) for r in updates])
    if inserts:
        insert_rows(conn, table, inserts)


def insert_rows(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT rows (dicts with the same keys) with one executemany of the driver."""
    if rows and not _driver_executemany(conn, table, rows, None):
        conn.execute(table.insert(), list(rows))


_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _driver_executemany(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]],
                        where: tuple[str, ...] | None) -> bool:
    """One INSERT (`where` None) or UPDATE … WHERE <where columns> of every row, straight to the driver's
    executemany: each value goes through its column type's own bind processor, as SQLAlchemy would convert
    it, but without building and processing a parameter dict per row (a third of a projection's rebuild).
    Returns False when the rows do not all have the same columns of the table (the caller then lets
    SQLAlchemy do it)."""
    dialect = conn.dialect
    mark = _PLACEHOLDER.get(dialect.paramstyle)
    names = list(rows[0])
    if mark is None or any(n not in table.c for n in names) or any(r.keys() != rows[0].keys() for r in rows):
        return False
    columns = [table.c[n] for n in names]
    processors = [_bind_processor(c, dialect) for c in columns]
    quote = dialect.identifier_preparer
    target = quote.format_table(table)
    if where is None:
        sql = (f"INSERT INTO {target} ({', '.join(quote.format_column(c) for c in columns)}) "
               f"VALUES ({', '.join(mark for _ in columns)})")
        keys: list[int] = []
    else:
        sql = (f"UPDATE {target} SET {', '.join(f'{quote.format_column(c)} = {mark}' for c in columns)} WHERE "
               + " AND ".join(f"{quote.format_column(table.c[n])} = {mark}" for n in where))
        keys = [names.index(n) for n in where]
    get = operator.itemgetter(*names) if len(names) > 1 else (lambda r: (r[names[0]],))
    convert = [(i, p) for i, p in enumerate(processors) if p is not None]
    params = []
    for r in rows:
        values = list(get(r))
        for i, p in convert:
            values[i] = p(values[i])
        if keys:
            values += [values[i] for i in keys]
        params.append(tuple(values))
    conn.exec_driver_sql(sql, params)
    return True


def _iso_date(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def process(value: Any) -> Any:
        # SQLite's DATE text is the ISO date; a C method instead of SQLAlchemy's format string (millions of calls)
        return value.isoformat() if type(value) is date else original(value)

    return process


def _bind_processor(column: sa.Column[Any], dialect: sa.Dialect) -> Callable[[Any], Any] | None:
    """The column type's bind processor, as SQLAlchemy applies it."""
    processor = column.type._cached_bind_processor(dialect)
    if processor is not None and dialect.name == "sqlite" and type(column.type) is sa.Date:
        return _iso_date(processor)
    return processor
