"""The use cases the command line, the HTTP service and the demo share for imports, read models and exports:
the export's date, catching up and rebuilding through callbacks, the reads as the tables stand equal to the
caught-up ones, and the ledger's workbook written without catching up."""

from __future__ import annotations

import os
from datetime import date

from openpyxl import load_workbook
from typer.testing import CliRunner

from adapters.store.storage import bootstrap
from adapters.usecases import (
    catch_up_projections,
    inspect,
    national_exported_on,
    open_read_models,
    read_ledgers,
    read_roster,
    rebuild_projections,
    roster_rows,
    run_rules,
    unknown_rules,
)
from tests.builders import inclusion_path, register, run


def test_the_export_date_is_the_one_given_else_the_file_name_s_else_the_file_s(tmp_path):
    named = tmp_path / "监测对象信息_522631_20220630.xlsx"
    plain = tmp_path / "监测对象信息.xlsx"
    for p in (named, plain):
        p.write_bytes(b"")
    os.utime(plain, (1_700_000_000, 1_700_000_000))
    assert national_exported_on(named, date(2022, 7, 1)) == date(2022, 7, 1)
    assert national_exported_on(named) == date(2022, 6, 30)
    assert national_exported_on(plain) == date.fromtimestamp(1_700_000_000)


def test_unknown_rules_are_named():
    assert unknown_rules(None) == []
    assert unknown_rules(["no_such_rule"]) == ["no_such_rule"]


def test_catch_up_and_rebuild_report_each_projection_and_end_at_the_head(sqlite_url):
    app = bootstrap(sqlite_url)
    try:
        run(app, [register("H1"), *inclusion_path("H1"), register("H2")])
        seen: list[tuple[str, int, int]] = []
        with open_read_models(app, "roster") as rm:
            caught = catch_up_projections(rm, lambda *a: seen.append(a), lambda *a: seen.append(a))
            head = rm.runner.max_position()
            assert caught == {"roster": (head, head)}
            assert seen[0] == ("roster", 0, head) and seen[-1] == ("roster", head, head)
            starts: list[tuple[str, int, int, bool]] = []
            rebuilt = rebuild_projections(rm, lambda *a: starts.append(a), lambda *a: None)
            assert rebuilt == {"roster": (head, head)}
            assert starts == [("roster", 0, head, False)]
            with rm.engine.connect() as conn:
                as_they_stand, places = roster_rows(conn, None, all_stages=True)
        assert places is None
        caught_up, places = read_roster(app, None, all_stages=True, for_workbook=True)
        assert places is not None
        assert [r["household_id"] for r in caught_up] == [r["household_id"] for r in as_they_stand] == ["H1", "H2"]
        assert "head_name" in caught_up[0]
        day = date(2024, 1, 1)
        assert read_ledgers(app, day, None) == ([], [])
        done = inspect(app, day)
        with open_read_models(app, "casefacts") as rm, rm.engine.connect() as conn:
            again = run_rules(conn, app.policies, day)
        assert [f.key for f in again.findings] == [f.key for f in done.findings]
        assert again.cadre_unknown == done.cadre_unknown
    finally:
        app.close()


def test_the_ledger_workbook_is_written_without_catching_up(sqlite_url, tmp_path):
    from adapters.cli import app as cli

    app = bootstrap(sqlite_url)
    try:
        run(app, [register("H1"), *inclusion_path("H1")])
        read_ledgers(app, date(2024, 1, 1), None)   # the ledger tables exist
    finally:
        app.close()
    path = tmp_path / "台账.xlsx"
    result = CliRunner().invoke(cli, ["ledger", "--db", sqlite_url, "--no-catch-up", "--as-of", "2024-01-01",
                                      "--xlsx", str(path)])
    assert result.exit_code == 0, result.output
    assert "问题台账 0 条" in result.output
    assert load_workbook(path).sheetnames[:2] == ["问题台账", "整改台账"]
