"""The kept monthly summary gives exactly the figures the monthly dispatch counts from the read models — per
area, key county and in total, for every month and reach — when it is made at once and when it is brought up
to date as the log grows, on both stores."""

from __future__ import annotations

from datetime import date

from adapters.output.reports import build_monthly, monthly_dispatch
from adapters.readside.readmodels import read_models
from projections import monthly_summary
from projections.registry import by_name
from tests.builders import cmd, run
from tests.problems import assign, closed_path, raise_, rectify
from tests.readside.test_monthly_report import (
    OTHER_COUNTY,
    OTHER_INSPECTOR,
    OTHER_VILLAGE,
    OTHER_VILLAGE_CADRE,
    _history,
)

MONTHS = ["2022-04", "2022-05", "2022-06", "2022-07", "2022-08"]
REACHES = [None, "52", "522631", "522632", "522631101", "522631101001", "522632102003", "522633"]
SHOWN = ("month", "as_of", "division", "policy", "counties", "key_counties", "total")


def _later(app) -> None:
    """July 2022, and acts entered late into June: a problem closed, one held to account, a lead on H2."""
    run(app, [raise_("P5", date(2022, 7, 3)), assign("P5", date(2022, 7, 4), deadline=date(2022, 7, 10)),
              rectify("P5", date(2022, 7, 8))])
    run(app, closed_path("P6", date(2022, 6, 8)))
    run(app, [cmd("record_lead", date(2022, 6, 28), OTHER_VILLAGE_CADRE, household_id="H2", lead_id="H2-L2",
                  source="self_declaration", risk_types=["illness"], detail="补录"),
              cmd("hold_accountable", date(2022, 7, 2), OTHER_COUNTY, problem_id="P2", party="responsible",
                  reason="仍未整改"),
              raise_("P7", date(2022, 7, 9), household_id=None, division_code=OTHER_VILLAGE, actor=OTHER_INSPECTOR)])


def _assert_same(app, rm) -> None:
    with rm.engine.connect() as conn:
        counted = {(m, d): build_monthly(conn, app.policies, m, d) for m in MONTHS for d in REACHES}
    for (month, division), report in counted.items():
        kept = monthly_dispatch(rm.engine, app.policies, month, division)
        assert kept == {k: report[k] for k in SHOWN}, (month, division)


def test_the_kept_summary_gives_the_dispatch_figures_made_at_once_and_kept_up_to_date(app):
    _history(app)
    with read_models(app, [by_name("ledger"), by_name("activity")]) as rm:
        with rm.engine.begin() as conn:
            monthly_summary.create(conn)
        rm.catch_up()
        _assert_same(app, rm)
        _later(app)
        rm.catch_up()
        _assert_same(app, rm)


def test_a_month_is_counted_again_only_when_its_read_models_have_moved(app):
    _history(app)
    with read_models(app, [by_name("ledger"), by_name("activity")]) as rm:
        with rm.engine.begin() as conn:
            monthly_summary.create(conn)
        rm.catch_up()
        before = monthly_dispatch(rm.engine, app.policies, "2022-06")
        with rm.engine.connect() as conn:
            stamp = conn.execute(monthly_summary.months.select()).one()
        assert monthly_dispatch(rm.engine, app.policies, "2022-06") == before
        with rm.engine.connect() as conn:
            assert conn.execute(monthly_summary.months.select()).one() == stamp
        _later(app)
        rm.catch_up()
        after = monthly_dispatch(rm.engine, app.policies, "2022-06")
        assert after["total"]["lead"] == before["total"]["lead"] + 1
        assert after["total"]["problem_closed"] == before["total"]["problem_closed"] + 1
        # a month whose row is removed (the way to have it counted afresh) is counted once, not added twice
        with rm.engine.begin() as conn:
            conn.execute(monthly_summary.months.delete())
        assert monthly_dispatch(rm.engine, app.policies, "2022-06") == after
