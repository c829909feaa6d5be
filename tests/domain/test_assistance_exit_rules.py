"""The exit rules (风险消除), each at its boundary, with explicit business dates."""

from __future__ import annotations

from datetime import date

import pytest
from freezegun import freeze_time

from casecore.application import CaseManagement
from casecore.values import Stage
from tests.builders import (
    cmd,
    exit_nomination,
    exit_path,
    exit_procedure,
    guarantees,
    inclusion_path,
    income,
    measure,
    person,
    register,
    run,
)

# measures implemented on 2023-04-01: six months later is 2023-10-01; the day before is 5 months 29 days
IMPLEMENTED = date(2023, 4, 1)
DAY_BEFORE_SIX_MONTHS = date(2023, 9, 30)
SIX_MONTHS = date(2023, 10, 1)
# covers the 12 months before either day (2022-09-01..2023-08-31 and 2022-10-01..2023-09-30)
BOTH_WINDOWS = (date(2022, 9, 1), date(2023, 9, 30))


def assisted(app, hid: str = "H1", members: list[dict] | None = None, implemented: date = IMPLEMENTED) -> None:
    """A household monitored since 2023-03-13 with one health measure implemented on `implemented`."""
    run(app, [register(hid, members=members), *inclusion_path(hid, size=len(members or [1, 2])),
              *measure(hid, f"{hid}-M1", min(date(2023, 3, 20), implemented), implemented)])


def nominate(on: date, mode: str = "assisted", hid: str = "H1"):
    return cmd("nominate_exit", on, household_id=hid, mode=mode)


def refused(app, command, rule: str):
    before = app.get_household(command.household_id).version
    outcome = app.handle(command)
    assert not outcome.ok, f"{command.command} was accepted"
    assert (outcome.error.code, outcome.error.rule) == ("policy_violation", rule), outcome.error.as_dict()
    assert app.get_household(command.household_id).version == before  # a refusal changes nothing
    return outcome.error


# --- targeted assistance for at least policy.exit.min_assistance_months ------------------------------


def test_an_assisted_exit_is_refused_at_five_months_29_days_of_assistance_and_accepted_at_six_months(memory_app):
    assisted(memory_app)
    run(memory_app, [income("H1", DAY_BEFORE_SIX_MONTHS, 8000, period=BOTH_WINDOWS),
                     guarantees("H1", date(2023, 9, 1))])
    err = refused(memory_app, nominate(DAY_BEFORE_SIX_MONTHS), "min_assistance_months")
    assert "2023-10-01" in err.message  # the earliest day it may be nominated
    assert memory_app.handle(nominate(SIX_MONTHS)).ok
    h = memory_app.get_household("H1")
    assert (h.stage, h.procedure, h.exit_mode, h.exit_nominated_on) == (Stage.IN_EXIT, "exit", "assisted", SIX_MONTHS)


def test_a_natural_exit_needs_no_months_of_assistance(memory_app):
    assisted(memory_app)
    run(memory_app, [income("H1", DAY_BEFORE_SIX_MONTHS, 8000), guarantees("H1", date(2023, 9, 1))])
    assert memory_app.handle(nominate(DAY_BEFORE_SIX_MONTHS, "natural")).ok


def test_an_assisted_exit_without_any_implemented_measure_is_refused_and_points_to_a_natural_exit(memory_app):
    run(memory_app, [register(), *inclusion_path(), *measure("H1", "M1", date(2023, 3, 20))])  # planned only
    run(memory_app, exit_nomination("H1", date(2023, 12, 1))[:2])
    err = refused(memory_app, nominate(date(2023, 12, 1)), "min_assistance_months")
    assert "natural" in err.message


def test_a_measure_implemented_before_inclusion_does_not_count_towards_the_six_months(memory_app):
    run(memory_app, [register(), *inclusion_path(), *measure("H1", "early", date(2023, 3, 1), date(2023, 3, 1)),
              *measure("H1", "later", date(2023, 5, 2), date(2023, 5, 2))])
    run(memory_app, exit_nomination("H1", date(2023, 9, 15))[:2])
    # six months after 2023-03-01 have passed, but the first measure after inclusion (2023-03-13) is 2023-05-02
    err = refused(memory_app, nominate(date(2023, 9, 15)), "min_assistance_months")
    assert "2023-05-02" in err.message


def test_the_six_months_are_read_on_the_nomination_date_by_the_frozen_clock_of_a_cadre_who_nominates_today(memory_app):
    assisted(memory_app)
    run(memory_app, [income("H1", DAY_BEFORE_SIX_MONTHS, 8000, period=BOTH_WINDOWS),
                     guarantees("H1", date(2023, 9, 1))])
    with freeze_time("2023-09-30"):
        refused(memory_app, nominate(date.today()), "min_assistance_months")
    with freeze_time("2023-10-01"):
        assert memory_app.handle(nominate(date.today())).ok


# --- income over the 12 months before nomination, against that year's line -------------------------


@pytest.mark.parametrize(("per_capita", "accepted"), [(7299, False), ("7299.99", False), (7300, True)])
def test_an_exit_is_refused_when_per_capita_income_is_below_the_line_and_accepted_at_the_line(memory_app, per_capita,
                                                                                            accepted):
    assisted(memory_app)
    on = date(2023, 12, 1)
    run(memory_app, [income("H1", on, per_capita), guarantees("H1", on)])
    if accepted:
        assert memory_app.handle(nominate(on)).ok
    else:
        err = refused(memory_app, nominate(on), "exit_income_below_line")
        assert "7300" in err.message


def test_the_line_is_that_of_the_nomination_year(memory_app):
    assisted(memory_app, implemented=date(2023, 3, 13))
    # 7,000 yuan a head clears the 2022 line (6,700) but not the 2023 line (7,300)
    run(memory_app, [income("H1", date(2023, 12, 31), 7000, period=(date(2022, 12, 1), date(2023, 12, 31))),
              guarantees("H1", date(2023, 9, 14))])
    refused(memory_app, nominate(date(2023, 12, 31)), "exit_income_below_line")

    b = CaseManagement()
    run(b, [register("H2", on=date(2022, 3, 1)), *inclusion_path("H2", start=date(2022, 3, 2)),
            *measure("H2", "M1", date(2022, 3, 13), date(2022, 3, 13)),
            income("H2", date(2022, 12, 31), 7000), guarantees("H2", date(2022, 12, 31))])
    assert b.handle(nominate(date(2022, 12, 31), hid="H2")).ok


def test_the_newest_income_assessment_covering_the_window_decides(memory_app):
    assisted(memory_app)
    on = date(2023, 12, 1)
    run(memory_app, [income("H1", date(2023, 11, 30), 9000, procedure_on=on), income("H1", on, 7000),
              guarantees("H1", on)])
    refused(memory_app, nominate(on), "exit_income_below_line")
    run(memory_app, [income("H1", on, 7400)])
    assert memory_app.handle(nominate(on)).ok


def test_an_exit_without_an_income_assessment_covering_the_twelve_months_before_nomination_is_refused(memory_app):
    assisted(memory_app)
    on = date(2023, 12, 1)
    # covers 2022-12-01..2023-10-31: one month short of the window ending 2023-11-30
    run(memory_app, [income("H1", on, 9000, period=(date(2022, 12, 1), date(2023, 10, 31))), guarantees("H1", on)])
    err = refused(memory_app, nominate(on), "exit_income_assessment_missing")
    assert "2022-12-01" in err.message and "2023-11-30" in err.message


def test_an_assessment_dated_after_the_nomination_does_not_justify_it(memory_app):
    assisted(memory_app)
    run(memory_app, [income("H1", date(2023, 12, 5), 9000, procedure_on=date(2023, 12, 1)),
              guarantees("H1", date(2023, 12, 1))])
    refused(memory_app, nominate(date(2023, 12, 1)), "exit_income_assessment_missing")


# --- guarantees (三保障及饮水) ----------------------------------------------------------------------


CHILD = person(3, date(2012, 9, 1), labour="none", relation="子", in_school=False)


@pytest.mark.parametrize("gap", ["c_level", "d_level", "unsafe_water", "child_out_of_school", "uninsured"])
def test_an_exit_is_refused_while_the_newest_guarantee_assessment_leaves_a_guarantee_open(memory_app, gap):
    members = [person(1), person(2, date(1982, 5, 6), relation="配偶"), CHILD]
    assisted(memory_app, members=members)
    on = date(2023, 12, 1)
    fields = {
        "c_level": {"housing": "c_level"},
        "d_level": {"housing": "d_level"},
        "unsafe_water": {"drinking_water_safe": False},
        "child_out_of_school": {"children_out_of_school": [CHILD["person_id"]]},
        "uninsured": {"members_without_medical_insurance": [members[0]["person_id"]]},
    }[gap]
    run(memory_app, [income("H1", on, 8000, size=3), guarantees("H1", on, **fields)])
    refused(memory_app, nominate(on), "open_guarantee")
    run(memory_app, [guarantees("H1", on)])  # the newest assessment finds everything secure
    assert memory_app.handle(nominate(on)).ok


def test_a_member_without_insurance_who_has_since_moved_away_no_longer_holds_the_exit_back(memory_app):
    members = [person(1), person(2, date(1982, 5, 6), relation="配偶"), CHILD]
    assisted(memory_app, members=members)
    on = date(2023, 12, 1)
    run(memory_app, [income("H1", on, 8000, size=3),
              guarantees("H1", date(2023, 11, 1), members_without_medical_insurance=[CHILD["person_id"]])])
    refused(memory_app, nominate(on), "open_guarantee")
    run(memory_app, [cmd("remove_member", date(2023, 11, 15), household_id="H1", person_id=CHILD["person_id"],
                  reason="moved")])
    assert memory_app.handle(nominate(on)).ok


# --- 整户无劳动力 ------------------------------------------------------------------------------------


def test_a_household_without_labour_is_never_nominated_and_is_told_it_stays_monitored(memory_app):
    members = [person(1, date(1940, 1, 2), labour="none"), person(2, date(1942, 5, 6), labour="none", relation="配偶")]
    assisted(memory_app, members=members)
    run(memory_app, exit_nomination("H1", date(2023, 12, 1))[:2])
    for mode in ("assisted", "natural"):
        err = refused(memory_app, nominate(date(2023, 12, 1), mode), "household_without_labour")
        assert "持续跟踪" in err.message and "社会保障" in err.message
    assert memory_app.get_household("H1").stage == Stage.MONITORED


def test_a_weak_labour_member_is_labour(memory_app):
    members = [person(1, date(1950, 1, 2), labour="weak"), person(2, date(1942, 5, 6), labour="none", relation="配偶")]
    assisted(memory_app, members=members)
    run(memory_app, exit_nomination("H1", date(2023, 12, 1)))
    assert memory_app.get_household("H1").stage == Stage.IN_EXIT


def test_the_death_of_the_only_working_member_makes_the_household_labourless(memory_app):
    members = [person(1, date(1970, 1, 2)), person(2, date(1942, 5, 6), labour="none", relation="母亲")]
    assisted(memory_app, members=members)
    run(memory_app, [cmd("remove_member", date(2023, 11, 1), household_id="H1", person_id=members[0]["person_id"],
                  reason="death")])
    run(memory_app, exit_nomination("H1", date(2023, 12, 1), size=1)[:2])
    refused(memory_app, nominate(date(2023, 12, 1)), "household_without_labour")


# --- natural member changes and per-capita income ---------------------------------------------------


def test_a_birth_before_the_period_ends_lowers_per_capita_income_below_the_line_and_blocks_the_exit(memory_app):
    assisted(memory_app)
    on = date(2023, 12, 1)
    baby = person(9, date(2023, 6, 1), labour="none", relation="子")
    run(memory_app, [cmd("add_member", date(2023, 6, 1), household_id="H1", member=baby, reason="birth"),
              cmd("assess_income", on, household_id="H1", period_start="2022-12-01", period_end="2023-11-30",
                  net_income="20000", rigid_expenditure="0"),
              guarantees("H1", on)])
    assessment = memory_app.get_household("H1").incomes[-1]
    assert (assessment["household_size"], str(assessment["per_capita_income"])) == (3, "6666.67")
    refused(memory_app, nominate(on), "exit_income_below_line")


def test_a_death_raises_per_capita_income_above_the_line_on_reassessment_and_lets_the_exit_through(memory_app):
    grandmother = person(3, date(1930, 1, 1), labour="none", relation="祖母")
    assisted(memory_app, members=[person(1), person(2, date(1982, 5, 6), relation="配偶"), grandmother])
    on = date(2023, 12, 1)
    net = {"household_id": "H1", "net_income": "21897", "rigid_expenditure": "0", "period_start": "2022-12-01",
           "period_end": "2023-11-30"}
    run(memory_app, [cmd("assess_income", date(2023, 11, 30), **net), guarantees("H1", on)])
    assert memory_app.get_household("H1").incomes[-1]["per_capita_income"] == 7299
    refused(memory_app, nominate(on), "exit_income_below_line")
    # the death is reported late but dated before the period's end: the same income now feeds two people
    run(memory_app, [cmd("remove_member", date(2023, 10, 15), household_id="H1", person_id=grandmother["person_id"],
                  reason="death"),
              cmd("assess_income", on, **net)])
    assert memory_app.get_household("H1").incomes[-1]["household_size"] == 2
    assert memory_app.handle(nominate(on)).ok


# --- 风险消除后: fresh data dated after the nomination before the township marks ---------------------


def approved(app, on: date = date(2023, 12, 1)) -> list:
    """A household nominated on `on` and approved by the county; returns the remaining two assessments
    and the mark."""
    assisted(app)
    rest = exit_procedure("H1", on)
    run(app, [*exit_nomination("H1", on), *rest[:5]])
    assert app.get_household("H1").step == "county_approved"
    return rest[5:]


def test_marking_the_risk_eliminated_without_fresh_assessments_is_refused(memory_app):
    inc, gua, mark = approved(memory_app)
    err = refused(memory_app, mark, "post_elimination_assessment")
    assert "收入核算" in err.message and "三保障及饮水核查" in err.message
    run(memory_app, [inc])
    err = refused(memory_app, mark, "post_elimination_assessment")
    assert "收入核算" not in err.message and "三保障及饮水核查" in err.message
    run(memory_app, [gua])
    assert memory_app.handle(mark).ok
    assert memory_app.get_household("H1").stage == Stage.RISK_ELIMINATED


def test_assessments_made_on_the_nomination_day_are_not_post_elimination_data(memory_app):
    on = date(2023, 12, 1)
    *_, mark = approved(memory_app, on)
    run(memory_app, [income("H1", on, 9000), guarantees("H1", on)])
    refused(memory_app, mark, "post_elimination_assessment")
    run(memory_app, [income("H1", date(2023, 12, 2), 9000, procedure_on=on), guarantees("H1", date(2023, 12, 2))])
    assert memory_app.handle(mark).ok


def test_fresh_data_below_the_line_or_with_an_open_guarantee_block_the_mark(memory_app):
    on = date(2023, 12, 1)
    *_, mark = approved(memory_app, on)
    run(memory_app, [income("H1", date(2023, 12, 11), 7299, procedure_on=on), guarantees("H1", date(2023, 12, 11))])
    refused(memory_app, mark, "exit_income_below_line")
    run(memory_app, [income("H1", date(2023, 12, 11), 7300, procedure_on=on),
              guarantees("H1", date(2023, 12, 11), housing="d_level")])
    refused(memory_app, mark, "open_guarantee")
    run(memory_app, [guarantees("H1", date(2023, 12, 12))])
    assert memory_app.handle(mark).ok


def test_a_household_that_loses_its_labour_during_the_procedure_is_not_marked_and_the_township_can_close_it(memory_app):
    on = date(2023, 12, 1)
    members = [person(1, date(1970, 1, 2)), person(2, date(1942, 5, 6), labour="none", relation="母亲")]
    run(memory_app, [register(members=members), *inclusion_path(),
              *measure("H1", "M1", date(2023, 3, 20), IMPLEMENTED), *exit_nomination("H1", on)])
    rest = exit_procedure("H1", on)
    run(memory_app, [*rest[:7], cmd("remove_member", date(2023, 12, 11), household_id="H1",
                             person_id=members[0]["person_id"], reason="death")])
    err = refused(memory_app, rest[7], "household_without_labour")
    assert "持续跟踪" in err.message
    run(memory_app, [cmd("review_township", date(2023, 12, 12), household_id="H1", decision="reject")])
    h = memory_app.get_household("H1")
    assert (h.stage, h.procedure, h.eliminated_on) == (Stage.MONITORED, None, None)


def test_an_exit_path_from_nomination_to_mark_leaves_the_household_eliminated(memory_app):
    assisted(memory_app)
    run(memory_app, exit_path("H1", SIX_MONTHS))
    h = memory_app.get_household("H1")
    assert (h.stage, h.eliminated_on, h.exit_mode, h.procedure) == (Stage.RISK_ELIMINATED, date(2023, 10, 12),
                                                                     "assisted", None)


def test_a_nomination_needs_a_monitored_household_with_no_open_procedure(memory_app):
    run(memory_app, [register(), *inclusion_path()[:3]])
    outcome = memory_app.handle(nominate(date(2023, 12, 1)))
    assert outcome.error.code == "invalid_transition"


def test_a_nomination_dated_before_inclusion_is_refused(memory_app):
    assisted(memory_app)
    refused(memory_app, nominate(date(2023, 3, 12), "natural"), "step_date_order")



def test_an_exit_nominated_in_december_and_marked_in_january_is_marked_against_the_new_years_line(memory_app):
    run(memory_app, [register("H2", on=date(2022, 3, 1)), *inclusion_path("H2", start=date(2022, 3, 2)),
              *measure("H2", "M1", date(2022, 3, 13), date(2022, 3, 13)),
              *exit_nomination("H2", date(2022, 12, 10), per_capita_income=7000)])
    rest = exit_procedure("H2", date(2022, 12, 10), per_capita_income=7000)
    run(memory_app, rest[:7])  # the fresh assessment on 2022-12-20 finds 7,000 a head: above 2022's 6,700
    mark = cmd("mark_risk_eliminated", date(2023, 1, 3), household_id="H2")  # 2023's line is 7,300
    refused(memory_app, mark, "exit_income_below_line")
    on_new_years_eve = cmd("mark_risk_eliminated", date(2022, 12, 31), household_id="H2")
    assert memory_app.handle(on_new_years_eve).ok


# --- six months of assistance means measures in place, without a gap --------------------------------------


def test_a_measure_implemented_and_ended_five_days_later_is_not_six_months_of_assistance(memory_app):
    assisted(memory_app)
    run(memory_app, [cmd("end_measure", date(2023, 4, 6), household_id="H1", measure_id="H1-M1"),
              income("H1", date(2023, 12, 1), 8000), guarantees("H1", date(2023, 12, 1))])
    err = refused(memory_app, nominate(date(2023, 12, 1)), "min_assistance_months")
    assert "6个月" in err.message


def test_measures_in_place_five_months_29_days_are_refused_and_six_months_accepted(memory_app):
    # implemented 2023-04-01, ended 2023-09-30: in place until 2023-09-29, five months and 29 days
    assisted(memory_app)
    run(memory_app, [cmd("end_measure", date(2023, 9, 30), household_id="H1", measure_id="H1-M1"),
              income("H1", date(2023, 12, 1), 8000), guarantees("H1", date(2023, 12, 1))])
    refused(memory_app, nominate(date(2023, 12, 1)), "min_assistance_months")
    b = CaseManagement()
    assisted(b)  # ended on 2023-10-01: in place on every day of the six months
    run(b, [cmd("end_measure", date(2023, 10, 1), household_id="H1", measure_id="H1-M1"),
            income("H1", date(2023, 12, 1), 8000), guarantees("H1", date(2023, 12, 1))])
    assert b.handle(nominate(date(2023, 12, 1))).ok


def test_measures_that_take_over_from_each_other_without_a_gap_count_together(memory_app):
    assisted(memory_app)  # M1 from 2023-04-01
    run(memory_app, [*measure("H1", "M2", date(2023, 6, 1), date(2023, 6, 1)),
              cmd("end_measure", date(2023, 6, 2), household_id="H1", measure_id="H1-M1"),
              income("H1", SIX_MONTHS, 8000, period=BOTH_WINDOWS), guarantees("H1", date(2023, 9, 1))])
    assert memory_app.handle(nominate(SIX_MONTHS)).ok


# --- the fresh income at the mark covers twelve months ----------------------------------------------------


def test_a_fresh_income_assessment_of_one_month_does_not_support_the_mark_and_one_of_twelve_does(memory_app):
    run(memory_app, [register("H2", on=date(2022, 3, 1)), *inclusion_path("H2", start=date(2022, 3, 2)),
              *measure("H2", "M1", date(2022, 3, 13), date(2022, 3, 13)),
              *exit_nomination("H2", date(2022, 10, 10))])
    rest = exit_procedure("H2", date(2022, 10, 10))
    run(memory_app, [*rest[:5], guarantees("H2", date(2022, 10, 20)),
              income("H2", date(2022, 10, 20), 9000, period=(date(2022, 9, 1), date(2022, 9, 30)))])
    mark = cmd("mark_risk_eliminated", date(2022, 10, 21), household_id="H2")
    err = refused(memory_app, mark, "post_elimination_assessment")
    assert "12个月" in err.message
    # eleven months are not a year either; twelve are
    run(memory_app, [income("H2", date(2022, 10, 21), 9000, period=(date(2021, 11, 1), date(2022, 9, 29)))])
    refused(memory_app, mark, "post_elimination_assessment")
    run(memory_app, [income("H2", date(2022, 10, 21), 9000, period=(date(2021, 10, 1), date(2022, 9, 30)))])
    assert memory_app.handle(mark).ok
