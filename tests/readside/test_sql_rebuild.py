"""The near-copies of the log rebuilt inside the database (`INSERT … SELECT` over the stored events: the
timeline's stage index, the activity table) are the tables the Python fold writes, row by row, for a
lived-through county on both stores; where the database cannot do it (sealed read models) the rebuild folds
in Python."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from adapters.demo import DemoContext, stages
from adapters.readside.readmodels import read_models
from casecore.values import Stage
from projections.activity import ActivityProjection
from projections.in_database import source_for
from projections.timeline import TimelineProjection
from tests.builders import cmd, inclusion_path, register, run
from tests.store.test_transcoding import _import_repairs

TABLES = ("timeline_events", "activity", "activity_households", "activity_problems")


def live_county(app, where: Path) -> None:
    """A demo county through every stage, the national import's repair facts, and acts whose note and
    evidence hold quotes, braces, escapes and text that looks like a typed value's marker."""
    ctx = DemoContext(app=app, rng=random.Random(5), households=30, output_dir=where)
    for stage in stages():
        stage.run(ctx)
    _import_repairs(app)
    odd = '他说 "不在家" {"_type_":"date_iso","_data_":"2023-01-01"} \\ 换行\n结束'
    run(app, [register("ODD-1", note=odd, evidence=["照片 \"1\".jpg", "{}"]),
              *inclusion_path("ODD-1", start=date(2023, 4, 3)),
              cmd("record_lead", date(2023, 5, 2), household_id="ODD-1", lead_id="ODD-1-L2",
                  source="self_declaration", risk_types=["housing"], detail=odd, note="第二条线索")])


def table_rows(engine: sa.Engine) -> dict[str, list[tuple]]:
    out = {}
    with engine.connect() as conn:
        for name in TABLES:
            key = sa.inspect(conn).get_pk_constraint(name)["constrained_columns"]
            out[name] = [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {name} ORDER BY {key[0]}"))]
    return out


def test_the_sql_rebuild_and_the_python_fold_give_identical_tables_for_a_lived_through_county(app, tmp_path):
    live_county(app, tmp_path / "out")
    with read_models(app, [TimelineProjection(), ActivityProjection()], batch_size=500) as rm:
        with rm.engine.connect() as conn:
            assert source_for(app, conn) is not None
        rm.runner.in_database = False
        folded = rm.runner.rebuild_many()
        python = table_rows(rm.engine)
        rm.runner.in_database = True
        filled = rm.runner.rebuild_many()
        assert rm.runner.not_in_database == {}
        sql = table_rows(rm.engine)
        head = rm.runner.max_position()
        assert {s.name: s.position for s in rm.runner.status()} == {"timeline": head, "activity": head}
    # the fold read the timeline's topics, the statement wrote the rows it keeps: fewer, and the same rows
    assert 0 < filled["timeline"] == len(sql["timeline_events"]) <= folded["timeline"] < head
    assert python["activity"] and python["activity_problems"]
    stages = {r[6] for r in python["timeline_events"]}
    assert {s.value for s in Stage} <= stages
    for name in TABLES:
        assert sql[name] == python[name], name


def test_a_rebuild_in_sql_switches_in_like_any_rebuild_and_a_catch_up_folds_what_came_after(app, tmp_path):
    run(app, [register("H1"), *inclusion_path("H1")])
    with read_models(app, [TimelineProjection(), ActivityProjection()]) as rm:
        rm.catch_up()
        rm.runner.rebuild(rm.projection("timeline"))
        assert rm.runner.not_in_database == {}
        run(app, [register("H2"), *inclusion_path("H2", start=date(2023, 5, 4))])
        rm.catch_up()
        sql = table_rows(rm.engine)
        rm.runner.in_database = False
        rm.runner.rebuild_many()
        assert table_rows(rm.engine) == sql
        assert not rm.runner.is_rebuilding(rm.projection("timeline"))


def test_with_sealed_read_models_the_rebuild_folds_in_python(sqlite_url, monkeypatch):
    import base64

    from adapters.store.storage import bootstrap

    monkeypatch.setenv("CASECORE_CIPHER_KEY", base64.b64encode(b"k" * 32).decode())
    app = bootstrap(sqlite_url)
    try:
        run(app, [register("H1"), *inclusion_path("H1")])
        with read_models(app, [TimelineProjection()]) as rm:
            with rm.engine.connect() as conn:
                assert source_for(app, conn) is None
            assert rm.runner.rebuild(rm.projection("timeline")) > 0
            assert rm.runner.not_in_database == {}   # not tried: folded in Python from the start
            with rm.engine.connect() as conn:
                stages = conn.execute(sa.text("SELECT stage FROM timeline_events ORDER BY position")).scalars().all()
            assert stages[0] == "not_monitored" and stages[-1] == "monitored"
    finally:
        app.close()


@pytest.mark.postgres
def test_on_postgresql_both_tables_are_filled_in_sql(pg_url, monkeypatch):
    from adapters.store.storage import bootstrap
    from projections import activity, timeline

    filled: dict[str, int] = {}

    def spying(name: str, original):
        def spy(*args):
            filled[name] = original(*args)
            return filled[name]
        return spy

    monkeypatch.setattr(timeline, "rebuild_timeline", spying("rebuild_timeline", timeline.rebuild_timeline))
    monkeypatch.setattr(activity, "rebuild_activity", spying("rebuild_activity", activity.rebuild_activity))
    app = bootstrap(pg_url)
    try:
        run(app, [register("H1"), *inclusion_path("H1")])
        with read_models(app, [TimelineProjection(), ActivityProjection()]) as rm:
            rm.runner.rebuild_many()
            assert rm.runner.not_in_database == {}
            assert filled["rebuild_timeline"] > 0 and filled["rebuild_activity"] > 0
            with rm.engine.connect() as conn:
                kept = conn.execute(sa.text("SELECT count(*) FROM timeline_events")).scalar()
            assert 0 < kept < rm.runner.max_position()
    finally:
        app.close()


@pytest.mark.parametrize("projection", [TimelineProjection, ActivityProjection])
def test_a_statement_the_database_refuses_leaves_the_rebuild_to_the_python_fold(app, projection, monkeypatch):
    run(app, [register("H1"), *inclusion_path("H1")])

    def broken(self, conn, source, head):
        conn.exec_driver_sql("SELECT no_such_function()")

    monkeypatch.setattr(projection, "rebuild_in_database", broken)
    with read_models(app, [projection()]) as rm:
        rm.catch_up()
        before = table_rows_of(rm.engine, projection)
        rm.runner.rebuild(rm.projection(projection.name))
        assert projection.name in rm.runner.not_in_database
        assert table_rows_of(rm.engine, projection) == before


def table_rows_of(engine: sa.Engine, projection: type) -> list[tuple]:
    first = projection.metadata.sorted_tables[0]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(first).order_by(*first.primary_key.columns))]
