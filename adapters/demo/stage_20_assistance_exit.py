"""Stage 20 of the demo: the county lives through its months (帮扶、动态管理、风险消除), to the end of 2023.

Every monitored household gets a responsible cadre and measures that fit its risks (缺什么补什么), which
departments carry out; children are born, old people die, daughters marry out; incomes are re-assessed; the
village nominates households for exit, the township and county review them, and the township marks the risk
eliminated. Some nominations are planted to be refused — too few months of assistance, income below the line,
a guarantee still open, no income assessment for the right months, a household without labour — and some
marks come before the fresh data; the engine says no, and the cadres then do it right (or keep helping). A few
eliminated households are rolled back, and a few fall back and are included again through a new lead.

Each household's year is written as a generator that yields one command at a time and reads the outcome, so
the story follows what the engine decided; the driver submits, month by month, one command per household a
round through the bulk path.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from adapters.demo import DemoContext
from casecore.application import Outcome
from casecore.commands import Command, parse_command
from casecore.values import (
    DEVELOPMENTAL_MEASURES,
    Category,
    HouseholdType,
    Labour,
    MeasureType,
    Stage,
    add_months,
    in_place_runs,
    make_person_id,
    month_window,
)

TITLE = "帮扶、动态管理与风险消除"

END = date(2023, 12, 31)
DEPARTMENT = {
    "industry": "县农业农村局", "employment": "县人力资源和社会保障局", "finance": "县农村商业银行",
    "public_welfare_job": "县人力资源和社会保障局", "health": "县医疗保障局", "compulsory_education": "县教育局",
    "education": "县教育局", "social_assistance": "县民政局", "housing": "县住房和城乡建设局",
    "drinking_water": "县水务局", "social": "县乡村振兴局", "relocation": "县生态移民局",
    "living_conditions": "县乡村振兴局", "infrastructure": "县交通运输局",
}
ROLLBACK_REASONS = ("家庭成员突发重病, 风险未稳定消除", "务工收入中断, 收入低于监测线", "回访发现风险消除依据不实")
#: planted refusals and how often a household carries each (at least one household carries each kind)
PLANTS = {"early": 0.08, "below": 0.07, "missing": 0.05, "open_guarantee": 0.07, "early_close": 0.04,
          "four_eyes": 0.03, "bare_mark": 0.07, "misfit": 0.05, "rollback": 0.07, "reinclude": 0.06}

Step = Generator[Command, Outcome, None]


@dataclass
class Track:
    """What the stage knows of one household: enough to write its next command."""

    hid: str
    code: str
    household_type: str
    included_on: date
    category: str | None
    risks: list[str]
    members: dict[str, dict[str, Any]]          # person id → {"labour", "born", "added", "removed"}
    net0: Decimal                               # yearly household net income when included
    rng: random.Random
    cadre: bool
    stage: str = Stage.MONITORED.value
    cursor: date = date.min                     # the household's last business date: commands never go back
    first_impl: date | None = None
    measures: dict[str, dict[str, Any]] = field(default_factory=dict)
    measure_seq: int = 0
    growth: float = 0.05
    natural: bool = False
    plants: set[str] = field(default_factory=set)
    labour_refusal_shown: bool = False
    assessed: list[tuple[date, date]] = field(default_factory=list)
    eliminated_on: date | None = None

    def size_on(self, day: date) -> int:
        return sum(1 for m in self.members.values()
                   if (m["added"] is None or m["added"] <= day) and (m["removed"] is None or m["removed"] > day))

    def has_labour(self) -> bool:
        return any(m["removed"] is None and m["labour"] != Labour.NONE.value for m in self.members.values())

    def net(self, day: date) -> Decimal:
        """Yearly net income on `day`: grows month by month once assistance is in place (or after the risk
        went away by itself), within reason."""
        if self.natural:
            factor = 1.7 if day >= add_months(self.included_on, 3) else 1.0
        elif self.first_impl is None or day < self.first_impl:
            factor = 1.0
        else:
            months = (day.year - self.first_impl.year) * 12 + day.month - self.first_impl.month
            factor = min((1 + self.growth) ** months, 2.5)
        return (self.net0 * Decimal(str(factor))).quantize(Decimal(1), ROUND_HALF_UP)

    def per_capita(self, day: date) -> Decimal:
        end = month_window(day)[1]
        return self.net(day) / max(self.size_on(end), 1)

    def assisted_since(self, day: date) -> date | None:
        """Since when this cycle's measures have been in place without a gap up to `day` (None: none is)."""
        spans = [(m["implemented"], m["ended"]) for m in self.measures.values()
                 if m["implemented"] and self.included_on and m["implemented"] >= self.included_on]
        runs = in_place_runs(spans, day)
        return runs[-1][0] if runs and runs[-1][1] == day else None

    def covered(self, day: date) -> bool:
        start, end = month_window(day)
        return any(s <= start and e >= end for s, e in self.assessed)


class Story:
    """Writes every household's months as a generator of commands and keeps the counts."""

    def __init__(self, ctx: DemoContext):
        self.ctx = ctx
        self.actor_for = ctx.shared["actor_for"]
        self.counts: Counter[str] = Counter()
        #: commands meant to be refused, by id (kept alive here so that an id is never reused)
        self.planted: dict[int, Command] = {}
        self.planted_refused = 0
        self.unexpected = 0
        self.monitored: set[str] = set(ctx.shared.get("monitored", set()))
        self.included_on: dict[str, date] = dict(ctx.shared.get("included_on", {}))
        self.eliminated: dict[str, date] = dict(ctx.shared.get("eliminated", {}))
        county = ctx.shared.get("county", {}).get("code") or "522631"
        self.area = county[:6]
        self.used_ids: set[str] = set()

    # ------------------------------------------------------------------ helpers

    def line(self, day: date) -> Decimal:
        return self.ctx.app.policies.on(day).income.monitoring_line

    def cmd(self, t: Track, name: str, day: date, role: str, n: int = 0, planted: bool = False,
            actor: dict | None = None, **fields: Any) -> Command:
        t.cursor = max(day, t.cursor)
        command = parse_command({"command": name, "on": t.cursor.isoformat(),
                                 "actor": actor or self.actor_for(role, t.code, n), "household_id": t.hid, **fields})
        if planted:
            self.planted[id(command)] = command
        return command

    def new_person(self, t: Track, born: date, labour: str, relation: str) -> dict[str, Any]:
        while True:
            pid = make_person_id(self.area, born, t.rng.randrange(1000))
            if pid not in self.used_ids:
                self.used_ids.add(pid)
                break
        return {"person_id": pid, "name": f"新成员{pid[-4:]}", "relation": relation, "birth_date": born.isoformat(),
                "labour": labour}

    def income(self, t: Track, day: date, per_capita: Decimal | None = None, window_of: date | None = None) -> Command:
        start, end = month_window(window_of or day)
        net = t.net(day) if per_capita is None else per_capita * max(t.size_on(end), 1)
        t.assessed.append((start, end))
        self.counts["收入核算"] += 1
        return self.cmd(t, "assess_income", day, "village", period_start=start.isoformat(),
                        period_end=end.isoformat(), net_income=str(net), rigid_expenditure="0")

    def guarantees(self, t: Track, day: date, gap: str | None = None) -> Command:
        present = [pid for pid, m in t.members.items() if m["removed"] is None]
        fields: dict[str, Any] = {"housing": "safe", "drinking_water_safe": True, "children_out_of_school": [],
                                  "members_without_medical_insurance": []}
        if gap == "housing":
            fields["housing"] = "c_level"
        elif gap == "water":
            fields["drinking_water_safe"] = False
        elif gap == "insurance":
            fields["members_without_medical_insurance"] = present[-1:]
        self.counts["三保障及饮水核查"] += 1
        return self.cmd(t, "assess_guarantees", day, "village", **fields)

    def expect(self, command: Command, outcome: Outcome) -> bool:
        """Whether the command went in. A planted command that goes in, or a refusal nobody planted, is
        counted as unexpected (the summary shows it: the story and the engine disagree)."""
        if id(command) in self.planted:
            self.planted_refused += not outcome.ok
            self.unexpected += outcome.ok
        elif not outcome.ok:
            self.unexpected += 1
        return outcome.ok

    # ------------------------------------------------------------------ one household's months

    def life(self, t: Track, start: date) -> Step:
        day = start + timedelta(days=t.rng.randrange(0, 15))
        if not t.cadre:
            cadre = self.actor_for("village", t.code, 2)
            c = self.cmd(t, "assign_cadre", day, "village", cadre={"id": cadre["id"], "name": cadre["name"],
                                                                    "unit": cadre["unit"]})
            if self.expect(c, (yield c)):
                self.counts["指定帮扶责任人"] += 1
        yield from self.assist(t, day)
        month = date(day.year + day.month // 12, day.month % 12 + 1, 1)
        while month <= END:
            d = max(month + timedelta(days=t.rng.randrange(0, 12)), t.cursor)
            if d > END:
                break
            yield from self.member_changes(t, d)
            yield from self.end_measures(t, d)
            if month == date(2023, 1, 1) and t.stage == Stage.MONITORED.value and "missing" not in t.plants:
                # 年度收入核算 (forgotten where a nomination without the right months is planted)
                c = self.income(t, d, window_of=date(2023, 1, 1))
                self.expect(c, (yield c))
            if t.stage == Stage.MONITORED.value:
                yield from self.exit(t, d)
            elif t.stage == Stage.RISK_ELIMINATED.value:
                yield from self.after_elimination(t, d)
            month = add_months(month, 1)

    def assist(self, t: Track, day: date) -> Step:
        """Plan a fitting measure for each risk (developmental ones for a household with labour where they
        fit), then carry them out over the next weeks."""
        policy = self.ctx.app.policies.on(day)
        if "misfit" in t.plants:
            t.plants.discard("misfit")
            risk = t.risks[0]
            wrong = sorted(set(MeasureType) - policy.fitting_measures(risk))
            if wrong:
                c = self.measure_plan(t, day, wrong[t.rng.randrange(len(wrong))], [risk], planted=True)
                self.expect(c, (yield c))
        planned = []
        for risk in t.risks[:3]:
            fitting = sorted(policy.fitting_measures(risk))
            preferred = [m for m in fitting if m in DEVELOPMENTAL_MEASURES] if t.has_labour() else \
                [m for m in fitting if m not in DEVELOPMENTAL_MEASURES]
            choice = t.rng.choice(preferred or fitting)
            c = self.measure_plan(t, day, choice, [risk])
            if self.expect(c, (yield c)):
                planned.append(c.measure_id)
                self.counts["制定帮扶措施"] += 1
        for mid in planned:
            c = self.cmd(t, "implement_measure", t.cursor + timedelta(days=t.rng.randrange(5, 45)), "township",
                         measure_id=mid)
            if self.expect(c, (yield c)):
                t.measures[mid]["implemented"] = c.on
                t.first_impl = t.first_impl or c.on
                self.counts["落实帮扶措施"] += 1

    def measure_plan(self, t: Track, day: date, measure_type: str, risks: list[str], planted: bool = False) -> Command:
        t.measure_seq += 1
        mid = f"{t.hid}-S{t.measure_seq}"
        t.measures[mid] = {"type": measure_type, "implemented": None, "ended": None}
        return self.cmd(t, "plan_measure", day, "village", planted=planted, measure_id=mid,
                        measure_type=measure_type, addresses=risks, department=DEPARTMENT[measure_type],
                        responsible=self.actor_for("village", t.code, 2)["name"])

    def end_measures(self, t: Track, day: date) -> Step:
        """Measures wind down after three months, one at a time: while monitored, the last one in place stays
        (an exit needs measures in place, without a gap, for six months)."""
        for mid, m in t.measures.items():
            others = [k for k, o in t.measures.items() if k != mid and o["implemented"] and not o["ended"]]
            if m["implemented"] and not m["ended"] and day >= add_months(m["implemented"], 3) \
                    and (others or t.stage == Stage.RISK_ELIMINATED.value) and t.rng.random() < 0.05:
                c = self.cmd(t, "end_measure", day, "township", measure_id=mid)
                if self.expect(c, (yield c)):
                    m["ended"] = c.on
                    self.counts["结束帮扶措施"] += 1

    def member_changes(self, t: Track, day: date) -> Step:
        """人口自然增减: births, deaths, marriages and moves change the size per-capita income divides by."""
        present = {pid: m for pid, m in t.members.items() if m["removed"] is None}
        roll = t.rng.random()
        if roll < 0.012 and any(20 <= day.year - m["born"].year <= 40 for m in present.values()):
            member = self.new_person(t, day, Labour.NONE.value, "子女")
            reason, label = "birth", "出生"
        elif roll < 0.016 and any(20 <= day.year - m["born"].year <= 35 for m in present.values()):
            member = self.new_person(t, date(1996, 1 + t.rng.randrange(12), 1 + t.rng.randrange(28)),
                                     Labour.FULL.value, "配偶")
            reason, label = "marriage", "婚入"
        else:
            member = None
        if member is not None:
            c = self.cmd(t, "add_member", day, "village", member=member, reason=reason)
            if self.expect(c, (yield c)):
                t.members[member["person_id"]] = {"labour": member["labour"], "born": day if reason == "birth"
                                                  else date.fromisoformat(member["birth_date"]), "added": c.on,
                                                  "removed": None}
                self.counts[f"人口增加: {label}"] += 1
            return
        if len(present) < 2:
            return
        elderly = [pid for pid, m in present.items() if day.year - m["born"].year >= 70]
        young = [pid for pid, m in present.items() if 20 <= day.year - m["born"].year <= 32]
        if roll < 0.024 and elderly:
            pid, reason, label = t.rng.choice(elderly), "death", "死亡"
        elif roll < 0.029 and young:
            pid, reason, label = t.rng.choice(young), t.rng.choice(("marriage", "moved")), "婚出或迁出"
        else:
            return
        c = self.cmd(t, "remove_member", day, "village", person_id=pid, reason=reason)
        if self.expect(c, (yield c)):
            t.members[pid]["removed"] = c.on
            self.counts[f"人口减少: {label}"] += 1

    # ------------------------------------------------------------------ exit (风险消除)

    def exit(self, t: Track, d: date) -> Step:
        rng = t.rng
        if not t.has_labour():
            # 整户无劳动力: stays monitored with social-security measures; the village tries once, is told so
            if not t.labour_refusal_shown and t.first_impl and d >= add_months(t.first_impl, 6) \
                    and rng.random() < 0.5:
                t.labour_refusal_shown = True
                c = self.cmd(t, "nominate_exit", d, "village", planted=True, mode="assisted")
                self.expect(c, (yield c))
                self.counts["提名被拒"] += 1
            return
        mode = "natural" if t.natural else "assisted"
        if mode == "assisted":
            since = t.assisted_since(d)
            if since is None:
                return
            if d < add_months(since, 6):
                if "early" in t.plants and d >= add_months(since, 5):
                    t.plants.discard("early")
                    c = self.cmd(t, "nominate_exit", d, "village", planted=True, mode=mode)
                    self.expect(c, (yield c))
                    self.counts["提名被拒"] += 1
                return
        elif d < add_months(t.included_on, 3):
            return
        line = self.line(d)
        if "missing" in t.plants and not t.covered(d):
            t.plants.discard("missing")             # nominated without the income of the 12 months before
            c = self.cmd(t, "nominate_exit", d, "village", planted=True, mode=mode)
            self.expect(c, (yield c))
            self.counts["提名被拒"] += 1
            return
        if "below" in t.plants:
            t.plants.discard("below")               # the assessment finds the household still below the line
            c = self.income(t, d, per_capita=line - rng.randint(1, 400))
            self.expect(c, (yield c))
            c = self.cmd(t, "nominate_exit", d, "village", planted=True, mode=mode)
            self.expect(c, (yield c))
            self.counts["提名被拒"] += 1
            return
        if rng.random() > 0.5:
            return                                  # not every household that could go is nominated this month
        if t.per_capita(d) < line:
            return                                  # the cadre knows: not yet
        c = self.income(t, d)
        self.expect(c, (yield c))
        gap = None
        if "open_guarantee" in t.plants:
            t.plants.discard("open_guarantee")
            gap = rng.choice(("housing", "water", "insurance"))
        c = self.guarantees(t, d, gap)
        self.expect(c, (yield c))
        c = self.cmd(t, "nominate_exit", d, "village", planted=gap is not None, mode=mode)
        if not self.expect(c, (yield c)):
            self.counts["提名被拒"] += 1
            return
        self.counts["风险消除提名"] += 1
        t.stage = Stage.IN_EXIT.value
        yield from self.exit_procedure(t, mode)

    def exit_procedure(self, t: Track, mode: str) -> Step:
        rng = t.rng
        verifier = self.actor_for("village", t.code, 1)
        finding = "not_meets" if rng.random() < 0.04 else "meets"
        c = self.cmd(t, "verify_exit", t.cursor + timedelta(days=rng.randint(1, 3)), "village", n=1, finding=finding)
        if not self.expect(c, (yield c)) or finding == "not_meets":
            t.stage = Stage.MONITORED.value
            self.counts["入户核实不符合, 继续监测"] += finding == "not_meets"
            return
        c = self.cmd(t, "open_publicity", t.cursor + timedelta(days=rng.randint(1, 3)), "village")
        self.expect(c, (yield c))
        opened = c.on
        if "early_close" in t.plants:
            t.plants.discard("early_close")
            c = self.cmd(t, "close_publicity", opened + timedelta(days=4), "village", planted=True)
            self.expect(c, (yield c))
        c = self.cmd(t, "close_publicity", opened + timedelta(days=5 + rng.randint(0, 2)), "village")
        self.expect(c, (yield c))
        c = self.cmd(t, "review_township", t.cursor + timedelta(days=rng.randint(1, 4)), "township", decision="pass")
        self.expect(c, (yield c))
        county = self.actor_for("county", t.code)
        if "four_eyes" in t.plants:
            t.plants.discard("four_eyes")           # the cadre who visited signs for the county too
            c = self.cmd(t, "approve_county", t.cursor + timedelta(days=1), "county", planted=True,
                         actor=dict(county, id=verifier["id"], name=verifier["name"]), decision="approve")
            self.expect(c, (yield c))
        c = self.cmd(t, "approve_county", t.cursor + timedelta(days=rng.randint(1, 4)), "county", decision="approve")
        if not self.expect(c, (yield c)):
            return
        if "bare_mark" in t.plants:
            t.plants.discard("bare_mark")           # marked before the 风险消除后 data were collected
            c = self.cmd(t, "mark_risk_eliminated", t.cursor + timedelta(days=1), "township", planted=True)
            self.expect(c, (yield c))
        after = t.cursor + timedelta(days=rng.randint(1, 3))
        c = self.income(t, after)
        self.expect(c, (yield c))
        c = self.guarantees(t, after)
        self.expect(c, (yield c))
        c = self.cmd(t, "mark_risk_eliminated", t.cursor + timedelta(days=rng.randint(1, 3)), "township")
        if not self.expect(c, (yield c)):
            c = self.cmd(t, "review_township", t.cursor, "township", decision="reject")
            self.expect(c, (yield c))
            t.stage = Stage.MONITORED.value
            return
        t.stage, t.eliminated_on = Stage.RISK_ELIMINATED.value, c.on
        self.monitored.discard(t.hid)
        self.eliminated[t.hid] = c.on
        self.counts["帮扶消除" if mode == "assisted" else "自然消除"] += 1

    def after_elimination(self, t: Track, d: date) -> Step:
        assert t.eliminated_on is not None
        if "rollback" in t.plants and d >= t.eliminated_on + timedelta(days=30) and t.rng.random() < 0.5:
            t.plants.discard("rollback")
            c = self.cmd(t, "rollback_elimination", d, "township", reason=t.rng.choice(ROLLBACK_REASONS))
            if self.expect(c, (yield c)):
                t.stage, t.eliminated_on = Stage.MONITORED.value, None
                self.monitored.add(t.hid)
                self.eliminated.pop(t.hid, None)
                self.counts["风险消除回退"] += 1
        elif "reinclude" in t.plants and d >= t.eliminated_on + timedelta(days=60) and t.rng.random() < 0.4:
            t.plants.discard("reinclude")
            yield from self.reinclude(t, d)

    def reinclude(self, t: Track, d: date) -> Step:
        """有进有出: an eliminated household falls back; a new lead starts a new inclusion procedure."""
        rng = t.rng
        risk = rng.choice(("illness", "accident", "unstable_employment"))
        lead = f"{t.hid}-R{len(t.assessed)}"
        c = self.cmd(t, "record_lead", d, "village", lead_id=lead, source=rng.choice(("department_warning",
                     "self_declaration")), risk_types=[risk], detail="风险消除后返贫风险复现")
        if not self.expect(c, (yield c)):
            return
        t.stage = Stage.IN_INCLUSION.value
        per_capita = (self.line(d) * Decimal("0.55")).quantize(Decimal(1))
        steps: list[tuple[str, str, int, int, dict[str, Any]]] = [
            ("verify_lead", "village", 1, 1, {"lead_id": lead, "finding": "meets"}),
            ("sign_application", "village", 0, 1, {}),
            ("open_publicity", "village", 0, 1, {}),
            ("close_publicity", "village", 0, 5, {}),
            ("review_township", "township", 0, 2, {"decision": "pass"}),
            ("approve_county", "county", 0, 2, {"decision": "approve", "risk_types": [risk], "category": (
                Category.UNSTABLE_ALLEVIATED if t.household_type == HouseholdType.POVERTY_ALLEVIATED.value
                else Category.MARGINAL).value}),
            ("enter_system", "township", 0, 2, {}),
        ]
        c = self.income(t, d, per_capita=per_capita)
        self.expect(c, (yield c))
        for name, role, n, gap, fields in steps:
            c = self.cmd(t, name, t.cursor + timedelta(days=gap), role, n=n, **fields)
            if not self.expect(c, (yield c)):
                return
        t.stage, t.eliminated_on, t.included_on = Stage.MONITORED.value, None, c.on
        t.risks, t.first_impl, t.natural = [risk], None, False
        t.net0 = per_capita * max(t.size_on(c.on), 1)
        self.monitored.add(t.hid)
        self.eliminated.pop(t.hid, None)
        self.included_on[t.hid] = c.on
        self.counts["再次纳入监测"] += 1
        yield from self.assist(t, c.on + timedelta(days=rng.randint(3, 20)))


# ---------------------------------------------------------------------- setting up and driving


def tracks(ctx: DemoContext, story: Story) -> list[Track]:
    """One track for each monitored household, read once from its case."""
    out = []
    households = ctx.shared.get("households", {})
    for h in households.values():
        story.used_ids.update(m["person_id"] for m in h.get("members", []))
    for hid in sorted(story.monitored):
        h = ctx.app.get_household(hid)
        if h.stage != Stage.MONITORED.value:
            continue
        members = {pid: {"labour": m["labour"], "born": _as_date(m["birth_date"]), "added": m.get("added_on"),
                         "removed": m.get("removed_on")} for pid, m in h.members.items()}
        story.used_ids.update(members)
        last = h.incomes[-1] if h.incomes else None
        net0 = (last["net_income"] - last["rigid_expenditure"]) if last else Decimal(5000) * len(members)
        rng = random.Random(ctx.rng.random())
        t = Track(hid=hid, code=h.division_code, household_type=h.household_type, included_on=h.included_on,
                  category=h.category, risks=list(h.risk_types) or ["other"], members=members,
                  net0=max(net0, Decimal(1000)), rng=rng, cadre=h.cadre is not None,
                  growth=rng.uniform(0.03, 0.08), measure_seq=len(h.measures))
        t.natural = h.category == Category.SUDDEN_HARDSHIP.value or rng.random() < 0.1
        t.first_impl = min((m["implemented_on"] for m in h.measures.values()
                            if m["implemented_on"] and m["implemented_on"] >= h.included_on), default=None)
        # the planted refusals go to households that will meet the exit rules in the ordinary way
        t.plants = {kind for kind, p in PLANTS.items() if rng.random() < p} if t.has_labour() and not t.natural \
            else set()
        out.append(t)
    with_labour = [t for t in out if t.has_labour() and not t.natural]
    for kind in PLANTS:   # every planted refusal shows at least once
        if with_labour and not any(kind in t.plants for t in out):
            ctx.rng.choice(with_labour).plants.add(kind)
    return out


def drive(ctx: DemoContext, lives: dict[str, Step], months: Iterable[date]) -> int:
    """Month by month, submit one command per household a round and send each its outcome; a command dated
    after the month waits for its month. Returns the number of commands submitted."""
    pending: dict[str, Command] = {}
    for hid, life in lives.items():
        try:
            pending[hid] = next(life)
        except StopIteration:
            pass
    submitted = 0
    for month_end in months:
        while True:
            due = [(hid, c) for hid, c in pending.items() if c.on <= month_end]
            if not due:
                break
            results = ctx.submit([c for _, c in due])
            submitted += len(due)
            for (hid, _), (_, outcome) in zip(due, results, strict=True):
                try:
                    pending[hid] = lives[hid].send(outcome)
                except StopIteration:
                    del pending[hid]
        ctx.shared["today"] = month_end
    return submitted


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _month_ends(start: date, end: date) -> list[date]:
    out, month = [], date(start.year, start.month, 1)
    while month <= end:
        out.append(min(add_months(month, 1) - timedelta(days=1), end))
        month = add_months(month, 1)
    return out


def run(ctx: DemoContext) -> dict[str, int]:
    story = Story(ctx)
    start = ctx.shared.get("today") or ctx.start
    people = tracks(ctx, story)
    lives = {t.hid: story.life(t, max(start, t.included_on)) for t in people}
    commands = drive(ctx, lives, _month_ends(start, END))
    ctx.shared["monitored"] = story.monitored
    ctx.shared["included_on"] = story.included_on
    ctx.shared["eliminated"] = story.eliminated
    ctx.shared["today"] = END
    return {
        "期初监测户": len(people),
        **dict(sorted(story.counts.items())),
        "整户无劳动力持续跟踪": sum(1 for t in people if not t.has_labour() and t.stage == Stage.MONITORED.value),
        "期末监测户": len(story.monitored),
        "已消除风险户": len(story.eliminated),
        "命令": commands,
        "预设拒绝": story.planted_refused,
        "意外结果": story.unexpected,
    }
