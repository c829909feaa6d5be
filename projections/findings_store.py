"""Findings kept, not recomputed per request: an inspection run stored with the date it was run as of, when
it was computed and the positions it saw (the case facts' and the log's head), read back by division and rule
in milliseconds.

A run is stored whole in one transaction (its rows for that date replaced), so a reader sees the previous run
or the new one. `refresh` runs the inspection again only when the case facts have moved past the position the
stored run saw — `casecore inspect --store --every SECONDS` does that on the operator's schedule, and as the
date moves on it stores the new day's run. The rules themselves live in `projections.inspect`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from casecore import limits as lim
from casecore.policy import PolicyBook
from projections.divisions import within
from projections.inspect import Finding, Inspector
from projections.sealing import Sealed

metadata = sa.MetaData()

runs = sa.Table(
    "findings_runs", metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    #: the case facts' position the run read, and the head of the log then
    sa.Column("casefacts_position", sa.BigInteger, nullable=False),
    sa.Column("head", sa.BigInteger, nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
)

stored = sa.Table(
    "stored_findings", metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("division_code", sa.String(12), nullable=False),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("household_id", sa.String(lim.ID_MAX)),
    sa.Column("label", sa.String(200), nullable=False),
    #: the finding as CONTRACT.md "Findings" shapes it (detail and evidence may name people: sealed)
    sa.Column("doc", Sealed(), nullable=False),
)
sa.Index("ix_stored_findings_division", stored.c.as_of, stored.c.division_code, stored.c.seq)


@dataclass(frozen=True)
class Run:
    as_of: date
    computed_at: datetime
    casefacts_position: int
    head: int
    count: int


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def create(conn: Connection) -> None:
    metadata.create_all(conn)


def store_run(conn: Connection, policies: PolicyBook, as_of: date, casefacts_position: int, head: int) -> Run:
    """Run every rule over every division as of `as_of` and keep the findings (replacing that date's run), in
    the caller's transaction."""
    findings = Inspector(conn, policies, as_of, None).run(None)
    conn.execute(stored.delete().where(stored.c.as_of == as_of))
    conn.execute(runs.delete().where(runs.c.as_of == as_of))
    rows = [{"as_of": as_of, "seq": n, "division_code": f.division_code, "rule": f.rule,
             "household_id": f.household_id, "label": f.label,
             "doc": _json(dict(f.as_dict(), key=f.key, raised_problem=f.raised_problem))}
            for n, f in enumerate(_ordered(findings))]
    for i in range(0, len(rows), 5000):
        conn.execute(stored.insert(), rows[i : i + 5000])
    run = Run(as_of, datetime.now(UTC), casefacts_position, head, len(rows))
    conn.execute(runs.insert().values(**run.__dict__))
    return run


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Division first, so a division's page is a range of `seq` read through the index."""
    return sorted(findings, key=lambda f: f.division_code)


def run_of(conn: Connection, as_of: date) -> Run | None:
    row = conn.execute(sa.select(runs).where(runs.c.as_of == as_of)).first()
    return None if row is None else Run(row.as_of, row.computed_at, int(row.casefacts_position), int(row.head),
                                        int(row.count))


def refresh(conn: Connection, policies: PolicyBook, as_of: date, casefacts_position: int, head: int) -> Run | None:
    """Store the run as of `as_of` again if the case facts have moved past what the stored one saw (or there is
    none); None when it is current."""
    current = run_of(conn, as_of)
    if current is not None and current.casefacts_position >= casefacts_position:
        return None
    return store_run(conn, policies, as_of, casefacts_position, head)


def latest_run(conn: Connection, on_or_before: date) -> Run | None:
    """The newest stored run as of `on_or_before` or earlier, or None."""
    day = conn.execute(sa.select(sa.func.max(runs.c.as_of)).where(runs.c.as_of <= on_or_before)).scalar()
    return None if day is None else run_of(conn, day)


def counts(conn: Connection, as_of: date, division: str | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """How many stored findings of the run as of `as_of` there are within `division`, by rule and by township
    (the first nine digits of the division code), counted in SQL."""
    where = [stored.c.as_of == as_of, within(stored.c.division_code, division)]
    by_rule = dict(conn.execute(sa.select(stored.c.rule, sa.func.count()).where(*where).group_by(stored.c.rule)).all())
    township = sa.func.substr(stored.c.division_code, 1, 9)
    by_township = dict(conn.execute(sa.select(township, sa.func.count()).where(*where).group_by(township)).all())
    return by_rule, by_township


def read(conn: Connection, as_of: date, division: str | None = None, rules: list[str] | None = None,
         limit: int | None = None, after: int | None = None) -> tuple[Run, list[dict[str, Any]], int] | None:
    """The stored run as of `as_of` (None if there is none): its findings within `division` and `rules`, a page
    of at most `limit` after the one numbered `after` (each finding carries its `seq`), and their total."""
    run = run_of(conn, as_of)
    if run is None:
        return None
    where = [stored.c.as_of == as_of, within(stored.c.division_code, division)]
    if rules:
        where.append(stored.c.rule.in_(rules))
    total = int(conn.execute(sa.select(sa.func.count()).select_from(stored).where(*where)).scalar() or 0)
    query = sa.select(stored.c.seq, stored.c.label, stored.c.doc).where(*where)
    if after is not None:
        query = query.where(stored.c.seq > after)
    query = query.order_by(stored.c.seq)
    if limit is not None:
        query = query.limit(limit)
    rows = [dict(orjson.loads(doc), label=label, seq=seq) for seq, label, doc in conn.execute(query)]
    return run, rows, total
