"""Every contract error code, produced where it should be; a refused command leaves the stream untouched."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from adapters.integration.intake import parse_line
from adapters.store.storage import bootstrap
from casecore.commands import Command
from casecore.values import make_person_id
from tests.builders import COUNTY, TOWNSHIP, VILLAGE, cmd, inclusion_path, person, register, run
from tests.domain.support import has_chinese, refusal, stored

D = date(2023, 3, 2)
PATH = inclusion_path("H1", start=D)
#: the steps of the clean path, by command name, up to (not including) the one a case refuses
STEPS = {c.command: i for i, c in enumerate(PATH)}


def until(command: str) -> list[Command]:
    """Registration and the clean path's steps before `command`."""
    return [register("H1"), *PATH[: STEPS[command]]]


OTHER_TOWNSHIP = {"id": "t-cadre-9", "role": "township", "unit": "522631102000"}
OTHER_VILLAGE = {"id": "v-cadre-9", "role": "village", "unit": "522631101002"}
OTHER_COUNTY = {"id": "c-cadre-9", "role": "county", "unit": "522632000000"}

REFUSALS = {
    # name: (set-up, refused command, code, rule)
    "a command for an unregistered household": (
        [], cmd("record_lead", D, household_id="H404", lead_id="L", source="cadre_screening"), "not_found", None),
    "verifying a lead that was never recorded": (
        until("verify_lead"), cmd("verify_lead", D, household_id="H1", lead_id="nope", finding="meets"),
        "not_found", None),
    "resolving an objection nobody raised": (
        until("close_publicity"),
        cmd("resolve_objection", D + timedelta(days=4), household_id="H1", objection_id="O404", outcome="dismissed"),
        "not_found", None),
    "removing someone who is not a member": (
        [register("H1")], cmd("remove_member", D, household_id="H1", person_id=make_person_id("522631", D, 77),
                              reason="moved"), "not_found", None),
    "registering a household twice": ([register("H1")], register("H1"), "invalid_transition", None),
    "signing the application before the home visit": (
        until("verify_lead"), cmd("sign_application", D + timedelta(days=1), household_id="H1"),
        "invalid_transition", None),
    "opening the notice before the application": (
        until("sign_application"), cmd("open_publicity", D + timedelta(days=2), household_id="H1"),
        "invalid_transition", None),
    "county approval before the township review": (
        until("review_township"),
        cmd("approve_county", D + timedelta(days=9), household_id="H1", decision="approve", category="marginal",
            risk_types=["illness"]), "invalid_transition", None),
    "entering the system before county approval": (
        until("approve_county"), cmd("enter_system", D + timedelta(days=10), household_id="H1"),
        "invalid_transition", None),
    "a procedure step without any procedure open": (
        [register("H1")], cmd("open_publicity", D, household_id="H1"), "invalid_transition", None),
    "recording the same lead twice": (
        until("assess_income"), PATH[0], "invalid_transition", None),
    "closing the notice on the fourth day": (
        until("close_publicity"), cmd("close_publicity", D + timedelta(days=3 + 4), household_id="H1"),
        "policy_violation", "publicity_min_days"),
    "a step dated before the step it follows": (
        until("sign_application"), cmd("sign_application", D - timedelta(days=1), household_id="H1"),
        "policy_violation", "step_date_order"),
    "a village cadre approving at county level": (
        until("approve_county"),
        cmd("approve_county", D + timedelta(days=10), VILLAGE, household_id="H1", decision="approve",
            category="marginal", risk_types=["illness"]), "not_authorised", None),
    "a county official reviewing for the township": (
        until("review_township"), cmd("review_township", D + timedelta(days=9), COUNTY, household_id="H1",
                                      decision="pass"), "not_authorised", None),
    "a township cadre of another township": (
        until("review_township"), cmd("review_township", D + timedelta(days=9), OTHER_TOWNSHIP, household_id="H1",
                                      decision="pass"), "not_authorised", None),
    "a village cadre of another village": (
        until("verify_lead"), cmd("verify_lead", D + timedelta(days=1), OTHER_VILLAGE, household_id="H1",
                                  lead_id="H1-L1", finding="meets"), "not_authorised", None),
    "a county bureau of another county": (
        until("approve_county"),
        cmd("approve_county", D + timedelta(days=10), OTHER_COUNTY, household_id="H1", decision="approve",
            category="marginal", risk_types=["illness"]), "not_authorised", None),
    "registering a household outside one's own village": (
        [], cmd("register_household", D, OTHER_VILLAGE, household_id="H1", division_code="522631101001",
                household_type="general", members=[person(1)]), "not_authorised", None),
    "county approval without a category": (
        until("approve_county"),
        cmd("approve_county", D + timedelta(days=10), household_id="H1", decision="approve", risk_types=["illness"]),
        "validation_error", None),
    "a guarantee check naming someone outside the household": (
        [register("H1")], cmd("assess_guarantees", D, household_id="H1", housing="safe", drinking_water_safe=True,
                              children_out_of_school=[make_person_id("522631", date(2012, 1, 1), 5)]),
        "validation_error", None),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_refusal_has_its_contract_code_and_leaves_the_stream_untouched(app, case):
    setup, refused, code, rule = REFUSALS[case]
    run(app, setup)
    hid = refused.household_id
    before = stored(app, hid)
    outcome = app.handle(refused)
    assert refusal(outcome) == (code, rule)
    assert has_chinese(outcome.error.message)
    assert stored(app, hid) == before
    # the bulk path refuses it the same way, and stores nothing either
    [bulk] = app.handle_many([refused])
    assert refusal(bulk) == (code, rule)
    assert stored(app, hid) == before


def test_the_cadre_who_verified_the_lead_may_not_approve_it_at_county_level(app):
    same_person = {"id": "cadre-wang", "name": "王", "role": "township", "unit": TOWNSHIP["unit"]}
    same_person_at_county = dict(same_person, role="county", unit=COUNTY["unit"])
    path = inclusion_path("H1", start=D)
    path[2] = cmd("verify_lead", D + timedelta(days=1), same_person, household_id="H1", lead_id="H1-L1",
                  finding="meets")
    run(app, [register("H1"), *path[:7]])
    before = stored(app, "H1")
    approval = dict(household_id="H1", decision="approve", category="marginal", risk_types=["illness"])
    outcome = app.handle(cmd("approve_county", D + timedelta(days=10), same_person_at_county, **approval))
    assert refusal(outcome) == ("not_authorised", None)
    assert "四眼" in outcome.error.message
    assert stored(app, "H1") == before
    # another official of the same bureau may approve
    assert app.handle(cmd("approve_county", D + timedelta(days=10), COUNTY, **approval)).ok


@pytest.mark.parametrize(
    "line",
    [
        '{"command": "register_household", "on": "2023-03-01"',                      # not JSON
        '["register_household"]',                                                     # not an object
        '{"command": "adopt_household", "on": "2023-03-01"}',                         # unknown command
        '{"command": "sign_application", "household_id": "H1"}',                     # missing on and actor
        '{"command": "sign_application", "household_id": "H1", "on": "2023-02-30",'
        ' "actor": {"id": "a", "role": "village", "unit": "522631101001"}}',          # impossible date
        '{"command": "sign_application", "household_id": "H1", "on": "2023-03-01",'
        ' "actor": {"id": "a", "role": "mayor", "unit": "522631101001"}}',            # unknown role
    ],
)
def test_malformed_input_is_a_validation_error_and_stores_nothing(app, line):
    run(app, [register("H1")])
    before = stored(app, "H1")
    parsed = parse_line(line)
    [outcome] = app.handle_many([parsed])
    assert refusal(outcome) == ("validation_error", None)
    assert stored(app, "H1") == before


def _registration(**changes) -> dict:
    data = register("H2").model_dump(mode="json")
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"division_code": "52263110100"}, "12"),
        ({"household_type": "rich"}, "household_type"),
        ({"members": []}, "members"),
        ({"members": [dict(person(1), person_id=person(1)["person_id"][:-1] + "0")]}, "校验位"),
        ({"members": [dict(person(1), birth_date="1980-01-03")]}, "不一致"),
        ({"members": [person(1), person(1)]}, "重复"),
    ],
)
def test_a_registration_with_invalid_values_is_refused_with_what_is_wrong(app, changes, says):
    import orjson

    outcome = next(app.handle_many([parse_line(orjson.dumps(_registration(**changes)).decode())]))
    assert refusal(outcome) == ("validation_error", None)
    assert says in outcome.error.message
    assert stored(app, "H2") == []


def test_money_given_as_a_float_is_refused_as_inexact():
    line = ('{"command": "assess_income", "household_id": "H1", "on": "2023-03-01", "period_start": "2022-03-01",'
            ' "period_end": "2023-02-28", "net_income": 13400.5, "actor": {"id": "a", "role": "village",'
            ' "unit": "522631101001"}}')
    parsed = parse_line(line)
    assert parsed.code == "validation_error"
    assert "net_income" in parsed.message


def _racing(loser, winner, winning_command):
    """Make `loser` decide on what it loaded, then let `winner` save first (two clerks on one household)."""
    decide = loser._decide
    raced = []

    def decide_then_lose_the_race(command, aggregate):
        result = decide(command, aggregate)
        if not raced:  # the winner writes once, between the loser's load and its save
            raced.append(winner.handle(winning_command))
            assert raced[0].ok
        return result

    loser._decide = decide_then_lose_the_race


def test_two_applications_saving_the_same_household_the_second_gets_conflict(db_url):
    first, second = bootstrap(db_url), bootstrap(db_url)
    try:
        run(first, [register("H1"), PATH[0]])
        _racing(second, first, PATH[1])
        outcome = second.handle(PATH[2])  # verify_lead, decided on a household that has since moved on
        assert refusal(outcome) == ("conflict", None)
        assert has_chinese(outcome.error.message)
        before = stored(first, "H1")
        assert [topic.split(".")[-2] for _, topic, _ in before][-1] == "income_assessed"
        # nothing of the loser's command was stored; trying again on fresh state succeeds
        del second._decide
        assert second.handle(PATH[2]).ok
        assert len(stored(first, "H1")) == len(before) + 1
    finally:
        first.close()
        second.close()


def test_on_the_bulk_path_a_batch_that_loses_a_race_is_decided_again_and_nothing_is_lost(db_url):
    first, second = bootstrap(db_url), bootstrap(db_url)
    try:
        run(first, [register("H1"), PATH[0]])
        _racing(second, first, PATH[1])
        outcomes = list(second.handle_many([PATH[2], PATH[3]]))
        del second._decide
        assert [o.ok for o in outcomes] == [True, True]
        h = first.get_household("H1")
        assert h.step == "applied" and len(h.incomes) == 1
    finally:
        first.close()
        second.close()



def test_an_income_assessment_cannot_cover_a_period_that_has_not_ended_on_its_date():
    from datetime import date

    from pydantic import ValidationError

    from tests.builders import cmd

    with pytest.raises(ValidationError, match="晚于核算日期"):
        cmd("assess_income", date(2023, 3, 1), household_id="H1", period_start="2022-03-01",
            period_end="2023-03-31", net_income="10000", rigid_expenditure="0")
