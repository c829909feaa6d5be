"""Date rules of the inclusion procedure, decided on the act's business date `on` (never the system clock):
the 5-day notice, objections, the 12-month income window, the policy year, household size at the period end."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from freezegun import freeze_time

from tests.builders import cmd, inclusion_path, income, person, register, run
from tests.domain.support import refusal, stored

D = date(2023, 3, 2)   # the lead; the notice opens on D+3


def notice_open(app, hid="H1", start=D):
    path = inclusion_path(hid, start=start)
    run(app, [register(hid), *path[:5]])
    return start + timedelta(days=3)


def close(hid, on, **kw):
    return cmd("close_publicity", on, household_id=hid, **kw)


def test_a_notice_opened_on_day_d_cannot_close_on_d_plus_4_but_can_on_d_plus_5(app):
    opened = notice_open(app)
    before = stored(app, "H1")
    outcome = app.handle(close("H1", opened + timedelta(days=4)))
    assert refusal(outcome) == ("policy_violation", "publicity_min_days")
    assert str(opened + timedelta(days=5)) in outcome.error.message
    assert stored(app, "H1") == before
    assert app.handle(close("H1", opened + timedelta(days=5))).events == ["publicity_closed"]
    h = app.get_household("H1")
    assert (h.step, h.step_on) == ("publicity_closed", opened + timedelta(days=5))


# typed in on the fifth day (when the fourth day's act would have passed by the typing date) and weeks later; an act
# typed in before its business date is refused as input out of range (test_command_path_limits.py)
@pytest.mark.parametrize("clock", ["2023-03-10 09:00:00", "2023-04-30 18:00:00"])
def test_the_notice_rule_follows_the_business_date_not_the_day_it_is_typed_in(app, clock):
    with freeze_time("2023-03-05 08:00:00"):   # recorded times never go backwards within a case
        opened = notice_open(app)
    with freeze_time(clock):
        assert refusal(app.handle(close("H1", opened + timedelta(days=4)))) == ("policy_violation",
                                                                               "publicity_min_days")
        assert app.handle(close("H1", opened + timedelta(days=5))).ok
    # the stored event keeps both clocks: the business date and when it was recorded
    last = app.recorder.select_events("household/H1", desc=True, limit=1)[0]
    event = app.mapper.to_domain_event(last)
    assert event.on == opened + timedelta(days=5)
    assert event.recorded_at == datetime.fromisoformat(clock).replace(tzinfo=UTC)


def test_unresolved_objections_block_closing_the_notice(app):
    opened = notice_open(app)
    run(app, [cmd("raise_objection", opened + timedelta(days=1), household_id="H1", objection_id="O1",
                  detail="邻居反映其子女在城里有房"),
              cmd("raise_objection", opened + timedelta(days=2), household_id="H1", objection_id="O2", detail="复核")])
    day5 = opened + timedelta(days=5)
    outcome = app.handle(close("H1", day5))
    assert refusal(outcome) == ("policy_violation", "objections_unresolved")
    assert "O1" in outcome.error.message and "O2" in outcome.error.message
    run(app, [cmd("resolve_objection", day5, household_id="H1", objection_id="O1", outcome="dismissed")])
    assert refusal(app.handle(close("H1", day5))) == ("policy_violation", "objections_unresolved")
    run(app, [cmd("resolve_objection", day5, household_id="H1", objection_id="O2", outcome="dismissed")])
    assert app.handle(close("H1", day5)).ok
    # once the notice is closed, no objection can be raised in it
    assert refusal(app.handle(cmd("raise_objection", day5, household_id="H1", objection_id="O3"))) == (
        "invalid_transition", None)


def test_an_objection_cannot_be_resolved_twice(app):
    opened = notice_open(app)
    run(app, [cmd("raise_objection", opened, household_id="H1", objection_id="O1"),
              cmd("resolve_objection", opened + timedelta(days=1), household_id="H1", objection_id="O1",
                  outcome="upheld")])
    assert refusal(app.handle(cmd("resolve_objection", opened + timedelta(days=2), household_id="H1",
                                  objection_id="O1", outcome="dismissed"))) == ("invalid_transition", None)


def test_a_new_notice_after_a_return_counts_its_five_days_from_its_own_opening(app):
    opened = notice_open(app)
    run(app, [close("H1", opened + timedelta(days=5)),
              cmd("review_township", opened + timedelta(days=6), household_id="H1", decision="return"),
              cmd("open_publicity", opened + timedelta(days=7), household_id="H1")])
    assert refusal(app.handle(close("H1", opened + timedelta(days=11)))) == ("policy_violation",
                                                                             "publicity_min_days")
    assert app.handle(close("H1", opened + timedelta(days=12))).ok


def to_county(app, hid, start, assessment=None, per_capita_income=5000, household_type="general", members=None,
              category="marginal"):
    """Register and take a procedure started on `start` up to the county's decision, with `assessment` as the
    only income assessment (default: the right window). Returns the approval command."""
    path = inclusion_path(hid, start=start, per_capita_income=per_capita_income, category=category)
    if assessment is not None:
        path[1] = assessment
    run(app, [register(hid, household_type=household_type, members=members), *path[:7]])
    return path[7]


@pytest.mark.parametrize(
    ("period", "accepted"),
    [
        ((date(2022, 3, 1), date(2023, 2, 28)), True),     # exactly the 12 months before March 2023
        ((date(2022, 1, 1), date(2023, 2, 28)), True),     # a longer period that covers them
        ((date(2022, 4, 1), date(2023, 2, 28)), False),    # starts a month late
        ((date(2022, 3, 2), date(2023, 2, 28)), False),    # starts a day late
        ((date(2022, 2, 1), date(2023, 1, 31)), False),    # the 12 months before February, not March
        ((date(2022, 3, 1), date(2023, 2, 27)), False),    # stops a day short
    ],
)
def test_county_approval_needs_an_income_assessment_covering_the_twelve_months_before_the_procedure(
    app, period, accepted
):
    approval = to_county(app, "H1", D, income("H1", D + timedelta(days=1), 5000, period=period))
    outcome = app.handle(approval)
    if accepted:
        assert outcome.ok
    else:
        assert refusal(outcome) == ("policy_violation", "income_assessment_window")
        assert "2022-03-01" in outcome.error.message and "2023-02-28" in outcome.error.message


def test_the_window_is_fixed_by_the_procedure_start_not_the_approval_date(app):
    start = date(2023, 3, 30)   # lead in March, approval in April
    approval = to_county(app, "H1", start)
    assert approval.on.month == 4
    assert app.handle(approval).ok


def test_a_2023_procedure_is_judged_by_the_2023_line(app):
    # 7,000 a head is below the 2023 line (7,300) but not below the 2022 line (6,700)
    assert app.handle(to_county(app, "H23", date(2023, 2, 6), per_capita_income=7000)).ok


def test_a_2022_procedure_is_judged_by_the_2022_line(app):
    outcome = app.handle(to_county(app, "H22", date(2022, 6, 6), per_capita_income=7000))
    assert refusal(outcome) == ("policy_violation", "income_below_line")
    assert "6700" in outcome.error.message and "2022-06-16" in outcome.error.message
    assert app.handle(to_county(app, "H22b", date(2022, 6, 6), per_capita_income=6699)).ok


def test_a_procedure_started_in_december_2022_and_approved_in_2023_is_judged_by_the_2023_line(app):
    approval = to_county(app, "H1", date(2022, 12, 26), per_capita_income=7000)
    assert approval.on.year == 2023
    assert app.handle(approval).ok  # 7,000 is below 2023's 7,300: the line of the approval's date


def test_a_procedure_started_in_2022_and_approved_on_31_december_is_judged_by_the_2022_line(app):
    approval = to_county(app, "H1", date(2022, 12, 21), per_capita_income=7000)
    assert approval.on == date(2022, 12, 31)
    assert refusal(app.handle(approval)) == ("policy_violation", "income_below_line")


def test_per_capita_income_exactly_on_the_line_is_not_below_it(app):
    assert refusal(app.handle(to_county(app, "H1", D, per_capita_income=7300))) == ("policy_violation",
                                                                                    "income_below_line")


def test_per_capita_income_divides_by_the_household_size_on_the_assessment_end_date(app):
    # three members at registration; a baby born before the period's end counts, one born after does not
    grandmother = person(3, date(1950, 1, 1), relation="母亲", labour="none")
    run(app, [register("H1", members=[person(1), person(2, date(1982, 5, 6), relation="配偶"), grandmother])])
    baby = person(4, date(2022, 12, 1), relation="子女", labour="none")
    later_baby = person(5, date(2023, 3, 10), relation="子女", labour="none")
    run(app, [cmd("add_member", date(2022, 12, 5), household_id="H1", member=baby, reason="birth"),
              cmd("remove_member", date(2023, 1, 10), household_id="H1", person_id=grandmother["person_id"],
                  reason="death"),
              cmd("add_member", date(2023, 3, 12), household_id="H1", member=later_baby, reason="birth")])
    # at 2023-02-28: members 1, 2 and the first baby (the grandmother died in January): 3 people
    run(app, [cmd("assess_income", date(2023, 3, 13), household_id="H1", period_start="2022-03-01",
                  period_end="2023-02-28", net_income="24000", rigid_expenditure="3000")])
    [assessment] = app.get_household("H1").incomes
    assert assessment["household_size"] == 3
    assert str(assessment["per_capita_income"]) == "7000.00"
    # and the county decides on that figure: 7,000 is below the 2023 line
    path = inclusion_path("H1", start=date(2023, 3, 13))
    del path[1]
    run(app, path)
    assert app.get_household("H1").stage == "monitored"


def test_rigid_expenditure_is_taken_off_before_dividing(app):
    approval = to_county(app, "H1", D, cmd("assess_income", D + timedelta(days=1), household_id="H1",
                                            period_start="2022-03-01", period_end="2023-02-28",
                                            net_income="20000", rigid_expenditure="6000"))
    assert str(app.get_household("H1").incomes[0]["per_capita_income"]) == "7000.00"
    assert app.handle(approval).ok


def test_the_newest_assessment_covering_the_window_is_the_one_judged(app):
    approval = to_county(app, "H1", D)   # 5,000 a head, assessed on D+1
    run(app, [income("H1", D + timedelta(days=5), 9000, procedure_on=D)])
    assert refusal(app.handle(approval)) == ("policy_violation", "income_below_line")


def test_per_capita_income_is_compared_unrounded_so_a_fraction_of_a_fen_below_the_line_is_below_it(app):
    # 13,399.99 yuan for two people: 6,699.995 a head, shown as 6,700.00 but below the 2022 line of 6,700
    approval = to_county(app, "H1", date(2022, 6, 6), per_capita_income=Decimal("6699.995"))
    assert str(app.get_household("H1").incomes[0]["per_capita_income"]) == "6700.00"
    assert app.handle(approval).ok
    at_the_line = to_county(app, "H2", date(2022, 6, 6), per_capita_income=Decimal("6700.00"))
    assert refusal(app.handle(at_the_line)) == ("policy_violation", "income_below_line")
