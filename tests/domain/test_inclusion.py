"""The inclusion procedure (识别程序): returns, rejections, several leads, leads on monitored households,
idempotent commands — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

from casecore.household import public_state
from casecore.values import Stage
from tests.builders import COUNTY, VILLAGE_2, cmd, exit_path, inclusion_path, income, measure, person, register, run
from tests.domain.support import refusal, stored

D = date(2023, 3, 2)


def lead(hid: str, lead_id: str, on: date, source: str = "cadre_screening", risks: tuple[str, ...] = ("illness",)):
    return cmd("record_lead", on, household_id=hid, lead_id=lead_id, source=source, risk_types=list(risks),
               detail="线索")


def test_a_clean_inclusion_makes_the_household_monitored_with_its_category_and_risks(app):
    run(app, [register("H1"), *inclusion_path("H1", start=D, risk_types=("illness", "schooling"))])
    s = public_state(app.get_household("H1"))
    assert s["stage"] == Stage.MONITORED
    assert (s["open_procedure"], s["procedure_step"]) == (None, None)
    assert s["category"] == "marginal"
    assert s["risk_types"] == ["illness", "schooling"]
    assert s["included_on"] == D + timedelta(days=11)
    assert [lead["lead_id"] for lead in s["leads"]] == ["H1-L1"]


def test_recording_a_lead_opens_the_inclusion_procedure(app):
    run(app, [register("H1"), lead("H1", "L1", D)])
    s = public_state(app.get_household("H1"))
    assert (s["stage"], s["open_procedure"], s["procedure_step"]) == ("in_inclusion", "inclusion", "lead_recorded")
    assert s["procedure_started_on"] == D
    assert s["cycle"] == 1


def test_a_township_return_sends_the_case_back_to_the_village_for_a_new_notice(app):
    path = inclusion_path("H1", start=D)
    run(app, [register("H1"), *path[:6]])  # notice closed on D+8
    run(app, [cmd("review_township", D + timedelta(days=9), household_id="H1", decision="return")])
    h = app.get_household("H1")
    assert (h.stage, h.step) == ("in_inclusion", "applied")
    # the township cannot review again until the village has held a new notice
    assert refusal(app.handle(cmd("review_township", D + timedelta(days=9), household_id="H1", decision="pass"))) \
        == ("invalid_transition", None)
    run(app, [cmd("open_publicity", D + timedelta(days=10), household_id="H1"),
              cmd("close_publicity", D + timedelta(days=15), household_id="H1"),
              cmd("review_township", D + timedelta(days=16), household_id="H1", decision="pass"),
              cmd("approve_county", D + timedelta(days=17), household_id="H1", decision="approve",
                  category="marginal", risk_types=["illness"]),
              cmd("enter_system", D + timedelta(days=18), household_id="H1")])
    assert app.get_household("H1").stage == Stage.MONITORED


def test_a_county_return_sends_the_case_back_to_the_township_review(app):
    path = inclusion_path("H1", start=D)
    run(app, [register("H1"), *path[:7]])  # township passed on D+9
    run(app, [cmd("approve_county", D + timedelta(days=10), household_id="H1", decision="return")])
    h = app.get_household("H1")
    assert (h.stage, h.step, h.category) == ("in_inclusion", "publicity_closed", None)
    run(app, [cmd("review_township", D + timedelta(days=11), household_id="H1", decision="pass"),
              cmd("approve_county", D + timedelta(days=12), household_id="H1", decision="approve",
                  category="marginal", risk_types=["illness"])])
    assert app.get_household("H1").step == "county_approved"


def _closed_then_new_lead(app, closing_steps):
    run(app, [register("H1"), *closing_steps])
    s = public_state(app.get_household("H1"))
    assert (s["stage"], s["open_procedure"], s["procedure_step"]) == ("not_monitored", None, None)
    assert s["category"] is None
    # nothing more of the closed procedure can be done
    assert refusal(app.handle(cmd("sign_application", D + timedelta(days=30), household_id="H1"))) \
        == ("invalid_transition", None)
    # a new lead starts a new procedure, which can end in inclusion
    later = date(2023, 6, 5)
    again = inclusion_path("H1", start=later)
    again[0] = lead("H1", "H1-L2", later)
    again[2] = cmd("verify_lead", later + timedelta(days=1), household_id="H1", lead_id="H1-L2", finding="meets")
    run(app, [again[0]])
    s = public_state(app.get_household("H1"))
    assert (s["stage"], s["procedure_step"], s["cycle"], s["procedure_started_on"]) == (
        "in_inclusion", "lead_recorded", 2, later)
    run(app, again[1:])
    assert app.get_household("H1").stage == Stage.MONITORED


def test_a_not_meets_visit_closes_the_procedure_and_a_new_lead_starts_again(app):
    path = inclusion_path("H1", start=D)
    visit = cmd("verify_lead", D + timedelta(days=1), household_id="H1", lead_id="H1-L1", finding="not_meets")
    _closed_then_new_lead(app, [path[0], visit])
    assert app.get_household("H1").leads["H1-L1"]["status"] == "not_meets"


def test_a_township_rejection_closes_the_procedure_and_a_new_lead_starts_again(app):
    path = inclusion_path("H1", start=D)
    _closed_then_new_lead(app, [*path[:6], cmd("review_township", D + timedelta(days=9), household_id="H1",
                                                decision="reject")])


def test_a_county_rejection_closes_the_procedure_and_a_new_lead_starts_again(app):
    path = inclusion_path("H1", start=D)
    _closed_then_new_lead(app, [*path[:7], cmd("approve_county", D + timedelta(days=10), household_id="H1",
                                                decision="reject")])


def test_a_household_may_have_several_leads_and_only_the_first_opens_the_procedure(app):
    path = inclusion_path("H1", start=D)
    run(app, [register("H1"), path[0], lead("H1", "H1-L2", D + timedelta(days=1), "department_warning"),
              lead("H1", "H1-L3", D + timedelta(days=2), "social_supervision", ("housing",))])
    h = app.get_household("H1")
    assert list(h.leads) == ["H1-L1", "H1-L2", "H1-L3"]
    assert (h.cycle, h.procedure_started_on, h.step) == (1, D, "lead_recorded")
    run(app, path[1:])
    leads = {lead["lead_id"]: lead["status"] for lead in public_state(app.get_household("H1"))["leads"]}
    assert leads == {"H1-L1": "meets", "H1-L2": "included", "H1-L3": "included"}


def test_a_lead_on_a_monitored_household_is_recorded_and_adds_its_new_risks(app):
    run(app, [register("H1"), *inclusion_path("H1", start=D, risk_types=("illness",))])
    version = app.get_household("H1").version
    run(app, [lead("H1", "H1-L2", D + timedelta(days=20), "department_warning", ("disaster", "illness", "housing"))])
    s = public_state(app.get_household("H1"))
    assert s["stage"] == Stage.MONITORED and s["open_procedure"] is None
    assert s["risk_types"] == ["illness", "disaster", "housing"]
    assert s["version"] == version + 1
    assert [(lead["lead_id"], lead["status"]) for lead in s["leads"]] == [("H1-L1", "meets"),
                                                                           ("H1-L2", "attached")]
    # it starts no second inclusion procedure
    assert refusal(app.handle(cmd("verify_lead", D + timedelta(days=21), household_id="H1", lead_id="H1-L2",
                                  finding="meets"))) == ("invalid_transition", None)


def test_a_household_whose_risk_was_eliminated_can_be_included_again(app):
    run(app, [register("H1"), *inclusion_path("H1", start=D)])
    run(app, measure("H1", "M1", D + timedelta(days=12), D + timedelta(days=13)))
    nominated = date(2023, 10, 9)
    run(app, exit_path("H1", nominated))
    assert app.get_household("H1").stage == Stage.RISK_ELIMINATED
    relapse = date(2024, 2, 5)
    run(app, [lead("H1", "H1-L2", relapse, "department_warning", ("accident",))])
    assert app.get_household("H1").stage == Stage.IN_INCLUSION
    # a rejection in the new procedure leaves it where it was before: risk eliminated
    run(app, [cmd("verify_lead", relapse + timedelta(days=1), VILLAGE_2, household_id="H1", lead_id="H1-L2",
                  finding="not_meets")])
    h = app.get_household("H1")
    assert (h.stage, h.procedure, h.cycle) == (Stage.RISK_ELIMINATED, None, 2)


def test_the_same_command_id_twice_changes_nothing_the_second_time(app):
    run(app, [register("H1")])
    first = cmd("record_lead", D, household_id="H1", lead_id="L1", source="self_declaration", command_id="cmd-42")
    assert app.handle(first).events == ["lead_recorded"]
    before = stored(app, "H1")
    again = app.handle(first)
    assert again.ok and again.events == [] and again.duplicate
    assert stored(app, "H1") == before
    # even with other content: the id names the act, and the act was done
    differently = cmd("record_lead", D, household_id="H1", lead_id="L9", source="self_declaration",
                      command_id="cmd-42")
    assert app.handle(differently).events == []
    assert stored(app, "H1") == before


def test_a_repeated_command_id_within_one_bulk_batch_is_applied_once(app):
    run(app, [register("H1")])
    step = cmd("record_lead", D, household_id="H1", lead_id="L1", source="self_declaration", command_id="same")
    outcomes = list(app.handle_many([step, step, step]))
    assert [o.events for o in outcomes] == [["lead_recorded"], [], []]
    assert len(stored(app, "H1")) == 2


def test_a_refused_command_with_an_id_can_be_retried_once_it_is_allowed(app):
    run(app, [register("H1"), *inclusion_path("H1", start=D)[:5]])
    close = cmd("close_publicity", D + timedelta(days=7), household_id="H1", command_id="close-1")
    assert refusal(app.handle(close)) == ("policy_violation", "publicity_min_days")
    close_later = cmd("close_publicity", D + timedelta(days=8), household_id="H1", command_id="close-1")
    assert app.handle(close_later).events == ["publicity_closed"]


def test_the_poverty_alleviated_household_is_included_as_unstable_alleviated(app):
    run(app, [register("H1", household_type="poverty_alleviated"),
              *inclusion_path("H1", start=D, category="unstable_alleviated")])
    assert app.get_household("H1").category == "unstable_alleviated"


def test_marginal_needs_a_general_household_and_unstable_alleviated_a_poverty_alleviated_one(app):
    for hid, kind, wrong in (("HP", "poverty_alleviated", "marginal"), ("HG", "general", "unstable_alleviated")):
        path = inclusion_path(hid, start=D, category=wrong)
        run(app, [register(hid, household_type=kind), *path[:7]])
        before = stored(app, hid)
        assert refusal(app.handle(path[7])) == ("policy_violation", "category_household_type")
        assert stored(app, hid) == before


def test_sudden_hardship_may_be_approved_above_the_line_for_either_household_type(app):
    for hid, kind in (("HP", "poverty_alleviated"), ("HG", "general")):
        run(app, [register(hid, household_type=kind),
                  *inclusion_path(hid, start=D, per_capita_income=12000, category="sudden_hardship",
                                  risk_types=("accident",))])
        assert app.get_household(hid).category == "sudden_hardship"


def test_marginal_above_the_line_is_refused_with_the_line_named(app):
    path = inclusion_path("H1", start=D, per_capita_income=12000)
    run(app, [register("H1"), *path[:7]])
    outcome = app.handle(path[7])
    assert refusal(outcome) == ("policy_violation", "income_below_line")
    assert "7300" in outcome.error.message


def test_the_category_and_risks_come_from_the_county_decision(app):
    path = inclusion_path("H1", start=D, risk_types=("illness",))
    path[7] = cmd("approve_county", D + timedelta(days=10), COUNTY, household_id="H1", decision="approve",
                  category="marginal", risk_types=["illness", "lack_of_labour"])
    run(app, [register("H1", members=[person(1, labour="none"), person(2, labour="none", relation="配偶")]), *path])
    s = public_state(app.get_household("H1"))
    assert s["risk_types"] == ["illness", "lack_of_labour"]
    assert s["has_labour"] is False


def test_an_income_assessment_can_be_made_before_the_lead(app):
    run(app, [register("H1"), income("H1", D - timedelta(days=1), 5000, procedure_on=D)])
    path = inclusion_path("H1", start=D)
    del path[1]  # no assessment during the procedure
    run(app, path)
    assert app.get_household("H1").stage == Stage.MONITORED


def test_a_county_return_or_rejection_leaves_no_category_or_risks_behind(app):
    path = inclusion_path("H1", start=D, risk_types=("illness",))
    run(app, [register("H1"), *path[:7]])
    for decision in ("return", "reject"):
        if decision == "reject":
            run(app, [cmd("review_township", D + timedelta(days=11), household_id="H1", decision="pass")])
        run(app, [cmd("approve_county", D + timedelta(days=11), household_id="H1", decision=decision,
                      category="marginal", risk_types=["disaster"])])
        h = app.get_household("H1")
        assert (h.category, h.risk_types) == (None, [])
