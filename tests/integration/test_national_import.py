"""The national export becomes imported history: month precision, marked with its source, not re-judged,
idempotent, incremental; bad rows reported with their row number and the rest imported."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook

from adapters.importers.national import COLUMNS, Divisions, ExportUnreadable, import_national
from adapters.importers.national_writer import (
    YEAR_2021_ALIASES,
    household_rows,
    person,
    write_divisions,
    write_export,
)
from casecore.values import Stage, make_person_id

VILLAGE = ("522631101001", "黎平县", "德凤镇", "高近村")
WHERE = {"县": "黎平县", "乡": "德凤镇", "村": "高近村"}
EXPORTED = date(2022, 6, 30)


def monitored(hid: str = "HH1", **columns: str) -> dict[str, str]:
    return {**WHERE, "户编号": hid, "户类型": "脱贫户", "监测对象类别": "脱贫不稳定户", "识别监测时间": "202203",
            "风险是否已消除": "否", "致贫/返贫风险1": "因病", "人均纯收入（元）": "5200", "工资性收入": "10400",
            "是否危房户": "否", "是否解决安全饮用水": "是", "健康帮扶": "家庭医生签约", **columns}


def family(seed: int = 1) -> list[dict[str, str]]:
    return [person(seed), person(seed + 1, date(1983, 4, 5), relation="配偶", labour="弱劳动力或半劳动力")]


@pytest.fixture
def divisions(tmp_path) -> Divisions:
    return Divisions.load(write_divisions(tmp_path / "divisions.csv", [VILLAGE]))


def stored(app, hid: str) -> list:
    return list(app.repository.event_store.get(f"household/{hid}"))


def test_the_test_workbook_is_written_the_way_the_national_system_writes_it(tmp_path):
    path = write_export(tmp_path / "e.xlsx", household_rows(monitored(), family()), aliases=YEAR_2021_ALIASES)
    ws = load_workbook(path).active
    assert ws["A1"].value == "（自定义）监测对象信息"
    headers = [c.value for c in ws[3]]
    assert "公益性岗位帮扶" in headers and "公益岗位帮扶" not in headers and "备注" in headers
    data = [c for row in ws.iter_rows(min_row=4) for c in row]
    assert all(c.data_type == "s" for c in data if c.value is not None)
    assert all(c.number_format == "@" for c in data)


def test_an_export_becomes_the_households_history_marked_as_imported_with_month_precision(app, tmp_path, divisions):
    rows = household_rows(monitored(**{"风险是否已消除": "是", "风险消除方式": "帮扶消除", "消除监测时间": "202211",
                                       "风险消除后家庭人均纯收入": "8100", "风险消除后家庭纯收入": "16200",
                                       "风险消除后是否住房损毁": "否", "风险消除后是否饮水设施损毁": "否"}), family())
    path = write_export(tmp_path / "export.xlsx", rows, aliases=YEAR_2021_ALIASES)

    report = import_national(app, path, divisions, EXPORTED)

    assert (report.households, report.people, report.rejected) == (1, 2, [])
    h = app.get_household("HH1")
    assert h.stage == Stage.RISK_ELIMINATED
    assert (h.category, h.risk_types) == ("unstable_alleviated", ["illness"])
    assert (h.included_on, h.eliminated_on, h.exit_mode) == (date(2022, 3, 1), date(2022, 11, 1), "assisted")
    assert h.procedure is None and h.household_type == "poverty_alleviated"
    assert [m["labour"] for m in h.members.values()] == ["full", "weak"]
    assert [a["per_capita_income"] for a in h.incomes] == [5200, 8100]
    assert [m["measure_type"] for m in h.measures.values()] == ["health"]
    events = stored(app, "HH1")
    assert report.events == len(events)
    assert {type(e).TYPE for e in events} >= {"registered", "income_assessed", "guarantees_assessed",
                                               "county_decided", "entered_system", "measure_planned",
                                               "measure_implemented", "risk_eliminated"}
    assert all(e.origin == "national_export:export.xlsx" and e.date_precision == "month" for e in events)
    assert all(e.on.day == 1 for e in events)


def test_imported_history_is_not_rejudged_by_todays_guards(app, tmp_path, divisions):
    # eliminated two months after inclusion, below the line, with no labour: every exit guard would refuse it
    labourless = [person(1, labour="丧失劳动力"), person(2, date(1940, 1, 1), relation="配偶", labour="无劳动力")]
    rows = household_rows(monitored(**{"风险是否已消除": "是", "风险消除方式": "帮扶消除", "消除监测时间": "202205",
                                       "风险消除后家庭人均纯收入": "3000"}), labourless)
    import_national(app, write_export(tmp_path / "e.xlsx", rows), divisions, EXPORTED)
    h = app.get_household("HH1")
    assert h.stage == Stage.RISK_ELIMINATED and not h.has_labour()
    assert [a["per_capita_income"] for a in h.incomes if a["on"] == date(2022, 5, 1)] == [3000]


def test_reimporting_the_same_export_adds_nothing(app, tmp_path, divisions):
    rows = household_rows(monitored(), family()) + household_rows(monitored("HH2", 监测对象类别=""), family(5))
    path = write_export(tmp_path / "e.xlsx", rows)
    first = import_national(app, path, divisions, EXPORTED)
    before = app.recorder.max_notification_id()

    again = import_national(app, path, divisions, EXPORTED)

    assert first.events > 0 and (again.events, again.households_new, again.households_changed) == (0, 0, 0)
    assert app.recorder.max_notification_id() == before


def test_a_newer_export_adds_only_what_changed(app, tmp_path, divisions):
    import_national(app, write_export(tmp_path / "old.xlsx", household_rows(monitored(), family())), divisions,
                    EXPORTED)
    before = [type(e).TYPE for e in stored(app, "HH1")]
    newer = household_rows(monitored(**{"风险是否已消除": "是", "风险消除方式": "自然消除", "消除监测时间": "202210",
                                        "风险消除后家庭人均纯收入": "9000", "产业帮扶": "种茶"}),
                           [*family(), person(3, date(2022, 8, 1), relation="之女", labour="")])

    report = import_national(app, write_export(tmp_path / "new.xlsx", newer), divisions, date(2022, 12, 31))

    added = [type(e).TYPE for e in stored(app, "HH1")][len(before):]
    # the 风险消除后 income at the elimination, and the current 人均纯收入 (5200) again at the export's month,
    # where it differs from the newest assessment by then; the rows' other columns as the newer export has them
    assert sorted(added) == sorted(["member_added", "measure_planned", "measure_implemented", "risk_eliminated",
                                    "income_assessed", "income_assessed", "source_rows_recorded"])
    assert [(a["on"], a["per_capita_income"]) for a in app.get_household("HH1").incomes][-2:] == [
        (date(2022, 10, 1), 9000), (date(2022, 12, 1), 5200)]
    assert report.households_changed == 1 and report.events == len(added)
    h = app.get_household("HH1")
    assert h.eliminated_on == date(2022, 10, 1) and h.exit_mode == "natural" and len(h.current_members()) == 3


def test_a_measure_the_newer_export_no_longer_lists_is_ended(app, tmp_path, divisions):
    import_national(app, write_export(tmp_path / "a.xlsx", household_rows(monitored(), family())), divisions, EXPORTED)
    newer = household_rows(monitored(**{"健康帮扶": "", "综合保障": "低保"}), family())
    import_national(app, write_export(tmp_path / "b.xlsx", newer), divisions, date(2022, 9, 15))
    status = {m["measure_type"]: (m["status"], m["ended_on"]) for m in app.get_household("HH1").measures.values()}
    assert status == {"health": ("ended", date(2022, 9, 1)), "social_assistance": ("implemented", None)}


def test_unreadable_rows_are_reported_with_row_number_and_reason_and_the_rest_goes_in(app, tmp_path, divisions):
    good = household_rows(monitored(), family())
    valid = good[0]["证件号码"]
    wrong_check = valid[:17] + ("0" if valid[17] != "0" else "1")
    bad_id = {**good[0], "证件号码": wrong_check, "户编号": "HH2"}
    bad_month = household_rows(monitored("HH3", 识别监测时间="2022年13月"), [person(7)])[0]
    elsewhere = household_rows({**monitored("HH4"), "村": "不存在村"}, [person(8)])[0]
    bad_category = household_rows(monitored("HH5", 监测对象类别="贫困户"), [person(9)])[0]
    path = write_export(tmp_path / "e.xlsx", [*good, bad_id, bad_month, elsewhere, bad_category])

    report = import_national(app, path, divisions, EXPORTED)

    reasons = dict(report.rejected)
    assert sorted(reasons) == [6, 7, 8, 9]  # header on row 3: data from row 4
    assert "证件号码" in reasons[6] and "识别监测时间" in reasons[7]
    assert "不存在村" in reasons[8] and "监测对象类别" in reasons[9]
    assert report.unmatched_divisions == {("黎平县", "德凤镇", "不存在村"): 1}
    assert (report.households, report.people) == (1, 2)
    assert app.get_household("HH1").stage == Stage.MONITORED


def test_every_missing_required_column_is_named(tmp_path, divisions, app):
    columns = [c for c in COLUMNS if c not in ("户编号", "识别监测时间", "劳动技能")]
    path = write_export(tmp_path / "e.xlsx", household_rows(monitored(), family()), columns=columns)
    with pytest.raises(ExportUnreadable) as err:
        import_national(app, path, divisions, EXPORTED)
    # without 户编号 the header row itself is not found
    assert "户编号" in str(err.value)
    columns = [c for c in COLUMNS if c not in ("识别监测时间", "劳动技能")]
    path = write_export(tmp_path / "f.xlsx", household_rows(monitored(), family()), columns=columns)
    with pytest.raises(ExportUnreadable) as err:
        import_national(app, path, divisions, EXPORTED)
    assert "识别监测时间" in str(err.value) and "劳动技能" in str(err.value)


def test_unknown_columns_are_ignored_and_missing_optional_ones_listed(app, tmp_path, divisions):
    columns = [c for c in COLUMNS if c != "理赔收入"]
    path = write_export(tmp_path / "e.xlsx", household_rows(monitored(), family()), columns=columns,
                        extra_columns=("备注", "数据年度"))
    report = import_national(app, path, divisions, EXPORTED)
    assert report.households == 1 and "理赔收入" in report.missing_optional


def test_a_disability_card_number_carries_the_citizen_id_in_its_first_18_characters(app, tmp_path, divisions):
    card = person(1)
    card["证件号码"] += "62"  # 20 characters: the ID and the disability grade
    other = person(2, date(1983, 4, 5), relation="配偶")
    other["证件号码"] += "6201"  # 22 characters
    import_national(app, write_export(tmp_path / "e.xlsx", household_rows(monitored(), [card, other])), divisions,
                    EXPORTED)
    assert sorted(app.get_household("HH1").members) == sorted([make_person_id("522631", date(1980, 1, 2), 1),
                                                               make_person_id("522631", date(1983, 4, 5), 2)])


def test_the_cli_imports_with_a_summary_and_reports_bad_rows(tmp_path, divisions):
    from typer.testing import CliRunner

    from adapters.cli import app as cli

    wrong_birth = {**household_rows(monitored("HH9"), [person(9)])[0], "出生日期": "19990101"}
    rows = [*household_rows(monitored(), family()), wrong_birth]
    path = write_export(tmp_path / "export_20220630.xlsx", rows)
    db = str(tmp_path / "cli.db")
    runner = CliRunner()
    result = runner.invoke(cli, ["import", "national", str(path), "--divisions", str(tmp_path / "divisions.csv"),
                                 "--db", db])
    assert result.exit_code == 0, result.output
    assert "未能读取的行" in result.output and "出生日期" in result.output and "导出日期 2022-06-30" in result.output
    result = runner.invoke(cli, ["import", "national", str(path), "--divisions", str(tmp_path / "divisions.csv"),
                                 "--db", db, "--json"])
    import json

    report = json.loads(result.stdout)
    assert report["events"] == 0 and report["households"] == 1 and report["rejected_rows"][0]["row"] == 6


def test_a_missing_division_table_column_is_named(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("code,county,village\n522631101001,黎平县,高近村\n", encoding="utf-8")
    with pytest.raises(ExportUnreadable, match="township"):
        Divisions.load(Path(path))


def test_rows_beyond_the_input_limits_are_rejected_with_their_line_and_the_rest_goes_in(app, tmp_path, divisions):
    """The national export meets the contract's limits too: money of 1e26, a name too long for its column or a
    control character in a name reject the row (they would stop the read models); the other households go in."""
    good = household_rows(monitored(), family())
    huge_income = household_rows(monitored("HH2", 工资性收入="1e26"), [person(7)])[0]
    long_name = {**household_rows(monitored("HH3"), [person(8)])[0], "姓名": "名" * 100}
    tab_cadre = household_rows(monitored("HH4", 帮扶责任人="张\t三"), [person(9)])[0]
    path = write_export(tmp_path / "e.xlsx", [*good, huge_income, long_name, tab_cadre])

    report = import_national(app, path, divisions, EXPORTED)

    reasons = dict(report.rejected)
    assert sorted(reasons) == [6, 7, 8]
    assert "工资性收入" in reasons[6] and "姓名" in reasons[7] and "帮扶责任人" in reasons[8]
    assert app.get_household("HH1").stage == Stage.MONITORED



def test_the_division_table_an_import_gives_names_the_townships_and_villages_for_later_commands(app, tmp_path,
                                                                                                  divisions):
    from adapters.readside import places

    places._names.clear()
    import_national(app, write_export(tmp_path / "e.xlsx", household_rows(monitored(), family())), divisions, EXPORTED)
    places._names.clear()
    places.load(app)
    assert places.place_path("522631101001") == "黎平县德凤镇高近村"


def test_the_cli_summary_shows_square_brackets_from_the_export_as_written(tmp_path, divisions):
    """A village name or a cell quoted in a reason is the export's text: `[/b]` in it must not stop the
    summary after the households went in."""
    from typer.testing import CliRunner

    from adapters.cli import app as cli

    unknown = {**household_rows(monitored("HH8"), [person(8)])[0], "村": "新[/b]村"}
    path = write_export(tmp_path / "export_20220630.xlsx", [*household_rows(monitored(), family()), unknown])
    result = CliRunner().invoke(cli, ["import", "national", str(path), "--divisions", str(tmp_path / "divisions.csv"),
                                      "--db", str(tmp_path / "cli.db")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "新[/b]村" in result.output
