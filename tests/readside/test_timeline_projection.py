"""The timeline projection: one row per stored event, identical whether rebuilt or caught up in small
batches, and the as-of stage question it answers for the monthly roster."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from adapters.readside.readmodels import read_models
from projections import timeline as tl
from tests.builders import exit_path, inclusion_path, measure, register, run


def build(app) -> None:
    run(app, [register("H1"), *inclusion_path("H1"), *measure("H1", "M1", date(2023, 3, 20), date(2023, 4, 1)),
              *exit_path("H1", date(2023, 10, 9)), register("H2"), *inclusion_path("H2", start=date(2023, 6, 2))])


def rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(tl.timeline).order_by(tl.timeline.c.position)).mappings()]


def test_every_stored_event_has_one_row_with_its_stream_version_and_position(app):
    build(app)
    with read_models(app, [tl.TimelineProjection()], batch_size=7) as rm:
        rm.catch_up("timeline")
        caught_up = rows(rm.engine)
        notifications = app.recorder.select_notifications(start=1, limit=10_000)
        assert [r["position"] for r in caught_up] == [n.id for n in notifications]
        assert [(f"{r['aggregate']}/{r['stream_id']}", r["version"]) for r in caught_up] == [
            (n.originator_id, n.originator_version) for n in notifications]
        rm.runner.rebuild(rm.projection("timeline"))
        assert rows(rm.engine) == caught_up


def test_stages_are_read_as_of_a_business_date(app):
    build(app)
    with read_models(app, [tl.TimelineProjection()]) as rm:
        rm.catch_up("timeline")
        with rm.engine.connect() as conn:
            assert tl.stages_on(conn, date(2023, 3, 12)) == {"H1": "in_inclusion", "H2": "not_monitored"}
            assert tl.monitored_on(conn, date(2023, 3, 13)) == ["H1"]
            assert tl.stages_on(conn, date(2023, 10, 15))["H1"] == "in_exit"
            assert tl.monitored_on(conn, date(2023, 10, 15)) == ["H1", "H2"]
            assert tl.monitored_on(conn, date(2023, 10, 20)) == ["H2"]
            assert tl.household_division(conn, "H2") == "522631101001"
            assert tl.household_division(conn, "NOBODY") is None
            h1 = tl.stream_events(conn, "H1")
    assert [e["version"] for e in h1] == list(range(1, len(h1) + 1))
    assert h1[0]["label"] == "建档" and h1[-1]["type"] == "risk_eliminated"
