"""`casecore projections rebuild --jobs N`: projections rebuilt by several real processes end exactly as a
rebuild in one process leaves them, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.readside.parallel import RebuildFailed, plan, rebuild
from adapters.readside.readmodels import read_models, store_of
from benchmarks.province import county_commands, guizhou_counties
from casecore.commands import parse_command
from projections.registry import all_projections, names


def tables(engine) -> dict[str, list[tuple]]:
    """Every projection table's rows, in primary-key order."""
    out = {}
    with engine.connect() as conn:
        for p in all_projections():
            for t in p.metadata.sorted_tables:
                rows = conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all()
                out[t.name] = [tuple(r) for r in rows]
    return out


def test_the_plan_balances_fold_cost_and_covers_every_projection():
    every = names()
    for jobs in (1, 2, 3, 5, 9):
        groups = plan(every, jobs)
        assert sorted(n for g in groups for n in g) == sorted(every)
        assert len(groups) == min(jobs, len(every))
    # the case facts alone against the other four (47 against 44 by their weights)
    assert plan(["casefacts", "timeline", "roster", "activity", "ledger"], 2) == [
        ["casefacts"], ["roster", "timeline", "activity", "ledger"]]


def test_a_parallel_rebuild_ends_as_a_rebuild_in_one_process(app):
    commands = [parse_command(c) for c in county_commands(guizhou_counties()[0], 30, 0.25)]
    assert all(o.ok for o in app.handle_many(commands, batch_size=200))
    with read_models(app, batch_size=300) as rm:
        single = rm.runner.rebuild_many(restart=True)
        expected = tables(rm.engine)
        assert len(expected["roster"]) == 30

        result = rebuild(store_of(app).url, names(), jobs=2, batch_size=300, restart=True)
        assert result.totals == single
        assert len(result.groups) == 2 and len(result.peak_rss_mb) == 2
        assert set(result.fold_seconds) == set(names())
        assert tables(rm.engine) == expected
        assert all(not s.rebuilding and s.behind == 0 for s in rm.runner.status())

        outcome = CliRunner().invoke(cli, ["projections", "rebuild", "--restart", "--jobs", "3",
                                           "--batch-size", "500", "--db", store_of(app).url])
        assert outcome.exit_code == 0, outcome.output
        assert tables(rm.engine) == expected


def test_a_group_whose_process_fails_is_named(sqlite_app):
    with pytest.raises(RebuildFailed, match="no_such_projection"):
        rebuild(store_of(sqlite_app).url, ["roster", "no_such_projection"], jobs=2, batch_size=100)
