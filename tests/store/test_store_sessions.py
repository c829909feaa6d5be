"""The PostgreSQL event store's connections are set for point lookups: loading a stream must not compile
the query (JIT) or start parallel workers because the planner over-estimated the rows of one stream."""

from __future__ import annotations

import pytest

from adapters.store.storage import bootstrap
from tests.store.test_audit import history


@pytest.mark.postgres
def test_every_connection_of_the_event_store_runs_without_jit_or_parallel_workers(pg_url):
    app = bootstrap(pg_url)
    try:
        history(app)   # the pool has opened its connections and used them
        events, snapshots = app.recorder.datastore, app.snapshots.recorder.datastore
        with events.get_connection() as conn, snapshots.get_connection() as other:
            for c in (conn, other):
                assert c.execute("SHOW jit").fetchone()["jit"] == "off"
                assert c.execute("SHOW max_parallel_workers_per_gather").fetchone()[
                    "max_parallel_workers_per_gather"] == "0"
        assert app.get_household("H1").version == 10
    finally:
        app.close()
