"""Use cases the edges share: the console's pages, the HTTP API and the CLI call these, so that a rule or a
query is written once.

- `legal_steps` / `step_forms`: what a person in a role may do next on a household, from the workflow tables
  (`workflows/`, via `casecore.household.legal_commands`) and the role rules (`casecore.authority.ROLES`);
- `command_from_form`: a posted form as a contract command (it then goes through the same path as the API's:
  pydantic command → `CaseManagement.handle_many` → Outcome);
- `households_page`, `search_households`: paged listings of every stage, and search, within a prefix;
- `village_todo`, `approval_inbox`: the deadline clocks of 工作台;
- `raise_problems_from_findings`: findings into the double ledger (CLI `inspect --raise-problems`, console);
- `import_national_file`, `screen_file`: files from other systems (the national export, a department's
  screening file) into the log (CLI `import national`, `screen`; the demo);
- `import_measures`, `month_end_push`: what the provincial exchange brings in (the measures departments report
  back) and sends out (the month's list) (CLI `import measures`, `export roster`);
- `rebuild_projections`, `catch_up_projections`: the read models from position 0, or the events after each one's
  position (CLI `projections`);
- `read_roster` / `roster_rows`, `read_ledgers` / `ledger_rows`, `run_rules`: what the listings and their
  workbooks read, caught up or as the tables stand (CLI `roster`, `ledger`, `inspect`; the HTTP service; the
  demo), and `store_findings`, the kept run `/findings` reads.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from casecore import commands as c
from casecore.application import CaseManagement
from casecore.authority import ROLES
from casecore.errors import CaseError
from casecore.household import legal_commands, step_label
from casecore.labels import MEASURE_STATUS
from casecore.policy import PolicyBook
from casecore.values import (
    Category,
    CountyDecision,
    ExitMode,
    Finding,
    Labour,
    LeadSource,
    MeasureType,
    MemberChange,
    ObjectionOutcome,
    RiskType,
    Role,
    Stage,
    TownshipDecision,
    add_months,
)
from projections.divisions import within
from workflows.inclusion import LABELS as INCLUSION_LABELS
from workflows.inclusion import Inclusion

if TYPE_CHECKING:
    from adapters.importers.national import Divisions
    from adapters.importers.national import Report as ImportReport
    from adapters.importers.screening import Report as ScreeningReport
    from adapters.readside.places import Places
    from adapters.readside.readmodels import ReadModels

# ---------------------------------------------------------------------------------------------------- next steps

#: the reasons a member joins a household, and leaves it (a birth does not take anyone away)
MEMBER_JOINS = (MemberChange.BIRTH, MemberChange.MARRIAGE, MemberChange.MOVED, MemberChange.OTHER)
MEMBER_LEAVES = (MemberChange.DEATH, MemberChange.MARRIAGE, MemberChange.MOVED, MemberChange.OTHER)

#: commands that belong to no procedure step, by the stage in which a household can take them
#: (a measure can be ended and the members can change whatever the stage: the household's own commands guard
#: them, not a procedure's table)
_ANY_STAGE = ("end_measure", "add_member", "remove_member")
OUTSIDE_PROCEDURE: dict[str, tuple[str, ...]] = {
    Stage.NOT_MONITORED: ("record_lead", "assess_income", *_ANY_STAGE),
    Stage.IN_INCLUSION: ("assess_income", *_ANY_STAGE),
    Stage.MONITORED: ("assign_cadre", "plan_measure", "implement_measure", "nominate_exit", "assess_income",
                      "record_lead", *_ANY_STAGE),
    Stage.IN_EXIT: ("assess_income", *_ANY_STAGE),
    Stage.RISK_ELIMINATED: ("record_lead", "rollback_elimination", "assess_income", *_ANY_STAGE),
}


def legal_steps(state: Mapping[str, Any], role: Role | str) -> list[str]:
    """The commands this role may take on the household now: the open procedure's next steps from its table,
    else the stage's own, each kept only when the role may issue it."""
    procedure, step = state.get("open_procedure"), state.get("procedure_step")
    wanted = list(legal_commands(procedure, step)) if procedure and step else []
    for name in OUTSIDE_PROCEDURE.get(state.get("stage") or "", ()):
        if name not in wanted:
            wanted.append(name)
    return [name for name in wanted if Role(role) in ROLES.get(name, frozenset())]


@dataclass
class FormField:
    name: str
    label: str
    kind: str = "text"  # text | select | multi | check (one yes/no box) | date | number
    options: list[tuple[str, str]] = field(default_factory=list)
    default: str = ""
    required: bool = True


@dataclass
class StepForm:
    command: str
    label: str
    fields: list[FormField]


def _options(enum: Iterable[Any]) -> list[tuple[str, str]]:
    return [(e.value, e.label) for e in enum]


def _field_specs(command: str, state: Mapping[str, Any]) -> list[FormField]:
    risks = _options(RiskType)
    open_leads = [(ld["lead_id"], f"{ld['lead_id']} ({ld.get('on', '')})") for ld in state.get("leads", [])
                  if ld.get("status") == "open"]
    objections = [(o["objection_id"], o["objection_id"]) for o in state.get("objections", [])
                  if not o.get("outcome")]
    planned = [(m["measure_id"], m["measure_id"]) for m in state.get("measures", [])
               if m.get("status") == "planned"]
    not_ended = [(m["measure_id"], f"{m['measure_id']} ({MEASURE_STATUS.get(m.get('status', ''), '')})")
                 for m in state.get("measures", []) if m.get("status") in ("planned", "implemented")]
    current = [(m["person_id"], f"{m.get('name', '')} ({m['person_id']})") for m in state.get("members", [])
               if not m.get("removed_on")]
    specs: dict[str, list[FormField]] = {
        "record_lead": [FormField("lead_id", "线索编号", default=f"L{secrets.token_hex(3).upper()}"),
                        FormField("source", "线索来源", "select", _options(LeadSource)),
                        FormField("risk_types", "风险类型", "multi", risks, required=False),
                        FormField("detail", "情况说明", required=False)],
        "verify_lead": [FormField("lead_id", "线索", "select", open_leads),
                        FormField("finding", "核实结论", "select", _options(Finding))],
        "raise_objection": [FormField("objection_id", "异议编号", default=f"O{secrets.token_hex(2).upper()}"),
                            FormField("detail", "异议内容", required=False)],
        "resolve_objection": [FormField("objection_id", "异议", "select", objections),
                              FormField("outcome", "处理结果", "select", _options(ObjectionOutcome))],
        "review_township": [FormField("decision", "审核意见", "select", _options(TownshipDecision))],
        "approve_county": [FormField("decision", "审批意见", "select", _options(CountyDecision)),
                           FormField("category", "监测对象类别", "select", _options(Category), required=False),
                           FormField("risk_types", "风险类型", "multi", risks, required=False)],
        "assign_cadre": [FormField("cadre.id", "帮扶责任人编号"), FormField("cadre.name", "姓名"),
                         FormField("cadre.unit", "单位")],
        "plan_measure": [FormField("measure_id", "措施编号", default=f"M{secrets.token_hex(3).upper()}"),
                         FormField("measure_type", "措施类型", "select", _options(MeasureType)),
                         FormField("addresses", "针对风险", "multi", risks),
                         FormField("department", "责任部门"), FormField("responsible", "责任人")],
        "implement_measure": [FormField("measure_id", "措施", "select", planned)],
        "end_measure": [FormField("measure_id", "措施", "select", not_ended)],
        "add_member": [FormField("member.name", "姓名"), FormField("member.person_id", "身份证号"),
                       FormField("member.relation", "与户主关系"), FormField("member.birth_date", "出生日期", "date"),
                       FormField("member.labour", "劳动能力", "select", _options(Labour)),
                       FormField("member.in_school", "在校", "check", required=False),
                       FormField("member.disabled", "残疾", "check", required=False),
                       FormField("member.illness", "患病", "check", required=False),
                       FormField("reason", "增加原因", "select", _options(MEMBER_JOINS))],
        "remove_member": [FormField("person_id", "成员", "select", current),
                          FormField("reason", "减少原因", "select", _options(MEMBER_LEAVES))],
        "nominate_exit": [FormField("mode", "消除方式", "select", _options(ExitMode))],
        "verify_exit": [FormField("finding", "核实结论", "select", _options(Finding))],
        "rollback_elimination": [FormField("reason", "回退原因")],
        "assess_income": [FormField("period_start", "测算起", "date"), FormField("period_end", "测算止", "date"),
                          FormField("net_income", "家庭纯收入 (元)", "number"),
                          FormField("rigid_expenditure", "刚性支出 (元)", "number", default="0")],
    }
    return specs.get(command, [])


def step_forms(state: Mapping[str, Any], role: Role | str) -> list[StepForm]:
    """One form per legal next step (a step whose choices are empty, e.g. no planned measure, is left out)."""
    out = []
    for name in legal_steps(state, role):
        fields = _field_specs(name, state)
        if any(f.kind == "select" and f.required and not f.options for f in fields):
            continue
        out.append(StepForm(name, c.LABELS.get(name, name), fields))
    return out


def command_from_form(household_id: str, command: str, form: Mapping[str, Any], on: str) -> dict[str, Any]:
    """A posted step form as a contract command object (the actor is the session's, added by the caller).
    `form` maps a field name to a string or a list of strings (checkboxes)."""
    doc: dict[str, Any] = {"command": command, "household_id": household_id, "on": on}
    fields = {f.name: f for f in _field_specs(command, {})}
    for name, spec in fields.items():
        raw = form.get(name)
        if spec.kind == "multi":
            value: Any = [v for v in (raw if isinstance(raw, list) else [raw] if raw else []) if v]
        elif spec.kind == "check":
            value = any(v for v in (raw if isinstance(raw, list) else [raw]))
        else:
            value = (raw[0] if isinstance(raw, list) and raw else raw) or ""
            value = value.strip()
            if not value and not spec.required:
                continue
        if "." in name:
            outer, inner = name.split(".", 1)
            doc.setdefault(outer, {})[inner] = value
        else:
            doc[name] = value
    note = form.get("note")
    if isinstance(note, list):
        note = note[0] if note else None
    if note:
        doc["note"] = note
    return doc


# ---------------------------------------------------------------------------------------------------- listings


@dataclass
class Filters:
    """What a listing of households is narrowed by (all optional)."""

    division: str = ""
    stage: str = ""
    category: str = ""
    risk_type: str = ""


def _household_query(prefix: str, filters: Filters) -> Any:
    from projections.roster import roster

    where = []
    wanted = filters.division if filters.division.startswith(prefix) else prefix
    if wanted:
        where.append(within(roster.c.division_code, wanted))
    if filters.stage:
        where.append(roster.c.stage == filters.stage)
    if filters.category:
        where.append(roster.c.category == filters.category)
    if filters.risk_type:
        # risk_types is a JSON list; its text holds the quoted value
        where.append(sa.cast(roster.c.risk_types, sa.Text).contains(f'"{filters.risk_type}"', autoescape=True))
    return where


def households_page(conn: Connection, prefix: str, filters: Filters, offset: int = 0, limit: int = 50
                    ) -> tuple[int, list[dict[str, Any]]]:
    """Households of every stage within a prefix and the filters, ordered by division and id: the total and
    one page (with each household's head of household's name)."""
    from projections.roster import roster

    where = _household_query(prefix, filters)
    total = conn.execute(sa.select(sa.func.count()).select_from(roster).where(*where)).scalar_one()
    rows = [dict(r) for r in conn.execute(
        sa.select(roster).where(*where).order_by(roster.c.division_code, roster.c.household_id)
        .offset(offset).limit(limit)).mappings()]
    _add_heads(conn, rows)
    return total, rows


def _add_heads(conn: Connection, rows: list[dict[str, Any]]) -> None:
    from projections.roster import roster_members

    ids = [r["household_id"] for r in rows]
    heads: dict[str, str] = {}
    if ids:
        q = sa.select(roster_members.c.household_id, roster_members.c.name, roster_members.c.relation).where(
            roster_members.c.household_id.in_(ids), roster_members.c.removed_on.is_(None))
        for hid, name, relation in conn.execute(q):
            if hid not in heads or relation in ("户主", "head"):
                heads[hid] = name
    for r in rows:
        # nested under `name` so that masking (adapters.integration.feed.mask) treats it as the person's name it is
        r["head"] = {"name": heads.get(r["household_id"], "")}


def households_workbook(rows: list[dict[str, Any]]) -> bytes:
    """A listing of households as an xlsx workbook (Chinese headers and labels, places by name), laid out and
    escaped as every workbook is (`adapters.output.sheets`: a name or number starting with `=` stays text)."""
    import io

    from adapters.output.sheets import Column, new_workbook, sheet, subtitle, title, write_table
    from adapters.readside.places import place_path

    columns = [Column("household_id", "户编号"), Column("head", "户主"), Column("village", "所在村"),
               Column("stage", "阶段"), Column("category", "监测对象类别"), Column("risk_types", "风险类型", wrap=24),
               Column("household_size", "人口"), Column("included_on", "纳入日期"),
               Column("eliminated_on", "风险消除日期")]
    table = []
    for r in rows:
        category = r.get("category")
        table.append({
            "household_id": r["household_id"], "head": (r.get("head") or {}).get("name", ""),
            "village": place_path(r["division_code"]), "stage": Stage(r["stage"]).label,
            "category": Category(category).label if category else "",
            "risk_types": "、".join(RiskType(x).label for x in r.get("risk_types") or []),
            "household_size": r.get("household_size"), "included_on": r.get("included_on"),
            "eliminated_on": r.get("eliminated_on")})
    wb = new_workbook()
    # served to a caller of the API or the console: the service's own login is not who printed it
    write_table(sheet(wb, "农户名单"), title("", "农户名单", None), subtitle(None, who=""), columns, table)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def search_households(conn: Connection, prefix: str, q: str, limit: int = 50, *,
                      personal_data: bool = False) -> list[dict[str, Any]]:
    """Households within a prefix whose id, a member's name or ID number, or division code matches `q`
    (a household number exactly or by prefix, a village by its code; a name or ID number by prefix for a
    caller entitled to personal data, else only whole: a masked reader matching by prefix could spell out
    the hidden digits and characters one at a time from whether a household comes back)."""
    from projections.roster import roster, roster_members

    q = q.strip()
    if not q:
        return []
    in_reach = within(roster.c.division_code, prefix)
    if personal_data:
        person = sa.or_(roster_members.c.name.startswith(q, autoescape=True),
                        roster_members.c.person_id.startswith(q.upper(), autoescape=True))
    else:
        person = sa.or_(roster_members.c.name == q, roster_members.c.person_id == q.upper())
    members = sa.select(roster_members.c.household_id).where(person)
    match = [roster.c.household_id.startswith(q, autoescape=True), roster.c.household_id.in_(members)]
    if q.isdigit() and len(q) >= 6:
        match.append(within(roster.c.division_code, q))
    rows = [dict(r) for r in conn.execute(
        sa.select(roster).where(in_reach, sa.or_(*match)).order_by(roster.c.division_code, roster.c.household_id)
        .limit(limit)).mappings()]
    _add_heads(conn, rows)
    return rows


# ---------------------------------------------------------------------------------------------------- 工作台


@dataclass
class Clock:
    """One to-do with its deadline clock."""

    household_id: str
    division_code: str
    what: str
    since: date | None
    deadline: date | None
    as_of: date

    @property
    def days_left(self) -> int | None:
        return None if self.deadline is None else (self.deadline - self.as_of).days

    @property
    def overdue(self) -> bool:
        return self.deadline is not None and self.deadline < self.as_of

    @property
    def days_waiting(self) -> int | None:
        return None if self.since is None else (self.as_of - self.since).days


def _opened_on(conn: Connection, ids: list[str], event_type: str) -> dict[str, date]:
    from projections.timeline import timeline

    if not ids:
        return {}
    q = sa.select(timeline.c.stream_id, sa.func.max(timeline.c.on)).where(
        timeline.c.aggregate == "household", timeline.c.type == event_type, timeline.c.stream_id.in_(ids)
    ).group_by(timeline.c.stream_id)
    return {sid: on for sid, on in conn.execute(q)}


def village_todo(conn: Connection, policies: PolicyBook, prefix: str, as_of: date, limit: int = 200) -> list[Clock]:
    """The village's to-do with deadline clocks: leads not verified and identifications under way (the
    identification limit from the lead), notices to close (D + the notice days), measures planned but not
    carried out, yearly income re-assessments due, households past the assistance months that may be
    nominated for exit. Overdue first, then by deadline."""
    from projections.roster import roster, roster_measures

    policy = policies.on(as_of)
    limit_days = policy.procedure.identification_days_limit
    r = roster.c
    in_reach = within(r.division_code, prefix)
    out: list[Clock] = []
    inclusion = conn.execute(sa.select(r.household_id, r.division_code, r.procedure_step, r.procedure_started_on)
                             .where(in_reach, r.open_procedure == "inclusion")
                             .order_by(r.procedure_started_on).limit(limit)).all()
    publicity = _opened_on(conn, [h for h, _, step, _ in inclusion if step == "in_publicity"], "publicity_opened")
    for hid, division, step, started in inclusion:
        if step == "in_publicity" and hid in publicity:
            opened = publicity[hid]
            out.append(Clock(hid, division, f"公示结束 (公示满{policy.procedure.publicity_days}天)", opened,
                             opened + timedelta(days=policy.procedure.publicity_days), as_of))
        label = ("线索待入户核实" if step == "lead_recorded"
                 else f"识别程序: {INCLUSION_LABELS.get(Inclusion(step), step)}")
        deadline = started + timedelta(days=limit_days) if started else None
        out.append(Clock(hid, division, f"{label} ({limit_days}天内完成识别)", started, deadline, as_of))
    m = roster_measures.c
    planned = conn.execute(sa.select(m.household_id, r.division_code, m.measure_id, m.planned_on)
                           .select_from(roster_measures.join(roster, roster.c.household_id == m.household_id))
                           .where(in_reach, m.status == "planned").order_by(m.planned_on).limit(limit)).all()
    for hid, division, mid, planned_on in planned:
        out.append(Clock(hid, division, f"措施 {mid} 已计划未落实", planned_on, None, as_of))
    yearly = policy.income.assessment_months
    due = conn.execute(sa.select(r.household_id, r.division_code, r.income_assessed_on)
                       .where(in_reach, r.stage.in_(("monitored", "in_exit")),
                              sa.or_(r.income_assessed_on.is_(None),
                                     r.income_assessed_on <= add_months(as_of, -yearly)))
                       .order_by(r.income_assessed_on).limit(limit)).all()
    for hid, division, assessed in due:
        deadline = add_months(assessed, yearly) if assessed else None
        out.append(Clock(hid, division, f"年度收入核算到期 (每{yearly}个月核算一次)", assessed, deadline, as_of))
    months = policy.exit.min_assistance_months
    horizon = add_months(as_of, -months)
    candidates = conn.execute(sa.select(r.household_id, r.division_code, r.included_on)
                              .where(in_reach, r.stage == "monitored", r.included_on <= horizon)
                              .order_by(r.included_on).limit(limit)).all()
    for hid, division, included in candidates:
        out.append(Clock(hid, division, f"监测满{months}个月: 核实收入, 符合条件可提名风险消除", included, None, as_of))
    out.sort(key=lambda k: (not k.overdue, k.deadline or date.max, k.since or date.max))
    return out


#: which procedure steps wait for which level's decision
WAITING_FOR: dict[str, tuple[tuple[str, str], ...]] = {
    Role.TOWNSHIP: (("inclusion", "publicity_closed"), ("inclusion", "county_approved"),
                    ("exit", "publicity_closed"), ("exit", "county_approved")),
    Role.COUNTY: (("inclusion", "township_passed"), ("exit", "township_passed")),
}


def approval_inbox(conn: Connection, policies: PolicyBook, role: Role | str, prefix: str, as_of: date,
                   limit: int = 200) -> list[Clock]:
    """Procedures waiting for this level's decision, days waiting against the identification limit, oldest
    first."""
    from projections.roster import roster

    steps = WAITING_FOR.get(Role(role), ())
    if not steps:
        return []
    r = roster.c
    in_reach = within(r.division_code, prefix)
    waiting = sa.or_(*[sa.and_(r.open_procedure == p, r.procedure_step == s) for p, s in steps])
    rows = conn.execute(sa.select(r.household_id, r.division_code, r.open_procedure, r.procedure_step,
                                  r.procedure_started_on).where(in_reach, waiting)
                        .order_by(r.procedure_started_on, r.household_id).limit(limit)).all()
    limit_days = policies.on(as_of).procedure.identification_days_limit
    out = []
    for hid, division, procedure, step, started in rows:
        what = {"publicity_closed": "待乡级审核", "township_passed": "待县级审批",
                "county_approved": "待乡级录入系统"}.get(step, step)
        what = f"{'识别' if procedure == 'inclusion' else '风险消除'}: {step_label(procedure, step)} → {what}"
        deadline = started + timedelta(days=limit_days) if started and procedure == "inclusion" else None
        out.append(Clock(hid, division, what, started, deadline, as_of))
    return out


# ---------------------------------------------------------------------------------------------------- commands


def apply_lines(app: CaseManagement, lines: list[tuple[int, str]], batch: int = 500
                ) -> Iterator[tuple[int, c.Command | CaseError, Any]]:
    """Decide the JSON Lines commands in order, each on its own (the bulk path: `batch` commands a transaction):
    (line number, the command or why the line could not be read, the outcome), as each is decided."""
    from adapters.integration.intake import parse_line

    parsed = [parse_line(t) for _, t in lines]
    outcomes = app.handle_many(parsed, batch_size=max(1, batch))
    for (n, _), cmd, outcome in zip(lines, parsed, outcomes):
        yield n, cmd, outcome


# ---------------------------------------------------------------------------------------------------- findings


@dataclass
class Inspection:
    """What one run of the inspector's rules found, and what raising problems from it did."""

    findings: list[Any]
    #: households the rule on a missing cadre could not judge (an export without the column)
    cadre_unknown: int
    raised: Counter[str] = field(default_factory=Counter)
    refusals: list[str] = field(default_factory=list)


def inspect(app: CaseManagement, day: date, rules: list[str] | None = None, division: str | None = None,
            raise_as: dict[str, Any] | None = None, every_projection: bool = False) -> Inspection:
    """Catch the case facts up and run the rules as of `day` (all, or `rules`; under `division`). With
    `raise_as` (an actor), raise a problem for each finding not raised yet, then fold those in as well.
    `every_projection`: catch every read model up, not only the case facts (the demo reads them next)."""
    from adapters.readside.readmodels import read_models
    from projections.casefacts import CaseFactsProjection

    with read_models(app, None if every_projection else [CaseFactsProjection()]) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            done = run_rules(conn, app.policies, day, rules, division)
        if raise_as is not None:
            done.raised, done.refusals = raise_problems_from_findings(app, done.findings, day, raise_as)
            rm.catch_up()
    return done


def raise_problems_from_findings(app: CaseManagement, findings: list[Any], on: date, actor: dict[str, Any],
                                 handle: Callable[[list[Any]], Iterable[Any]] | None = None
                                 ) -> tuple[Counter[str], list[str]]:
    """Raise a problem in the double ledger for each finding not raised yet (idempotent: a problem's id is
    derived from its finding). Returns counts (`raised`, `duplicate`, error codes, `already`) and the
    refusals' sentences. `handle` decides the commands (default: the application's bulk path; the demo
    passes its own, which counts refusals)."""
    from projections.queries.inspector import problem_commands

    counts: Counter[str] = Counter()
    refusals: list[str] = []
    cmds = problem_commands(findings, on, actor)
    by_id = {f.derived_problem_id: f for f in findings}
    outcomes = handle(cmds) if handle is not None else app.handle_many(cmds)
    for cmd, outcome in zip(cmds, outcomes, strict=True):
        if outcome.ok:
            counts["duplicate" if outcome.duplicate else "raised"] += 1
            f = by_id[cmd.problem_id]
            f.problem_id = f.problem_id or cmd.problem_id
        else:
            error = outcome.error
            counts[error.code if error else "error"] += 1
            refusals.append(f"{cmd.problem_id}: {error.message if error else ''}")
    counts["already"] = sum(1 for f in findings if f.raised_problem is not None)
    return counts, refusals


# ---------------------------------------------------------------------------------------------------- exports


def read_ledgers(app: Any, as_of: date, division: str | None) -> tuple[list[dict], list[dict]]:
    """Catch the ledger projection up, then read both ledgers as of a date."""
    from adapters.readside.readmodels import read_models
    from projections.registry import by_name

    with read_models(app, [by_name("ledger")]) as rm:
        rm.catch_up("ledger")
        with rm.engine.connect() as conn:
            return ledger_rows(conn, as_of, division)


def ledger_rows(conn: Connection, as_of: date, division: str | None) -> tuple[list[dict], list[dict]]:
    """Both ledgers as of a date, from the ledger tables as they stand: the problems and the rectification acts."""
    from projections.ledger import problem_rows, rectification_rows

    return problem_rows(conn, as_of, division), rectification_rows(conn, as_of, division)


def with_heads(conn: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row with its household head's name (`head_name`)."""
    from projections.queries.monthly import heads_of

    ids = [r["household_id"] for r in rows]
    heads: dict[str, dict[str, Any]] = {}
    for i in range(0, len(ids), 500):
        heads.update(heads_of(conn, ids[i : i + 500]))
    for r in rows:
        r["head_name"] = heads.get(r["household_id"], {}).get("name")
    return rows


def roster_rows(conn: Connection, division: str | None, all_stages: bool = False, for_workbook: bool = False
                ) -> tuple[list[dict[str, Any]], Places | None]:
    """The roster (every stage with `all_stages`) from its tables as they stand; `for_workbook`: each row with its
    head's name, and the division names a workbook prints (else None)."""
    from adapters.readside.places import Places
    from projections.roster import monitored_roster

    rows = monitored_roster(conn, division, all_stages=all_stages)
    if not for_workbook:
        return rows, None
    return with_heads(conn, rows), Places.load(conn)


def read_roster(app: CaseManagement, division: str | None, all_stages: bool = False, for_workbook: bool = False
                ) -> tuple[list[dict[str, Any]], Places | None]:
    """Catch the roster projection up, then read it (`roster_rows`). ValueError: a store with no tables beside it."""
    from adapters.readside.readmodels import read_models
    from projections.registry import by_name

    rm = read_models(app, [by_name("roster")])
    with rm:
        rm.catch_up("roster")
        with rm.engine.connect() as conn:
            return roster_rows(conn, division, all_stages, for_workbook)


# ---------------------------------------------------------------------------------------------------- the inspector


def unknown_rules(rules: Iterable[str] | None) -> list[str]:
    """The names asked for that are no rule of the inspector's."""
    from projections.queries.inspector import RULES

    return [r for r in rules or [] if r not in RULES]


def run_rules(conn: Connection, policies: PolicyBook, day: date, rules: list[str] | None = None,
              division: str | None = None, jobs: int | None = None) -> Inspection:
    """The inspector's rules (all, or `rules`; under `division`) as of `day` over the case facts as they stand.

    A county or more is shared out among `jobs` connections on `conn`'s engine that read one snapshot
    (`adapters.readside.snapshot`; by default one per core, `CASECORE_INSPECT_JOBS`), a township or a village
    read through `conn` alone."""
    from adapters.readside.snapshot import jobs_for, snapshot
    from projections.queries.inspector import Inspector

    count = jobs_for(division, jobs)
    if count == 1:
        inspector = Inspector(conn, policies, day, division)
        return Inspection(inspector.run(rules or None), inspector.cadre_unknown())
    with snapshot(conn.engine, count) as seen:
        inspector = Inspector(seen.main, policies, day, division)
        return Inspection(inspector.run(rules or None, seen.workers), inspector.cadre_unknown())


def store_findings(app: CaseManagement, as_of: Callable[[], date], every: float | None = None,
                   stored: Callable[[Any], None] | None = None, current: Callable[[date], None] | None = None,
                   sleep: Callable[[float], None] | None = None) -> None:
    """Catch the case facts up and keep the run of every rule as of `as_of()` (asked each time: today moves with
    the clock); with `every`, again every so many seconds, recomputing only the households whose events arrived
    since (everything when the day or the policy changed). `stored(run)` after a run is kept; `current(day)`
    when a single pass found it current already."""
    import time

    from adapters.readside.readmodels import read_models
    from adapters.readside.snapshot import inspection_jobs, snapshot
    from projections import findings_store
    from projections.casefacts import CaseFactsProjection

    with read_models(app, [CaseFactsProjection()]) as rm:
        while True:
            rm.catch_up()
            day = as_of()
            head = rm.runner.max_position()
            # the rules read one snapshot on every job's connection, and the run says which position of the
            # case facts that snapshot held
            with snapshot(rm.engine, inspection_jobs()) as seen, rm.engine.begin() as conn:
                findings_store.create(conn)
                run = findings_store.refresh(
                    conn, app.policies, day, seen.positions["casefacts"], head,
                    lambda after, up_to: findings_store.streams_between(app.recorder.select_notifications,
                                                                        after, up_to),
                    readers=seen.connections)
            if run is not None:
                if stored is not None:
                    stored(run)
            elif every is None and current is not None:
                current(day)
            if every is None:
                return
            (sleep or time.sleep)(every)


# ---------------------------------------------------------------------------------------------------- imports

def national_readers() -> tuple[str, ...]:
    """How a national export may be read: auto (the streaming reader, else calamine for a small file, else
    openpyxl), one of the importer's workbook readers, or CSV."""
    from adapters.importers.national import READERS

    return ("auto", *READERS, "csv")


def national_exported_on(file: Path, given: date | None = None) -> date:
    """The day a national export was taken: the one given, else the date in its file name, else the day the file
    was last written."""
    from adapters.importers.national import exported_on_from_name

    return given or exported_on_from_name(file) or date.fromtimestamp(file.stat().st_mtime)


def import_national_file(app: CaseManagement, file: Path, divisions: Path | Divisions, exported_on: date,
                         reader: str = "auto", progress: Callable[[str, int, int], None] | None = None
                         ) -> ImportReport:
    """Legacy histories from a national export into the log as imported facts (idempotent: only what the store
    does not hold yet). `divisions`: the division table, or its CSV file. Raises `ExportUnreadable`."""
    from adapters.importers.national import Divisions, import_national

    table = divisions if isinstance(divisions, Divisions) else Divisions.load(divisions)
    return import_national(app, file, table, exported_on, progress=progress, reader=reader)


def screen_file(app: CaseManagement, kind: str, file: Path, on: date, unit: str | None = None) -> ScreeningReport:
    """A department's screening file (`kind`: one of `screening_kinds()`) into department-warning leads recorded on
    `on`. Raises `ScreeningUnreadable`."""
    from adapters.importers.screening import screen

    return screen(app, kind, file, on, unit)


def screening_kinds() -> Mapping[str, Any]:
    """The departments' screening files by name, each with its label."""
    from adapters.importers.screening import KINDS

    return KINDS


def import_measures(app: CaseManagement, rows: Iterable[Any], actor: c.Actor
                    ) -> tuple[dict[str, Any], list[Any]]:
    """The measures a department reports back (rows read by `adapters.integration.exchange.read_measure_rows`)
    planned and implemented by `actor`: the summary (`rows`, `bad_rows`, `planned`, `implemented`,
    `already_imported`, `bad`) and the rows not imported (`BadRow`s, by line), each with its first reason."""
    from adapters.integration.exchange import BadRow, measure_commands

    prepared = measure_commands(rows, actor)
    outcomes = list(app.handle_many([cmd for _, cmd in prepared.commands], batch_size=500))
    bad: dict[int, BadRow] = {b.line: b for b in prepared.bad}
    counts: Counter[str] = Counter()
    for (line, cmd), outcome in zip(prepared.commands, outcomes, strict=True):
        if not outcome.ok:
            if line not in bad:  # a refused plan also refuses its implementation: report the first reason
                err = outcome.error
                bad[line] = BadRow(line, f"{err.code}: {err.message}", cmd.household_id,  # type: ignore[union-attr,attr-defined]
                                   cmd.measure_id)  # type: ignore[attr-defined]
        elif outcome.duplicate:
            counts[f"{cmd.command}_duplicate"] += 1
        else:
            counts[cmd.command] += 1
    report = sorted(bad.values(), key=lambda b: b.line)
    summary = {
        "rows": prepared.rows,
        "bad_rows": len(report),
        "planned": counts["plan_measure"],
        "implemented": counts["implement_measure"],
        "already_imported": counts["plan_measure_duplicate"] + counts["implement_measure_duplicate"],
        "bad": [b.as_dict() for b in report],
    }
    return summary, report


def month_end_push(app: CaseManagement, month: str, last_day: date, division: str | None, masked: bool = True
                   ) -> list[dict[str, Any]]:
    """The households monitored on the month's last day, as the provincial platform takes them (personal data
    masked unless the recipient is entitled), after catching the roster and the timeline up."""
    from adapters.integration.exchange import push_rows
    from adapters.readside.readmodels import read_models
    from projections.queries.monthly import month_end_roster

    with read_models(app) as rm:
        rm.catch_up("roster")
        rm.catch_up("timeline")
        with rm.engine.connect() as conn:
            return push_rows(month_end_roster(conn, month, last_day, division), masked=masked)


# ---------------------------------------------------------------------------------------------------- read models


def open_read_models(app: CaseManagement, projection: str | None = None, batch_size: int = 2000) -> ReadModels:
    """The read models beside the application's store: one (`projection`, by name) or all. KeyError: no such
    projection; ValueError: a store with no tables beside it."""
    from adapters.readside.readmodels import read_models
    from projections.registry import by_name

    chosen = None if projection is None else [by_name(projection)]
    return read_models(app, chosen, batch_size=batch_size)


class RebuildStopped(Exception):
    """A rebuild that did not finish: `running` when another rebuild holds the projection; `kept` when batches
    already committed stay and a second run continues from them (a rebuild in processes)."""

    def __init__(self, reason: str, running: bool, kept: bool):
        super().__init__(reason)
        self.reason, self.running, self.kept = reason, running, kept


#: progress of one projection: (name, position, head of the log)
Advance = Callable[[str, int, int], None]


def rebuild_projections(rm: ReadModels, started: Callable[[str, int, int, bool], None], advanced: Advance,
                        restart: bool = False, jobs: int = 1, batch_size: int = 10_000) -> dict[str, tuple[int, int]]:
    """Rebuild the read models from position 0 beside the live tables (an interrupted rebuild continues unless
    `restart`), from one read of the log, or in `jobs` processes. `started(name, position, head, resumed)` for
    each before, `advanced(name, position, head)` as it goes. Returns each one's (events folded, position).
    Raises `RebuildStopped`."""
    from projections.runner import RebuildRunning

    runner = rm.runner
    for s in runner.status():
        # an interrupted rebuild goes on: from its shadow's position, or from the last stream of a fill
        resumed = not restart and ((s.rebuild_position or 0) > 0 or s.filled_through is not None)
        started(s.name, (s.rebuild_position or 0) if resumed else 0, s.head, resumed)
    if jobs > 1 and len(runner.projections) > 1:
        from adapters.readside.parallel import RebuildFailed
        from adapters.readside.parallel import rebuild as rebuild_parallel
        from adapters.readside.readmodels import store_of

        names = [p.name for p in runner.projections]
        try:
            totals = rebuild_parallel(store_of(rm.app).url, names, jobs, batch_size, restart,
                                      progress=advanced).totals
        except RebuildFailed as exc:
            raise RebuildStopped(str(exc), "RebuildRunning" in str(exc), kept=True) from None
    else:
        try:
            totals = runner.rebuild_many(progress=lambda p, position, head: advanced(p.name, position, head),
                                         restart=restart)
        except RebuildRunning as exc:
            raise RebuildStopped(str(exc), running=True, kept=False) from None
    for p in runner.projections:
        done_at = runner.position(p)
        advanced(p.name, done_at, done_at)
    return {name: (n, runner.position(runner.get(name))) for name, n in totals.items()}


def catch_up_projections(rm: ReadModels, started: Advance, advanced: Advance) -> dict[str, tuple[int, int]]:
    """Fold the events after each read model's position, one after the other: `started(name, position, head)`
    before each, `advanced(name, position, head)` as it goes. Returns each one's (events folded, position)."""
    runner = rm.runner
    totals: dict[str, int] = {}
    for p in runner.projections:
        started(p.name, runner.position(p), runner.max_position())
        totals[p.name] = runner.catch_up(p, progress=lambda position, head, name=p.name: advanced(name, position,
                                                                                                 head))
        done_at = runner.position(p)
        advanced(p.name, done_at, done_at)
    return {name: (n, runner.position(runner.get(name))) for name, n in totals.items()}
