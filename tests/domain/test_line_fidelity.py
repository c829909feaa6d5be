"""One line rule, one story: the engine's guards, the inspector's rules and the screening judge a decision
by the monitoring line in force on the date of that decision (DOMAIN.md "Which year's line"), comparing the
unrounded per-capita income. The same facts go through the engine and through the inspector on both sides
of 1 January, and must get the same verdict. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from decimal import Decimal

import pytest
from freezegun import freeze_time

from adapters.importers.screening import screen
from adapters.readside.readmodels import read_models
from casecore.household import Household
from projections.casefacts import CaseFactsProjection
from projections.queries.inspector import inspect
from tests.builders import (
    cmd,
    exit_nomination,
    exit_procedure,
    guarantees,
    inclusion_path,
    income,
    measure,
    person,
    register,
    run,
)

NEW_YEARS_EVE, NEW_YEARS_DAY = date(2022, 12, 31), date(2023, 1, 1)
#: per-capita incomes around both lines (6,700 in 2022, 7,300 in 2023), with a fraction of a fen below each
INCOMES = ("6699.99", "6699.995", "6700", "7000", "7299.995", "7300")


def flagged(app, rule: str, as_of: date) -> set[str]:
    with read_models(app, [CaseFactsProjection()]) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            return {f.household_id or "" for f in inspect(conn, app.policies, as_of, [rule])}


def hid(prefix: str, per_capita: str) -> str:
    return f"{prefix}{per_capita.replace('.', '_')}"


@pytest.mark.parametrize("decided_on", [NEW_YEARS_EVE, NEW_YEARS_DAY])
def test_the_county_approves_an_inclusion_exactly_when_the_inspector_would_call_the_household_qualifying(
        app, decided_on):
    """Inclusion: the county's `income_below_line` guard and the inspector's 应纳未纳, on one day's facts."""
    start = decided_on - timedelta(days=10)
    verdicts = {}
    with freeze_time(decided_on + timedelta(days=1)):
        for pc in INCOMES:
            approved, twin = hid("A", pc), hid("B", pc)
            for h in (approved, twin):
                path = inclusion_path(h, start=start, per_capita_income=Decimal(pc))  # type: ignore[arg-type]
                path[1] = income(h, decided_on, Decimal(pc), procedure_on=start)  # assessed on the decision day
                assert path[7].command == "approve_county" and path[7].on == decided_on
                run(app, [register(h, on=start), *path[:7]])
            verdicts[pc] = app.handle(inclusion_path(approved, start=start)[7]).ok
            # the twin is refused by the county on the same day: not monitored, its income judged by the inspector
            run(app, [cmd("approve_county", decided_on, household_id=twin, decision="reject")])
    qualifying = flagged(app, "qualifying_not_monitored", decided_on)
    line = app.policies.monitoring_line(decided_on)
    for pc in INCOMES:
        assert verdicts[pc] == (hid("B", pc) in qualifying) == (Decimal(pc) < line), (pc, decided_on)


@pytest.mark.parametrize("decided_on", [NEW_YEARS_EVE, NEW_YEARS_DAY])
def test_the_township_marks_an_elimination_exactly_when_the_inspector_finds_its_income_above_the_line(
        app, decided_on):
    """Exit: the mark's `exit_income_below_line` guard and the inspector's `eliminated_below_line`: a
    nomination in December with the fresh assessment and the mark on the decision day."""
    nominated = date(2022, 12, 10)
    fresh_on = decided_on - timedelta(days=1)
    verdicts = {}
    with freeze_time(decided_on + timedelta(days=1)):
        for pc in INCOMES:
            marked, twin = hid("E", pc), hid("F", pc)
            for h in (marked, twin):
                run(app, [register(h, on=date(2022, 3, 1)), *inclusion_path(h, start=date(2022, 3, 2)),
                          *measure(h, "M1", date(2022, 3, 13), date(2022, 3, 13)),
                          *exit_nomination(h, nominated, per_capita_income=9000),
                          *exit_procedure(h, nominated)[:5],
                          income(h, fresh_on, Decimal(pc), procedure_on=nominated), guarantees(h, fresh_on)])
            verdicts[pc] = app.handle(cmd("mark_risk_eliminated", decided_on, household_id=marked)).ok
            # the twin's mark is stored as a fact, guards or not (as an import or an older system would)
            agg = app.get_household(twin)
            agg.trigger_event(Household.RiskEliminated, procedure="exit", step="eliminated",
                              stage="risk_eliminated", mode="assisted", on=decided_on,
                              actor={"id": "t-cadre-1", "name": "乡镇干部", "role": "township",
                                     "unit": "522631101000"}, command_id=None, note=None, evidence=[])
            app.save(agg)
    below = flagged(app, "eliminated_below_line", decided_on)
    line = app.policies.monitoring_line(decided_on)
    for pc in INCOMES:
        assert verdicts[pc] == (hid("F", pc) not in below) == (Decimal(pc) >= line), (pc, decided_on)


@pytest.mark.parametrize("screened_on", [NEW_YEARS_EVE, NEW_YEARS_DAY])
def test_a_screening_judges_income_after_self_pay_by_the_line_of_the_screening_day(app, tmp_path, screened_on):
    """Screening: a stay discharged in December, screened on either side of 1 January; 7,000 a head after
    self-pay is below the line only from 2023."""
    head = person(1)
    run(app, [register("H1", on=date(2022, 3, 1), household_type="poverty_alleviated",
                       members=[head, person(2, date(1982, 5, 6), relation="配偶")]),
              cmd("assess_income", date(2022, 11, 1), household_id="H1", period_start="2021-11-01",
                  period_end="2022-10-31", net_income="19000", rigid_expenditure="0")])
    path = tmp_path / "yb.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["身份证号", "姓名", "入院日期", "出院日期", "个人自付"])
        w.writerow([head["person_id"], "某", "2022-12-01", "2022-12-20", "5000.00"])  # (19,000 − 5,000) ÷ 2
    with freeze_time(screened_on + timedelta(days=1)):
        report = screen(app, "hospital", path, screened_on)
    assert report.leads == (1 if screened_on.year == 2023 else 0)
