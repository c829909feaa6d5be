"""The inspector rules added for fidelity, each with a history that triggers it and a near miss that must
not: one person signing two levels, acts dated after the day they were recorded, exits without six months of
measures in place, 突发严重困难户 on a high income, a department warning answered by a home visit, and the
exact span of a fast exit. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from freezegun import freeze_time

from casecore.household import Household
from tests.builders import (
    COUNTY,
    TOWNSHIP,
    VILLAGE,
    cmd,
    exit_path,
    inclusion_path,
    income,
    measure,
    register,
    run,
)
from tests.readside.test_inspect_rules import findings, households, included


def common(on: date, actor: dict = TOWNSHIP) -> dict:
    return {"on": on, "actor": actor, "command_id": None, "note": None, "evidence": []}


def stored(app, hid: str, event: type, on: date, actor: dict = TOWNSHIP, **payload) -> None:
    """A fact stored without the engine's guards (an older system's record, or one stored before a rule)."""
    agg = app.get_household(hid)
    agg.trigger_event(event, **payload, **common(on, actor))
    app.save(agg)


# --- one person, one level ---------------------------------------------------------------------------


def test_a_verifier_who_also_reviewed_for_the_township_is_found_and_three_people_are_not(app):
    for hid in ("H1", "H2"):
        run(app, [register(hid), *inclusion_path(hid)[:6]])
    # H1: the village cadre who verified also signed the township review (stored as a fact)
    stored(app, "H1", Household.TownshipReviewed, date(2023, 3, 11), VILLAGE, decision="pass", procedure="inclusion",
           step="township_passed", stage="in_inclusion")
    run(app, [inclusion_path("H2")[6]])
    for hid in ("H1", "H2"):
        run(app, inclusion_path(hid)[7:])
    found = findings(app, "same_signer_two_levels", date(2023, 6, 1))
    assert households(found) == ["H1"] and found[0].severity == "severe"
    [signer] = found[0].evidence["signers"]
    assert (signer["actor_id"], signer["levels"]) == (VILLAGE["id"], ["verify", "township"])
    assert "入户核实" in found[0].detail and "乡级审核" in found[0].detail
    assert findings(app, "same_signer_two_levels", date(2023, 3, 10)) == []  # before the second signature


# --- acts dated in the future ------------------------------------------------------------------------


def test_an_act_dated_more_than_a_day_after_it_was_recorded_is_found(app):
    with freeze_time("2023-03-01 10:00:00"):
        run(app, [register("H1", on=date(2023, 3, 1)), register("H2", on=date(2023, 3, 1))])
        payload = {"period_start": date(2022, 3, 1), "period_end": date(2023, 2, 28), "net_income": Decimal(10000),
                   "rigid_expenditure": Decimal(0), "household_size": 2, "per_capita_income": Decimal(5000)}
        stored(app, "H1", Household.IncomeAssessed, date(2023, 3, 3), VILLAGE, **payload)  # two days ahead
        stored(app, "H2", Household.IncomeAssessed, date(2023, 3, 2), VILLAGE, **payload)  # the next day: allowed
    found = findings(app, "future_dated_act", date(2023, 3, 1))
    assert households(found) == ["H1"]
    assert found[0].evidence["days_ahead"] == 2 and found[0].evidence["worst_on"] == "2023-03-03"
    assert findings(app, "backdated_entry", date(2023, 6, 1)) == []  # not mistaken for a late entry


# --- six months of measures in place -----------------------------------------------------------------


def eliminated_after(app, hid: str, nominated: date, implemented: date, ended: date | None = None) -> None:
    """Included 2023-03-13, one measure implemented (and ended), an assisted exit stored as facts."""
    included(app, hid)
    run(app, measure(hid, "M1", implemented, implemented))
    if ended is not None:
        run(app, [cmd("end_measure", ended, household_id=hid, measure_id="M1")])
    stored(app, hid, Household.ExitNominated, nominated, VILLAGE, mode="assisted", procedure="exit",
           step="nominated", stage="in_exit")
    stored(app, hid, Household.RiskEliminated, date(2023, 11, 1), mode="assisted", procedure="exit",
           step="eliminated", stage="risk_eliminated")


def test_an_assisted_exit_whose_measures_were_not_in_place_for_six_months_is_found(app):
    eliminated_after(app, "H1", date(2023, 10, 1), date(2023, 3, 20), ended=date(2023, 3, 25))  # five days
    eliminated_after(app, "H2", date(2023, 9, 20), date(2023, 3, 20))   # six months to the day: in place
    eliminated_after(app, "H3", date(2023, 9, 19), date(2023, 3, 20))   # five months 30 days
    found = {f.household_id: f for f in findings(app, "exit_without_six_months_measures", date(2023, 12, 31))}
    assert sorted(found) == ["H1", "H3"]
    assert found["H1"].evidence["longest_days_in_place"] == 5 and found["H1"].severity == "severe"
    assert found["H3"].evidence["nominated_on"] == "2023-09-19"


# --- 突发严重困难户 on a high income --------------------------------------------------------------------


def test_a_sudden_hardship_household_identified_on_more_than_20000_a_head_is_a_warning(app):
    for hid, pc in (("H1", "20000.01"), ("H2", "20000")):
        run(app, [register(hid), *inclusion_path(hid, per_capita_income=Decimal(pc),  # type: ignore[arg-type]
                                                 category="sudden_hardship")])
    found = findings(app, "sudden_hardship_high_income", date(2023, 6, 1))
    assert households(found) == ["H1"] and found[0].severity == "warning"
    assert found[0].evidence["sudden_hardship_check"] == "20000"


# --- a department warning answered by a home visit ---------------------------------------------------


def warned(app, hid: str, per_capita: int | None, close: str = "not_meets") -> None:
    """A department warning on 2023-04-01, closed by a home visit (or by the township), with an income."""
    run(app, [register(hid), cmd("record_lead", date(2023, 4, 1), COUNTY | {"role": "department"},
                                 household_id=hid, lead_id=f"{hid}-W", source="department_warning",
                                 risk_types=["illness"], detail="医保预警")])
    if per_capita is not None:
        run(app, [income(hid, date(2023, 4, 2), per_capita)])
    if close == "not_meets":
        run(app, [cmd("verify_lead", date(2023, 4, 3), household_id=hid, lead_id=f"{hid}-W", finding="not_meets")])
    else:
        path = inclusion_path(hid, start=date(2023, 4, 1))
        visit = cmd("verify_lead", date(2023, 4, 3), household_id=hid, lead_id=f"{hid}-W", finding="meets")
        run(app, [visit, *path[3:6], cmd("review_township", date(2023, 4, 10), household_id=hid,
                                         decision="reject")])


def test_a_warning_answered_by_a_not_meeting_visit_on_an_income_above_the_line_is_not_qualifying(app):
    warned(app, "H1", 15000)                   # answered
    warned(app, "H2", None)                    # a visit, but no income on record
    warned(app, "H3", 15000, close="reject")   # closed by the township, not by a visit
    warned(app, "H4", 7000)                    # the visit found it not meeting, but 7,000 is below 2023's line
    found = {f.household_id: f for f in findings(app, "qualifying_not_monitored", date(2023, 6, 1))}
    assert sorted(found) == ["H2", "H3", "H4"]
    assert found["H2"].severity == "warning" and found["H4"].severity == "severe"


# --- the exact span of a fast exit --------------------------------------------------------------------


def test_a_fast_exit_of_five_months_30_days_prints_the_exact_span(app):
    included(app, "H1")  # 2023-03-13
    run(app, exit_path("H1", date(2023, 9, 1), mode="natural"))  # marked 2023-09-12
    [f] = findings(app, "fast_in_fast_out", date(2023, 12, 31))
    assert "相隔5个月30天" in f.detail and "不足6个月" in f.detail
    assert "相隔6个月" not in f.detail
