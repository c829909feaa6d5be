"""A rebuild killed mid-way (SIGKILL of the `casecore projections rebuild` process, in the middle of its
batches) continues on rerun from its last committed batch, and the tables end exactly as a clean rebuild
leaves them: nothing lost, nothing counted twice. The roster is stream-local, so its rebuild fills the shadow
stream by stream: the fill's cursor (the last household folded whole) is what a rerun goes on from."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta

import pytest

from adapters.readside.readmodels import engine_for, store_of
from adapters.store.storage import bootstrap
from casecore.streams import HOUSEHOLD_PREFIX
from projections.roster import RosterProjection
from projections.runner import ProjectionRunner
from tests.builders import cmd, inclusion_path, measure, register
from tests.readside.test_roster_projection import snapshot

HOUSEHOLDS = 200


def county(app) -> int:
    """Households registered and included, most with a cadre and a measure or two: about 13 events each."""
    cmds = []
    for i in range(HOUSEHOLDS):
        hid = f"K{i:04d}"
        start = date(2023, 3, 1) + timedelta(days=i % 20)
        cmds += [register(hid), *inclusion_path(hid, start=start)]
        entered = start + timedelta(days=11)
        cmds.append(cmd("assign_cadre", entered, household_id=hid, cadre={"id": f"c{i % 7}", "name": "干部",
                                                                             "unit": "522631101000"}))
        cmds += measure(hid, f"{hid}-M1", entered, entered + timedelta(days=3 + i % 9))
        if i % 3 == 0:
            cmds += measure(hid, f"{hid}-M2", entered + timedelta(days=1), measure_type="social")
    outcomes = list(app.handle_many(cmds, batch_size=500))
    assert all(o.ok for o in outcomes)
    return sum(len(o.events) for o in outcomes)


def position_row(path: str) -> tuple[int, int] | None:
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            # the rebuild's own row: it builds shadow tables beside the live ones
            row = conn.execute("select position, rebuilding from projection_positions where name='roster__next'"
                               ).fetchone()
        except sqlite3.OperationalError:  # the table is not there yet
            return None
    return row


def fill_row(path: str) -> tuple[int, str] | None:
    """The roster rebuild's fill: (the head it fills up to, the last stream folded whole)."""
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            return conn.execute("select head, after_stream from projection_fills where name='roster__next'"
                                ).fetchone()
        except sqlite3.OperationalError:  # the table is not there yet
            return None


def test_a_rebuild_killed_mid_way_continues_on_rerun_and_ends_as_a_clean_rebuild(tmp_path):
    path = str(tmp_path / "county.db")
    app = bootstrap(path)
    engine = engine_for(store_of(app))
    try:
        stored = county(app)
        runner = ProjectionRunner(app, engine, [RosterProjection()], batch_size=500)
        p = runner.projections[0]
        runner.catch_up(p)  # an up-to-date roster, which the rebuild then replaces
        head = runner.max_position()

        child = subprocess.Popen(
            [sys.executable, "-c", "from adapters.cli import main; main()", "projections", "rebuild",
             "--projection", "roster", "--batch-size", "10", "--db", path],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "100"},
        )
        deadline = time.monotonic() + 120
        try:
            while True:
                row = fill_row(path)
                if row is not None and row[1] >= HOUSEHOLD_PREFIX + "K0050":   # a quarter of the households
                    break
                assert child.poll() is None, f"the rebuild ended before it could be killed: {child.stderr.read()}"
                assert time.monotonic() < deadline, "the rebuild never got going"
                time.sleep(0.005)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.wait(30)
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL

        filling_to, killed_after = fill_row(path)
        assert filling_to == head and HOUSEHOLD_PREFIX + "K0050" <= killed_after < HOUSEHOLD_PREFIX + "K0199", \
            "killed in the middle of the rebuild"
        assert position_row(path) == (0, 1), "the shadow stands at 0 until the fill is done"
        assert runner.is_rebuilding(p)
        assert runner.position(p) == head, "the live roster stayed whole and current"

        with sqlite3.connect(path) as conn:
            left = conn.execute("select count(*) from stored_events where originator_id > ?",
                                (killed_after,)).fetchone()[0]
        assert 0 < left < stored
        assert runner.rebuild(p) == left  # went on from the kill, did not start again
        assert fill_row(path) is None, "the fill's cursor goes with the fill"
        assert not runner.is_rebuilding(p) and runner.position(p) == head
        continued = snapshot(engine)

        assert runner.rebuild(p, restart=True) == stored
        assert snapshot(engine) == continued
        assert len(continued["roster"]) == HOUSEHOLDS
        assert sum(r[-1] for r in continued["roster"]) == stored  # each row's version: every event once
    finally:
        engine.dispose()
        app.close()


@pytest.mark.parametrize("batches", [1, 7])
def test_a_rebuild_stopped_after_some_batches_reports_itself_as_resumable(tmp_path, batches):
    app = bootstrap(str(tmp_path / "e.db"))
    engine = engine_for(store_of(app))
    try:
        for i in range(3):
            app.handle(register(f"H{i}"))
        runner = ProjectionRunner(app, engine, [RosterProjection()], batch_size=1)
        runner.by_stream = False   # in log order: the shadow's position counts the batches
        p = runner.projections[0]
        runner.rebuild(p, stop_after_batches=batches)
        [status] = runner.status()
        assert status.rebuilding == (batches < 3)
        # the live roster (never caught up here) moves only when the rebuild switches its tables in; the
        # rebuild's shadow has folded one event a batch
        assert status.position == (0 if batches < 3 else 3)
        assert status.rebuild_position == (batches if batches < 3 else None)
    finally:
        engine.dispose()
        app.close()
