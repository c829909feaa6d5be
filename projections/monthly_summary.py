"""The monthly dispatch's figures kept per month (月度调度汇总), so that a page of them is a lookup.

`projections.activity.monthly_counts` groups the activity table and the problem ledger on every call; on a
large store that is most of a second. This summary holds, per month and village (division code), how many
acts of each kind fall in the month and how many problems were overdue at its last day. A county's, a
township's or a village's figures are sums of its villages' rows, so one table serves every reach.

It is refreshed from the two read models it is made of, month by month, when a month is read:

- acts: the activity rows are keyed by the event's position and only ever added, so the rows above the
  position the month last saw are added to its counts (a household's new act costs a few rows, not a
  regrouping of the month);
- overdue problems: whether a problem is overdue at a month's end depends on every act on it up to that day,
  so a month whose ledger position has moved is counted again (one grouped query for that month).

Each month's row in `monthly_summary_months` holds the positions its figures saw. A refresh takes that row
with a compare-and-set on those positions before it writes, so two readers refreshing one month at once
cannot both add the same acts: the second finds the positions moved and reads the first one's figures.

The figures are those `monthly_counts` gives for the areas, the key counties and the total (tested equal).
A key county's overdue problems are counted there through `activity_problems`, which holds every problem the
ledger holds once both read models are current (each problem's stream begins with its raising); here they are
the county's overdue problems.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from casecore.values import county_of, township_of
from projections.activity import COUNTS, activity, activity_households
from projections.divisions import within
from projections.ledger import overdue_condition, problem_ledger, state_as_of
from projections.runner import positions

OVERDUE = "problem_overdue"

metadata = sa.MetaData()

summary = sa.Table(
    "monthly_summary",
    metadata,
    sa.Column("month", sa.String(7), primary_key=True),
    sa.Column("division_code", sa.String(12), primary_key=True),
    sa.Column("kind", sa.String(24), primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
)

months = sa.Table(
    "monthly_summary_months",
    metadata,
    sa.Column("month", sa.String(7), primary_key=True),
    #: the activity rows at or below this position are counted (-1: none yet)
    sa.Column("activity_position", sa.BigInteger, nullable=False),
    #: the overdue problems were counted with the ledger at this position (-1: not yet)
    sa.Column("ledger_position", sa.BigInteger, nullable=False),
    sa.Column("refreshed_at", sa.DateTime(timezone=True)),
)

def create(conn: Connection) -> None:
    metadata.create_all(conn)


def _positions(conn: Connection) -> tuple[int, int]:
    found = dict(conn.execute(sa.select(positions.c.name, positions.c.position)
                              .where(positions.c.name.in_(("activity", "ledger")))).all())
    return int(found.get("activity", 0)), int(found.get("ledger", 0))


def refresh(engine: sa.Engine, month: str, end: date) -> None:
    """Bring one month's figures (`end`: its last day) up to the activity and ledger read models' positions;
    nothing to do when neither has moved. Runs its own transactions; when another reader is refreshing the same
    month meanwhile, this one leaves the work to it."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(months.c.activity_position, months.c.ledger_position)
                           .where(months.c.month == month)).first()
        now_activity, now_ledger = _positions(conn)
    if row is None:
        try:
            with engine.begin() as conn:
                conn.execute(months.insert().values(month=month, activity_position=-1, ledger_position=-1))
        except sa.exc.IntegrityError:  # another reader made the row first; the compare-and-set below decides
            pass
        row = (-1, -1)
    seen_activity, seen_ledger = int(row[0]), int(row[1])
    if (seen_activity, seen_ledger) == (now_activity, now_ledger):
        return
    with engine.begin() as conn:
        # the compare-and-set: whoever moves the month's positions first does the work
        taken = conn.execute(months.update()
                             .where(months.c.month == month, months.c.activity_position == seen_activity,
                                    months.c.ledger_position == seen_ledger)
                             .values(activity_position=now_activity, ledger_position=now_ledger,
                                     refreshed_at=datetime.now(UTC))).rowcount
        if taken != 1:
            return
        if seen_activity < 0 or now_activity < seen_activity or now_ledger < seen_ledger:
            # never counted (rows left by a month whose row was removed go too), or a read model started again
            # from the beginning: count the month afresh
            conn.execute(summary.delete().where(summary.c.month == month))
            seen_activity, seen_ledger = -1, -1
        if now_activity != seen_activity:
            _add_acts(conn, month, seen_activity, now_activity)
        if now_ledger != seen_ledger:
            _count_overdue(conn, month, end)


def _add_acts(conn: Connection, month: str, above: int, upto: int) -> None:
    a = activity.c
    added = conn.execute(
        sa.select(a.division_code, a.kind, sa.func.count())
        .where(a.month == month, a.position > above, a.position <= upto)
        .group_by(a.division_code, a.kind)).all()
    if not added:
        return
    keys = {(d, k) for d, k, _ in added}
    have = {(d, k): n for d, k, n in conn.execute(
        sa.select(summary.c.division_code, summary.c.kind, summary.c.n)
        .where(summary.c.month == month,
               summary.c.division_code.in_(sorted({d for d, _ in keys}))))
        if (d, k) in keys}
    updates = [{"m": month, "d": d, "k": k, "n": have[(d, k)] + n} for d, k, n in added if (d, k) in have]
    inserts = [{"month": month, "division_code": d, "kind": k, "n": n} for d, k, n in added if (d, k) not in have]
    if updates:
        s = summary.c
        conn.execute(summary.update()
                     .where(s.month == sa.bindparam("m"), s.division_code == sa.bindparam("d"),
                            s.kind == sa.bindparam("k"))
                     .values(n=sa.bindparam("n")), updates)
    if inserts:
        conn.execute(summary.insert(), inserts)


def _count_overdue(conn: Connection, month: str, end: date) -> None:
    conn.execute(summary.delete().where(summary.c.month == month, summary.c.kind == OVERDUE))
    p = problem_ledger.c
    state = state_as_of(end)
    rows = [{"month": month, "division_code": d, "kind": OVERDUE, "n": n} for d, n in conn.execute(
        sa.select(p.division_code, sa.func.count())
        .select_from(problem_ledger.join(state, state.c.problem_id == p.problem_id))
        .where(overdue_condition(state, end)).group_by(p.division_code))]
    if rows:
        conn.execute(summary.insert(), rows)


def _blank() -> dict[str, int]:
    return dict.fromkeys(COUNTS, 0)


def monthly_figures(conn: Connection, month: str, division: str | None = None) -> dict[str, Any]:
    """What `monthly_counts` gives for the areas, the key counties and the total, from the kept summary (the
    month refreshed first by `refresh`): {"areas": [{county_code, township_code, counts…}], "key_counties":
    […], "total": {counts…}}."""
    s = summary.c
    areas: dict[tuple[str, str], dict[str, int]] = {}
    by_county: dict[str, dict[str, int]] = {}
    for code, kind, n in conn.execute(sa.select(s.division_code, s.kind, s.n)
                                      .where(s.month == month, within(s.division_code, division))):
        area = areas.setdefault((county_of(code), township_of(code)), _blank())
        area[kind] += n
        county = by_county.setdefault(county_of(code), _blank())
        county[kind] += n
    designated = set(conn.execute(sa.select(activity_households.c.county_code).distinct()
                                  .where(activity_households.c.key_county.is_(True))).scalars())
    total = _blank()
    for counts in areas.values():
        for k, v in counts.items():
            total[k] += v
    return {
        "areas": [{"county_code": c, "township_code": t, **v} for (c, t), v in sorted(areas.items())],
        "key_counties": [{"county_code": c, **v} for c, v in sorted(by_county.items()) if c in designated],
        "total": total,
    }
