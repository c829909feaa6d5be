"""Activity (一月一调度一通报): one row per act the monthly dispatch counts, ready to GROUP BY month, area and kind.

Kinds: `lead` (线索), `inclusion` (纳入监测: the household entered into the system), `exit` (风险消除),
`measure_implemented` (帮扶措施落实), `problem_raised` (发现问题), `problem_closed` (问题销号), `accountability`
(问责, including the accountability against both parties when a closed problem is reopened). Each row
carries its business date and month, the division code with its county and township, and the key-area
flags of the household it concerns: in a national key assistance county (国家乡村振兴重点帮扶县), relocated,
and the relocation resettlement site (易地扶贫搬迁安置点).

The flags come from the household's registration (`activity_households`, kept by this projection); a
problem carries the flags of its household, decided when it is raised (`activity_problems`); a problem
without a household is in a key county when a household registered in its county is. Writes are set-based:
one executemany per table and batch.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from casecore import limits as lim
from casecore.events import EVENT_TYPES, CaseEvent
from casecore.household import Household  # noqa: F401  (declares the household events read below)
from casecore.problem import Problem  # noqa: F401  (declares the problem events read below)
from casecore.values import county_of, township_of
from projections.divisions import within
from projections.in_database import EventSource, rebuild_activity
from projections.ledger import overdue_condition, problem_ledger, state_as_of
from projections.runner import Projection, rows_by_key, upsert

KINDS = {
    "lead": "线索",
    "inclusion": "纳入监测",
    "exit": "风险消除",
    "measure_implemented": "落实帮扶措施",
    "problem_raised": "发现问题",
    "problem_closed": "问题销号",
    "accountability": "问责",
}
#: household event type → activity kind
_HOUSEHOLD_KINDS = {
    "registered": None,  # not counted: it only gives the household's area and flags
    "lead_recorded": "lead",
    "entered_system": "inclusion",
    "risk_eliminated": "exit",
    "measure_implemented": "measure_implemented",
}
_PROBLEM_KINDS = {"raised": "problem_raised", "held_accountable": "accountability", "reopened": "accountability"}

metadata = sa.MetaData()

activity = sa.Table(
    "activity",
    metadata,
    #: the event's global position: one row per event, the same on rebuild and on catch-up
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("month", sa.String(7), nullable=False),
    sa.Column("acted_on", sa.Date, nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("division_code", sa.String(12), nullable=False),
    sa.Column("county_code", sa.String(6), nullable=False),
    sa.Column("township_code", sa.String(9), nullable=False),
    sa.Column("household_id", sa.String(lim.ID_MAX)),
    sa.Column("problem_id", sa.String(lim.ID_MAX)),
    #: what kind of lead / problem / exit / accountability (source, problem kind, exit mode, party)
    sa.Column("subtype", sa.String(48)),
    sa.Column("key_county", sa.Boolean, nullable=False),
    sa.Column("relocated", sa.Boolean, nullable=False),
    sa.Column("resettlement_site", sa.String(lim.SITE_MAX)),
)
sa.Index("ix_activity_month_division", activity.c.month, activity.c.division_code)

activity_households = sa.Table(
    "activity_households",
    metadata,
    sa.Column("household_id", sa.String(lim.ID_MAX), primary_key=True),
    sa.Column("division_code", sa.String(12), nullable=False),
    sa.Column("county_code", sa.String(6), nullable=False),
    sa.Column("key_county", sa.Boolean, nullable=False),
    sa.Column("relocated", sa.Boolean, nullable=False),
    sa.Column("resettlement_site", sa.String(lim.SITE_MAX)),
)
sa.Index("ix_activity_households_county", activity_households.c.county_code, activity_households.c.key_county)

activity_problems = sa.Table(
    "activity_problems",
    metadata,
    sa.Column("problem_id", sa.String(lim.ID_MAX), primary_key=True),
    sa.Column("division_code", sa.String(12), nullable=False),
    sa.Column("household_id", sa.String(lim.ID_MAX)),
    sa.Column("key_county", sa.Boolean, nullable=False),
    sa.Column("relocated", sa.Boolean, nullable=False),
    sa.Column("resettlement_site", sa.String(lim.SITE_MAX)),
)


def _sid(e: Any, prefix: str) -> str:
    return e.originator_id.removeprefix(prefix)


class ActivityProjection(Projection):
    """Rows for the monthly dispatch, folded from household and problem events."""

    name = "activity"
    label = "月度调度 (办理活动)"
    metadata = metadata
    deferred_indexes = ("ix_activity_month_division", "ix_activity_households_county")

    def __init__(self) -> None:
        wanted = [EVENT_TYPES["household"][t] for t in _HOUSEHOLD_KINDS if t in EVENT_TYPES.get("household", {})]
        wanted += [EVENT_TYPES["problem"][t] for t in (*_PROBLEM_KINDS, "signed_off")]
        self.topics = tuple(sorted(cls.TOPIC for cls in wanted))

    def fold(self, conn: Connection, events: list[CaseEvent]) -> None:  # pragma: no cover - positions needed
        raise TypeError("the activity projection keys rows by position: fold it with fold_at")

    def fold_at(self, conn: Connection, events: list[CaseEvent], positions: list[int]) -> None:
        hids = {_sid(e, "household/") for e in events if e.AGGREGATE == "household"}
        pids = {_sid(e, "problem/") for e in events if e.AGGREGATE == "problem"}
        hids |= {e.household_id for e in events if type(e).TYPE == "raised" and e.AGGREGATE == "problem"
                 and e.household_id}
        households = rows_by_key(conn, activity_households, "household_id", hids)
        known_households = set(households)
        problems = rows_by_key(conn, activity_problems, "problem_id", pids)
        known_problems = set(problems)
        key_counties = self._key_counties(conn, events)
        rows: list[dict[str, Any]] = []
        for e, position in zip(events, positions, strict=True):
            if e.AGGREGATE == "household":
                hid = _sid(e, "household/")
                if type(e).TYPE == "registered":
                    households[hid] = {"household_id": hid, "division_code": e.division_code,
                                       "county_code": county_of(e.division_code), "key_county": bool(e.key_county),
                                       "relocated": bool(e.relocated), "resettlement_site": e.resettlement_site}
                    if e.key_county:
                        key_counties.add(county_of(e.division_code))
                    continue
                home = households.get(hid)
                if home is None:  # an event of a household never registered: nothing to place it by
                    continue
                subtype = getattr(e, "source", None) or getattr(e, "mode", None)
                rows.append(_row(position, e, _HOUSEHOLD_KINDS[type(e).TYPE], home, hid, None, subtype))
                continue
            pid = _sid(e, "problem/")
            kind = type(e).TYPE
            if kind == "raised":
                home = households.get(e.household_id) if e.household_id else None
                problems[pid] = {
                    "problem_id": pid,
                    "division_code": e.division_code,
                    "household_id": e.household_id,
                    "key_county": bool(home["key_county"]) if home else county_of(e.division_code) in key_counties,
                    "relocated": bool(home["relocated"]) if home else False,
                    "resettlement_site": home["resettlement_site"] if home else None,
                }
            problem = problems.get(pid)
            if problem is None:
                continue
            if kind == "signed_off":
                if e.status != "closed":
                    continue
                activity_kind, subtype = "problem_closed", None
            elif kind == "raised":
                activity_kind, subtype = "problem_raised", e.kind
            elif kind == "reopened":
                activity_kind, subtype = "accountability", "reopened"
            else:
                activity_kind, subtype = _PROBLEM_KINDS[kind], e.party
            rows.append(_row(position, e, activity_kind, problem, problem["household_id"], pid, subtype))
        upsert(conn, activity_households, "household_id",
               {k: v for k, v in households.items() if k not in known_households}, known_households)
        upsert(conn, activity_problems, "problem_id",
               {k: v for k, v in problems.items() if k not in known_problems}, known_problems)
        if rows:
            conn.execute(activity.insert(), rows)

    def rebuild_in_database(self, conn: Connection, source: EventSource, head: int) -> int | None:
        return rebuild_activity(conn, source, head, tuple(self.topics))

    @staticmethod
    def _key_counties(conn: Connection, events: list[CaseEvent]) -> set[str]:
        """Counties (of this batch's new problems) where a registered household is in a key county."""
        counties = {county_of(e.division_code) for e in events if e.AGGREGATE == "problem" and type(e).TYPE == "raised"}
        if not counties:
            return set()
        q = (sa.select(activity_households.c.county_code).distinct()
             .where(activity_households.c.county_code.in_(counties), activity_households.c.key_county.is_(True)))
        return {r[0] for r in conn.execute(q)}


def _row(position: int, e: Any, kind: str, place: dict[str, Any], household_id: str | None,
         problem_id: str | None, subtype: str | None) -> dict[str, Any]:
    code = place["division_code"]
    return {
        "position": position,
        "month": e.on.strftime("%Y-%m"),
        "acted_on": e.on,
        "kind": kind,
        "division_code": code,
        "county_code": county_of(code),
        "township_code": township_of(code),
        "household_id": household_id,
        "problem_id": problem_id,
        "subtype": subtype,
        "key_county": bool(place["key_county"]),
        "relocated": bool(place["relocated"]),
        "resettlement_site": place["resettlement_site"],
    }


# ---------------------------------------------------------------------- the monthly dispatch


#: the counts of a dispatch row, in the order a report shows them
COUNTS = ("lead", "inclusion", "exit", "measure_implemented", "problem_raised", "problem_closed", "problem_overdue",
          "accountability")


def _blank_counts() -> dict[str, int]:
    return dict.fromkeys(COUNTS, 0)


def monthly_counts(conn: Connection, month_start: date, month_end: date,
                   division: str | None = None) -> dict[str, Any]:
    """Counts for one month, per county and township and per key area (GROUP BY in SQL).

    Acts count in the month of their business date; `problem_overdue` counts the problems not closed by
    their deadline as of the month's last day (from the problem ledger, whichever month they were found).
    Returns {"areas": [{county_code, township_code, counts…}], "key_counties": […], "resettlement_sites": […],
    "total": {counts…}}.
    """
    a = activity.c
    in_month = sa.and_(a.acted_on >= month_start, a.acted_on <= month_end)
    if division:
        in_month = sa.and_(in_month, within(a.division_code, division))
    p = problem_ledger.c
    state = state_as_of(month_end)
    overdue = overdue_condition(state, month_end)
    if division:
        overdue = sa.and_(overdue, within(p.division_code, division))
    with_state = problem_ledger.join(state, state.c.problem_id == p.problem_id)

    areas: dict[tuple[str, str], dict[str, int]] = {}
    for county, township, kind, n in conn.execute(
        sa.select(a.county_code, a.township_code, a.kind, sa.func.count())
        .where(in_month).group_by(a.county_code, a.township_code, a.kind)
    ):
        areas.setdefault((county, township), _blank_counts())[kind] = n
    for county, township, n in conn.execute(
        sa.select(p.county_code, p.township_code, sa.func.count()).select_from(with_state).where(overdue)
        .group_by(p.county_code, p.township_code)
    ):
        areas.setdefault((county, township), _blank_counts())["problem_overdue"] = n

    # a national key assistance county is a county: every act in it counts, whatever each household's own
    # record says (imported histories do not carry the flag)
    designated = (sa.select(activity_households.c.county_code).distinct()
                  .where(activity_households.c.key_county.is_(True)).scalar_subquery())
    key_counties: dict[str, dict[str, int]] = {}
    for county, kind, n in conn.execute(
        sa.select(a.county_code, a.kind, sa.func.count()).where(in_month, a.county_code.in_(designated))
        .group_by(a.county_code, a.kind)
    ):
        key_counties.setdefault(county, _blank_counts())[kind] = n
    sites: dict[str, dict[str, int]] = {}
    for site, kind, n in conn.execute(
        sa.select(a.resettlement_site, a.kind, sa.func.count()).where(in_month, a.resettlement_site.is_not(None))
        .group_by(a.resettlement_site, a.kind)
    ):
        sites.setdefault(site, _blank_counts())[kind] = n
    ap = activity_problems.c
    joined = with_state.join(activity_problems, ap.problem_id == p.problem_id)
    for county, n in conn.execute(
        sa.select(p.county_code, sa.func.count()).select_from(joined).where(overdue, p.county_code.in_(designated))
        .group_by(p.county_code)
    ):
        key_counties.setdefault(county, _blank_counts())["problem_overdue"] = n
    for site, n in conn.execute(
        sa.select(ap.resettlement_site, sa.func.count()).select_from(joined)
        .where(overdue, ap.resettlement_site.is_not(None)).group_by(ap.resettlement_site)
    ):
        sites.setdefault(site, _blank_counts())["problem_overdue"] = n

    total = _blank_counts()
    for counts in areas.values():
        for k, v in counts.items():
            total[k] += v
    return {
        "areas": [{"county_code": c, "township_code": t, **v} for (c, t), v in sorted(areas.items())],
        "key_counties": [{"county_code": c, **v} for c, v in sorted(key_counties.items())],
        "resettlement_sites": [{"resettlement_site": s, **v} for s, v in sorted(sites.items())],
        "total": total,
    }


def facts_range(conn: Connection, start: date, end: date, division: str | None = None) -> dict[str, Any]:
    """The business dates the store has acts for (first and last, under a division) and how many fall between
    `start` and `end`: a report on a month outside them can say so instead of printing zeros."""
    a = activity.c
    where = [a.division_code.startswith(division, autoescape=True)] if division else []
    first, last = conn.execute(sa.select(sa.func.min(a.acted_on), sa.func.max(a.acted_on)).where(*where)).one()
    inside = conn.execute(sa.select(sa.func.count()).where(a.acted_on >= start, a.acted_on <= end, *where))
    return {"first_on": first, "last_on": last, "in_month": int(inside.scalar_one())}


def count_between(conn: Connection, kind: str, start: date | None, end: date, division: str | None = None,
                  subtypes: tuple[str, ...] = ()) -> int:
    """How many acts of `kind` fall between two business dates (inclusive): the campaign milestones use it."""
    a = activity.c
    q = sa.select(sa.func.count()).where(a.kind == kind, a.acted_on <= end)
    if start is not None:
        q = q.where(a.acted_on >= start)
    if division:
        q = q.where(within(a.division_code, division))
    if subtypes:
        q = q.where(a.subtype.in_(subtypes))
    return int(conn.execute(q).scalar_one())


def open_problems_due_by(conn: Connection, due: date, as_of: date, division: str | None = None) -> int:
    """Problems found on or before `due` that were not closed on `as_of` (campaign: all problems rectified
    and closed by the milestone)."""
    p = problem_ledger.c
    state = state_as_of(as_of)
    q = (sa.select(sa.func.count()).select_from(problem_ledger.join(state, state.c.problem_id == p.problem_id))
         .where(p.found_on <= due, state.c.status != "closed"))
    if division:
        q = q.where(within(p.division_code, division))
    return int(conn.execute(q).scalar_one())
