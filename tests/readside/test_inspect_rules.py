"""Each inspector rule: a history that must trigger it, and a near miss that must not. Native histories are
built with commands; histories today's guards would refuse come from the national export (imported facts) or
are triggered on the aggregate directly (facts another system recorded). Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from freezegun import freeze_time

from adapters.importers.national_rows import assemble, read_row
from adapters.importers.national_writer import household_rows, person
from adapters.readside.readmodels import read_models
from casecore import legacy
from casecore.household import Household
from projections.casefacts import CaseFactsProjection
from projections.queries.inspector import RULES, Finding, inspect
from tests.builders import (
    COUNTY,
    TOWNSHIP,
    VILLAGE,
    VILLAGE_CODE,
    cmd,
    exit_path,
    inclusion_path,
    measure,
    register,
    run,
)

INCLUDED = date(2023, 3, 13)  # inclusion_path's entry into the system


def findings(app, rule: str, as_of: date, division: str | None = None) -> list[Finding]:
    with read_models(app, [CaseFactsProjection()]) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            return inspect(conn, app.policies, as_of, [rule], division)


def households(found: list[Finding]) -> list[str]:
    return sorted(f.household_id or "" for f in found)


# --- imported histories ---------------------------------------------------------------------------


def export_household(hid: str, **columns: str) -> dict[str, str]:
    return {"县": "黎平县", "乡": "德凤镇", "村": "高近村", "户编号": hid, "户类型": "脱贫户",
            "监测对象类别": "脱贫不稳定户", "识别监测时间": "202203", "风险是否已消除": "否", "致贫/返贫风险1": "因病",
            "人均纯收入（元）": "5200", "是否危房户": "否", "是否解决安全饮用水": "是", "健康帮扶": "家庭医生签约",
            "就业帮扶": "外出务工", **columns}


def eliminated(month: str = "202211", mode: str = "帮扶消除", per_capita: str = "8000", **columns: str) -> dict:
    return {"风险是否已消除": "是", "风险消除方式": mode, "消除监测时间": month, "风险消除后家庭人均纯收入": per_capita,
            "风险消除后是否住房损毁": "否", "风险消除后是否饮水设施损毁": "否", **columns}


def imported(app, hid: str, people: list[dict] | None = None, exported_on: date = date(2023, 6, 30),
             **columns: str) -> None:
    """Store what a national export says of one household (as `casecore import national` does)."""
    people = people or [person(1), person(2, date(1983, 4, 5), relation="配偶")]
    rows = [read_row(n, r, VILLAGE_CODE)
            for n, r in enumerate(household_rows(export_household(hid, **columns), people), start=4)]
    app.import_facts([assemble(rows)], legacy.Source("t.xlsx", exported_on))


# --- native histories -----------------------------------------------------------------------------


def included(app, hid: str = "H1", members: list[dict] | None = None, cadre: bool = True) -> None:
    """Registered 2023-03-01, included 2023-03-13 (risk: illness), with a responsible cadre."""
    run(app, [register(hid, members=members), *inclusion_path(hid)])
    if cadre:
        run(app, [cmd("assign_cadre", INCLUDED, household_id=hid, cadre={"name": "帮扶干部", "unit": VILLAGE_CODE})])


# ================================================================================================ assistance


def test_every_contract_rule_has_a_chinese_name_a_policy_rule_and_a_severity():
    assert len(RULES) == 21
    assert all(r.label and r.policy and r.severity in ("severe", "warning") for r in RULES.values())


def test_an_assisted_exit_within_two_months_of_inclusion_is_severe_fast_in_fast_out(app):
    imported(app, "N1", **eliminated("202205"))
    imported(app, "N2", **eliminated("202206"))   # the third month after: only short of half a year
    imported(app, "N3", **eliminated("202209", mode="自然消除"))  # six months: not fast
    found = {f.household_id: f for f in findings(app, "fast_in_fast_out", date(2023, 1, 1))}
    assert sorted(found) == ["N1", "N2"]
    assert found["N1"].severity == "severe" and found["N1"].evidence["months"] == 2
    assert found["N1"].evidence["included_on"] == "2022-03" and found["N1"].evidence["eliminated_on"] == "2022-05"
    assert found["N2"].severity == "warning" and found["N2"].evidence["months"] == 3


def test_a_natural_exit_three_months_after_a_native_inclusion_is_a_fast_in_fast_out_warning(app):
    included(app, "H1")
    run(app, exit_path("H1", date(2023, 6, 1), mode="natural"))
    included(app, "H2")
    run(app, exit_path("H2", date(2023, 9, 2), mode="natural"))  # eliminated 2023-09-13: six months to the day
    found = findings(app, "fast_in_fast_out", date(2023, 12, 31))
    assert households(found) == ["H1"]
    assert found[0].severity == "warning" and found[0].evidence["eliminated_on"] == "2023-06-12"


def test_a_household_monitored_more_than_a_month_without_an_implemented_measure_is_helped_not(app):
    included(app, "H1")
    assert findings(app, "helped_not", date(2023, 4, 13)) == []  # exactly one month: not yet "more than"
    found = findings(app, "helped_not", date(2023, 4, 14))
    assert households(found) == ["H1"] and found[0].severity == "severe"
    run(app, measure("H1", "M1", date(2023, 4, 14), date(2023, 4, 14)))
    assert findings(app, "helped_not", date(2023, 4, 14)) == []


def test_a_measure_planned_but_not_implemented_does_not_count_as_help(app):
    included(app, "H1")
    run(app, measure("H1", "M1", date(2023, 3, 20)))
    found = findings(app, "helped_not", date(2023, 5, 1))
    assert households(found) == ["H1"] and found[0].evidence["planned_not_implemented"] == 1


def test_a_risk_without_a_fitting_measure_is_found_and_a_fitting_one_clears_it(app):
    included(app, "H1")  # risk: illness
    run(app, measure("H1", "M1", date(2023, 3, 20), date(2023, 3, 21), measure_type="employment",
                     addresses=("unstable_employment",)))
    found = findings(app, "risk_without_fitting_measure", date(2023, 6, 1))
    assert households(found) == ["H1"] and found[0].evidence["unmet_needs"] == ["illness"]
    assert [m["measure_type"] for m in found[0].evidence["measures"]] == ["employment"]
    run(app, measure("H1", "M2", date(2023, 6, 1), date(2023, 6, 1)))  # health fits illness
    assert findings(app, "risk_without_fitting_measure", date(2023, 6, 1)) == []


def test_an_open_guarantee_of_a_monitored_household_needs_its_fitting_measure(app):
    included(app, "H1")
    run(app, [*measure("H1", "M1", date(2023, 3, 20), date(2023, 3, 21)),
              cmd("assess_guarantees", date(2023, 4, 1), household_id="H1", housing="d_level",
                  drinking_water_safe=True)])
    found = findings(app, "risk_without_fitting_measure", date(2023, 6, 1))
    assert [f.evidence["unmet_needs"] for f in found] == [["housing"]]
    run(app, measure("H1", "M2", date(2023, 6, 1), date(2023, 6, 1), measure_type="housing",
                     addresses=("housing",)))
    assert findings(app, "risk_without_fitting_measure", date(2023, 6, 1)) == []


def test_only_the_floor_for_a_household_with_labour_is_floor_only(app):
    included(app, "H1")
    run(app, measure("H1", "M1", date(2023, 3, 20), date(2023, 3, 21), measure_type="social_assistance",
                     addresses=("disability",)))
    labourless = [{**m, "labour": "none"} for m in register("X").model_dump(mode="json")["members"]]
    included(app, "H2", members=labourless)
    run(app, measure("H2", "M1", date(2023, 3, 20), date(2023, 3, 21), measure_type="social_assistance",
                     addresses=("disability",)))
    found = findings(app, "floor_only_with_labour", date(2023, 6, 1))
    assert households(found) == ["H1"] and found[0].evidence["measures_implemented"] == 1


def test_a_household_with_labour_needs_a_developmental_measure(app):
    included(app, "H1")
    run(app, measure("H1", "M1", date(2023, 3, 20), date(2023, 3, 21)))  # health only
    found = findings(app, "no_developmental_measure", date(2023, 6, 1))
    assert households(found) == ["H1"]
    run(app, measure("H1", "M2", date(2023, 5, 1), date(2023, 5, 2), measure_type="employment",
                     addresses=("unstable_employment",)))
    assert findings(app, "no_developmental_measure", date(2023, 6, 1)) == []


def test_a_measure_recorded_before_identification_and_counted_for_the_cycle_is_found(app):
    # an older export lists a measure for a household not yet monitored; a newer one identifies it in 2022-04
    only = {"产业帮扶": "养牛", "健康帮扶": "", "就业帮扶": ""}
    imported(app, "N1", exported_on=date(2021, 12, 31), 监测对象类别="", 识别监测时间="", **only)
    imported(app, "N1", exported_on=date(2022, 6, 30), 识别监测时间="202204", **only)
    imported(app, "N2", exported_on=date(2022, 6, 30), 识别监测时间="202204", **only)  # first seen monitored
    found = findings(app, "measure_before_identification", date(2022, 12, 31))
    assert households(found) == ["N1"]
    assert [(m["measure_type"], m["dated"]) for m in found[0].evidence["measures"]] == [("industry", "2021-12")]


def test_measures_of_an_earlier_monitoring_cycle_are_not_before_the_next_identification(app):
    included(app, "H1")
    run(app, [*measure("H1", "M1", date(2023, 3, 20), date(2023, 3, 21)),
              *exit_path("H1", date(2023, 10, 9)),
              cmd("record_lead", date(2024, 2, 1), household_id="H1", lead_id="L2", source="cadre_screening",
                  risk_types=["illness"])])
    steps = inclusion_path("H1", start=date(2024, 2, 1))[1:]
    steps[1] = cmd("verify_lead", date(2024, 2, 2), household_id="H1", lead_id="L2", finding="meets")
    run(app, steps)
    assert app.get_household("H1").included_on == date(2024, 2, 12)
    assert findings(app, "measure_before_identification", date(2024, 6, 1)) == []


# ================================================================================================ elimination


def test_an_elimination_on_income_below_the_line_is_found(app):
    imported(app, "N1", **eliminated("202211", per_capita="6699.99"))
    imported(app, "N2", **eliminated("202211", per_capita="6700"))  # the 2022 line itself is not below it
    found = findings(app, "eliminated_below_line", date(2023, 1, 1))
    assert households(found) == ["N1"]
    assert found[0].evidence["per_capita_income"] == "6699.99" and found[0].evidence["monitoring_line"] == "6700"


def test_the_line_of_the_year_of_elimination_applies(app):
    now = {"人均纯收入（元）": "7400"}  # the export's current status: above both lines
    imported(app, "N1", **eliminated("202301", per_capita="7000", **now))  # 2023 line: 7300
    imported(app, "N2", **eliminated("202212", per_capita="7000", **now))  # 2022 line: 6700
    assert households(findings(app, "eliminated_below_line", date(2023, 6, 1))) == ["N1"]


def test_an_elimination_with_a_guarantee_still_open_is_found(app):
    imported(app, "N1", **eliminated(**{"风险消除后是否住房损毁": "是"}))
    imported(app, "N2", **eliminated())
    found = findings(app, "eliminated_with_open_guarantee", date(2023, 1, 1))
    assert households(found) == ["N1"] and found[0].evidence["housing"] == "c_level"


def test_an_elimination_without_post_elimination_assessments_is_found(app):
    imported(app, "N1", 风险是否已消除="是", 风险消除方式="自然消除", 消除监测时间="202211")
    imported(app, "N2", **{**eliminated(), "风险消除后是否住房损毁": "", "风险消除后是否饮水设施损毁": ""})
    imported(app, "N3", **eliminated())
    found = {f.household_id: f for f in findings(app, "eliminated_without_reassessment", date(2023, 1, 1))}
    assert sorted(found) == ["N1", "N2"]
    assert found["N1"].evidence["missing"] == ["收入", "三保障及饮水"]
    assert found["N2"].evidence["missing"] == ["三保障及饮水"]


def test_a_native_exit_with_its_fresh_assessments_is_not_missing_them(app):
    included(app, "H1")
    run(app, exit_path("H1", date(2023, 10, 9), mode="natural"))
    assert findings(app, "eliminated_without_reassessment", date(2024, 1, 1)) == []


def test_a_household_without_labour_marked_eliminated_is_found_until_rolled_back(app):
    nobody = [person(1, labour="丧失劳动力"), person(2, date(1940, 2, 2), relation="配偶", labour="无劳动力")]
    imported(app, "N1", people=nobody, **eliminated())
    imported(app, "N2", people=[nobody[0], person(3, date(1985, 2, 2), relation="之子", labour="弱劳动力或半劳动力")],
             **eliminated())
    assert households(findings(app, "labourless_eliminated", date(2023, 1, 1))) == ["N1"]
    run(app, [cmd("rollback_elimination", date(2023, 1, 10), TOWNSHIP, household_id="N1", reason="整户无劳动力")])
    assert findings(app, "labourless_eliminated", date(2023, 2, 1)) == []
    assert households(findings(app, "labourless_eliminated", date(2023, 1, 5))) == ["N1"]  # as of before the rollback


# ================================================================================================ identification


def assessed(app, hid: str, per_capita: int, on: date = date(2023, 5, 10)) -> None:
    start, end = date(on.year - 1, on.month, 1), on.replace(day=1) - timedelta(days=1)
    run(app, [register(hid), cmd("assess_income", on, household_id=hid, period_start=start.isoformat(),
                                 period_end=end.isoformat(), net_income=str(per_capita * 2),
                                 rigid_expenditure="0")])


def warning(hid: str, lead: str, on: date, finding: str = "not_meets") -> list:
    return [cmd("record_lead", on, {"id": "yb", "role": "department", "unit": "县医保局"}, household_id=hid,
                lead_id=lead, source="department_warning", risk_types=["illness"], detail="住院自付超标"),
            cmd("verify_lead", on + timedelta(days=2), household_id=hid, lead_id=lead, finding=finding)]


def test_a_household_assessed_below_the_line_and_not_monitored_is_qualifying_not_monitored(app):
    assessed(app, "H1", 7299)
    assessed(app, "H2", 7300)  # at the 2023 line: not below it
    included(app, "H3")  # below the line, but monitored
    found = findings(app, "qualifying_not_monitored", date(2023, 6, 1))
    assert households(found) == ["H1"]
    assert found[0].severity == "severe" and found[0].evidence["per_capita_income"] == "7299.00"


def test_a_department_warning_verified_as_not_meeting_the_criteria_leaves_a_qualifying_household_outside(app):
    run(app, [register("H1"), *warning("H1", "W1", date(2023, 4, 1))])
    run(app, [register("H2"), *warning("H2", "W1", date(2023, 4, 1), finding="meets")])  # in inclusion: handled
    found = findings(app, "qualifying_not_monitored", date(2023, 6, 1))
    assert households(found) == ["H1"] and found[0].evidence["department_warnings"] == 1


def test_repeated_department_warnings_that_never_led_to_inclusion_are_found(app):
    run(app, [register("H1"), *warning("H1", "W1", date(2023, 4, 1)), *warning("H1", "W2", date(2023, 5, 1))])
    run(app, [register("H2"), *warning("H2", "W1", date(2023, 4, 1))])
    found = findings(app, "repeated_warnings_not_included", date(2023, 6, 1))
    assert households(found) == ["H1"] and found[0].evidence["department_warnings"] == 2
    assert findings(app, "repeated_warnings_not_included", date(2023, 4, 30)) == []  # as of: one so far


def slow_inclusion(hid: str, days: int) -> list:
    steps = inclusion_path(hid)
    return [*steps[:-1], cmd("enter_system", date(2023, 3, 2) + timedelta(days=days), household_id=hid)]


def test_an_inclusion_that_took_longer_than_the_policys_days_from_the_first_lead_is_slow(app):
    run(app, [register("H1"), *slow_inclusion("H1", 16)])
    run(app, [register("H2"), *slow_inclusion("H2", 15)])
    found = findings(app, "slow_identification", date(2023, 6, 1))
    assert households(found) == ["H1"] and found[0].evidence["days"] == 16


def test_a_lead_still_not_included_after_the_policys_days_is_slow(app):
    run(app, [register("H1"), inclusion_path("H1")[0]])  # lead recorded 2023-03-02
    assert findings(app, "slow_identification", date(2023, 3, 17)) == []
    found = findings(app, "slow_identification", date(2023, 3, 18))
    assert households(found) == ["H1"] and found[0].evidence["included_on"] is None


def test_a_notice_closed_before_the_policys_days_is_short_publicity(app):
    run(app, [register("H1"), *inclusion_path("H1")[:5]])  # notice opened 2023-03-05
    h = app.get_household("H1")
    archive = {"actor": VILLAGE, "command_id": None, "note": None, "evidence": [], "origin": "county_archive"}
    # another system recorded the closing four days later (today's guard refuses it)
    h.trigger_event(Household.PublicityClosed, opened_on=date(2023, 3, 5), procedure="inclusion",
                    step="publicity_closed", stage="in_inclusion", on=date(2023, 3, 9), **archive)
    app.save(h)
    run(app, [register("H2"), *inclusion_path("H2")])  # five days
    found = findings(app, "short_publicity", date(2023, 6, 1))
    assert households(found) == ["H1"] and (found[0].evidence["days"], found[0].evidence["publicity_days"]) == (4, 5)


def test_an_entry_recorded_long_after_its_business_date_is_backdated(app):
    for hid in ("H1", "H2"):
        with freeze_time("2023-03-13 10:00:00"):
            run(app, [register(hid), *inclusion_path(hid)])
    with freeze_time("2023-05-01 10:00:00"):
        run(app, [cmd("assign_cadre", date(2023, 3, 31), household_id="H1", cadre={"name": "甲", "unit": "乡"}),
                  cmd("assign_cadre", date(2023, 4, 1), household_id="H2", cadre={"name": "乙", "unit": "乡"})])
    found = findings(app, "backdated_entry", date(2023, 6, 1))
    assert households(found) == ["H1"]  # 31 days late; H2's 30 days are within the policy
    assert found[0].evidence["worst_lag_days"] == 31 and found[0].evidence["worst_event"] == "cadre_assigned"


def test_imported_history_is_never_backdated(app):
    imported(app, "N1", **eliminated())
    assert findings(app, "backdated_entry", date(2023, 6, 1)) == []


def test_a_monitored_household_without_a_responsible_cadre_is_found(app):
    included(app, "H1", cadre=False)
    included(app, "H2")
    imported(app, "N1")  # the export names no 帮扶责任人
    imported(app, "N2", 帮扶责任人="王帮扶")
    assert households(findings(app, "no_responsible_cadre", date(2023, 6, 1))) == ["H1", "N1"]


def test_a_problem_not_closed_by_its_deadline_is_rectification_overdue(app):
    inspector = {"id": "insp", "role": "inspector", "unit": "522631000000"}
    run(app, [cmd("raise_problem", date(2022, 4, 10), inspector, problem_id="P1", kind="helped_not",
                  household_id="H1", division_code=VILLAGE_CODE, source="supervision", detail="未落实措施"),
              cmd("assign_responsibility", date(2022, 4, 11), COUNTY, problem_id="P1",
                  responsible={"unit": "522631101000", "person": "t-resp"},
                  supervisor={"unit": "522631000000", "person": "c-sup"}, deadline="2022-05-31")])
    assert findings(app, "rectification_overdue", date(2022, 5, 31)) == []
    found = findings(app, "rectification_overdue", date(2022, 6, 3))
    assert [f.problem_id for f in found] == ["P1"] and found[0].evidence["overdue_days"] == 3


# ================================================================================================ scope


def test_a_division_prefix_limits_the_findings(app):
    imported(app, "N1", **eliminated("202205"))
    assert len(findings(app, "fast_in_fast_out", date(2023, 1, 1), division="522631101")) == 1
    assert findings(app, "fast_in_fast_out", date(2023, 1, 1), division="522632") == []


@pytest.mark.parametrize("rule", sorted(RULES))
def test_every_rule_runs_on_an_empty_store(sqlite_app, rule):
    assert findings(sqlite_app, rule, date(2023, 1, 1)) == []
