"""Several connections that read one snapshot of the read models, so that one piece of reading (an inspection of
a county or a province) can be shared out among them and the database works on several statements at once,
while every statement still sees the same rows.

- **PostgreSQL**: the first connection opens a `REPEATABLE READ` transaction and exports its snapshot
  (`pg_export_snapshot()`); the others open theirs on it (`SET TRANSACTION SNAPSHOT`). They see exactly the
  same rows, whatever commits meanwhile.
- **SQLite**: each connection begins a transaction whose first read is the positions every projection has
  reached (`projection_positions`), which fixes what it sees from then on. A projection's rows change only in
  the transaction that moves its position, so connections that read the same positions see the same tables.
  When a write landed between two of them, they all begin again; after `TRIES` such races the first
  connection reads alone (one connection is always one snapshot).

    with snapshot(engine, 2) as seen:
        Inspector(seen.main, policies, day).run(workers=seen.workers)
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from projections.runner import positions

#: how many times SQLite's connections begin again when a write lands while they begin
TRIES = 5
#: the most connections an inspection is shared out among when nothing says how many, and when told
MOST_JOBS, MOST_JOBS_TOLD = 4, 8
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+")


@dataclass(frozen=True)
class Snapshot:
    """The connections (the first, `main`, and the `workers`) and the position each projection had reached in
    what they see."""

    connections: tuple[Connection, ...]
    positions: Mapping[str, int]

    @property
    def main(self) -> Connection:
        return self.connections[0]

    @property
    def workers(self) -> tuple[Connection, ...]:
        return self.connections[1:]


def inspection_jobs(environ: Mapping[str, str] | None = None) -> int:
    """How many connections an inspection of a county or more is shared out among: `CASECORE_INSPECT_JOBS` (1 to
    `MOST_JOBS_TOLD`), else one per core of the machine, at most `MOST_JOBS` (on two cores, two)."""
    env = os.environ if environ is None else environ
    given = env.get("CASECORE_INSPECT_JOBS", "").strip()
    if given:
        try:
            jobs = int(given)
        except ValueError:
            raise ValueError(f"CASECORE_INSPECT_JOBS 须为 1 到 {MOST_JOBS_TOLD} 的整数, 而非 {given!r}") from None
        if not 1 <= jobs <= MOST_JOBS_TOLD:
            raise ValueError(f"CASECORE_INSPECT_JOBS 须为 1 到 {MOST_JOBS_TOLD} 的整数, 而非 {given!r}")
        return jobs
    return max(1, min(MOST_JOBS, os.cpu_count() or 1))


def jobs_for(division: str | None, jobs: int | None = None) -> int:
    """The connections worth opening for an inspection under `division`: every job for a county or more (a
    prefix of at most six digits, or the whole reach), one for a township or a village (a few hundred
    households: opening connections would cost more than it saves)."""
    if division is not None and len(division) > 6:
        return 1
    return inspection_jobs() if jobs is None else jobs


@contextmanager
def snapshot(engine: Engine, count: int) -> Iterator[Snapshot]:
    """`count` connections on `engine` reading one snapshot (see the module); their transactions are rolled back
    and the connections closed on leaving."""
    if count < 1:
        raise ValueError("count must be at least 1")
    with ExitStack() as stack:
        if engine.dialect.name == "postgresql":
            yield _postgres(engine, count, stack)
        else:
            yield _sqlite(engine, count, stack)


def _positions(conn: Connection) -> dict[str, int]:
    return {name: int(pos) for name, pos in conn.execute(sa.select(positions.c.name, positions.c.position))}


def _opened(engine: Engine, stack: ExitStack, isolation: str | None = None) -> Connection:
    conn = stack.enter_context(engine.connect())
    if isolation is not None:
        conn = conn.execution_options(isolation_level=isolation)
    stack.callback(conn.rollback)
    return conn


def _postgres(engine: Engine, count: int, stack: ExitStack) -> Snapshot:
    first = _opened(engine, stack, "REPEATABLE READ")
    snapshot_id = first.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
    if not _SNAPSHOT_ID.fullmatch(snapshot_id):   # it goes into the statement as a literal (no parameters there)
        raise RuntimeError(f"unexpected snapshot id {snapshot_id!r}")
    connections = [first]
    for _ in range(count - 1):
        conn = _opened(engine, stack, "REPEATABLE READ")
        conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot_id}'")
        connections.append(conn)
    return Snapshot(tuple(connections), _positions(first))


def _sqlite(engine: Engine, count: int, stack: ExitStack) -> Snapshot:
    connections = [_opened(engine, stack) for _ in range(count)]
    seen: dict[str, int] = {}
    for _ in range(TRIES):
        seen = _begin(connections[0])
        if all(_begin(conn) == seen for conn in connections[1:]):
            return Snapshot(tuple(connections), seen)
        for conn in connections:
            conn.rollback()
    seen = _begin(connections[0])
    return Snapshot((connections[0],), seen)


def _begin(conn: Connection) -> dict[str, int]:
    """Begin a read transaction on SQLite (the driver begins none before a read, so each statement would see
    the file as it is then) and read the positions, which fixes its snapshot."""
    conn.exec_driver_sql("BEGIN")
    return _positions(conn)
