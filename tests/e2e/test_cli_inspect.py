"""`casecore inspect` from the command line: contract-shaped JSON Lines, the workbook, and raising problems
once per rule, household and cycle."""

from __future__ import annotations

import json
from datetime import date

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.importers.national import Divisions, import_national
from adapters.importers.national_writer import household_rows, person, write_divisions, write_export
from adapters.store.storage import bootstrap
from casecore.values import Rule
from tests.workbooks import table

WHERE = {"县": "黎平县", "乡": "德凤镇", "村": "高近村"}


@pytest.fixture
def db(tmp_path) -> str:
    """Two imported households: one eliminated two months after inclusion below the line, one monitored
    without measures."""
    path = str(tmp_path / "cli.db")
    base = {**WHERE, "户类型": "脱贫户", "监测对象类别": "脱贫不稳定户", "识别监测时间": "202203",
            "致贫/返贫风险1": "因病", "人均纯收入（元）": "5000"}
    rows = [*household_rows({**base, "户编号": "N1", "风险是否已消除": "是", "风险消除方式": "帮扶消除",
                             "消除监测时间": "202205", "风险消除后家庭人均纯收入": "6000", "健康帮扶": "签约"},
                            [person(1)]),
            *household_rows({**base, "户编号": "N2", "风险是否已消除": "否"}, [person(2)])]
    app = bootstrap(path)
    try:
        village = ("522631101001", "黎平县", "德凤镇", "高近村")
        divisions = Divisions.load(write_divisions(tmp_path / "d.csv", [village]))
        import_national(app, write_export(tmp_path / "e.xlsx", rows), divisions, date(2022, 6, 30))
    finally:
        app.close()
    return path


def invoke(*args: str):
    result = CliRunner().invoke(cli, ["inspect", *args])
    assert result.exit_code == 0, result.output
    return result


def test_json_prints_one_finding_a_line_as_the_contract_says(db):
    lines = [json.loads(x) for x in invoke("--db", db, "--as-of", "2022-12-31", "--json").stdout.splitlines()]
    rules = {(x["rule"], x["household_id"]) for x in lines}
    assert {("fast_in_fast_out", "N1"), ("eliminated_below_line", "N1"), ("helped_not", "N2"),
            ("no_responsible_cadre", "N2")} <= rules
    allowed = {"rule", "household_id", "problem_id", "division_code", "severity", "detail", "evidence"}
    assert all(set(x) <= allowed and {"rule", "division_code", "severity", "detail", "evidence"} <= set(x)
               for x in lines)
    fast = next(x for x in lines if x["rule"] == "fast_in_fast_out")
    assert fast["severity"] == "severe" and fast["evidence"]["months"] == 2 and fast["division_code"] == "522631101001"


def test_rule_and_division_options_narrow_the_findings(db):
    lines = invoke("--db", db, "--as-of", "2022-12-31", "--json", "--rule", "helped_not").stdout.splitlines()
    assert [json.loads(x)["household_id"] for x in lines] == ["N2"]
    assert invoke("--db", db, "--as-of", "2022-12-31", "--json", "--division", "522632").stdout == ""


def test_raising_problems_twice_raises_each_once(db):
    first = invoke("--db", db, "--as-of", "2022-12-31", "--raise-problems")
    assert "问题台账: 新登记" in first.stdout
    lines = [json.loads(x) for x in invoke("--db", db, "--as-of", "2022-12-31", "--json").stdout.splitlines()]
    assert lines and all(x["problem_id"].startswith("F") for x in lines)
    second = invoke("--db", db, "--as-of", "2022-12-31", "--raise-problems")
    assert "新登记 0 个" in second.stdout
    app = bootstrap(db)
    try:
        problem = app.get_problem(lines[0]["problem_id"])
        assert problem.kind == lines[0]["rule"] and problem.source == "inspection_rule"
        assert problem.finding_key.startswith(f"{lines[0]['rule']}:")
    finally:
        app.close()


def test_xlsx_writes_the_list_and_the_counts_by_rule(db, tmp_path):
    out = tmp_path / "findings.xlsx"
    invoke("--db", db, "--as-of", "2022-12-31", "--xlsx", str(out))
    wb = load_workbook(out)
    assert wb.sheetnames == ["问题清单", "按规则汇总", "按乡镇汇总"]
    rows = table(wb["问题清单"])
    assert list(rows[0])[:6] == ["序号", "乡镇", "村", "户编号", "问题(规则)", "严重程度"] and len(rows) > 3
    assert all(r["严重程度"] in ("严重", "一般") for r in rows)
    assert not any(r["证据"].startswith("{") for r in rows), "evidence is sentences, not JSON"
    counts = {r["问题(规则)"]: r["合计"] for r in table(wb["按规则汇总"]) if r["问题(规则)"]}
    assert counts[Rule("fast_in_fast_out").label] == 1 and len(counts) == len(Rule) + 1  # and the 合计 row
    assert counts["合计"] == len(rows)
    assert sum(r["合计"] for r in table(wb["按乡镇汇总"]) if r["乡镇"] != "合计") == len(rows)


def test_an_unknown_rule_is_refused_with_the_known_ones_named(db):
    result = CliRunner().invoke(cli, ["inspect", "--db", db, "--rule", "nonsense"])
    assert result.exit_code == 2 and "helped_not" in result.output
