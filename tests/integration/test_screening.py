"""Department screening: thresholds at their boundaries, the per-capita check after self-pay, leads once per
row, unknown persons and bad rows reported."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook
from typer.testing import CliRunner

from adapters.importers.screening import KINDS, ScreeningUnreadable, screen
from tests.builders import cmd, inclusion_path, person, register, run

ON = date(2023, 7, 1)
HEAD, SPOUSE = person(1)["person_id"], person(2, date(1982, 5, 6))["person_id"]
HOSPITAL = ["身份证号", "姓名", "入院日期", "出院日期", "个人自付"]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def household(app, hid: str, household_type: str = "general", net_income: str | None = "40000") -> None:
    """Two members; the newest income assessment (if any) states the household's net income."""
    offset = 0 if hid == "H1" else int(hid[1:]) * 10  # each household its own people
    members = [person(offset + 1), person(offset + 2, date(1982, 5, 6), relation="配偶")]
    run(app, [register(hid, household_type=household_type, members=members)])
    if net_income is not None:
        run(app, [cmd("assess_income", date(2023, 6, 1), household_id=hid, period_start="2022-06-01",
                      period_end="2023-05-31", net_income=net_income, rigid_expenditure="0")])


def leads_of(app, hid: str) -> list[dict]:
    return sorted(app.get_household(hid).leads.values(), key=lambda x: x["lead_id"])


def stay(pid: str, out: str, pay: str, into: str | None = None) -> list[str]:
    return [pid, "某", into or out, out, pay]


def test_a_single_stay_over_the_threshold_of_a_poverty_alleviated_household_makes_a_lead(app, tmp_path):
    household(app, "H1", "poverty_alleviated", net_income="14000")
    p = write_csv(tmp_path / "yb.csv", HOSPITAL, [stay(HEAD, "2023-05-10", "4000.00"),    # not over 4,000
                                                    stay(SPOUSE, "2023-05-12", "4000.01")])  # over
    report = screen(app, "hospital", p, ON)
    assert report.leads == 1 and [n for n, _ in report.not_flagged] == [2]
    (lead,) = leads_of(app, "H1")
    assert lead["source"] == "department_warning" and lead["risk_types"] == ["illness"]
    assert "单次住院自付 4000.01 元超过 4000 元" in lead["detail"] and lead["on"] == ON


def test_the_stay_that_takes_the_yearly_total_over_the_threshold_makes_the_lead(app, tmp_path):
    household(app, "H1", "poverty_alleviated", net_income="14000")
    household(app, "H2", "poverty_alleviated", net_income="14000")
    h2 = person(21)["person_id"]
    rows = [stay(HEAD, "2023-02-01", "3000"), stay(HEAD, "2023-05-01", "3700"),       # 6,700: not over
            stay(h2, "2023-02-01", "3000"), stay(h2, "2023-05-01", "3700.01")]         # 6,700.01: over
    report = screen(app, "hospital", write_csv(tmp_path / "yb.csv", HOSPITAL, rows), ON)
    assert report.leads == 1 and leads_of(app, "H1") == []
    assert "年度累计自付 6700.01 元超过 6700 元" in leads_of(app, "H2")[0]["detail"]


def test_a_general_households_thresholds_are_higher(app, tmp_path):
    household(app, "H1", net_income="20000")
    rows = [stay(HEAD, "2023-03-01", "5000"), stay(SPOUSE, "2023-04-01", "10000")]  # single 10,000: not over
    assert screen(app, "hospital", write_csv(tmp_path / "a.csv", HOSPITAL, rows), ON).leads == 0
    rows = [stay(HEAD, "2023-06-01", "10000.01")]
    assert screen(app, "hospital", write_csv(tmp_path / "b.csv", HOSPITAL, rows), ON).leads == 1


def test_only_a_household_whose_income_after_self_pay_is_below_the_line_is_flagged(app, tmp_path):
    # two people, 2023 line 7,300: net 34,600.01 − 20,000.01 = 14,600 → 7,300 a head: not below
    household(app, "H1", net_income="34600.01")
    household(app, "H2", net_income="34600")   # − 20,000.01 → 7,299.995 a head: below
    h2 = person(21)["person_id"]
    rows = [stay(HEAD, "2023-03-01", "10000.01"), stay(SPOUSE, "2023-04-01", "10000"),
            stay(h2, "2023-03-01", "10000.01"),
            stay(person(22, date(1982, 5, 6))["person_id"], "2023-04-01", "10000")]
    report = screen(app, "hospital", write_csv(tmp_path / "yb.csv", HOSPITAL, rows), ON)
    assert report.leads == 1 and leads_of(app, "H1") == []
    assert "低于监测标准 7300 元" in leads_of(app, "H2")[0]["detail"]
    assert any("不低于监测标准" in reason for _, reason in report.not_flagged)


def test_a_monitored_household_is_not_flagged_and_one_without_income_data_is(app, tmp_path):
    household(app, "H1")
    run(app, inclusion_path("H1"))
    household(app, "H2", net_income=None)
    rows = [stay(HEAD, "2023-05-01", "20000"), stay(person(21)["person_id"], "2023-05-01", "20000")]
    report = screen(app, "hospital", write_csv(tmp_path / "yb.csv", HOSPITAL, rows), ON)
    assert report.leads == 1 and ("已在监测" in report.not_flagged[0][1])
    assert "无收入核算" in leads_of(app, "H2")[0]["detail"]


def test_stays_before_the_policys_start_date_are_not_screened(app, tmp_path):
    household(app, "H1", net_income="1000")
    report = screen(app, "hospital", write_csv(tmp_path / "yb.csv", HOSPITAL,
                                               [stay(HEAD, "2020-12-31", "20000", "2020-12-01")]), ON)
    assert report.leads == 0 and "早于筛查起始日期 2021-01-01" in report.not_flagged[0][1]


def test_the_same_row_never_makes_two_leads_in_csv_or_xlsx(app, tmp_path):
    household(app, "H1", net_income="1000")
    rows = [stay(HEAD, "2023-05-01", "20000")]
    first = screen(app, "hospital", write_csv(tmp_path / "yb.csv", HOSPITAL, rows), ON)
    wb = Workbook()
    wb.active.append(["医保住院结算数据"])  # a title row above the header
    wb.active.append(HOSPITAL)
    for r in rows:
        wb.active.append(r)
    wb.save(tmp_path / "yb.xlsx")
    again = screen(app, "hospital", tmp_path / "yb.xlsx", date(2023, 8, 1))
    assert (first.leads, again.leads, again.already) == (1, 0, 1)
    assert len(leads_of(app, "H1")) == 1


def test_unknown_persons_and_unreadable_rows_are_reported_with_their_row_numbers(app, tmp_path):
    household(app, "H1", net_income="1000")
    stranger = person(99, date(1990, 1, 1))["person_id"]
    wrong_check = HEAD[:17] + ("0" if HEAD[17] != "0" else "1")
    rows = [stay(stranger, "2023-05-01", "20000"), stay(wrong_check, "2023-05-01", "20000"),
            stay(HEAD, "2023-13-01", "20000"), stay(HEAD, "2023-05-01", "很多"), stay(HEAD, "2023-05-01", "20000")]
    report = screen(app, "hospital", write_csv(tmp_path / "yb.csv", HOSPITAL, rows), ON)
    assert report.unknown_persons == [(2, stranger)]
    assert [n for n, _ in report.rejected] == [3, 4, 5]
    reasons = [r for _, r in report.rejected]
    assert "校验位" in reasons[0] and "出院日期" in reasons[1] and "个人自付" in reasons[2]
    assert report.leads == 1


def test_new_dibao_households_make_leads_with_the_risks_of_their_reason(app, tmp_path):
    household(app, "H1")
    household(app, "H2")
    header = ["户主身份证号", "户主姓名", "低保类型", "纳入原因", "纳入时间", "是否整户"]
    rows = [[HEAD, "甲", "农村低保", "因病、因残", "2023-03-15", "是"],
            [person(21)["person_id"], "乙", "农村低保", "因病", "2020-06-01", "是"]]  # before 2021: not new
    report = screen(app, "dibao", write_csv(tmp_path / "mz.csv", header, rows), ON)
    assert report.leads == 1 and leads_of(app, "H2") == []
    lead = leads_of(app, "H1")[0]
    assert lead["risk_types"] == ["illness", "disability"] and "整户" in lead["detail"]


def test_dropout_housing_and_water_files_make_guarantee_leads(app, tmp_path):
    household(app, "H1")
    child = person(3, date(2012, 3, 3), relation="之子")["person_id"]
    run(app, [cmd("add_member", date(2023, 6, 2), household_id="H1", reason="birth",
                  member=person(3, date(2012, 3, 3), relation="之子"))])
    dropout = write_csv(tmp_path / "jy.csv", ["学生身份证号", "学生姓名", "学校", "辍学时间"],
                        [[child, "丙", "某小学", "2023-03-01"]])
    housing = write_csv(tmp_path / "zj.csv", ["户主身份证号", "户主姓名", "危房等级", "鉴定日期"],
                        [[HEAD, "甲", "B级", "2023-04-01"], [HEAD, "甲", "D级", "2023-04-02"]])
    water = write_csv(tmp_path / "sl.csv", ["身份证号", "姓名", "问题描述", "核查日期"],
                      [[SPOUSE, "乙", "水源季节性断水", "2023-05-01"]])
    assert [screen(app, k, f, ON).leads for k, f in (("dropout", dropout), ("housing", housing), ("water", water))] \
        == [1, 1, 1]
    assert sorted(r for lead in leads_of(app, "H1") for r in lead["risk_types"]) == [
        "drinking_water", "housing", "schooling"]


def test_a_file_missing_a_required_column_names_it(app, tmp_path):
    p = write_csv(tmp_path / "yb.csv", ["身份证号", "姓名", "出院日期"], [[HEAD, "甲", "2023-05-01"]])
    with pytest.raises(ScreeningUnreadable, match="self_pay"):
        screen(app, "hospital", p, ON)


def test_every_kind_declares_its_columns_in_one_place():
    assert sorted(KINDS) == ["dibao", "dropout", "hospital", "housing", "water"]
    assert all(set(k.required) <= set(k.columns) and "person_id" in k.columns for k in KINDS.values())


def test_the_cli_screens_a_file_and_prints_its_summary(sqlite_url, tmp_path):
    from adapters.cli import app as cli
    from adapters.store.storage import bootstrap

    app = bootstrap(sqlite_url)
    try:
        household(app, "H1", net_income="1000")
    finally:
        app.close()
    p = write_csv(tmp_path / "yb.csv", HOSPITAL, [stay(HEAD, "2023-05-01", "20000")])
    result = CliRunner().invoke(cli, ["screen", "hospital", str(p), "--db", sqlite_url, "--on", "2023-07-01",
                                      "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["leads"] == 1
    result = CliRunner().invoke(cli, ["screen", "hospital", str(p), "--db", sqlite_url, "--on", "2023-07-01"])
    assert result.exit_code == 0 and "已登记过" in result.stdout


def test_rows_beyond_the_input_limits_are_rejected_with_their_line_and_the_rest_make_leads(app, tmp_path):
    """Self-pay of 1e26 (it crashed the per-capita check), a name cell of 2,000 characters (it would make a lead's
    detail beyond its limit) and a stay dated 1999 are each their row's rejection; the good row makes its lead."""
    household(app, "H1", "poverty_alleviated", net_income="14000")
    rows = [stay(HEAD, "2023-05-10", "1e26"), [SPOUSE, "名" * 2000, "2023-05-01", "2023-05-12", "5000"],
            stay(SPOUSE, "1999-05-12", "5000"), stay(SPOUSE, "2023-05-12", "5000")]
    report = screen(app, "hospital", write_csv(tmp_path / "yb.csv", HOSPITAL, rows), ON)
    reasons = dict(report.rejected)
    assert sorted(reasons) == [2, 3, 4]
    assert "个人自付" in reasons[2] and "姓名" in reasons[3] and "出院日期" in reasons[4]
    assert report.leads == 1



def test_leads_written_by_the_screening_carry_no_names_and_no_departments_own_words(app, tmp_path):
    household(app, "H1", household_type="poverty_alleviated", net_income="10000")
    child = person(3, date(2012, 3, 3), relation="之子")
    run(app, [cmd("add_member", date(2023, 6, 2), household_id="H1", reason="birth", member=child)])
    files = {
        "hospital": write_csv(tmp_path / "yb.csv", HOSPITAL, [[HEAD, "韦某某", "2023-05-01", "2023-05-09", "4000.01"]]),
        "dibao": write_csv(tmp_path / "mz.csv", ["户主身份证号", "户主姓名", "纳入原因", "纳入时间"],
                           [[HEAD, "韦某某", "尿毒症重病透析", "2023-03-15"]]),
        "dropout": write_csv(tmp_path / "jy.csv", ["学生身份证号", "学生姓名", "学校", "辍学时间", "辍学原因"],
                             [[child["person_id"], "韦小某", "某小学", "2023-03-01", "抑郁症休学"]]),
    }
    for kind, path in files.items():
        assert screen(app, kind, path, ON).leads == 1, kind
    details = [lead["detail"] for lead in leads_of(app, "H1")]
    assert len(details) == 3
    for text in details:
        assert "韦" not in text and "尿毒症" not in text and "抑郁" not in text
    assert any(f"家庭成员 {HEAD}" in t for t in details) and any(child["person_id"] in t for t in details)
    assert any("原因: 因病" in t for t in details)


def test_a_screening_lead_id_is_not_a_digest_of_the_persons_id_number(app, tmp_path):
    """Beside the masked number (region, last four) a digest of the full number could be checked against every
    birth date in a second: the lead id must not depend on the number."""
    household(app, "H1", household_type="poverty_alleviated", net_income="10000")
    first = write_csv(tmp_path / "a.csv", HOSPITAL, [[HEAD, "某", "2023-05-01", "2023-05-09", "4000.01"]])
    screen(app, "hospital", first, ON)
    [lead] = leads_of(app, "H1")
    other_app_dir = tmp_path / "other"
    other_app_dir.mkdir()
    from adapters.store.storage import bootstrap

    other = bootstrap(str(other_app_dir / "db"))
    try:
        # the same household and stay, told with another person's number: the same lead id
        alias = person(1, date(1981, 7, 8))
        run(other, [register("H1", household_type="poverty_alleviated", members=[alias, person(2)]),
                    cmd("assess_income", date(2023, 6, 1), household_id="H1", period_start="2022-06-01",
                        period_end="2023-05-31", net_income="10000", rigid_expenditure="0")])
        screen(other, "hospital", write_csv(tmp_path / "b.csv", HOSPITAL,
                                            [[alias["person_id"], "某", "2023-05-01", "2023-05-09", "4000.01"]]), ON)
        [again] = sorted(other.get_household("H1").leads.values(), key=lambda x: x["lead_id"])
    finally:
        other.close()
    assert again["lead_id"] == lead["lead_id"]
