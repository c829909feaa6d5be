"""双责任、双销号、双问责: the rules of the rectification mechanism, on the problem aggregate."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casecore.application import CaseManagement
from casecore.problem import RECTIFICATION, overdue_days
from tests.builders import COUNTY_UNIT, cmd, run
from tests.problems import (
    COUNTY_LEAD,
    INSPECTOR,
    OTHER_COUNTY,
    PARTIES,
    RESPONSIBLE,
    SUPERVISOR,
    WORKER,
    accountable,
    assign,
    closed_path,
    raise_,
    rectify,
    reject,
    reopen,
    report,
    sign,
)


def refused(app, command):
    before = app.get_problem(command.problem_id).version if _exists(app, command.problem_id) else None
    outcome = app.handle(command)
    assert not outcome.ok, f"{command.command} was accepted"
    if before is not None:
        assert app.get_problem(command.problem_id).version == before, "a refused command changed the problem"
    return outcome.error


def _exists(app, pid):
    try:
        app.get_problem(pid)
        return True
    except Exception:
        return False


def reported_problem(app, pid="P1"):
    run(app, [raise_(pid), assign(pid), rectify(pid), report(pid)])


# --- double responsibility ------------------------------------------------------------------------


def test_assigning_responsibility_names_both_parties_and_the_deadline(memory_app):
    run(memory_app, [raise_(), assign(deadline=date(2022, 5, 31))])
    p = memory_app.get_problem("P1")
    assert p.status == "assigned"
    assert p.responsible == PARTIES["responsible"]
    assert p.supervisor == PARTIES["supervisor"]
    assert p.deadline == date(2022, 5, 31)


def test_the_responsible_and_the_supervising_party_must_be_two_different_people(memory_app):
    run(memory_app, [raise_()])
    same = {"unit": COUNTY_UNIT, "person": RESPONSIBLE["id"]}
    err = refused(memory_app, assign(supervisor=same))
    assert err.code == "not_authorised"
    assert "四眼" in err.message
    assert memory_app.get_problem("P1").status == "raised"


def test_a_deadline_before_the_assignment_is_refused(memory_app):
    run(memory_app, [raise_()])
    err = refused(memory_app, assign(on=date(2022, 4, 11), deadline=date(2022, 4, 10)))
    assert err.code == "validation_error"


def test_nothing_but_the_double_responsibility_can_follow_a_raised_problem(memory_app):
    run(memory_app, [raise_()])
    err = refused(memory_app, rectify())
    assert err.code == "invalid_transition"
    assert "assign_responsibility" in err.message


# --- double sign-off ------------------------------------------------------------------------------


def test_a_problem_closes_only_after_the_responsible_party_and_then_the_supervisor_sign_off(memory_app):
    reported_problem(memory_app)
    run(memory_app, [sign(party="responsible", on=date(2022, 4, 26))])
    p = memory_app.get_problem("P1")
    assert (p.status, p.closed_on) == ("responsible_signed", None)
    run(memory_app, [sign(party="supervisor", on=date(2022, 4, 28))])
    p = memory_app.get_problem("P1")
    assert (p.status, p.closed_on) == ("closed", date(2022, 4, 28))
    assert p.signatures["responsible"]["by"] == RESPONSIBLE["id"]
    assert p.signatures["supervisor"]["by"] == SUPERVISOR["id"]


def test_the_supervisor_cannot_sign_off_before_the_responsible_party(memory_app):
    reported_problem(memory_app)
    err = refused(memory_app, sign(party="supervisor"))
    assert err.code == "invalid_transition"
    assert "责任方尚未销号" in err.message


def test_a_problem_cannot_be_signed_off_before_it_is_reported_rectified(memory_app):
    run(memory_app, [raise_(), assign(), rectify()])
    assert refused(memory_app, sign(party="responsible")).code == "invalid_transition"


def test_the_responsible_person_cannot_sign_off_again_as_the_supervisor(memory_app):
    reported_problem(memory_app)
    run(memory_app, [sign(party="responsible")])
    err = refused(memory_app, sign(party="supervisor", actor=RESPONSIBLE | {"role": "county"}))
    assert err.code == "not_authorised"
    assert "四眼" in err.message


def test_a_sign_off_by_anyone_but_the_named_person_of_that_party_is_not_authorised(memory_app):
    reported_problem(memory_app)
    err = refused(memory_app, sign(party="responsible", actor=WORKER))
    assert err.code == "not_authorised"
    assert RESPONSIBLE["id"] in err.message
    run(memory_app, [sign(party="responsible")])
    err = refused(memory_app, sign(party="supervisor", actor=OTHER_COUNTY))
    assert err.code == "not_authorised"
    assert SUPERVISOR["id"] in err.message


def test_the_named_person_is_matched_on_the_actor_id_not_the_name(memory_app):
    reported_problem(memory_app)
    namesake = dict(WORKER, name=RESPONSIBLE["name"])
    assert refused(memory_app, sign(party="responsible", actor=namesake)).code == "not_authorised"
    renamed = dict(RESPONSIBLE, name="改名后的责任人")
    run(memory_app, [sign(party="responsible", actor=renamed)])
    assert memory_app.get_problem("P1").status == "responsible_signed"


def test_a_sign_off_dated_before_the_report_is_refused(memory_app):
    reported_problem(memory_app)
    err = refused(memory_app, sign(party="responsible", on=date(2022, 4, 24)))
    assert (err.code, err.rule) == ("policy_violation", "step_date_order")


# --- reject and redo --------------------------------------------------------------------------------


def test_a_rejected_sign_off_sends_the_problem_back_to_rectification_with_the_reason(memory_app):
    reported_problem(memory_app)
    run(memory_app, [sign(party="responsible"), reject(party="supervisor", reason="佐证材料不全")])
    p = memory_app.get_problem("P1")
    assert p.status == "in_rectification"
    assert p.signatures == {}
    assert p.rejections[-1]["reason"] == "佐证材料不全"
    assert p.rejections[-1]["party"] == "supervisor"


def test_after_a_rejection_the_problem_must_be_rectified_again_before_it_is_reported(memory_app):
    reported_problem(memory_app)
    run(memory_app, [reject(party="responsible", on=date(2022, 4, 26))])
    err = refused(memory_app, report(on=date(2022, 4, 27)))
    assert (err.code, err.rule) == ("policy_violation", "rectification_action_required")
    run(memory_app, [rectify(on=date(2022, 4, 28), action="补充落实就业帮扶"), report(on=date(2022, 4, 29)),
              sign(party="responsible", on=date(2022, 4, 30)), sign(party="supervisor", on=date(2022, 5, 2))])
    p = memory_app.get_problem("P1")
    assert p.status == "closed"
    assert [a["action"] for a in p.actions] == ["落实产业帮扶措施", "补充落实就业帮扶"]


def test_a_rejection_by_someone_other_than_the_named_person_is_not_authorised(memory_app):
    reported_problem(memory_app)
    run(memory_app, [sign(party="responsible")])
    assert refused(memory_app, reject(party="supervisor", actor=OTHER_COUNTY)).code == "not_authorised"


def test_a_party_can_only_reject_at_its_own_turn(memory_app):
    reported_problem(memory_app)
    assert refused(memory_app, reject(party="supervisor")).code == "invalid_transition"
    run(memory_app, [sign(party="responsible")])
    assert refused(memory_app, reject(party="responsible")).code == "invalid_transition"


# --- overdue and double accountability -------------------------------------------------------------


def test_a_problem_not_closed_by_its_deadline_is_overdue_from_the_day_after(memory_app):
    run(memory_app, [raise_(), assign(deadline=date(2022, 5, 31)), rectify()])
    p = memory_app.get_problem("P1")
    assert p.overdue_days(date(2022, 5, 31)) == 0
    assert p.overdue_days(date(2022, 6, 1)) == 1
    assert p.overdue_days(date(2022, 6, 30)) == 30


def test_a_problem_closed_on_its_deadline_is_never_overdue_after_it(memory_app):
    start = date(2022, 4, 10)
    run(memory_app, [*closed_path(start=start)[:-1], sign(party="supervisor", on=start + timedelta(days=50))])
    p = memory_app.get_problem("P1")
    assert p.closed_on == p.deadline
    assert not p.is_overdue(date(2022, 12, 31))


def test_overdue_as_of_a_date_before_the_closing_counts_the_days_it_was_late():
    deadline, closed = date(2022, 5, 31), date(2022, 6, 10)
    assert overdue_days(deadline, closed, date(2022, 6, 5)) == 5
    assert overdue_days(deadline, closed, date(2022, 6, 10)) == 0
    assert overdue_days(None, None, date(2022, 6, 10)) == 0


def test_accountability_against_both_parties_names_each_of_them(memory_app):
    run(memory_app, [raise_(), assign(deadline=date(2022, 5, 31)), rectify(),
              accountable(party="both", on=date(2022, 6, 15), reason="整改超期未销号")])
    record = memory_app.get_problem("P1").accountability[-1]
    assert record["party"] == "both"
    assert {(x["party"], x["person"]) for x in record["parties"]} == {
        ("responsible", RESPONSIBLE["id"]), ("supervisor", SUPERVISOR["id"])}
    assert record["overdue_days"] == 15


@pytest.mark.parametrize("party", ["responsible", "supervisor"])
def test_accountability_can_be_recorded_against_one_party(memory_app, party):
    run(memory_app, [raise_(), assign(), accountable(party=party, on=date(2022, 4, 12))])
    record = memory_app.get_problem("P1").accountability[-1]
    assert [x["party"] for x in record["parties"]] == [party]
    assert record["overdue_days"] == 0
    assert memory_app.get_problem("P1").status == "assigned"


def test_no_one_can_be_held_accountable_before_responsibility_is_assigned(memory_app):
    run(memory_app, [raise_()])
    assert refused(memory_app, accountable(on=date(2022, 4, 12))).code == "invalid_transition"


def test_only_the_county_inspectors_and_auditors_hold_parties_accountable(memory_app):
    run(memory_app, [raise_(), assign()])
    assert refused(memory_app, accountable(on=date(2022, 4, 12), actor=WORKER)).code == "not_authorised"


# --- reopen: a closed problem found false ----------------------------------------------------------


def test_a_closed_problem_reopened_by_a_new_finding_counts_against_both_parties(memory_app):
    run(memory_app, closed_path())
    run(memory_app, [reopen(on=date(2022, 7, 10), deadline=date(2022, 8, 10), finding_key="helped_not:H1:2")])
    p = memory_app.get_problem("P1")
    assert p.status == "in_rectification"
    assert p.closed_on is None and p.signatures == {}
    assert p.deadline == date(2022, 8, 10)
    record = p.accountability[-1]
    assert record["party"] == "both"
    assert {x["party"] for x in record["parties"]} == {"responsible", "supervisor"}
    assert p.reopenings[-1]["closed_on"] == date(2022, 4, 28)


def test_a_reopened_problem_needs_new_rectification_and_both_sign_offs_again(memory_app):
    run(memory_app, [*closed_path(), reopen(on=date(2022, 7, 10))])
    assert refused(memory_app, report(on=date(2022, 7, 11))).rule == "rectification_action_required"
    run(memory_app, [rectify(on=date(2022, 7, 12)), report(on=date(2022, 7, 13))])
    assert refused(memory_app, sign(party="supervisor", on=date(2022, 7, 14))).code == "invalid_transition"
    run(memory_app, [sign(party="responsible", on=date(2022, 7, 14)), sign(party="supervisor", on=date(2022, 7, 15))])
    assert memory_app.get_problem("P1").status == "closed"


def test_only_a_closed_problem_can_be_reopened(memory_app):
    reported_problem(memory_app)
    assert refused(memory_app, reopen(on=date(2022, 5, 1))).code == "invalid_transition"


# --- who may act ------------------------------------------------------------------------------------


def test_a_county_outside_the_problems_area_cannot_raise_it(memory_app):
    stranger = dict(INSPECTOR, unit="522632000000")
    outcome = memory_app.handle(raise_(actor=stranger))
    assert not outcome.ok and outcome.error.code == "not_authorised"


def test_a_village_cadre_cannot_assign_responsibility(memory_app):
    run(memory_app, [raise_()])
    village = {"id": "v-1", "role": "village", "unit": "522631101001"}
    bad = cmd("assign_responsibility", "2022-04-11", village, problem_id="P1", responsible=PARTIES["responsible"],
              supervisor=PARTIES["supervisor"], deadline="2022-05-31")
    assert refused(memory_app, bad).code == "not_authorised"


def test_raising_the_same_problem_twice_is_refused_and_changes_nothing(memory_app):
    run(memory_app, [raise_()])
    outcome = memory_app.handle(raise_())
    assert not outcome.ok and outcome.error.code == "invalid_transition"
    assert memory_app.get_problem("P1").version == 1


def test_the_same_command_id_applied_twice_changes_nothing_the_second_time(memory_app):
    run(memory_app, [raise_(), assign()])
    first = rectify()
    first = first.model_copy(update={"command_id": "k-1"})
    assert memory_app.handle(first).events == ["rectification_recorded"]
    again = memory_app.handle(first)
    assert again.ok and again.duplicate
    assert len(memory_app.get_problem("P1").actions) == 1


# --- the machine as a whole (hypothesis) ------------------------------------------------------------

STEPS = st.sampled_from(["rectify", "report", "sign_r", "sign_s", "reject_r", "reject_s", "sign_s_by_r",
                         "sign_r_by_worker", "accountable", "reopen"])


def _step_command(name: str, on: date):
    return {
        "rectify": lambda: rectify(on=on),
        "report": lambda: report(on=on),
        "sign_r": lambda: sign(party="responsible", on=on),
        "sign_s": lambda: sign(party="supervisor", on=on),
        "reject_r": lambda: reject(party="responsible", on=on),
        "reject_s": lambda: reject(party="supervisor", on=on),
        "sign_s_by_r": lambda: sign(party="supervisor", on=on, actor=RESPONSIBLE | {"role": "county"}),
        "sign_r_by_worker": lambda: sign(party="responsible", on=on, actor=WORKER),
        "accountable": lambda: accountable(on=on, actor=COUNTY_LEAD),
        "reopen": lambda: reopen(on=on, deadline=on + timedelta(days=30)),
    }[name]()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(STEPS, max_size=25))
def test_whatever_is_tried_a_closed_problem_always_carries_two_sign_offs_by_its_two_named_people(steps):
    app = CaseManagement()
    run(app, [raise_(), assign()])
    on = date(2022, 4, 12)
    for name in steps:
        before = app.get_problem("P1")
        outcome = app.handle(_step_command(name, on))
        after = app.get_problem("P1")
        if not outcome.ok:
            assert after.version == before.version
        else:
            assert name not in ("sign_s_by_r", "sign_r_by_worker"), "a sign-off by the wrong person was accepted"
            assert RECTIFICATION.step(before.status, _trigger(name)) is not None
        if after.status == "closed":
            sig = after.signatures
            assert sig["responsible"]["by"] == after.responsible["person"]
            assert sig["supervisor"]["by"] == after.supervisor["person"]
            assert sig["responsible"]["by"] != sig["supervisor"]["by"]
            assert sig["responsible"]["on"] <= sig["supervisor"]["on"] == after.closed_on
            assert len(after.actions) > 0
        on += timedelta(days=1)
    app.close()


def _trigger(name: str) -> str:
    return {"rectify": "record_rectification", "report": "report_rectified", "sign_r": "sign_off_responsible",
            "sign_s": "sign_off_supervisor", "reject_r": "reject_sign_off_responsible",
            "reject_s": "reject_sign_off_supervisor", "accountable": "hold_accountable",
            "reopen": "reopen_problem"}[name]

