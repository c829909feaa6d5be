"""The inspector's rules (督查规则): every pattern of CONTRACT.md's findings table, as set-based SQL
(SQLAlchemy Core) over the case-facts tables (`projections/casefacts.py`).

Each rule is one query (at most a few) that selects the offending cycles, measures, notices, events or
problems directly — no Python loop over households. Policy figures come from the policy in force on the
date the rule is about (the elimination, the inclusion, the notice's closing, …), compiled into a SQL
`CASE` over the policy versions' effective dates; the same SQL runs on SQLite and PostgreSQL. Rules apply to
native and imported histories alike (imported facts carry month precision; the evidence says so).

A finding is one rule × one household × one monitoring cycle (or one overdue problem): its `key` makes
raising problems idempotent.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import hashlib
import threading
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.engine import Connection

from casecore.policy import Policy, PolicyBook
from casecore.values import (
    Category,
    ExitMode,
    Housing,
    MeasureType,
    Procedure,
    RiskType,
    Rule,
    SignLevel,
    add_months,
    in_place_for,
    in_place_runs,
)
from projections import casefacts as cf
from projections.divisions import within

CYCLE_COLUMNS = ("household_id", "cycle", "division_code", "included_on", "included_ord", "included_precision",
                 "eliminated_on", "eliminated_ord", "eliminated_precision", "exit_mode", "nominated_on",
                 "first_lead_on", "first_lead_ord")
SEVERE = "severe"
WARNING = "warning"
SEVERITY_LABELS = {SEVERE: "严重", WARNING: "一般"}


@dataclass(frozen=True)
class RuleInfo:
    """A rule's name, its Chinese label, the policy rule it enforces and its usual severity."""

    rule: str
    policy: str
    severity: str

    @property
    def label(self) -> str:
        return Rule(self.rule).label


RULES: dict[str, RuleInfo] = {r.rule: r for r in (
    RuleInfo("fast_in_fast_out", "落实针对性帮扶措施半年以上方可风险消除 (exit.min_assistance_months); 纳入当月或其后"
             "两个月内帮扶消除为严重 (exit.fast_exit_severe_months)", WARNING),
    RuleInfo("helped_not", "纳入监测后及时落实帮扶措施, 不得应帮未帮 (procedure.helped_not_months)", SEVERE),
    RuleInfo("risk_without_fitting_measure", "缺什么补什么: 每项风险须有对应措施 (fit 对应表)", WARNING),
    RuleInfo("floor_only_with_labour", "有劳动能力的户不得仅靠综合保障兜底 (一兜了之)", WARNING),
    RuleInfo("no_developmental_measure", "有劳动能力的户应落实至少一项开发式帮扶措施 (产业、就业、金融、公益岗位)",
             WARNING),
    RuleInfo("measure_before_identification", "识别纳入之后落实的措施才算针对性帮扶", WARNING),
    RuleInfo("eliminated_below_line", "风险消除须收入稳定超过监测标准 (income.monitoring_line)", SEVERE),
    RuleInfo("eliminated_with_open_guarantee", "风险消除须三保障及饮水安全均已解决", SEVERE),
    RuleInfo("labourless_eliminated", "整户无劳动力的户不标注风险消除, 落实兜底保障后持续跟踪", SEVERE),
    RuleInfo("eliminated_without_reassessment", "风险消除须采集风险消除后的收入及三保障信息", WARNING),
    RuleInfo("qualifying_not_monitored", "应纳尽纳: 收入低于监测标准或三保障未解决、部门预警的户应纳入监测", SEVERE),
    RuleInfo("repeated_warnings_not_included", "多次部门预警仍未纳入的户须核查 (screening.repeated_warnings)", WARNING),
    RuleInfo("slow_identification", "线索到纳入监测不超过规定天数 (procedure.identification_days_limit)", WARNING),
    RuleInfo("short_publicity", "村级评议后公示不少于规定天数 (procedure.publicity_days)", WARNING),
    RuleInfo("backdated_entry", "业务发生后及时录入, 不得补录倒签 (procedure.backdated_entry_days)", WARNING),
    RuleInfo("no_responsible_cadre", "纳入监测的户均须明确帮扶责任人 (有人管、管到位)", WARNING),
    RuleInfo("rectification_overdue", "问题须在整改时限内整改销号 (双销号、双问责)", SEVERE),
    RuleInfo("same_signer_two_levels", "入户核实、乡级审核、县级审批须由三名不同人员签署 (四眼原则)", SEVERE),
    RuleInfo("future_dated_act", "业务日期不得晚于录入日期 (procedure.future_dated_days 天以内视为时差)", WARNING),
    RuleInfo("exit_without_six_months_measures", "帮扶消除须帮扶措施持续落实 (落实且未结束) 半年以上 "
             "(exit.min_assistance_months)", SEVERE),
    RuleInfo("sudden_hardship_high_income", "突发严重困难户人均纯收入高于核查标准须核实 "
             "(income.sudden_hardship_check)", WARNING),
)}
assert set(RULES) == {r.value for r in Rule}, "every contract rule has an entry"

#: what each rule costs, roughly (milliseconds over 20,000 households, the more of SQLite's and PostgreSQL's):
#: a run shared out among connections starts the costliest first, so that none is left to run alone at the end
RULE_COST: dict[str, int] = {
    "qualifying_not_monitored": 71, "eliminated_below_line": 61, "risk_without_fitting_measure": 46,
    "eliminated_without_reassessment": 35, "same_signer_two_levels": 34, "no_developmental_measure": 32,
    "slow_identification": 26, "exit_without_six_months_measures": 21, "helped_not": 13,
    "measure_before_identification": 13, "labourless_eliminated": 13, "eliminated_with_open_guarantee": 12,
    "repeated_warnings_not_included": 12, "sudden_hardship_high_income": 12, "no_responsible_cadre": 9,
    "floor_only_with_labour": 8, "fast_in_fast_out": 3, "short_publicity": 3,
}
#: the task of a shared-out run that reads every measure for the evidence (`Inspector._measures_by_cycle`)
_MEASURE_SCAN = "(measures)"


#: a rule's sentence and evidence for one finding, written from the row(s) the rule selected
Render = Callable[[], tuple[str, dict[str, Any]]]


class _Later:
    """An evidence item written when the evidence is first read (once, however many findings share it)."""

    __slots__ = ("_make", "_value")

    def __init__(self, make: Callable[[], Any]):
        self._make: Callable[[], Any] | None = make
        self._value: Any = None

    def value(self) -> Any:
        if self._make is not None:
            self._value, self._make = self._make(), None
        return self._value


class Finding:
    """One finding, shaped as CONTRACT.md "Findings" says (`as_dict`).

    A rule decides which findings there are and their severity; the sentence (`detail`) and the evidence
    are written from the rule's row on first use (`render`), so a run whose findings are counted, stored by
    key or filtered never pays for sentences nobody reads. Evidence attached after the rule (the cycle's
    measures, the problem's status) is kept aside until then and added after the rule's own evidence."""

    __slots__ = (
        "_detail",
        "_evidence",
        "_extra",
        "_render",
        "cycle",
        "division_code",
        "household_id",
        "problem_id",
        "raised_problem",
        "rule",
        "severity",
        "subject_problem",
    )

    def __init__(self, rule: str, division_code: str, severity: str, render: Render | str,
                 evidence: dict[str, Any] | None = None, household_id: str | None = None, cycle: int | None = None,
                 problem_id: str | None = None, subject_problem: str | None = None,
                 raised_problem: str | None = None):
        self.rule = rule
        self.division_code = division_code
        self.severity = severity
        self.household_id = household_id
        self.cycle = cycle
        self.problem_id = problem_id
        #: the problem this finding is about (rectification_overdue), not the one raised for it
        self.subject_problem = subject_problem
        self.raised_problem = raised_problem
        self._extra: dict[str, Any] | None = None
        if isinstance(render, str):   # written already: a sentence and its evidence
            self._render: Render | None = None
            self._detail: str | None = render
            self._evidence: dict[str, Any] | None = evidence if evidence is not None else {}
        else:
            self._render, self._detail, self._evidence = render, None, None

    def _written(self) -> None:
        if self._render is not None:
            self._detail, self._evidence = self._render()
            self._render = None   # the row is no longer needed
            if self._extra:
                for name, value in self._extra.items():
                    self._evidence[name] = value.value() if isinstance(value, _Later) else value
                self._extra = None

    @property
    def detail(self) -> str:
        """One Chinese sentence with the dates and amounts."""
        self._written()
        return self._detail  # type: ignore[return-value]

    @property
    def evidence(self) -> dict[str, Any]:
        """The same facts as data."""
        self._written()
        return self._evidence  # type: ignore[return-value]

    def attach(self, name: str, value: Any) -> None:
        """Add `name` to the evidence (after the rule's own items), without writing the sentence."""
        if self._evidence is not None:
            self._evidence[name] = value.value() if isinstance(value, _Later) else value
        else:
            if self._extra is None:
                self._extra = {}
            self._extra[name] = value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Finding):
            return NotImplemented
        return (self.key, self.severity, self.division_code, self.problem_id, self.raised_problem,
                self.detail, self.evidence) == (other.key, other.severity, other.division_code, other.problem_id,
                                                other.raised_problem, other.detail, other.evidence)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Finding({self.key!r}, {self.severity!r})"

    @property
    def key(self) -> str:
        """One problem per rule, household and cycle (or per overdue problem)."""
        if self.subject_problem is not None:
            return f"{self.rule}:problem:{self.subject_problem}"
        return f"{self.rule}:{self.household_id}:{self.cycle}"

    @property
    def derived_problem_id(self) -> str:
        """The id of the problem raised for this finding: derived from the key, so reruns are idempotent."""
        return "F" + hashlib.sha1(self.key.encode()).hexdigest()[:20]

    @property
    def label(self) -> str:
        return RULES[self.rule].label

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule}
        if self.household_id is not None:
            out["household_id"] = self.household_id
        if self.problem_id is not None:
            out["problem_id"] = self.problem_id
        out.update(division_code=self.division_code, severity=self.severity, detail=self.detail,
                   evidence=self.evidence)
        return out


def day(d: date | None, precision: str | None = "day") -> str | None:
    """A date for evidence: ISO, or YYYY-MM for facts of month precision."""
    if d is None:
        return None
    return d.strftime("%Y-%m") if precision == "month" else d.isoformat()


def cn_day(d: date | None, precision: str | None = "day") -> str:
    if d is None:
        return "—"
    return f"{d.year}年{d.month}月" if precision == "month" else d.isoformat()


def money(v: Any) -> str | None:
    return None if v is None else str(Decimal(v))


def _num(value: int | Decimal) -> sa.ColumnElement[Any]:
    """A policy figure as a SQL numeric literal (not a bound parameter: CASE branches keep their type)."""
    return sa.literal_column(str(value))


@functools.cache
def named(table: sa.Table, name: str) -> sa.Alias:
    """`table` under `name`, made once: an alias copies every column of its table, and a run names some sixty."""
    return table.alias(name)


def exists(*criteria: sa.ColumnElement[bool]) -> sa.Exists:
    """`EXISTS (SELECT 1 …)`: SQLite answers a probe whose rows are `SELECT *` through an index only by reading
    each row the index finds as well, even where the index holds every column the probe compares."""
    return sa.exists(sa.literal_column("1")).where(*criteria)


def _fit_label(need: str) -> str:
    extra = {"child_out_of_school": "义务教育阶段失学辍学", "no_medical_insurance": "未参加基本医疗保险"}
    return extra.get(need) or RiskType(need).label


class Inspector:
    """Runs the rules as of a date over the case-facts tables, optionally for one division prefix."""

    def __init__(self, conn: Connection, policies: PolicyBook, as_of: date, division: str | None = None,
                 households: Collection[str] | None = None):
        self.conn = conn
        self.policies = policies
        self.as_of = as_of
        self.D = as_of.toordinal()
        self.division = division or None
        self.policy = policies.on(as_of)
        #: only these households' findings (and those of no household), for a refresh of what changed
        self.households = None if households is None else sorted(set(households))

    # ------------------------------------------------------------------ helpers

    def by_policy(self, ordinal_col: sa.ColumnElement[Any], get: Callable[[Policy], Any]) -> sa.ColumnElement[Any]:
        """The figure `get(policy)` of the policy in force on the day `ordinal_col` (an ordinal day number)."""
        ps = self.policies.policies
        whens = [(ordinal_col >= p.effective_from.toordinal(), _num(get(p))) for p in reversed(ps[1:])]
        if not whens:
            return _num(get(ps[0]))
        return sa.case(*whens, else_=_num(get(ps[0])))

    def in_division(self, col: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """Rows of the division asked for (every rule's main table passes its division column here); with
        `households`, also only those households' rows (and rows of no household)."""
        inside = within(col, self.division)
        if self.households is None:
            return inside
        household = col.table.c.household_id  # type: ignore[attr-defined]
        return sa.and_(inside, sa.or_(household.is_(None), household.in_(self.households)))

    def line_on(self, ordinal_col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """The monitoring line of a decision on the day `ordinal_col`: `PolicyBook.monitoring_line` compiled
        into SQL (the line in force on the date of the decision being judged)."""
        return self.by_policy(ordinal_col, lambda p: p.income.monitoring_line)

    def per_capita_vs(self, i: sa.Table, figure: sa.ColumnElement[Any], below: bool) -> sa.ColumnElement[bool]:
        """The income row `i`'s exact per-capita income (`casecore.policy.assessed_per_capita`) is below
        `figure` (or, with `below` False, above it): (net − rigid) against figure × size in whole fen, integers on
        both stores, where the row has that exact total (`casefacts.exact_fen`); else its stated figure."""
        exact, limit = i.c.exact_fen, figure * sa.literal_column("100") * i.c.household_size
        stated = i.c.per_capita_income
        return sa.or_(sa.and_(exact.is_not(None), exact < limit if below else exact > limit),
                      sa.and_(exact.is_(None), stated < figure if below else stated > figure))

    def below_line(self, i: sa.Table, ordinal_col: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """The income row `i` is below the line of a decision on `ordinal_col`, compared exactly as
        `PolicyBook.below_line` does (`casecore.policy.assessed_per_capita`): (net − rigid) ÷ size unrounded,
        i.e. net − rigid < line × size, in whole fen (exact on both stores), when the stored per-capita figure
        is that quotient rounded; else the stated per-capita figure (an import's).

        A cheap test comes first: a stated per-capita income of the highest line + 1 or more is below no line
        (the exact test allows half a fen a head either way), so most rows skip the rest; it passes every
        row the exact test could find below, or leave undecided (NULL), so the result is the same."""
        highest = max(p.income.monitoring_line for p in self.policies.policies)
        could_be = sa.or_(i.c.per_capita_income.is_(None), i.c.household_size.is_(None),
                          i.c.per_capita_income < _num(highest + 1))
        return sa.and_(could_be, self.per_capita_vs(i, self.line_on(ordinal_col), below=True))

    def eliminated_standing(self, e: sa.Table) -> sa.ColumnElement[bool]:
        """An elimination (a `cf_eliminations` row) made by the as-of date and not rolled back by then."""
        return sa.and_(e.c.eliminated_ord <= self.D,
                       sa.or_(e.c.rolled_back_ord.is_(None), e.c.rolled_back_ord > self.D))

    def eliminated_cycle(self, c: sa.Table) -> sa.ColumnElement[bool]:
        """The cycle `c` stands eliminated on the as-of date (one of its eliminations does)."""
        e = named(cf.eliminations, f"{c.name}_el")
        return exists(e.c.household_id == c.c.household_id, e.c.cycle == c.c.cycle,
                      self.eliminated_standing(e))

    def ever_eliminated(self, c: sa.Table) -> sa.ColumnElement[bool]:
        """The cycle `c` was eliminated on or before the as-of date (rolled back since or not)."""
        e = named(cf.eliminations, f"{c.name}_ev")
        return exists(e.c.household_id == c.c.household_id, e.c.cycle == c.c.cycle,
                      e.c.eliminated_ord <= self.D)

    def monitored(self, c: sa.Table) -> sa.ColumnElement[bool]:
        """Monitored on the as-of date: included, and no elimination of the cycle standing then."""
        return sa.and_(self.unindexed(c.c.included_ord) <= self.D, ~self.eliminated_cycle(c))

    def open_inclusion(self, c: sa.Table) -> sa.ColumnElement[bool]:
        """The cycle's inclusion procedure is under way on the as-of date."""
        return sa.and_(c.c.first_lead_ord <= self.D,
                       sa.or_(c.c.included_ord.is_(None), c.c.included_ord > self.D),
                       sa.or_(c.c.closed_ord.is_(None), c.c.closed_ord > self.D))

    @staticmethod
    def unindexed(ordinal_col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """A day number the planner must not look up in its index: "included by the date" passes most cycles, and
        reading them through the index costs a table lookup each where a plain pass over the table costs none.
        Adding 0 changes no value (NULL stays NULL); only the plan changes."""
        return ordinal_col + sa.literal_column("0")

    def grace_cutoff(self) -> int:
        """Ordinal of the latest inclusion date whose household has been monitored MORE than the policy's
        `helped_not_months` by the as-of date (add_months(included, k) < as_of)."""
        k = self.policy.procedure.helped_not_months
        cut = add_months(self.as_of, -k)
        while add_months(cut, k) >= self.as_of:
            cut -= timedelta(days=1)
        while add_months(cut + timedelta(days=1), k) < self.as_of:
            cut += timedelta(days=1)
        return cut.toordinal()

    @staticmethod
    def seq_from(ordinal: sa.ColumnElement[Any] | int) -> sa.ColumnElement[Any] | int:
        """The first `seq` an assessment made on the day `ordinal` can have (`casefacts.SEQ_PER_DAY`): made by
        day D is `seq < seq_from(D + 1)`, which the index on (household, seq) answers without reading rows."""
        if isinstance(ordinal, int):
            return ordinal * cf.SEQ_PER_DAY
        return sa.cast(ordinal, sa.BigInteger) * cf.SEQ_PER_DAY

    def has_labour(self, household_id: sa.ColumnElement[Any], on_ord: Any) -> sa.ColumnElement[bool]:
        m = cf.members
        return exists(
            m.c.household_id == household_id, m.c.labour.in_(cf.WITH_LABOUR),
            sa.or_(m.c.added_ord.is_(None), m.c.added_ord <= on_ord),
            sa.or_(m.c.removed_ord.is_(None), m.c.removed_ord > on_ord))

    def targeted(self, c: sa.Table, m: sa.Table) -> sa.ColumnElement[bool]:
        """Measure `m` counts as targeted assistance of cycle `c` as of the as-of date."""
        return sa.and_(m.c.household_id == c.c.household_id, m.c.cycle == c.c.cycle,
                       m.c.implemented_ord >= c.c.included_ord, m.c.implemented_ord <= self.D)

    def assisted_cycles(self, c: sa.Table) -> sa.ColumnElement[bool]:
        """Cycles the measure rules judge: monitored longer than the grace months, or eliminated."""
        return sa.and_(self.unindexed(c.c.included_ord) <= self.D,
                       sa.or_(c.c.included_ord <= self.grace_cutoff(), self.ever_eliminated(c)),
                       self.in_division(c.c.division_code))

    @staticmethod
    def cols(c: sa.Table, *names: str) -> list[sa.ColumnElement[Any]]:
        """The cycle columns findings use (not the JSON ones: decoding them costs): all of them, or the
        household, cycle and division and the `names` a rule's sentence uses (each date costs a parse a row)."""
        return [c.c[n] for n in (("household_id", "cycle", "division_code", *names) if names else CYCLE_COLUMNS)]

    def rows(self, stmt: sa.Select, hashed: bool = False) -> Sequence[Any]:
        """The statement's rows. `hashed`: PostgreSQL plans it without nested loops, for this statement alone.
        Its estimates of the rules' correlated conditions (a cycle assisted or eliminated by the date, a measure
        targeted at it) are far too low, so it probes an index once for each of thousands of rows where hashing
        both sides costs a third to a half less; the rules that join so (`hashed=True`) were measured both ways
        (docs/benchmarks.md)."""
        if not hashed:
            return self.conn.execute(stmt).fetchall()
        with _postgres_setting(self.conn, "enable_nestloop", "off"):
            return self.conn.execute(stmt).fetchall()

    @staticmethod
    def first_per_cycle(rows: Iterable[Any]) -> Iterator[Any]:
        """One row per household and cycle (the first): a finding is one rule × household × cycle. The rows
        begin with the household and the cycle (`cols`)."""
        seen: set[tuple[str, int]] = set()
        for r in rows:
            k = (r[0], r[1])
            if k not in seen:
                seen.add(k)
                yield r

    @staticmethod
    def each(rule: str, severity: str, render: Callable[[Any], tuple[str, dict[str, Any]]],
             rows: Iterable[Any]) -> Iterator[Finding]:
        """One finding a row, its sentence written from the row when read. The rows begin with the household,
        the cycle and the division (`cols`): read by position, which costs a tenth of a read by name."""
        for r in rows:
            yield Finding(rule, r[2], severity, partial(render, r), None, r[0], r[1])

    def standing_eliminations(self, alias: str = "c") -> sa.Table:
        """`cf_eliminations` rows as `alias`; select from it with `eliminated_standing` and order by
        `latest_first` so `first_per_cycle` keeps the elimination the cycle stands on."""
        return named(cf.eliminations, alias)

    @staticmethod
    def latest_first(e: sa.Table) -> tuple[sa.ColumnElement[Any], ...]:
        return (e.c.household_id, e.c.cycle, e.c.n.desc())

    # ------------------------------------------------------------------ the case as the rules see it

    def standing(self, household_ids: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """Each household as the rules see it on the as-of date, from the predicates the rules use: `stage`
        (`in_inclusion`, `monitored` — which includes an open exit —, `risk_eliminated` or `not_monitored`),
        `included_on` of its latest inclusion by then and `eliminated_on` of the elimination it stands on.
        It must equal the auditor's replay as of the same date (tested)."""
        h, c, inc, e = (named(cf.households, "h"), named(cf.cycles, "sc"), named(cf.cycles, "si"),
                        named(cf.eliminations, "se"))
        c2, c3 = named(cf.cycles, "sc2"), named(cf.cycles, "sc3")
        open_inclusion = exists(c.c.household_id == h.c.household_id, self.open_inclusion(c))
        monitored = exists(c2.c.household_id == h.c.household_id, self.monitored(c2))
        eliminated = exists(c3.c.household_id == h.c.household_id, self.eliminated_cycle(c3))
        def latest_cycle(of: sa.ColumnElement[Any]) -> sa.ScalarSelect[Any]:
            """The household's latest cycle included by D, correlated to the enclosing row `of` (a subquery
            two levels down does not correlate to the outermost table by itself)."""
            return (sa.select(sa.func.max(inc.c.cycle))
                    .where(inc.c.household_id == of, inc.c.included_ord <= self.D).scalar_subquery())

        i2 = named(cf.cycles, "si2")
        included_on = (sa.select(i2.c.included_on)
                       .where(i2.c.household_id == h.c.household_id, i2.c.cycle == latest_cycle(i2.c.household_id))
                       .scalar_subquery())
        eliminated_on = (sa.select(e.c.eliminated_on)
                         .where(e.c.household_id == h.c.household_id, e.c.cycle == latest_cycle(e.c.household_id),
                                self.eliminated_standing(e))
                         .order_by(e.c.n.desc()).limit(1).scalar_subquery())
        stmt = sa.select(h.c.household_id, open_inclusion.label("inclusion"), monitored.label("monitored"),
                         eliminated.label("eliminated"), included_on.label("included_on"),
                         eliminated_on.label("eliminated_on")).where(self.in_division(h.c.division_code))
        if household_ids is not None:
            stmt = stmt.where(h.c.household_id.in_(sorted(set(household_ids))))
        out = {}
        for r in self.rows(stmt):
            stage = ("in_inclusion" if r.inclusion else "monitored" if r.monitored
                     else "risk_eliminated" if r.eliminated else "not_monitored")
            out[r.household_id] = {"stage": stage, "included_on": r.included_on, "eliminated_on": r.eliminated_on}
        return out

    # ------------------------------------------------------------------ running

    def run(self, rules: Iterable[str] | None = None, workers: Sequence[Connection] = ()) -> list[Finding]:
        """The findings of `rules` (all by default), ordered by division, household, rule and cycle.

        `workers` are further connections that read the same snapshot of the case facts as this one
        (`adapters.readside.snapshot`): the rules are then shared out among them and this connection, each
        connection in a thread of its own taking the costliest rule left, so the database works on several
        statements at once. The findings are the same, in the same order, whatever the number of workers."""
        wanted = list(rules) if rules else list(RULES)
        unknown = [r for r in wanted if r not in RULES]
        if unknown:
            raise ValueError(f"未知规则: {', '.join(unknown)}; 可选: {', '.join(RULES)}")
        # a run makes tens of thousands of small objects that all live until it returns, none in a cycle: the
        # cyclic collector would walk them (and the rest of the heap) again and again while they pile up
        collecting = gc.isenabled()
        gc.disable()
        try:
            with contextlib.ExitStack() as settings:
                for conn in (self.conn, *workers):
                    settings.enter_context(_postgres_setting(conn, "jit", "off"))
                return self._run(wanted, workers)
        finally:
            if collecting:
                gc.enable()

    def _run(self, wanted: list[str], workers: Sequence[Connection]) -> list[Finding]:
        measures: dict[tuple[str, int], str] | None = None
        if workers:
            # every measure is read beside the rules when the run covers the whole store (the attach step
            # would read them all anyway)
            scan = (self.division is None and self.households is None
                    and not self.MEASURE_RULES.isdisjoint(wanted))
            done = self._shared_out(wanted, workers, scan)
            measures = done.pop(_MEASURE_SCAN, None)
            found = [done[rule] for rule in wanted]
        else:
            found = [list(getattr(self, rule)()) for rule in wanted]
        out = [f for one in found for f in one]
        self._attach_measures(out, measures)
        self._attach_problems(out)
        out.sort(key=lambda f: (f.division_code, f.household_id or "", f.rule, f.cycle or 0))
        return out

    def on(self, conn: Connection) -> Inspector:
        """This inspector (same date, division and households) reading through `conn`."""
        other = copy.copy(self)
        other.conn = conn
        return other

    def _shared_out(self, wanted: list[str], workers: Sequence[Connection], scan: bool) -> dict[str, Any]:
        """Each rule's findings (and, with `scan`, every measure under `_MEASURE_SCAN`), the rules run by this
        connection and the workers at once, the costliest first."""
        tasks = sorted(wanted, key=lambda rule: -RULE_COST.get(rule, 0))
        if scan:
            tasks.insert(0, _MEASURE_SCAN)
        pending = iter(tasks)
        lock = threading.Lock()
        done: dict[str, Any] = {}

        def drain(inspector: Inspector) -> None:
            while True:
                with lock:
                    task = next(pending, None)
                if task is None:
                    return
                done[task] = (inspector._measures_by_cycle(inspector.households) if task == _MEASURE_SCAN
                              else list(getattr(inspector, task)()))

        with ThreadPoolExecutor(len(workers), thread_name_prefix="inspector") as pool:
            running = [pool.submit(drain, self.on(w)) for w in workers]
            try:
                drain(self)
            finally:
                for r in running:   # the first error is raised once every thread has stopped
                    r.exception()
            for r in running:
                r.result()
        return done

    # ------------------------------------------------------------------ rules: assistance

    def fast_in_fast_out(self) -> Iterator[Finding]:
        c = named(cf.eliminations, "c")
        months = c.c.eliminated_month - c.c.included_month
        k = self.by_policy(c.c.eliminated_ord, lambda p: p.exit.min_assistance_months)
        severe_k = self.by_policy(c.c.eliminated_ord, lambda p: p.exit.fast_exit_severe_months)
        severe = sa.and_(c.c.exit_mode == ExitMode.ASSISTED.value, months <= severe_k)
        early = sa.or_(months < k, sa.and_(months == k, c.c.eliminated_day < c.c.included_day,
                                           sa.not_(c.c.eliminated_month_end)))
        stmt = (sa.select(*self.cols(c), months.label("months"), k.label("k"), severe_k.label("severe_k"),
                          severe.label("severe"))
                .where(c.c.eliminated_ord <= self.D, c.c.included_ord.is_not(None), sa.or_(severe, early),
                       self.in_division(c.c.division_code))
                .order_by(c.c.household_id, c.c.cycle, c.c.n))
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            mode = ExitMode(r.exit_mode).label if r.exit_mode else "风险消除"
            detail = (f"{cn_day(r.included_on, r.included_precision)}纳入监测, "
                      f"{cn_day(r.eliminated_on, r.eliminated_precision)}{mode}, 相隔{_span(r)}")
            detail += (f", 帮扶消除发生在纳入当月或其后{r.severe_k}个月内" if r.severe
                       else f", 不足{r.k}个月")
            return detail, {
                "included_on": day(r.included_on, r.included_precision),
                "eliminated_on": day(r.eliminated_on, r.eliminated_precision), "exit_mode": r.exit_mode,
                "months": r.months, "min_assistance_months": int(r.k), "severe_within_months": int(r.severe_k),
            }

        for r in self.first_per_cycle(self.rows(stmt)):
            yield Finding("fast_in_fast_out", r.division_code, SEVERE if r.severe else WARNING, partial(render, r),
                          None, r.household_id, r.cycle)

    def helped_not(self) -> Iterator[Finding]:
        c, m = named(cf.cycles, "c"), named(cf.measures, "m")
        planned = (sa.select(sa.func.count()).where(m.c.household_id == c.c.household_id, m.c.cycle == c.c.cycle,
                                                    m.c.planned_ord <= self.D).scalar_subquery())
        stmt = (sa.select(*self.cols(c, "included_on", "included_precision"), planned.label("planned"))
                .where(self.monitored(c), self.unindexed(c.c.included_ord) <= self.grace_cutoff(),
                       ~exists(self.targeted(c, m)), self.in_division(c.c.division_code)))
        k = self.policy.procedure.helped_not_months

        def render(r: Any) -> tuple[str, dict[str, Any]]:
            months = _months_between(r.included_on, self.as_of)
            return (f"{cn_day(r.included_on, r.included_precision)}纳入监测, 至 {self.as_of} 已{months}个月"
                    f"没有落实的帮扶措施 (政策: 超过{k}个月即为应帮未帮)"
                    + (f"; 已制定未落实 {r.planned} 项" if r.planned else ""), {
                        "included_on": day(r.included_on, r.included_precision), "as_of": self.as_of.isoformat(),
                        "months_monitored": months, "helped_not_months": k, "planned_not_implemented": r.planned,
                    })

        yield from self.each("helped_not", SEVERE, render, self.rows(stmt))

    def fits(self, need: sa.ColumnElement[Any], measure_type: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """The fit table in force (缺什么补什么) as a condition on a need and a measure type."""
        return sa.or_(*[sa.and_(need == n, measure_type.in_(sorted(types)))
                        for n, types in sorted(self.policy.fit.items())])

    def some_open_check(self, household_id: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """The household has a guarantee check made by the as-of date that left an item open: true of every
        household whose check by then (its newest, or the one an elimination was based on) left one open, so
        the rules about open checks look no further at the others. One pass over the checks, then a lookup in
        its result a row."""
        go = named(cf.guarantees, "go")
        return household_id.in_(sa.select(go.c.household_id)
                                .where(go.c.open_items > 0, go.c.seq < self.seq_from(self.D + 1)))

    def _open_checks(self) -> sa.CTE:
        """The cycles the measure rules judge that are monitored on the as-of date and whose household's newest
        guarantee check by then left an item open (`key` of the cycle, the check's items). Only households with
        some check by then that left an item open (few) are looked at: the newest check is one of them."""
        c, g2 = named(cf.cycles, "oc"), named(cf.guarantees, "g2")
        some_open = self.some_open_check(c.c.household_id)
        return (sa.select(c.c.key, g2.c.housing, g2.c.drinking_water_safe, g2.c.children_out_of_school,
                          g2.c.members_without_medical_insurance)
                .select_from(c)
                .join(g2, sa.and_(g2.c.household_id == c.c.household_id,
                                  g2.c.seq == self._basis(cf.guarantees, c, self.D)))
                .where(some_open, g2.c.open_items > 0, self.assisted_cycles(c), self.monitored(c)).cte("og"))

    @staticmethod
    def _all_needs(*needs: sa.Select) -> sa.Subquery:
        """The needs of `risk_without_fitting_measure`, all of them, not their union: a risk and an open check that
        name one need (housing, drinking water) are kept once when read, where they come one after the other,
        instead of every need being sorted against all the others."""
        return sa.union_all(*needs).subquery("n")

    def risk_without_fitting_measure(self) -> Iterator[Finding]:
        c, rk, m = named(cf.cycles, "c"), named(cf.risks, "rk"), named(cf.measures, "m")
        # needs: the cycle's risks, and what the latest guarantee check (as of the date) of a monitored
        # household leaves open
        open_g = self._open_checks()
        risk_needs = (sa.select(c.c.key, c.c.household_id, c.c.cycle, rk.c.risk_type.label("need")).select_from(c)
                      .join(rk, sa.and_(rk.c.household_id == c.c.household_id, rk.c.cycle == c.c.cycle))
                      .where(self.assisted_cycles(c)))
        c3 = named(cf.cycles, "c3")

        def guarantee_need(need: str, cond: sa.ColumnElement[bool]) -> sa.Select:
            return (sa.select(open_g.c.key, c3.c.household_id, c3.c.cycle, sa.literal_column(f"'{need}'").label("need"))
                    .select_from(open_g).join(c3, c3.c.key == open_g.c.key).where(cond))

        needs = self._all_needs(
            risk_needs,
            guarantee_need("housing", open_g.c.housing != Housing.SAFE.value),
            guarantee_need("drinking_water", open_g.c.drinking_water_safe.is_(False)),
            guarantee_need("child_out_of_school", open_g.c.children_out_of_school > 0),
            guarantee_need("no_medical_insurance", open_g.c.members_without_medical_insurance > 0),
        )
        c2 = named(cf.cycles, "c2")
        met = exists(
            m.c.household_id == needs.c.household_id, m.c.cycle == needs.c.cycle, m.c.planned_ord <= self.D,
            sa.or_(m.c.ended_ord.is_(None), m.c.ended_ord > self.D, m.c.implemented_ord.is_not(None)),
            self.fits(needs.c.need, m.c.measure_type))
        stmt = (sa.select(c2.c.household_id, c2.c.cycle, c2.c.division_code, needs.c.need)
                .select_from(needs).join(c2, c2.c.key == needs.c.key).where(~met)
                .order_by(c2.c.household_id, needs.c.need))
        grouped: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for r in self.rows(stmt, hashed=True):
            unmet = grouped[(r.household_id, r.cycle)]
            if not unmet or unmet[-1].need != r.need:
                unmet.append(r)
        def render(rs: list[Any]) -> tuple[str, dict[str, Any]]:
            needs_ = [r.need for r in rs]
            fitting_ = {n: sorted(self.policy.fitting_measures(n)) for n in needs_}
            detail = "; ".join(
                f"{_fit_label(n)}没有对应措施 (可选: {'、'.join(MeasureType(t).label for t in fitting_[n])})"
                for n in needs_)
            return detail, {"unmet_needs": needs_, "fitting_measure_types": fitting_}

        for (hid, cycle), rs in grouped.items():
            yield Finding("risk_without_fitting_measure", rs[0].division_code, WARNING, partial(render, rs), None,
                          hid, cycle)

    def floor_only_with_labour(self) -> Iterator[Finding]:
        c, m = named(cf.cycles, "c"), named(cf.measures, "m")
        counts = (sa.select(m.c.household_id, m.c.cycle, sa.func.count().label("n"),
                            sa.func.sum(sa.case((m.c.measure_type == MeasureType.SOCIAL_ASSISTANCE.value, 0),
                                                else_=1)).label("others"))
                  .where(m.c.implemented_ord <= self.D).group_by(m.c.household_id, m.c.cycle).subquery("mc"))
        stmt = (sa.select(*self.cols(c, "included_on", "included_precision"), counts.c.n).select_from(c)
                .join(counts, sa.and_(counts.c.household_id == c.c.household_id, counts.c.cycle == c.c.cycle))
                .where(self.assisted_cycles(c), counts.c.others == 0, self.has_labour(c.c.household_id, self.D)))
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            return (f"户有劳动能力, 本周期落实的 {r.n} 项措施均为综合保障 (兜底), 一兜了之",
                    {"included_on": day(r.included_on, r.included_precision), "measures_implemented": r.n})

        yield from self.each("floor_only_with_labour", WARNING, render, self.rows(stmt))

    def no_developmental_measure(self) -> Iterator[Finding]:
        c, m = named(cf.cycles, "c"), named(cf.measures, "m")
        stmt = (sa.select(*self.cols(c, "included_on", "included_precision")).where(
            self.assisted_cycles(c), self.has_labour(c.c.household_id, self.D),
            ~exists(self.targeted(c, m), m.c.developmental.is_(True))))
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            return ("户有劳动能力, 本周期没有落实产业、就业、金融或公益岗位等开发式帮扶措施",
                    {"included_on": day(r.included_on, r.included_precision)})

        yield from self.each("no_developmental_measure", WARNING, render, self.rows(stmt, hashed=True))

    def measure_before_identification(self) -> Iterator[Finding]:
        c, m, own = named(cf.cycles, "c"), named(cf.measures, "m"), named(cf.cycles, "own")
        dated = sa.func.coalesce(m.c.implemented_ord, m.c.planned_ord)
        stmt = (sa.select(c.c.household_id, c.c.cycle, c.c.division_code, c.c.included_on, c.c.included_precision,
                          m.c.measure_id, m.c.measure_type, m.c.planned_on, m.c.implemented_on, m.c.origin)
                .select_from(c).join(m, m.c.household_id == c.c.household_id)
                .outerjoin(own, sa.and_(own.c.household_id == m.c.household_id, own.c.cycle == m.c.cycle))
                .where(self.unindexed(c.c.included_ord) <= self.D, self.in_division(c.c.division_code),
                       m.c.cycle <= c.c.cycle,
                       dated < c.c.included_ord, sa.or_(m.c.ended_ord.is_(None), m.c.ended_ord >= c.c.included_ord),
                       # not a measure of an earlier monitoring period: those were targeted then
                       sa.or_(own.c.included_ord.is_(None), own.c.included_ord > dated))
                .order_by(c.c.household_id, c.c.cycle, m.c.measure_id))
        grouped: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for r in self.rows(stmt):
            grouped[(r.household_id, r.cycle)].append(r)
        def render(rs: list[Any]) -> tuple[str, dict[str, Any]]:
            first = rs[0]
            listed = [{"measure_id": r.measure_id, "measure_type": r.measure_type,
                       "dated": day(r.implemented_on or r.planned_on,
                                    "month" if r.origin else "day")} for r in rs]
            names = "、".join(f"{MeasureType(x['measure_type']).label} ({x['dated']})" for x in listed)
            return (f"{cn_day(first.included_on, first.included_precision)}纳入监测, 但计入本周期的措施"
                    f"早于识别: {names}",
                    {"included_on": day(first.included_on, first.included_precision), "measures": listed})

        for (hid, cycle), rs in grouped.items():
            yield Finding("measure_before_identification", rs[0].division_code, WARNING, partial(render, rs), None,
                          hid, cycle)

    # ------------------------------------------------------------------ rules: elimination

    def _basis(self, table: sa.Table, c: sa.Table, until: sa.ColumnElement[Any]) -> sa.ScalarSelect[Any]:
        """The newest assessment (seq) of the household made on or before `until`."""
        return (sa.select(sa.func.max(table.c.seq))
                .where(table.c.household_id == c.c.household_id, table.c.seq < self.seq_from(until + 1))
                .scalar_subquery())

    def _judged(self, table: sa.Table, c: sa.Table, a: sa.Table) -> sa.ColumnElement[bool]:
        """The assessments an elimination is judged on, each on its own date: the one it was based on (the
        newest by the elimination) and the newest by the as-of date — an export's current-status columns
        describe the household on the export's day, after the elimination."""
        return sa.and_(a.c.household_id == c.c.household_id,
                       a.c.seq.in_([self._basis(table, c, c.c.eliminated_ord), self._basis(table, c, self.D)]))

    def _judged_eliminations(self, table: sa.Table) -> sa.Subquery:
        """The standing eliminations of the division, each with the `seq` of the two assessments of `table` it
        is judged on (`b1`: the newest by the elimination, `b2`: the newest by the as-of date), looked up once an
        elimination. PostgreSQL's plan for `_judged` as a join condition looked them up once a pair of an
        elimination and an assessment of its household below the line: in this province twice as often."""
        c = self.standing_eliminations("je")
        return (sa.select(c, self._basis(table, c, c.c.eliminated_ord).label("b1"),
                          self._basis(table, c, self.D).label("b2"))
                .where(self.eliminated_standing(c), self.in_division(c.c.division_code))
                .offset(0).subquery("c"))   # (OFFSET 0: kept whole, not merged back into the join)

    def eliminated_below_line(self) -> Iterator[Finding]:
        i = named(cf.incomes, "i")
        if self.conn.dialect.name == "postgresql":
            c: Any = self._judged_eliminations(cf.incomes)
            judged = sa.and_(i.c.household_id == c.c.household_id, i.c.seq.in_([c.c.b1, c.c.b2]))
            standing: sa.ColumnElement[bool] = sa.true()
        else:
            c = self.standing_eliminations()
            judged = self._judged(cf.incomes, c, i)
            standing = sa.and_(self.eliminated_standing(c), self.in_division(c.c.division_code))
        # the basis of the elimination against the line in force at the elimination; a later assessment (an
        # export's current-status columns) against the line in force on its own date
        judged_on = sa.case((i.c.on_ord > c.c.eliminated_ord, i.c.on_ord), else_=c.c.eliminated_ord)
        stmt = (sa.select(*self.cols(c, "eliminated_on", "eliminated_ord", "eliminated_precision"),
                          i.c.on.label("assessed_on"), i.c.on_ord, i.c.per_capita_income,
                          i.c.household_size, i.c.net_income, i.c.origin.label("income_origin"),
                          self.line_on(judged_on).label("line"))
                .select_from(c).join(i, judged)
                .where(standing, self.below_line(i, judged_on))
                .order_by(*self.latest_first(c), i.c.seq))
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            prec = "month" if r.income_origin else "day"
            later = r.on_ord > r.eliminated_ord
            return (f"{cn_day(r.eliminated_on, r.eliminated_precision)}标注风险消除, "
                    f"{'但其后' if later else '依据的'}"
                    f"{cn_day(r.assessed_on, prec)}收入核算人均纯收入 {money(r.per_capita_income)} 元, "
                    f"低于监测标准 {money(r.line)} 元", {
                        "eliminated_on": day(r.eliminated_on, r.eliminated_precision),
                        "income_assessed_on": day(r.assessed_on, prec),
                        "per_capita_income": money(r.per_capita_income), "monitoring_line": money(r.line),
                        "net_income": money(r.net_income), "household_size": r.household_size,
                    })

        yield from self.each("eliminated_below_line", SEVERE, render, self.first_per_cycle(self.rows(stmt)))

    def eliminated_with_open_guarantee(self) -> Iterator[Finding]:
        c, g = self.standing_eliminations(), named(cf.guarantees, "g")
        stmt = (sa.select(*self.cols(c), g.c.on.label("assessed_on"), g.c.on_ord, g.c.housing, g.c.drinking_water_safe,
                          g.c.children_out_of_school, g.c.members_without_medical_insurance,
                          g.c.origin.label("g_origin"))
                .select_from(c).join(g, self._judged(cf.guarantees, c, g))
                .where(self.eliminated_standing(c), self.some_open_check(c.c.household_id), g.c.open_items > 0,
                       self.in_division(c.c.division_code))
                .order_by(*self.latest_first(c), g.c.seq))
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            open_ = []
            if r.housing != Housing.SAFE.value:
                open_.append(f"住房为{Housing(r.housing).label}")
            if not r.drinking_water_safe:
                open_.append("饮水不安全")
            if r.children_out_of_school:
                open_.append(f"{r.children_out_of_school} 名义务教育阶段儿童失学辍学")
            if r.members_without_medical_insurance:
                open_.append(f"{r.members_without_medical_insurance} 人未参加基本医疗保险")
            prec = "month" if r.g_origin else "day"
            return (f"{cn_day(r.eliminated_on, r.eliminated_precision)}标注风险消除, 但"
                    f"{'其后' if r.on_ord > r.eliminated_ord else ''}"
                    f"{cn_day(r.assessed_on, prec)}的核查仍有: {'; '.join(open_)}", {
                        "eliminated_on": day(r.eliminated_on, r.eliminated_precision),
                        "guarantees_assessed_on": day(r.assessed_on, prec), "housing": r.housing,
                        "drinking_water_safe": r.drinking_water_safe,
                        "children_out_of_school": r.children_out_of_school,
                        "members_without_medical_insurance": r.members_without_medical_insurance,
                    })

        yield from self.each("eliminated_with_open_guarantee", SEVERE, render,
                             self.first_per_cycle(self.rows(stmt)))

    def eliminated_without_reassessment(self) -> Iterator[Finding]:
        c = self.standing_eliminations()
        # after the nomination (native exit), or from the elimination's month (imported: no nomination)
        start = sa.case((c.c.nominated_ord.is_not(None), c.c.nominated_ord + 1), else_=c.c.eliminated_ord)

        # an assessment made from the start to the as-of date: one range of the index on (household, seq)
        i, g = named(cf.incomes, "ri"), named(cf.guarantees, "rg")
        has_income = exists(i.c.household_id == c.c.household_id, i.c.seq >= self.seq_from(start),
                            i.c.seq < self.seq_from(self.D + 1))
        has_guarantees = exists(g.c.household_id == c.c.household_id, g.c.seq >= self.seq_from(start),
                                g.c.seq < self.seq_from(self.D + 1))
        stmt = (sa.select(*self.cols(c), has_income.label("has_income"), has_guarantees.label("has_guarantees"))
                .where(self.eliminated_standing(c), self.in_division(c.c.division_code),
                       sa.or_(~has_income, ~has_guarantees))
                .order_by(*self.latest_first(c)))
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            missing = ([] if r.has_income else ["收入"]) + ([] if r.has_guarantees else ["三保障及饮水"])
            since = _nomination_or_elimination(r)
            return (f"{cn_day(r.eliminated_on, r.eliminated_precision)}标注风险消除, {since} "
                    f"之后没有{'和'.join(missing)}核查 (风险消除后信息)", {
                        "eliminated_on": day(r.eliminated_on, r.eliminated_precision),
                        "nominated_on": day(r.nominated_on), "missing": missing,
                    })

        yield from self.each("eliminated_without_reassessment", WARNING, render,
                             self.first_per_cycle(self.rows(stmt)))

    def labourless_eliminated(self) -> Iterator[Finding]:
        c = self.standing_eliminations()
        stmt = (sa.select(*self.cols(c)).where(self.eliminated_standing(c), self.in_division(c.c.division_code),
                                               ~self.has_labour(c.c.household_id, c.c.eliminated_ord))
                .order_by(*self.latest_first(c)))
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            return (f"整户无劳动力, 却于{cn_day(r.eliminated_on, r.eliminated_precision)}标注风险消除; "
                    "应落实兜底保障后持续跟踪, 并回退风险消除", {
                        "eliminated_on": day(r.eliminated_on, r.eliminated_precision), "exit_mode": r.exit_mode})

        yield from self.each("labourless_eliminated", SEVERE, render, self.first_per_cycle(self.rows(stmt)))

    # ------------------------------------------------------------------ rules: identification

    def _last_elimination(self) -> sa.Subquery:
        c = named(cf.eliminations, "le_c")
        return (sa.select(c.c.household_id, sa.func.max(c.c.eliminated_ord).label("ord"))
                .where(c.c.eliminated_ord <= self.D).group_by(c.c.household_id).subquery("le"))

    def _failed_warnings(self) -> sa.Subquery:
        """Department warnings (since the policy's date, after the household's last elimination) whose cycle
        ended without inclusion, by household."""
        ld, lc, lv = named(cf.leads, "ld"), named(cf.cycles, "lc"), named(cf.leads, "lv")
        since = self.policy.screening.warnings_since.toordinal()
        # the warning's cycle was closed by a home visit that found the criteria not met
        visited = exists(lv.c.household_id == ld.c.household_id, lv.c.cycle == ld.c.cycle,
                         lv.c.status == "not_meets")
        stmt = sa.select(sa.func.count().label("n"), sa.func.min(ld.c.on).label("first_on"),
                         sa.func.max(ld.c.on).label("last_on"),
                         sa.func.sum(sa.case((visited, 1), else_=0)).label("visited")).select_from(ld)
        if self.conn.dialect.name == "sqlite":
            # SQLite probes the household's last elimination for the few warnings left (not a join of every
            # household's), and groups by a copy of the household id (the same value) it cannot read from the leads
            # index: walking every lead in that index's order costs a table lookup each, where starting from the
            # cycles not included by the date costs a probe of their household's warnings
            e = named(cf.eliminations, "fw_le")
            after = (sa.select(sa.func.max(e.c.eliminated_ord))
                     .where(e.c.household_id == ld.c.household_id, e.c.eliminated_ord <= self.D).scalar_subquery())
            household = sa.cast(ld.c.household_id.concat(""), ld.c.household_id.type)
        else:
            le = self._last_elimination()
            stmt = stmt.outerjoin(le, le.c.household_id == ld.c.household_id)
            after, household = le.c.ord, ld.c.household_id
        return (stmt.add_columns(household.label("household_id"))
                .join(lc, sa.and_(lc.c.household_id == ld.c.household_id, lc.c.cycle == ld.c.cycle))
                .where(ld.c.source == "department_warning", ld.c.on_ord >= since, ld.c.on_ord <= self.D,
                       ld.c.monitored_at.is_(False), ld.c.on_ord > sa.func.coalesce(after, 0),
                       sa.or_(lc.c.included_ord.is_(None), lc.c.included_ord > self.D),
                       lc.c.closed_ord <= self.D)
                .group_by(household).subquery("fw"))

    def _not_monitored(self, h: sa.Table) -> sa.ColumnElement[bool]:
        """Neither monitored on the as-of date nor in an inclusion procedure then."""
        c = named(cf.cycles, "nm")
        return ~exists(c.c.household_id == h.c.household_id,
                       sa.or_(self.monitored(c), self.open_inclusion(c)))

    def _outside_newest(self) -> sa.Subquery:
        """`_outside` without the newest checks' `seq`: PostgreSQL reads the newest rows themselves (`_newest`)."""
        h = named(cf.households, "h")
        le = self._last_elimination()
        return (sa.select(h.c.household_id, h.c.division_code, h.c.cycle,
                          sa.func.coalesce(le.c.ord, 0).label("after"))
                .select_from(h).outerjoin(le, le.c.household_id == h.c.household_id)
                .where(self.in_division(h.c.division_code), self._not_monitored(h)).subquery("hs"))

    def _outside(self) -> sa.Subquery:
        """The households neither monitored nor in an inclusion on the as-of date, each with the `seq` of its
        newest income (`li`) and guarantee check (`lg`) by then and the day of its last elimination by then
        (`after`, 0 for none). SQLite probes its indexes for those households only (a join of the per-household
        maxima over every row costs it more), and the newest check only of a household with some check by then
        that left an item open (`some_open_check`; the rule reads the check of no other). PostgreSQL leaves out
        the `seq`s and reads the newest rows in one pass each (`_newest`)."""
        if self.conn.dialect.name != "sqlite":
            return self._outside_newest()
        h = named(cf.households, "h")
        e = named(cf.eliminations, "qe")
        last_elimination = (sa.select(sa.func.max(e.c.eliminated_ord))
                            .where(e.c.household_id == h.c.household_id, e.c.eliminated_ord <= self.D)
                            .scalar_subquery())
        return (sa.select(h.c.household_id, h.c.division_code, h.c.cycle,
                          self._basis(cf.incomes, h, self.D).label("li"),
                          sa.case((self.some_open_check(h.c.household_id), self._basis(cf.guarantees, h, self.D)))
                          .label("lg"),
                          sa.func.coalesce(last_elimination, 0).label("after"))
                .where(self.in_division(h.c.division_code), self._not_monitored(h)).subquery("hs"))

    def _newest(self, table: sa.Table, hs: sa.Subquery, seq: str, name: str, columns: Sequence[str]
                ) -> tuple[sa.FromClause, sa.ColumnElement[bool]]:
        """The newest row of `table` made by the as-of date of each household of `hs`, as `name` (with at least
        `columns`), and the condition that joins it to `hs`: by the `seq` that `hs` carries in column `seq`, or,
        when it carries none (`_outside_newest`), the first row of each household in the index on (household,
        seq) read backwards — one pass that yields the rows themselves, where the maxima and the join back read
        the table twice."""
        if seq in hs.c:
            t = named(table, name)
            return t, sa.and_(t.c.household_id == hs.c.household_id, t.c.seq == hs.c[seq])
        t = named(table, f"{name}_all")
        newest = (sa.select(t.c.household_id, t.c.seq, *(t.c[n] for n in columns))
                  .where(t.c.seq < self.seq_from(self.D + 1)).ext(distinct_on(t.c.household_id))
                  .order_by(t.c.household_id.desc(), t.c.seq.desc()).subquery(name))
        return newest, newest.c.household_id == hs.c.household_id

    def qualifying_not_monitored(self) -> Iterator[Finding]:
        fw, hs = self._failed_warnings(), self._outside()
        i, on_i = self._newest(cf.incomes, hs, "li", "i",
                               ("on", "on_ord", "per_capita_income", "household_size", "exact_fen", "origin"))
        g, on_g = self._newest(cf.guarantees, hs, "lg", "g", ("on", "on_ord", "open_items", "origin"))
        after = hs.c.after
        line = self.line_on(i.c.on_ord)  # 应纳未纳: the line in force on the assessment's date
        # the line first: the last elimination (`after`, a probe a reference on SQLite) only for incomes below one
        below = sa.and_(self.below_line(i, i.c.on_ord), i.c.on_ord > after)
        open_g = sa.and_(g.c.open_items > 0, g.c.on_ord > after)
        # a warning is answered by the home visit that found the criteria not met, with an income on record
        # that is not below the line; one not answered is still a finding
        income_ok = sa.and_(i.c.seq.is_not(None), ~self.below_line(i, i.c.on_ord))
        unanswered = sa.func.coalesce(fw.c.n, 0) - sa.case((income_ok, sa.func.coalesce(fw.c.visited, 0)), else_=0)
        warned = sa.and_(fw.c.n.is_not(None), unanswered > 0)
        stmt = (sa.select(hs.c.household_id, hs.c.division_code, hs.c.cycle, i.c.on.label("income_on"),
                          i.c.per_capita_income, line.label("line"), below.label("below"),
                          g.c.on.label("guarantees_on"), g.c.open_items, open_g.label("open_g"),
                          unanswered.label("warnings"), fw.c.last_on,
                          i.c.origin.label("i_origin"), g.c.origin.label("g_origin"))
                .select_from(hs)
                .outerjoin(i, on_i)
                .outerjoin(g, on_g)
                .outerjoin(fw, fw.c.household_id == hs.c.household_id)
                .where(sa.or_(open_g, warned, below)))
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            why, evidence = [], {}
            if r.below:
                prec = "month" if r.i_origin else "day"
                why.append(f"{cn_day(r.income_on, prec)}核算人均纯收入 {money(r.per_capita_income)} 元低于监测标准 "
                           f"{money(r.line)} 元")
                evidence.update(income_assessed_on=day(r.income_on, prec),
                                per_capita_income=money(r.per_capita_income), monitoring_line=money(r.line))
            if r.open_g:
                prec = "month" if r.g_origin else "day"
                why.append(f"{cn_day(r.guarantees_on, prec)}核查三保障及饮水有 {r.open_items} 项未解决")
                evidence.update(guarantees_assessed_on=day(r.guarantees_on, prec), open_guarantees=r.open_items)
            if r.warnings:
                why.append(f"部门预警 {r.warnings} 次未纳入 (最近 {r.last_on})")
                evidence.update(department_warnings=r.warnings, last_warning_on=day(r.last_on))
            return "; ".join(why) + "; 但未纳入监测", evidence

        for r in self.rows(stmt, hashed=True):
            yield Finding("qualifying_not_monitored", r.division_code, SEVERE if (r.below or r.open_g) else WARNING,
                          partial(render, r), None, r.household_id, r.cycle)

    def repeated_warnings_not_included(self) -> Iterator[Finding]:
        h, fw = named(cf.households, "h"), self._failed_warnings()
        n = self.policy.screening.repeated_warnings
        stmt = (sa.select(h.c.household_id, h.c.cycle, h.c.division_code, fw.c.n, fw.c.first_on, fw.c.last_on)
                .select_from(h).join(fw, fw.c.household_id == h.c.household_id)
                .where(fw.c.n >= n, self.in_division(h.c.division_code), self._not_monitored(h)))
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            return (f"{r.first_on} 至 {r.last_on} 部门预警 {r.n} 次, 均未纳入监测 (政策: {n} 次及以上须核查)", {
                "department_warnings": r.n, "first_warning_on": day(r.first_on),
                "last_warning_on": day(r.last_on), "repeated_warnings": n,
            })

        yield from self.each("repeated_warnings_not_included", WARNING, render, self.rows(stmt))

    def slow_identification(self) -> Iterator[Finding]:
        c = named(cf.cycles, "c")
        limit_incl = self.by_policy(c.c.included_ord, lambda p: p.procedure.identification_days_limit)
        limit_now = self.policy.procedure.identification_days_limit
        included = sa.and_(self.unindexed(c.c.included_ord) <= self.D,
                           c.c.included_ord - c.c.first_lead_ord > limit_incl)
        pending = sa.and_(sa.or_(c.c.included_ord.is_(None), c.c.included_ord > self.D),
                          sa.or_(c.c.closed_ord.is_(None), c.c.closed_ord > self.D),
                          c.c.first_lead_ord <= self.D, self.D - c.c.first_lead_ord > limit_now)
        stmt = (sa.select(*self.cols(c, "first_lead_on", "first_lead_ord", "included_on", "included_ord"),
                          limit_incl.label("limit"), included.label("done"))
                .where(c.c.first_lead_ord.is_not(None), sa.or_(included, pending),
                       self.in_division(c.c.division_code)))
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            if r.done:
                days, limit = r.included_ord - r.first_lead_ord, int(r.limit)
                detail = f"{r.first_lead_on} 收到线索, {r.included_on} 纳入监测, 用时{days}天 (规定{limit}天)"
            else:
                days, limit = self.D - r.first_lead_ord, limit_now
                detail = f"{r.first_lead_on} 收到线索, 至 {self.as_of} 已{days}天仍未完成识别 (规定{limit}天)"
            return detail, {
                "first_lead_on": day(r.first_lead_on), "included_on": day(r.included_on) if r.done else None,
                "days": days, "identification_days_limit": limit,
            }

        yield from self.each("slow_identification", WARNING, render, self.rows(stmt))

    def short_publicity(self) -> Iterator[Finding]:
        p = named(cf.publicity, "p")
        need = self.by_policy(p.c.closed_ord, lambda x: x.procedure.publicity_days)
        stmt = (sa.select(p, (p.c.closed_ord - p.c.opened_ord).label("days"), need.label("need"))
                .where(p.c.closed_ord <= self.D, p.c.opened_ord.is_not(None),
                       p.c.closed_ord - p.c.opened_ord < need, self.in_division(p.c.division_code))
                .order_by(p.c.household_id, p.c.cycle, p.c.closed_ord))
        seen: set[tuple[str, int]] = set()
        for r in self.rows(stmt):
            if (r.household_id, r.cycle) in seen:  # one finding per cycle (the first short notice)
                continue
            seen.add((r.household_id, r.cycle))
            yield Finding("short_publicity", r.division_code, WARNING, partial(_short_publicity, r), None,
                          r.household_id, r.cycle)

    def _worst_per_cycle(self, b: sa.Table, allowed: sa.ColumnElement[Any], gap: sa.ColumnElement[Any],
                         seen: sa.ColumnElement[bool]) -> list[Any]:
        """Records of `cf_backdating` whose `gap` in days (recorded after, or dated ahead of, the business
        date) exceeds the policy's `allowed`: one row per household and cycle — the worst, with how many
        there are (`n`)."""
        per_cycle = (b.c.household_id, b.c.cycle)
        ranked = (sa.select(b, allowed.label("allowed"), gap.label("gap"),
                            sa.func.count().over(partition_by=per_cycle).label("n"),
                            sa.func.row_number().over(partition_by=per_cycle,
                                                      order_by=(gap.desc(), b.c.key)).label("rank"))
                  .where(seen, gap > allowed, self.in_division(b.c.division_code))
                  .subquery(f"{b.name}_worst"))
        return self.rows(sa.select(ranked).where(ranked.c.rank == 1))

    def backdated_entry(self) -> Iterator[Finding]:
        from casecore.labels import EVENT_LABELS

        b = named(cf.backdating, "b")
        allowed = self.by_policy(b.c.on_ord, lambda p: p.procedure.backdated_entry_days)
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            label = EVENT_LABELS.get(f"household.{r.event_type}", r.event_type)
            return (f"{r.n} 条记录在业务日期 {int(r.allowed)} 天之后才录入; 最久: “{label}”业务日期 {r.on}, "
                    f"录入于 {r.recorded_on} (相隔{r.gap}天)", {
                        "events": r.n, "worst_event": r.event_type, "worst_on": day(r.on),
                        "worst_recorded_on": day(r.recorded_on), "worst_lag_days": r.gap,
                        "backdated_entry_days": int(r.allowed), "actor_id": r.actor_id,
                    })

        for r in self._worst_per_cycle(b, allowed, b.c.lag_days, b.c.on_ord <= self.D):
            yield Finding("backdated_entry", r.division_code, WARNING, partial(render, r), None,
                          r.household_id, r.cycle)

    def no_responsible_cadre(self) -> Iterator[Finding]:
        c, h = named(cf.cycles, "c"), named(cf.households, "h")
        stmt = (sa.select(*self.cols(c, "included_on", "included_ord", "included_precision")).select_from(c)
                .join(h, h.c.household_id == c.c.household_id)
                .where(self.monitored(c), sa.or_(h.c.cadre_ord.is_(None), h.c.cadre_ord > self.D),
                       h.c.cadre_unknown.is_(False), self.in_division(c.c.division_code)))
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            return (f"{cn_day(r.included_on, r.included_precision)}纳入监测, 至 {self.as_of} 未明确帮扶责任人", {
                "included_on": day(r.included_on, r.included_precision),
                "days_without_cadre": self.D - r.included_ord})

        yield from self.each("no_responsible_cadre", WARNING, render, self.rows(stmt))

    def cadre_unknown(self) -> int:
        """Households monitored on the as-of date whose responsible cadre is unknown (their history came from
        an export without a 帮扶责任人 column): `no_responsible_cadre` does not judge them."""
        c, h = named(cf.cycles, "c"), named(cf.households, "h")
        stmt = (sa.select(sa.func.count(sa.distinct(c.c.household_id))).select_from(c)
                .join(h, h.c.household_id == c.c.household_id)
                .where(self.monitored(c), sa.or_(h.c.cadre_ord.is_(None), h.c.cadre_ord > self.D),
                       h.c.cadre_unknown.is_(True), self.in_division(c.c.division_code)))
        return int(self.conn.execute(stmt).scalar_one())

    def rectification_overdue(self) -> Iterator[Finding]:
        p = named(cf.problems, "p")
        stmt = (sa.select(p).where(p.c.deadline_ord < self.D, p.c.raised_ord <= self.D,
                                   sa.or_(p.c.closed_ord.is_(None), p.c.closed_ord > self.D),
                                   self.in_division(p.c.division_code)))
        from casecore.values import ProblemKind

        def render(r: Any) -> tuple[str, dict[str, Any]]:
            days = self.D - r.deadline_ord
            kind = ProblemKind(r.kind).label if r.kind in ProblemKind._value2member_map_ else r.kind
            resp, sup = r.responsible or {}, r.supervisor or {}
            return (f"问题 {r.problem_id} ({kind}) 整改时限 {r.deadline}, 至 {self.as_of} 超期{days}天未销号; "
                    f"责任方 {resp.get('unit', '—')} {resp.get('person', '')}, "
                    f"监督方 {sup.get('unit', '—')} {sup.get('person', '')}", {
                        "problem_id": r.problem_id, "kind": r.kind, "deadline": day(r.deadline),
                        "overdue_days": days, "status": r.status, "responsible": resp, "supervisor": sup,
                    })

        for r in self.rows(stmt):
            yield Finding("rectification_overdue", r.division_code, SEVERE, partial(render, r), None,
                          r.household_id, None, problem_id=r.problem_id, subject_problem=r.problem_id)

    # ------------------------------------------------------------------ rules: paperwork and dates

    SIGNER = ("household_id", "cycle", "procedure", "instance", "actor_id")

    def signed_two_levels(self, s: sa.Table) -> sa.ColumnElement[bool]:
        """The signature `s` is by a signer (household, cycle, procedure, run, actor) who signed two levels of that
        run of the procedure by the as-of date.

        Probing the signer index once a signature costs more than finding the signers first, with fewer probes:
        of two different levels one is not the verification, the commonest level (every run of a procedure is
        verified, sometimes once a lead), so only the signatures of the other levels look for another level of
        their signer; the signatures of the few signers found are then read through the same index. (On
        PostgreSQL a merge of every signature with every signature through that index costs a third more.)"""
        t, t2 = named(cf.signatures, "ts"), named(cf.signatures, "ts2")
        signers = (sa.select(*(t.c[n] for n in self.SIGNER))
                   .join(t2, sa.and_(*(t2.c[n] == t.c[n] for n in self.SIGNER), t2.c.level != t.c.level,
                                     t2.c.on_ord <= self.D))
                   .where(t.c.on_ord <= self.D, t.c.level != SignLevel.VERIFY.value))
        if self.households is not None:
            signers = signers.where(t.c.household_id.in_(self.households))
        return sa.tuple_(*(s.c[n] for n in self.SIGNER)).in_(signers)

    def same_signer_two_levels(self) -> Iterator[Finding]:
        s = named(cf.signatures, "s")
        # signatures of one day by one signer: in the procedure's order
        level_order = sa.case({level.value: n for n, level in enumerate(SignLevel)}, value=s.c.level)
        stmt = (sa.select(s).where(s.c.on_ord <= self.D, self.signed_two_levels(s), self.in_division(s.c.division_code))
                .order_by(s.c.household_id, s.c.cycle, s.c.procedure, s.c.instance, s.c.actor_id, s.c.on_ord,
                          level_order))
        grouped: dict[tuple[str, int], list[Any]] = defaultdict(list)
        for r in self.rows(stmt):
            grouped[(r.household_id, r.cycle)].append(r)
        def render(rs: list[Any]) -> tuple[str, dict[str, Any]]:
            by_person: dict[tuple[str, str], list[Any]] = defaultdict(list)
            for r in rs:
                by_person[(r.procedure, r.actor_id)].append(r)
            parts, signers = [], []
            for (procedure, actor), signed in by_person.items():
                levels = list(dict.fromkeys(r.level for r in signed))
                parts.append(f"{actor} 在{Procedure(procedure).label}中签署了"
                             + "、".join(f"{SignLevel(x).label} ({next(r.on for r in signed if r.level == x)})"
                                        for x in levels))
                signers.append({"procedure": procedure, "actor_id": actor, "levels": levels,
                                "signed_on": [day(r.on) for r in signed]})
            return "; ".join(parts) + " (同一人签署两级, 四眼原则)", {"signers": signers}

        for (hid, cycle), rs in grouped.items():
            yield Finding("same_signer_two_levels", rs[0].division_code, SEVERE, partial(render, rs), None, hid, cycle)

    def future_dated_act(self) -> Iterator[Finding]:
        from casecore.labels import EVENT_LABELS

        b = named(cf.backdating, "fb")
        allowed = self.by_policy(b.c.on_ord, lambda p: p.procedure.future_dated_days)
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            label = EVENT_LABELS.get(f"household.{r.event_type}", r.event_type)
            return (f"{r.n} 条记录的业务日期晚于录入日期 (超过{int(r.allowed)}天); 最超前: “{label}”业务日期 "
                    f"{r.on}, 录入于 {r.recorded_on} (提前{r.gap}天)", {
                        "events": r.n, "worst_event": r.event_type, "worst_on": day(r.on),
                        "worst_recorded_on": day(r.recorded_on), "days_ahead": r.gap,
                        "future_dated_days": int(r.allowed), "actor_id": r.actor_id,
                    })

        for r in self._worst_per_cycle(b, allowed, -b.c.lag_days, b.c.recorded_on <= self.as_of):
            yield Finding("future_dated_act", r.division_code, WARNING, partial(render, r), None,
                          r.household_id, r.cycle)

    # ------------------------------------------------------------------ rules: assistance before exit

    def exit_without_six_months_measures(self) -> Iterator[Finding]:
        """Assisted eliminations whose measures were not in place (implemented, not ended) without a gap for
        the policy's months before the nomination (an import's elimination: before the elimination) — the
        engine's `min_assistance_months` test, `casecore.values.in_place_for`, on each candidate."""
        e, m = self.standing_eliminations("e6"), named(cf.measures, "m6")
        e2, m2 = self.standing_eliminations("e6n"), named(cf.measures, "m6n")

        def judged(x: sa.Table) -> list[sa.ColumnElement[bool]]:
            return [self.eliminated_standing(x), x.c.exit_mode == ExitMode.ASSISTED.value,
                    x.c.included_ord.is_not(None), self.in_division(x.c.division_code)]

        # only the newest elimination of a cycle the rule judges is judged
        newer = exists(e2.c.household_id == e.c.household_id, e2.c.cycle == e.c.cycle, e2.c.n > e.c.n,
                       *judged(e2))
        # one measure in place alone for 31 days a month of the policy's months before `until` is enough (a month
        # is never longer): those eliminations need no closer look; the others get the engine's exact test
        until = sa.func.coalesce(e.c.nominated_ord, e.c.eliminated_ord)
        months = self.by_policy(until, lambda p: p.exit.min_assistance_months)
        end = sa.case((sa.or_(m2.c.ended_ord.is_(None), m2.c.ended_ord > until), until), else_=m2.c.ended_ord)
        plainly_in_place = exists(
            m2.c.household_id == e.c.household_id, m2.c.cycle == e.c.cycle, m2.c.implemented_ord >= e.c.included_ord,
            m2.c.implemented_ord < end, m2.c.implemented_ord + 31 * months <= end)
        stmt = (sa.select(*self.cols(e), e.c.n, e.c.nominated_ord, m.c.implemented_on, m.c.ended_on)
                .select_from(e)
                .outerjoin(m, sa.and_(m.c.household_id == e.c.household_id, m.c.cycle == e.c.cycle,
                                      m.c.implemented_ord >= e.c.included_ord))
                .where(*judged(e), ~newer, ~plainly_in_place)
                .order_by(*self.latest_first(e)))
        spans: dict[tuple[str, int, int], list[tuple[date, date | None]]] = defaultdict(list)
        first: dict[tuple[str, int, int], Any] = {}
        for r in self.rows(stmt):
            k = (r.household_id, r.cycle, r.n)
            first.setdefault(k, r)
            if r.implemented_on is not None:
                spans[k].append((r.implemented_on, r.ended_on))
        seen: set[tuple[str, int]] = set()
        for k, r in first.items():
            if (r.household_id, r.cycle) in seen:
                continue
            seen.add((r.household_id, r.cycle))
            until = r.nominated_on or r.eliminated_on
            months = self.policies.on(until).exit.min_assistance_months
            if in_place_for(spans[k], until, months):
                continue
            yield Finding("exit_without_six_months_measures", r.division_code, SEVERE,
                          partial(_not_in_place, r, spans[k], until, months), None, r.household_id, r.cycle)

    def sudden_hardship_high_income(self) -> Iterator[Finding]:
        c, i = named(cf.cycles, "sh"), named(cf.incomes, "shi")
        check = self.by_policy(c.c.included_ord, lambda p: p.income.sudden_hardship_check)
        stmt = (sa.select(*self.cols(c), i.c.on.label("assessed_on"), i.c.per_capita_income,
                          i.c.origin.label("income_origin"), check.label("check"))
                .select_from(c).join(i, sa.and_(i.c.household_id == c.c.household_id,
                                                i.c.seq == self._basis(cf.incomes, c, c.c.included_ord)))
                .where(c.c.category == Category.SUDDEN_HARDSHIP.value, c.c.included_ord <= self.D,
                       self.per_capita_vs(i, check, below=False), self.in_division(c.c.division_code)))
        def render(r: Any) -> tuple[str, dict[str, Any]]:
            prec = "month" if r.income_origin else "day"
            return (f"{cn_day(r.included_on, r.included_precision)}认定为突发严重困难户, 依据的"
                    f"{cn_day(r.assessed_on, prec)}收入核算人均纯收入 {money(r.per_capita_income)} 元, "
                    f"高于核查标准 {money(r.check)} 元, 请核实是否有大额刚性支出或收入骤减", {
                        "included_on": day(r.included_on, r.included_precision),
                        "income_assessed_on": day(r.assessed_on, prec),
                        "per_capita_income": money(r.per_capita_income), "sudden_hardship_check": money(r.check),
                    })

        yield from self.each("sudden_hardship_high_income", WARNING, render, self.rows(stmt))

    # ------------------------------------------------------------------ evidence and problems

    MEASURE_RULES = frozenset({"helped_not", "risk_without_fitting_measure", "floor_only_with_labour",
                               "no_developmental_measure"})

    #: above this many households, `_attach_measures` reads every measure once instead of chunks of households
    MEASURES_SCAN_FROM = 2000

    def _attach_measures(self, findings: list[Finding], scanned: dict[tuple[str, int], str] | None = None) -> None:
        """The measures of each finding's cycle, as evidence: those of every cycle read in one pass when many
        households are wanted (or that pass's, `scanned`, read beside the rules), else those of the wanted
        households, 500 at a time (`_measures_by_cycle`); the evidence items are written when first read."""
        wanted = [f for f in findings if f.rule in self.MEASURE_RULES and f.household_id is not None]
        if scanned is None:
            hids = sorted({f.household_id for f in wanted if f.household_id})
            if len(hids) > self.MEASURES_SCAN_FROM:
                scanned = self._measures_by_cycle(self.households)
            else:
                scanned = {}
                for i in range(0, len(hids), 500):
                    scanned.update(self._measures_by_cycle(hids[i : i + 500]))
        lists: dict[tuple[str, int], _Later] = {}
        for f in wanted:
            k = (f.household_id, f.cycle)
            later = lists.get(k)  # type: ignore[arg-type]
            if later is None:
                later = lists[k] = _Later(partial(_measure_items, scanned.get(k)))  # type: ignore[arg-type]
            f.attach("measures", later)

    def _measures_by_cycle(self, households: Sequence[str] | None) -> dict[tuple[str, int], str]:
        """The measures of each cycle of `households` (of every household: None), as the database encodes them:
        a JSON array of [id, type, status, planned day, implemented day, ended day, origin, planned ordinal] a
        measure, in no order (`_measure_items` orders them). The database groups and encodes them while the
        thread that waits for it lets the others run; a cycle's are decoded only when a finding's evidence is
        written. (Reading every measure as a row and grouping them here cost SQLite three times as much.)"""
        m = cf.measures
        item = (m.c.measure_id, m.c.measure_type, m.c.status, m.c.planned_on, m.c.implemented_on, m.c.ended_on,
                m.c.origin, m.c.planned_ord)
        if self.conn.dialect.name == "sqlite":
            encoded: sa.ColumnElement[Any] = sa.func.json_group_array(sa.func.json_array(*item))
        else:
            encoded = sa.cast(sa.func.json_agg(sa.func.json_build_array(*item)), sa.Text)
        stmt = sa.select(m.c.household_id, m.c.cycle, encoded).group_by(m.c.household_id, m.c.cycle)
        if households is not None:
            stmt = stmt.where(m.c.household_id.in_(households))
        return {(h, c): text for h, c, text in self.conn.execute(stmt)}

    def _attach_problems(self, findings: list[Finding]) -> None:
        """Findings already in the double ledger carry their problem's id."""
        p = cf.problems
        if not findings:
            return
        raised = self.conn.execute(sa.select(p.c.finding_key, p.c.problem_id, p.c.status)
                                   .where(p.c.finding_key.is_not(None))).fetchall()
        if not raised:   # no problem raised for a finding yet: the findings' keys are not needed
            return
        keys = {f.key: f for f in findings}
        for (key, pid, status) in raised:
            f = keys.get(key)
            if f is not None:
                f.raised_problem = pid
                f.attach("problem_status", status)
                if f.problem_id is None:
                    f.problem_id = pid


@contextlib.contextmanager
def _postgres_setting(conn: Connection, name: str, value: str) -> Iterator[None]:
    """A planner setting of PostgreSQL (`jit`, `enable_nestloop`: on or off) for what runs on `conn` meanwhile,
    restored after in its transaction; nothing on SQLite. The rules run without JIT: their statements cost
    enough for the planner to compile them, 25–50 ms a statement that a run of a score of them never earns
    back (docs/benchmarks.md)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    was = conn.exec_driver_sql(f"SHOW {name}").scalar_one()
    conn.exec_driver_sql(f"SET LOCAL {name} = {value}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"SET LOCAL {name} = {'on' if was == 'on' else 'off'}")


def _short_publicity(r: Any) -> tuple[str, dict[str, Any]]:
    what = "识别" if r.procedure == "inclusion" else "风险消除"
    return (f"{what}公示 {r.opened_on} 开始, {r.closed_on} 结束, 仅{r.days}天 (规定{int(r.need)}天)", {
        "procedure": r.procedure, "opened_on": day(r.opened_on), "closed_on": day(r.closed_on),
        "days": r.days, "publicity_days": int(r.need),
    })


def _measure_items(encoded: str | None) -> list[dict[str, Any]]:
    """The evidence of a cycle's measures from `Inspector._measures_by_cycle`'s encoding (None: it has none), by
    planned day (a day missing first), then id (by code point): the same order on both stores."""
    if encoded is None:
        return []
    rows = orjson.loads(encoded)
    rows.sort(key=lambda r: (r[7] is not None, r[7] or 0, r[0]))
    out = []
    for measure_id, measure_type, status, planned_on, implemented_on, ended_on, origin, _ in rows:
        month = bool(origin)   # an imported measure is dated to the month
        out.append({"measure_id": measure_id, "measure_type": measure_type, "status": status,
                    "planned_on": _iso_day(planned_on, month), "implemented_on": _iso_day(implemented_on, month),
                    "ended_on": _iso_day(ended_on, month)})
    return out


def _iso_day(text: str | None, month: bool) -> str | None:
    """`day` of a date the database wrote as YYYY-MM-DD."""
    return None if text is None else text[:7] if month else text


def _not_in_place(r: Any, spans: list[tuple[date, date | None]], until: date, months: int
                  ) -> tuple[str, dict[str, Any]]:
    """exit_without_six_months_measures: the longest run the cycle's measures were in place before `until`."""
    runs = in_place_runs(spans, until)
    longest = max(((b - a).days, a, b) for a, b in runs) if runs else None
    ran = (f"最长持续落实 {longest[1]} 至 {longest[2] - timedelta(days=1)} ({longest[0]}天)" if longest
           else "没有落实的针对性帮扶措施")
    what = _nomination_or_elimination(r)
    return (f"{cn_day(r.eliminated_on, r.eliminated_precision)}帮扶消除, 但{what}前帮扶措施未持续"
            f"落实满{months}个月: {ran}", {
                "eliminated_on": day(r.eliminated_on, r.eliminated_precision),
                "nominated_on": day(r.nominated_on), "min_assistance_months": months,
                "longest_days_in_place": longest[0] if longest else 0,
            })


def _nomination_or_elimination(r: Any) -> str:
    """The act an exit's later facts are counted from, as the sentences name it: the nomination, else the
    elimination (imported exits have no nomination)."""
    return (f"提名 ({r.nominated_on})" if r.nominated_on
            else f"消除 ({cn_day(r.eliminated_on, r.eliminated_precision)})")


def _span(r: Any) -> str:
    """The exact time from inclusion to elimination: whole months and days (months only for month-precision
    facts), so 5 months 30 days never reads as "6 months"."""
    if "month" in (r.included_precision, r.eliminated_precision):
        return f"{r.months}个月"
    months = _months_between(r.included_on, r.eliminated_on)
    days = (r.eliminated_on - add_months(r.included_on, months)).days
    return f"{months}个月" + (f"{days}天" if days else "")


def _months_between(start: date, end: date) -> int:
    """Whole months from `start` to `end`."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if add_months(start, months) > end:
        months -= 1
    return max(months, 0)


INSPECTOR = {"id": "inspection-rules", "name": "督查规则", "role": "inspector", "unit": "督查组"}


def problem_commands(findings: Iterable[Finding], on: date, actor: dict[str, Any] | None = None) -> list[Any]:
    """`raise_problem` commands for the findings not yet in the double ledger: kind = the rule, source =
    inspection_rule, `problem_id` derived from the finding's key (one problem per rule, household and cycle),
    so applying them twice raises nothing new."""
    from casecore.commands import parse_command

    out = []
    for f in findings:
        if f.raised_problem is not None:
            continue
        data: dict[str, Any] = {
            "command": "raise_problem", "on": on.isoformat(), "actor": actor or INSPECTOR,
            "command_id": f"inspect:{f.derived_problem_id}", "problem_id": f.derived_problem_id, "kind": f.rule,
            "division_code": f.division_code, "source": "inspection_rule", "detail": f.detail,
            "finding_key": f.key, "evidence": [f"{RULES[f.rule].label}: {RULES[f.rule].policy}"],
        }
        if f.household_id is not None:
            data["household_id"] = f.household_id
        out.append(parse_command(data))
    return out


def inspect(conn: Connection, policies: PolicyBook, as_of: date, rules: Iterable[str] | None = None,
            division: str | None = None) -> list[Finding]:
    """Every finding of the rules (all by default) as of a date, for a division prefix (all by default)."""
    return Inspector(conn, policies, as_of, division).run(rules)


@dataclass
class Summary:
    """Counts of findings by rule and severity."""

    by_rule: dict[str, int] = field(default_factory=dict)
    by_severity: dict[str, int] = field(default_factory=dict)
    #: monitored households whose responsible cadre is unknown (not judged by no_responsible_cadre)
    cadre_unknown: int = 0

    @classmethod
    def of(cls, findings: Iterable[Finding], cadre_unknown: int = 0) -> Summary:
        s = cls({r: 0 for r in RULES}, {SEVERE: 0, WARNING: 0}, cadre_unknown)
        for f in findings:
            s.by_rule[f.rule] += 1
            s.by_severity[f.severity] += 1
        return s


__all__ = ["RULES", "Finding", "Inspector", "Summary", "inspect"]
