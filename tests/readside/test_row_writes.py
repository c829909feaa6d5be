"""A projection's rows written by the runner's driver-level helpers (`insert_rows`, `upsert`) are stored exactly
as SQLAlchemy's own INSERT and UPDATE store them, value for value, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.readside.readmodels import engine_for
from adapters.store.storage import resolve_store
from projections.roster import Money
from projections.runner import insert_rows, upsert
from projections.sealing import Sealed

metadata = sa.MetaData()


def _shaped(name: str) -> sa.Table:
    return sa.Table(
        name, metadata,
        sa.Column("key", sa.String(40), primary_key=True),
        sa.Column("day", sa.Date),
        sa.Column("flag", sa.Boolean),
        sa.Column("items", sa.JSON, nullable=False),
        sa.Column("amount", Money()),
        sa.Column("name", Sealed("text", 40)),
        sa.Column("count", sa.Integer),
        sa.Column("note", sa.String(40)),
    )


by_sqlalchemy = _shaped("test_writes_sqlalchemy")
by_driver = _shaped("test_writes_driver")

TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)
VALUES = st.fixed_dictionaries({
    "day": st.none() | st.dates(date(1900, 1, 1), date(2100, 12, 31)),
    "flag": st.none() | st.booleans(),
    "items": st.lists(TEXT, max_size=3),
    "amount": st.none() | st.decimals(min_value=-10**9, max_value=10**9, places=2, allow_nan=False,
                                      allow_infinity=False),
    "name": st.none() | TEXT,
    "count": st.none() | st.integers(-2**31, 2**31 - 1),
    "note": st.none() | TEXT,
})


def _rows(values: list[dict]) -> dict[str, dict]:
    return {f"k{i:03d}": {"key": f"k{i:03d}", **v} for i, v in enumerate(values)}


def _stored(conn, table: sa.Table) -> list[tuple]:
    """The values as the database holds them (no SQLAlchemy result conversion)."""
    return [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table.name} ORDER BY key")]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.lists(VALUES, min_size=1, max_size=8), then=st.data())
def test_rows_inserted_and_updated_by_the_driver_are_stored_as_sqlalchemy_stores_them(db_url, first, then):
    engine = engine_for(resolve_store(db_url))
    try:
        metadata.drop_all(engine)
        metadata.create_all(engine)
        rows = _rows(first)
        with engine.begin() as conn:
            conn.execute(by_sqlalchemy.insert(), [dict(r) for r in rows.values()])
            insert_rows(conn, by_driver, [dict(r) for r in rows.values()])
        with engine.connect() as conn:
            assert _stored(conn, by_driver) == _stored(conn, by_sqlalchemy)

        changed = {k: {"key": k, **then.draw(VALUES)} for k in rows if then.draw(st.booleans())}
        added = {f"n{k}": {**r, "key": f"n{k}"} for k, r in rows.items() if then.draw(st.booleans())}
        with engine.begin() as conn:
            if changed:
                conn.execute(by_sqlalchemy.update().where(by_sqlalchemy.c.key == sa.bindparam("_key")),
                             [dict(r, _key=k) for k, r in changed.items()])
            if added:
                conn.execute(by_sqlalchemy.insert(), list(added.values()))
            upsert(conn, by_driver, "key", {**changed, **added}, set(rows))
        with engine.connect() as conn:
            assert _stored(conn, by_driver) == _stored(conn, by_sqlalchemy)
    finally:
        metadata.drop_all(engine)
        engine.dispose()
