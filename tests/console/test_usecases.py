"""The use cases behind the console's forms: the next steps come from the workflow tables and the role rules,
and a posted form becomes a contract command."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adapters.usecases import OUTSIDE_PROCEDURE, command_from_form, legal_steps, step_forms
from casecore.authority import ROLES
from casecore.commands import parse_command
from casecore.household import legal_commands
from casecore.values import Role, Stage
from workflows.exit import Exit
from workflows.inclusion import Inclusion

PROCEDURE_STEPS = [("inclusion", s.value) for s in Inclusion] + [("exit", s.value) for s in Exit]


@given(st.sampled_from(PROCEDURE_STEPS), st.sampled_from(list(Role)))
def test_every_offered_step_is_legal_in_the_table_or_the_stage_and_allowed_for_the_role(where, role):
    procedure, step = where
    stage = Stage.IN_INCLUSION if procedure == "inclusion" else Stage.IN_EXIT
    offered = legal_steps({"open_procedure": procedure, "procedure_step": step, "stage": stage}, role)
    for name in offered:
        assert role in ROLES[name]
        assert name in legal_commands(procedure, step) or name in OUTSIDE_PROCEDURE[stage]


@given(st.sampled_from(PROCEDURE_STEPS))
def test_a_step_the_table_allows_is_offered_to_every_role_that_may_take_it(where):
    procedure, step = where
    stage = Stage.IN_INCLUSION if procedure == "inclusion" else Stage.IN_EXIT
    for name in legal_commands(procedure, step):
        for role in ROLES[name]:
            assert name in legal_steps({"open_procedure": procedure, "procedure_step": step, "stage": stage}, role)


def test_a_village_cadre_is_offered_the_notices_close_and_not_the_townships_review():
    state = {"open_procedure": "inclusion", "procedure_step": "in_publicity", "stage": "in_inclusion"}
    assert "close_publicity" in legal_steps(state, Role.VILLAGE)
    assert "review_township" not in legal_steps(state, Role.VILLAGE)
    after = {**state, "procedure_step": "publicity_closed"}
    assert legal_steps(after, Role.TOWNSHIP)[0] == "review_township"
    assert "review_township" not in legal_steps(after, Role.COUNTY)


def test_a_form_without_its_choices_is_not_offered():
    state = {"open_procedure": "inclusion", "procedure_step": "lead_recorded", "stage": "in_inclusion", "leads": []}
    assert "verify_lead" not in [f.command for f in step_forms(state, Role.VILLAGE)]
    state["leads"] = [{"lead_id": "L1", "status": "open", "on": "2024-01-02"}]
    assert "verify_lead" in [f.command for f in step_forms(state, Role.VILLAGE)]


def test_posted_forms_become_valid_contract_commands():
    actor = {"id": "v1", "role": "village", "unit": "522631101001"}
    lead = command_from_form("H1", "record_lead", {"lead_id": ["L1"], "source": ["self_declaration"],
                                                   "risk_types": ["illness", "disability"], "detail": [""]},
                             "2024-03-01")
    cmd = parse_command({**lead, "actor": actor})
    assert cmd.lead_id == "L1" and [r.value for r in cmd.risk_types] == ["illness", "disability"]
    cadre = command_from_form("H1", "assign_cadre", {"cadre.id": "c1", "cadre.name": "张三", "cadre.unit": "县局"},
                              "2024-03-01")
    assert parse_command({**cadre, "actor": actor}).cadre.name == "张三"
    approve = command_from_form("H1", "approve_county", {"decision": ["approve"], "category": [""],
                                                         "risk_types": []}, "2024-03-01")
    assert "category" not in approve and approve["risk_types"] == []


def test_a_measure_not_yet_ended_can_be_ended_and_the_members_changed_by_the_village_and_the_township():
    state = {"stage": "monitored", "measures": [
        {"measure_id": "M1", "status": "implemented"}, {"measure_id": "M2", "status": "ended"}],
        "members": [{"person_id": "P1", "name": "甲"}, {"person_id": "P2", "name": "乙", "removed_on": "2023-01-01"}]}
    village = {f.command: f for f in step_forms(state, Role.VILLAGE)}
    [measures] = [f.options for f in village["end_measure"].fields]
    assert [v for v, _ in measures] == ["M1"]
    assert [v for v, _ in village["remove_member"].fields[0].options] == ["P1"]
    assert "add_member" in village
    assert {"add_member", "remove_member"} <= {f.command for f in step_forms(state, Role.TOWNSHIP)}
    county = {f.command for f in step_forms(state, Role.COUNTY)}
    assert "end_measure" in county and "add_member" not in county and "remove_member" not in county
    ended = {**state, "measures": [{"measure_id": "M2", "status": "ended"}]}
    assert "end_measure" not in [f.command for f in step_forms(ended, Role.VILLAGE)]


def test_posted_member_and_measure_forms_become_valid_contract_commands():
    from datetime import date

    from casecore.values import make_person_id

    actor = {"id": "v1", "role": "village", "unit": "522631101001"}
    born = date(2023, 2, 1)
    pid = make_person_id("522631", born, 7)
    added = command_from_form("H1", "add_member", {
        "member.name": ["王小"], "member.person_id": [pid], "member.relation": ["孙子"],
        "member.birth_date": [born.isoformat()], "member.labour": ["none"], "member.illness": ["1"],
        "reason": ["birth"]}, "2023-03-01")
    cmd = parse_command({**added, "actor": actor})
    assert (cmd.member.name, cmd.member.person_id, cmd.member.birth_date, cmd.reason.value) == (
        "王小", pid, born, "birth")
    assert (cmd.member.illness, cmd.member.in_school, cmd.member.disabled) == (True, False, False)
    removed = command_from_form("H1", "remove_member", {"person_id": [pid], "reason": ["moved"]}, "2023-04-01")
    assert parse_command({**removed, "actor": actor}).person_id == pid
    ended = command_from_form("H1", "end_measure", {"measure_id": ["M1"]}, "2023-05-01")
    assert parse_command({**ended, "actor": actor}).measure_id == "M1"


def _folded(app):
    from adapters.readside.readmodels import ReadModels

    rm = ReadModels(app)
    rm.catch_up()
    return rm


def test_the_village_to_do_counts_the_notice_days_and_the_inbox_waits_for_the_next_level(app):
    from datetime import date

    from adapters.usecases import approval_inbox, village_todo
    from tests.builders import VILLAGE, cmd, register, run

    run(app, [register("H1"), cmd("record_lead", date(2023, 3, 2), VILLAGE, household_id="H1", lead_id="L1",
                                  source="self_declaration", risk_types=["illness"]),
              cmd("verify_lead", date(2023, 3, 3), VILLAGE, household_id="H1", lead_id="L1", finding="meets"),
              cmd("sign_application", date(2023, 3, 3), VILLAGE, household_id="H1"),
              cmd("open_publicity", date(2023, 3, 4), VILLAGE, household_id="H1")])
    rm = _folded(app)
    try:
        with rm.engine.connect() as conn:
            todo = village_todo(conn, app.policies, "522631101001", date(2023, 3, 6))
            notice = next(k for k in todo if k.what.startswith("公示结束"))
            assert notice.deadline == date(2023, 3, 9) and notice.days_left == 3 and not notice.overdue
            late = village_todo(conn, app.policies, "522631101001", date(2023, 3, 20))
            assert [k.overdue for k in late if k.household_id == "H1"] == [True, True]  # notice, 15-day limit
            assert village_todo(conn, app.policies, "522631102001", date(2023, 3, 6)) == []
        run(app, [cmd("close_publicity", date(2023, 3, 9), VILLAGE, household_id="H1")])
        rm.catch_up()
        with rm.engine.connect() as conn:
            inbox = approval_inbox(conn, app.policies, "township", "522631101", date(2023, 3, 10))
            assert [(k.household_id, k.since) for k in inbox] == [("H1", date(2023, 3, 2))]
            assert approval_inbox(conn, app.policies, "county", "522631", date(2023, 3, 10)) == []
    finally:
        rm.close()


def test_a_monitored_household_whose_income_was_assessed_a_year_ago_is_due_again(app):
    from datetime import date

    from adapters.usecases import village_todo
    from tests.builders import inclusion_path, register, run

    run(app, [register("H1"), *inclusion_path("H1")])
    rm = _folded(app)
    try:
        with rm.engine.connect() as conn:
            soon = village_todo(conn, app.policies, "522631101001", date(2023, 6, 1))
            later = village_todo(conn, app.policies, "522631101001", date(2024, 6, 1))
    finally:
        rm.close()
    assert not any(k.what.startswith("年度收入核算") for k in soon)
    due = [k for k in later if k.what.startswith("年度收入核算")]
    assert len(due) == 1 and due[0].overdue


def test_the_yearly_income_and_the_months_before_exit_count_whole_months_at_a_months_end(app):
    from datetime import date

    from adapters.usecases import village_todo
    from tests.builders import inclusion_path, register, run

    # H1's income assessed on 29 January 2023; H2 entered the system on 30 January 2023
    run(app, [register("H1"), *inclusion_path("H1", start=date(2023, 1, 28)),
              register("H2"), *inclusion_path("H2", start=date(2023, 1, 19))])
    rm = _folded(app)
    try:
        with rm.engine.connect() as conn:
            year_on = village_todo(conn, app.policies, "522631101001", date(2024, 1, 29))
            months_on = village_todo(conn, app.policies, "522631101001", date(2023, 7, 30))
            day_before = village_todo(conn, app.policies, "522631101001", date(2023, 7, 29))
    finally:
        rm.close()
    due = [k for k in year_on if k.household_id == "H1" and k.what.startswith("年度收入核算")]
    assert [(k.since, k.deadline, k.days_left) for k in due] == [(date(2023, 1, 29), date(2024, 1, 29), 0)]
    assert [k.since for k in months_on if k.household_id == "H2" and k.what.startswith("监测满")] == [
        date(2023, 1, 30)]
    assert not [k for k in day_before if k.household_id == "H2" and k.what.startswith("监测满")]


def test_the_households_workbook_writes_a_name_that_looks_like_a_formula_as_text():
    import io

    from openpyxl import load_workbook

    from adapters.usecases import households_workbook

    name = '=HYPERLINK("http://elsewhere.example","胡德")'  # within the contract's limits of a name
    data = households_workbook([{"household_id": "@H1", "head": {"name": name}, "division_code": "522631101001",
                                 "stage": "monitored", "category": None, "risk_types": ["illness"],
                                 "household_size": 2, "included_on": None, "eliminated_on": None}])
    ws = load_workbook(io.BytesIO(data)).active
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    row = next(r for r in ws.iter_rows() if r[0].value == "'@H1")  # below the title and the header
    assert [(c.value, c.data_type) for c in row[:2]] == [("'@H1", "s"), ("'" + name, "s")]
