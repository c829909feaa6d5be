"""The procedures' tables of legal steps, and the drawing generated from them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from casecore.commands import BY_NAME
from casecore.household import Household
from workflows.inclusion import INCLUSION, Inclusion
from workflows.machine import Workflow

ROOT = Path(__file__).resolve().parents[2]


def _drawer():
    spec = importlib.util.spec_from_file_location("draw_workflows", ROOT / "scripts" / "draw_workflows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DRAWER = _drawer()
ALL = [wf for _, wf in DRAWER.discover()]

CLEAN_PATH = ["verify_lead_meets", "sign_application", "open_publicity", "close_publicity", "review_township_pass",
              "approve_county_approve", "enter_system"]


def test_the_clean_inclusion_path_leads_from_lead_to_entered():
    state = INCLUSION.initial.value
    for trigger in CLEAN_PATH:
        step = INCLUSION.step(state, trigger)
        assert step is not None, (state, trigger)
        state = step.dest
    assert state == Inclusion.ENTERED.value


@pytest.mark.parametrize(
    ("state", "trigger", "dest"),
    [
        (Inclusion.PUBLICITY_CLOSED, "review_township_return", Inclusion.APPLIED),
        (Inclusion.TOWNSHIP_PASSED, "approve_county_return", Inclusion.PUBLICITY_CLOSED),
        (Inclusion.PUBLICITY_CLOSED, "review_township_reject", Inclusion.CLOSED),
        (Inclusion.TOWNSHIP_PASSED, "approve_county_reject", Inclusion.CLOSED),
        (Inclusion.LEAD_RECORDED, "verify_lead_not_meets", Inclusion.CLOSED),
    ],
)
def test_returns_go_back_one_stage_and_rejections_close_the_procedure(state, trigger, dest):
    assert INCLUSION.step(state.value, trigger).dest == dest.value


@pytest.mark.parametrize(
    ("state", "trigger"),
    [
        (Inclusion.LEAD_RECORDED, "sign_application"),
        (Inclusion.VERIFIED, "open_publicity"),
        (Inclusion.APPLIED, "close_publicity"),
        (Inclusion.IN_PUBLICITY, "review_township_pass"),
        (Inclusion.PUBLICITY_CLOSED, "approve_county_approve"),
        (Inclusion.TOWNSHIP_PASSED, "enter_system"),
        (Inclusion.ENTERED, "verify_lead_meets"),
        (Inclusion.CLOSED, "sign_application"),
        (Inclusion.APPLIED, "to_entered"),
    ],
)
def test_a_step_out_of_order_is_not_in_the_table(state, trigger):
    assert INCLUSION.step(state.value, trigger) is None


def test_closing_the_notice_and_county_approval_carry_their_guards():
    closing = INCLUSION.step(Inclusion.IN_PUBLICITY.value, "close_publicity")
    assert closing.guards == ("publicity_min_days", "objections_resolved")
    approval = INCLUSION.step(Inclusion.TOWNSHIP_PASSED.value, "approve_county_approve")
    assert set(approval.guards) == {"four_eyes", "income_assessment_window", "category_fits_household",
                                    "income_below_line"}


def test_every_inclusion_guard_is_implemented_by_the_household():
    for t in INCLUSION.table:
        for guard in t.get("guards", ()):
            assert callable(Household.GUARDS.get(guard)), guard


@pytest.mark.parametrize("wf", [wf for wf in ALL if wf.name in ("inclusion", "exit")], ids=lambda w: w.name)
def test_every_household_step_is_a_contract_command_or_a_command_with_its_decision(wf):
    for t in wf.table:
        trigger = t["trigger"]
        assert any(trigger == name or trigger.startswith(name + "_") for name in BY_NAME), trigger


@pytest.mark.parametrize("wf", ALL, ids=lambda w: w.name)
def test_every_state_can_be_reached_from_the_start(wf):
    reached, frontier = {wf.initial.value}, [wf.initial.value]
    while frontier:
        state = frontier.pop()
        for trigger in wf.triggers(state):
            dest = wf.step(state, trigger).dest
            if dest not in reached:
                reached.add(dest)
                frontier.append(dest)
    assert reached == {s.value for s in wf.states}


@pytest.mark.parametrize("wf", ALL, ids=lambda w: w.name)
def test_machines_have_no_automatic_transitions(wf):
    for state in wf.states:
        assert not [t for t in wf.triggers(state.value) if t.startswith("to_")]


def test_a_wildcard_source_is_refused_because_it_hides_the_legal_steps():
    with pytest.raises(ValueError):
        Workflow("bad", Inclusion, Inclusion.LEAD_RECORDED, [{"trigger": "x", "source": "*", "dest": Inclusion.CLOSED}])


@pytest.mark.parametrize("wf", ALL, ids=lambda w: w.name)
def test_the_drawing_has_one_arrow_for_every_legal_step(wf):
    arrows = [line.strip() for line in wf.mermaid.splitlines() if "-->" in line and "[*]" not in line]
    expected = {(s.value, t) for s in wf.states for t in wf.triggers(s.value)}
    drawn = {(a.split(" --> ")[0], a.split(" : ")[1].split(" [")[0]) for a in arrows}
    assert drawn == expected


def test_the_drawing_discovers_every_workflow_in_the_package():
    names = [wf.name for wf in ALL]
    assert names[:2] == ["inclusion", "exit"]
    for module_path in (ROOT / "workflows").glob("*.py"):
        text = module_path.read_text(encoding="utf-8")
        if "= Workflow(" in text:
            declared = text.split("= Workflow(", 1)[1].split(",", 1)[0].strip().strip("\"'")
            assert declared in names


def test_the_committed_docs_show_the_tables_as_they_are_now():
    committed = (ROOT / "docs" / "workflows.md").read_text(encoding="utf-8")
    assert committed == DRAWER.render(), "docs/workflows.md is out of date: run python scripts/draw_workflows.py"
