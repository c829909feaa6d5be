"""The audit survives whatever it finds: any value written into any column of the event, hash or snapshot
tables is named (exit 1, JSON report), never a traceback."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.store.storage import bootstrap
from tests.store.test_audit import history

COLUMNS = {
    "stored_events": ["originator_version", "topic", "state"],
    "event_hashes": ["originator_version", "position", "recorded_at", "prev_hash", "hash"],
    "snapshots": ["originator_version", "topic", "state"],
}
VALUES = st.one_of(st.integers(-3, 40), st.text(max_size=12), st.binary(max_size=12),
                   st.sampled_from(["{}", b"{}", "2023-03-01T00:00:00+00:00", 1.5]))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.sampled_from(sorted(COLUMNS)), st.integers(0, 11), st.data()),
                      min_size=1, max_size=3))
def test_no_value_written_into_any_column_crashes_the_audit(edits):
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "casecore.db")
        application = bootstrap(path)
        try:
            history(application)
            snapshots = application.snapshots.recorder.events_table_name
        finally:
            application.close()
        conn = sqlite3.connect(path)
        try:
            for table, row, data in edits:
                name = snapshots if table == "snapshots" else table
                column = data.draw(st.sampled_from(COLUMNS[table]))
                value = data.draw(VALUES)
                keys = conn.execute(f"SELECT originator_id, originator_version FROM {name} ORDER BY 1, 2").fetchall()
                if not keys:
                    continue
                key = keys[row % len(keys)]
                where = "originator_id = ? AND originator_version = ?"
                try:
                    conn.execute(f"UPDATE {name} SET {column} = ? WHERE {where}", (value, *key))
                except sqlite3.IntegrityError:
                    continue   # a duplicate key: the attacker's write did not happen
            conn.commit()
        finally:
            conn.close()
        result = CliRunner().invoke(cli, ["audit", "verify", "--db", path, "--json"])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code in (0, 1)
        report = orjson.loads(result.stdout)
        assert report["ok"] == (result.exit_code == 0)
