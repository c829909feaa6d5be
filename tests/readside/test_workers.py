"""Projection workers as real processes against the real PostgreSQL: two workers on different projections
follow the log side by side while events are committed; one is killed with SIGKILL mid-run and restarted,
and continues exactly where it stopped — it folds precisely the events above its saved position, and the
tables equal a rebuild from scratch; SIGTERM and SIGINT stop a worker gracefully with status 0."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from adapters.integration.intake import parse_object
from adapters.readside.readmodels import read_models
from adapters.store.storage import bootstrap, resolve_store
from benchmarks.province import counties
from projections.registry import by_name
from projections.timeline import KEPT_TOPICS

pytestmark = pytest.mark.postgres


def start(url: str, projection: str, log: Path, batch: int = 40) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from adapters.cli import main; main()", "projections", "run", "--projection",
         projection, "--poll", "0.1", "--batch-size", str(batch), "--db", url],
        stdout=subprocess.DEVNULL, stderr=log.open("w"),
    )


class Store:
    """Reads positions and counts straight from the schema the test's store lives in."""

    def __init__(self, url: str):
        self.schema = resolve_store(url).env["POSTGRES_SCHEMA"]
        self.conn = psycopg.connect(url.split("?")[0], autocommit=True)

    def position(self, name: str) -> int:
        try:
            row = self.conn.execute(f'SELECT position FROM "{self.schema}".projection_positions WHERE name = %s',
                                    (name,)).fetchone()
        except psycopg.errors.UndefinedTable:
            return 0
        return row[0] if row else 0

    def head(self) -> int:
        return self.conn.execute(f'SELECT coalesce(max(notification_id), 0) FROM "{self.schema}".casecore_events'
                                 ).fetchone()[0]

    def household_events(self) -> int:
        return self.conn.execute(f'SELECT count(*) FROM "{self.schema}".casecore_events '
                                 "WHERE originator_id LIKE 'household/%%'").fetchone()[0]

    def events_above(self, position: int, topics: Sequence[str] = ()) -> int:
        """Events stored above `position` (of `topics`, when given)."""
        return self.conn.execute(f'SELECT count(*) FROM "{self.schema}".casecore_events WHERE notification_id > %s '
                                 "AND (cardinality(%s::text[]) = 0 OR topic = ANY(%s))",
                                 (position, list(topics), list(topics))).fetchone()[0]


def write(app, commands: list[dict], per_batch: int = 150) -> None:
    for i in range(0, len(commands), per_batch):
        outcomes = list(app.handle_many([parse_object(c) for c in commands[i:i + per_batch]], batch_size=per_batch))
        assert all(o.ok for o in outcomes)


def wait_for(condition, seconds: float, workers: list[subprocess.Popen], what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        for w in workers:
            assert w.poll() is None, f"a worker died while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def dump(engine, name: str) -> dict[str, list]:
    out = {}
    with engine.connect() as conn:
        for t in by_name(name).metadata.sorted_tables:
            out[t.name] = sorted(tuple(str(v) for v in row) for row in conn.execute(sa.select(*t.columns)))
    return out


def folded_total(log: Path) -> int:
    """What a worker says it folded in all (its last line)."""
    found = re.findall(r"共折叠 (\d+) 个事件", log.read_text())
    assert found, log.read_text()[-2000:]
    return int(found[-1])


def test_workers_follow_side_by_side_and_a_killed_worker_restarts_where_it_stopped(pg_url, tmp_path):
    chunks = [cmds for _, _, cmds in counties(360, seed=21)]
    commands = [c for chunk in chunks for c in chunk]
    third = len(commands) // 3
    app = bootstrap(pg_url)
    store = Store(pg_url)
    workers: list[subprocess.Popen] = []
    try:
        write(app, commands[:2 * third])   # a backlog of some 150 batches
        timeline = start(pg_url, "timeline", tmp_path / "timeline-1.log")
        roster = start(pg_url, "roster", tmp_path / "roster.log")
        workers = [timeline, roster]

        # kill the timeline worker in the middle of its work
        wait_for(lambda: store.position("timeline") > 0, 60, workers, "the timeline worker to fold")
        assert store.position("timeline") < store.head()
        timeline.send_signal(signal.SIGKILL)
        assert timeline.wait(10) == -signal.SIGKILL
        stopped_at = store.position("timeline")
        assert 0 < stopped_at < store.head()

        # restarted, it goes on while more events are committed
        timeline = start(pg_url, "timeline", tmp_path / "timeline-2.log")
        workers = [timeline, roster]
        write(app, commands[2 * third:])
        head = store.head()
        wait_for(lambda: store.position("timeline") == head and store.position("roster") == head, 120, workers,
                 "both workers to reach the head")

        # graceful stops
        timeline.send_signal(signal.SIGTERM)
        roster.send_signal(signal.SIGINT)
        assert timeline.wait(30) == 0
        assert roster.wait(30) == 0
        # the restarted worker folded exactly the events above the position the killed one had saved (of the
        # topics the timeline reads)
        assert folded_total(tmp_path / "timeline-2.log") == store.events_above(stopped_at, KEPT_TOPICS)
        assert folded_total(tmp_path / "roster.log") == store.household_events()   # the roster reads only those

        # and the tables are what a rebuild from scratch gives: nothing folded twice, nothing missed
        with read_models(app, [by_name("timeline"), by_name("roster")]) as rm:
            followed = {name: dump(rm.engine, name) for name in ("timeline", "roster")}
            with rm.engine.connect() as conn:
                positions = [r[0] for r in conn.execute(sa.text("SELECT position FROM timeline_events"))]
            assert len(positions) == len(set(positions)) > 0
            rm.runner.rebuild_many()
            rebuilt = {name: dump(rm.engine, name) for name in ("timeline", "roster")}
        assert followed == rebuilt
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        store.conn.close()
        app.close()


def test_a_stopped_worker_with_nothing_to_do_exits_promptly_on_sigterm(pg_url, tmp_path):
    app = bootstrap(pg_url)
    write(app, [c for _, _, cmds in counties(20, seed=3) for c in cmds])
    store = Store(pg_url)
    worker = start(pg_url, "casefacts", tmp_path / "casefacts.log", batch=500)
    try:
        head = store.head()
        wait_for(lambda: store.position("casefacts") == head, 60, [worker], "the worker to catch up")
        time.sleep(0.5)   # idle, waiting on the store's notifications
        asked = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(10) == 0
        assert time.monotonic() - asked < 3
        assert "已停止" in (tmp_path / "casefacts.log").read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        store.conn.close()
        app.close()
