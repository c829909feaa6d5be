"""The inspector's cheap tests before its exact ones never change a verdict: the per-capita bound before the
exact below-the-line arithmetic (same result, NULL included, on any stored assessment), the one-measure test
before the engine's `in_place_for`, and the seq bound that stands for "made by D"."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from casecore.policy import default_policies
from casecore.values import add_months, in_place_for
from projections import casefacts as cf
from projections.queries.inspector import Inspector

POLICIES = default_policies()
LINES = sorted({p.income.monitoring_line for p in POLICIES.policies})
money = st.one_of(st.none(), st.decimals(min_value=-5000, max_value=60000, places=2, allow_nan=False,
                                         allow_infinity=False))
near_a_line = st.sampled_from(LINES).flatmap(
    lambda line: st.decimals(min_value=line - 2, max_value=line + 2, places=2).map(Decimal))
assessment = st.fixed_dictionaries({
    "net_income": money, "rigid_expenditure": money,
    "household_size": st.one_of(st.none(), st.integers(min_value=-1, max_value=8)),
    "per_capita_income": st.one_of(money, near_a_line),
    "on": st.sampled_from([p.effective_from for p in POLICIES.policies]
                          + [p.effective_from - timedelta(days=1) for p in POLICIES.policies]),
})


@settings(max_examples=60, deadline=None)
@given(st.lists(assessment, min_size=1, max_size=25))
def test_the_bound_before_the_line_arithmetic_changes_no_verdict(rows):
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        cf.incomes.create(conn)
        conn.execute(cf.incomes.insert(), [
            row | {"key": f"H#{n}", "household_id": "H", "cycle": 1, "on_ord": row["on"].toordinal(),
                   "seq": row["on"].toordinal() * cf.SEQ_PER_DAY + n, "origin": None}
            for n, row in enumerate(rows)])
        inspector = Inspector(conn, POLICIES, date(2024, 1, 1))
        i = cf.incomes
        exact = inspector.per_capita_vs(i, inspector.line_on(i.c.on_ord), below=True)
        bounded = inspector.below_line(i, i.c.on_ord)
        got = conn.execute(sa.select(i.c.key, exact, bounded, ~exact, ~bounded).order_by(i.c.key)).all()
    for key, exact_verdict, bounded_verdict, exact_not, bounded_not in got:
        assert (bounded_verdict, bounded_not) == (exact_verdict, exact_not), key


span = st.tuples(st.dates(date(2022, 1, 1), date(2023, 12, 31)),
                 st.one_of(st.none(), st.dates(date(2022, 1, 1), date(2024, 6, 30))))


@settings(max_examples=300, deadline=None)
@given(st.lists(span, max_size=6), st.dates(date(2022, 6, 1), date(2024, 6, 30)), st.integers(0, 12))
def test_one_measure_in_place_31_days_a_month_is_always_in_place_long_enough(spans, until, months):
    """exit_without_six_months_measures skips, in SQL, an elimination with one measure in place from its start
    for 31 days a month of the months asked before `until`: the engine's exact test agrees every time."""
    def plainly(start: date, end: date | None) -> bool:
        stop = until if end is None or end > until else end
        return start < stop and start.toordinal() + 31 * months <= stop.toordinal()

    if any(plainly(s, e) for s, e in spans):
        assert in_place_for(spans, until, months)


@given(st.dates(date(2000, 1, 1), date(2099, 12, 31)), st.integers(0, 36))
def test_a_month_is_never_longer_than_31_days(start, months):
    assert (add_months(start, months) - start).days <= 31 * months


@given(st.dates(date(2000, 1, 1), date(2099, 12, 31)), st.integers(1, 999_999), st.dates(date(2000, 1, 1),
                                                                                          date(2099, 12, 31)))
def test_made_by_a_day_is_a_seq_bound(on, version, by):
    seq = on.toordinal() * cf.SEQ_PER_DAY + version
    assert (seq < Inspector.seq_from(by.toordinal() + 1)) == (on <= by)
