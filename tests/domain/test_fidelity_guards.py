"""Rules the engine enforces at their boundaries: one person signs one level of a procedure, at most five
risk types, a division inside the policy's province, and double responsibility held by two units."""

from __future__ import annotations

from datetime import date

import pytest

from tests.builders import (
    COUNTY,
    TOWNSHIP,
    VILLAGE,
    VILLAGE_2,
    cmd,
    exit_nomination,
    exit_procedure,
    inclusion_path,
    measure,
    register,
    run,
)
from tests.domain.support import refusal
from tests.problems import PARTIES, assign, raise_

#: one cadre with the rights of every level (a township cadre seconded to the county, say)
ALL_LEVELS_VILLAGE = dict(VILLAGE, id="x-cadre")
ALL_LEVELS_TOWNSHIP = dict(TOWNSHIP, id="x-cadre")
ALL_LEVELS_COUNTY = dict(COUNTY, id="x-cadre")


def to_township_review(app, hid: str, verifier: dict = VILLAGE) -> list:
    path = inclusion_path(hid)
    path[2] = cmd("verify_lead", path[2].on, verifier, household_id=hid, lead_id=f"{hid}-L1", finding="meets")
    run(app, [register(hid), *path[:6]])
    return path


def test_the_home_visit_verifier_may_not_review_for_the_township_in_an_inclusion(app):
    path = to_township_review(app, "H1", ALL_LEVELS_VILLAGE)
    review = cmd("review_township", path[6].on, ALL_LEVELS_TOWNSHIP, household_id="H1", decision="pass")
    code, _ = refusal(app.handle(review))
    assert code == "not_authorised"
    assert app.handle(path[6]).ok  # another township cadre reviews


def test_the_township_reviewer_may_not_approve_for_the_county_in_an_inclusion(app):
    path = to_township_review(app, "H1")
    run(app, [cmd("review_township", path[6].on, ALL_LEVELS_TOWNSHIP, household_id="H1", decision="pass")])
    approval = path[7].model_copy(update={"actor": path[7].actor.model_copy(update={"id": "x-cadre"})})
    outcome = app.handle(approval)
    assert refusal(outcome)[0] == "not_authorised" and "乡级审核" in outcome.error.message
    assert app.handle(path[7]).ok


def test_the_township_reviewer_may_not_decide_for_the_county_in_an_exit(app):
    run(app, [register("H1", on=date(2022, 3, 1)), *inclusion_path("H1", start=date(2022, 3, 2)),
              *measure("H1", "M1", date(2022, 3, 13), date(2022, 3, 13)),
              *exit_nomination("H1", date(2022, 10, 10))])
    steps = exit_procedure("H1", date(2022, 10, 10), verifier=VILLAGE_2)
    run(app, steps[:3])
    run(app, [cmd("review_township", steps[3].on, ALL_LEVELS_TOWNSHIP, household_id="H1", decision="pass")])
    same = cmd("approve_county", steps[4].on, ALL_LEVELS_COUNTY, household_id="H1", decision="approve")
    assert refusal(app.handle(same))[0] == "not_authorised"
    assert app.handle(steps[4]).ok


def test_the_exit_verifier_may_not_review_for_the_township(app):
    run(app, [register("H1", on=date(2022, 3, 1)), *inclusion_path("H1", start=date(2022, 3, 2)),
              *measure("H1", "M1", date(2022, 3, 13), date(2022, 3, 13)),
              *exit_nomination("H1", date(2022, 10, 10))])
    steps = exit_procedure("H1", date(2022, 10, 10), verifier=ALL_LEVELS_VILLAGE)
    run(app, steps[:3])
    review = cmd("review_township", steps[3].on, ALL_LEVELS_TOWNSHIP, household_id="H1", decision="pass")
    assert refusal(app.handle(review))[0] == "not_authorised"


@pytest.mark.parametrize(("n", "accepted"), [(5, True), (6, False)])
def test_a_county_approval_names_at_most_five_risk_types(app, n, accepted):
    risks = ["illness", "disability", "schooling", "disaster", "accident", "housing"][:n]
    path = inclusion_path("H1", risk_types=("illness",))
    run(app, [register("H1"), *path[:7]])
    approval = cmd("approve_county", path[7].on, household_id="H1", decision="approve", category="marginal",
                   risk_types=risks)
    outcome = app.handle(approval)
    assert outcome.ok if accepted else refusal(outcome) == ("policy_violation", "too_many_risk_types")


def test_a_lead_may_not_take_a_monitored_household_over_five_risk_types(app):
    run(app, [register("H1"), *inclusion_path("H1", risk_types=("illness", "disability", "schooling", "disaster"))])
    fifth = cmd("record_lead", date(2023, 4, 1), household_id="H1", lead_id="L5", source="cadre_screening",
                risk_types=["accident"], detail="意外")
    assert app.handle(fifth).ok
    sixth = cmd("record_lead", date(2023, 4, 2), household_id="H1", lead_id="L6", source="cadre_screening",
                risk_types=["housing"], detail="危房")
    assert refusal(app.handle(sixth)) == ("policy_violation", "too_many_risk_types")


def test_a_division_outside_the_policys_province_is_refused_at_registration(app):
    beijing = {"id": "bj-1", "name": "北京村干部", "role": "village", "unit": "110101001001"}
    guizhou = register("B1")
    outcome = app.handle(guizhou.model_copy(update={"division_code": "110101001001",
                                                    "actor": guizhou.actor.model_copy(update=beijing)}))
    assert refusal(outcome) == ("policy_violation", "division_outside_province")
    assert "52" in outcome.error.message
    assert app.handle(register("G1")).ok  # a Guizhou village


def test_double_responsibility_names_two_different_units(app):
    run(app, [raise_()])
    same_unit = dict(PARTIES["supervisor"], unit=PARTIES["responsible"]["unit"])
    outcome = app.handle(assign(supervisor=same_unit))
    assert refusal(outcome) == ("policy_violation", "double_responsibility_units")
    assert app.handle(assign()).ok
