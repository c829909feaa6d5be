"""Division filters are index ranges: the codes a range selects are exactly those starting with the prefix
(on both stores, whatever the collation), and a village's roster is read through the division index rather
than by scanning the whole roster."""

from __future__ import annotations

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.readside.readmodels import read_models
from projections.divisions import next_prefix, within

codes = st.text(alphabet="0123456789", min_size=1, max_size=12)

table_md = sa.MetaData()
divisions = sa.Table("test_divisions", table_md, sa.Column("code", sa.String(12), primary_key=True))


@given(codes)
def test_the_next_prefix_is_the_smallest_code_of_its_length_above_the_prefix(prefix):
    upper = next_prefix(prefix)
    if set(prefix) == {"9"}:
        assert upper is None
    else:
        assert upper is not None and len(upper) == len(prefix) and int(upper) == int(prefix) + 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stored=st.lists(codes, min_size=1, max_size=40, unique=True), prefix=st.one_of(codes, st.just("")))
def test_a_division_range_selects_exactly_the_codes_under_the_prefix(app, stored, prefix):
    with read_models(app, []) as rm, rm.engine.begin() as conn:
        table_md.drop_all(conn)
        table_md.create_all(conn)
        conn.execute(divisions.insert(), [{"code": c} for c in stored])
        found = set(conn.execute(sa.select(divisions.c.code).where(within(divisions.c.code, prefix))).scalars())
        table_md.drop_all(conn)
    assert found == {c for c in stored if c.startswith(prefix)}


def test_a_prefix_that_is_not_a_code_is_still_matched_literally(app):
    with read_models(app, []) as rm, rm.engine.begin() as conn:
        table_md.create_all(conn)
        conn.execute(divisions.insert(), [{"code": c} for c in ("52%1", "5201", "52_1")])
        found = set(conn.execute(sa.select(divisions.c.code).where(within(divisions.c.code, "52%"))).scalars())
        table_md.drop_all(conn)
    assert found == {"52%1"}


def _plans(engine, read) -> list[str]:
    """SQLite's query plan of every statement `read(conn)` runs."""
    seen: list[tuple[str, tuple]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, tuple(parameters)))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        with engine.connect() as conn:
            read(conn)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    with engine.connect() as conn:
        return [" | ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
                for sql, params in seen if sql.lstrip().upper().startswith("SELECT")]


def test_a_villages_roster_and_problems_are_read_through_the_division_indexes_not_a_scan(sqlite_app):
    from datetime import date

    from projections.ledger import problem_rows
    from projections.roster import monitored_roster

    with read_models(sqlite_app) as rm:
        [roster_plan] = _plans(rm.engine, lambda conn: monitored_roster(conn, "522631101001"))
        assert "ix_roster_division" in roster_plan, roster_plan
        ledger_plan = _plans(rm.engine, lambda conn: problem_rows(conn, date(2024, 1, 1), "522631101001"))[0]
        assert "ix_problem_ledger_division" in ledger_plan, ledger_plan
