"""The timeline: a stream's whole history read from the log (every event, in stream order, with its global
position, decoded as stored), and the projection's stage index — the events that move a case and each
stream's first event — identical whether rebuilt or caught up in small batches, with the as-of stage
question it answers for the monthly roster."""

from __future__ import annotations

import base64
from datetime import date

import sqlalchemy as sa

from adapters.readside.readmodels import read_models
from projections import timeline as tl
from tests.builders import exit_path, inclusion_path, measure, register, run

#: the events of `build` that move no case: the table leaves them to the history
UNMOVING = {"income_assessed", "measure_planned", "measure_implemented", "guarantees_assessed"}


def build(app) -> None:
    run(app, [register("H1"), *inclusion_path("H1"), *measure("H1", "M1", date(2023, 3, 20), date(2023, 4, 1)),
              *exit_path("H1", date(2023, 10, 9)), register("H2"), *inclusion_path("H2", start=date(2023, 6, 2))])


def rows(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(tl.timeline).order_by(tl.timeline.c.position)).mappings()]


def test_the_table_keeps_each_stage_moving_event_and_each_streams_first_with_its_position(app):
    build(app)
    notifications = app.recorder.select_notifications(start=1, limit=10_000)
    events = {n.id: app.mapper.to_domain_event(n) for n in notifications}
    with read_models(app, [tl.TimelineProjection()], batch_size=7) as rm:
        rm.catch_up("timeline")
        caught_up = rows(rm.engine)
        rm.runner.rebuild(rm.projection("timeline"))
        assert rows(rm.engine) == caught_up
    kept = {r["position"] for r in caught_up}
    left = {type(e).TYPE for p, e in events.items() if p not in kept}
    assert left and left <= UNMOVING
    for r in caught_up:
        e = events[r["position"]]
        assert (f"{r['aggregate']}/{r['stream_id']}", r["version"], r["type"], r["on"]) == (
            e.originator_id, e.originator_version, type(e).TYPE, e.on)
        assert r["stage"] is not None or r["version"] == 1
        assert r["division_code"] == ("522631101001" if r["version"] == 1 else None)


def test_a_streams_history_is_every_stored_event_in_stream_order_with_its_position(app):
    build(app)
    notifications = [n for n in app.recorder.select_notifications(start=1, limit=10_000)
                     if n.originator_id == "household/H1"]
    h1 = tl.stream_history(app, "H1")
    assert [(e["position"], e["version"]) for e in h1] == [(n.id, n.originator_version) for n in notifications]
    assert [e["version"] for e in h1] == list(range(1, len(h1) + 1))
    assert h1[0]["label"] == "建档" and h1[-1]["type"] == "risk_eliminated"
    assert {e["type"] for e in h1} >= UNMOVING - {"guarantees_assessed"}
    registered = h1[0]
    assert registered["stage"] == "not_monitored" and registered["payload"]["division_code"] == "522631101001"
    assert registered["actor"]["role"] and registered["recorded_at"].tzinfo is not None
    # payloads as JSON values: dates as their ISO text
    planned = next(e for e in h1 if e["type"] == "measure_planned")
    assert planned["on"] == date(2023, 3, 20) and isinstance(planned["payload"]["measure_id"], str)
    assert tl.stream_history(app, "NOBODY") == []
    assert tl.stream_history(app, "H1", aggregate="problem") == []


def test_an_encrypted_stores_history_reads_as_a_plain_ones(sqlite_url, tmp_path, monkeypatch):
    from adapters.store.storage import bootstrap

    plain = bootstrap(f"sqlite:///{tmp_path / 'plain.db'}")
    try:
        build(plain)
        expected = tl.stream_history(plain, "H1")
    finally:
        plain.close()
    monkeypatch.setenv("CASECORE_CIPHER_KEY", base64.b64encode(b"k" * 32).decode())
    sealed = bootstrap(sqlite_url)
    try:
        build(sealed)
        got = tl.stream_history(sealed, "H1")
    finally:
        sealed.close()
    strip = ("recorded_at",)
    assert [{k: v for k, v in e.items() if k not in strip} for e in got] == [
        {k: v for k, v in e.items() if k not in strip} for e in expected]


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
            assert tl.divisions_of(conn, [("household", "H1"), ("household", "NOBODY")]) == {
                ("household", "H1"): "522631101001"}
