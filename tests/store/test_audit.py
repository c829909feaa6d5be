"""Tamper evidence: `audit` names every event changed behind the engine's back, on SQLite and PostgreSQL.

The tests play the attacker with plain SQL on the store's own tables (an UPDATE of a state, a DELETE, a
swap of versions, a forged INSERT, a rewrite of the hashes too) and check that each is named.
"""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from freezegun import freeze_time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.readside.readmodels import store_of
from adapters.store.audit import audit, checkpoint_document, compare_checkpoint
from adapters.store.hashchain import GENESIS, event_hash
from adapters.store.storage import bootstrap
from tests.builders import VILLAGE_CODE, cmd, inclusion_path, register, run
from tests.services import PG_URL


class Store:
    """Direct SQL on the store's event and hash tables, bypassing the engine."""

    def __init__(self, app: Any):
        self.app = app
        self.kind = store_of(app).kind
        self.events = app.recorder.events_table_name
        self.hashes = app.recorder.hashes_table_name
        self.pos = "rowid" if self.kind == "sqlite" else "notification_id"

    @contextmanager
    def sql(self):
        if self.kind == "sqlite":
            conn = sqlite3.connect(store_of(self.app).env["SQLITE_DBNAME"])
            try:
                yield lambda q, p=(): conn.execute(q, p).fetchall()
                conn.commit()
            finally:
                conn.close()
        else:
            import psycopg

            schema = store_of(self.app).env["POSTGRES_SCHEMA"]
            with psycopg.connect(PG_URL, autocommit=False) as conn:
                conn.execute(f'SET search_path TO "{schema}"')

                def run_sql(q: str, p: tuple = ()) -> list:
                    cur = conn.execute(q.replace("?", "%s"), p)
                    return cur.fetchall() if cur.description else []

                yield run_sql
                conn.commit()

    def row(self, stream: str, version: int) -> tuple[int, str, bytes]:
        with self.sql() as q:
            pos, topic, state = q(f"SELECT {self.pos}, topic, state FROM {self.events} "
                                  "WHERE originator_id = ? AND originator_version = ?", (stream, version))[0]
        return pos, topic, bytes(state)

    def set_state(self, stream: str, version: int, state: bytes, topic: str | None = None) -> None:
        with self.sql() as q:
            q(f"UPDATE {self.events} SET state = ? WHERE originator_id = ? AND originator_version = ?",
              (state, stream, version))
            if topic is not None:
                q(f"UPDATE {self.events} SET topic = ? WHERE originator_id = ? AND originator_version = ?",
                  (topic, stream, version))

    def delete(self, stream: str, version: int, with_hash: bool = False) -> None:
        with self.sql() as q:
            q(f"DELETE FROM {self.events} WHERE originator_id = ? AND originator_version = ?", (stream, version))
            if with_hash:
                q(f"DELETE FROM {self.hashes} WHERE originator_id = ? AND originator_version = ?", (stream, version))

    def swap_versions(self, stream: str, a: int, b: int) -> None:
        with self.sql() as q:
            for old, new in ((a, -1), (b, a), (-1, b)):
                q(f"UPDATE {self.events} SET originator_version = ? WHERE originator_id = ? AND originator_version = ?",
                  (new, stream, old))

    def insert(self, stream: str, version: int, topic: str, state: bytes) -> None:
        with self.sql() as q:
            q(f"INSERT INTO {self.events} (originator_id, originator_version, topic, state) VALUES (?,?,?,?)",
              (stream, version, topic, state))

    def rehash(self, stream: str) -> None:
        """The informed attacker: recompute the stream's whole hash chain from its (altered) rows."""
        with self.sql() as q:
            rows = q(f"SELECT e.originator_version, e.{self.pos}, e.topic, e.state, h.recorded_at "
                     f"FROM {self.events} e JOIN {self.hashes} h ON e.originator_id = h.originator_id "
                     "AND e.originator_version = h.originator_version WHERE e.originator_id = ? "
                     "ORDER BY e.originator_version", (stream,))
            prev = GENESIS
            for version, pos, topic, state, recorded_at in rows:
                h = event_hash(prev, stream, version, pos, recorded_at, topic, bytes(state))
                q(f"UPDATE {self.hashes} SET prev_hash = ?, hash = ? "
                  "WHERE originator_id = ? AND originator_version = ?", (prev, h, stream, version))
                prev = h


def history(app) -> None:
    """Two households: H1 through the whole inclusion (10 events), H2 registered with a lead (2 events)."""
    run(app, [register("H1"), *inclusion_path("H1"), register("H2"),
              cmd("record_lead", date(2023, 3, 5), household_id="H2", lead_id="L2", source="self_declaration",
                  risk_types=["illness"], detail="自主申报")])


def named(report) -> set[tuple[str, str | None, int | None]]:
    return {(f.kind, f.stream, f.version) for f in report.findings}


def test_an_untouched_store_passes_verification(app):
    history(app)
    report = audit(app.recorder)
    assert report.ok, report.findings
    assert (report.events, report.streams) == (12, 2)
    assert report.through_position == app.recorder.max_notification_id()


def test_an_altered_state_is_named(app):
    history(app)
    store = Store(app)
    _, _, state = store.row("household/H1", 3)  # income_assessed: net income 10000
    assert b"10000" in state
    store.set_state("household/H1", 3, state.replace(b"10000", b"99999"))
    assert named(audit(app.recorder)) == {("altered", "household/H1", 3)}


def test_a_deleted_event_is_named(app):
    history(app)
    store = Store(app)
    pos, _, _ = store.row("household/H1", 4)
    store.delete("household/H1", 4)
    report = audit(app.recorder)
    assert named(report) == {("deleted", "household/H1", 4)}
    assert report.findings[0].position == pos


def test_the_deletion_of_an_event_together_with_its_hash_is_named(app):
    history(app)
    Store(app).delete("household/H1", 4, with_hash=True)
    assert named(audit(app.recorder)) == {("deleted", "household/H1", 4)}


def test_swapped_versions_are_named_as_reordered(app):
    history(app)
    Store(app).swap_versions("household/H1", 5, 6)
    assert named(audit(app.recorder)) == {("reordered", "household/H1", 5), ("reordered", "household/H1", 6)}


def test_swapped_contents_are_named_as_reordered(app):
    history(app)
    store = Store(app)
    _, topic5, five = store.row("household/H1", 5)
    _, topic6, six = store.row("household/H1", 6)
    store.set_state("household/H1", 5, six, topic6)
    store.set_state("household/H1", 6, five, topic5)
    report = audit(app.recorder)
    assert named(report) == {("reordered", "household/H1", 5), ("reordered", "household/H1", 6)}


def test_forged_rows_are_named_as_inserted(app):
    history(app)
    store = Store(app)
    _, topic, state = store.row("household/H2", 2)
    store.insert("household/H2", 3, topic, state.replace(b'"L2"', b'"L9"'))
    _, topic1, state1 = store.row("household/H2", 1)
    store.insert("household/H9", 1, topic1, state1)
    assert named(audit(app.recorder)) == {("inserted", "household/H2", 3), ("inserted", "household/H9", 1)}


def test_an_event_rewritten_with_its_hash_breaks_the_chain_at_that_event(app):
    history(app)
    store = Store(app)
    pos, topic, state = store.row("household/H1", 3)
    forged = state.replace(b"10000", b"99999")
    store.set_state("household/H1", 3, forged)
    with store.sql() as q:
        prev, recorded_at = q(f"SELECT prev_hash, recorded_at FROM {store.hashes} "
                              "WHERE originator_id = ? AND originator_version = 3", ("household/H1",))[0]
        q(f"UPDATE {store.hashes} SET hash = ? WHERE originator_id = ? AND originator_version = 3",
          (event_hash(prev, "household/H1", 3, pos, recorded_at, topic, forged), "household/H1"))
    assert named(audit(app.recorder)) == {("chain_broken", "household/H1", 3)}


def test_every_kind_of_tampering_at_once_is_each_named(app):
    history(app)
    store = Store(app)
    _, _, state = store.row("household/H1", 3)
    store.set_state("household/H1", 3, state.replace(b"10000", b"99999"))
    store.delete("household/H1", 4)
    store.swap_versions("household/H1", 7, 8)
    _, topic, state2 = store.row("household/H2", 2)
    store.insert("household/H2", 3, topic, state2)
    assert named(audit(app.recorder)) == {
        ("altered", "household/H1", 3), ("deleted", "household/H1", 4), ("reordered", "household/H1", 7),
        ("reordered", "household/H1", 8), ("inserted", "household/H2", 3),
    }


def _days_history(app) -> None:
    """Events recorded on three different days (the recorder's clock is frozen on each)."""
    with freeze_time("2023-03-01 09:00:00"):
        run(app, [register("H1"), register("H2")])
    with freeze_time("2023-03-02 09:00:00"):
        run(app, inclusion_path("H1")[:3])
    with freeze_time("2023-03-03 09:00:00"):
        run(app, [cmd("record_lead", date(2023, 3, 3), household_id="H2", lead_id="L2", source="self_declaration",
                      risk_types=["illness"], detail="自主申报")])


def test_the_checkpoint_has_a_digest_per_recording_day(app):
    _days_history(app)
    doc = checkpoint_document(audit(app.recorder), "urn:test")
    assert [(d["day"], d["events"], d["streams"]) for d in doc["days"]] == [
        ("2023-03-01", 2, 2), ("2023-03-02", 3, 1), ("2023-03-03", 1, 1)]
    assert doc["events"] == 6 and doc["verified"] is True
    assert doc["digest"] == audit(app.recorder).digest  # deterministic


def test_a_full_rewrite_of_the_hashes_is_caught_only_by_the_checkpoint_and_names_the_day(app):
    _days_history(app)
    kept = checkpoint_document(audit(app.recorder), "urn:test")
    store = Store(app)
    _, _, state = store.row("household/H1", 3)  # recorded on 2023-03-02
    store.set_state("household/H1", 3, state.replace(b"10000", b"99999"))
    store.rehash("household/H1")
    report = audit(app.recorder, kept["through_position"])
    assert report.ok  # the chain alone is consistent again
    changed = compare_checkpoint(report, kept)
    assert {(f.kind, f.day) for f in changed} == {("day_changed", "2023-03-02")}


def test_deleting_a_streams_last_event_and_its_hash_is_caught_by_the_checkpoint(app):
    _days_history(app)
    kept = checkpoint_document(audit(app.recorder), "urn:test")
    Store(app).delete("household/H2", 2, with_hash=True)  # the only event of 2023-03-03
    report = audit(app.recorder, kept["through_position"])
    assert report.ok
    assert {(f.kind, f.day) for f in compare_checkpoint(report, kept)} == {("day_missing", "2023-03-03")}


def test_events_recorded_after_the_checkpoint_do_not_disturb_it(app):
    _days_history(app)
    kept = checkpoint_document(audit(app.recorder), "urn:test")
    with freeze_time("2023-03-03 18:00:00"):  # the checkpoint's last day goes on
        run(app, [register("H3")])
    with freeze_time("2023-03-04 09:00:00"):
        run(app, inclusion_path("H1")[3:5])
    report = audit(app.recorder, kept["through_position"])
    assert report.ok and compare_checkpoint(report, kept) == []


def test_a_write_on_top_of_a_deleted_event_is_refused_and_changes_nothing(app):
    history(app)
    store = Store(app)
    store.delete("household/H2", 2)  # the stream now ends at version 1, but version 2's hash remains
    outcome = app.handle(cmd("record_lead", date(2023, 3, 6), household_id="H2", lead_id="L3",
                             source="self_declaration", risk_types=["illness"], detail="再次申报"))
    assert not outcome.ok and outcome.error.code == "conflict"
    assert named(audit(app.recorder)) == {("deleted", "household/H2", 2)}


# ---------------------------------------------------------------------------------------------------- encryption

KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 bytes, for tests only


@pytest.fixture
def encrypted_app(db_url, monkeypatch):
    monkeypatch.setenv("CASECORE_CIPHER_KEY", KEY)
    application = bootstrap(db_url)
    yield application
    application.close()


def test_encrypted_personal_data_is_unreadable_at_rest_and_still_verifies(encrypted_app, db_url, monkeypatch):
    app = encrypted_app
    history(app)
    store = Store(app)
    _, _, state = store.row("household/H1", 1)
    member_id = app.get_household("H1").current_members()[0]["person_id"]
    assert member_id.encode() not in state and "成员1".encode() not in state and VILLAGE_CODE.encode() not in state
    assert app.get_household("H1").included_on == date(2023, 3, 13)  # the engine reads it back with the key
    assert audit(app.recorder).ok
    monkeypatch.delenv("CASECORE_CIPHER_KEY")
    keyless = bootstrap(db_url)  # an auditor without the key verifies the same stored bytes
    try:
        assert audit(keyless.recorder).ok
        store.set_state("household/H1", 2, state)
        assert named(audit(keyless.recorder)) == {("altered", "household/H1", 2)}
    finally:
        keyless.close()


# ---------------------------------------------------------------------------------------------------- the CLI


def test_the_cli_verifies_writes_a_checkpoint_and_names_tampering_against_it(sqlite_app, sqlite_url, tmp_path):
    history(sqlite_app)
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify", "--db", sqlite_url, "--json"])
    assert ok.exit_code == 0, ok.output
    assert orjson.loads(ok.stdout)["ok"] is True
    kept = tmp_path / "checkpoint.json"
    written = runner.invoke(cli, ["audit", "checkpoint", "--db", sqlite_url, "--out", str(kept)])
    assert written.exit_code == 0, written.output
    assert orjson.loads(kept.read_bytes())["events"] == 12
    store = Store(sqlite_app)
    store.delete("household/H1", 10, with_hash=True)
    plain = runner.invoke(cli, ["audit", "verify", "--db", sqlite_url])
    assert plain.exit_code == 0  # the head of a stream removed with its hash: only the checkpoint knows
    caught = runner.invoke(cli, ["audit", "verify", "--db", sqlite_url, "--from-checkpoint", str(kept), "--json"])
    assert caught.exit_code == 1
    assert [f["kind"] for f in orjson.loads(caught.stdout)["findings"]] == ["day_changed"]
    human = runner.invoke(cli, ["audit", "verify", "--db", sqlite_url, "--from-checkpoint", str(kept)])
    assert human.exit_code == 1 and "日摘要与检查点不符" in human.stdout
    assert "day_changed" not in human.stdout          # the kind's English name is for --json


def test_an_event_moved_in_the_global_order_is_named_as_reordered(app):
    history(app)
    store = Store(app)
    with store.sql() as q:
        q(f"UPDATE {store.events} SET {store.pos} = 1000 WHERE originator_id = ? AND originator_version = 1",
          ("household/H2",))
    report = audit(app.recorder)
    assert named(report) == {("reordered", "household/H2", 1)}
    assert report.findings[0].position == 1000


# ---------------------------------------------------------------------------------------------------- property

TAMPERINGS = st.sampled_from(["none", "alter", "delete", "swap", "insert"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=st.lists(st.tuples(st.integers(min_value=1, max_value=4), TAMPERINGS, st.integers(0, 10)),
                     min_size=1, max_size=4))
def test_any_mix_of_tampering_is_named_exactly_and_nothing_else(plan):
    """Households with 2–5 events each; each household suffers at most one kind of tampering at a random
    version: audit names exactly those events, and nothing on the untouched ones."""
    with tempfile.TemporaryDirectory() as tmp:
        app = bootstrap(str(Path(tmp) / "casecore.db"))
        try:
            for n, (leads, _, _) in enumerate(plan):
                run(app, [register(f"H{n}")] + [
                    cmd("record_lead", date(2023, 3, 2), household_id=f"H{n}", lead_id=f"L{i}",
                        source="self_declaration", risk_types=["illness"], detail="申报") for i in range(leads)])
            store = Store(app)
            expected = set()
            for n, (leads, kind, pick) in enumerate(plan):
                s, top = f"household/H{n}", leads + 1
                v = 1 + pick % top
                if kind == "alter":
                    _, _, state = store.row(s, v)
                    store.set_state(s, v, state + b" ")
                    expected.add(("altered", s, v))
                elif kind == "delete":
                    store.delete(s, v)
                    expected.add(("deleted", s, v))
                elif kind == "swap":
                    v = min(v, top - 1)
                    store.swap_versions(s, v, v + 1)
                    expected |= {("reordered", s, v), ("reordered", s, v + 1)}
                elif kind == "insert":
                    _, topic, state = store.row(s, top)
                    store.insert(s, top + 1, topic, state.replace(b"L", b"X"))
                    expected.add(("inserted", s, top + 1))
            assert named(audit(app.recorder)) == expected
        finally:
            app.close()


def test_a_recorded_time_moved_back_with_its_chain_recomputed_is_named(app):
    history(app)
    store = Store(app)
    with store.sql() as q:
        q(f"UPDATE {store.hashes} SET recorded_at = ? WHERE originator_id = ? AND originator_version = 5",
          ("2001-01-01T00:00:00.000000+00:00", "household/H1"))
    store.rehash("household/H1")
    assert named(audit(app.recorder)) == {("time_backwards", "household/H1", 5)}
