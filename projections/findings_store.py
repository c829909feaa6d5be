"""Findings kept, not recomputed per request: an inspection run stored with the date it was run as of, when
it was computed and the positions it saw (the case facts' and the log's head), read back by division and rule
in milliseconds.

A run is stored whole in one transaction (its rows for that date replaced), so a reader sees the previous run
or the new one. `refresh` runs the inspection again only when the case facts have moved past the position the
stored run saw — `casecore inspect --store --every SECONDS` does that on the operator's schedule, and as the
date moves on it stores the new day's run. The rules themselves live in `projections.queries.inspector`.

A refresh of the same date recomputes only what changed: the households with events since the stored run's
case-facts position (a problem's events count for its household), and every finding of no household. Every
rule's result for a household, as of a fixed date, depends only on that household's facts (and the policy),
so the other households' stored findings stand; the refreshed run equals a full one, row for row and in the
same order (tested). Everything is recomputed when there is no run for the date yet — a new as-of date,
including the next day of `--every`: the rules that read the date itself (a deadline or a time limit passing:
helped_not, slow_identification, no_responsible_cadre, rectification_overdue, and every rule that compares a
fact's date with the as-of date) change with time alone — when the policy files changed since the stored run
(`findings_basis` keeps their digest), or when more households changed than a restricted run is worth.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from casecore import limits as lim
from casecore.policy import PolicyBook
from projections.divisions import within
from projections.queries.inspector import Finding, Inspector
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

#: what a stored run was computed with beside the positions: the digest of the policy versions
basis = sa.Table(
    "findings_basis", metadata,
    sa.Column("as_of", sa.Date, primary_key=True),
    sa.Column("policy_digest", sa.String(64), nullable=False),
)

#: a refresh with more changed households than this runs every household (a restricted run is no cheaper)
INCREMENTAL_MAX_HOUSEHOLDS = 5000


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


def policy_digest(policies: PolicyBook) -> str:
    """A digest of every policy version's content: a stored run computed under other policy files is stale."""
    text = "\n".join(p.model_dump_json() for p in policies.policies)
    return hashlib.sha256(text.encode()).hexdigest()


def store_run(conn: Connection, policies: PolicyBook, as_of: date, casefacts_position: int, head: int,
              readers: Sequence[Connection] = ()) -> Run:
    """Run every rule over every division as of `as_of` and keep the findings (replacing that date's run), in
    the caller's transaction. The rules read through `readers` (connections on one snapshot, the rules shared
    out among them; `conn` when none)."""
    findings = _inspector(conn, readers, policies, as_of).run(None, readers[1:])
    conn.execute(stored.delete().where(stored.c.as_of == as_of))
    _insert(conn, as_of, findings, 0)
    return _record(conn, policies, as_of, casefacts_position, head, len(findings))


def store_changed(conn: Connection, policies: PolicyBook, as_of: date, households: Iterable[str],
                  casefacts_position: int, head: int, readers: Sequence[Connection] = ()) -> Run:
    """Recompute the stored run as of `as_of` for `households` (and the findings of no household) only: their
    rows are replaced, the others kept, and the run renumbered in the order a full run stores it."""
    wanted = sorted(set(households))
    findings = _inspector(conn, readers, policies, as_of, wanted).run(None, readers[1:])
    conn.execute(stored.delete().where(stored.c.as_of == as_of, stored.c.household_id.is_(None)))
    for i in range(0, len(wanted), 500):
        conn.execute(stored.delete().where(stored.c.as_of == as_of,
                                           stored.c.household_id.in_(wanted[i : i + 500])))
    top = conn.execute(sa.select(sa.func.max(stored.c.seq)).where(stored.c.as_of == as_of)).scalar()
    _insert(conn, as_of, findings, 0 if top is None else int(top) + 1)
    _renumber(conn, as_of)
    count = int(conn.execute(sa.select(sa.func.count()).select_from(stored).where(stored.c.as_of == as_of))
                .scalar() or 0)
    return _record(conn, policies, as_of, casefacts_position, head, count)


def _inspector(conn: Connection, readers: Sequence[Connection], policies: PolicyBook, as_of: date,
               households: list[str] | None = None) -> Inspector:
    return Inspector(readers[0] if readers else conn, policies, as_of, None, households=households)


def _insert(conn: Connection, as_of: date, findings: list[Finding], first: int) -> None:
    rows = [{"as_of": as_of, "seq": first + n, "division_code": f.division_code, "rule": f.rule,
             "household_id": f.household_id, "label": f.label,
             "doc": _json(dict(f.as_dict(), key=f.key, raised_problem=f.raised_problem))}
            for n, f in enumerate(_ordered(findings))]
    for i in range(0, len(rows), 5000):
        conn.execute(stored.insert(), rows[i : i + 5000])


def _record(conn: Connection, policies: PolicyBook, as_of: date, casefacts_position: int, head: int,
            count: int) -> Run:
    conn.execute(runs.delete().where(runs.c.as_of == as_of))
    conn.execute(basis.delete().where(basis.c.as_of == as_of))
    run = Run(as_of, datetime.now(UTC), casefacts_position, head, count)
    conn.execute(runs.insert().values(**run.__dict__))
    conn.execute(basis.insert().values(as_of=as_of, policy_digest=policy_digest(policies)))
    return run


def _renumber(conn: Connection, as_of: date) -> None:
    """Number a date's findings 0, 1, … in the order a full run stores them: by division, household (none
    first), rule, then as they were numbered (a household's findings of one rule are all kept or all new, so
    their own order — by cycle — stands). Python's string order is the code points': "C" on PostgreSQL."""
    collate = ' COLLATE "C"' if conn.dialect.name == "postgresql" else ""
    order = f"division_code{collate}, COALESCE(household_id, ''){collate}, rule{collate}, seq"
    day = sa.bindparam("as_of", as_of, type_=sa.Date)
    # through negative numbers: the key (as_of, seq) stays unique at every row
    conn.execute(sa.text(
        f"UPDATE stored_findings SET seq = -1 - r.n FROM (SELECT seq AS old, "
        f"row_number() OVER (ORDER BY {order}) - 1 AS n FROM stored_findings WHERE as_of = :as_of) AS r "
        f"WHERE stored_findings.as_of = :as_of AND stored_findings.seq = r.old").bindparams(day))
    conn.execute(sa.text("UPDATE stored_findings SET seq = -1 - seq WHERE as_of = :as_of").bindparams(day))


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Division first, so a division's page is a range of `seq` read through the index."""
    return sorted(findings, key=lambda f: f.division_code)


def run_of(conn: Connection, as_of: date) -> Run | None:
    row = conn.execute(sa.select(runs).where(runs.c.as_of == as_of)).first()
    return None if row is None else Run(row.as_of, row.computed_at, int(row.casefacts_position), int(row.head),
                                        int(row.count))


#: changed(after, up_to): the household ids and problem ids with events in positions (after, up_to]
Changed = Callable[[int, int], tuple[set[str], set[str]]]


def refresh(conn: Connection, policies: PolicyBook, as_of: date, casefacts_position: int, head: int,
            changed: Changed | None = None, readers: Sequence[Connection] = ()) -> Run | None:
    """Store the run as of `as_of` again if the case facts have moved past what the stored one saw (or there is
    none); None when it is current. With `changed`, only the households whose events arrived since are
    recomputed (`store_changed`), unless the whole run must be (see the module's docstring). The rules read
    through `readers` when given (`store_run`)."""
    current = run_of(conn, as_of)
    if current is not None and current.casefacts_position >= casefacts_position:
        return None
    if current is None or changed is None or conn.execute(
            sa.select(basis.c.policy_digest).where(basis.c.as_of == as_of)).scalar() != policy_digest(policies):
        return store_run(conn, policies, as_of, casefacts_position, head, readers)
    households, problems = changed(current.casefacts_position, casefacts_position)
    households |= _households_of_problems(conn, problems)
    if len(households) > INCREMENTAL_MAX_HOUSEHOLDS:
        return store_run(conn, policies, as_of, casefacts_position, head, readers)
    return store_changed(conn, policies, as_of, households, casefacts_position, head, readers)


def _households_of_problems(conn: Connection, problems: set[str]) -> set[str]:
    from projections import casefacts as cf

    p = cf.problems
    wanted = sorted(problems)
    found: set[str] = set()
    for i in range(0, len(wanted), 500):
        found |= {h for (h,) in conn.execute(sa.select(p.c.household_id).where(
            p.c.problem_id.in_(wanted[i : i + 500]), p.c.household_id.is_not(None)))}
    return found


def streams_between(select_notifications: Callable[..., Any], after: int, up_to: int) -> tuple[set[str], set[str]]:
    """The household and problem ids with events in positions (after, up_to], read from the log (the
    recorder's `select_notifications`) a page at a time."""
    households: set[str] = set()
    problems: set[str] = set()
    start = after
    while start < up_to:
        page = select_notifications(start=start, limit=10_000, stop=up_to, inclusive_of_start=False)
        for n in page:
            kind, _, stream = str(n.originator_id).partition("/")
            if kind == "household":
                households.add(stream)
            elif kind == "problem":
                problems.add(stream)
        if len(page) < 10_000:
            break
        start = page[-1].id
    return households, problems


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
