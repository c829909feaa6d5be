"""Blue/green rebuilds, with real processes on both stores: while `casecore projections rebuild` runs in its
own process, readers in processes of their own, catch-up off, read the projection tables over and over and
see the old complete tables until the switch and the new ones after — never empty, partial or earlier ones:
the same counts, the same rows and every household's timeline on every read. Two rebuilds of one projection
at once are refused; the rebuild leaves no shadow tables behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from adapters.readside.readmodels import read_models
from adapters.store.storage import bootstrap
from projections.registry import all_projections
from projections.runner import ProjectionRunner, RebuildRunning
from tests.readside.bluegreen_reader import read
from tests.readside.test_rebuild_crash import HOUSEHOLDS, county

READERS = 2


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from adapters.cli import main; main()", *args]


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_readers_with_catch_up_off_see_the_same_complete_tables_throughout_a_rebuild(db_url, tmp_path):
    app = bootstrap(db_url)
    try:
        county(app)
        with read_models(app) as rm:
            rm.catch_up()
            with rm.engine.connect() as conn:
                before = read(conn)
            head = rm.runner.max_position()
    finally:
        app.close()
    assert before["rebuilding"] == 0 and len(before["timelines"]) == HOUSEHOLDS

    stop = tmp_path / "stop"
    outs = [tmp_path / f"reader{i}.jsonl" for i in range(READERS)]
    env = {**os.environ, "COLUMNS": "100"}
    readers = [subprocess.Popen([sys.executable, "-m", "tests.readside.bluegreen_reader", db_url, str(out),
                                 str(stop)], stderr=subprocess.PIPE, env=env) for out in outs]
    try:
        deadline = time.monotonic() + 60
        while not all(o.exists() and o.stat().st_size for o in outs):
            assert all(r.poll() is None for r in readers), [r.stderr.read() for r in readers if r.stderr]
            assert time.monotonic() < deadline, "the readers never read"
            time.sleep(0.05)
        rebuild = subprocess.run(_cli("projections", "rebuild", "--batch-size", "25", "--db", db_url),
                                 capture_output=True, text=True, env=env, timeout=600)
        assert rebuild.returncode == 0, rebuild.stderr
        time.sleep(0.5)   # a few reads of the switched tables
    finally:
        stop.touch()
        for r in readers:
            r.wait(60)
    assert [r.returncode for r in readers] == [0] * READERS, [r.stderr.read() for r in readers if r.stderr]

    for out in outs:
        lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        during = [ln for ln in lines if ln["rebuilding"]]
        assert during, "no read happened while the rebuild was under way"
        assert lines[-1]["rebuilding"] == 0, "no read after the switch"
        for n, line in enumerate(lines):
            assert {k: v for k, v in line.items() if k != "rebuilding"} == \
                {k: v for k, v in before.items() if k != "rebuilding"}, f"read {n} of {out.name} differs"

    app = bootstrap(db_url)
    try:
        with read_models(app) as rm:
            assert all(not s.rebuilding and s.position == head and s.rebuild_position is None
                       for s in rm.runner.status())
            assert not {t for t in _tables(rm.engine) if t.endswith("__next")}, "shadow tables left behind"
            with rm.engine.connect() as conn:
                assert read(conn) == before
            # and the switched tables take a further rebuild (their index names alternate)
            rm.runner.rebuild_many()
            with rm.engine.connect() as conn:
                assert read(conn) == before
    finally:
        app.close()


def test_a_second_rebuild_of_a_projection_is_refused_while_one_runs(db_url, tmp_path):
    app = bootstrap(db_url)
    try:
        county(app)
        with read_models(app) as rm, read_models(app) as other:
            roster = rm.runner.get("roster")
            rm.runner.rebuild(roster, stop_after_batches=1)   # interrupted: resumable by anyone
            with rm.runner._rebuild_locks([roster]):          # as a rebuild under way holds it
                with pytest.raises(RebuildRunning, match="roster"):
                    other.runner.rebuild(other.runner.get("roster"))
                with pytest.raises(RebuildRunning, match="roster"):
                    other.runner.rebuild_many()
                refused = subprocess.run(_cli("projections", "rebuild", "-p", "roster", "--db", db_url),
                                         capture_output=True, text=True, timeout=300,
                                         env={**os.environ, "COLUMNS": "200"})
                assert refused.returncode == 2
                assert "正由另一进程重建" in refused.stderr
                # another projection's rebuild goes ahead meanwhile
                other.runner.rebuild(other.runner.get("ledger"))
            assert other.runner.rebuild(other.runner.get("roster")) > 0   # resumed once the first let go
            assert not other.runner.is_rebuilding(other.runner.get("roster"))
    finally:
        app.close()


def test_a_catch_up_of_a_projection_whose_tables_changed_shape_leaves_it_to_the_rebuild_under_way(db_url):
    app = bootstrap(db_url)
    try:
        county(app)
        with read_models(app) as rm:
            rm.catch_up()
            roster = rm.runner.get("roster")
            other = ProjectionRunner(app, rm.engine, all_projections())
            other.stale.add("roster")   # as if its tables had changed in code
            with rm.runner._rebuild_locks([roster]):
                assert other.catch_up(other.get("roster")) == 0   # the rebuilding process has it
    finally:
        app.close()
