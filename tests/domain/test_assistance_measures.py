"""Assistance (帮扶): responsible cadre and measures on a monitored household."""

from __future__ import annotations

from datetime import date

from casecore.policy import PolicyBook, default_policies
from casecore.values import Stage
from tests.builders import VILLAGE_CODE, cmd, exit_path, inclusion_path, measure, register, run

INCLUDED_ON = date(2023, 3, 13)  # inclusion_path() from 2023-03-02 enters the household on this day
CADRE = {"id": "cadre-7", "name": "王帮扶", "unit": VILLAGE_CODE}


def monitored(app, hid: str = "H1") -> None:
    run(app, [register(hid), *inclusion_path(hid)])
    assert app.get_household(hid).included_on == INCLUDED_ON


def refused(app, command):
    outcome = app.handle(command)
    assert not outcome.ok, f"{command.command} was accepted"
    return outcome.error


def test_a_measure_whose_category_fits_none_of_its_risks_is_refused_with_the_fit_rule(memory_app):
    monitored(memory_app)
    err = refused(memory_app, measure("H1", "M1", date(2023, 3, 20), measure_type="health", addresses=("housing",))[0])
    assert (err.code, err.rule) == ("policy_violation", "measure_does_not_fit")
    assert "住房安全保障" in err.message  # says which measures would fit
    assert memory_app.get_household("H1").measures == {}


def test_a_measure_that_fits_one_of_the_risks_it_addresses_is_planned(memory_app):
    monitored(memory_app)
    run(memory_app, measure("H1", "M1", date(2023, 3, 20), measure_type="relocation", addresses=("illness", "housing")))
    m = memory_app.get_household("H1").measures["M1"]
    assert (m["status"], m["measure_type"], m["addresses"], m["cycle"]) == (
        "planned", "relocation", ["illness", "housing"], 1)


def test_the_fit_table_is_policy_data_so_a_policy_that_allows_the_pair_accepts_the_measure(memory_app):
    monitored(memory_app)
    command = measure("H1", "M1", date(2023, 3, 20), measure_type="health", addresses=("housing",))[0]
    widened = [p.model_copy(update={"fit": {**p.fit, "housing": (*p.fit["housing"], "health")}})
               for p in default_policies().policies]
    memory_app.policies = PolicyBook(widened)
    assert memory_app.handle(command).ok


def test_measures_are_refused_for_a_household_that_is_not_monitored(memory_app):
    run(memory_app, [register()])
    err = refused(memory_app, measure("H1", "M1", date(2023, 3, 20))[0])
    assert err.code == "invalid_transition"
    assert "未纳入监测" in err.message


def test_measures_cannot_be_planned_or_implemented_after_the_risk_is_eliminated_but_can_be_ended(memory_app):
    monitored(memory_app)
    run(memory_app, [*measure("H1", "M1", date(2023, 3, 20), date(2023, 4, 1)),
              *measure("H1", "M2", date(2023, 3, 20)),
              *exit_path("H1", date(2023, 10, 1))])
    assert memory_app.get_household("H1").stage == Stage.RISK_ELIMINATED
    assert refused(memory_app, measure("H1", "M3", date(2023, 11, 1))[0]).code == "invalid_transition"
    assert refused(memory_app, cmd("implement_measure", date(2023, 11, 1), household_id="H1",
                            measure_id="M2")).code == "invalid_transition"
    run(memory_app, [cmd("end_measure", date(2023, 11, 1), household_id="H1", measure_id="M1")])
    assert memory_app.get_household("H1").measures["M1"]["status"] == "ended"


def test_a_measure_cannot_be_implemented_before_it_was_planned_nor_twice(memory_app):
    monitored(memory_app)
    run(memory_app, measure("H1", "M1", date(2023, 3, 20)))
    err = refused(memory_app, cmd("implement_measure", date(2023, 3, 19), household_id="H1", measure_id="M1"))
    assert (err.code, err.rule) == ("policy_violation", "step_date_order")
    run(memory_app, [cmd("implement_measure", date(2023, 3, 20), household_id="H1", measure_id="M1")])
    assert refused(memory_app, cmd("implement_measure", date(2023, 3, 21), household_id="H1",
                            measure_id="M1")).code == "invalid_transition"


def test_an_unknown_measure_is_not_found_and_a_measure_id_is_never_reused(memory_app):
    monitored(memory_app)
    assert refused(memory_app, cmd("end_measure", date(2023, 3, 20), household_id="H1", measure_id="nope")).code == \
        "not_found"
    run(memory_app, measure("H1", "M1", date(2023, 3, 20)))
    assert refused(memory_app, measure("H1", "M1", date(2023, 3, 21))[0]).code == "invalid_transition"


def test_ending_a_measure_records_its_end_and_keeps_its_implementation_date(memory_app):
    monitored(memory_app)
    run(memory_app, [*measure("H1", "M1", date(2023, 3, 20), date(2023, 4, 1)),
              cmd("end_measure", date(2023, 6, 30), household_id="H1", measure_id="M1")])
    m = memory_app.get_household("H1").measures["M1"]
    assert (m["implemented_on"], m["ended_on"], m["status"]) == (date(2023, 4, 1), date(2023, 6, 30), "ended")
    assert refused(memory_app, cmd("end_measure", date(2023, 7, 1), household_id="H1",
                            measure_id="M1")).code == "invalid_transition"


def test_only_measures_implemented_on_or_after_inclusion_count_as_targeted_assistance(memory_app):
    monitored(memory_app)
    # a department reports a measure it carried out the day before the household was entered into monitoring
    run(memory_app, [*measure("H1", "early", date(2023, 3, 12), date(2023, 3, 12)),
              *measure("H1", "on-day", date(2023, 3, 13), date(2023, 3, 13))])
    h = memory_app.get_household("H1")
    assert [m["measure_id"] for m in h.targeted_measures(date(2023, 12, 31))] == ["on-day"]
    assert h.targeted_measures(date(2023, 3, 12)) == []


def test_a_cadre_is_assigned_and_can_be_replaced_but_not_assigned_twice(memory_app):
    monitored(memory_app)
    run(memory_app, [cmd("assign_cadre", INCLUDED_ON, household_id="H1", cadre=CADRE)])
    assert memory_app.get_household("H1").cadre == {**CADRE, "assigned_on": INCLUDED_ON}
    assert refused(memory_app, cmd("assign_cadre", date(2023, 4, 1), household_id="H1", cadre=CADRE)).code == \
        "invalid_transition"
    other = {"id": "cadre-8", "name": "李帮扶", "unit": VILLAGE_CODE}
    run(memory_app, [cmd("assign_cadre", date(2023, 4, 1), household_id="H1", cadre=other)])
    assert memory_app.get_household("H1").cadre["id"] == "cadre-8"


def test_a_cadre_cannot_be_assigned_to_a_household_that_was_never_taken_up(memory_app):
    run(memory_app, [register()])
    assert refused(memory_app, cmd("assign_cadre", date(2023, 3, 5), household_id="H1", cadre=CADRE)).code == \
        "invalid_transition"


def test_a_department_may_plan_a_measure_but_not_assign_a_cadre(memory_app):
    monitored(memory_app)
    dept = {"id": "yibao-1", "role": "department", "unit": "县医保局"}
    assert memory_app.handle(cmd("plan_measure", date(2023, 3, 20), dept, household_id="H1", measure_id="M1",
                          measure_type="health", addresses=["illness"], department="县医保局",
                          responsible="张医生")).ok
    assert refused(memory_app, cmd("assign_cadre", date(2023, 3, 20), dept, household_id="H1", cadre=CADRE)).code == \
        "not_authorised"
