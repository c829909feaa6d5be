"""What the inspector's rules make of an imported export: an absent 帮扶责任人 column is unknown, not a
violation; the current-status columns are judged on the export's date, beside the identification month's."""

from __future__ import annotations

from datetime import date

import pytest
from typer.testing import CliRunner

from adapters.importers.national import COLUMNS, Divisions, import_national
from adapters.importers.national_writer import household_rows, person, write_divisions, write_export
from adapters.readside.readmodels import read_models
from projections.casefacts import CaseFactsProjection
from projections.queries.inspector import Finding, Inspector

VILLAGE = ("522631101001", "黎平县", "德凤镇", "高近村")
WHERE = {"县": "黎平县", "乡": "德凤镇", "村": "高近村"}
EXPORTED = date(2023, 6, 30)
#: the national system's export: no 帮扶责任人 column
NATIONAL = [c for c in COLUMNS if c != "帮扶责任人"]


def monitored(hid: str, **columns: str) -> dict[str, str]:
    return {**WHERE, "户编号": hid, "户类型": "脱贫户", "监测对象类别": "脱贫不稳定户", "识别监测时间": "202203",
            "风险是否已消除": "否", "致贫/返贫风险1": "因病", "人均纯收入（元）": "9000", "是否危房户": "否",
            "是否解决安全饮用水": "是", "是否有家庭成员未参加城乡居民（职工）基本医疗保险": "否",
            "健康帮扶": "家庭医生签约", "就业帮扶": "外出务工", **columns}


def eliminated(hid: str, **columns: str) -> dict[str, str]:
    """Eliminated 2022-11 with clean post-elimination columns (风险消除后…)."""
    return monitored(hid, **{"风险是否已消除": "是", "风险消除方式": "帮扶消除", "消除监测时间": "202211",
                             "风险消除后家庭人均纯收入": "9000", "风险消除后是否住房损毁": "否",
                             "风险消除后是否饮水设施损毁": "否",
                             "风险消除后是否有家庭成员未参加城乡居民（职工）基本医疗保险": "否", **columns})


@pytest.fixture
def divisions(tmp_path) -> Divisions:
    return Divisions.load(write_divisions(tmp_path / "divisions.csv", [VILLAGE]))


def store(app, tmp_path, divisions, households: list[dict[str, str]], columns=NATIONAL,
          exported_on: date = EXPORTED) -> None:
    rows = [r for i, h in enumerate(households) for r in household_rows(h, [person(10 * i + 1)])]
    import_national(app, write_export(tmp_path / f"e{exported_on:%Y%m%d}.xlsx", rows, columns=columns), divisions,
                    exported_on)


def run(app, as_of: date, rules: list[str] | None = None) -> tuple[list[Finding], int]:
    with read_models(app, [CaseFactsProjection()]) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            inspector = Inspector(conn, app.policies, as_of)
            return inspector.run(rules), inspector.cadre_unknown()


def by_rule(found: list[Finding], rule: str) -> list[str]:
    return sorted(f.household_id or "" for f in found if f.rule == rule)


# ------------------------------------------------------------------------------------ 帮扶责任人 unknown


def test_an_export_without_a_cadre_column_leaves_the_cadre_unknown_and_not_a_violation(app, tmp_path, divisions):
    store(app, tmp_path, divisions, [monitored("N1"), monitored("N2", 监测对象类别="")])

    found, unknown = run(app, date(2023, 7, 1), ["no_responsible_cadre"])

    assert found == [] and unknown == 1  # N2 is not monitored: nobody needs a cadre there


def test_an_export_with_an_empty_cadre_column_is_still_a_household_without_a_cadre(app, tmp_path, divisions):
    store(app, tmp_path, divisions, [monitored("N1"), monitored("N2", 帮扶责任人="王帮扶")], columns=COLUMNS)

    found, unknown = run(app, date(2023, 7, 1), ["no_responsible_cadre"])

    assert by_rule(found, "no_responsible_cadre") == ["N1"] and unknown == 0


def test_a_later_export_that_names_the_cadre_ends_the_unknown(app, tmp_path, divisions):
    store(app, tmp_path, divisions, [monitored("N1")])
    store(app, tmp_path, divisions, [monitored("N1", 帮扶责任人="王帮扶")], columns=COLUMNS,
          exported_on=date(2023, 9, 30))
    found, unknown = run(app, date(2023, 10, 1), ["no_responsible_cadre"])
    assert found == [] and unknown == 0


def test_the_inspection_summary_says_how_many_households_cadre_is_unknown(app, tmp_path, divisions, db_url):
    store(app, tmp_path, divisions, [monitored("N1"), monitored("N2")])
    from adapters.cli import app as cli

    result = CliRunner().invoke(cli, ["inspect", "--db", db_url, "--as-of", "2023-07-01"])

    assert result.exit_code == 0, result.output
    assert "帮扶责任人未知: 2 户" in result.output


def test_the_import_reports_the_households_whose_cadre_it_recorded_as_unknown(app, tmp_path, divisions):
    rows = [*household_rows(monitored("N1"), [person(1)]), *household_rows(monitored("N2", 监测对象类别=""),
                                                                            [person(2)])]
    path = write_export(tmp_path / "e.xlsx", rows, columns=NATIONAL)
    first = import_national(app, path, divisions, EXPORTED)
    again = import_national(app, path, divisions, EXPORTED)
    assert (first.cadre_unknown, first.as_dict()["cadre_unknown"], again.cadre_unknown) == (1, 1, 0)


# ------------------------------------------------------------------------ current status on the export's date


def test_an_eliminated_household_whose_current_status_columns_show_a_problem_is_a_false_elimination(
        app, tmp_path, divisions):
    store(app, tmp_path, divisions, [
        eliminated("D1", 是否危房户="是"),  # Guizhou 1_11_006: lives in a dangerous house
        eliminated("D2", 是否解决安全饮用水="否"),  # 1_11_007: drinking water not safe
        eliminated("D3", **{"是否有家庭成员未参加城乡居民（职工）基本医疗保险": "是"}),  # 1_11_008: uninsured
        eliminated("D4", **{"人均纯收入（元）": "5000"}),  # 4_11_010: a 脱贫户 assisted out at 5,000 a head
        eliminated("OK"),
    ])

    found, _ = run(app, date(2023, 7, 1), ["eliminated_with_open_guarantee", "eliminated_below_line"])

    assert by_rule(found, "eliminated_with_open_guarantee") == ["D1", "D2", "D3"]
    assert by_rule(found, "eliminated_below_line") == ["D4"]
    evidence = {f.household_id: f.evidence for f in found}
    assert evidence["D1"]["housing"] == "c_level" and evidence["D1"]["guarantees_assessed_on"] == "2023-06"
    assert evidence["D2"]["drinking_water_safe"] is False
    assert evidence["D3"]["members_without_medical_insurance"] == 1
    # judged against the line in force on the export's date (2023: 7,300)
    assert (evidence["D4"]["per_capita_income"], evidence["D4"]["monitoring_line"]) == ("5000.00", "7300")
    assert evidence["D4"]["income_assessed_on"] == "2023-06"
    assert all("其后" in f.detail for f in found)


def test_the_current_status_is_judged_on_its_date_and_not_before(app, tmp_path, divisions):
    store(app, tmp_path, divisions, [eliminated("D1", 是否危房户="是", **{"人均纯收入（元）": "5000"})])

    before, _ = run(app, date(2023, 5, 31), ["eliminated_with_open_guarantee", "eliminated_below_line"])
    after, _ = run(app, date(2023, 6, 1), ["eliminated_with_open_guarantee", "eliminated_below_line"])

    assert before == [] and sorted(f.rule for f in after) == ["eliminated_below_line", "eliminated_with_open_guarantee"]


def test_the_current_status_is_kept_beside_the_identification_months_and_the_post_elimination_facts(
        app, tmp_path, divisions):
    store(app, tmp_path, divisions, [eliminated("D1", 是否危房户="是", **{"人均纯收入（元）": "5000"})])
    h = app.get_household("D1")
    assert [(a["on"], a["housing"]) for a in h.guarantees] == [
        (date(2022, 3, 1), "c_level"), (date(2022, 11, 1), "safe"), (date(2023, 6, 1), "c_level")]
    assert [(a["on"], a["per_capita_income"]) for a in h.incomes] == [
        (date(2022, 3, 1), 5000), (date(2022, 11, 1), 9000), (date(2023, 6, 1), 5000)]


def test_an_unchanged_current_status_in_a_newer_export_adds_nothing(app, tmp_path, divisions):
    store(app, tmp_path, divisions, [eliminated("D1", 是否危房户="是")])
    before = app.recorder.max_notification_id()
    store(app, tmp_path, divisions, [eliminated("D1", 是否危房户="是")], exported_on=date(2023, 9, 30))
    assert app.recorder.max_notification_id() == before
