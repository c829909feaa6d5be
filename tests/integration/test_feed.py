"""The integrators' feed: CloudEvents as the contract says, masked personal data, and positions that let a
consumer resume without missing or repeating anything — also while other processes write (PostgreSQL's
notification ids have gaps and commit under a table lock)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import date

import jsonschema_rs
import orjson
import pytest
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.integration.event_schemas import events_schema
from adapters.integration.feed import EVENT_NAMESPACE, event_id, mask, read_events, read_feed
from adapters.readside.readmodels import store_of
from adapters.store.storage import bootstrap
from casecore.values import make_person_id
from tests.builders import cmd, inclusion_path, person, register, run
from tests.problems import closed_path

SOURCE = "urn:casecore:test"


def history(app) -> None:
    run(app, [register("H1"), *inclusion_path("H1"),
              cmd("assess_guarantees", date(2023, 3, 14), household_id="H1", housing="safe",
                  drinking_water_safe=True, children_out_of_school=[person(2, date(1982, 5, 6))["person_id"]],
                  members_without_medical_insurance=[]),
              cmd("assign_cadre", date(2023, 3, 14), household_id="H1",
                  cadre={"id": "c-9", "name": "王小明", "unit": "522631101000"}),
              register("H2"), *closed_path("P1", household_id="H1")])


def test_every_event_is_a_cloudevent_as_the_contract_says(app):
    history(app)
    feed = list(read_feed(app, source=SOURCE, entitled=True))
    first = feed[0]
    assert first["specversion"] == "1.0" and first["source"] == SOURCE
    assert first["type"] == "cn.casecore.household.registered.v1"
    assert first["subject"] == "household/H1"
    assert first["id"] == str(uuid.uuid5(EVENT_NAMESPACE, "household/H1#1"))
    events = {(e.originator_id, e.originator_version): (pos, e) for pos, e in read_events(app, 0, 1000)}
    assert len(feed) == len(events) == 1 + 9 + 2 + 1 + 6  # H1, its inclusion, guarantees and cadre, H2, P1 closed
    for ce in feed:
        pos, event = events[(ce["subject"], ce["data"]["version"])]
        assert ce["time"] == event.timestamp.isoformat()
        assert ce["data"]["on"] == event.on.isoformat() and ce["data"]["position"] == pos
        assert ce["data"]["actor"] == event.actor and ce["data"]["command_id"] == event.command_id
    income = next(ce for ce in feed if ce["type"].endswith("income_assessed.v1"))
    assert income["data"]["net_income"] == "10000" and income["data"]["per_capita_income"] == "5000.00"
    assert {ce["subject"] for ce in feed} == {"household/H1", "household/H2", "problem/P1"}


def test_ids_are_stable_and_unique(app):
    history(app)
    once = [ce["id"] for ce in read_feed(app, source=SOURCE)]
    again = [ce["id"] for ce in read_feed(app, source="urn:elsewhere")]
    assert once == again and len(set(once)) == len(once)
    assert event_id("household/H1", 2) != event_id("household/H1", 3) != event_id("household/H2", 2)


def test_every_event_in_the_feed_matches_the_published_schema(app):
    history(app)
    schema = events_schema()
    validator = jsonschema_rs.validator_for(schema)
    feed = list(read_feed(app, source=SOURCE)) + list(read_feed(app, source=SOURCE, entitled=True))
    for ce in feed:
        errors = [e.message for e in validator.iter_errors(ce)]
        assert errors == [], (ce["type"], errors)
        declared = schema["$defs"][ce["type"]]["properties"]["data"]["properties"]
        assert set(ce["data"]) <= set(declared), ce["type"]


def test_the_schema_rejects_a_wrong_event():
    validator = jsonschema_rs.validator_for(events_schema())
    bad = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": SOURCE, "subject": "household/H1",
           "type": "cn.casecore.household.income_assessed.v1", "time": "2023-03-01T00:00:00+00:00",
           "data": {"on": "2023-03-01", "position": 1, "version": 1,
                    "actor": {"id": "a", "role": "village", "unit": "522631101001"},
                    "period_start": "2022-03-01", "period_end": "2023-02-28", "net_income": 10000.5,
                    "rigid_expenditure": "0", "household_size": 2, "per_capita_income": "5000.25"}}
    assert not validator.is_valid(bad)  # money must be a decimal string, never a float
    bad["data"]["net_income"] = "10000.5"
    assert validator.is_valid(bad)


def test_id_numbers_and_names_are_masked_unless_the_consumer_is_entitled(app):
    history(app)
    secrets = [person(1)["person_id"], person(2, date(1982, 5, 6))["person_id"], "成员1", "成员2", "王小明", "村干部甲"]
    masked = "\n".join(json.dumps(ce, ensure_ascii=False) for ce in read_feed(app, source=SOURCE))
    entitled = "\n".join(json.dumps(ce, ensure_ascii=False) for ce in read_feed(app, source=SOURCE, entitled=True))
    assert [s for s in secrets if s in masked] == []
    assert [s for s in secrets if s not in entitled] == []
    first = next(read_feed(app, source=SOURCE))
    member = first["data"]["members"][0]
    assert member["person_id"] == person(1)["person_id"][:6] + "********" + person(1)["person_id"][-4:]
    assert member["name"] == "成**" and member["birth_date"] == "1980"  # the year only: the day is in the number


def test_id_numbers_inside_free_text_are_masked_too():
    pid = make_person_id("522631", date(1990, 7, 1), 7)
    assert mask({"detail": f"户主{pid}住院"}) == {"detail": f"户主{pid[:6]}********{pid[-4:]}住院"}
    assert mask({"detail": "电话 13800000000"}) == {"detail": "电话 13800000000"}


def test_reading_in_pages_after_the_last_position_misses_nothing_and_repeats_nothing(app):
    history(app)
    whole = [ce["id"] for ce in read_feed(app, source=SOURCE)]
    seen: list[str] = []
    after = 0
    while True:
        page = list(read_feed(app, after=after, limit=4, source=SOURCE))
        if not page:
            break
        positions = [ce["data"]["position"] for ce in page]
        assert positions == sorted(positions) and positions[0] > after
        seen += [ce["id"] for ce in page]
        after = positions[-1]
    assert seen == whole


def _writer(app, prefix: str, count: int, errors: list) -> None:
    """Another process's worth of writes (its own application and connections): registrations, plus leads
    on households that other writers touch at the same moment (some conflict and roll back, burning
    PostgreSQL ids)."""
    try:
        for i in range(count):
            app.handle(register(f"{prefix}-{i}"))
            app.handle(cmd("record_lead", date(2023, 3, 5), household_id=f"SHARED-{i % 3}",
                           lead_id=f"{prefix}-L{i}", source="self_declaration", risk_types=["illness"],
                           detail="并发写入"))
    except Exception as exc:  # reported to the test thread
        errors.append(exc)


def test_a_consumer_paging_while_others_write_ends_with_every_event_exactly_once(app, db_url):
    run(app, [register(f"SHARED-{i}") for i in range(3)])
    if store_of(app).kind == "postgres":
        # a refused insert (a version that exists) burns notification ids: the log has gaps from the start
        stale = app.recorder.select_events("household/SHARED-0")
        for _ in range(3):
            with pytest.raises(Exception):  # noqa: B017 - the store's integrity error
                app.recorder.insert_events(stale)
    errors: list = []
    apps = [bootstrap(db_url) for _ in range(4)]
    writers = [threading.Thread(target=_writer, args=(a, f"W{n}", 25, errors)) for n, a in enumerate(apps)]
    for w in writers:
        w.start()
    consumer = bootstrap(db_url)
    seen: list[tuple[str, int]] = []
    after = 0
    try:
        while True:
            writing = any(w.is_alive() for w in writers)
            page = read_events(consumer, after, 7)
            for position, event in page:
                assert position > after
                seen.append((event.originator_id, event.originator_version))
                after = position
            if not page and not writing:
                break
            if not page:
                time.sleep(0.01)
    finally:
        for w in writers:
            w.join()
        for a in [*apps, consumer]:
            a.close()
    assert errors == []
    stored = [(e.originator_id, e.originator_version) for _, e in read_events(app, 0, 100_000)]
    assert len(seen) == len(set(seen)) == len(stored)
    assert set(seen) == set(stored)
    assert len([s for s, _ in stored if s.startswith("household/W")]) == 4 * 25  # every registration
    assert len([v for s, v in stored if s.startswith("household/SHARED")]) > 3  # and the leads that won
    if store_of(app).kind == "postgres":
        assert app.recorder.max_notification_id() > len(stored)  # the gaps were there and were crossed


def test_the_events_command_prints_json_lines_and_resumes_after_a_position(sqlite_app, sqlite_url):
    history(sqlite_app)
    runner = CliRunner()
    full = runner.invoke(cli, ["events", "--db", sqlite_url], env={"CASECORE_SOURCE": SOURCE})
    assert full.exit_code == 0, full.output
    lines = [orjson.loads(x) for x in full.stdout.splitlines()]
    assert lines[0]["source"] == SOURCE and len(lines) == sqlite_app.recorder.max_notification_id()
    tail = runner.invoke(cli, ["events", "--db", sqlite_url, "--after", "5", "--limit", "3", "--entitled"])
    assert [orjson.loads(x)["data"]["position"] for x in tail.stdout.splitlines()] == [6, 7, 8]
    schema = runner.invoke(cli, ["schema", "events"])
    assert schema.exit_code == 0
    assert "cn.casecore.problem.signed_off.v1" in orjson.loads(schema.stdout)["$defs"]


def test_following_the_feed_prints_new_events_as_they_are_committed(sqlite_app, sqlite_url):
    run(sqlite_app, [register("H1")])
    casecore = os.path.join(os.path.dirname(sys.executable), "casecore")
    proc = subprocess.Popen([casecore, "events", "--db", sqlite_url, "--follow",
                             "--poll", "0.05", "--limit", "3"], stdout=subprocess.PIPE, text=True,
                            env=os.environ | {"CASECORE_LOG_LEVEL": "error"})
    try:
        assert proc.stdout is not None
        first = orjson.loads(proc.stdout.readline())
        assert first["subject"] == "household/H1"
        run(sqlite_app, [register("H2"), register("H3")])
        rest = [orjson.loads(proc.stdout.readline()) for _ in range(2)]
        assert [ce["subject"] for ce in rest] == ["household/H2", "household/H3"]
        assert proc.wait(timeout=20) == 0  # --limit 3 reached
    finally:
        proc.kill()
