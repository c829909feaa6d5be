"""`casecore roster` and `casecore projections` as a user runs them: the roster as JSON Lines and as a
workbook read back with openpyxl, on SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, datetime

import orjson
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from adapters.output.sheets import HEADER_ROW
from adapters.store.storage import bootstrap
from tests.builders import cmd, inclusion_path, measure, register, run
from tests.e2e.reading import readable
from tests.workbooks import headers, table

runner = CliRunner()


def cli(*args: str):
    from adapters.cli import app

    return runner.invoke(app, list(args))


@pytest.fixture
def county(db_url) -> str:
    """H1 monitored with a cadre and two measures, H2 monitored, H3 registered only."""
    app = bootstrap(db_url)
    try:
        run(app, [register("H1", household_type="poverty_alleviated"),
                  *inclusion_path("H1", category="unstable_alleviated", risk_types=("illness", "housing"),
                                  per_capita_income=5300),
                  cmd("assign_cadre", date(2023, 3, 14), household_id="H1",
                      cadre={"id": "c-01", "name": "王帮扶", "unit": "522631101000"}),
                  *measure("H1", "M1", date(2023, 3, 15), date(2023, 3, 20)),
                  *measure("H1", "M2", date(2023, 3, 16), measure_type="housing", addresses=("housing",)),
                  register("H2"), *inclusion_path("H2"), register("H3")])
    finally:
        app.close()
    return db_url


def test_roster_json_prints_one_object_a_monitored_household(county):
    result = cli("roster", "--db", county, "--json")
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in result.output.splitlines()]
    assert [r["household_id"] for r in rows] == ["H1", "H2"]
    h1 = rows[0]
    assert (h1["stage"], h1["category"]) == ("monitored", "unstable_alleviated")
    assert h1["risk_types"] == ["illness", "housing"]
    assert (h1["included_on"], h1["per_capita_income"], h1["cadre_name"]) == ("2023-03-13", "5300.00", "王帮扶")
    assert [(m["measure_id"], m["status"]) for m in h1["measures"]] == [("M1", "implemented"), ("M2", "planned")]

    everyone = cli("roster", "--db", county, "--json", "--all")
    assert [orjson.loads(line)["household_id"] for line in everyone.output.splitlines()] == ["H1", "H2", "H3"]
    elsewhere = cli("roster", "--db", county, "--json", "--division", "520111")
    assert elsewhere.exit_code == 0 and elsewhere.output == ""


def test_roster_xlsx_has_chinese_headers_a_frozen_header_dates_as_dates_and_a_measures_sheet(county, tmp_path):
    path = tmp_path / "roster.xlsx"
    result = cli("roster", "--db", county, "--xlsx", str(path))
    assert result.exit_code == 0, result.output
    assert "2 户" in result.output
    wb = load_workbook(path)
    assert wb.sheetnames == ["监测对象名单", "名单(其他信息)", "帮扶措施"]
    ws = wb["监测对象名单"]
    names = headers(ws)
    assert names[:5] == ["序号", "乡镇", "村", "户编号", "户主姓名"] and "人均纯收入(元)" in names
    assert ws.freeze_panes == f"A{HEADER_ROW + 1}"
    h1 = table(ws)[0]
    assert h1["户编号"] == "H1" and h1["监测对象类型"] == "脱贫不稳定户"
    assert h1["户主姓名"], "the household head's name is on the roster"
    assert h1["风险类型"] == "因病、因安全住房" and h1["状态"] == "监测中"
    assert h1["纳入监测日期"] == datetime(2023, 3, 13)  # a real date cell, not text
    assert ws.cell(row=HEADER_ROW + 1, column=names.index("纳入监测日期") + 1).number_format == "yyyy-mm-dd"
    income = ws.cell(row=HEADER_ROW + 1, column=names.index("人均纯收入(元)") + 1)
    assert income.data_type == "n" and float(income.value) == 5300.0 and income.number_format == "#,##0.00"
    assert h1["帮扶措施"] == "健康帮扶(已落实)、住房安全保障(计划)"
    assert table(wb["名单(其他信息)"])[0]["户类型"] == "脱贫户"
    measures = wb["帮扶措施"]
    assert headers(measures)[1:5] == ["户编号", "措施编号", "措施类型", "针对风险"]
    assert [(r["户编号"], r["措施编号"], r["状态"]) for r in table(measures)] == [
        ("H1", "M1", "已落实"), ("H1", "M2", "计划")]
    assert table(measures)[0]["落实日期"] == datetime(2023, 3, 20)


def test_roster_table_shows_chinese_labels(county):
    result = cli("roster", "--db", county)
    assert result.exit_code == 0, result.output
    for text in ("监测对象名单", "脱贫不稳定户", "因病", "王帮扶", "健康帮扶(已落实)", "未指定", "共 2 户"):
        assert text in readable(result.output)


def test_projections_status_rebuild_and_catch_up_report_positions_against_the_head(county):
    status = cli("projections", "status", "--db", county, "--json", "--projection", "roster")
    assert status.exit_code == 0, status.output
    [before] = [orjson.loads(line) for line in status.output.splitlines()]
    assert before["projection"] == "roster" and before["position"] == 0 and before["head"] > 0

    rebuilt = cli("projections", "rebuild", "--db", county, "--projection", "roster", "--batch-size", "7")
    assert rebuilt.exit_code == 0, rebuilt.output
    [after] = [orjson.loads(line) for line in
               cli("projections", "status", "--db", county, "--json", "-p", "roster").output.splitlines()]
    assert after["position"] == after["head"] == before["head"]
    assert (after["behind"], after["rebuilding"]) == (0, False)

    caught = cli("projections", "catch-up", "--db", county, "-p", "roster")
    assert caught.exit_code == 0 and "新折叠 0 个事件" in caught.output


def test_an_unknown_projection_is_refused_with_the_known_names(county):
    result = cli("projections", "rebuild", "--db", county, "--projection", "nosuch")
    assert result.exit_code == 2
    assert "roster" in result.output


def test_projections_run_keeps_the_roster_current_as_events_arrive_and_stops_on_sigterm(tmp_path):
    path = str(tmp_path / "live.db")
    app = bootstrap(path)
    worker = subprocess.Popen(
        [sys.executable, "-c", "from adapters.cli import main; main()", "projections", "run", "--projection", "roster",
         "--poll", "0.05", "--db", path],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        run(app, [register("H1"), *inclusion_path("H1")])
        head = app.recorder.max_notification_id()
        deadline = time.monotonic() + 60
        while position(path) != head:
            assert worker.poll() is None, worker.stderr.read()
            assert time.monotonic() < deadline, "the worker never caught up"
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        assert "已停止" in worker.stderr.read()
        rows = [orjson.loads(line) for line in cli("roster", "--db", path, "--json").output.splitlines()]
        assert [(r["household_id"], r["stage"]) for r in rows] == [("H1", "monitored")]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        worker.stderr.close()
        app.close()


def position(path: str) -> int | None:
    with sqlite3.connect(path, timeout=30) as conn:
        try:
            row = conn.execute("select position from projection_positions where name = 'roster'").fetchone()
        except sqlite3.OperationalError:
            return None
    return row and row[0]
