"""The data-sharing platform exchange: the monthly roster push (JSON and CSV) and the import of measures
departments report back (bad rows reported with their line, the rest goes in, idempotent)."""

from __future__ import annotations

import csv
import io
from datetime import date

import orjson
import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.store.storage import bootstrap
from projections.queries.monthly import KEYS
from tests.builders import exit_path, inclusion_path, measure, person, register, run

runner = CliRunner()


@pytest.fixture
def history(db_url):
    """H1 monitored from 2023-03-13 with a health measure, risk eliminated on 2023-10-20; H2 monitored from
    2023-06-13 and still; H3 registered, never included."""
    app = bootstrap(db_url)
    try:
        run(app, [register("H1"), *inclusion_path("H1"), *measure("H1", "H1-M1", date(2023, 3, 20), date(2023, 4, 1)),
                  *exit_path("H1", date(2023, 10, 9)),
                  register("H2"), *inclusion_path("H2", start=date(2023, 6, 2)),
                  register("H3")])
    finally:
        app.close()
    return db_url


def export(db: str, month: str, *args: str) -> str:
    r = runner.invoke(cli, ["export", "roster", "--month", month, "--db", db, *args])
    assert r.exit_code == 0, r.output
    return r.stdout


def listed(db: str, month: str, *args: str) -> list[str]:
    return [row["household_id"] for row in orjson.loads(export(db, month, *args))]


def test_the_push_lists_the_households_monitored_at_the_months_end(history):
    assert listed(history, "2023-02") == []
    assert listed(history, "2023-03") == ["H1"]          # entered on 03-13
    assert listed(history, "2023-05") == ["H1"]
    assert listed(history, "2023-06") == ["H1", "H2"]    # H2 entered on 06-13
    assert listed(history, "2023-09") == ["H1", "H2"]
    assert listed(history, "2023-10") == ["H2"]          # H1 in exit from 10-09, eliminated on 10-20
    assert listed(history, "2023-10", "--division", "522632") == []
    assert listed(history, "2023-10", "--division", "522631101") == ["H2"]


def test_the_json_push_has_the_documented_columns_and_values(history):
    rows = {r["household_id"]: r for r in orjson.loads(export(history, "2023-09", "--entitled"))}
    assert list(rows["H2"]) == list(KEYS)
    h1, h2 = rows["H1"], rows["H2"]
    assert (h1["stage"], h1["stage_now"]) == ("monitored", "risk_eliminated")
    assert h1["measure_types"] == ["health"] and h1["measures_implemented"] == 1
    assert h2["month"] == "2023-09" and h2["included_on"] == "2023-06-13"
    assert (h2["category"], h2["risk_types"], h2["household_type"]) == ("marginal", ["illness"], "general")
    assert h2["head_person_id"] == person(1)["person_id"] and h2["head_name"] == "成员1"
    assert (h2["household_size"], h2["has_labour"], h2["per_capita_income"]) == (2, True, "5000.00")
    assert h2["division_code"] == "522631101001" and h2["county_code"] == "522631"


def test_the_csv_push_has_a_header_of_the_stable_keys_and_one_line_a_household(history, tmp_path):
    out = tmp_path / "roster.csv"
    r = runner.invoke(cli, ["export", "roster", "--month", "2023-09", "--format", "csv", "--out", str(out),
                            "--db", history])
    assert r.exit_code == 0, r.output
    assert out.read_bytes().startswith(b"\xef\xbb\xbf"), "Chinese Excel reads UTF-8 only after a BOM"
    lines = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert tuple(lines[0]) == KEYS
    body = [dict(zip(KEYS, line, strict=True)) for line in lines[1:]]
    assert [b["household_id"] for b in body] == ["H1", "H2"]
    assert body[1]["risk_types"] == "illness" and body[1]["relocated"] == "false"
    assert body[0]["measure_types"] == "health" and body[1]["measure_types"] == ""


@pytest.mark.parametrize("args", [(), ("--mask",)])
def test_the_push_masks_personal_data_unless_the_recipient_is_entitled(history, args):
    row = orjson.loads(export(history, "2023-09", *args))[1]
    real = person(1)["person_id"]
    assert row["head_person_id"] == real[:6] + "********" + real[-4:]
    assert row["head_name"] == "成**" and row["household_id"] == "H2"
    clear = orjson.loads(export(history, "2023-09", "--entitled"))[1]
    assert clear["head_person_id"] == real and clear["head_name"] == "成员1"


def test_the_push_masks_the_responsible_cadres_name_too(db_url):
    from tests.builders import cmd

    app = bootstrap(db_url)
    try:
        run(app, [register("H2"), *inclusion_path("H2", start=date(2023, 6, 2)),
                  cmd("assign_cadre", date(2023, 6, 20), household_id="H2",
                      cadre={"id": "c-9", "name": "韦国强", "unit": "黎平县农业农村局"})])
    finally:
        app.close()
    assert orjson.loads(export(db_url, "2023-09"))[0]["cadre_name"] == "韦**"
    assert orjson.loads(export(db_url, "2023-09", "--entitled"))[0]["cadre_name"] == "韦国强"


@pytest.mark.parametrize("month", ["2023-13", "2023-1", "septembre"])
def test_a_malformed_month_is_refused(sqlite_url, month):
    r = runner.invoke(cli, ["export", "roster", "--month", month, "--db", sqlite_url])
    assert r.exit_code == 2


# ---------------------------------------------------------------------------------------------------- measures in

HEADER = ["户编号", "措施编号", "措施类型", "针对风险", "责任部门", "责任人", "计划日期", "落实日期", "备注"]
ROWS = [
    ["H2", "YB-1", "健康帮扶", "因病", "黎平县医保局", "张医生", "2023-06-20", "2023-07-01", "大病保险倾斜"],  # line 2
    ["H2", "YB-2", "social", "illness、schooling", "黎平县医保局", "张医生", "2023-06-21", "", ""],       # 3
    ["H2", "YB-3", "看病帮扶", "因病", "黎平县医保局", "张医生", "2023-06-21", "", ""],                    # 4 type
    ["NOBODY", "YB-4", "health", "illness", "黎平县医保局", "张医生", "2023-06-21", "", ""],              # 5 household
    ["H2", "YB-5", "drinking_water", "illness", "黎平县水务局", "李工", "2023-06-21", "", ""],            # 6 fit
    ["H2", "YB-1", "health", "illness", "黎平县医保局", "张医生", "2023-06-20", "", ""],                  # 7 repeat
    ["H2", "YB-6", "health", "illness", "黎平县医保局", "张医生", "2023-07-05", "2023-07-01", ""],        # 8 order
    ["H2", "YB-7", "health", "illness", "黎平县医保局", "", "2023-07-05", "", ""],                        # 9 missing
    ["H2", "YB-8", "health", "illness", "黎平县医保局", "张医生", "2023/07/08", "2023-07-09", ""],        # 10
]
BAD_LINES = {4: "措施类型", 5: "not_found", 6: "policy_violation", 7: "重复", 8: "早于", 9: "responsible"}


def write_csv(path, rows):
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([HEADER, *rows])
    return path


def import_measures(db: str, path) -> tuple[int, dict]:
    r = runner.invoke(cli, ["import", "measures", str(path), "--actor-id", "ybj-liping", "--actor-name", "县医保局",
                            "--unit", "黎平县医保局", "--db", db, "--json"])
    return r.exit_code, orjson.loads(r.stdout)


def test_measures_from_a_department_go_in_and_bad_rows_are_reported_with_their_line(history, tmp_path):
    code, summary = import_measures(history, write_csv(tmp_path / "measures.csv", ROWS))
    assert code == 1  # some rows were bad
    assert {b["line"]: b["reason"] for b in summary["bad"]}.keys() == BAD_LINES.keys()
    for b in summary["bad"]:
        assert BAD_LINES[b["line"]] in b["reason"], b
    assert (summary["rows"], summary["planned"], summary["implemented"]) == (9, 3, 2)
    app = bootstrap(history)
    try:
        measures = {m["measure_id"]: m for m in app.get_household("H2").measures.values()}
    finally:
        app.close()
    assert set(measures) == {"YB-1", "YB-2", "YB-8"}
    assert measures["YB-1"]["implemented_on"] == date(2023, 7, 1) and measures["YB-1"]["department"] == "黎平县医保局"
    assert measures["YB-2"]["status"] == "planned" and measures["YB-2"]["addresses"] == ["illness", "schooling"]
    assert measures["YB-8"]["planned_on"] == date(2023, 7, 8)


def test_importing_the_same_file_again_changes_nothing_and_a_newer_file_adds_only_what_changed(history, tmp_path):
    good = [ROWS[0], ROWS[1]]
    import_measures(history, write_csv(tmp_path / "m1.csv", good))
    app = bootstrap(history)
    version = app.get_household("H2").version
    app.close()
    code, again = import_measures(history, write_csv(tmp_path / "m1.csv", good))
    assert (code, again["planned"], again["implemented"], again["already_imported"]) == (0, 0, 0, 3)
    newer = [ROWS[0], [*ROWS[1][:7], "2023-07-15", ""]]  # YB-2 now implemented
    code, update = import_measures(history, write_csv(tmp_path / "m2.csv", newer))
    assert (code, update["planned"], update["implemented"]) == (0, 0, 1)
    app = bootstrap(history)
    try:
        assert app.get_household("H2").version == version + 1
    finally:
        app.close()


def test_measures_can_come_as_a_workbook_with_lines_numbered_as_the_sheet_shows(history, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["部门反馈帮扶措施"])  # a title row above the header is not data
    ws.append(HEADER)
    ws.append(["H2", "YB-1", "健康帮扶", "因病", "黎平县医保局", "张医生", date(2023, 6, 20), date(2023, 7, 1), ""])
    ws.append(["H2", "YB-3", "看病帮扶", "因病", "黎平县医保局", "张医生", date(2023, 6, 21), None, ""])
    path = tmp_path / "measures.xlsx"
    wb.save(path)
    code, summary = import_measures(history, path)
    assert code == 1
    assert [b["line"] for b in summary["bad"]] == [4]
    assert (summary["planned"], summary["implemented"]) == (1, 1)


def test_a_file_without_the_required_columns_is_refused_whole(sqlite_url, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("户编号,措施编号\nH1,M1\n", encoding="utf-8")
    r = runner.invoke(cli, ["import", "measures", str(path), "--actor-id", "a", "--unit", "某局", "--db", sqlite_url])
    assert r.exit_code == 2
    assert "缺少列" in r.output
