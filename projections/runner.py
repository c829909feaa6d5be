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

A rebuild is blue/green: it never touches the live tables. It folds the whole log into shadow tables beside
them (`<table>__next`, tracked by their own row `<name>__next` in `projection_positions`), while readers go
on reading the live tables (and workers go on keeping them current). When the shadow has reached the head,
ONE transaction takes the live position's lock, folds into the shadow whatever the log gained meanwhile,
drops the live tables, renames the shadow tables to the live names and sets the live position: a reader sees
the old complete tables or the new complete ones, never empty, partial or earlier ones (SQLite and PostgreSQL
both have transactional DDL; a PostgreSQL reader in the middle of a query keeps its tables until it ends, the
switch waits for it). The shadow's statements are the projection's own, with its table and index names
rewritten on the way to the driver (`_rename`): the folds need not know they build a shadow. Index names are
global per schema (PostgreSQL) or per file (SQLite), so a shadow's index takes the name its live twin does
not use (`ix_…` or `ix_…__next`, alternately from rebuild to rebuild). An interrupted rebuild resumes from its
shadow's position; a second rebuild of the same projection is refused while one runs (`RebuildRunning`: a
PostgreSQL advisory lock, or an OS lock on a file beside the SQLite database, both freed if the process dies).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from casecore.application import CaseManagement
from casecore.events import CaseEvent
from projections.in_database import EventSource, NotInDatabase, source_for

positions_metadata = sa.MetaData()
positions = sa.Table(
    "projection_positions",
    positions_metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("rebuilding", sa.Boolean, nullable=False, default=False),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
#: a rebuild filling a stream-local projection's shadow stream by stream (`ProjectionRunner._fill_by_stream`):
#: the head of the log it fills up to and the last stream it has folded whole; the row goes when the fill is
#: done and the shadow's position moves to that head
fills = sa.Table(
    "projection_fills",
    positions_metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("head", sa.BigInteger, nullable=False),
    sa.Column("after_stream", sa.Text, nullable=False),
)
#: the shape of each projection's tables when they were (re)built: a projection whose tables changed in code
#: is rebuilt by its next catch-up instead of folding into tables of the old shape
schemas = sa.Table(
    "projection_schemas",
    positions_metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
)


def _filling(shape: str) -> str:
    """The fingerprint a shadow carries while it is filled stream by stream: not its tables' shape, so a runner
    of a version without these fills (which would resume it in log order, from position 0, and fold its filled
    streams a second time) starts that rebuild again instead; this version knows it and goes on."""
    return "filling:" + shape[: 64 - len("filling:")]


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
    #: each row comes from the events of one stream alone, and how the streams' events interleave changes no
    #: row (the roster, the case facts): a rebuild then folds the log stream by stream, each stream's events
    #: in one batch, so a row is written once instead of once a batch (`ProjectionRunner._fill_by_stream`)
    stream_local: ClassVar[bool] = False

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

    def rebuild_in_database(self, conn: Connection, source: EventSource, head: int) -> int | None:
        """Fill the empty tables with every event up to `head` in SQL (`projections/in_database.py`), or None:
        this projection is folded in Python. Runs inside the rebuild's transaction; raising rolls it back."""
        return None


SHADOW = "__next"


class Shadow(Projection):
    """A projection's tables being rebuilt beside the live ones: the same fold and tables, another position
    row (`<name>__next`); its statements reach the driver with the shadow's table and index names."""

    def __init__(self, live: Projection):
        self.live = live
        self.name = live.name + SHADOW  # type: ignore[misc]
        self.metadata = live.metadata  # type: ignore[misc]
        self.topics = live.topics
        self.deferred_indexes = live.deferred_indexes  # type: ignore[misc]
        self.stream_local = live.stream_local  # type: ignore[misc]

    def fold(self, conn: Connection, events: list[CaseEvent]) -> None:
        self.live.fold(conn, events)

    def fold_at(self, conn: Connection, events: list[CaseEvent], positions: list[int]) -> None:
        self.live.fold_at(conn, events, positions)

    def rebuild_in_database(self, conn: Connection, source: EventSource, head: int) -> int | None:
        return self.live.rebuild_in_database(conn, source, head)


class RebuildRunning(Exception):
    """Another process is rebuilding this projection."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return (f"投影 {self.name} 正由另一进程重建; 请等它完成 (casecore projections status 可看进度), "
                f"或确认那个进程已退出后再运行")


_RENAME_OPTION = "casecore_rename"


def _rename(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
            executemany: bool) -> tuple[str, Any]:
    """before_cursor_execute: a shadow's statement gets the shadow's table and index names (whole identifiers
    only: `roster` is renamed, `roster_members` and `ix_roster_division` by their own entries)."""
    rename = conn.get_execution_options().get(_RENAME_OPTION)
    if rename is not None:
        pattern, names = rename
        statement = pattern.sub(lambda m: names[m.group(0)], statement)
    return statement, parameters


def _renaming(names: dict[str, str]) -> tuple[re.Pattern[str], dict[str, str]]:
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w$])(?:{alternatives})(?![\w$])"), names


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
    #: how far the shadow tables of a rebuild under way (or interrupted) have got; None: no rebuild
    rebuild_position: int | None = None
    #: a rebuild filling its shadow stream by stream (at position 0 until done): the last stream it folded
    filled_through: str | None = None

    @property
    def behind(self) -> int:
        """Notifications not yet seen (ids above the position; PostgreSQL's gaps make it an upper bound)."""
        return max(0, self.head - self.position)


def _for_one(progress: ProgressFn | None) -> Callable[[Projection, int, int], None] | None:
    """A one-projection progress (position, head) as the batch loops call progress (projection, position,
    head)."""
    if progress is None:
        return None

    def each(p: Projection, position: int, head: int) -> None:
        progress(position, head)
    return each


class ProjectionRunner:
    """Runs projections against one application's event log and one SQLAlchemy engine."""

    #: a rebuild fills the tables of copy-like projections in SQL where it can (False: always fold in Python)
    in_database = True
    #: a rebuild folds stream-local projections stream by stream (False: in log order, as a catch-up does)
    by_stream = True

    def __init__(self, app: CaseManagement, engine: Engine, projections: Iterable[Projection],
                 batch_size: int = 2000):
        self.app = app
        self.engine = engine
        self.projections = list(projections)
        self.batch_size = batch_size
        self.fingerprints = {p.name: fingerprint(p, engine.dialect) for p in self.projections}
        #: projections whose stored tables have another shape than the code's (rebuilt by the next catch-up)
        self.stale: set[str] = set()
        #: why a rebuild of a copy-like projection folded in Python after trying SQL (by projection name)
        self.not_in_database: dict[str, str] = {}
        #: per projection, the engine whose statements reach the shadow tables of its rebuild
        self._shadow_engines: dict[str, Engine] = {}
        if not sa.event.contains(engine, "before_cursor_execute", _rename):
            sa.event.listen(engine, "before_cursor_execute", _rename, retval=True)
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
        """A rebuild is under way or was interrupted (its shadow tables wait), or the live tables themselves
        are partial (a rebuild in place begun by an earlier version)."""
        with self.engine.connect() as conn:
            return self._position(conn, projection)[1] or self._read(conn, Shadow(projection)) is not None

    def tables_partial(self, projection: Projection) -> bool:
        """The live tables are being filled in place (only a rebuild begun by an earlier version does that):
        the next catch-up goes on with it."""
        with self.engine.connect() as conn:
            return self._position(conn, projection)[1]

    def rebuild_position(self, projection: Projection) -> int | None:
        """How far the shadow tables of a rebuild under way or interrupted have got (None: no rebuild)."""
        with self.engine.connect() as conn:
            found = self._read(conn, Shadow(projection))
        return None if found is None else found[0]

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
            filling = {r.name: r.after_stream for r in conn.execute(sa.select(fills))}
        out = []
        for p in self.projections:
            r = rows.get(p.name)
            shadow = rows.get(p.name + SHADOW)
            out.append(Status(p.name, int(r.position) if r else 0, head,
                              (bool(r.rebuilding) if r else False) or shadow is not None,
                              r.updated_at if r else None, p.name in self.stale,
                              int(shadow.position) if shadow is not None else None,
                              filling.get(p.name + SHADOW) if shadow is not None and shadow.position == 0 else None))
        return out

    # ------------------------------------------------------------------ running

    def catch_up(self, projection: Projection, progress: ProgressFn | None = None,
                 stop_after_batches: int | None = None) -> int:
        """Fold every event after the tracked position, batch by batch. Returns how many events this call
        folded. `stop_after_batches` ends the call early (the rest is left for the next call). A projection
        whose tables changed shape in code is rebuilt instead."""
        if projection.name in self.stale:
            try:
                return self.rebuild(projection, progress, stop_after_batches=stop_after_batches, reshape=True)
            except RebuildRunning:   # another process rebuilds it: the live tables are read meanwhile
                return 0
        return self._fold_batches([projection], _for_one(progress), stop_after_batches)[projection.name]

    def rebuild(self, projection: Projection, progress: ProgressFn | None = None, restart: bool = False,
                stop_after_batches: int | None = None, reshape: bool = False) -> int:
        """Fold the whole log from position 0 into shadow tables beside the live ones, then switch them in
        (blue/green: readers read the live tables throughout). A rebuild that was interrupted (its shadow is
        still there) continues from where it stopped, unless `restart`. `reshape`: the tables changed shape
        in code; nothing to do if another runner has already switched tables of the new shape in. Raises
        RebuildRunning while another process rebuilds the projection. Returns the events folded."""
        with self._rebuild_locks([projection]):
            shadow = self._begin_rebuild(projection, restart, reshape)
            if shadow is None:
                return 0
            done = self._fill_in_database(shadow)
            filled, complete = self._fill_by_stream([shadow], _for_one(progress), stop_after_batches)
            done += filled[shadow.name]
            if not complete:   # stopped part way: the next rebuild goes on from the last stream filled
                return done
            done += self.catch_up(shadow, progress, stop_after_batches)
            with self.engine.connect() as conn:
                _, rebuilding = self._position(conn, shadow)
            if not rebuilding:
                done += self._switch(projection)
            return done

    def _engine_of(self, projection: Projection) -> Engine:
        """The engine a projection's batches are written through: a shadow's renames its tables."""
        if not isinstance(projection, Shadow):
            return self.engine
        live = projection.live
        if live.name not in self._shadow_engines:
            with self.engine.connect() as conn:
                inspector = sa.inspect(conn)
                used = set()
                for t in live.metadata.sorted_tables:
                    if inspector.has_table(t.name):
                        used |= {ix["name"] for ix in inspector.get_indexes(t.name)}
                        used |= {uq["name"] for uq in inspector.get_unique_constraints(t.name)}
            names = {t.name: t.name + SHADOW for t in live.metadata.sorted_tables}
            for t in live.metadata.sorted_tables:
                named = [ix.name for ix in t.indexes] + [c.name for c in t.constraints]
                for name in named:
                    if isinstance(name, str) and name in used:
                        names[name] = name + SHADOW   # the live twin has this name: the shadow's takes the other
            self._shadow_engines[live.name] = self.engine.execution_options(**{_RENAME_OPTION: _renaming(names)})
        return self._shadow_engines[live.name]

    @contextlib.contextmanager
    def _rebuild_locks(self, chosen: Sequence[Projection]) -> Iterator[None]:
        """Hold, for the whole rebuild, one lock per projection that no other rebuild of it can take (raises
        RebuildRunning naming the first one held elsewhere). The database or the OS frees them when the
        process ends, however it ends: an interrupted rebuild is resumed by the next one."""
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            keys: list[str] = []
            try:
                for p in chosen:
                    key = f"casecore:rebuild:{p.name}"
                    if not conn.execute(sa.text("SELECT pg_try_advisory_lock(hashtext(current_schema() || :k))"),
                                        {"k": key}).scalar():
                        raise RebuildRunning(p.name)
                    keys.append(key)
                conn.commit()
                yield
            finally:
                for key in keys:
                    conn.execute(sa.text("SELECT pg_advisory_unlock(hashtext(current_schema() || :k))"), {"k": key})
                conn.commit()
                conn.close()
            return
        import fcntl

        files = []
        try:
            for p in chosen:
                f = open(f"{self.engine.url.database}.rebuild-{p.name}.lock", "a")
                files.append(f)
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise RebuildRunning(p.name) from None
            yield
        finally:
            for f in files:
                f.close()   # closing frees the lock

    def _begin_rebuild(self, projection: Projection, restart: bool = False,
                       reshape: bool = False) -> Shadow | None:
        """Create empty shadow tables at position 0 (unless an interrupted rebuild of the same shape goes on
        in them); None when reshaping and the live tables already have the code's shape."""
        shadow = Shadow(projection)
        self.fingerprints[shadow.name] = self.fingerprints[projection.name]
        with self._engine_of(shadow).begin() as conn:
            if reshape and self._fingerprint(conn, projection) == self.fingerprints[projection.name]:
                self.stale.discard(projection.name)
                return None
            found = self._read(conn, shadow)
            shape = self.fingerprints[shadow.name]
            if found is not None and not restart and self._fingerprint(conn, shadow) in (shape, _filling(shape)):
                return shadow   # an interrupted rebuild continues
            # the row first: on SQLite it opens the write transaction the DDL below runs in
            now = datetime.now(UTC)
            if found is None:
                conn.execute(positions.insert().values(name=shadow.name, position=0, rebuilding=True, updated_at=now))
            else:
                conn.execute(positions.update().where(positions.c.name == shadow.name)
                             .values(position=0, rebuilding=True, updated_at=now))
            conn.execute(fills.delete().where(fills.c.name == shadow.name))   # an earlier fill's cursor
            quote = conn.dialect.identifier_preparer
            from sqlalchemy.schema import CreateIndex, CreateTable

            # statements name the live tables: this connection renames them to the shadow's
            for t in reversed(projection.metadata.sorted_tables):
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {quote.format_table(t)}"))
            for t in projection.metadata.sorted_tables:
                conn.execute(CreateTable(t))
                for ix in t.indexes:
                    if ix.name not in projection.deferred_indexes:   # the others when the rebuild completes
                        conn.execute(CreateIndex(ix))
            self._set_fingerprint(conn, shadow)
        return shadow

    def _fill_in_database(self, shadow: Shadow) -> int:
        """A fresh shadow of a copy-like projection: fill it up to the head of the log in SQL, in one transaction
        that also moves its position there (still rebuilding: the deferred indexes and the switch follow as after
        any rebuild). Returns the rows written; 0 when the projection or the store needs the Python fold, or the
        statements failed (rolled back: the fold then starts from position 0)."""
        if not self.in_database or type(shadow.live).rebuild_in_database is Projection.rebuild_in_database:
            return 0
        with self.engine.connect() as conn:
            if self._position(conn, shadow) != (0, True):
                return 0
        head = self.max_position()
        try:
            with self._engine_of(shadow).begin() as conn:
                source = source_for(self.app, conn)
                if source is None:
                    return 0
                self._advance(conn, shadow, 0, head, True)
                written = shadow.rebuild_in_database(conn, source, head)
                if written is None:
                    raise NotInDatabase(shadow.name)
        except (PositionMoved, NotInDatabase, sa.exc.DBAPIError) as exc:
            self.not_in_database[shadow.live.name] = repr(exc)[:500]
            return 0
        return written

    def _fill_by_stream(self, shadows: Sequence[Shadow],
                        progress: Callable[[Projection, int, int], None] | None = None,
                        stop_after_batches: int | None = None) -> tuple[dict[str, int], bool]:
        """Fill the fresh (or part-filled) shadows of stream-local projections up to the head of the log in
        stream order: pages of whole streams (`select_by_stream`), each read and decoded once for all of them
        and folded into each in its own transaction with the compare-and-set of its fill row (the last stream
        folded), so an interrupted fill goes on after that stream. When every stream is folded, the shadow's
        position moves to the head the fill read up to, and the rebuild goes on as any other: the log gained
        since is folded in log order, then the deferred indexes and the switch. Returns the events folded per
        shadow and whether every fill is done (False: stopped after `stop_after_batches` pages)."""
        done = {s.name: 0 for s in shadows}
        reader = getattr(self.app.recorder, "select_by_stream", None)
        if reader is None:
            return done, True
        groups: dict[tuple[int, str] | None, list[Shadow]] = {}
        with self.engine.connect() as conn:
            for s in shadows:
                if not s.stream_local or self._position(conn, s) != (0, True):
                    continue
                row = conn.execute(sa.select(fills.c.head, fills.c.after_stream).where(fills.c.name == s.name)).first()
                if row is None and not self.by_stream:
                    continue   # a fresh shadow, folded in log order; a fill under way goes on by stream whatever
                groups.setdefault((int(row[0]), row[1]) if row is not None else None, []).append(s)
        pages = 0
        for started, group in groups.items():
            head, after = started if started is not None else (self.max_position(), "")
            begun = started is not None
            read = 0   # (progress: the events read so far, against the head; positions come in no order here)
            topics = sorted({t for s in group for t in s.topics}) if all(s.topics for s in group) else []
            while True:
                page = self._streams_page(reader, after, head, topics)
                if not page:
                    break
                events = [self.app.mapper.to_domain_event(n) for n in page]
                last = page[-1].originator_id
                read += len(page)
                for s in group:
                    wanted = set(s.topics)
                    mine = [(e, n.id) for e, n in zip(events, page, strict=True) if not wanted or n.topic in wanted]
                    with self._engine_of(s).begin() as conn:
                        self._move_fill(conn, s, head, after if begun else None, last)
                        if not begun:
                            conn.execute(schemas.update().where(schemas.c.name == s.name)
                                         .values(fingerprint=_filling(self.fingerprints[s.name])))
                        if mine:
                            s.fold_at(conn, [e for e, _ in mine], [i for _, i in mine])
                    done[s.name] += len(mine)
                    if progress is not None:
                        progress(s, min(read, head), head)
                begun, after = True, last
                pages += 1
                for s in group:
                    self._refresh_statistics(s, pages, done=False)
                if stop_after_batches is not None and pages >= stop_after_batches:
                    return done, False
            for s in group:   # filled: the shadow stands at the head it read up to, with its tables' shape
                with self._engine_of(s).begin() as conn:
                    self._advance(conn, s, 0, head, True)
                    conn.execute(fills.delete().where(fills.c.name == s.name))
                    self._set_fingerprint(conn, s)
        return done, True

    def _streams_page(self, reader: Callable[..., list[Any]], after: str, head: int, topics: Sequence[str]
                      ) -> list[Any]:
        """The next page of whole streams after `after` (at most the batch size of events, unless one stream
        alone is longer: then that stream whole)."""
        limit = self.batch_size
        while True:
            page = reader(after, head, limit, topics)
            if len(page) < limit:
                return page
            last = page[-1].originator_id
            whole = [n for n in page if n.originator_id != last]
            if whole:
                return whole
            limit *= 2

    @staticmethod
    def _move_fill(conn: Connection, shadow: Shadow, head: int, expected: str | None, after: str) -> None:
        """Compare-and-set of a fill's last stream (None: the fill's first page inserts its row), or
        PositionMoved."""
        if expected is None:
            conn.execute(fills.delete().where(fills.c.name == shadow.name))
            conn.execute(fills.insert().values(name=shadow.name, head=head, after_stream=after))
            return
        moved = conn.execute(fills.update().where(fills.c.name == shadow.name, fills.c.head == head,
                                                  fills.c.after_stream == expected).values(after_stream=after))
        if moved.rowcount != 1:
            raise PositionMoved(shadow.name)

    def _switch(self, projection: Projection) -> int:
        """In one transaction: take the live position's lock, fold into the caught-up shadow what the log
        gained since, drop the live tables, give the shadow's their names and move the live position to the
        shadow's. Returns the events folded on the way."""
        for attempt in range(1_000_000):
            try:
                return self._switch_once(projection)
            except sa.exc.OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) != "55P03":
                    raise
                # a reader holds a live table: let it finish (it may want another of them, which this
                # transaction had already locked) and try again
                time.sleep(min(1.0, 0.05 * (attempt + 1)))
        raise AssertionError("unreachable")  # pragma: no cover

    def _switch_once(self, projection: Projection) -> int:
        shadow = Shadow(projection)
        rename = self._engine_of(shadow).get_execution_options()[_RENAME_OPTION]
        with self.engine.begin() as conn:
            now = datetime.now(UTC)
            # the live position's lock first (on SQLite: the write lock; the DDL below is in this transaction)
            conn.execute(positions.update().where(positions.c.name == projection.name).values(updated_at=now))
            if conn.dialect.name == "postgresql":
                # every live table at once, before anything else: a reader holding one of them and wanting
                # another must not wait behind this transaction while it waits for that reader (PostgreSQL
                # would end the deadlock by failing one of the two); this one gives up first and retries
                conn.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
                quote = conn.dialect.identifier_preparer
                conn.execute(sa.text("LOCK TABLE " + ", ".join(quote.quote(t.name) for t in
                                                                projection.metadata.sorted_tables)
                                     + " IN ACCESS EXCLUSIVE MODE"))
                conn.execute(sa.text("SET LOCAL lock_timeout = 0"))
            at, _ = self._position(conn, shadow)
            done = 0
            conn.execution_options(**{_RENAME_OPTION: rename})
            try:
                while True:
                    head = self.max_position()
                    if at >= head:
                        break
                    notifications = self.app.recorder.select_notifications(
                        start=at, limit=self.batch_size, stop=head, topics=projection.topics,
                        inclusive_of_start=False)
                    if notifications:
                        projection.fold_at(conn, [self.app.mapper.to_domain_event(n) for n in notifications],
                                           [n.id for n in notifications])  # type: ignore[misc]
                    at = max(at, notifications[-1].id if len(notifications) >= self.batch_size else head)
                    done += len(notifications)
            finally:
                conn.execution_options(**{_RENAME_OPTION: None})
            quote = conn.dialect.identifier_preparer
            tables = projection.metadata.sorted_tables
            for t in reversed(tables):
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {quote.quote(t.name)}"))
            for t in tables:
                conn.execute(sa.text(f"ALTER TABLE {quote.quote(t.name + SHADOW)} RENAME TO {quote.quote(t.name)}"))
            if conn.dialect.name == "postgresql":
                # PostgreSQL names a key's index after its table (`roster__next_pkey`): give it the live name
                for t in tables:
                    for (name,) in conn.execute(sa.text(
                            "SELECT relname FROM pg_class WHERE relkind = 'i' AND relnamespace = "
                            "current_schema()::regnamespace AND starts_with(relname, :prefix)"),
                            {"prefix": t.name + SHADOW}):
                        conn.execute(sa.text(f"ALTER INDEX {quote.quote(name)} RENAME TO "
                                             f"{quote.quote(t.name + name[len(t.name) + len(SHADOW):])}"))
            conn.execute(positions.update().where(positions.c.name == projection.name)
                         .values(position=at, rebuilding=False, updated_at=now))
            conn.execute(positions.delete().where(positions.c.name == shadow.name))
            conn.execute(schemas.delete().where(schemas.c.name == shadow.name))
            self._set_fingerprint(conn, projection)
        self.stale.discard(projection.name)
        self._shadow_engines.pop(projection.name, None)   # the index names in use have changed
        return done

    def _refresh_statistics(self, projection: Projection, batches: int, done: bool) -> None:
        """PostgreSQL plans a rebuild's lookups by the statistics of tables it just created empty: without
        fresh ones it keeps choosing sequential scans as the tables grow (every batch then reads whole tables:
        a rebuild slowed from 5,000 to under 2,000 events/s at a million events, with autovacuum off). So a
        rebuild vacuums and analyses its tables itself after its 1st, 2nd, 4th, 8th … batch and at its end —
        the rows that were updated since are also vacuumed away."""
        if self.engine.dialect.name != "postgresql" or not (done or batches & (batches - 1) == 0):
            return
        with self._engine_of(projection).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for t in projection.metadata.sorted_tables:
                conn.execute(sa.text(f"VACUUM ANALYZE {conn.dialect.identifier_preparer.format_table(t)}"))

    @staticmethod
    def _create_deferred(conn: Connection, projection: Projection) -> None:
        for ix in projection.deferred():
            # a shadow's: its connection renames the index, which a check by name would not see
            ix.create(conn, checkfirst=not isinstance(projection, Shadow))

    def rebuild_many(self, projections: Iterable[Projection] | None = None,
                     progress: Callable[[Projection, int, int], None] | None = None,
                     restart: bool = False) -> dict[str, int]:
        """Rebuild several projections (default: all) reading the log once for all of them, each into its
        shadow tables and switched in when caught up (`rebuild`)."""
        chosen = self.projections if projections is None else list(projections)
        with self._rebuild_locks(chosen):
            shadows = [s for p in chosen if (s := self._begin_rebuild(p, restart)) is not None]
            filled = {s.name: self._fill_in_database(s) for s in shadows}
            each = None
            if progress is not None:
                def each(p: Projection, position: int, head: int) -> None:
                    progress(p.live if isinstance(p, Shadow) else p, position, head)
            by_stream, _ = self._fill_by_stream(shadows, each)
            filled = {name: n + by_stream.get(name, 0) for name, n in filled.items()}
            folded = self.catch_up_many(shadows, each)
            done = {p.name: 0 for p in chosen}
            for s in shadows:
                done[s.live.name] = folded[s.name] + filled[s.name]
                with self.engine.connect() as conn:
                    _, rebuilding = self._position(conn, s)
                if not rebuilding:
                    done[s.live.name] += self._switch(s.live)
            return done

    def catch_up_many(self, projections: Iterable[Projection] | None = None,
                      progress: Callable[[Projection, int, int], None] | None = None) -> dict[str, int]:
        """Fold what is new into several projections (default: all), reading and decoding each batch of the
        log ONCE for all of them. Each projection still folds in its own transaction with its own
        compare-and-set of its position, so this is the same as catching each up in turn: a projection
        behind the others gets the events above its own position, one with topics only its topics."""
        chosen = self.projections if projections is None else list(projections)
        done = {p.name: 0 for p in chosen}
        for p in chosen:
            if p.name in self.stale:
                try:
                    done[p.name] += self.rebuild(p, reshape=True)
                except RebuildRunning:   # another process rebuilds it; its live tables are read meanwhile
                    pass
        chosen = [p for p in chosen if p.name not in self.stale]   # (those that another process rebuilds)
        folded = self._fold_batches(chosen, progress)
        return {name: done[name] + folded.get(name, 0) for name in done}

    def _fold_batches(self, chosen: list[Projection],
                      progress: Callable[[Projection, int, int], None] | None = None,
                      stop_after_batches: int | None = None) -> dict[str, int]:
        """The batch loop: read and decode each batch of the log once, fold it into every projection behind
        it, each in its own transaction after the compare-and-set of its position; until all have reached the
        head (or `stop_after_batches` batches). Returns the events each projection folded."""
        done = {p.name: 0 for p in chosen}
        batches: dict[str, int] = {}
        rounds = 0
        with self.engine.connect() as conn:
            at = {p.name: self._position(conn, p) for p in chosen}
        while True:
            head = self.max_position()
            active = [p for p in chosen if at[p.name][0] < head or at[p.name][1]]
            if not active:
                return done
            start = min(at[p.name][0] for p in active)
            # the events are read for the projections behind the head: one at the head (a rebuild filled in
            # SQL or stream by stream) only waits for its deferred indexes, and widens no batch's topics
            behind = [p for p in active if at[p.name][0] < head]
            topics: list[str] = []
            if all(p.topics for p in behind):
                topics = sorted({t for p in behind for t in p.topics})
            notifications = []
            if behind:
                notifications = self.app.recorder.select_notifications(
                    start=start, limit=self.batch_size, stop=head, topics=topics, inclusive_of_start=False)
            reached = max(notifications[-1].id if len(notifications) >= self.batch_size else head, start)
            events = [self.app.mapper.to_domain_event(n) for n in notifications]
            folded_one = False
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
                    with self._engine_of(p).begin() as conn:
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
                folded_one = True
                if progress:
                    progress(p, at[p.name][0], head)
            if len(notifications) < self.batch_size and all(at[p.name][0] >= head and not at[p.name][1]
                                                             for p in chosen):
                # caught up with the head as it was; events committed meanwhile wait for the next call
                return done
            rounds += folded_one
            if stop_after_batches is not None and rounds >= stop_after_batches:
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
    An UPDATE sets the other columns only: setting a key column, even to its own value, makes SQLite rewrite
    the key's index entry. Returns False when the rows do not all have the same columns of the table (the
    caller then lets SQLAlchemy do it)."""
    dialect = conn.dialect
    first = rows[0].keys()
    if any(r.keys() != first for r in rows):
        return False
    known = _STATEMENTS.setdefault(dialect, {})
    shape = (table, tuple(first), where)
    if shape not in known:
        known[shape] = _statement(table, shape[1], where, dialect)
    found = known[shape]
    if found is None:
        return False
    sql, order = found
    if sql:   # (an UPDATE of nothing but the key changes nothing)
        conn.exec_driver_sql(sql, list(map(_row_converter(table, order, dialect), rows)))
    return True


#: the driver's statement and its columns' order, by dialect, table, the rows' columns and the key of an UPDATE
_STATEMENTS: weakref.WeakKeyDictionary[sa.Dialect, dict[tuple[sa.Table, tuple[str, ...], tuple[str, ...] | None],
                                                        tuple[str, tuple[str, ...]] | None]] = (
    weakref.WeakKeyDictionary())


def _statement(table: sa.Table, names: tuple[str, ...], where: tuple[str, ...] | None, dialect: sa.Dialect
               ) -> tuple[str, tuple[str, ...]] | None:
    """The INSERT or UPDATE `_driver_executemany` sends, with the order its values go in; None when the
    driver's paramstyle is not one it writes or a name is not a column of the table."""
    mark = _PLACEHOLDER.get(dialect.paramstyle)
    if mark is None or any(n not in table.c for n in names):
        return None
    quote = dialect.identifier_preparer
    target = quote.format_table(table)
    if where is None:
        return (f"INSERT INTO {target} ({', '.join(quote.format_column(table.c[n]) for n in names)}) "
                f"VALUES ({', '.join(mark for _ in names)})"), names
    order = tuple(n for n in names if n not in where) + where
    if len(order) == len(where):
        return "", order
    return (f"UPDATE {target} SET "
            + ", ".join(f"{quote.format_column(table.c[n])} = {mark}" for n in order[: len(order) - len(where)])
            + " WHERE " + " AND ".join(f"{quote.format_column(table.c[n])} = {mark}" for n in where)), order


#: row converters by dialect (each engine has its own, and its types' processors: `projections.sealing`)
_CONVERTERS: weakref.WeakKeyDictionary[sa.Dialect, dict[tuple[sa.Table, tuple[str, ...]],
                                                        Callable[[dict[str, Any]], tuple[Any, ...]]]] = (
    weakref.WeakKeyDictionary())


def _row_converter(table: sa.Table, order: tuple[str, ...], dialect: sa.Dialect
                   ) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function of a row (dict) giving its values in `order`, each through its column type's bind processor
    as SQLAlchemy applies it: compiled once per table, columns and dialect, one expression per column and no loop
    per value (it runs for every row a projection writes)."""
    known = _CONVERTERS.setdefault(dialect, {})
    found = known.get((table, order))
    if found is not None:
        return found
    scope: dict[str, Any] = {"_date": date}
    parts = []
    for i, name in enumerate(order):
        column = table.c[name]
        value = f"r[{name!r}]"
        processor = column.type._cached_bind_processor(dialect)
        if processor is None:
            parts.append(value)
        elif dialect.name == "sqlite" and type(column.type) is sa.Date:
            # SQLite's DATE text is the ISO date: a C method instead of SQLAlchemy's format string
            scope[f"_p{i}"] = processor
            parts.append(f"(None if (v := {value}) is None else v.isoformat() if v.__class__ is _date else _p{i}(v))")
        elif type(column.type) is sa.Boolean:
            # the processor's own answers for True and False, looked up (it is called for anything else)
            scope[f"_p{i}"] = processor
            scope[f"_b{i}"] = {True: processor(True), False: processor(False)}
            parts.append(f"(_b{i}[v] if (v := {value}).__class__ is bool else _p{i}(v))")
        else:
            scope[f"_p{i}"] = processor
            parts.append(f"_p{i}({value})")
    source = f"def convert(r):\n    return ({', '.join(parts)},)\n"
    exec(compile(source, f"<{table.name} row converter>", "exec"), scope)   # the names are our columns'
    known[(table, order)] = converter = scope["convert"]
    return converter
