"""The projection runner folds every stored event exactly once, on SQLite and on PostgreSQL: across calls,
across failures inside a fold, across interrupted rebuilds, and with two runners at once.

The projection under test counts events per stream by incrementing: an event folded twice shows at once."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from adapters.readside.readmodels import engine_for, store_of
from casecore.household import Household
from projections.runner import Projection, ProjectionRunner, rows_by_key, upsert
from tests.builders import inclusion_path, register

counts_metadata = sa.MetaData()
counts = sa.Table(
    "test_event_counts",
    counts_metadata,
    sa.Column("stream", sa.String(80), primary_key=True),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("last_version", sa.Integer, nullable=False),
)


class Counting(Projection):
    name = "test_counts"
    metadata = counts_metadata

    def fold(self, conn, events):
        rows = rows_by_key(conn, counts, "stream", [e.originator_id for e in events])
        existing = set(rows)
        for e in events:
            row = rows.setdefault(e.originator_id, {"stream": e.originator_id, "events": 0, "last_version": 0})
            row["events"] += 1
            row["last_version"] = e.originator_version
        upsert(conn, counts, "stream", rows, existing)


class FailsOnBatch(Counting):
    """Raises inside its fold on the n-th batch it is given (after writing its rows: the rollback must undo
    them)."""

    def __init__(self, n: int):
        self.n = n
        self.calls = 0

    def fold(self, conn, events):
        self.calls += 1
        super().fold(conn, events)
        if self.calls == self.n:
            raise RuntimeError("injected failure inside the fold")


def populate(app, households: int = 12, prefix: str = "H") -> int:
    """Registered and included households (about ten events each); returns the number of events stored."""
    cmds = []
    for i in range(households):
        hid = f"{prefix}{i:03d}"
        cmds += [register(hid), *inclusion_path(hid, start=date(2023, 3, 2) + timedelta(days=i % 5))]
    outcomes = list(app.handle_many(cmds, batch_size=50))
    assert all(o.ok for o in outcomes)
    return sum(len(o.events) for o in outcomes)


def table(engine) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        return {r.stream: (r.events, r.last_version) for r in conn.execute(sa.select(counts))}


def exact(app) -> dict[str, tuple[int, int]]:
    """What the table must hold: each stream's event count (= its last version)."""
    notes = app.recorder.select_notifications(start=None, limit=10**6)
    per = Counter(n.originator_id for n in notes)
    return {s: (n, n) for s, n in per.items()}


@pytest.fixture
def engine(app):
    eng = engine_for(store_of(app))
    yield eng
    eng.dispose()


def test_catch_up_folds_every_event_once_and_a_second_call_folds_nothing(app, engine):
    stored = populate(app)
    runner = ProjectionRunner(app, engine, [Counting()], batch_size=17)
    p = runner.projections[0]
    assert runner.catch_up(p) == stored
    assert runner.catch_up(p) == 0
    assert table(engine) == exact(app)
    assert runner.position(p) == runner.max_position()


def test_events_stored_after_a_catch_up_are_folded_by_the_next_one(app, engine):
    populate(app, 5, "A")
    runner = ProjectionRunner(app, engine, [Counting()], batch_size=7)
    p = runner.projections[0]
    runner.catch_up(p)
    more = populate(app, 4, "B")
    assert runner.catch_up(p) == more
    assert table(engine) == exact(app)


def test_a_fold_that_fails_changes_nothing_and_the_rerun_continues_after_the_last_committed_batch(app, engine):
    populate(app)
    runner = ProjectionRunner(app, engine, [FailsOnBatch(3)], batch_size=10)
    failing = runner.projections[0]
    with pytest.raises(RuntimeError, match="injected"):
        runner.catch_up(failing)
    first_two = app.recorder.select_notifications(start=None, limit=20)
    assert runner.position(failing) == first_two[-1].id
    assert sum(n for n, _ in table(engine).values()) == 20

    assert ProjectionRunner(app, engine, [Counting()], batch_size=10).catch_up(Counting()) > 0
    assert table(engine) == exact(app)


def test_an_interrupted_rebuild_continues_on_rerun_and_gives_the_table_of_a_clean_rebuild(app, engine):
    populate(app)
    runner = ProjectionRunner(app, engine, [Counting()], batch_size=9)
    p = runner.projections[0]
    runner.catch_up(p)

    assert runner.rebuild(p, stop_after_batches=3) == 27
    assert runner.is_rebuilding(p)
    assert runner.rebuild_position(p) < runner.max_position()
    assert table(engine) == exact(app)  # readers keep the whole live table while the rebuild goes on beside it

    head = runner.max_position()
    left = len(app.recorder.select_notifications(start=runner.rebuild_position(p), limit=10**6,
                                                 inclusive_of_start=False))
    assert runner.rebuild(p) == left  # continued, not started again
    assert not runner.is_rebuilding(p) and runner.rebuild_position(p) is None
    assert runner.position(p) == head
    assert table(engine) == exact(app)


def test_a_rebuild_that_fails_mid_way_continues_from_its_last_committed_batch(app, engine):
    populate(app)
    runner = ProjectionRunner(app, engine, [FailsOnBatch(4)], batch_size=8)
    with pytest.raises(RuntimeError):
        runner.rebuild(runner.projections[0])
    again = ProjectionRunner(app, engine, [Counting()], batch_size=8)
    p = again.projections[0]
    assert again.is_rebuilding(p) and again.rebuild_position(p) == app.recorder.select_notifications(
        start=None, limit=24)[-1].id
    again.rebuild(p)
    assert table(engine) == exact(app)


def test_rebuild_with_restart_discards_an_interrupted_rebuild_and_starts_from_zero(app, engine):
    stored = populate(app, 6)
    runner = ProjectionRunner(app, engine, [Counting()], batch_size=10)
    p = runner.projections[0]
    runner.rebuild(p, stop_after_batches=2)
    assert runner.rebuild(p, restart=True) == stored
    assert table(engine) == exact(app)


def test_two_runners_folding_the_same_projection_at_once_fold_each_event_once(app, engine):
    populate(app, 20)
    other = engine_for(store_of(app))
    try:
        runners = [ProjectionRunner(app, engine, [Counting()], batch_size=5),
                   ProjectionRunner(app, other, [Counting()], batch_size=5)]
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def go(r: ProjectionRunner) -> None:
            try:
                start.wait()
                r.catch_up(r.projections[0])
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=go, args=(r,)) for r in runners]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert table(engine) == exact(app)
    finally:
        other.dispose()


class RegistrationsOnly(Counting):
    name = "test_registrations"
    topics = (Household.Registered.TOPIC,)


def test_a_projection_reading_some_topics_is_up_to_date_at_the_head_of_the_log(app, engine):
    populate(app, 4)
    runner = ProjectionRunner(app, engine, [RegistrationsOnly()], batch_size=3)
    p = runner.projections[0]
    assert runner.catch_up(p) == 4
    [status] = runner.status()
    assert status.position == status.head and status.behind == 0
    assert {s: n for s, (n, _) in table(engine).items()} == {f"household/H{i:03d}": 1 for i in range(4)}


wider_metadata = sa.MetaData()
wider_counts = sa.Table(
    "test_event_counts",
    wider_metadata,
    sa.Column("stream", sa.String(80), primary_key=True),
    sa.Column("events", sa.Integer, nullable=False),
    sa.Column("last_version", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16)),
)


class WiderCounting(Projection):
    """The same projection after its table gained a column in code."""

    name = "test_counts"
    metadata = wider_metadata

    def fold(self, conn, events):
        rows = rows_by_key(conn, wider_counts, "stream", [e.originator_id for e in events])
        existing = set(rows)
        for e in events:
            row = rows.setdefault(e.originator_id, {"stream": e.originator_id, "events": 0, "last_version": 0,
                                                    "kind": e.originator_id.split("/")[0]})
            row["events"] += 1
            row["last_version"] = e.originator_version
        upsert(conn, wider_counts, "stream", rows, existing)


def test_a_projection_whose_tables_changed_in_code_is_rebuilt_by_its_next_catch_up(app, engine):
    stored = populate(app, 5)
    old = ProjectionRunner(app, engine, [Counting()], batch_size=10)
    old.catch_up(old.projections[0])
    assert ProjectionRunner(app, engine, [Counting()]).stale == set()

    new = ProjectionRunner(app, engine, [WiderCounting()], batch_size=10)
    [status] = new.status()
    assert status.stale and status.behind == 0
    assert new.catch_up(new.projections[0]) == stored  # rebuilt in the new shape, not folded on top
    with engine.connect() as conn:
        rows = conn.execute(sa.select(wider_counts.c.stream, wider_counts.c.events, wider_counts.c.last_version,
                                      wider_counts.c.kind)).all()
    assert {s: (n, v) for s, n, v, _ in rows} == exact(app)
    assert {k for *_, k in rows} == {"household"}
    assert ProjectionRunner(app, engine, [WiderCounting()]).stale == set()


def test_events_stored_while_a_rebuild_runs_are_in_the_tables_it_switches_in(app, engine):
    populate(app)
    runner = ProjectionRunner(app, engine, [Counting()], batch_size=10)
    p = runner.projections[0]
    runner.catch_up(p)
    runner.rebuild(p, stop_after_batches=4)            # the shadow is part way
    populate(app, households=3, prefix="N")            # the log grows meanwhile
    runner.catch_up(p)                                 # and the live table keeps up with it
    assert table(engine) == exact(app)
    head = runner.max_position()
    runner.rebuild(p)                                  # the shadow catches up and is switched in
    assert table(engine) == exact(app)
    assert runner.position(p) == head and runner.rebuild_position(p) is None


def test_the_switch_folds_what_the_log_gained_after_the_shadow_caught_up(app, engine, monkeypatch):
    populate(app)
    runner = ProjectionRunner(app, engine, [Counting()], batch_size=10)
    p = runner.projections[0]
    runner.catch_up(p)
    original = ProjectionRunner._switch

    def late_events_then_switch(self, projection):
        populate(app, households=2, prefix="L")        # stored between the shadow's last batch and the switch
        return original(self, projection)

    monkeypatch.setattr(ProjectionRunner, "_switch", late_events_then_switch)
    runner.rebuild(p)
    assert table(engine) == exact(app)
    assert runner.position(p) == runner.max_position()
