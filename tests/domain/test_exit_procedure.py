"""The exit procedure end to end on the real stores (SQLite and PostgreSQL): nomination to mark, the shared
notice / review / approval steps, four-eyes, rollback and re-inclusion after elimination."""

from __future__ import annotations

from datetime import date, timedelta

from casecore.household import public_state
from casecore.values import Stage
from tests.builders import (
    COUNTY,
    cmd,
    exit_nomination,
    exit_path,
    exit_procedure,
    inclusion_path,
    measure,
    register,
    run,
)

NOMINATED = date(2023, 10, 9)


def assisted(app, hid: str = "H1") -> None:
    """Monitored from 2023-03-13, a health measure implemented 2023-04-01, nominated on 2023-10-09."""
    run(app, [register(hid), *inclusion_path(hid), *measure(hid, f"{hid}-M1", date(2023, 3, 20), date(2023, 4, 1)),
              *exit_nomination(hid, NOMINATED)])


def stage_of(app, hid: str = "H1") -> tuple[str, str | None, str | None]:
    h = app.get_household(hid)
    return h.stage, h.procedure, h.step


def test_a_household_goes_through_the_whole_exit_procedure_and_its_risk_is_eliminated(app):
    assisted(app)
    assert stage_of(app) == (Stage.IN_EXIT, "exit", "nominated")
    steps = exit_procedure("H1", NOMINATED)
    seen = []
    for step in steps:
        run(app, [step])
        seen.append(stage_of(app))
    assert seen == [
        (Stage.IN_EXIT, "exit", "verified"),
        (Stage.IN_EXIT, "exit", "in_publicity"),
        (Stage.IN_EXIT, "exit", "publicity_closed"),
        (Stage.IN_EXIT, "exit", "township_passed"),
        (Stage.IN_EXIT, "exit", "county_approved"),
        (Stage.IN_EXIT, "exit", "county_approved"),  # the fresh assessments do not move the case
        (Stage.IN_EXIT, "exit", "county_approved"),
        (Stage.RISK_ELIMINATED, None, None),
    ]
    state = public_state(app.get_household("H1"))
    assert (state["eliminated_on"], state["exit_mode"], state["exit_nominated_on"]) == (
        NOMINATED + timedelta(days=11), "assisted", NOMINATED)
    assert state["measures"][0]["status"] == "implemented"  # measures stay on record


def test_a_home_visit_that_finds_the_risk_not_gone_ends_the_exit_and_the_household_stays_monitored(app):
    assisted(app)
    run(app, [cmd("verify_exit", NOMINATED + timedelta(days=1), household_id="H1", finding="not_meets")])
    assert stage_of(app) == (Stage.MONITORED, None, None)
    # and it can be nominated again later
    run(app, exit_nomination("H1", date(2023, 12, 1)))
    assert stage_of(app) == (Stage.IN_EXIT, "exit", "nominated")


def test_the_exit_notice_cannot_close_before_five_days_nor_with_an_objection_open(app):
    assisted(app)
    d = NOMINATED
    run(app, [cmd("verify_exit", d + timedelta(days=1), household_id="H1", finding="meets"),
              cmd("open_publicity", d + timedelta(days=2), household_id="H1"),
              cmd("raise_objection", d + timedelta(days=3), household_id="H1", objection_id="O1",
                  detail="收入来源不稳定")])
    early = app.handle(cmd("close_publicity", d + timedelta(days=6), household_id="H1"))
    assert (early.error.code, early.error.rule) == ("policy_violation", "publicity_min_days")
    pending = app.handle(cmd("close_publicity", d + timedelta(days=7), household_id="H1"))
    assert (pending.error.code, pending.error.rule) == ("policy_violation", "objections_unresolved")
    run(app, [cmd("resolve_objection", d + timedelta(days=4), household_id="H1", objection_id="O1",
                  outcome="dismissed"),
              cmd("close_publicity", d + timedelta(days=7), household_id="H1")])
    assert stage_of(app) == (Stage.IN_EXIT, "exit", "publicity_closed")


def test_the_cadre_who_verified_the_exit_cannot_also_approve_it_for_the_county(app):
    assisted(app)
    both_hats = {**COUNTY, "id": "same-person"}
    verifier = {"id": "same-person", "role": "township", "unit": "522631101000"}
    steps = exit_procedure("H1", NOMINATED, verifier=verifier)
    run(app, steps[:4])
    approval = cmd("approve_county", NOMINATED + timedelta(days=9), both_hats, household_id="H1", decision="approve")
    outcome = app.handle(approval)
    assert outcome.error.code == "not_authorised"
    assert "四眼" in outcome.error.message
    run(app, [steps[4]])  # another county officer approves
    assert stage_of(app)[2] == "county_approved"


def test_inclusion_only_steps_are_refused_inside_the_exit_procedure_and_say_what_comes_next(app):
    assisted(app)
    wrong = app.handle(cmd("sign_application", NOMINATED + timedelta(days=1), household_id="H1"))
    assert wrong.error.code == "invalid_transition"
    assert "风险消除入户核实" in wrong.error.message
    assert app.handle(cmd("enter_system", NOMINATED + timedelta(days=1), household_id="H1")).error.code == \
        "invalid_transition"


def test_township_and_county_returns_send_the_exit_back_one_stage(app):
    assisted(app)
    steps = exit_procedure("H1", NOMINATED)
    run(app, steps[:3])
    run(app, [cmd("review_township", NOMINATED + timedelta(days=8), household_id="H1", decision="return")])
    assert stage_of(app) == (Stage.IN_EXIT, "exit", "verified")
    run(app, [cmd("open_publicity", NOMINATED + timedelta(days=9), household_id="H1"),
              cmd("close_publicity", NOMINATED + timedelta(days=14), household_id="H1"),
              cmd("review_township", NOMINATED + timedelta(days=15), household_id="H1", decision="pass"),
              cmd("approve_county", NOMINATED + timedelta(days=16), household_id="H1", decision="reject")])
    assert stage_of(app) == (Stage.MONITORED, None, None)


def test_rollback_returns_an_eliminated_household_to_monitoring_with_its_reason(app):
    assisted(app)
    run(app, exit_procedure("H1", NOMINATED))
    eliminated_on = app.get_household("H1").eliminated_on
    early = app.handle(cmd("rollback_elimination", eliminated_on - timedelta(days=1), household_id="H1",
                           reason="核查发现整户无劳动力"))
    assert (early.error.code, early.error.rule) == ("policy_violation", "step_date_order")
    run(app, [cmd("rollback_elimination", date(2023, 11, 15), household_id="H1", reason="核查发现整户无劳动力")])
    h = app.get_household("H1")
    assert (h.stage, h.eliminated_on, h.rolled_back_on, h.included_on) == (
        Stage.MONITORED, None, date(2023, 11, 15), date(2023, 3, 13))
    again = app.handle(cmd("rollback_elimination", date(2023, 11, 16), household_id="H1", reason="重复"))
    assert again.error.code == "invalid_transition"


def test_a_village_cadre_cannot_roll_back_an_elimination(app):
    assisted(app)
    run(app, exit_procedure("H1", NOMINATED))
    village = cmd("rollback_elimination", date(2023, 11, 15), {"id": "v", "role": "village", "unit": "522631101001"},
                  household_id="H1", reason="x")
    assert app.handle(village).error.code == "not_authorised"


def test_a_new_lead_on_an_eliminated_household_starts_a_second_cycle_and_keeps_the_first(app):
    assisted(app)
    run(app, exit_procedure("H1", NOMINATED))
    first = public_state(app.get_household("H1"))
    start = date(2024, 2, 5)
    second = [c for c in inclusion_path("H1", start=start, risk_types=("accident",))
              if not (c.command == "record_lead")]
    run(app, [cmd("record_lead", start, household_id="H1", lead_id="H1-L2", source="self_declaration",
                  risk_types=["accident"], detail="意外事故")])
    h = app.get_household("H1")
    assert (h.stage, h.procedure, h.cycle, h.stage_before_procedure) == (
        Stage.IN_INCLUSION, "inclusion", 2, Stage.RISK_ELIMINATED)
    run(app, [c.model_copy(update={"lead_id": "H1-L2"}) if c.command == "verify_lead" else c for c in second])
    h = app.get_household("H1")
    assert (h.stage, h.included_on, h.eliminated_on, h.exit_mode, h.risk_types) == (
        Stage.MONITORED, start + timedelta(days=11), None, None, ["accident"])
    assert {lead["lead_id"]: lead["cycle"] for lead in h.leads.values()} == {"H1-L1": 1, "H1-L2": 2}
    assert h.measures["H1-M1"] == first["measures"][0]  # the first cycle's measure is still on record
    assert len(h.incomes) > len(first["income_assessments"])

    # the first cycle's measure does not count for the second cycle's assisted exit
    refusal = app.handle(exit_nomination("H1", date(2024, 9, 2))[2])
    assert (refusal.error.code, refusal.error.rule) == ("policy_violation", "min_assistance_months")
    run(app, measure("H1", "H1-M2", date(2024, 2, 20), date(2024, 3, 1), measure_type="health",
                     addresses=("accident",)))
    assert app.get_household("H1").measures["H1-M2"]["cycle"] == 2
    run(app, exit_path("H1", date(2024, 9, 2)))
    assert app.get_household("H1").stage == Stage.RISK_ELIMINATED


def test_a_lead_that_does_not_lead_to_inclusion_leaves_an_eliminated_household_eliminated(app):
    assisted(app)
    run(app, exit_procedure("H1", NOMINATED))
    run(app, [cmd("record_lead", date(2024, 1, 5), household_id="H1", lead_id="L2", source="department_warning",
                  risk_types=["illness"], detail="住院自付"),
              cmd("verify_lead", date(2024, 1, 6), household_id="H1", lead_id="L2", finding="not_meets")])
    h = app.get_household("H1")
    assert (h.stage, h.procedure, h.cycle) == (Stage.RISK_ELIMINATED, None, 2)


def test_the_household_reloaded_from_the_store_equals_the_one_that_decided(app):
    assisted(app)
    live = app.get_household("H1")
    for command in [*exit_procedure("H1", NOMINATED),
                    cmd("rollback_elimination", date(2023, 11, 15), household_id="H1", reason="整户无劳动力")]:
        getattr(live, command.command)(command, app.policies)
        app.save(live)
    reloaded = app.get_household("H1")
    assert reloaded is not live
    assert public_state(reloaded) == public_state(live)
    types = [type(e).TYPE for e in app.repository.event_store.get("household/H1")]
    assert types[-10:] == ["exit_nominated", "exit_verified", "publicity_opened", "publicity_closed",
                           "township_reviewed", "county_decided", "income_assessed", "guarantees_assessed",
                           "risk_eliminated", "elimination_rolled_back"]
