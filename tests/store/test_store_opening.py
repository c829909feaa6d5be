"""Reading never creates or writes a store: a mistyped path is named, not reported on; the auditor's evidence
copy keeps its digest; a copy on read-only media verifies. Only writing commands create a store."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.store.storage import StoreMissing, bootstrap
from tests.builders import register
from tests.services import PG_URL
from tests.store.test_audit import history

READERS = [
    ["audit", "verify"], ["audit", "checkpoint"], ["replay", "H1"], ["show", "H1"], ["events"],
    ["snapshots", "status"], ["roster"], ["inspect"], ["ledger"], ["report", "monthly", "--month", "2023-03"],
    ["projections", "status"],
]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def tables(db_url: str) -> list[str]:
    if "://" not in db_url:
        return []
    import psycopg

    schema = db_url.split("schema=", 1)[1]
    with psycopg.connect(PG_URL) as conn:
        return [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE "
                                           "table_schema = %s ORDER BY 1", (schema,)).fetchall()]


@pytest.mark.parametrize("command", READERS, ids=lambda c: " ".join(c))
def test_a_reading_command_on_a_store_that_does_not_exist_names_it_and_creates_nothing(db_url, command):
    result = invoke(*command, "--db", db_url)
    assert result.exit_code == 2, result.output
    shown = db_url if "://" not in db_url else db_url.split("://", 1)[1]
    assert shown in " ".join(result.stderr.split()).replace(" ", "") or shown in result.stderr
    assert "不存在" in result.stderr
    assert "未发现篡改" not in result.output
    assert not Path(db_url).exists() if "://" not in db_url else tables(db_url) == []


def test_writing_commands_create_the_store(db_url, tmp_path):
    commands = tmp_path / "cmds.jsonl"
    commands.write_text(register("H1").model_dump_json() + "\n", encoding="utf-8")
    assert invoke("apply", str(commands), "--db", db_url).exit_code == 0
    assert invoke("audit", "verify", "--db", db_url).exit_code == 0


def test_bootstrap_for_reading_refuses_a_missing_store(db_url):
    with pytest.raises(StoreMissing, match="不存在"):
        bootstrap(db_url, read_only=True)
    with pytest.raises(StoreMissing):
        bootstrap(db_url, create=False)


def test_a_store_opened_read_only_refuses_every_write_and_is_left_as_it_was(db_url):
    writer = bootstrap(db_url)
    try:
        history(writer)
    finally:
        writer.close()
    before = tables(db_url)
    reader = bootstrap(db_url, read_only=True)
    try:
        assert reader.get_household("H1").version == 10
        with pytest.raises(Exception, match=r"(?i)read.?only"):
            reader.handle(register("H9"))
    finally:
        reader.close()
    assert tables(db_url) == before
    check = bootstrap(db_url, create=False)
    try:
        assert [e.originator_version for e in check.events.get("household/H9")] == []
    finally:
        check.close()


def _fingerprint(path: Path) -> tuple[str, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


AUDITOR_READS = [["audit", "verify", "--json"], ["audit", "checkpoint"], ["replay", "H1", "--json"],
                 ["show", "H1", "--json"], ["events"], ["snapshots", "status", "--json"]]


@pytest.fixture
def evidence(tmp_path, monkeypatch) -> Path:
    """A closed store with history and snapshots, copied as an auditor would, file and folder read-only."""
    monkeypatch.setenv("CASECORE_SNAPSHOT_INTERVAL", "4")
    original = tmp_path / "live.db"
    app = bootstrap(str(original))
    try:
        history(app)
    finally:
        app.close()
    folder = tmp_path / "evidence"
    folder.mkdir()
    copy = folder / "copy.db"
    shutil.copyfile(original, copy)
    copy.chmod(stat.S_IRUSR | stat.S_IRGRP)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    yield copy
    folder.chmod(stat.S_IRWXU)


def test_the_auditors_reads_leave_the_evidence_copy_byte_for_byte_as_it_was(evidence):
    before = _fingerprint(evidence)
    for command in AUDITOR_READS:
        result = invoke(*command, "--db", str(evidence))
        assert result.exit_code == 0, (command, result.output)
    assert orjson.loads(invoke("audit", "verify", "--json", "--db", str(evidence)).stdout)["events"] == 12
    assert _fingerprint(evidence) == before


def test_a_copy_on_read_only_media_verifies(evidence, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(evidence.parent), str(media)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        # no privilege to mount here: SQLite's own flag for files nothing can write stands in for the media
        target = f"sqlite:///{evidence}?immutable=1"
    else:
        target = str(media / evidence.name)
    try:
        if mounted.returncode == 0:
            assert not os.access(media, os.W_OK)
        for command in AUDITOR_READS:
            result = invoke(*command, "--db", target)
            assert result.exit_code == 0, (command, result.output)
        report = orjson.loads(invoke("audit", "verify", "--json", "--db", target).stdout)
        assert report["ok"] and report["events"] == 12 and report["snapshots"]["checked"] == 2
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", str(media)], check=True)


NO_CATCH_UP = [["roster", "--all", "--json", "--no-catch-up"], ["ledger", "--json", "--no-catch-up"],
               ["inspect", "--as-of", "2023-06-01", "--json", "--no-catch-up"]]


def test_readers_without_catch_up_read_the_tables_as_they_stand_and_leave_the_copy_as_it_was(tmp_path):
    live = tmp_path / "live.db"
    app = bootstrap(str(live))
    try:
        history(app)
    finally:
        app.close()
    for command in (["roster"], ["ledger"], ["inspect", "--as-of", "2023-06-01"]):   # the live system folds
        assert invoke(*command, "--db", str(live)).exit_code == 0
    copy = tmp_path / "copy.db"
    shutil.copyfile(live, copy)
    before = _fingerprint(copy)
    outputs = {}
    for command in NO_CATCH_UP:
        result = invoke(*command, "--db", str(copy))
        assert result.exit_code == 0, (command, result.output)
        outputs[command[0]] = result.stdout
    assert _fingerprint(copy) == before
    assert {orjson.loads(line)["household_id"] for line in outputs["roster"].splitlines()} == {"H1", "H2"}
    # the same rows the live store gives after its own catch-up
    assert invoke("roster", "--all", "--json", "--db", str(live)).stdout == outputs["roster"]


@pytest.mark.parametrize("command", NO_CATCH_UP, ids=lambda c: c[0])
def test_a_reader_without_catch_up_on_tables_never_built_says_so_and_builds_nothing(db_url, command):
    app = bootstrap(db_url)
    try:
        history(app)
    finally:
        app.close()
    before = tables(db_url)
    path_before = _fingerprint(Path(db_url)) if "://" not in db_url else None
    result = invoke(*command, "--db", db_url)
    assert result.exit_code == 2 and "投影" in result.stderr and "catch-up" in result.stderr
    assert tables(db_url) == before
    if path_before is not None:
        assert _fingerprint(Path(db_url)) == path_before


def test_the_auditors_reads_answer_on_both_stores_and_create_nothing(db_url, monkeypatch):
    monkeypatch.setenv("CASECORE_SNAPSHOT_INTERVAL", "4")
    app = bootstrap(db_url)
    try:
        history(app)
    finally:
        app.close()
    before = tables(db_url) if "://" in db_url else _fingerprint(Path(db_url))
    for command in AUDITOR_READS:
        result = invoke(*command, "--db", db_url)
        assert result.exit_code == 0, (command, result.output)
    assert orjson.loads(invoke("show", "H1", "--json", "--db", db_url).stdout)["stage"] == "monitored"
    assert len(invoke("events", "--db", db_url).stdout.splitlines()) == 12
    assert (tables(db_url) if "://" in db_url else _fingerprint(Path(db_url))) == before


def test_readers_without_catch_up_read_the_folded_tables_on_both_stores(db_url):
    app = bootstrap(db_url)
    try:
        history(app)
    finally:
        app.close()
    assert invoke("roster", "--db", db_url).exit_code == 0   # folds
    before = tables(db_url) if "://" in db_url else _fingerprint(Path(db_url))
    result = invoke("roster", "--all", "--json", "--no-catch-up", "--db", db_url)
    assert result.exit_code == 0, result.output
    assert {orjson.loads(line)["household_id"] for line in result.stdout.splitlines()} == {"H1", "H2"}
    assert (tables(db_url) if "://" in db_url else _fingerprint(Path(db_url))) == before


@pytest.mark.postgres
def test_a_command_closes_its_connections_when_it_ends(pg_url):
    """Many commands in one process (a test runner, an embedding service): each one's pool is closed when it
    ends, instead of holding its connections (PostgreSQL then refuses new clients)."""
    import psycopg

    app = bootstrap(pg_url)
    try:
        history(app)
    finally:
        app.close()
    schema = pg_url.split("schema=", 1)[1]
    for command in (["show", "H1"], ["replay", "H1"], ["events"], ["ledger"], ["projections", "status"]):
        assert invoke(*command, "--db", pg_url).exit_code == 0, command
    # a closed connection's server process leaves pg_stat_activity a moment after the client let it go
    for _ in range(50):
        with psycopg.connect(PG_URL) as conn:
            (left,) = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                   "AND query LIKE %s", (f"%{schema}%",)).fetchone()
        if left == 0:
            break
        time.sleep(0.1)
    assert left == 0
