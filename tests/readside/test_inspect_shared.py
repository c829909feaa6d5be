"""An inspection shared out among connections that read one snapshot (`adapters.readside.snapshot`,
`Inspector.run(workers=…)`) finds what one connection finds, finding by finding and in order (sentences,
evidence with the cycle's measures, problems raised for findings), for the whole store, a county and a set of
households; and the connections do read one snapshot when a write lands while they open. On SQLite and
PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.readside import snapshot as snapshots
from adapters.readside.snapshot import inspection_jobs, jobs_for, snapshot
from adapters.usecases import run_rules
from benchmarks.bench_inspect import generate
from casecore.policy import default_policies
from projections import casefacts as cf
from projections.queries.inspector import RULES, Inspector
from projections.runner import positions, positions_metadata

POLICIES = default_policies()


def _positioned(conn: sa.Connection, position: int) -> None:
    conn.execute(positions.delete().where(positions.c.name == "casefacts"))
    conn.execute(positions.insert().values(name="casefacts", position=position, rebuilding=False,
                                           updated_at=datetime.now(UTC)))


def _facts(request: pytest.FixtureRequest, kind: str, tmp_path: Any) -> Iterator[sa.Engine]:
    """An engine on a database holding generated case facts (400 households, some of their findings raised as
    problems) and the position the case facts stand at (a SQLite file in WAL mode, or a PostgreSQL schema)."""
    if kind == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'facts.db'}")
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    else:
        url = request.getfixturevalue("pg_url")
        base, schema = url.split("?schema=")
        engine = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1),
                                  connect_args={"options": f"-csearch_path={schema}"})
    rows = generate(400, 11)
    with engine.begin() as conn:
        cf.metadata.create_all(conn)
        positions_metadata.create_all(conn)
        for table in cf.metadata.sorted_tables:
            if rows[table]:
                conn.execute(table.insert(), rows[table])
        _positioned(conn, 1)
    with engine.begin() as conn:   # some findings already in the double ledger
        found = Inspector(conn, POLICIES, date(2023, 9, 30)).run()
        raised = [{**rows[cf.problems][0], "problem_id": f"R{n}", "household_id": f.household_id,
                   "division_code": f.division_code, "finding_key": f.key, "status": "assigned"}
                  for n, f in enumerate(found[::9])]
        conn.execute(cf.problems.insert(), raised)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def facts(request, tmp_path) -> Iterator[sa.Engine]:
    yield from _facts(request, request.param, tmp_path)


@pytest.fixture
def sqlite_facts(request, tmp_path) -> Iterator[sa.Engine]:
    yield from _facts(request, "sqlite", tmp_path)


@pytest.fixture
def pg_facts(request, tmp_path) -> Iterator[sa.Engine]:
    yield from _facts(request, "postgres", tmp_path)


def seen(findings: list[Any]) -> list[tuple[Any, ...]]:
    return [(f.key, f.severity, f.division_code, f.problem_id, f.raised_problem, f.detail, f.evidence)
            for f in findings]


@pytest.mark.parametrize(("as_of", "division"), [(date(2023, 9, 30), None), (date(2022, 6, 30), None),
                                                 (date(2024, 3, 31), "522603")])
@pytest.mark.parametrize("count", [2, 3])
def test_a_shared_out_run_finds_what_one_connection_finds(facts, as_of, division, count):
    with facts.connect() as conn:
        alone = Inspector(conn, POLICIES, as_of, division).run()
    with snapshot(facts, count) as shared:
        assert len(shared.connections) == count
        together = Inspector(shared.main, POLICIES, as_of, division).run(None, shared.workers)
    assert any(f.raised_problem for f in alone) and any("measures" in f.evidence for f in alone)
    assert seen(together) == seen(alone)


def test_a_shared_out_run_of_some_rules_and_households(facts):
    as_of = date(2023, 9, 30)
    with facts.connect() as conn:
        households = sorted({f.household_id for f in Inspector(conn, POLICIES, as_of).run() if f.household_id})[::3]
        rules = ["no_developmental_measure", "slow_identification", "eliminated_below_line"]
        alone = Inspector(conn, POLICIES, as_of, households=households).run(rules)
    with snapshot(facts, 2) as shared:
        together = Inspector(shared.main, POLICIES, as_of, households=households).run(rules, shared.workers)
    assert {f.rule for f in alone} == set(rules)
    assert seen(together) == seen(alone)


def test_the_use_case_shares_out_a_county_and_reads_a_village_on_its_own_connection(facts):
    as_of = date(2023, 9, 30)
    with facts.connect() as conn:
        for division in (None, "5226", "522603001"):
            alone = Inspector(conn, POLICIES, as_of, division)
            one = run_rules(conn, POLICIES, as_of, None, division, jobs=1)
            two = run_rules(conn, POLICIES, as_of, None, division, jobs=2)
            assert seen(two.findings) == seen(one.findings) == seen(alone.run())
            assert two.cadre_unknown == one.cadre_unknown == alone.cadre_unknown()
    assert jobs_for("522603001", 4) == 1 and jobs_for("522603", 4) == 4 and jobs_for(None, 3) == 3


def test_an_error_in_a_worker_is_raised_once_every_worker_stopped(facts, monkeypatch):
    def broken(self):
        raise RuntimeError("rule failed")
        yield

    monkeypatch.setattr(Inspector, "slow_identification", broken)
    with snapshot(facts, 2) as shared, pytest.raises(RuntimeError, match="rule failed"):
        Inspector(shared.main, POLICIES, date(2023, 9, 30)).run(None, shared.workers)


@pytest.mark.postgres
def test_connections_on_postgresql_keep_the_exported_snapshot_while_writes_commit(pg_facts):
    facts = pg_facts
    with snapshot(facts, 3) as shared:
        with facts.begin() as conn:
            _positioned(conn, 2)
            conn.execute(cf.households.delete())
        for conn in shared.connections:
            assert conn.execute(sa.select(positions.c.position)).scalar_one() == 1
            assert conn.execute(sa.select(sa.func.count()).select_from(cf.households)).scalar_one() == 400
        assert shared.positions["casefacts"] == 1
    with facts.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(cf.households)).scalar_one() == 0


def _writing_after(facts: sa.Engine, monkeypatch, writes: int) -> list[int]:
    """Make each of the first `writes` beginnings of a first connection commit a move of the case facts (from
    another connection, as a catch-up would) before the next connection begins; returns the positions moved to."""
    begin = snapshots._begin
    moved: list[int] = []
    calls = {"n": 0}

    def racing(conn: sa.Connection) -> dict[str, int]:
        seen_now = begin(conn)
        calls["n"] += 1
        if len(moved) < writes and calls["n"] % 3 == 1:   # after the first of three connections begins
            def write() -> None:
                with facts.begin() as other:
                    _positioned(other, seen_now["casefacts"] + 1)
                    other.execute(cf.leads.delete().where(cf.leads.c.household_id == f"B{len(moved):07d}"))
            worker = threading.Thread(target=write)   # another connection, as another process would write
            worker.start()
            worker.join()
            moved.append(seen_now["casefacts"] + 1)
        return seen_now

    monkeypatch.setattr(snapshots, "_begin", racing)
    return moved


def test_sqlite_connections_begin_again_when_a_write_lands_while_they_open(sqlite_facts, monkeypatch):
    facts = sqlite_facts
    moved = _writing_after(facts, monkeypatch, 2)
    with snapshot(facts, 3) as shared:
        assert moved == [2, 3]
        assert len(shared.connections) == 3 and shared.positions["casefacts"] == 3
        counts = {conn.execute(sa.select(sa.func.count()).select_from(cf.leads)).scalar_one()
                  for conn in shared.connections}
        assert len(counts) == 1   # every connection sees both deletions
        with facts.begin() as conn:   # a write after they opened is seen by none of them
            _positioned(conn, 9)
        assert {conn.execute(sa.select(positions.c.position)).scalar_one() for conn in shared.connections} == {3}


def test_sqlite_reads_on_one_connection_when_writes_keep_landing(sqlite_facts, monkeypatch):
    facts = sqlite_facts
    moved = _writing_after(facts, monkeypatch, snapshots.TRIES)
    with snapshot(facts, 3) as shared:
        assert len(moved) == snapshots.TRIES
        assert len(shared.connections) == 1 and shared.workers == ()
        assert shared.positions["casefacts"] == 1 + snapshots.TRIES
        found = Inspector(shared.main, POLICIES, date(2023, 9, 30)).run(list(RULES)[:3], shared.workers)
    with facts.connect() as conn:
        assert seen(found) == seen(Inspector(conn, POLICIES, date(2023, 9, 30)).run(list(RULES)[:3]))


def test_how_many_connections_an_inspection_uses(monkeypatch):
    monkeypatch.setattr(snapshots.os, "cpu_count", lambda: 16)
    assert inspection_jobs({}) == snapshots.MOST_JOBS
    monkeypatch.setattr(snapshots.os, "cpu_count", lambda: 2)
    assert inspection_jobs({}) == 2
    assert inspection_jobs({"CASECORE_INSPECT_JOBS": "3"}) == 3
    for wrong in ("0", "x", "99"):
        with pytest.raises(ValueError, match="CASECORE_INSPECT_JOBS"):
            inspection_jobs({"CASECORE_INSPECT_JOBS": wrong})


@pytest.mark.postgres
def test_the_planner_settings_of_a_run_are_its_own(pg_facts, monkeypatch):
    """On PostgreSQL the rules run without JIT on every connection of the run, and a hashed rule's statement
    without nested loops; the caller's transaction has its own settings back afterwards."""
    settings = sa.select(sa.func.current_setting("jit"), sa.func.current_setting("enable_nestloop"))
    seen: list[tuple[str, str, bool]] = []

    def reporting(self):
        seen.append((*self.rows(settings)[0], False))
        seen.append((*self.rows(settings, hashed=True)[0], True))
        yield from ()

    monkeypatch.setattr(Inspector, "short_publicity", reporting)
    monkeypatch.setattr(Inspector, "backdated_entry", reporting)
    with snapshot(pg_facts, 2) as shared:
        for conn in shared.connections:
            conn.exec_driver_sql("SET LOCAL jit = on")
        Inspector(shared.main, POLICIES, date(2023, 9, 30)).run(["short_publicity", "backdated_entry"],
                                                               shared.workers)
        after = {(conn.exec_driver_sql("SHOW jit").scalar_one(), conn.exec_driver_sql("SHOW enable_nestloop")
                  .scalar_one()) for conn in shared.connections}
    assert sorted(seen) == [("off", "off", True)] * 2 + [("off", "on", False)] * 2
    assert after == {("on", "on")}   # restored for what the caller runs next in its transaction


def test_the_command_line_names_a_wrong_number_of_connections_before_it_runs(sqlite_url):
    from typer.testing import CliRunner

    from adapters.cli import app as cli

    done = CliRunner().invoke(cli, ["inspect", "--db", sqlite_url], env={"CASECORE_INSPECT_JOBS": "many"})
    assert done.exit_code == 2 and "CASECORE_INSPECT_JOBS" in done.output and "Traceback" not in done.output
