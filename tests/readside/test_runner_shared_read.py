"""Catching several projections up (or rebuilding them) from one read of the log gives each exactly what it
gets on its own: every event once, only its topics, from its own position, and the registry's tables are the
same as after rebuilding each projection alone."""

from __future__ import annotations

import random

import sqlalchemy as sa

from adapters.readside.readmodels import engine_for, read_models, store_of
from benchmarks.province import counties
from projections.registry import all_projections
from projections.runner import ProjectionRunner
from tests.readside.test_projection_runner import Counting, counts, exact, populate, table

STEPS_TOPICS = ("cn.casecore.household.lead_recorded.v1", "cn.casecore.household.registered.v1")


class OnlyLeads(Counting):
    """Counts only registrations and leads (a projection with topics)."""

    name = "test_counts_topics"
    topics = STEPS_TOPICS

    def fold(self, conn, events):
        assert all(e.TOPIC in STEPS_TOPICS for e in events)
        rows = {r.stream: r for r in conn.execute(sa.select(counts))}
        existing = set(rows)
        out = {k: {"stream": k, "events": r.events, "last_version": r.last_version} for k, r in rows.items()}
        for e in events:
            row = out.setdefault(e.originator_id, {"stream": e.originator_id, "events": 0, "last_version": 0})
            row["events"] += 1
            row["last_version"] = e.originator_version
        from projections.runner import upsert

        upsert(conn, counts, "stream", out, existing)


def test_catching_up_together_folds_every_event_once_from_each_projections_own_position(app):
    populate(app, households=8)
    engine = engine_for(store_of(app))
    counting = Counting()
    runner = ProjectionRunner(app, engine, [counting], batch_size=7)
    runner.catch_up(counting, stop_after_batches=3)            # this one is ahead of a newcomer
    populate(app, households=5, prefix="K")
    done = runner.catch_up_many()
    assert table(engine) == exact(app)
    assert runner.position(counting) == runner.max_position()
    assert done["test_counts"] == sum(n for n, _ in exact(app).values()) - 3 * 7
    engine.dispose()


def test_a_projection_with_topics_gets_only_its_topics_when_read_with_others(sqlite_app):
    populate(sqlite_app, households=6)
    engine = engine_for(store_of(sqlite_app))
    only = OnlyLeads()
    runner = ProjectionRunner(sqlite_app, engine, [only], batch_size=5)
    runner.rebuild_many()
    notes = sqlite_app.recorder.select_notifications(start=None, limit=10**6, topics=STEPS_TOPICS)
    assert sum(n for n, _ in table(engine).values()) == len(notes)
    engine.dispose()


def _dump(engine, projections) -> dict[str, list]:
    out = {}
    with engine.connect() as conn:
        for p in projections:
            for t in p.metadata.sorted_tables:
                cols = list(t.columns)
                out[t.name] = sorted(tuple(str(v) for v in row) for row in conn.execute(sa.select(*cols)))
    return out


def test_rebuilding_every_projection_from_one_read_gives_the_tables_of_rebuilding_each_alone(sqlite_app):
    rng = random.Random(5)
    cmds = [c for _, _, chunk in counties(150, seed=rng.randrange(1000)) for c in chunk]
    from adapters.integration.intake import parse_object

    assert all(o.ok for o in sqlite_app.handle_many([parse_object(c) for c in cmds], batch_size=300))
    with read_models(sqlite_app) as rm:
        rm.runner.batch_size = 700
        for p in rm.runner.projections:
            rm.runner.rebuild(p)
        alone = _dump(rm.engine, rm.runner.projections)
        rm.runner.rebuild_many()
        together = _dump(rm.engine, rm.runner.projections)
    assert together == alone
    assert {p.name for p in all_projections()} <= {p.name for p in rm.runner.projections}


def _indexes(engine, table: str) -> set[str]:
    """The table's index names, as the code names them (a rebuild's tables take `ix_…` or `ix_…__next`,
    alternately: index names are global per schema or file)."""
    return {ix["name"].removesuffix("__next") for ix in sa.inspect(engine).get_indexes(table)}


def test_a_rebuild_builds_the_query_indexes_once_when_it_completes_even_after_an_interruption(app):
    populate(app, households=10)
    with read_models(app, [p for p in all_projections() if p.name == "timeline"], batch_size=9) as rm:
        rm.runner.in_database = False   # the fold, batch by batch (a fill in SQL is one transaction)
        timeline = rm.runner.get("timeline")
        wanted = set(timeline.deferred_indexes)
        assert wanted and wanted <= _indexes(rm.engine, "timeline_events")
        rm.runner.rebuild(timeline, stop_after_batches=2)          # interrupted: the indexes wait
        assert rm.runner.is_rebuilding(timeline)
        assert not wanted & _indexes(rm.engine, "timeline_events__next")
        assert wanted <= _indexes(rm.engine, "timeline_events")    # the live table keeps its own
        rm.runner.rebuild(timeline)                                # continues and completes
        assert not rm.runner.is_rebuilding(timeline)
        assert wanted <= _indexes(rm.engine, "timeline_events")
