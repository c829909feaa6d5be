"""The inspector's cheap tests before its exact ones never change a verdict: the per-capita bound before the
exact below-the-line test (same result, NULL included, on any stored assessment, which is also the policy book's
verdict), the one-measure test before the engine's `in_place_for`, and the seq bound that stands for "made by
D"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def incomes_db(request) -> Iterator[sa.Engine]:
    """An engine on an empty `cf_incomes` table (SQLite in memory, or a PostgreSQL schema)."""
    if request.param == "sqlite":
        engine = sa.create_engine("sqlite://")
    else:
        base, schema = request.getfixturevalue("pg_url").split("?schema=")
        engine = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1),
                                  connect_args={"options": f"-csearch_path={schema}"})
    with engine.begin() as conn:
        cf.incomes.create(conn)
    try:
        yield engine
    finally:
        engine.dispose()


@st.composite
def stated_near_the_quotient(draw: st.DrawFn) -> dict[str, Any]:
    """An assessment whose per-capita figure is (net − rigid) ÷ size rounded to the fen, or a fen off it, with
    an income within two fen a head of the line in force on its date: where half a fen a head decides whether
    the exact quotient or the stated figure is compared."""
    on = draw(st.sampled_from([p.effective_from for p in POLICIES.policies]))
    size = draw(st.integers(min_value=1, max_value=6))
    rigid = draw(st.decimals(min_value=0, max_value=300, places=2))
    net = POLICIES.monitoring_line(on) * size + rigid + Decimal(draw(st.integers(-2 * size, 2 * size))) / 100
    quotient = ((net - rigid) / size).quantize(Decimal("0.01"), "ROUND_HALF_UP")
    off = draw(st.sampled_from([Decimal(0), Decimal("0.01"), Decimal("-0.01")]))
    return {"net_income": net, "rigid_expenditure": rigid, "household_size": size,
            "per_capita_income": quotient + off, "on": on}


#: a fen a head over the exact quotient, which is a fen below the line: the stated figure is the income (not below)
ONE_FEN_OVER = {"net_income": Decimal("6699.99"), "rigid_expenditure": Decimal(0), "household_size": 1,
                "per_capita_income": Decimal("6700.00"), "on": POLICIES.policies[0].effective_from}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.one_of(assessment, stated_near_the_quotient()), min_size=1, max_size=25))
@example(rows=[ONE_FEN_OVER, ONE_FEN_OVER | {"per_capita_income": Decimal("6699.99")}])
def test_the_sql_verdict_is_the_policy_books_and_the_bound_changes_none(incomes_db, rows):
    """Below the line in SQL (`exact_fen` against line × size in integers, else the stated figure) is what
    `PolicyBook.below_line` decides in Python, wherever it decides; the cheap bound before it changes no
    verdict."""
    with incomes_db.begin() as conn:
        conn.execute(cf.incomes.delete())
        conn.execute(cf.incomes.insert(), [
            row | {"key": f"H#{n}", "household_id": "H", "cycle": 1, "on_ord": row["on"].toordinal(),
                   "seq": row["on"].toordinal() * cf.SEQ_PER_DAY + n, "origin": None,
                   "exact_fen": cf.exact_fen(row["net_income"], row["rigid_expenditure"], row["household_size"],
                                             row["per_capita_income"])}
            for n, row in enumerate(rows)])
        inspector = Inspector(conn, POLICIES, date(2024, 1, 1))
        i = cf.incomes
        exact = inspector.per_capita_vs(i, inspector.line_on(i.c.on_ord), below=True)
        bounded = inspector.below_line(i, i.c.on_ord)
        got = conn.execute(sa.select(i.c.key, exact, bounded, ~exact, ~bounded).order_by(i.c.key)).all()
    for key, exact_verdict, bounded_verdict, exact_not, bounded_not in got:
        assert (bounded_verdict, bounded_not) == (exact_verdict, exact_not), key
        row = rows[int(key.split("#")[1])]
        size = row["household_size"]
        if size is not None and size < 0:
            continue   # no assessment has one (the command refuses it); Python would divide by it
        try:
            verdict = POLICIES.below_line(row, row["on"])
        except InvalidOperation:   # neither a net income nor a stated figure: no income to judge
            assert exact_verdict is None, key
        else:
            assert bool(exact_verdict) is verdict, key


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
