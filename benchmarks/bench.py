"""The measuring stick: the engine against the bare database, in one run on one machine.

A synthetic province (`benchmarks.province`) goes in through the bulk path; the same stored rows then go
into a table of the same shape with the raw driver; then the log is read raw, every projection is rebuilt,
~50-event households are loaded, and the inspector runs every rule:

| key | what |
|---|---|
| `floor_write_eps` | raw driver inserts of the stored rows into a table of the same shape, in transactions of |
|                   | the bulk path's size |
| `ingest_eps` | events stored per second the way `casecore apply` stores them: JSON lines parsed, commands |
|              | decided (validation and guards), saved a batch a transaction |
| `floor_read_eps` | raw select of every event row (pages of the runner's batch size), payload decoded |
| `rebuild_eps` | events per second of a full rebuild of every projection of the registry |
| `rebuild_copy_eps` | events per second of a rebuild of the copy-like projections alone (timeline, activity: |
|                    | in SQL where the store allows, `rebuild_in_database` names them) |
| `replay_p50_ms`, `replay_p99_ms` | loading one household of about 50 events |
| `inspect_households_per_s` | a full inspection, all rules, shared out among one snapshot's connections (one a |
|                            | core, at most four: `inspect_jobs`) as `casecore inspect` runs it |
| `peak_rss_mb` | peak resident memory of the process |

plus `households`, `events`, `store`, `ingest_ratio` (ingest / floor write), `rebuild_ratio` (rebuild /
floor read), `rebuild_ratio_copy` (the copy-like rebuild / floor read) and details (per-projection
rebuild seconds, each phase's peak memory, refusals, findings; on PostgreSQL the server's version and
`schema`, the name of the run's own schema).

The store is always fresh: a new SQLite file (in a temporary directory unless `--db` names a file that
does not exist yet) or a new schema in the given PostgreSQL database, dropped afterwards unless `--keep`.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

from adapters.readside.parallel import rebuild as rebuild_parallel
from adapters.readside.parallel import timed_fold
from adapters.readside.snapshot import inspection_jobs
from adapters.readside.snapshot import snapshot as shared_snapshot
from adapters.store.storage import Store, bootstrap, resolve_store
from projections.runner import Projection

#: the benchmark's goals (docs/benchmarks.md): key → (comparison, figure)
TARGETS: dict[str, tuple[str, float]] = {
    "ingest_ratio": (">=", 0.5),
    "rebuild_ratio": (">=", 0.2),
    "rebuild_ratio_copy": (">=", 0.5),
    "replay_p50_ms": ("<=", 1.0),
    "inspect_households_per_s": (">=", 60_000),
    "read_roster_village_p95_ms": ("<=", 20.0),
    "read_findings_county_page_p95_ms": ("<=", 20.0),
    "read_timeline_p95_ms": ("<=", 20.0),
}
#: reads timed per kind (a village's roster, a county's first page of stored findings, a household's timeline)
READ_SAMPLES = 200
FINDINGS_PAGE = 50
INSPECT_AS_OF = date(2024, 1, 1)
REPLAY_EVENTS = (45, 55)


# ---------------------------------------------------------------------------------------------- memory


def _peak_kb() -> int:
    """The process's peak resident set since the last reset (VmHWM), in kB."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs), so each phase gets its own peak."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


@dataclass
class Phases:
    """Wall-clock seconds and peak memory (MB) of each phase."""

    seconds: dict[str, float] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        gc.collect()
        _reset_peak()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - started, 3)
            self.rss_mb[name] = round(_peak_kb() / 1024, 1)


# ---------------------------------------------------------------------------------------------- the store


@dataclass
class BenchStore:
    """A fresh store for one run, and how to clean it up."""

    url: str
    store: Store
    workdir: Path | None
    schema: str | None
    admin_url: str | None

    def cleanup(self) -> None:
        if self.schema and self.admin_url:
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def fresh_store(db: str | None, workdir: Path | None = None) -> BenchStore:
    """A new empty store: a SQLite file (temporary unless `db` names a new file) or a new PostgreSQL schema."""
    if db and db.startswith(("postgresql://", "postgres://")):
        import psycopg

        base = db.split("?", 1)[0]
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        url = f"{base}?schema={schema}"
        return BenchStore(url, resolve_store(url), None, schema, base)
    if db:
        path = Path(db.removeprefix("sqlite:///")).expanduser()
        if path.exists() and path.stat().st_size > 0:
            raise FileExistsError(f"{path} 已存在; 基准测试需要一个新的空库 (give a new file, or no --db)")
        return BenchStore(str(path), resolve_store(str(path)), None, None, None)
    tmp = Path(tempfile.mkdtemp(prefix="casecore-bench-", dir=workdir))
    path = tmp / "bench.db"
    return BenchStore(str(path), resolve_store(str(path)), tmp, None, None)


# ---------------------------------------------------------------------------------------------- raw floor


class Floor:
    """The bare driver on the same database: raw inserts into a table shaped like the events table, raw
    reads of the events table."""

    def __init__(self, bench: BenchStore, events_table: str):
        self.bench = bench
        self.kind = bench.store.kind
        self.events_table = events_table

    # --- rows as stored, in log order, in pages

    def pages(self, size: int) -> Iterator[list[tuple[Any, ...]]]:
        """(position, stream, version, topic, state) pages of the stored log, keyset-paged like the runner."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.bench.store.env["SQLITE_DBNAME"])
            try:
                last = 0
                while True:
                    rows = conn.execute(
                        f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table} "
                        "WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, size)).fetchall()
                    if not rows:
                        return
                    last = rows[-1][0]
                    yield rows
            finally:
                conn.close()
        else:
            import psycopg

            schema = self.bench.schema
            with psycopg.connect(self.bench.admin_url) as conn:
                last = 0
                while True:
                    rows = conn.execute(
                        f'SELECT notification_id, originator_id, originator_version, topic, state '
                        f'FROM "{schema}".{self.events_table} WHERE notification_id > %s '
                        "ORDER BY notification_id LIMIT %s", (last, size)).fetchall()
                    conn.rollback()
                    if not rows:
                        return
                    last = rows[-1][0]
                    yield rows

    def read(self, size: int) -> tuple[int, float]:
        """Select every row and decode its payload; returns (rows, seconds)."""
        loads = orjson.loads
        n = 0
        started = time.perf_counter()
        for rows in self.pages(size):
            for row in rows:
                loads(row[4])
            n += len(rows)
        return n, time.perf_counter() - started

    def write(self, per_transaction: int) -> tuple[int, float]:
        """Insert every stored row again into a fresh table of the same shape, `per_transaction` rows a
        transaction; returns (rows, seconds spent inserting and committing)."""
        if self.kind == "sqlite":
            return self._write_sqlite(per_transaction)
        return self._write_postgres(per_transaction)

    def _write_sqlite(self, per_transaction: int) -> tuple[int, float]:
        path = Path(self.bench.store.env["SQLITE_DBNAME"])
        floor_path = path.with_name(path.stem + "-floor.db")
        for suffix in ("", "-wal", "-shm"):
            Path(str(floor_path) + suffix).unlink(missing_ok=True)
        conn = sqlite3.connect(floor_path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")   # as the library's datastore sets it
            conn.execute("CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, "
                         "state BLOB, PRIMARY KEY (originator_id, originator_version))")
            n, spent = 0, 0.0
            for rows in self.pages(per_transaction):
                batch = [r[1:] for r in rows]
                started = time.perf_counter()
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO stored_events VALUES (?,?,?,?)", batch)
                conn.execute("COMMIT")
                spent += time.perf_counter() - started
                n += len(batch)
            return n, spent
        finally:
            conn.close()
            for suffix in ("", "-wal", "-shm"):
                Path(str(floor_path) + suffix).unlink(missing_ok=True)

    def _write_postgres(self, per_transaction: int) -> tuple[int, float]:
        import psycopg

        schema = self.bench.schema
        table = f'"{schema}".floor_events'
        with psycopg.connect(self.bench.admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {table} (originator_id text NOT NULL, originator_version bigint NOT NULL, "
                         "topic text, state bytea, notification_id bigserial, "
                         "PRIMARY KEY (originator_id, originator_version))")
            conn.execute(f"CREATE UNIQUE INDEX ON {table} (notification_id)")
            n, spent = 0, 0.0
            insert = f"INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES (%s,%s,%s,%s)"
            for rows in self.pages(per_transaction):
                batch = [r[1:] for r in rows]
                started = time.perf_counter()
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(insert, batch)
                spent += time.perf_counter() - started
                n += len(batch)
            conn.execute(f"DROP TABLE {table}")
        return n, spent


# ---------------------------------------------------------------------------------------------- the run


@contextmanager
def _generated(counties: list[tuple[str, int, float]]) -> Iterator[Iterator[bytes]]:
    """Each county's JSON Lines, generated one county ahead in another process (generating is not what is
    measured; on two cores it then costs no wall-clock time)."""
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    from benchmarks.province import county_lines

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = iter(counties)
        ahead: deque[Any] = deque()

        def submit() -> None:
            nxt = next(pending, None)
            if nxt is not None:
                ahead.append(pool.submit(county_lines, *nxt))

        def files() -> Iterator[bytes]:
            submit()
            submit()
            while ahead:
                blob = ahead.popleft().result()
                submit()
                yield blob

        yield files()


def _on_business_day(cmd: Any) -> datetime:
    return datetime.combine(cmd.on, dtime(2, 0), UTC)


def _p95(timings: list[float]) -> float | None:
    timings = sorted(timings)
    return round(timings[min(len(timings) - 1, int(len(timings) * 0.95))], 3) if timings else None


def _reads(app: Any, households: list[str]) -> dict[str, Any]:
    """p95 (ms) of the reads a cadre waits for, on the read models as they stand: a village's roster, a
    county's first page of stored findings (the run stored first, timed too), a household's timeline."""
    import random

    from adapters.readside.readmodels import read_models
    from casecore.streams import household_id_of
    from projections import findings_store
    from projections.roster import monitored_roster, roster
    from projections.timeline import stream_history

    out: dict[str, Any] = {}
    with read_models(app, []) as rm:
        with shared_snapshot(rm.engine, inspection_jobs()) as seen, rm.engine.begin() as conn:
            findings_store.create(conn)
            started = time.perf_counter()
            findings_store.store_run(conn, app.policies, INSPECT_AS_OF, 0, rm.runner.max_position(),
                                     seen.connections)
            out["findings_store_seconds"] = round(time.perf_counter() - started, 3)
        with rm.engine.connect() as conn:
            villages = sorted(set(conn.execute(sa.select(roster.c.division_code).distinct()).scalars()))
            rng = random.Random(7)
            picked = rng.sample(villages, min(READ_SAMPLES, len(villages)))
            counties = sorted({v[:6] for v in villages})
            streams = [household_id_of(s) for s in households][:READ_SAMPLES]
            kinds: dict[str, tuple[list[Any], Callable[[Any], Any]]] = {
                "read_roster_village": (picked, lambda v: monitored_roster(conn, v)),
                "read_findings_county_page": ([counties[i % len(counties)] for i in range(READ_SAMPLES)],
                                              lambda c: findings_store.read(conn, INSPECT_AS_OF, c,
                                                                            limit=FINDINGS_PAGE)),
                "read_timeline": (streams, lambda h: stream_history(app, h)),
            }
            for key, (args, read) in kinds.items():
                for a in args[:10]:   # warm the code paths and the cache
                    read(a)
                timings = []
                for a in args:
                    started = time.perf_counter()
                    read(a)
                    timings.append((time.perf_counter() - started) * 1000)
                out[f"{key}_p95_ms"] = _p95(timings)
                out[f"{key}_samples"] = len(timings)
    return out


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def _events_table(app: Any) -> str:
    return app.recorder.events_table_name


def _replay_sample(bench: BenchStore, table: str, limit: int) -> list[str]:
    """Households with about 50 events, spread over the log."""
    low, high = REPLAY_EVENTS
    sql = (f"SELECT originator_id FROM {{t}} WHERE originator_id LIKE 'household/%' GROUP BY originator_id "
           f"HAVING COUNT(*) BETWEEN {low} AND {high} ORDER BY originator_id")
    if bench.store.kind == "sqlite":
        conn = sqlite3.connect(bench.store.env["SQLITE_DBNAME"])
        try:
            ids = [r[0] for r in conn.execute(sql.format(t=table))]
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(bench.admin_url) as conn:
            ids = [r[0] for r in conn.execute(sql.format(t=f'"{bench.schema}".{table}'))]
    step = max(1, len(ids) // limit)
    return ids[::step][:limit]


#: the projections that are copies or near-copies of the log (rebuilt in SQL where the store allows)
COPY_LIKE = ("timeline", "activity")


def run(households: int, db: str | None = None, seed: int = 7, batch_size: int = 500, replay_samples: int = 300,
        keep: bool = False, workdir: Path | None = None, rebuild_batch: int = 10_000, rebuild_jobs: int = 1,
        progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Run every measurement once on a fresh store; returns the result object (see the module docstring)."""
    from adapters.integration.intake import parse_line
    from adapters.readside.readmodels import read_models
    from benchmarks.province import plan
    from projections.queries.inspector import Inspector

    say = progress or (lambda phase, done, total: None)
    bench = fresh_store(db, workdir)
    phases = Phases()
    app = bootstrap(bench.url)
    # a simulated province: each act is recorded on its business date (10:00 China time), as it would have
    # been live — with the system clock every act would be years back-dated to the inspector
    app.recording_clock = _on_business_day
    result: dict[str, Any] = {}
    try:
        # ------------------------------------------------------------ ingest through the bulk path
        events = commands = refused = batches = 0
        ingest_seconds = 0.0
        refusals: dict[str, int] = {}
        with phases.phase("ingest"), _generated(plan(households, seed)) as files:
            for blob in files:
                lines = blob.decode().splitlines()   # what a county's file holds
                del blob
                started = time.perf_counter()
                parsed = [parse_line(line) for line in lines]
                for outcome in app.handle_many(parsed, batch_size=batch_size):
                    if outcome.ok:
                        events += len(outcome.events)
                    else:
                        refused += 1
                        key = outcome.error.rule or outcome.error.code  # type: ignore[union-attr]
                        refusals[key] = refusals.get(key, 0) + 1
                ingest_seconds += time.perf_counter() - started
                commands += len(lines)
                batches += -(-len(lines) // batch_size)
                say("ingest", commands, 0)
                del lines, parsed
        table = _events_table(app)
        per_transaction = max(1, round(events / max(1, batches)))
        floor = Floor(bench, table)

        # ------------------------------------------------------------ the raw floor: write, then read
        with phases.phase("floor_write"):
            floor_rows, floor_write_seconds = floor.write(per_transaction)
        with phases.phase("floor_read"):
            read_rows, floor_read_seconds = floor.read(2000)

        # ------------------------------------------------------------ rebuild every projection
        fold_seconds: dict[str, float] = {}
        with phases.phase("rebuild"), read_models(app, batch_size=rebuild_batch) as rm:
            for p in rm.runner.projections:
                p.fold_at = timed_fold(p.fold_at, fold_seconds, p.name)  # type: ignore[method-assign]
                p.rebuild_in_database = timed_fold(p.rebuild_in_database, fold_seconds,  # type: ignore[method-assign]
                                                   p.name)
            started = time.perf_counter()
            rm.runner.rebuild_many(progress=lambda p, pos, head: say(f"rebuild {p.name}", pos, head))
            rebuild_seconds = time.perf_counter() - started
            rebuild_by = {k: round(v, 3) for k, v in fold_seconds.items()}
            # the copy-like projections alone (`projections/in_database.py`: in SQL where the store allows)
            copies = [p for p in rm.runner.projections if p.name in COPY_LIKE]
            with phases.phase("rebuild_copy"):
                started = time.perf_counter()
                rm.runner.rebuild_many(copies)
                rebuild_copy_seconds = time.perf_counter() - started
            in_sql = sorted(p.name for p in copies if p.name not in rm.runner.not_in_database
                            and type(p).rebuild_in_database is not Projection.rebuild_in_database)
        parallel: dict[str, Any] = {}
        if rebuild_jobs > 1:   # the same rebuild again, in processes (`projections rebuild --jobs N`)
            from projections.registry import names

            with phases.phase("rebuild_parallel"):
                started = time.perf_counter()
                done = rebuild_parallel(bench.url, names(), rebuild_jobs, rebuild_batch, restart=True,
                                        progress=lambda name, pos, head: say(f"rebuild {name}", pos, head))
                seconds = time.perf_counter() - started
            parallel = {"rebuild_jobs": rebuild_jobs, "rebuild_parallel_eps": round(events / seconds),
                        "rebuild_parallel_ratio": None, "rebuild_parallel_groups": done.groups,
                        "rebuild_parallel_rss_mb": done.peak_rss_mb}

        # ------------------------------------------------------------ replay one ~50-event household
        sample = _replay_sample(bench, table, replay_samples)
        timings: list[float] = []
        replayed_events = events_read = 0
        with phases.phase("replay"):
            for stream in sample[:10]:   # warm the code paths
                app.repository.get(stream)
            for stream in sample:
                started = time.perf_counter()
                aggregate = app.repository.get(stream)
                timings.append((time.perf_counter() - started) * 1000)
                replayed_events += aggregate.version
            for stream in sample:   # not timed: how many event rows each load read after its snapshot
                snapshot = next(iter(app.snapshots.get(stream, desc=True, limit=1)), None) if app.snapshots else None
                events_read += app.repository.get(stream).version - (snapshot.originator_version if snapshot else 0)
        timings.sort()

        # ------------------------------------------------------------ inspect, every rule
        # as `casecore inspect` runs it: shared out among one snapshot's connections, one per core
        with phases.phase("inspect"), read_models(app, []) as rm:
            started = time.perf_counter()
            with shared_snapshot(rm.engine, inspection_jobs()) as seen:
                findings = Inspector(seen.main, app.policies, INSPECT_AS_OF).run(None, seen.workers)
                inspect_jobs = len(seen.connections)
            inspect_seconds = time.perf_counter() - started
        found = len(findings)
        del findings

        # ------------------------------------------------------------ reads a cadre waits for
        with phases.phase("reads"):
            reads = _reads(app, sample)

        floor_write_eps = floor_rows / floor_write_seconds if floor_write_seconds else 0.0
        ingest_eps = events / ingest_seconds if ingest_seconds else 0.0
        floor_read_eps = read_rows / floor_read_seconds if floor_read_seconds else 0.0
        rebuild_eps = events / rebuild_seconds if rebuild_seconds else 0.0
        result = {
            "households": households,
            "events": events,
            "store": bench.store.kind,
            "floor_write_eps": round(floor_write_eps),
            "ingest_eps": round(ingest_eps),
            "ingest_ratio": _ratio(ingest_eps, floor_write_eps),
            "floor_read_eps": round(floor_read_eps),
            "rebuild_eps": round(rebuild_eps),
            "rebuild_ratio": _ratio(rebuild_eps, floor_read_eps),
            "rebuild_copy_eps": round(events / rebuild_copy_seconds) if rebuild_copy_seconds else 0,
            "rebuild_ratio_copy": _ratio(events / rebuild_copy_seconds if rebuild_copy_seconds else 0.0,
                                         floor_read_eps),
            "rebuild_in_database": in_sql,
            **parallel,
            "replay_p50_ms": round(statistics.median(timings), 3) if timings else None,
            "replay_p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 3) if timings else None,
            "inspect_households_per_s": round(households / inspect_seconds) if inspect_seconds else 0,
            "inspect_jobs": inspect_jobs,
            **reads,
            # each phase resets the kernel's high-water mark, so the process peak is the highest phase peak
            "peak_rss_mb": max([*phases.rss_mb.values(),
                                round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)]),
            # details
            "commands": commands,
            "refused": refused,
            "refusals": refusals,
            "events_per_household": round(events / max(1, households), 1),
            "batch_size": batch_size,
            "rebuild_batch": rebuild_batch,
            "events_per_transaction": per_transaction,
            "replay_households": len(timings),
            "replay_events_mean": round(replayed_events / len(timings), 1) if timings else None,
            # snapshots (casecore/snapshots.py): loading reads the newest one and the events after it
            "snapshot_interval": app.snapshot_interval,
            "replay_events_read_mean": round(events_read / len(timings), 1) if timings else None,
            "findings": found,
            "rebuild_seconds": round(rebuild_seconds, 3),
            "rebuild_copy_seconds": round(rebuild_copy_seconds, 3),
            "fold_seconds": rebuild_by,
            "phase_seconds": phases.seconds | {"ingest_timed": round(ingest_seconds, 3),
                                               "floor_write_timed": round(floor_write_seconds, 3),
                                               "inspect_timed": round(inspect_seconds, 3)},
            "phase_rss_mb": phases.rss_mb,
            "seed": seed,
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
        }
        if parallel:
            result["rebuild_parallel_ratio"] = _ratio(parallel["rebuild_parallel_eps"], floor_read_eps)
        if bench.store.kind == "postgres":
            import psycopg

            with psycopg.connect(bench.admin_url) as conn:
                result["postgres"] = conn.execute("SHOW server_version").fetchone()[0]
                result["postgres_autovacuum"] = conn.execute("SHOW autovacuum").fetchone()[0]
            result["schema"] = bench.schema   # the run's own schema: dropped afterwards unless `keep`
        if keep:
            result["db"] = bench.url
        return result
    finally:
        app.close()
        if not keep:
            bench.cleanup()


def meets(key: str, value: float | None) -> bool | None:
    """Whether a figure meets its target (None: no target)."""
    target = TARGETS.get(key)
    if target is None or value is None:
        return None
    op, figure = target
    return value >= figure if op == ">=" else value <= figure


def as_json(result: dict[str, Any]) -> str:
    return orjson.dumps(result).decode()
