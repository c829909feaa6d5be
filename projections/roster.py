"""Roster (监测对象名单): one row per household with what the monitored-household roster shows — area, type,
stage, category, risks, size and labour, responsible cadre, inclusion and elimination dates, current
per-capita income, latest guarantee check, measures — plus its members (`roster_members`) and measures
(`roster_measures`).

Every household is kept with its stage; the roster proper is the households whose stage is `monitored` or
`in_exit` (`MONITORED_STAGES`, `monitored_roster()`). The fold mirrors the household aggregate's mutators:
the same events give the same values the aggregate holds after replay (tested against it).

A batch is folded set-based: the rows it touches are loaded once (roster rows by household; members and
measures of the households whose members or measures the batch changes), changed in memory in log order,
and written back with one executemany per table and kind (insert / update).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from casecore import limits as lim
from casecore.events import EVENT_TYPES, CaseEvent
from casecore.household import Household, has_labour, is_settled
from casecore.household.state import ASSISTED_STAGES
from casecore.streams import HOUSEHOLD_PREFIX
from casecore.values import CENT, Procedure, Stage, county_of, township_of
from projections.dispatch import Handlers
from projections.divisions import usually, within
from projections.runner import Projection, rows_by_key, upsert
from projections.sealing import Sealed
from workflows.inclusion import Inclusion

#: the stages of a household on the roster proper (监测对象: 监测中, 风险消除程序中)
MONITORED_STAGES = ASSISTED_STAGES


class Money(sa.types.TypeDecorator):
    """Exact yuan with two decimals (digits from casecore/limits.py: any accepted amount fits): NUMERIC on
    PostgreSQL; on SQLite stored from the decimal string (NUMERIC affinity, so SQL comparisons are
    numeric) and read back as a Decimal rounded to cents."""

    impl = sa.Numeric(lim.MONEY_PRECISION, lim.MONEY_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteNumeric())
        return dialect.type_descriptor(sa.Numeric(lim.MONEY_PRECISION, lim.MONEY_SCALE))

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        return str(value) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).quantize(CENT, ROUND_HALF_UP)


class _SQLiteNumeric(sa.types.UserDefinedType):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return f"NUMERIC({lim.MONEY_PRECISION}, {lim.MONEY_SCALE})"


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(JSONB(), "postgresql")


metadata = sa.MetaData()

roster = sa.Table(
    "roster",
    metadata,
    sa.Column("household_id", sa.String(lim.ID_MAX), primary_key=True),
    sa.Column("division_code", sa.String(12)),
    sa.Column("county_code", sa.String(6)),
    sa.Column("township_code", sa.String(9)),
    sa.Column("household_type", sa.String(24)),
    sa.Column("relocated", sa.Boolean),
    sa.Column("resettlement_site", sa.String(lim.SITE_MAX)),
    sa.Column("key_county", sa.Boolean),
    sa.Column("registered_on", sa.Date),
    sa.Column("stage", sa.String(24), nullable=False),
    sa.Column("open_procedure", sa.String(16)),
    sa.Column("procedure_step", sa.String(32)),
    sa.Column("procedure_started_on", sa.Date),
    sa.Column("cycle", sa.Integer, nullable=False),
    sa.Column("category", sa.String(32)),
    sa.Column("risk_types", _json(), nullable=False),
    sa.Column("household_size", sa.Integer, nullable=False),
    sa.Column("has_labour", sa.Boolean, nullable=False),
    sa.Column("cadre_id", sa.String(lim.ID_MAX)),
    sa.Column("cadre_name", Sealed("text", lim.NAME_MAX)),
    sa.Column("cadre_unit", sa.String(lim.UNIT_MAX)),
    sa.Column("cadre_assigned_on", sa.Date),
    sa.Column("included_on", sa.Date),
    sa.Column("eliminated_on", sa.Date),
    sa.Column("exit_mode", sa.String(16)),
    sa.Column("exit_nominated_on", sa.Date),
    sa.Column("rolled_back_on", sa.Date),
    # the newest income assessment (by business date; a later event wins a tie, as in the aggregate)
    sa.Column("per_capita_income", Money()),
    sa.Column("income_assessed_on", sa.Date),
    sa.Column("income_period_start", sa.Date),
    sa.Column("income_period_end", sa.Date),
    # the newest guarantee check (三保障及饮水)
    sa.Column("housing", sa.String(16)),
    sa.Column("drinking_water_safe", sa.Boolean),
    sa.Column("children_out_of_school", sa.Integer),
    sa.Column("members_without_medical_insurance", sa.Integer),
    sa.Column("guarantees_assessed_on", sa.Date),
    sa.Column("leads", sa.Integer, nullable=False),
    sa.Column("measures_planned", sa.Integer, nullable=False),
    sa.Column("measures_implemented", sa.Integer, nullable=False),
    sa.Column("measures_active", sa.Integer, nullable=False),
    sa.Column("last_event_on", sa.Date),
    sa.Column("version", sa.Integer, nullable=False),
)
sa.Index("ix_roster_division", roster.c.division_code)
sa.Index("ix_roster_stage_county", roster.c.stage, roster.c.county_code)

roster_members = sa.Table(
    "roster_members",
    metadata,
    sa.Column("household_id", sa.String(lim.ID_MAX), primary_key=True),
    sa.Column("person_id", Sealed("text", 18), primary_key=True),
    sa.Column("name", Sealed("text", lim.NAME_MAX)),
    sa.Column("relation", sa.String(lim.RELATION_MAX)),
    sa.Column("birth_date", Sealed("date")),
    sa.Column("labour", sa.String(8)),
    sa.Column("in_school", sa.Boolean),
    sa.Column("disabled", sa.Boolean),
    sa.Column("illness", sa.Boolean),
    sa.Column("added_on", sa.Date),
    sa.Column("added_reason", sa.String(16)),
    sa.Column("removed_on", sa.Date),
    sa.Column("removal_reason", sa.String(16)),
)

roster_measures = sa.Table(
    "roster_measures",
    metadata,
    sa.Column("household_id", sa.String(lim.ID_MAX), primary_key=True),
    sa.Column("measure_id", sa.String(lim.ID_MAX), primary_key=True),
    sa.Column("measure_type", sa.String(32)),
    sa.Column("addresses", _json(), nullable=False),
    sa.Column("department", sa.String(lim.UNIT_MAX)),
    sa.Column("responsible", Sealed("text", lim.UNIT_MAX)),
    sa.Column("planned_on", sa.Date),
    sa.Column("implemented_on", sa.Date),
    sa.Column("ended_on", sa.Date),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("cycle", sa.Integer),
)

MEMBER_KEY = ("household_id", "person_id")
MEASURE_KEY = ("household_id", "measure_id")
_MEMBER_EVENTS = frozenset({Household.Registered, Household.MemberAdded, Household.MemberRemoved,
                            Household.MemberNameCorrected})
_MEASURE_EVENTS = frozenset({Household.MeasurePlanned, Household.MeasureImplemented, Household.MeasureEnded})


def blank_row(household_id: str) -> dict[str, Any]:
    """A roster row before its first event (every column present, so executemany sees one shape)."""
    row: dict[str, Any] = {c.name: None for c in roster.columns}
    row.update(household_id=household_id, stage=Stage.NOT_MONITORED.value, cycle=0, risk_types=[],
               household_size=0, has_labour=False, leads=0, measures_planned=0, measures_implemented=0,
               measures_active=0, version=0)
    return row


def _member_row(household_id: str, m: dict[str, Any], added_on: date | None, reason: str | None) -> dict[str, Any]:
    return {
        "household_id": household_id,
        "person_id": m["person_id"],
        "name": m.get("name"),
        "relation": m.get("relation"),
        "birth_date": m.get("birth_date"),
        "labour": m.get("labour"),
        "in_school": bool(m.get("in_school", False)),
        "disabled": bool(m.get("disabled", False)),
        "illness": bool(m.get("illness", False)),
        "added_on": added_on,
        "added_reason": reason,
        "removed_on": None,
        "removal_reason": None,
    }


class _Batch:
    """The rows one batch touches, loaded once and changed in memory."""

    def __init__(self, conn: Connection, mine: list[tuple[str, CaseEvent]]):
        self.rows = rows_by_key(conn, roster, "household_id", [hid for hid, _ in mine])
        self.existing_rows = set(self.rows)
        member_ids = {hid for hid, e in mine if type(e) in _MEMBER_EVENTS}
        measure_ids = {hid for hid, e in mine if type(e) in _MEASURE_EVENTS}
        self.members = _load_all(conn, roster_members, MEMBER_KEY, member_ids)
        self.existing_members = set(self.members)
        self.measures = _load_all(conn, roster_measures, MEASURE_KEY, measure_ids)
        self.existing_measures = set(self.measures)
        self.members_changed: set[str] = set()
        self.measures_changed: set[str] = set()
        self.dirty_members: set[tuple[str, str]] = set()
        self.dirty_measures: set[tuple[str, str]] = set()

    def row(self, household_id: str) -> dict[str, Any]:
        row = self.rows.get(household_id)
        if row is None:
            row = self.rows[household_id] = blank_row(household_id)
        return row

    def write(self, conn: Connection) -> None:
        present: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (h, _), m in self.members.items():
            if h in self.members_changed and m["removed_on"] is None:
                present[h].append(m)
        for hid in self.members_changed:
            current = present[hid]
            row = self.rows[hid]
            row["household_size"] = len(current)
            row["has_labour"] = has_labour(current)
        by_household: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for (h, _), m in self.measures.items():
            by_household[h].append(m)
        for hid in self.measures_changed:
            measures = by_household[hid]
            row = self.rows[hid]
            row["measures_planned"] = len(measures)
            row["measures_implemented"] = sum(1 for m in measures if m["implemented_on"] is not None)
            row["measures_active"] = sum(1 for m in measures if m["status"] == "implemented")
        upsert(conn, roster, "household_id", self.rows, self.existing_rows)
        upsert(conn, roster_members, MEMBER_KEY, {k: self.members[k] for k in sorted(self.dirty_members)},
               self.existing_members)
        upsert(conn, roster_measures, MEASURE_KEY, {k: self.measures[k] for k in sorted(self.dirty_measures)},
               self.existing_measures)


def _load_all(conn: Connection, table: sa.Table, key: tuple[str, str], households: Iterable[str]
              ) -> dict[tuple[str, str], dict[str, Any]]:
    """Every row of these households (members or measures), by (household, id)."""
    wanted = sorted(set(households))
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        result = conn.execute(sa.select(table).where(table.c.household_id.in_(chunk)))
        names = list(result.keys())
        first, second = names.index(key[0]), names.index(key[1])
        for r in result.all():   # one fetchall, plain tuples (iterating mappings fetched row by row)
            out[(r[first], r[second])] = dict(zip(names, r, strict=True))
    return out


Handler = Callable[[_Batch, str, dict[str, Any], Any], None]
#: the fold's handlers by event class
handles: Handlers[Handler] = Handlers()


@handles(Household.Registered)
def _registered(b: _Batch, hid: str, row: dict[str, Any], e: Household.Registered) -> None:
    row.update(
        division_code=e.division_code,
        county_code=county_of(e.division_code),
        township_code=township_of(e.division_code),
        household_type=e.household_type,
        relocated=e.relocated,
        resettlement_site=e.resettlement_site,
        key_county=e.key_county,
        registered_on=e.on,
        stage=Stage.NOT_MONITORED.value,
    )
    for m in e.members:
        key = (hid, m["person_id"])
        b.members[key] = _member_row(hid, m, None, None)
        b.dirty_members.add(key)
    b.members_changed.add(hid)


@handles(Household.MemberAdded)
def _member_added(b: _Batch, hid: str, row: dict[str, Any], e: Household.MemberAdded) -> None:
    key = (hid, e.member["person_id"])
    b.members[key] = _member_row(hid, e.member, e.on, e.reason)
    b.dirty_members.add(key)
    b.members_changed.add(hid)


@handles(Household.MemberRemoved)
def _member_removed(b: _Batch, hid: str, row: dict[str, Any], e: Household.MemberRemoved) -> None:
    key = (hid, e.person_id)
    member = b.members.get(key)
    if member is None:  # history the aggregate could not replay either; keep what the event says
        member = b.members[key] = _member_row(hid, {"person_id": e.person_id}, None, None)
    member["removed_on"] = e.on
    member["removal_reason"] = e.reason
    b.dirty_members.add(key)
    b.members_changed.add(hid)


@handles(Household.MemberNameCorrected)
def _member_name_corrected(b: _Batch, hid: str, row: dict[str, Any], e: Household.MemberNameCorrected) -> None:
    member = b.members.get((hid, e.person_id))
    if member is not None:
        member["name"] = e.name
        b.dirty_members.add((hid, e.person_id))


@handles(Household.IncomeAssessed)
def _income(b: _Batch, hid: str, row: dict[str, Any], e: Household.IncomeAssessed) -> None:
    if row["income_assessed_on"] is None or e.on >= row["income_assessed_on"]:
        row["per_capita_income"] = e.per_capita_income
        row["income_assessed_on"] = e.on
        row["income_period_start"] = e.period_start
        row["income_period_end"] = e.period_end


@handles(Household.GuaranteesAssessed)
def _guarantees(b: _Batch, hid: str, row: dict[str, Any], e: Household.GuaranteesAssessed) -> None:
    # the aggregate's "latest" guarantee check is the last one recorded (guarantees[-1])
    row["housing"] = e.housing
    row["drinking_water_safe"] = e.drinking_water_safe
    row["children_out_of_school"] = len(e.children_out_of_school)
    row["members_without_medical_insurance"] = len(e.members_without_medical_insurance)
    row["guarantees_assessed_on"] = e.on


@handles(Household.LeadRecorded)
def _lead(b: _Batch, hid: str, row: dict[str, Any], e: Household.LeadRecorded) -> None:
    row["leads"] += 1
    if e.opens_procedure:
        row.update(open_procedure=Procedure.INCLUSION.value, procedure_step=Inclusion.LEAD_RECORDED.value,
                   procedure_started_on=e.on, cycle=e.cycle)
    row["stage"] = e.stage
    if e.adds_risks:
        row["risk_types"] = [*row["risk_types"], *e.adds_risks]


@handles(Household.CadreAssigned)
def _cadre(b: _Batch, hid: str, row: dict[str, Any], e: Household.CadreAssigned) -> None:
    row.update(cadre_id=e.cadre.get("id"), cadre_name=e.cadre.get("name"), cadre_unit=e.cadre.get("unit"),
               cadre_assigned_on=e.on)


@handles(Household.MeasurePlanned)
def _measure_planned(b: _Batch, hid: str, row: dict[str, Any], e: Household.MeasurePlanned) -> None:
    key = (hid, e.measure_id)
    b.measures[key] = {
        "household_id": hid, "measure_id": e.measure_id, "measure_type": e.measure_type,
        "addresses": list(e.addresses), "department": e.department, "responsible": e.responsible,
        "planned_on": e.on, "implemented_on": None, "ended_on": None, "status": "planned", "cycle": row["cycle"],
    }
    b.dirty_measures.add(key)
    b.measures_changed.add(hid)


def _measure(b: _Batch, hid: str, measure_id: str) -> dict[str, Any]:
    key = (hid, measure_id)
    m = b.measures.get(key)
    if m is None:  # history the aggregate could not replay either; keep what the event says
        m = b.measures[key] = {
            "household_id": hid, "measure_id": measure_id, "measure_type": None, "addresses": [],
            "department": None, "responsible": None, "planned_on": None, "implemented_on": None,
            "ended_on": None, "status": "planned", "cycle": None,
        }
    b.dirty_measures.add(key)
    b.measures_changed.add(hid)
    return m


@handles(Household.MeasureImplemented)
def _measure_implemented(b: _Batch, hid: str, row: dict[str, Any], e: Household.MeasureImplemented) -> None:
    m = _measure(b, hid, e.measure_id)
    m.update(implemented_on=e.on, status="implemented")


@handles(Household.MeasureEnded)
def _measure_ended(b: _Batch, hid: str, row: dict[str, Any], e: Household.MeasureEnded) -> None:
    m = _measure(b, hid, e.measure_id)
    m.update(ended_on=e.on, status="ended")


@handles(Household.ExitNominated)
def _exit_nominated(b: _Batch, hid: str, row: dict[str, Any], e: Household.ExitNominated) -> None:
    row.update(open_procedure=e.procedure, procedure_step=e.step, stage=e.stage, exit_mode=e.mode,
               exit_nominated_on=e.on, procedure_started_on=e.on)


@handles(Household.EliminationRolledBack)
def _rolled_back(b: _Batch, hid: str, row: dict[str, Any], e: Household.EliminationRolledBack) -> None:
    row.update(stage=e.stage, rolled_back_on=e.on, eliminated_on=None)


def _step(b: _Batch, hid: str, row: dict[str, Any], e: Household.Step) -> None:
    """Every procedure step moves the case; a few also record something (their handlers below)."""
    stage = row["stage"] = e.stage
    if is_settled(stage):  # the aggregate's Step mutator clears procedure and step then
        row["open_procedure"] = row["procedure_step"] = None
    else:
        row["procedure_step"] = e.step


@handles(Household.CountyDecided)
def _county_decided(b: _Batch, hid: str, row: dict[str, Any], e: Household.CountyDecided) -> None:
    _step(b, hid, row, e)
    if e.category is not None:
        row["category"] = e.category
    if e.risk_types:
        row["risk_types"] = list(e.risk_types)


@handles(Household.EnteredSystem)
def _entered_system(b: _Batch, hid: str, row: dict[str, Any], e: Household.EnteredSystem) -> None:
    _step(b, hid, row, e)
    row.update(included_on=e.on, eliminated_on=None, exit_mode=None)


@handles(Household.RiskEliminated)
def _risk_eliminated(b: _Batch, hid: str, row: dict[str, Any], e: Household.RiskEliminated) -> None:
    _step(b, hid, row, e)
    row.update(eliminated_on=e.on, exit_mode=e.mode)


# the other procedure steps only move the case
handles.fallback((cls for cls in EVENT_TYPES.get("household", {}).values() if issubclass(cls, Household.Step)),
                 _step)


class RosterProjection(Projection):
    """监测对象名单: every household's row, its members and its measures."""

    name = "roster"
    label = "监测对象名单"
    metadata = metadata
    deferred_indexes = ("ix_roster_division", "ix_roster_stage_county")
    #: a row, its members and its measures come from one household's stream alone
    stream_local = True

    def __init__(self) -> None:
        # every household event type known when the projection is made (problem events are not read)
        self.topics = tuple(sorted(cls.TOPIC for cls in EVENT_TYPES.get("household", {}).values()))  # type: ignore[attr-defined]

    def fold(self, conn: Connection, events: list[CaseEvent]) -> None:
        cut = len(HOUSEHOLD_PREFIX)
        mine = [(e.originator_id[cut:], e) for e in events if e.originator_id.startswith(HOUSEHOLD_PREFIX)]
        if not mine:
            return
        batch = _Batch(conn, mine)
        rows = batch.rows
        table = handles.table
        for hid, e in mine:
            row = rows.get(hid)
            if row is None:
                row = batch.row(hid)
            handler = table.get(type(e))
            if handler is not None:
                handler(batch, hid, row, e)
            row["version"] = e.originator_version
            row["last_event_on"] = e.on
        batch.write(conn)


# ---------------------------------------------------------------------- reading


def _roster_filter(division_prefix: str | None, all_stages: bool) -> list[sa.ColumnElement[bool]]:
    where: list[sa.ColumnElement[bool]] = []
    if not all_stages:
        monitored = roster.c.stage.in_(MONITORED_STAGES)
        # under a division the division index is the one to read (a village: a few rows of the whole stage)
        where.append(usually(monitored) if division_prefix else monitored)
    if division_prefix:
        where.append(within(roster.c.division_code, division_prefix))
    return where


def roster_total(conn: Connection, division_prefix: str | None = None, all_stages: bool = False) -> int:
    """How many rows `monitored_roster` gives without a limit."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(roster)
                            .where(*_roster_filter(division_prefix, all_stages))).scalar() or 0)


def monitored_roster(conn: Connection, division_prefix: str | None = None, all_stages: bool = False,
                     limit: int | None = None, after: tuple[str, str] | None = None) -> list[dict[str, Any]]:
    """The roster's rows (monitored and in-exit households unless `all_stages`), under a division code prefix,
    ordered by division and household, each with its `measures` (ordered by planning date and id). A page:
    at most `limit` rows after the row keyed `after` (its division code and household id)."""
    query = sa.select(roster).where(*_roster_filter(division_prefix, all_stages))
    if after is not None:
        query = query.where(sa.tuple_(roster.c.division_code, roster.c.household_id) > sa.tuple_(*after))
    query = query.order_by(roster.c.division_code, roster.c.household_id)
    if limit is not None:
        query = query.limit(limit)
    rows = [dict(r) for r in conn.execute(query).mappings()]
    by_id = {r["household_id"]: r for r in rows}
    for r in rows:
        r["measures"] = []
    measures: dict[str, list[dict[str, Any]]] = defaultdict(list)
    ids = list(by_id)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        q = sa.select(roster_measures).where(roster_measures.c.household_id.in_(chunk))
        for m in conn.execute(q).mappings():
            measures[m["household_id"]].append(dict(m))
    for hid, ms in measures.items():
        ms.sort(key=lambda m: (m["planned_on"] or date.min, m["measure_id"]))
        by_id[hid]["measures"] = ms
    return rows
