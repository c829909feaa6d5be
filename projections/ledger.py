"""双台账 — the double ledger, folded from the problems' events.

- 问题台账 `problem_ledger`: one row per problem — where, which household, kind, source, found on/by, the
  double responsibility and deadline, its status, sign-offs and counts of actions, returns and
  accountability records.
- 整改台账 `rectification_ledger`: one row per act on a problem after it was raised — each rectification
  action, the report that it is done, each sign-off and each refused sign-off, each accountability record
  and each reopening — with what, when, by whom and the evidence.

Overdue days are not stored: they depend on the date asked about, so `problem_rows(as_of=…)` computes them
from the deadline and the closing date (`casecore.problem.overdue_days`). A batch is folded set-based: the
problem rows it touches are loaded once, changed in memory in log order, and written back with one
executemany for updates and one for inserts; rectification rows are appended with one executemany.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from casecore import limits as lim
from casecore.events import EVENT_TYPES, CaseEvent
from casecore.problem import Problem, overdue_days
from casecore.streams import PROBLEM_PREFIX
from casecore.values import county_of, township_of
from casecore.vocabulary import LEDGER_ENTRY_LABELS
from projections.dispatch import Handlers
from projections.divisions import within
from projections.runner import Projection, rows_by_key, upsert
from projections.sealing import Sealed

metadata = sa.MetaData()

problem_ledger = sa.Table(
    "problem_ledger",
    metadata,
    sa.Column("problem_id", sa.String(lim.ID_MAX), primary_key=True),
    sa.Column("division_code", sa.String(12), nullable=False),
    sa.Column("county_code", sa.String(6), nullable=False),
    sa.Column("township_code", sa.String(9), nullable=False),
    sa.Column("household_id", sa.String(lim.ID_MAX)),
    sa.Column("kind", sa.String(48), nullable=False),
    sa.Column("source", sa.String(24), nullable=False),
    sa.Column("detail", Sealed()),
    sa.Column("finding_key", sa.String(lim.FINDING_KEY_MAX)),
    sa.Column("found_on", sa.Date, nullable=False),
    sa.Column("found_by_id", sa.String(lim.ID_MAX)),
    sa.Column("found_by_name", Sealed("text", lim.NAME_MAX)),
    sa.Column("found_by_role", sa.String(16)),
    sa.Column("found_by_unit", sa.String(lim.UNIT_MAX)),
    sa.Column("responsible_unit", sa.String(lim.UNIT_MAX)),
    sa.Column("responsible_person", sa.String(lim.ID_MAX)),
    sa.Column("responsible_name", Sealed("text", lim.NAME_MAX)),
    sa.Column("supervisor_unit", sa.String(lim.UNIT_MAX)),
    sa.Column("supervisor_person", sa.String(lim.ID_MAX)),
    sa.Column("supervisor_name", Sealed("text", lim.NAME_MAX)),
    sa.Column("assigned_on", sa.Date),
    sa.Column("deadline", sa.Date),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("actions", sa.Integer, nullable=False),
    sa.Column("last_action_on", sa.Date),
    sa.Column("reported_on", sa.Date),
    sa.Column("responsible_signed_on", sa.Date),
    sa.Column("responsible_signed_by", sa.String(lim.ID_MAX)),
    sa.Column("supervisor_signed_on", sa.Date),
    sa.Column("supervisor_signed_by", sa.String(lim.ID_MAX)),
    sa.Column("closed_on", sa.Date),
    sa.Column("rejections", sa.Integer, nullable=False),
    sa.Column("accountability", sa.Integer, nullable=False),
    sa.Column("reopened", sa.Integer, nullable=False),
    sa.Column("last_event_on", sa.Date),
    sa.Column("version", sa.Integer, nullable=False),
)
sa.Index("ix_problem_ledger_division", problem_ledger.c.division_code)
sa.Index("ix_problem_ledger_deadline", problem_ledger.c.deadline)

rectification_ledger = sa.Table(
    "rectification_ledger",
    metadata,
    sa.Column("problem_id", sa.String(lim.ID_MAX), primary_key=True),
    #: the event's version in the problem's stream: the acts of one problem in order
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("division_code", sa.String(12), nullable=False),
    sa.Column("entry", sa.String(24), nullable=False),
    sa.Column("party", sa.String(16)),
    sa.Column("acted_on", sa.Date, nullable=False),
    sa.Column("actor_id", sa.String(lim.ID_MAX)),
    sa.Column("actor_name", Sealed("text", lim.NAME_MAX)),
    sa.Column("actor_role", sa.String(16)),
    sa.Column("actor_unit", sa.String(lim.UNIT_MAX)),
    sa.Column("content", Sealed()),
    #: the persons named: the two parties of an assignment, those held to account ("unit person; unit person")
    sa.Column("persons", Sealed()),
    sa.Column("overdue_days", sa.Integer),
    sa.Column("evidence", Sealed()),
    #: the problem's status and deadline after the act: the ledger as of any date is read from these
    sa.Column("status_after", sa.String(24), nullable=False),
    sa.Column("deadline", sa.Date),
)
sa.Index("ix_rectification_ledger_division", rectification_ledger.c.division_code)

#: rectification-ledger entries (整改台账 记录类型)
ENTRY_LABELS = LEDGER_ENTRY_LABELS


def _blank(problem_id: str) -> dict[str, Any]:
    row: dict[str, Any] = {c.name: None for c in problem_ledger.columns}
    row.update(problem_id=problem_id, actions=0, rejections=0, accountability=0, reopened=0, version=0)
    return row


def _persons(parties: list[dict[str, Any]]) -> str:
    """"unit name(person); …" — the named persons of the parties, as the ledger prints them."""
    out = []
    for p in parties:
        who = f"{p['name']}({p.get('person', '')})" if p.get("name") else p.get("person", "")
        out.append(f"{p.get('unit', '')} {who}".strip())
    return "; ".join(out)


class LedgerProjection(Projection):
    """问题台账 and 整改台账, folded from problem events."""

    name = "ledger"
    label = "双台账"
    metadata = metadata
    #: both ledgers' rows come from one problem's stream alone (an act's row is keyed by its version)
    stream_local = True

    def __init__(self) -> None:
        self.topics = tuple(sorted(cls.TOPIC for cls in EVENT_TYPES.get("problem", {}).values()))

    def fold(self, conn: Connection, events: list[CaseEvent]) -> None:
        ids = [e.originator_id.removeprefix(PROBLEM_PREFIX) for e in events]
        rows = rows_by_key(conn, problem_ledger, "problem_id", ids)
        existing = set(rows)
        entries: list[dict[str, Any]] = []
        for e in events:
            pid = e.originator_id.removeprefix(PROBLEM_PREFIX)
            row = rows.get(pid)
            if row is None:
                row = rows[pid] = _blank(pid)
            row["version"] = e.originator_version
            row["last_event_on"] = e.on
            if hasattr(e, "status"):
                row["status"] = e.status
            handler = handles.get(e)
            if handler is not None:
                entry = handler(row, e)
                if entry is not None:
                    entries.append(entry)
        upsert(conn, problem_ledger, "problem_id", rows, existing)
        if entries:
            conn.execute(rectification_ledger.insert(), entries)


#: what each problem event changes in its problem's row, and the rectification-ledger row it adds (if any)
Handler = Callable[[dict[str, Any], Any], "dict[str, Any] | None"]
handles: Handlers[Handler] = Handlers()


@handles(Problem.Raised)
def _raised(row: dict[str, Any], e: Problem.Raised) -> None:
    row.update(division_code=e.division_code, county_code=county_of(e.division_code),
               township_code=township_of(e.division_code), household_id=e.household_id, kind=e.kind,
               source=e.source, detail=e.detail, finding_key=e.finding_key, found_on=e.on,
               found_by_id=e.actor.get("id"), found_by_name=e.actor.get("name"),
               found_by_role=e.actor.get("role"), found_by_unit=e.actor.get("unit"), status="raised")


@handles(Problem.ResponsibilityAssigned)
def _assigned(row: dict[str, Any], e: Problem.ResponsibilityAssigned) -> dict[str, Any]:
    row.update(responsible_unit=e.responsible.get("unit"), responsible_person=e.responsible.get("person"),
               responsible_name=e.responsible.get("name"), supervisor_unit=e.supervisor.get("unit"),
               supervisor_person=e.supervisor.get("person"), supervisor_name=e.supervisor.get("name"),
               deadline=e.deadline, assigned_on=e.on)
    return _entry(row, e, "assigned", f"整改时限 {e.deadline.isoformat()}", _persons([e.responsible, e.supervisor]))


@handles(Problem.RectificationRecorded)
def _recorded(row: dict[str, Any], e: Problem.RectificationRecorded) -> dict[str, Any]:
    row.update(actions=row["actions"] + 1, last_action_on=e.on)
    return _entry(row, e, "rectification", e.action)


@handles(Problem.RectificationReported)
def _reported(row: dict[str, Any], e: Problem.RectificationReported) -> dict[str, Any]:
    row["reported_on"] = e.on
    return _entry(row, e, "reported", e.note or "报告整改完成")


@handles(Problem.SignedOff)
def _signed_off(row: dict[str, Any], e: Problem.SignedOff) -> dict[str, Any]:
    row[f"{e.party}_signed_on"] = e.on
    row[f"{e.party}_signed_by"] = e.actor.get("id")
    if e.status == "closed":
        row["closed_on"] = e.on
    return _entry(row, e, "signed_off", "监督方销号, 问题销号" if e.status == "closed" else "责任方销号")


@handles(Problem.SignOffRejected)
def _rejected(row: dict[str, Any], e: Problem.SignOffRejected) -> dict[str, Any]:
    row.update(rejections=row["rejections"] + 1, reported_on=None, responsible_signed_on=None,
               responsible_signed_by=None, supervisor_signed_on=None, supervisor_signed_by=None)
    return _entry(row, e, "rejected", e.reason)


@handles(Problem.HeldAccountable)
def _held_accountable(row: dict[str, Any], e: Problem.HeldAccountable) -> dict[str, Any]:
    row["accountability"] = row["accountability"] + 1
    return _entry(row, e, "accountability", e.reason, _persons(e.parties), late=e.overdue_days)


@handles(Problem.Reopened)
def _reopened(row: dict[str, Any], e: Problem.Reopened) -> dict[str, Any]:
    row.update(reopened=row["reopened"] + 1, accountability=row["accountability"] + 1, deadline=e.deadline,
               closed_on=None, reported_on=None, responsible_signed_on=None, responsible_signed_by=None,
               supervisor_signed_on=None, supervisor_signed_by=None)
    return _entry(row, e, "reopened", e.reason, _persons(e.parties), party=e.accountable_party)


def _entry(row: dict[str, Any], e: Any, entry: str, content: str | None, persons: str | None = None,
           late: int | None = None, party: str | None = None) -> dict[str, Any]:
    """The rectification-ledger row of an act (`row`: its problem's row after the act)."""
    return {
        "problem_id": row["problem_id"],
        "seq": e.originator_version,
        "division_code": row["division_code"],
        "entry": entry,
        "party": party if party is not None else getattr(e, "party", None),
        "acted_on": e.on,
        "actor_id": e.actor.get("id"),
        "actor_name": e.actor.get("name"),
        "actor_role": e.actor.get("role"),
        "actor_unit": e.actor.get("unit"),
        "content": content,
        "persons": persons,
        "overdue_days": late,
        "evidence": "; ".join(e.evidence) if e.evidence else None,
        "status_after": row["status"],
        "deadline": row["deadline"],
    }


# ---------------------------------------------------------------------- queries

#: columns of the problem ledger that change as a problem goes on: read as of a date from the acts
_CHANGING = ("status", "deadline", "actions", "rejections", "accountability", "reopened", "responsible_signed_on",
             "responsible_signed_by", "supervisor_signed_on", "supervisor_signed_by", "closed_on", "reported_on",
             "last_action_on")


def state_as_of(as_of: date, division: str | None = None, problem_ids: Sequence[str] | None = None
                ) -> sa.Subquery:
    """Each problem's state on `as_of`, from the acts on or before it (set-based: one GROUP BY and a join):
    problem_id, status, deadline, closed_on and the counts of actions, rejections, accountability records and
    reopenings. A problem with no act by then is `raised` without a deadline. `division` (a prefix) and
    `problem_ids` narrow the problems (and so the acts grouped) to those asked about: one page of the ledger
    groups only its own problems' acts."""
    r = rectification_ledger.c
    narrow = [within(r.division_code, division)] if division else []
    if problem_ids is not None:
        narrow.append(r.problem_id.in_(problem_ids))
    last = (
        sa.select(
            r.problem_id,
            sa.func.max(r.seq).label("last_seq"),
            sa.func.sum(sa.case((r.entry == "rectification", 1), else_=0)).label("actions"),
            sa.func.max(sa.case((r.entry == "rectification", r.acted_on))).label("last_action_on"),
            sa.func.sum(sa.case((r.entry == "rejected", 1), else_=0)).label("rejections"),
            sa.func.sum(sa.case((r.entry.in_(("accountability", "reopened")), 1), else_=0)).label("accountability"),
            sa.func.sum(sa.case((r.entry == "reopened", 1), else_=0)).label("reopened"),
            sa.func.max(sa.case((r.entry == "reported", r.acted_on))).label("reported_on"),
            sa.func.max(sa.case((sa.and_(r.entry == "signed_off", r.party == "responsible"), r.acted_on)))
            .label("responsible_signed_on"),
            sa.func.max(sa.case((sa.and_(r.entry == "signed_off", r.party == "supervisor"), r.acted_on)))
            .label("supervisor_signed_on"),
        )
        .where(r.acted_on <= as_of, *narrow)
        .group_by(r.problem_id)
        .subquery("acts")
    )
    at = rectification_ledger.alias("at_last")
    status = sa.func.coalesce(at.c.status_after, "raised")
    return (
        sa.select(
            problem_ledger.c.problem_id,
            status.label("status"),
            at.c.deadline.label("deadline"),
            sa.case((status == "closed", last.c.supervisor_signed_on)).label("closed_on"),
            sa.func.coalesce(last.c.actions, 0).label("actions"),
            last.c.last_action_on,
            sa.func.coalesce(last.c.rejections, 0).label("rejections"),
            sa.func.coalesce(last.c.accountability, 0).label("accountability"),
            sa.func.coalesce(last.c.reopened, 0).label("reopened"),
            last.c.reported_on,
            last.c.responsible_signed_on,
            last.c.supervisor_signed_on,
        )
        .select_from(
            problem_ledger.outerjoin(last, last.c.problem_id == problem_ledger.c.problem_id)
            .outerjoin(at, sa.and_(at.c.problem_id == last.c.problem_id, at.c.seq == last.c.last_seq))
        )
        .where(problem_ledger.c.found_on <= as_of, *_narrowed(division, problem_ids))
        .subquery("state")
    )


def _narrowed(division: str | None, problem_ids: Sequence[str] | None) -> list[sa.ColumnElement[bool]]:
    p = problem_ledger.c
    out = [within(p.division_code, division)] if division else []
    if problem_ids is not None:
        out.append(p.problem_id.in_(problem_ids))
    return out


def overdue_condition(state: sa.Subquery, as_of: date) -> sa.ColumnElement[bool]:
    """SQL over `state_as_of(as_of)`: not closed by its deadline, as of `as_of` (the rule of `overdue_days`)."""
    return sa.and_(state.c.status != "closed", state.c.deadline.is_not(None), state.c.deadline < as_of)


#: the problem ledger's order: by division, then the day each problem was found
LEDGER_ORDER = (problem_ledger.c.division_code, problem_ledger.c.found_on, problem_ledger.c.problem_id)


def problem_rows(conn: Connection, as_of: date, division: str | None = None) -> list[dict[str, Any]]:
    """The problem ledger as it stood on `as_of`: problems found on or before it (in `division`, a
    division-code prefix), with their status, deadline, sign-offs and counts as of that day, and
    `overdue_days` / `overdue` computed for it."""
    state = state_as_of(as_of)
    p = problem_ledger.c
    fixed = [c for c in problem_ledger.columns if c.name not in _CHANGING]
    changing = [state.c[name] for name in _CHANGING if name in state.c]
    query = sa.select(*fixed, *changing).select_from(
        problem_ledger.join(state, state.c.problem_id == p.problem_id))
    if division:
        query = query.where(within(p.division_code, division))
    query = query.order_by(*LEDGER_ORDER)
    return [_as_of(dict(r), as_of) for r in conn.execute(query).mappings()]


@dataclass(frozen=True)
class LedgerPage:
    """One page of the problem ledger as of a date: its rows, how many rows all its pages hold together, and
    the key of its last row when more follow (the next page starts after it)."""

    rows: list[dict[str, Any]]
    total: int
    next_key: tuple[str, date, str] | None


def problem_page(conn: Connection, as_of: date, division: str | None = None, *, limit: int | None,
                 after: tuple[str, date, str] | None = None, offset: int = 0,
                 overdue_only: bool = False) -> LedgerPage:
    """At most `limit` rows (None: all) of `problem_rows(conn, as_of, division)`, in its order: those after
    the row keyed `after` (division code, found on, problem id) or, without it, from `offset`; with
    `overdue_only`, only the problems overdue on `as_of`. The rows are those `problem_rows` gives, field for
    field. Without `overdue_only` the page is chosen from the ledger's fixed columns (an index range) and only
    its own problems' acts are grouped; overdue needs every problem's state in the division."""
    p = problem_ledger.c
    where = [p.found_on <= as_of, *_narrowed(division, None)]
    if after is not None:
        where.append(sa.tuple_(*LEDGER_ORDER) > sa.tuple_(*(sa.bindparam(None, v, type_=c.type)
                                                             for c, v in zip(LEDGER_ORDER, after, strict=True))))
    if overdue_only:
        state = state_as_of(as_of, division)
        joined = problem_ledger.join(state, state.c.problem_id == p.problem_id)
        late = overdue_condition(state, as_of)
        total = conn.execute(sa.select(sa.func.count()).select_from(joined)
                             .where(late, *_narrowed(division, None))).scalar_one()
        ids = list(conn.execute(sa.select(p.problem_id).select_from(joined).where(late, *where)
                                .order_by(*LEDGER_ORDER).limit(_plus_one(limit)).offset(offset)).scalars())
    else:
        total = conn.execute(sa.select(sa.func.count()).select_from(problem_ledger)
                             .where(p.found_on <= as_of, *_narrowed(division, None))).scalar_one()
        ids = list(conn.execute(sa.select(p.problem_id).where(*where).order_by(*LEDGER_ORDER)
                                .limit(_plus_one(limit)).offset(offset)).scalars())
    more = limit is not None and len(ids) > limit
    ids = ids[:limit]
    rows: list[dict[str, Any]] = []
    if ids:
        # a page's problems by their ids; every problem after a key, by the division (not thousands of ids)
        state = state_as_of(as_of, division, ids if limit is not None else None)
        fixed = [c for c in problem_ledger.columns if c.name not in _CHANGING]
        changing = [state.c[name] for name in _CHANGING if name in state.c]
        query = (sa.select(*fixed, *changing)
                 .select_from(problem_ledger.join(state, state.c.problem_id == p.problem_id))
                 .order_by(*LEDGER_ORDER))
        wanted = set(ids)
        rows = [_as_of(dict(r), as_of) for r in conn.execute(query).mappings() if r["problem_id"] in wanted]
    last = rows[-1] if more and rows else None
    return LedgerPage(rows, int(total), (last["division_code"], last["found_on"], last["problem_id"]) if last else None)


def _plus_one(limit: int | None) -> int | None:
    """One row more than a page: whether another page follows."""
    return None if limit is None else limit + 1


def _as_of(row: dict[str, Any], as_of: date) -> dict[str, Any]:
    """A problem ledger row joined with its state on `as_of`, as the ledger shows it that day."""
    status = row["status"]
    signed = status in ("responsible_signed", "closed")
    # who signed: only while the sign-off stands on that day (a later return or reopening clears it)
    row["responsible_signed_on"] = row["responsible_signed_on"] if signed else None
    row["supervisor_signed_on"] = row["supervisor_signed_on"] if status == "closed" else None
    row["reported_on"] = row["reported_on"] if status in ("reported", "responsible_signed", "closed") else None
    # a sign-off stands only when made by the party's named person (the aggregate refuses anyone else)
    row["responsible_signed_by"] = row["responsible_person"] if row["responsible_signed_on"] else None
    row["supervisor_signed_by"] = row["supervisor_person"] if row["supervisor_signed_on"] else None
    row["overdue_days"] = overdue_days(row["deadline"], row["closed_on"], as_of)
    row["overdue"] = row["overdue_days"] > 0
    return row


def rectification_rows(conn: Connection, as_of: date, division: str | None = None,
                       problem_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The rectification ledger: every act on or before `as_of` (of the problems `problem_ids` when given),
    problem by problem in order."""
    query = sa.select(rectification_ledger).where(rectification_ledger.c.acted_on <= as_of)
    if division:
        query = query.where(within(rectification_ledger.c.division_code, division))
    if problem_ids is not None:
        query = query.where(rectification_ledger.c.problem_id.in_(problem_ids))
    query = query.order_by(rectification_ledger.c.division_code, rectification_ledger.c.problem_id,
                           rectification_ledger.c.seq)
    return [dict(r) for r in conn.execute(query).mappings()]
