"""Snapshots: a case loads from its newest snapshot, decides exactly as from its whole history, and the audit
names a snapshot that is not what the events fold into (on SQLite and PostgreSQL)."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from datetime import UTC, datetime, time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.store import snapshot_store as snapshots
from adapters.store.storage import bootstrap, resolve_store
from benchmarks.province import county_commands, guizhou_counties
from casecore.application import CaseManagement, project
from casecore.commands import parse_command
from casecore.snapshots import FOLD, CaseSnapshot, crossed, state_of
from tests.store.test_audit import Store, history

INTERVAL = 4


def cli_json(*args: str) -> tuple[int, dict]:
    result = CliRunner().invoke(cli, [*args, "--json"])
    return result.exit_code, orjson.loads(result.stdout) if result.stdout.strip() else {}


def newest(app, stream: str) -> CaseSnapshot | None:
    return next(iter(app.snapshots.get(stream, desc=True, limit=1)), None)


def replayed(app, stream: str):
    """The case folded from every stored event, no snapshot."""
    return project(None, app.events.get(stream))


def normalised(app, aggregate) -> dict:
    t = app.mapper.transcoder
    return t.decode(t.encode(state_of(aggregate)))


class SnapshotRows(Store):
    """Direct SQL on the snapshot table, bypassing the engine."""

    def __init__(self, app):
        super().__init__(app)
        self.table = app.snapshots.recorder.events_table_name

    def versions(self, stream: str) -> list[int]:
        with self.sql() as q:
            return [r[0] for r in q(f"SELECT originator_version FROM {self.table} WHERE originator_id = ? "
                                    "ORDER BY originator_version", (stream,))]

    def edit(self, stream: str, version: int, change) -> None:
        """Rewrite a snapshot's stored JSON with `change(document)` (the stored bytes are plain JSON here)."""
        with self.sql() as q:
            (state,) = q(f"SELECT state FROM {self.table} WHERE originator_id = ? AND originator_version = ?",
                         (stream, version))[0]
            document = orjson.loads(bytes(state))
            change(document)
            q(f"UPDATE {self.table} SET state = ? WHERE originator_id = ? AND originator_version = ?",
              (orjson.dumps(document), stream, version))

    def overwrite(self, stream: str, version: int, state: bytes) -> None:
        with self.sql() as q:
            q(f"UPDATE {self.table} SET state = ? WHERE originator_id = ? AND originator_version = ?",
              (state, stream, version))


@pytest.fixture
def snap_app(db_url, monkeypatch):
    monkeypatch.setenv("CASECORE_SNAPSHOT_INTERVAL", str(INTERVAL))
    monkeypatch.setenv("CASECORE_DB", db_url)
    application = bootstrap(db_url)
    try:
        yield application
    finally:
        application.close()


def test_crossing_an_interval():
    assert crossed(1, 4, 4) and crossed(4, 4, 4) and crossed(3, 5, 4) and crossed(2, 9, 4)
    assert not crossed(1, 3, 4) and not crossed(5, 7, 4) and not crossed(1, 100, 0)


def test_a_case_is_snapshotted_as_it_crosses_the_interval_and_loads_like_its_history(snap_app):
    history(snap_app)  # H1: 10 events, one a command; H2: 2 events
    rows = SnapshotRows(snap_app)
    assert rows.versions("household/H1") == [4, 8]
    assert rows.versions("household/H2") == []
    snapshot = newest(snap_app, "household/H1")
    assert snapshot is not None and snapshot.originator_version == 8 and snapshot.fold == FOLD
    loaded = snap_app.get_household("H1")
    assert loaded.version == 10
    assert normalised(snap_app, loaded) == normalised(snap_app, replayed(snap_app, "household/H1"))


def test_the_audit_names_an_altered_snapshot_and_clearing_them_restores_the_truth(snap_app):
    history(snap_app)
    assert snap_app.get_household("H1").household_type == "general"
    code, report = cli_json("audit", "verify")
    assert code == 0 and report["ok"] and report["snapshots"] == {"streams": 1, "checked": 2}

    SnapshotRows(snap_app).edit("household/H1", 8, lambda d: d["state"].update(household_type="poverty_alleviated"))
    # the engine trusts its snapshots between audits: this is what the audit is for
    assert snap_app.get_household("H1").household_type == "poverty_alleviated"
    code, report = cli_json("audit", "verify")
    assert code == 1 and not report["ok"]
    assert [(f["kind"], f["stream"], f["version"]) for f in report["findings"]] == [
        ("snapshot_altered", "household/H1", 8)]
    assert "household_type" in report["findings"][0]["detail"]

    assert cli_json("snapshots", "clear") == (0, {"cleared": 2})
    assert snap_app.get_household("H1").household_type == "general"
    assert cli_json("audit", "verify")[0] == 0
    assert cli_json("snapshots", "take") == (0, {"taken": 1, "fold": FOLD})
    assert SnapshotRows(snap_app).versions("household/H1") == [10]
    code, status = cli_json("snapshots", "status")
    assert (code, status["snapshots"], status["interval"], status["fold"]) == (0, 1, INTERVAL, FOLD)
    assert cli_json("audit", "verify")[0] == 0


def test_a_snapshot_of_a_version_the_stream_never_had_is_named(snap_app):
    history(snap_app)
    rows = SnapshotRows(snap_app)
    with rows.sql() as q:
        q(f"UPDATE {rows.table} SET originator_version = 40 WHERE originator_id = ? AND originator_version = 8",
          ("household/H1",))
    code, report = cli_json("audit", "verify")
    assert code == 1
    assert [(f["kind"], f["version"]) for f in report["findings"]] == [("snapshot_altered", 40)]


def test_an_unreadable_snapshot_is_passed_over_and_named(snap_app):
    history(snap_app)
    SnapshotRows(snap_app).overwrite("household/H1", 8, b"\x00not a snapshot")
    household = snap_app.get_household("H1")  # the newest snapshot is passed over: loads from the events
    assert household.version == 10 and household.stage == "monitored"
    code, report = cli_json("audit", "verify")
    assert code == 1
    assert [(f["kind"], f["version"]) for f in report["findings"]] == [("snapshot_unreadable", 8)]


def test_a_snapshot_taken_by_another_fold_is_never_loaded(snap_app):
    history(snap_app)
    rows = SnapshotRows(snap_app)

    def older_release(document: dict) -> None:
        document["fold"] = "0" * 16
        document["state"]["household_type"] = "poverty_alleviated"   # what an older fold might have produced

    rows.edit("household/H1", 8, older_release)
    rows.edit("household/H1", 4, older_release)
    assert newest(snap_app, "household/H1") is None
    assert snap_app.get_household("H1").household_type == "general"
    assert cli_json("audit", "verify")[0] == 0   # not comparable with this fold, and never used
    assert cli_json("snapshots", "take")[1]["taken"] == 1
    assert newest(snap_app, "household/H1").originator_version == 10
    # a stale snapshot at the very version to be taken is replaced
    rows.edit("household/H1", 10, older_release)
    assert newest(snap_app, "household/H1") is None
    assert cli_json("snapshots", "take")[1]["taken"] == 1
    assert rows.versions("household/H1") == [4, 8, 10]
    assert newest(snap_app, "household/H1").fold == FOLD
    assert snap_app.get_household("H1").household_type == "general"


def test_snapshots_are_off_with_interval_zero(sqlite_url, monkeypatch):
    monkeypatch.setenv("CASECORE_SNAPSHOT_INTERVAL", "0")
    application = bootstrap(sqlite_url)
    try:
        assert application.snapshots is None
        history(application)
        assert application.get_household("H1").version == 10
    finally:
        application.close()
    result = CliRunner().invoke(cli, ["snapshots", "status", "--db", sqlite_url])
    assert result.exit_code == 2 and "CASECORE_SNAPSHOT_INTERVAL=0" in result.stderr
    monkeypatch.setenv("CASECORE_SNAPSHOT_INTERVAL", "often")
    with pytest.raises(ValueError, match="CASECORE_SNAPSHOT_INTERVAL"):
        bootstrap(sqlite_url)


def _on_business_day(command) -> datetime:
    return datetime.combine(command.on, time(9), UTC)


def _comparable(app, stream: str) -> list[dict]:
    return [{k: v for k, v in asdict(e).items() if k != "timestamp"} | {"type": type(e).__name__}
            for e in app.events.get(stream)]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.floats(0, 1), interval=st.integers(1, 9), bulk=st.booleans(),
       county=st.sampled_from(guizhou_counties()[:5]))
def test_snapshots_never_change_what_the_engine_decides(seed, interval, bulk, county):
    """A generated county's commands decided twice — without snapshots, and with a snapshot every `interval`
    events — give the same outcomes, the same stored events, and cases that load to the same state."""
    commands = [parse_command(c) for c in county_commands(county, 4, seed)]
    with tempfile.TemporaryDirectory() as tmp:
        apps = {}
        for n in (0, interval):
            store = resolve_store(str(Path(tmp) / f"every-{n}.db"))
            app = CaseManagement(env=store.env | {"CASECORE_SNAPSHOT_INTERVAL": str(n)})
            assert (app.snapshots is None) == (n == 0)
            app.recording_clock = _on_business_day
            apps[n] = app
        try:
            outcomes = {}
            for n, app in apps.items():
                if bulk:
                    outcomes[n] = [o.as_dict() for o in app.handle_many(commands, batch_size=7)]
                else:
                    outcomes[n] = [app.handle(c).as_dict() for c in commands]
            assert outcomes[0] == outcomes[interval]
            plain, snapped = apps[0], apps[interval]
            streams = snapshots.event_streams(plain)
            assert streams == snapshots.event_streams(snapped)
            for stream in streams:
                assert _comparable(plain, stream) == _comparable(snapped, stream), stream
                loaded = snapped.repository.get(stream)
                assert loaded.version == plain.repository.get(stream).version
                assert normalised(snapped, loaded) == normalised(plain, replayed(plain, stream))
            assert snapshots.count(snapped) > 0
            assert not snapshots.verify(snapped).findings
        finally:
            for app in apps.values():
                app.close()


def test_an_auditor_without_the_cipher_key_verifies_the_events_and_is_told_the_snapshots_were_not(
        db_url, monkeypatch):
    from tests.store.test_audit import KEY

    monkeypatch.setenv("CASECORE_SNAPSHOT_INTERVAL", str(INTERVAL))
    monkeypatch.setenv("CASECORE_DB", db_url)
    monkeypatch.setenv("CASECORE_CIPHER_KEY", KEY)
    application = bootstrap(db_url)
    try:
        history(application)
    finally:
        application.close()
    code, report = cli_json("audit", "verify")
    assert (code, report["snapshots"]) == (0, {"streams": 1, "checked": 2})
    monkeypatch.delenv("CASECORE_CIPHER_KEY")
    code, report = cli_json("audit", "verify")
    assert code == 0 and report["ok"] and report["events"] == 12
    assert report["snapshots"]["unchecked"] == 2 and "CASECORE_CIPHER_KEY" in report["snapshots"]["reason"]


def test_deleting_an_event_below_a_snapshot_is_named_with_the_snapshot_and_the_audit_finishes(snap_app):
    history(snap_app)   # H1: snapshots at 4 and 8 of 10 events
    run_more = snap_app.get_household("H2")
    assert run_more.version == 2
    SnapshotRows(snap_app).delete("household/H1", 3)
    SnapshotRows(snap_app).set_state("household/H2", 2, b"{}")   # another finding after it, in another stream
    code, report = cli_json("audit", "verify")
    assert code == 1
    assert report["events"] == 11
    found = {(f["kind"], f["stream"], f["version"]) for f in report["findings"]}
    assert found == {("deleted", "household/H1", 3), ("altered", "household/H2", 2),
                     ("snapshot_altered", "household/H1", 4), ("snapshot_altered", "household/H1", 8)}
    detail = next(f["detail"] for f in report["findings"] if f["kind"] == "snapshot_altered")
    assert "3" in detail
