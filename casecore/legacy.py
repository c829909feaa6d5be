"""Legacy histories from the national monitoring system (国家防返贫监测信息系统), stored as imported facts.

The importer (`adapters/importers/national_rows.py`) reads the export's rows — one per person, every cell
text, dates of month precision — into the typed facts of each person (`Row`) and assembles them into ONE
household (`LegacyHousehold`). This module turns such an assembled household into facts on the Household
aggregate: the same event classes as native history — registration, income and guarantee assessments at
identification, the county's decision with category and risks, entry into the system, measures, the
elimination with its mode, the post-elimination assessments — each marked `origin="national_export:<file>"`
and `date_precision="month"` (the 1st of the month stands for the month). The application stores them
(`CaseManagement.import_facts`).

Imported history is NOT re-judged: the facts are triggered directly, without the commands' guards; the
inspector rules then judge imported and native histories alike. Importing is idempotent and incremental:
every fact carries a deterministic `command_id` (or is recognised from the household's state), so the same
export adds nothing and a newer export adds only what changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from casecore.household import Household
from casecore.policy import PolicyBook
from casecore.streams import household_stream
from casecore.values import (
    CENT,
    DEVELOPMENTAL_MEASURES,
    Housing,
    MeasureType,
    Procedure,
    RiskType,
    Stage,
    month_window,
)
from workflows.exit import Exit
from workflows.inclusion import Inclusion

ORIGIN = "national_export"
#: ages of compulsory education (义务教育阶段适龄): 6 to 15 years old on the assessment's date
SCHOOL_AGE = (6, 15)


@dataclass
class Income:
    """An income assessment as the export states it."""

    net_income: Decimal
    rigid_expenditure: Decimal
    per_capita_income: Decimal | None  # as the export states it; None: computed from the size

    def key(self) -> str:
        return f"{self.net_income}|{self.rigid_expenditure}|{self.per_capita_income}"


@dataclass
class Row:
    """One person's row of the export, read and checked (by the importer). Household-level columns are read
    on every row so that a bad value rejects the row it is on."""

    number: int
    household_id: str
    division_code: str
    person_id: str
    name: str
    relation: str
    birth_date: date
    labour: str
    in_school: bool
    disabled: bool
    illness: bool
    household_type: str
    category: str | None
    identified: date | None
    eliminated: date | None
    exit_mode: str | None
    risks: list[str]
    income: Income | None
    post_income: Income | None
    # guarantees at identification and after elimination, as the row states them
    dangerous_house: bool | None
    water_safe: bool | None
    dropout_flag: bool | None
    uninsured_flag: bool | None
    insured: bool | None
    out_of_school_reason: str
    post_house_damaged: bool | None
    post_water_damaged: bool | None
    post_dropout_flag: bool | None
    post_uninsured_flag: bool | None
    measures: list[tuple[str, str]]
    developmental_done: bool | None
    cadre: str
    collector: str
    #: the row's other columns as written (column → text): those no other fact holds
    kept: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- one household


@dataclass
class LegacyHousehold:
    """One household of the export, assembled from its readable rows."""

    household_id: str
    division_code: str
    household_type: str
    rows: list[Row]
    category: str | None
    identified: date | None
    eliminated: date | None
    exit_mode: str | None
    risks: list[str]
    measures: list[tuple[str, str]]
    developmental_done: bool | None
    cadre: str
    #: rows of this household that could not be read (then nobody is removed for being absent)
    rejected_rows: int = 0
    #: the export has the measure columns (else measures are left as they are)
    has_measure_columns: bool = True
    #: the export has the 帮扶责任人 column (else whether a cadre is responsible is unknown, not missing)
    has_cadre_column: bool = True

    @property
    def head(self) -> Row:
        return next((r for r in self.rows if r.relation == "户主"), self.rows[0])




@dataclass(frozen=True)
class Source:
    """Where imported facts come from: the export file's name and the month it was taken."""

    file_name: str
    exported_on: date

    @property
    def origin(self) -> str:
        return f"{ORIGIN}:{self.file_name}"

    @property
    def month(self) -> date:
        return self.exported_on.replace(day=1)


@dataclass
class Result:
    """What importing one household did: the aggregate with its new (pending) facts, or notes on what was
    left as it was."""

    household: Household | None
    created: bool = False
    events: int = 0
    #: the household's responsible cadre was recorded as unknown now
    cadre_unknown: bool = False
    notes: list[str] = field(default_factory=list)


def _digest(*parts: Any) -> str:
    return hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:12]


def measure_id(household_id: str, measure_type: str, name: str) -> str:
    """Imported measures are known by household, type and name (the export has no measure ids or dates)."""
    return f"ne-{_digest(household_id, measure_type, name)}"


class _Facts:
    """Triggers imported facts on one household: common fields, idempotency keys, no guards."""

    def __init__(self, h: LegacyHousehold, source: Source, policies: PolicyBook):
        self.h = h
        self.source = source
        self.policies = policies
        self.agg: Household | None = None
        self.count = 0

    def actor(self) -> dict[str, Any]:
        return {"id": ORIGIN, "name": "国家防返贫监测信息系统", "role": "system", "unit": self.h.division_code[:6]}

    def common(self, on: date, key: str | None, note: str | None = None) -> dict[str, Any]:
        return {
            "on": on,
            "actor": self.actor(),
            "command_id": None if key is None else f"{ORIGIN}:{self.h.household_id}:{key}",
            "note": note,
            "evidence": [self.source.file_name],
            "origin": self.source.origin,
            "date_precision": "month",
        }

    def seen(self, key: str) -> bool:
        return self.agg is not None and f"{ORIGIN}:{self.h.household_id}:{key}" in self.agg.command_ids

    def trigger(self, event_class: type, on: date, key: str | None, note: str | None = None, **payload: Any) -> None:
        assert self.agg is not None
        self.agg.trigger_event(event_class, **payload, **self.common(on, key, note))
        self.count += 1


def _member(r: Row) -> dict[str, Any]:
    return {"person_id": r.person_id, "name": r.name, "relation": r.relation, "birth_date": r.birth_date,
            "labour": r.labour, "in_school": r.in_school, "disabled": r.disabled, "illness": r.illness,
            "origin": ORIGIN}


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _flag(h: LegacyHousehold, attr: str) -> bool | None:
    """A household-level flag: the head's row, else the first row that states it."""
    value = getattr(h.head, attr)
    if value is None:
        value = next((getattr(r, attr) for r in h.rows if getattr(r, attr) is not None), None)
    return value


def _without_numbers(g: dict[str, Any], h: LegacyHousehold) -> dict[str, Any]:
    """A guarantee assessment with each person's ID number replaced by the person's place among the household's
    numbers, for its command id: a digest of the numbers themselves, beside their masked form in the feed,
    could be checked against every birth date."""
    place = _places(h)
    return {k: [place.get(x, -1) for x in v] if isinstance(v, list) else v for k, v in g.items()}


def _places(h: LegacyHousehold) -> dict[str, int]:
    """Each person's place among the household's ID numbers: how a command id names a person (never by the
    number, nor by a digest of the number or the name)."""
    return {pid: n for n, pid in enumerate(sorted(r.person_id for r in h.rows))}


def _guarantees(h: LegacyHousehold, on: date, post: bool) -> dict[str, Any] | None:
    """A guarantee assessment from the 3+1 columns (at identification, or 风险消除后), or None if the export
    says nothing. Household-level flags name people where the rows allow (未上学原因, the per-person insurance
    columns); otherwise school-age members (a dropout) or the head, so that an open guarantee the export
    states is never lost."""
    if post:
        flags = [_flag(h, a) for a in ("post_house_damaged", "post_water_damaged", "post_dropout_flag",
                                       "post_uninsured_flag")]
        if all(v is None for v in flags):
            return None
        house, water_bad, dropout, uninsured_flag = flags
        water_safe = water_bad is not True
        children: list[str] = []
    else:
        flags = [_flag(h, a) for a in ("dangerous_house", "water_safe", "dropout_flag", "uninsured_flag")]
        if all(v is None for v in flags):
            return None
        house, water, dropout, uninsured_flag = flags
        water_safe = water is not False
        children = [r.person_id for r in h.rows if r.out_of_school_reason]
    if dropout and not children:
        children = _school_age(h.rows, on) or [h.head.person_id]
    if dropout is False and not post:
        children = []
    named = [r.person_id for r in h.rows if r.insured is False]
    if uninsured_flag is True:
        uninsured = named or [h.head.person_id]
    elif uninsured_flag is False or post:
        uninsured = []
    else:
        uninsured = named
    return {
        "housing": Housing.C_LEVEL.value if house else Housing.SAFE.value,
        "drinking_water_safe": water_safe,
        "children_out_of_school": children,
        "members_without_medical_insurance": uninsured,
    }


def _school_age(rows: list[Row], on: date) -> list[str]:
    return [r.person_id for r in rows if SCHOOL_AGE[0] <= _age(r.birth_date, on) <= SCHOOL_AGE[1]]


def _income_payload(income: Income, on: date, size: int) -> dict[str, Any]:
    start, end = month_window(on)
    per_capita = income.per_capita_income
    if per_capita is None:
        per_capita = ((income.net_income - income.rigid_expenditure) / max(size, 1)).quantize(CENT, ROUND_HALF_UP)
    return {"period_start": start, "period_end": end, "net_income": income.net_income,
            "rigid_expenditure": income.rigid_expenditure, "household_size": size, "per_capita_income": per_capita}


def import_household(existing: Household | None, h: LegacyHousehold, source: Source, policies: PolicyBook) -> Result:
    """The facts of `h` that `existing` (None: a new household) does not hold yet, triggered on it.

    Registration (with the members) once; members that appear later are added, imported members that a
    complete newer export no longer lists are removed. Per monitoring cycle (one 识别监测时间): the income
    and guarantee assessments at identification, the county's decision with category and risks, the entry
    into the system; a changed category or risk list is stored as a corrected county decision. Measures by
    household, type and name; an imported measure no longer listed is ended. The elimination with its mode
    and the post-elimination assessments; an elimination the newer export no longer shows is rolled back.
    """
    f = _Facts(h, source, policies)
    result = Result(household=None)
    if existing is None:
        registered_on = min(x for x in (h.identified, source.month) if x is not None)
        f.agg = Household._create(
            Household.Registered,
            id=household_stream(h.household_id),
            division_code=h.division_code,
            household_type=h.household_type,
            relocated=False,
            resettlement_site=None,
            key_county=False,
            members=[_member(r) for r in h.rows],
            **f.common(registered_on, "registered"),
        )
        f.count += 1
        result.created = True
    else:
        f.agg = existing
        _members(f, existing, h, source)
    agg = f.agg
    size = len(h.rows) if h.rejected_rows == 0 else max(len(h.rows), len(agg.current_members()))

    new_cycle = False
    if h.category is not None and h.identified is not None:
        found = _inclusion(f, agg, h, size, result)
        if found is None:
            return _done(f, result)
        new_cycle = found
    else:
        # not a monitoring object: what the export says of income and guarantees, as of the export's month
        _assessments(f, h, source.month, size, "none")

    if h.cadre and agg.stage != Stage.NOT_MONITORED.value and (agg.cadre is None or agg.cadre.get("name") != h.cadre):
        # one cadre a household and export month; not a digest of the name, which the masked feed would give back
        key = f"cadre:{source.month:%Y%m}"
        if not f.seen(key):
            on = h.identified if (new_cycle and h.identified is not None) else source.month
            f.trigger(Household.CadreAssigned, on, key, cadre={"id": None, "name": h.cadre, "unit": h.division_code})

    elif not h.has_cadre_column and agg.cadre is None and agg.included_on is not None and not f.seen("cadre_unknown"):
        on = h.identified if (new_cycle and h.identified is not None) else source.month
        f.trigger(Household.CadreUnknown, on, "cadre_unknown", reason="国家监测系统导出无“帮扶责任人”列")
        result.cadre_unknown = True

    if h.has_measure_columns:
        _measures(f, agg, h, source, new_cycle)
    if h.category is not None and h.identified is not None:
        _elimination(f, agg, h, size, source)
        _current_status(f, agg, h, size, source)
    kept = {r.person_id: r.kept for r in h.rows}
    if kept != getattr(agg, "source_rows", None):
        # one record a household and export month; not a digest of the cells, which hold names and numbers
        key = f"source_rows:{source.month:%Y%m}"
        if not f.seen(key):
            f.trigger(Household.SourceRowsRecorded, source.month, key, people=kept)
    return _done(f, result)


def _done(f: _Facts, result: Result) -> Result:
    result.events = f.count
    result.household = f.agg if f.count else None
    return result


def _assessments(f: _Facts, h: LegacyHousehold, on: date, size: int, cycle_key: str) -> None:
    """The income and guarantee assessments the export states for a cycle (`cycle_key`: its 识别监测时间, or
    "none"), each added once per content."""
    if h.head.income is not None:
        key = f"income:{cycle_key}:{_digest(h.head.income.key())}"
        if not f.seen(key):
            f.trigger(Household.IncomeAssessed, on, key, **_income_payload(h.head.income, on, size))
    g = _guarantees(h, on, post=False)
    if g is not None:
        key = f"guarantees:{cycle_key}:{_digest(_without_numbers(g, h))}"
        if not f.seen(key):
            f.trigger(Household.GuaranteesAssessed, on, key, **g)


def _current_status(f: _Facts, agg: Household, h: LegacyHousehold, size: int, source: Source) -> None:
    """The current-status columns (人均纯收入 and its parts, 是否危房户, 是否解决安全饮用水, the insurance
    columns) describe the household on the day of the export: they are also stored as assessments of the
    export's month, beside the identification month's and the 风险消除后… ones, so that the rules judge an
    eliminated household in a dangerous house on that date instead of the post-elimination columns hiding it.
    Added when they differ from the household's newest assessment of the same kind by then."""
    month = f"{source.month:%Y%m}"
    if h.head.income is not None:
        payload = _income_payload(h.head.income, source.month, size)
        key = f"current_income:{month}:{_digest(h.head.income.key())}"
        newest = _newest(agg.incomes, source.month)
        same = newest is not None and all(newest[k] == payload[k] for k in
                                          ("net_income", "rigid_expenditure", "per_capita_income"))
        if not same and not f.seen(key):
            f.trigger(Household.IncomeAssessed, source.month, key, note="国家监测系统导出时的收入情况", **payload)
    g = _guarantees(h, source.month, post=False)
    if g is not None:
        key = f"current_guarantees:{month}:{_digest(_without_numbers(g, h))}"
        newest = _newest(agg.guarantees, source.month)
        same = newest is not None and all(
            (sorted(newest[k]) == sorted(g[k])) if isinstance(g[k], list) else newest[k] == g[k] for k in g)
        if not same and not f.seen(key):
            f.trigger(Household.GuaranteesAssessed, source.month, key, note="国家监测系统导出时的三保障及饮水情况",
                      **g)


def _newest(assessments: list[dict[str, Any]], on: date) -> dict[str, Any] | None:
    """The assessment in force on `on`: the latest dated on or before it (the later recorded on a tie)."""
    dated = [(a["on"], i) for i, a in enumerate(assessments) if a["on"] <= on]
    return assessments[max(dated)[1]] if dated else None


def _members(f: _Facts, agg: Household, h: LegacyHousehold, source: Source) -> None:
    listed = {r.person_id for r in h.rows}
    places = _places(h)
    for r in h.rows:
        current = agg.members.get(r.person_id)
        if current is None or current.get("removed_on") is not None:
            f.trigger(Household.MemberAdded, source.month, None, note="国家监测系统导出新增成员",
                      member=_member(r), reason="other")
        elif not current.get("name") and r.name:
            # imports before the fix stored every person with an empty name: the export gives it back
            # named by the person's place in this export month's household: a command id is not masked
            f.trigger(Household.MemberNameCorrected, source.month, f"name:{source.month:%Y%m}:{places[r.person_id]}",
                      note="国家监测系统导出补录姓名", person_id=r.person_id, name=r.name)
    if h.rejected_rows:
        return  # an unreadable row may be the member who looks absent: remove nobody
    for pid, m in list(agg.members.items()):
        if m.get("removed_on") is None and m.get("origin") == ORIGIN and pid not in listed:
            if len(agg.current_members()) <= 1:
                break
            f.trigger(Household.MemberRemoved, source.month, None, note="国家监测系统导出中已无此成员",
                      person_id=pid, reason="other")


def _inclusion(f: _Facts, agg: Household, h: LegacyHousehold, size: int, result: Result) -> bool | None:
    """The cycle of `h.identified`: True when its inclusion facts were added now, False when the household
    already holds it, None when the household's state contradicts it (noted, nothing imported)."""
    ident = h.identified
    assert ident is not None and h.category is not None
    month = f"{ident:%Y%m}"
    included = agg.included_on
    if included is not None and included.replace(day=1) == ident:
        _assessments(f, h, ident, size, month)
        changed = h.category != agg.category or list(h.risks) != list(agg.risk_types)
        key = f"category:{month}:{_digest(h.category, h.risks)}"
        if changed and agg.procedure is None and not f.seen(key):
            # a correction of the same cycle: the case stays where it is (stage unchanged, no procedure opened)
            f.trigger(Household.CountyDecided, max(ident, f.source.month), key,
                      note="国家监测系统导出更正: 监测对象类别/风险类型",
                      procedure=Procedure.INCLUSION.value, step=Inclusion.ENTERED.value, stage=agg.stage,
                      decision="approve", category=h.category, risk_types=list(h.risks))
        return False
    if agg.stage in (Stage.MONITORED.value, Stage.IN_EXIT.value):
        result.notes.append(f"户 {h.household_id} 已于 {included} 纳入监测, 与导出的识别监测时间 {month} 不一致; "
                            "该户未导入, 请核对")
        return None
    if agg.eliminated_on is not None and ident <= agg.eliminated_on:
        result.notes.append(f"户 {h.household_id} 的识别监测时间 {month} 不晚于已有的风险消除 ({agg.eliminated_on}); "
                            "该户未导入, 请核对")
        return None
    _assessments(f, h, ident, size, month)
    f.trigger(Household.CountyDecided, ident, f"county:{month}",
              procedure=Procedure.INCLUSION.value, step=Inclusion.COUNTY_APPROVED.value,
              stage=Stage.IN_INCLUSION.value, decision="approve", category=h.category, risk_types=list(h.risks))
    f.trigger(Household.EnteredSystem, ident, f"entered:{month}",
              procedure=Procedure.INCLUSION.value, step=Inclusion.ENTERED.value, stage=Stage.MONITORED.value)
    return True


def _measures(f: _Facts, agg: Household, h: LegacyHousehold, source: Source, new_cycle: bool) -> None:
    """Measures by type and name, dated the month of identification when their cycle is imported now, else
    the export's month (the export has no measure dates: a measure is known from the first export listing
    it). Developmental measures of a household whose 实施开发式帮扶措施情况 is 尚未实施 are planned only."""
    on = h.identified if (new_cycle and h.identified is not None) else source.month
    active: set[str] = set()
    for mtype, name in h.measures:
        base = measure_id(h.household_id, mtype, name)
        ids = [mid for mid in agg.measures if mid == base or mid.startswith(base + "-")]
        current = next((mid for mid in ids if agg.measures[mid]["status"] != "ended"), None)
        implemented = not (mtype in DEVELOPMENTAL_MEASURES and h.developmental_done is False)
        if current is not None:
            active.add(current)
            m = agg.measures[current]
            if m["status"] == "planned" and implemented:
                f.trigger(Household.MeasureImplemented, max(source.month, m["planned_on"]), None, measure_id=current)
            continue
        mid = base if not ids else f"{base}-{len(ids)}"
        active.add(mid)
        f.trigger(Household.MeasurePlanned, on, None, measure_id=mid, measure_type=mtype,
                  addresses=_addresses(f.policies, mtype, h.risks or list(agg.risk_types), on),
                  department=MeasureType(mtype).label, responsible=name)
        if implemented:
            f.trigger(Household.MeasureImplemented, on, None, measure_id=mid)
    for mid, m in list(agg.measures.items()):
        if mid.startswith("ne-") and m["status"] != "ended" and mid not in active:
            f.trigger(Household.MeasureEnded, max(source.month, m["implemented_on"] or m["planned_on"]), None,
                      note="国家监测系统导出中已无此措施", measure_id=mid)


def _addresses(policies: PolicyBook, mtype: str, risks: list[str], on: date) -> list[str]:
    """The household's risks the measure fits (the fit table in force), else all its risks."""
    policy = policies.on(on)
    fitting = [r for r in risks if mtype in policy.fitting_measures(r)]
    return fitting or list(risks) or [RiskType.OTHER.value]


def _elimination(f: _Facts, agg: Household, h: LegacyHousehold, size: int, source: Source) -> None:
    ident = h.identified
    assert ident is not None
    if agg.included_on is None or agg.included_on.replace(day=1) != ident:
        return
    if h.eliminated is None:
        if agg.stage == Stage.RISK_ELIMINATED.value and agg.eliminated_on is not None:
            key = f"rollback:{ident:%Y%m}:{agg.eliminated_on:%Y%m}"
            if not f.seen(key):
                f.trigger(Household.EliminationRolledBack, max(source.month, agg.eliminated_on), key,
                          note="国家监测系统导出显示风险未消除", reason="国家监测系统导出显示风险未消除",
                          stage=Stage.MONITORED.value)
        return
    month = f"{h.eliminated:%Y%m}"
    key = f"eliminated:{ident:%Y%m}:{month}"
    if not f.seen(key) and agg.stage in (Stage.MONITORED.value, Stage.IN_EXIT.value):
        f.trigger(Household.RiskEliminated, h.eliminated, key,
                  procedure=Procedure.EXIT.value, step=Exit.ELIMINATED.value, stage=Stage.RISK_ELIMINATED.value,
                  mode=h.exit_mode)
    if not f.seen(key):
        return
    if h.head.post_income is not None:
        key = f"post_income:{month}:{_digest(h.head.post_income.key())}"
        if not f.seen(key):
            f.trigger(Household.IncomeAssessed, h.eliminated, key,
                      **_income_payload(h.head.post_income, h.eliminated, size))
    g = _guarantees(h, h.eliminated, post=True)
    if g is not None:
        key = f"post_guarantees:{month}:{_digest(_without_numbers(g, h))}"
        if not f.seen(key):
            f.trigger(Household.GuaranteesAssessed, h.eliminated, key, **g)
