"""A reader with catch-up off, in a process of its own (`python -m tests.readside.bluegreen_reader URL OUT
STOP`): it reads the projection tables as they stand, over and over, and writes one JSON line a read — whether
a rebuild was under way, and a digest of the roster, the ledgers, the activity table and every household's
timeline — until the file STOP exists."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from typing import Any

import sqlalchemy as sa

from adapters.readside.readmodels import engine_for
from adapters.store.storage import resolve_store

#: table → the columns it is ordered by (every row, in a stable order)
TABLES = {"roster": "household_id", "roster_members": "household_id, person_id", "problem_ledger": "problem_id",
          "activity": "position", "activity_households": "household_id", "timeline_events": "position"}


def read(conn: sa.Connection) -> dict[str, Any]:
    """One read: the rebuilds under way, each table's row count and digest, each household's timeline."""
    under_way = conn.execute(sa.text(
        "SELECT count(*) FROM projection_positions WHERE name LIKE '%\\_\\_next' ESCAPE '\\'")).scalar()
    out: dict[str, Any] = {"rebuilding": int(under_way or 0)}
    for table, order in TABLES.items():
        rows = conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}")).all()
        out[table] = [len(rows), hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()]
    timelines: dict[str, list[int]] = {}
    for stream, position in conn.execute(sa.text(
            "SELECT stream_id, position FROM timeline_events WHERE aggregate = 'household' ORDER BY position")):
        timelines.setdefault(stream, []).append(int(position))
    out["timelines"] = timelines
    return out


def main(url: str, out_path: str, stop_path: str) -> None:
    engine = engine_for(resolve_store(url))
    try:
        with open(out_path, "w", encoding="utf-8") as out:
            while not os.path.exists(stop_path):
                with engine.connect() as conn:
                    line = read(conn)
                out.write(json.dumps(line) + "\n")
                out.flush()
                time.sleep(0.01)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:4])
