"""一月一调度一通报: the monthly dispatch counted from a small history built for it, on both stores."""

from __future__ import annotations

from datetime import date

import orjson
from openpyxl import load_workbook
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.output.reports import COUNT_HEADERS, read_monthly
from adapters.output.sheets import HEADER_ROWS
from adapters.store.storage import bootstrap
from tests.builders import cmd, inclusion_path, measure, person, register, run
from tests.problems import assign, closed_path, raise_, rectify, reopen
from tests.workbooks import headers

OTHER_VILLAGE = "522632102003"   # 榕江县: another county, another township
OTHER_VILLAGE_CADRE = {"id": "v-rj-1", "name": "榕江村干部", "role": "village", "unit": OTHER_VILLAGE}
OTHER_INSPECTOR = {"id": "insp-rj", "name": "榕江督查", "role": "inspector", "unit": "522632000000"}
OTHER_COUNTY = {"id": "c-rj", "name": "榕江县乡村振兴局", "role": "county", "unit": "522632000000"}
SITE = "城关易地扶贫搬迁安置点"


def _history(app) -> None:
    """June 2022 in two counties.

    H1 (黎平县, a national key assistance county): a lead on 06-02, entered into monitoring on 06-13, a measure
    implemented on 06-20; problem P1 on H1 raised 06-05 and closed by both parties on 06-23.
    H2 (榕江县, relocated to a resettlement site): a lead on 06-07; problem P2 raised 06-10, deadline 06-20,
    held accountable (both) on 06-25 — overdue at the month's end.
    P3 on H1 raised in May with a May deadline and never closed: overdue in June, but raised in May.
    P4 on H1 closed in May and reopened on 06-15 (accountability against both; new deadline in July).
    """
    run(app, [register("H1", on=date(2022, 5, 1), key_county=True), *inclusion_path("H1", start=date(2022, 6, 2)),
              cmd("assign_cadre", date(2022, 6, 14), household_id="H1",
                  cadre={"id": "cadre-1", "name": "王帮扶", "unit": "522631101001"}),
              *measure("H1", "M1", date(2022, 6, 15), date(2022, 6, 20))])
    run(app, [cmd("register_household", date(2022, 5, 1), OTHER_VILLAGE_CADRE, household_id="H2",
                  division_code=OTHER_VILLAGE, household_type="poverty_alleviated", relocated=True,
                  resettlement_site=SITE, members=[person(7)]),
              cmd("record_lead", date(2022, 6, 7), OTHER_VILLAGE_CADRE, household_id="H2", lead_id="H2-L1",
                  source="department_warning", risk_types=["illness"], detail="医保预警")])
    run(app, closed_path("P1", date(2022, 6, 5)))
    run(app, [raise_("P2", date(2022, 6, 10), household_id="H2", division_code=OTHER_VILLAGE, actor=OTHER_INSPECTOR),
              cmd("assign_responsibility", date(2022, 6, 11), OTHER_COUNTY, problem_id="P2",
                  responsible={"unit": "522632102000", "person": "t-rj-1"},
                  supervisor={"unit": "522632000000", "person": "c-rj-2"}, deadline="2022-06-20"),
              cmd("hold_accountable", date(2022, 6, 25), OTHER_COUNTY, problem_id="P2", party="both",
                  reason="超期未整改")])
    run(app, [raise_("P3", date(2022, 5, 10)), assign("P3", date(2022, 5, 11), deadline=date(2022, 5, 31)),
              rectify("P3", date(2022, 5, 20))])
    run(app, [*closed_path("P4", date(2022, 5, 2)), reopen("P4", date(2022, 6, 15), deadline=date(2022, 7, 15))])


def test_the_monthly_dispatch_counts_each_area_key_area_and_the_month_only(app):
    _history(app)
    report = read_monthly(app, "2022-06", None)
    expected_total = {"lead": 2, "inclusion": 1, "exit": 0, "measure_implemented": 1, "problem_raised": 2,
                      "problem_closed": 1, "problem_overdue": 2, "accountability": 2}
    assert report["total"] == expected_total
    counties = {c["county_code"]: c for c in report["counties"]}
    assert set(counties) == {"522631", "522632"}
    assert counties["522631"]["county_name"] == "黎平县" and counties["522632"]["county_name"] == "榕江县"
    liping = {k: counties["522631"][k] for k in COUNT_HEADERS}
    assert liping == {"lead": 1, "inclusion": 1, "exit": 0, "measure_implemented": 1, "problem_raised": 1,
                      "problem_closed": 1, "problem_overdue": 1, "accountability": 1}
    rongjiang = counties["522632"]["townships"]
    assert [t["township_code"] for t in rongjiang] == ["522632102"]
    assert {k: rongjiang[0][k] for k in ("lead", "problem_raised", "problem_overdue", "accountability")} == {
        "lead": 1, "problem_raised": 1, "problem_overdue": 1, "accountability": 1}
    assert [k["county_code"] for k in report["key_counties"]] == ["522631"]
    assert report["key_counties"][0]["inclusion"] == 1
    site = report["resettlement_sites"]
    assert [s["resettlement_site"] for s in site] == [SITE]
    assert (site[0]["lead"], site[0]["problem_overdue"], site[0]["accountability"]) == (1, 1, 1)


def test_the_previous_month_counts_what_happened_then(app):
    _history(app)
    may = read_monthly(app, "2022-05", None)
    assert (may["total"]["problem_raised"], may["total"]["problem_closed"], may["total"]["problem_overdue"]) == (
        2, 1, 0)   # P3 and P4 raised, P4 closed; P3's deadline is 05-31, overdue only from June


def test_the_division_filter_reports_one_county(app):
    _history(app)
    report = read_monthly(app, "2022-06", "522632")
    assert [c["county_code"] for c in report["counties"]] == ["522632"]
    assert report["total"]["lead"] == 1 and report["key_counties"] == []


def test_the_campaign_milestones_come_from_the_policy_and_say_what_is_late(app):
    _history(app)
    june = {m["key"]: m for m in read_monthly(app, "2022-06", None)["milestones"]}
    assert june["plans_by"]["due"] == date(2022, 3, 31) and june["plans_by"]["state"] == "已到期"
    assert june["screening"]["state"] == "进行中"
    assert june["rectified_by"]["due"] == date(2022, 8, 31)
    assert (june["rectified_by"]["state"], june["rectified_by"]["late"]) == ("未到期", 0)
    september = {m["key"]: m for m in read_monthly(app, "2022-09", None)["milestones"]}
    assert september["screening"]["state"] == "已结束"
    assert september["rectified_by"]["state"] == "已到期"
    assert september["rectified_by"]["late"] == 3   # P2, P3 and the reopened P4 are still open after 08-31


def test_the_report_cli_writes_a_workbook_with_the_areas_key_areas_and_milestones(sqlite_url, tmp_path):
    app = bootstrap(sqlite_url)
    _history(app)
    app.close()
    out = tmp_path / "月度调度.xlsx"
    result = CliRunner().invoke(cli, ["report", "monthly", "--month", "2022-06", "--db", sqlite_url,
                                      "--xlsx", str(out)])
    assert result.exit_code == 0, result.output
    wb = load_workbook(out)
    assert wb.sheetnames == ["月度调度", "重点区域", "专项行动节点"]
    areas = wb["月度调度"]
    assert headers(areas) == ["县/乡镇", "区划代码", *COUNT_HEADERS.values()]
    rows = [[c.value for c in r] for r in areas.iter_rows(min_row=HEADER_ROWS + 1)]
    # two counties: the 总计 row says more than either 合计
    assert [r[0].strip() for r in rows] == ["黎平县 合计", "522631101", "榕江县 合计", "522632102", "总计"]
    assert rows[-1][2:] == [2, 1, 0, 1, 2, 1, 2, 2]
    assert wb["重点区域"].max_row - HEADER_ROWS == 2
    milestones = wb["专项行动节点"]
    assert milestones.max_row - HEADER_ROWS == 6
    assert milestones.cell(row=HEADER_ROWS + 1, column=2).is_date


def test_the_report_cli_prints_json_and_refuses_a_malformed_month(sqlite_url):
    app = bootstrap(sqlite_url)
    _history(app)
    app.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["report", "monthly", "--month", "2022-06", "--db", sqlite_url, "--json"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["total"]["problem_overdue"] == 2
    bad = runner.invoke(cli, ["report", "monthly", "--month", "2022/06", "--db", sqlite_url])
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output


def test_a_key_county_counts_every_act_in_it_even_of_households_whose_record_lacks_the_flag(app):
    # H9 lives in 黎平县 like H1 but its record (e.g. imported from the national export) has no key-county flag
    _history(app)
    run(app, [register("H9", on=date(2022, 5, 2), key_county=False),
              cmd("record_lead", date(2022, 6, 8), household_id="H9", lead_id="H9-L1", source="cadre_screening",
                  risk_types=["illness"], detail="排查")])
    report = read_monthly(app, "2022-06", None)
    key = {k["county_code"]: k for k in report["key_counties"]}
    assert key["522631"]["lead"] == 2  # H1's and H9's leads
    assert "522632" not in key          # 榕江县 has no key-county household in this history


def test_a_month_without_any_facts_is_said_to_have_none_with_the_months_the_store_holds(sqlite_url):
    from tests.e2e.reading import readable

    app = bootstrap(sqlite_url)
    _history(app)
    app.close()
    runner = CliRunner()
    empty = runner.invoke(cli, ["report", "monthly", "--month", "2031-01", "--db", sqlite_url])
    assert empty.exit_code == 0, empty.output
    text = readable(empty.stdout)
    assert "没有 2031-01 的办理记录" in text and "2022-" in text
    as_json = orjson.loads(runner.invoke(cli, ["report", "monthly", "--month", "2031-01", "--db", sqlite_url,
                                               "--json"]).stdout)
    assert as_json["facts"]["in_month"] == 0 and as_json["facts"]["last_on"].startswith("2022-")
    full = orjson.loads(runner.invoke(cli, ["report", "monthly", "--month", "2022-06", "--db", sqlite_url,
                                            "--json"]).stdout)
    assert full["facts"]["in_month"] > 0
    assert "没有" not in runner.invoke(cli, ["report", "monthly", "--month", "2022-06", "--db", sqlite_url]).stdout
