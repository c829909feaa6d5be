"""Case facts (案情事实): the event log folded into tables shaped for the inspector's set-based rules.

A household's history is cut into monitoring **cycles**: a cycle starts with the lead that opens an
inclusion procedure (native history) or with an imported county decision / entry into the system that no
open procedure precedes (legacy history), and holds that cycle's dates — first lead, inclusion, exit
nomination, elimination, rollback — its category and risks. Everything the rules compare is a row:

| table | one row per |
|---|---|
| `cf_households` | household: division, type, stage, current cycle, responsible cadre (or unknown) |
| `cf_members` | member of a household — also the **person index** (citizen ID → household) for screening |
| `cf_cycles` | monitoring cycle of a household, with its dates (and ordinal day numbers for date arithmetic) |
| `cf_eliminations` | elimination (风险消除) of a cycle, with its rollback: every one, not only the latest |
| `cf_risks` | risk type of a cycle (the county's decision plus risks added by later leads) |
| `cf_measures` | measure, with the cycle it was planned in and its dates |
| `cf_incomes` / `cf_guarantees` | income / guarantee assessment (`seq` orders them: business date, then version) |
| `cf_leads` | lead, with its source, cycle and whether the household was monitored when it came |
| `cf_publicity` | closed public notice (opened, closed) of either procedure |
| `cf_backdating` | native event recorded at least a day after its business date (`lag_days`), or any event
  dated after the day it was recorded (negative `lag_days`, imported ones too) |
| `cf_signatures` | signature of a procedure's level (verify, township, county) by an actor |
| `cf_problems` | problem of the double ledger: kind, finding key, deadline, closed or not |

Dates are stored as dates (for evidence) and, where rules do arithmetic, as ordinal day numbers and month
indexes (year × 12 + month − 1), so the same SQL runs on SQLite and PostgreSQL. The fold is deterministic: a
rebuild and an incremental catch-up give the same rows.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from casecore import limits as lim
from casecore.events import CaseEvent
from casecore.household import Household
from casecore.household.state import ASSISTED_STAGES
from casecore.household.state import WITH_LABOUR as WITH_LABOUR  # the inspector reads it here
from casecore.problem import Problem
from casecore.streams import HOUSEHOLD_PREFIX, PROBLEM_PREFIX
from casecore.values import DEVELOPMENTAL_MEASURES, Housing, Procedure, SignLevel, Stage
from projections.dispatch import Handlers
from projections.roster import Money
from projections.runner import Projection, insert_rows, rows_by_key, upsert
from projections.sealing import Sealed

HOUSEHOLD = HOUSEHOLD_PREFIX
PROBLEM = PROBLEM_PREFIX
_DEVELOPMENTAL = frozenset(m.value for m in DEVELOPMENTAL_MEASURES)
_EXIT, _INCLUSION = Procedure.EXIT.value, Procedure.INCLUSION.value
#: the events that sign a level of a procedure
SIGNING: dict[type, str] = {
    Household.LeadVerified: SignLevel.VERIFY.value, Household.ExitVerified: SignLevel.VERIFY.value,
    Household.TownshipReviewed: SignLevel.TOWNSHIP.value, Household.CountyDecided: SignLevel.COUNTY.value}

#: the fold's handlers by event class: household events (the common bookkeeping is done before them in
#: `_household`), problem events (after the status in `_problem`)
Handler = Callable[["CaseFactsProjection", "_Batch", str, dict[str, Any], Any], None]
on_household: Handlers[Handler] = Handlers()
on_problem: Handlers[Handler] = Handlers()

metadata = sa.MetaData()


def _key(*parts: Any) -> str:
    return "#".join(map(str, parts))


#: an assessment's `seq` is its business date's ordinal × this + the event's version (a household's stream stays
#: below a million events): ordered by date then version, and `seq < (D + 1) × SEQ_PER_DAY` is "made by D", which
#: the index on (household, seq) answers alone
SEQ_PER_DAY = 1_000_000


def _fen(amount: Any) -> int:
    """An amount in whole fen, rounded as the columns store it (half away from zero)."""
    return int((Decimal(amount) * 100).to_integral_value(ROUND_HALF_UP))


def exact_fen(net_income: Any, rigid_expenditure: Any, household_size: int | None,
              per_capita_income: Any) -> int | None:
    """An income assessment's net income less its rigid expenditure in whole fen, when that is what the
    below-the-line test compares: the net income is known, the household has members, and the per-capita figure
    (if stated) is the exact quotient rounded to the fen — |net − rigid − stated × size| ≤ half a fen a head.
    Else None: the stated figure is the income. `casecore.policy.assessed_per_capita` decides the same; the
    inspector then compares `exact_fen < line × 100 × size` in integers on both stores."""
    if net_income is None or household_size is None or household_size <= 0:
        return None
    total = _fen(net_income) - _fen(rigid_expenditure or 0)
    if per_capita_income is not None and abs(total - _fen(per_capita_income) * household_size) * 2 > household_size:
        return None
    return total


#: a key of a household's id and another id (a lead's, a measure's) joined by `_key`
_PAIR_KEY = 2 * lim.ID_MAX + 12


households = sa.Table(
    "cf_households", metadata,
    sa.Column("household_id", sa.String(lim.ID_MAX), primary_key=True),
    sa.Column("division_code", sa.String(12)),
    sa.Column("household_type", sa.String(24)),
    sa.Column("stage", sa.String(24)),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("cycle_status", sa.String(16)),
    sa.Column("registered_on", sa.Date),
    sa.Column("cadre_name", Sealed("text", lim.NAME_MAX)),
    sa.Column("cadre_on", sa.Date),
    sa.Column("cadre_ord", sa.Integer),
    # the history came from a source that does not say who the cadre is (unknown, not missing)
    sa.Column("cadre_unknown", sa.Boolean, nullable=False, default=False),
    sa.Column("imported", sa.Boolean, nullable=False),
)
sa.Index("ix_cf_households_division", households.c.division_code)

members = sa.Table(
    "cf_members", metadata,
    sa.Column("key", Sealed("text", 96), primary_key=True),  # household#person: holds the ID number
    sa.Column("household_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("person_id", Sealed("text", 18), nullable=False),
    sa.Column("name", Sealed("text", lim.NAME_MAX)),
    sa.Column("labour", sa.String(8)),
    sa.Column("added_ord", sa.Integer),
    sa.Column("removed_ord", sa.Integer),
    sa.Column("removed_on", sa.Date),
)
sa.Index("ix_cf_members_person", members.c.person_id)
#: covering the inspector's "labour on a date" probe (no table reads)
sa.Index("ix_cf_members_household", members.c.household_id, members.c.labour, members.c.added_ord,
         members.c.removed_ord)


def _inclusion_and_exit() -> list[sa.Column[Any]]:
    """The columns a cycle and each of its eliminations share: its inclusion, nomination, elimination and
    rollback, each day also as an ordinal (and month and day where an import dated it to the month)."""
    return [
        sa.Column("included_on", sa.Date),
        sa.Column("included_ord", sa.Integer),
        sa.Column("included_month", sa.Integer),
        sa.Column("included_day", sa.Integer),
        sa.Column("included_precision", sa.String(8)),
        sa.Column("nominated_on", sa.Date),
        sa.Column("nominated_ord", sa.Integer),
        sa.Column("exit_mode", sa.String(16)),
        sa.Column("eliminated_on", sa.Date),
        sa.Column("eliminated_ord", sa.Integer),
        sa.Column("eliminated_month", sa.Integer),
        sa.Column("eliminated_day", sa.Integer),
        sa.Column("eliminated_month_end", sa.Boolean),
        sa.Column("eliminated_precision", sa.String(8)),
        sa.Column("rolled_back_on", sa.Date),
        sa.Column("rolled_back_ord", sa.Integer),
    ]


cycles = sa.Table(
    "cf_cycles", metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("household_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("division_code", sa.String(12)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("origin", sa.String(lim.ORIGIN_MAX)),
    sa.Column("category", sa.String(32)),
    sa.Column("risk_types", sa.JSON, nullable=False),
    # the lead that opened the inclusion procedure (none for imported cycles)
    sa.Column("first_lead_on", sa.Date),
    sa.Column("first_lead_ord", sa.Integer),
    sa.Column("closed_on", sa.Date),
    sa.Column("closed_ord", sa.Integer),
    sa.Column("publicity_opened_on", sa.Date),
    sa.Column("publicity_closed_on", sa.Date),
    *_inclusion_and_exit(),
    # how many eliminations the cycle has had (its rows in cf_eliminations are numbered 1..n)
    sa.Column("eliminations", sa.Integer, nullable=False, server_default="0"),
)
sa.Index("ix_cf_cycles_household", cycles.c.household_id, cycles.c.cycle)

#: every elimination of a cycle, with its rollback: a cycle eliminated, rolled back and eliminated again
#: keeps both, so a rule as of a date between them sees the first (the cycle row keeps only the latest)
eliminations = sa.Table(
    "cf_eliminations", metadata,
    sa.Column("key", sa.String(96), primary_key=True),
    sa.Column("household_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("division_code", sa.String(12)),
    sa.Column("first_lead_on", sa.Date),
    sa.Column("first_lead_ord", sa.Integer),
    *_inclusion_and_exit(),
)
#: covering the inspector's "a standing elimination of the cycle" probes (no table reads)
sa.Index("ix_cf_eliminations_cycle", eliminations.c.household_id, eliminations.c.cycle, eliminations.c.eliminated_ord,
         eliminations.c.rolled_back_ord)
sa.Index("ix_cf_eliminations_eliminated", eliminations.c.eliminated_ord)
sa.Index("ix_cf_cycles_included", cycles.c.included_ord)
sa.Index("ix_cf_cycles_eliminated", cycles.c.eliminated_ord)

risks = sa.Table(
    "cf_risks", metadata,
    sa.Column("key", sa.String(120), primary_key=True),
    sa.Column("household_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("risk_type", sa.String(32), nullable=False),
)
sa.Index("ix_cf_risks_cycle", risks.c.household_id, risks.c.cycle)

measures = sa.Table(
    "cf_measures", metadata,
    sa.Column("key", sa.String(_PAIR_KEY), primary_key=True),
    sa.Column("household_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("measure_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("measure_type", sa.String(32)),
    sa.Column("developmental", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("planned_on", sa.Date),
    sa.Column("planned_ord", sa.Integer),
    sa.Column("implemented_on", sa.Date),
    sa.Column("implemented_ord", sa.Integer),
    sa.Column("ended_on", sa.Date),
    sa.Column("ended_ord", sa.Integer),
    sa.Column("origin", sa.String(lim.ORIGIN_MAX)),
)
#: covering the inspector's probes of a cycle's measures (targeted, developmental, fitting, planned: no table reads)
sa.Index("ix_cf_measures_cycle", measures.c.household_id, measures.c.cycle, measures.c.implemented_ord,
         measures.c.developmental, measures.c.measure_type, measures.c.planned_ord, measures.c.ended_ord)

incomes = sa.Table(
    "cf_incomes", metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("household_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("on", sa.Date, nullable=False),
    sa.Column("on_ord", sa.Integer, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("net_income", Money()),
    sa.Column("rigid_expenditure", Money()),
    sa.Column("household_size", sa.Integer),
    sa.Column("per_capita_income", Money()),
    # (net − rigid) in whole fen when the per-capita figure is the exact quotient's rounding (`exact_fen`), else
    # NULL: the stated figure is the income (`casecore.policy.assessed_per_capita`)
    sa.Column("exact_fen", sa.BigInteger),
    sa.Column("origin", sa.String(lim.ORIGIN_MAX)),
)
#: the newest income by a date, and what the below-the-line test reads of it, from the index alone
sa.Index("ix_cf_incomes_household", incomes.c.household_id, incomes.c.seq, incomes.c.on_ord,
         incomes.c.per_capita_income, incomes.c.household_size, incomes.c.exact_fen)

guarantees = sa.Table(
    "cf_guarantees", metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("household_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("on", sa.Date, nullable=False),
    sa.Column("on_ord", sa.Integer, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("housing", sa.String(16)),
    sa.Column("drinking_water_safe", sa.Boolean),
    sa.Column("children_out_of_school", sa.Integer, nullable=False),
    sa.Column("members_without_medical_insurance", sa.Integer, nullable=False),
    sa.Column("open_items", sa.Integer, nullable=False),
    sa.Column("origin", sa.String(lim.ORIGIN_MAX)),
)
#: the newest guarantee check by a date, and whether it left an item open, from the index alone
sa.Index("ix_cf_guarantees_household", guarantees.c.household_id, guarantees.c.seq, guarantees.c.open_items,
         guarantees.c.on_ord)
#: the checks that left an item open (a few in a hundred): the rules on open guarantees start from them
_open_check = guarantees.c.open_items > 0
sa.Index("ix_cf_guarantees_open", guarantees.c.household_id, guarantees.c.seq, postgresql_where=_open_check,
         sqlite_where=_open_check)

leads = sa.Table(
    "cf_leads", metadata,
    sa.Column("key", sa.String(_PAIR_KEY), primary_key=True),
    sa.Column("household_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("lead_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("on", sa.Date, nullable=False),
    sa.Column("on_ord", sa.Integer, nullable=False),
    sa.Column("source", sa.String(32)),
    sa.Column("risk_types", sa.JSON, nullable=False),
    sa.Column("detail", Sealed()),
    sa.Column("opens_procedure", sa.Boolean, nullable=False),
    sa.Column("monitored_at", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16)),
)
sa.Index("ix_cf_leads_household", leads.c.household_id, leads.c.source)

publicity = sa.Table(
    "cf_publicity", metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("household_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("division_code", sa.String(12)),
    sa.Column("procedure", sa.String(16)),
    sa.Column("opened_on", sa.Date),
    sa.Column("opened_ord", sa.Integer),
    sa.Column("closed_on", sa.Date, nullable=False),
    sa.Column("closed_ord", sa.Integer, nullable=False),
)

backdating = sa.Table(
    "cf_backdating", metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("household_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("division_code", sa.String(12)),
    sa.Column("event_type", sa.String(40), nullable=False),
    sa.Column("on", sa.Date, nullable=False),
    sa.Column("on_ord", sa.Integer, nullable=False),
    sa.Column("recorded_on", sa.Date, nullable=False),
    sa.Column("lag_days", sa.Integer, nullable=False),
    sa.Column("actor_id", sa.String(lim.ID_MAX)),
)
sa.Index("ix_cf_backdating_lag", backdating.c.lag_days)

#: who signed which level of which procedure (入户核实, 乡级审核, 县级审批): one person, one level
signatures = sa.Table(
    "cf_signatures", metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("household_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("division_code", sa.String(12)),
    sa.Column("procedure", sa.String(16), nullable=False),
    # which run of the procedure: 0 for the cycle's inclusion, the nomination's ordinal day for an exit
    sa.Column("instance", sa.Integer, nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("on", sa.Date, nullable=False),
    sa.Column("on_ord", sa.Integer, nullable=False),
)
sa.Index("ix_cf_signatures_household", signatures.c.household_id, signatures.c.cycle)
#: same_signer_two_levels finds the other levels of a signer in this index alone (no table reads)
sa.Index("ix_cf_signatures_signer", signatures.c.household_id, signatures.c.cycle, signatures.c.procedure,
         signatures.c.instance, signatures.c.actor_id, signatures.c.level, signatures.c.on_ord)

problems = sa.Table(
    "cf_problems", metadata,
    sa.Column("problem_id", sa.String(lim.ID_MAX), primary_key=True),
    sa.Column("kind", sa.String(40)),
    sa.Column("household_id", sa.String(lim.ID_MAX)),
    sa.Column("division_code", sa.String(12)),
    sa.Column("source", sa.String(24)),
    sa.Column("finding_key", sa.String(lim.FINDING_KEY_MAX)),
    sa.Column("status", sa.String(24)),
    sa.Column("raised_on", sa.Date),
    sa.Column("raised_ord", sa.Integer),
    sa.Column("deadline", sa.Date),
    sa.Column("deadline_ord", sa.Integer),
    sa.Column("responsible", Sealed("json")),
    sa.Column("supervisor", Sealed("json")),
    sa.Column("closed_on", sa.Date),
    sa.Column("closed_ord", sa.Integer),
)
sa.Index("ix_cf_problems_finding", problems.c.finding_key)


def ordinal(d: date | None) -> int | None:
    return None if d is None else d.toordinal()


def month_index(d: date) -> int:
    return d.year * 12 + d.month - 1


def open_items(e: Any) -> int:
    """How many of the 3+1 guarantees an assessment leaves open."""
    return (int(e.housing != Housing.SAFE.value) + int(not e.drinking_water_safe)
            + int(bool(e.children_out_of_school)) + int(bool(e.members_without_medical_insurance)))


_NAMED_BY_PERSON = (Household.MemberRemoved, Household.MemberNameCorrected)
_MEMBER_CHANGES = (Household.MemberRemoved, Household.MemberAdded, Household.MemberNameCorrected)
_MEASURE_CHANGES = (Household.MeasureImplemented, Household.MeasureEnded)


def _person_of(e: Any) -> str:
    return e.person_id if type(e) in _NAMED_BY_PERSON else e.member["person_id"]


def _changed(rows: dict[str, dict[str, Any]], read: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rows that are new or differ from what was read."""
    return {k: r for k, r in rows.items() if read.get(k) != r}


class _Batch:
    """The rows one batch touches: loaded once, changed in memory in log order, written back."""

    def __init__(self, conn: Connection, events: list[CaseEvent]):
        hids: dict[str, None] = {}
        pids: dict[str, None] = {}
        measure_keys, lead_keys, member_keys = [], [], []
        cut = len(HOUSEHOLD)
        for e in events:   # one pass: what each event needs read
            oid = e.originator_id
            if oid.startswith(HOUSEHOLD):
                hid = oid[cut:]
                hids[hid] = None
                kind = type(e)
                if kind in _MEASURE_CHANGES:
                    measure_keys.append(_key(hid, e.measure_id))
                elif kind is Household.LeadVerified:
                    lead_keys.append(_key(hid, e.lead_id))
                elif kind in _MEMBER_CHANGES:
                    member_keys.append(_key(hid, _person_of(e)))
            elif oid.startswith(PROBLEM):
                pids[oid.removeprefix(PROBLEM)] = None
        self.households = rows_by_key(conn, households, "household_id", hids)
        self.households_existing = set(self.households)
        self.cycles = rows_by_key(conn, cycles, "key", [_key(h, r["cycle"]) for h, r in self.households.items()])
        self.cycles_existing = set(self.cycles)
        # every household and current cycle of the batch is read, many are left as they were (an assessment,
        # a signature): those are not written back (shallow copies: the handlers replace a row's lists, they
        # never change one in place)
        self.households_read = {k: r.copy() for k, r in self.households.items()}
        self.cycles_read = {k: r.copy() for k, r in self.cycles.items()}
        self.eliminations = rows_by_key(conn, eliminations, "key", [
            _key(k, c["eliminations"]) for k, c in self.cycles.items() if c["eliminations"]])
        self.eliminations_existing = set(self.eliminations)
        self.risks_changed: set[str] = set()
        self.measures = rows_by_key(conn, measures, "key", measure_keys)
        self.measures_existing = set(self.measures)
        self.leads = rows_by_key(conn, leads, "key", lead_keys)
        self.leads_existing = set(self.leads)
        self.members = rows_by_key(conn, members, "key", member_keys)
        self.members_existing = set(self.members)
        self.problems = rows_by_key(conn, problems, "problem_id", pids)
        self.problems_existing = set(self.problems)
        self.appended: dict[sa.Table, list[dict[str, Any]]] = {incomes: [], guarantees: [], publicity: [],
                                                                backdating: [], signatures: []}

    def cycle(self, hid: str) -> dict[str, Any] | None:
        h = self.households[hid]
        return self.cycles.get(f"{hid}#{h['cycle']}") if h["cycle"] else None

    def new_cycle(self, hid: str, origin: str | None) -> dict[str, Any]:
        h = self.households[hid]
        h["cycle"] += 1
        row: dict[str, Any] = {c.name: None for c in cycles.columns}
        row.update(key=_key(hid, h["cycle"]), household_id=hid, cycle=h["cycle"], division_code=h["division_code"],
                   status="in_inclusion", origin=origin, risk_types=[], eliminations=0)
        self.cycles[row["key"]] = row
        h["cycle_status"] = "in_inclusion"
        return row

    def write(self, conn: Connection) -> None:
        upsert(conn, households, "household_id", _changed(self.households, self.households_read),
               self.households_existing)
        upsert(conn, cycles, "key", _changed(self.cycles, self.cycles_read), self.cycles_existing)
        upsert(conn, eliminations, "key", self.eliminations, self.eliminations_existing)
        upsert(conn, measures, "key", self.measures, self.measures_existing)
        upsert(conn, leads, "key", self.leads, self.leads_existing)
        upsert(conn, members, "key", self.members, self.members_existing)
        upsert(conn, problems, "problem_id", self.problems, self.problems_existing)
        for table, rows in self.appended.items():
            if rows:
                insert_rows(conn, table, rows)
        changed = [self.cycles[k] for k in sorted(self.risks_changed)]
        if changed:
            conn.execute(risks.delete().where(risks.c.household_id == sa.bindparam("h"),
                                              risks.c.cycle == sa.bindparam("c")),
                         [{"h": c["household_id"], "c": c["cycle"]} for c in changed])
            rows = [{"key": _key(c["household_id"], c["cycle"], r), "household_id": c["household_id"],
                     "cycle": c["cycle"], "risk_type": r} for c in changed for r in dict.fromkeys(c["risk_types"])]
            if rows:
                insert_rows(conn, risks, rows)


class CaseFactsProjection(Projection):
    """The inspector's tables (see the module's docstring)."""

    name = "casefacts"
    label = "督查案情事实"
    metadata = metadata
    #: every index but the one the fold deletes risks by
    deferred_indexes = tuple(ix.name for t in metadata.sorted_tables for ix in t.indexes
                             if ix.name != "ix_cf_risks_cycle")
    #: every row comes from one stream alone: a household's, or a problem's (which names its household itself)
    stream_local = True

    def fold(self, conn: Connection, events: list[CaseEvent]) -> None:
        if not events:
            return
        b = _Batch(conn, events)
        cut = len(HOUSEHOLD)
        household, problem = self._household, self._problem
        for e in events:
            oid = e.originator_id
            if oid.startswith(HOUSEHOLD):
                household(b, oid[cut:], e)
            elif oid.startswith(PROBLEM):
                problem(b, oid.removeprefix(PROBLEM), e)
        b.write(conn)

    # ------------------------------------------------------------------ households

    def _household(self, b: _Batch, hid: str, e: Any) -> None:
        kind = type(e)
        if kind is Household.Registered:
            b.households[hid] = {
                "household_id": hid, "division_code": e.division_code, "household_type": e.household_type,
                "stage": Stage.NOT_MONITORED.value, "cycle": 0, "cycle_status": None, "registered_on": e.on,
                "cadre_name": None, "cadre_on": None, "cadre_ord": None, "cadre_unknown": False,
                "imported": e.origin is not None,
            }
            for m in e.members:
                self._member(b, hid, m, None)
        h = b.households.get(hid)
        if h is None:  # a stream without its registration: nothing to hang facts on
            return
        imported = e.origin is not None
        if imported:
            h["imported"] = True
        recorded = e.timestamp.date()
        if recorded != e.on:
            self._timing(b, hid, h, e, recorded, imported)
        handler = on_household.table.get(kind)
        if handler is not None:
            handler(self, b, hid, h, e)
        level = SIGNING.get(kind)
        if level is not None and not (kind is Household.CountyDecided and e.step == "entered"):  # not a correction
            self._signed(b, hid, h, e, level)
        stage = getattr(e, "stage", None)
        if isinstance(stage, str):
            h["stage"] = stage

    def _timing(self, b: _Batch, hid: str, h: dict[str, Any], e: Any, recorded: date, imported: bool) -> None:
        """An act recorded a day or more after its business date (native only: an import is always late), or
        dated after the day it was recorded (a negative lag: native or imported)."""
        lag = (recorded - e.on).days
        if lag <= -1 or (lag >= 1 and not imported):
            b.appended[backdating].append({
                "key": _key(hid, e.originator_version), "household_id": hid, "cycle": h["cycle"],
                "division_code": h["division_code"], "event_type": e.TYPE, "on": e.on, "on_ord": e.on.toordinal(),
                "recorded_on": recorded, "lag_days": lag, "actor_id": (e.actor or {}).get("id"),
            })

    @staticmethod
    def _member(b: _Batch, hid: str, m: dict[str, Any], added: date | None) -> None:
        key = _key(hid, m["person_id"])
        b.members[key] = {"key": key, "household_id": hid, "person_id": m["person_id"], "name": m.get("name"),
                          "labour": m.get("labour"), "added_ord": ordinal(added), "removed_ord": None,
                          "removed_on": None}

    @on_household(Household.MemberAdded)
    def _on_member_added(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        self._member(b, hid, e.member, e.on)

    @on_household(Household.MemberRemoved)
    def _on_member_removed(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        m = b.members.get(_key(hid, e.person_id))
        if m is not None:
            m.update(removed_on=e.on, removed_ord=e.on.toordinal())

    @on_household(Household.MemberNameCorrected)
    def _on_member_name_corrected(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        m = b.members.get(_key(hid, e.person_id))
        if m is not None:
            m["name"] = e.name

    @staticmethod
    def _assessment(hid: str, h: dict[str, Any], e: Any) -> dict[str, Any]:
        version = e.originator_version
        day = e.on.toordinal()
        return {"key": f"{hid}#{version}", "household_id": hid, "cycle": h["cycle"], "on": e.on, "on_ord": day,
                "seq": day * SEQ_PER_DAY + version, "origin": e.origin}

    @on_household(Household.IncomeAssessed)
    def _on_income_assessed(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        row = self._assessment(hid, h, e)
        row.update(net_income=e.net_income, rigid_expenditure=e.rigid_expenditure,
                   household_size=e.household_size, per_capita_income=e.per_capita_income,
                   exact_fen=exact_fen(e.net_income, e.rigid_expenditure, e.household_size, e.per_capita_income))
        b.appended[incomes].append(row)

    @on_household(Household.GuaranteesAssessed)
    def _on_guarantees_assessed(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        row = self._assessment(hid, h, e)
        row.update(housing=e.housing, drinking_water_safe=e.drinking_water_safe,
                   children_out_of_school=len(e.children_out_of_school),
                   members_without_medical_insurance=len(e.members_without_medical_insurance),
                   open_items=open_items(e))
        b.appended[guarantees].append(row)

    @on_household(Household.LeadRecorded)
    def _on_lead_recorded(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        monitored = h["stage"] in ASSISTED_STAGES
        if e.opens_procedure:
            c = b.new_cycle(hid, e.origin)
            c.update(first_lead_on=e.on, first_lead_ord=e.on.toordinal())
        key = _key(hid, e.lead_id)
        b.leads[key] = {"key": key, "household_id": hid, "lead_id": e.lead_id, "cycle": h["cycle"], "on": e.on,
                        "on_ord": e.on.toordinal(), "source": e.source, "risk_types": list(e.risk_types),
                        "detail": e.detail, "opens_procedure": bool(e.opens_procedure),
                        "monitored_at": monitored and not e.opens_procedure, "status": "open"}
        c = b.cycle(hid)
        if e.adds_risks and c is not None:
            c["risk_types"] = [*c["risk_types"], *e.adds_risks]
            b.risks_changed.add(c["key"])

    @on_household(Household.LeadVerified)
    def _on_lead_verified(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        lead = b.leads.get(_key(hid, e.lead_id))
        if lead is not None:
            lead["status"] = e.finding
        self._closed(b, hid, h, e)

    def _signed(self, b: _Batch, hid: str, h: dict[str, Any], e: Any, level: str) -> None:
        """A level's signature on the open procedure (the exit's run is told apart by its nomination)."""
        actor = (e.actor or {}).get("id")
        if not actor:
            return
        instance = ((b.cycle(hid) or {}).get("nominated_ord") or 0) if e.procedure == _EXIT else 0
        b.appended[signatures].append({
            "key": f"{hid}#{e.originator_version}", "household_id": hid, "cycle": h["cycle"],
            "division_code": h["division_code"], "procedure": e.procedure, "instance": instance, "level": level,
            "actor_id": actor, "on": e.on, "on_ord": e.on.toordinal()})

    def _closed(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        """A step that ends the inclusion procedure without inclusion, or the exit procedure without exit."""
        if e.step != "closed":
            return
        c = b.cycle(hid)
        if c is None:
            return
        if e.procedure == _INCLUSION and c["status"] == "in_inclusion":
            c.update(status="closed", closed_on=e.on, closed_ord=e.on.toordinal())
        elif e.procedure == _EXIT and c["status"] == "in_exit":
            c["status"] = "monitored"
        h["cycle_status"] = c["status"]

    @on_household(Household.PublicityOpened)
    def _on_publicity_opened(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        c = b.cycle(hid)
        if c is not None and e.procedure == _INCLUSION:
            c["publicity_opened_on"] = e.on

    @on_household(Household.PublicityClosed)
    def _on_publicity_closed(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        c = b.cycle(hid)
        if c is not None and e.procedure == _INCLUSION:
            c["publicity_closed_on"] = e.on
        b.appended[publicity].append({
            "key": _key(hid, e.originator_version), "household_id": hid, "cycle": h["cycle"],
            "division_code": h["division_code"], "procedure": e.procedure, "opened_on": e.opened_on,
            "opened_ord": ordinal(e.opened_on), "closed_on": e.on, "closed_ord": e.on.toordinal()})

    @on_household(Household.TownshipReviewed)
    def _on_township_reviewed(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        self._closed(b, hid, h, e)

    @on_household(Household.ExitVerified)
    def _on_exit_verified(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        self._closed(b, hid, h, e)

    def _inclusion_cycle(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> dict[str, Any]:
        """The cycle an inclusion step belongs to: the open one, or a new one (imported history has no lead)."""
        c = b.cycle(hid)
        if c is None or c["status"] != "in_inclusion":
            c = b.new_cycle(hid, e.origin)
        return c

    @on_household(Household.CountyDecided)
    def _on_county_decided(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        if e.procedure != _INCLUSION:
            self._closed(b, hid, h, e)
            return
        if e.step == "closed":
            self._closed(b, hid, h, e)
            return
        # a correction of a settled cycle keeps its step at "entered"; a decision starts or continues one
        c = b.cycle(hid) if e.step == "entered" else self._inclusion_cycle(b, hid, h, e)
        if c is None:
            return
        if e.category is not None:
            c["category"] = e.category
        if e.risk_types:
            c["risk_types"] = list(e.risk_types)
            b.risks_changed.add(c["key"])

    @on_household(Household.EnteredSystem)
    def _on_entered_system(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        c = self._inclusion_cycle(b, hid, h, e)
        c.update(status="monitored", included_on=e.on, included_ord=e.on.toordinal(),
                 included_month=month_index(e.on), included_day=e.on.day, included_precision=e.date_precision)
        h["cycle_status"] = "monitored"

    @on_household(Household.CadreAssigned)
    def _on_cadre_assigned(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        h.update(cadre_name=e.cadre.get("name"), cadre_on=e.on, cadre_ord=e.on.toordinal())

    @on_household(Household.CadreUnknown)
    def _on_cadre_unknown(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        h["cadre_unknown"] = True

    @on_household(Household.MeasurePlanned)
    def _on_measure_planned(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        key = _key(hid, e.measure_id)
        b.measures[key] = {
            "key": key, "household_id": hid, "measure_id": e.measure_id, "cycle": h["cycle"],
            "measure_type": e.measure_type, "developmental": e.measure_type in _DEVELOPMENTAL, "status": "planned",
            "planned_on": e.on, "planned_ord": e.on.toordinal(), "implemented_on": None, "implemented_ord": None,
            "ended_on": None, "ended_ord": None, "origin": e.origin}

    @on_household(Household.MeasureImplemented)
    def _on_measure_implemented(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        m = b.measures.get(_key(hid, e.measure_id))
        if m is not None:
            m.update(status="implemented", implemented_on=e.on, implemented_ord=e.on.toordinal())

    @on_household(Household.MeasureEnded)
    def _on_measure_ended(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        m = b.measures.get(_key(hid, e.measure_id))
        if m is not None:
            m.update(status="ended", ended_on=e.on, ended_ord=e.on.toordinal())

    @on_household(Household.ExitNominated)
    def _on_exit_nominated(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        c = b.cycle(hid)
        if c is not None:
            c.update(status="in_exit", nominated_on=e.on, nominated_ord=e.on.toordinal(), exit_mode=e.mode)
            h["cycle_status"] = "in_exit"

    @on_household(Household.RiskEliminated)
    def _on_risk_eliminated(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        c = b.cycle(hid)
        if c is None:
            return
        last = calendar.monthrange(e.on.year, e.on.month)[1]
        c.update(status="eliminated", exit_mode=e.mode, eliminated_on=e.on, eliminated_ord=e.on.toordinal(),
                 eliminated_month=month_index(e.on), eliminated_day=e.on.day, eliminated_month_end=e.on.day == last,
                 eliminated_precision=e.date_precision)
        h["cycle_status"] = "eliminated"
        c["eliminations"] += 1
        row = {col.name: c.get(col.name) for col in eliminations.columns}
        row.update(key=_key(c["key"], c["eliminations"]), n=c["eliminations"], rolled_back_on=None,
                   rolled_back_ord=None)
        b.eliminations[row["key"]] = row

    @on_household(Household.EliminationRolledBack)
    def _on_elimination_rolled_back(self, b: _Batch, hid: str, h: dict[str, Any], e: Any) -> None:
        c = b.cycle(hid)
        if c is not None:
            c.update(status="monitored", rolled_back_on=e.on, rolled_back_ord=e.on.toordinal())
            h["cycle_status"] = "monitored"
            last = b.eliminations.get(_key(c["key"], c["eliminations"])) if c["eliminations"] else None
            if last is not None and last["rolled_back_ord"] is None:
                last.update(rolled_back_on=e.on, rolled_back_ord=e.on.toordinal())

    # ------------------------------------------------------------------ problems

    def _problem(self, b: _Batch, pid: str, e: Any) -> None:
        if type(e) is Problem.Raised:
            b.problems[pid] = {
                "problem_id": pid, "kind": e.kind, "household_id": e.household_id, "division_code": e.division_code,
                "source": e.source, "finding_key": e.finding_key, "status": "raised", "raised_on": e.on,
                "raised_ord": e.on.toordinal(), "deadline": None, "deadline_ord": None, "responsible": None,
                "supervisor": None, "closed_on": None, "closed_ord": None}
            return
        p = b.problems.get(pid)
        if p is None:
            return
        status = getattr(e, "status", None)
        if isinstance(status, str):
            p["status"] = status
        handler = on_problem.get(e)
        if handler is not None:
            handler(self, b, pid, p, e)

    @on_problem(Problem.ResponsibilityAssigned)
    def _on_responsibility_assigned(self, b: _Batch, pid: str, p: dict[str, Any], e: Any) -> None:
        p.update(deadline=e.deadline, deadline_ord=e.deadline.toordinal(), responsible=dict(e.responsible),
                 supervisor=dict(e.supervisor))

    @on_problem(Problem.SignedOff)
    def _on_signed_off(self, b: _Batch, pid: str, p: dict[str, Any], e: Any) -> None:
        if e.status == "closed":
            p.update(closed_on=e.on, closed_ord=e.on.toordinal())

    @on_problem(Problem.Reopened)
    def _on_reopened(self, b: _Batch, pid: str, p: dict[str, Any], e: Any) -> None:
        p.update(deadline=e.deadline, deadline_ord=e.deadline.toordinal(), closed_on=None, closed_ord=None)


def person_households(conn: Connection, person_ids: Iterable[str]) -> dict[str, str]:
    """The person index: citizen ID → the household they are a current member of (else the last one)."""
    wanted = sorted({p.upper() for p in person_ids})
    found: dict[str, tuple[bool, str]] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        for r in conn.execute(sa.select(members.c.person_id, members.c.household_id, members.c.removed_ord)
                              .where(members.c.person_id.in_(chunk))):
            current = r.removed_ord is None
            if r.person_id not in found or (current and not found[r.person_id][0]):
                found[r.person_id] = (current, r.household_id)
    return {pid: hid for pid, (_, hid) in found.items()}


def household_facts(conn: Connection, household_ids: Iterable[str], as_of: date) -> dict[str, dict[str, Any]]:
    """What screening needs of each household: type, stage, current size and the newest income assessment
    made on or before `as_of` (one query per 500 households)."""
    wanted = sorted(set(household_ids))
    out: dict[str, dict[str, Any]] = {}
    h, i, i2, m = households, incomes, incomes.alias("i2"), members
    latest = (sa.select(sa.func.max(i2.c.seq)).where(i2.c.household_id == h.c.household_id,
                                                     i2.c.on_ord <= as_of.toordinal()).scalar_subquery())
    size = (sa.select(sa.func.count()).where(m.c.household_id == h.c.household_id, m.c.removed_ord.is_(None))
            .scalar_subquery())
    for k in range(0, len(wanted), 500):
        stmt = (sa.select(h.c.household_id, h.c.household_type, h.c.stage, h.c.division_code, size.label("size"),
                          i.c.on.label("income_on"), i.c.net_income, i.c.household_size, i.c.per_capita_income)
                .select_from(h).outerjoin(i, sa.and_(i.c.household_id == h.c.household_id, i.c.seq == latest))
                .where(h.c.household_id.in_(wanted[k : k + 500])))
        for r in conn.execute(stmt).mappings():
            out[r["household_id"]] = dict(r)
    return out


def known_leads(conn: Connection, lead_ids: Iterable[str]) -> set[str]:
    """Which of these lead ids are already recorded (on any household)."""
    wanted = sorted(set(lead_ids))
    found: set[str] = set()
    for k in range(0, len(wanted), 500):
        found.update(conn.execute(sa.select(leads.c.lead_id).where(leads.c.lead_id.in_(wanted[k : k + 500])))
                     .scalars())
    return found
