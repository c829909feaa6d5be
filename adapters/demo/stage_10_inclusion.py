"""Stage 10 of the demo: a Guizhou county registers its households and runs the inclusion procedure (识别程序).

Leads come from every source during the 2022 campaign; cadres verify them at home, households apply, villages
hold 5-day notices (some with objections), townships and the county review — with returns, rejections and
`not_meets` visits — and townships enter the approved households into the system. Some commands are planted
to be refused (a notice closed on the fourth day, `marginal` for a poverty-alleviated household, the verifier
approving at county level, an income assessment for the wrong months, a step dated before the last one, a
cadre acting outside his role or township): the engine says no, and the cadre then does it right.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from adapters.demo import DemoContext, ScriptedCase
from adapters.demo.county import County, actor_for_county, make_county, make_households
from casecore.commands import Command, parse_command
from casecore.policy import PolicyBook
from casecore.values import Category, HouseholdType, LeadSource, month_window

TITLE = "建档与识别纳入"

CAMPAIGN_START = date(2022, 3, 1)
CAMPAIGN_DAYS = 122                      # leads from March to June
LEAD_SOURCES = [s.value for s in LeadSource]
RISKS_WEIGHTED = (["illness"] * 6 + ["schooling"] * 3 + ["unstable_employment"] * 3 + ["housing"] * 2
                  + ["industry_failure"] * 2 + ["disaster", "accident", "drinking_water", "other"])


@dataclass
class Script(ScriptedCase):
    """One household's commands in order, with running business date, and which ones are meant to fail."""

    hid: str
    division_code: str
    day: date
    commands: list[tuple[date, Command]] = field(default_factory=list)
    planted: set[int] = field(default_factory=set)

    def target(self) -> dict[str, str]:
        return {"household_id": self.hid}


class Inclusion:
    """Writes the scripts: what each household's case goes through, with a seeded generator."""

    def __init__(self, rng: random.Random, policies: PolicyBook, county: County,
                 households: dict[str, dict[str, Any]]):
        self.rng = rng
        self.policies = policies
        self.county = county
        self.households = households
        self.actor_for = actor_for_county(county)
        self.counts: Counter[str] = Counter()
        self.outsider_township = next((t.code for t in county.townships[1:]), None)
        self.pending = set(TURNS)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def plant(self, kind: str, p: float) -> bool:
        """Whether this case takes the turn `kind`: the first case where it can happen always does (so even a
        small county shows every turn), later ones with probability `p`."""
        if kind in self.pending:
            self.pending.discard(kind)
            return True
        return self.chance(p)

    def line(self, day: date) -> Decimal:
        return self.policies.on(day).income.monitoring_line

    def registration(self, h: dict[str, Any], on: date) -> Command:
        fields = {k: v for k, v in h.items() if k != "per_capita_income"}
        return parse_command({"command": "register_household", "on": on.isoformat(),
                              "actor": self.actor_for("village", h["division_code"]), **fields})

    def risks_for(self, h: dict[str, Any]) -> list[str]:
        risks = {self.rng.choice(RISKS_WEIGHTED)}
        if not any(m["labour"] in ("full", "weak") for m in h["members"]):
            risks.add("lack_of_labour")
        if any(m.get("disabled") for m in h["members"]) and self.chance(0.6):
            risks.add("disability")
        if self.chance(0.25):
            risks.add(self.rng.choice(RISKS_WEIGHTED))
        return sorted(risks)

    # ---------------------------------------------------------------- one household's procedure

    def fate(self, qualifies: bool, category: Category) -> Fate:
        """Which turns this case takes, drawn before its script is written, so that a refusal meant for the
        county is planted only in a case that reaches the county."""
        f = Fate()
        if not qualifies:
            return f
        if category == Category.SUDDEN_HARDSHIP:   # an accident everyone knows of: a clean procedure
            return f
        f.objection = self.plant("objection", 0.15)
        f.close_with_open_objection = f.objection and self.plant("close_with_open_objection", 0.3)
        f.objection_upheld = f.objection and self.plant("objection_upheld", 0.2)
        f.township_reject = f.objection_upheld or self.plant("township_reject", 0.04)
        if f.township_reject:
            return f
        f.township_return = self.plant("township_return", 0.08)
        f.county_return = self.plant("county_return", 0.05)
        f.county_reject = self.plant("county_reject", 0.03)
        if f.county_reject:
            return f
        f.wrong_window = self.plant("wrong_window", 0.03)
        f.verifier_at_county = self.plant("verifier_at_county", 0.05)
        f.wrong_category = category == Category.UNSTABLE_ALLEVIATED and self.plant("wrong_category", 0.05)
        f.backdated_entry = self.plant("backdated_entry", 0.02)
        f.village_enters = self.plant("village_enters", 0.02)
        return f

    def procedure(self, h: dict[str, Any], lead_on: date, source: str, lead_id: str, qualifies: bool,
                  hardship: bool) -> Script:
        """A lead on `lead_on` and everything after it, as far as this household goes."""
        hid, code = h["household_id"], h["division_code"]
        category = (Category.SUDDEN_HARDSHIP if hardship else Category.MARGINAL
                    if h["household_type"] == HouseholdType.GENERAL else Category.UNSTABLE_ALLEVIATED)
        fate = self.fate(qualifies, category)
        s = Script(hid, code, lead_on)
        village, township, county = (self.actor_for(role, code) for role in ("village", "township", "county"))
        risks = ["accident"] if hardship else self.risks_for(h)
        recorder = self.actor_for("department", code, self.rng.randrange(7)) if source == "department_warning" \
            else village
        s.add("record_lead", recorder, lead_id=lead_id, source=source, risk_types=risks, detail=_DETAIL[source])
        self.counts[f"线索: {LeadSource(source).label}"] += 1
        window = month_window(lead_on)
        rigid = Decimal(self.rng.randrange(2000, 9000)) if "illness" in risks and qualifies else Decimal(0)
        net = h["per_capita_income"] * len(h["members"]) + rigid
        # planted: an assessment of the calendar year before, not of the 12 months before the procedure
        period = (date(lead_on.year - 1, 1, 1), date(lead_on.year - 1, 12, 31)) if fate.wrong_window else window
        assessment = {"net_income": str(net), "rigid_expenditure": str(rigid)}
        s.add("assess_income", village, self.rng.randint(0, 2), period_start=period[0].isoformat(),
              period_end=period[1].isoformat(), **assessment)
        s.add("assess_guarantees", village, 0, **self.guarantees(h, risks))
        # the home visit: by a second village cadre, or a township cadre (who may later turn up at county)
        visit_by = self.actor_for("township", code, 1) if fate.verifier_at_county else self.actor_for(
            "village", code, 1)
        if not qualifies:
            s.add("verify_lead", visit_by, self.rng.randint(0, 3), lead_id=lead_id, finding="not_meets")
            self.counts["入户核实不符合"] += 1
            return s
        s.add("verify_lead", visit_by, self.rng.randint(0, 3), lead_id=lead_id, finding="meets")
        s.add("sign_application", village, self.rng.randint(0, 2))
        self.notice(s, village, fate)
        if not self.township_review(s, township, village, fate):
            return s
        approve = {"decision": "approve", "category": category.value, "risk_types": risks}
        if fate.county_return:
            s.add("approve_county", county, self.rng.randint(1, 4), decision="return")
            self.counts["县级退回"] += 1
            s.add("review_township", township, self.rng.randint(1, 3), decision="pass")
        if fate.county_reject:
            s.add("approve_county", county, self.rng.randint(1, 4), decision="reject")
            self.counts["县级不予批准"] += 1
            return s
        if fate.verifier_at_county:   # planted: the cadre who verified the lead signs at county level
            s.add("approve_county", dict(county, id=visit_by["id"], name=visit_by["name"]), self.rng.randint(1, 3),
                  planted=True, **approve)
        if fate.wrong_window:         # refused for the missing months; the village assesses again
            s.add("approve_county", county, self.rng.randint(1, 3), planted=True, **approve)
            s.add("assess_income", village, 1, period_start=window[0].isoformat(),
                  period_end=window[1].isoformat(), **assessment)
        if fate.wrong_category:       # planted: `marginal` for a poverty-alleviated household
            s.add("approve_county", county, self.rng.randint(1, 3), planted=True,
                  **dict(approve, category=Category.MARGINAL.value))
        s.add("approve_county", county, self.rng.randint(1, 4), **approve)
        if fate.backdated_entry:      # planted: entered with a date before the county's approval
            s.add("enter_system", township, -1, planted=True)
            s.day += timedelta(days=1)
        if fate.village_enters:       # planted: a village cadre tries the township's step
            s.add("enter_system", village, 0, planted=True)
        s.add("enter_system", township, self.rng.randint(1, 4))
        self.counts[f"纳入监测: {category.label}"] += 1
        return s

    def guarantees(self, h: dict[str, Any], risks: list[str]) -> dict[str, Any]:
        children = [m["person_id"] for m in h["members"] if m.get("in_school")]
        return {
            "housing": self.rng.choice(("c_level", "d_level")) if "housing" in risks else "safe",
            "drinking_water_safe": "drinking_water" not in risks,
            "children_out_of_school": children[:1] if children and "schooling" in risks and self.chance(0.3) else [],
            "members_without_medical_insurance": [],
        }

    def notice(self, s: Script, village: dict, fate: Fate, first: bool = True) -> None:
        """Village deliberation and the 5-day notice (objections only in the first notice)."""
        s.add("open_publicity", village, self.rng.randint(1, 4))
        opened = s.day
        if first and fate.objection:
            objection_id = f"{s.hid}-O1"
            s.add("raise_objection", village, self.rng.randint(1, 3), objection_id=objection_id,
                  detail=self.rng.choice(_OBJECTIONS))
            self.counts["公示异议"] += 1
            if fate.close_with_open_objection:   # planted: closing while the objection is open
                s.day = max(s.day, opened + timedelta(days=5))
                s.add("close_publicity", village, 0, planted=True)
            s.add("resolve_objection", village, self.rng.randint(0, 2), objection_id=objection_id,
                  outcome="upheld" if fate.objection_upheld else "dismissed")
        if s.day < opened + timedelta(days=4) and self.plant("fourth_day", 0.06):   # planted: closing too early
            s.day = opened + timedelta(days=4)
            s.add("close_publicity", village, 0, planted=True)
        s.day = max(s.day, opened + timedelta(days=5))
        s.add("close_publicity", village, self.rng.randint(0, 2))

    def township_review(self, s: Script, township: dict, village: dict, fate: Fate) -> bool:
        """The township's review (after a return, of a second notice); returns whether it passed."""
        if self.plant("village_reviews", 0.02):   # planted: the village cadre cannot review for the township
            s.add("review_township", village, 1, planted=True, decision="pass")
        if self.outsider_township and s.division_code[:9] != self.outsider_township and self.plant(
                "outsider_township", 0.015):
            outsider = self.actor_for("township", self.outsider_township + "000")   # planted: not their township
            s.add("review_township", outsider, 1, planted=True, decision="pass")
        if fate.township_reject:
            s.add("review_township", township, self.rng.randint(1, 3), decision="reject")
            self.counts["乡级审核不予通过"] += 1
            return False
        if fate.township_return:
            s.add("review_township", township, self.rng.randint(1, 3), decision="return")
            self.counts["乡级退回"] += 1
            self.notice(s, village, fate, first=False)
        s.add("review_township", township, self.rng.randint(1, 3), decision="pass")
        return True


@dataclass
class Fate:
    """The turns one case takes."""

    objection: bool = False
    close_with_open_objection: bool = False
    objection_upheld: bool = False
    township_reject: bool = False
    township_return: bool = False
    county_return: bool = False
    county_reject: bool = False
    wrong_window: bool = False
    verifier_at_county: bool = False
    wrong_category: bool = False
    backdated_entry: bool = False
    village_enters: bool = False


#: every turn a case can take; each happens at least once (in the first case where it can)
TURNS = ("wrong_window", "verifier_at_county", "backdated_entry", "village_enters", "objection",
         "close_with_open_objection", "objection_upheld", "fourth_day", "village_reviews", "outsider_township",
         "township_reject", "township_return", "wrong_category", "county_return", "county_reject",
         "above_line_lead", "sudden_hardship", "repeated_warning")

_DETAIL = {
    "department_warning": "行业部门筛查预警: 医保自付费用较高或新纳入低保",
    "self_declaration": "农户通过防贫申报小程序自主申报",
    "cadre_screening": "基层干部入户排查发现",
    "social_supervision": "群众反映",
    "group_leader_report": "村民组长月度报送",
}
_OBJECTIONS = ("有村民反映该户有子女在外务工收入较高", "有村民反映该户在县城购有住房", "反映该户家庭人口不实")


def _in_order(scripts: list[Script]):
    """All scripts' commands merged by business date, keeping each script's own order (a planted command dated
    before its predecessor stays after it, so it is refused for its date, not for its place)."""
    for i, s in enumerate(scripts):
        latest = date.min
        for j, (day, cmd) in enumerate(s.commands):
            latest = max(latest, day)
            yield latest, i, j, cmd


@dataclass
class Plan:
    """Every household's script for the stage, and what the stage will report about them."""

    writer: Inclusion
    scripts: list[Script]
    late: list[dict[str, Any]]
    unreported: int

    def commands(self) -> list[tuple[date, Command]]:
        """All commands in business-date order (each household's own order kept)."""
        return [(day, cmd) for day, _, _, cmd in sorted(_in_order(self.scripts))]

    @property
    def planted(self) -> set[int]:
        return set().union(*(s.planted for s in self.scripts))


def plan(rng: random.Random, policies: PolicyBook, county: County, households: dict[str, dict[str, Any]],
         registered_on: date) -> Plan:
    """Write the scripts: registrations, leads from every source, each procedure as far as it goes."""
    writer = Inclusion(rng, policies, county, households)
    line = writer.line(CAMPAIGN_START)
    scripts: list[Script] = []
    first = Script("", "", registered_on)
    for h in households.values():
        on = registered_on + timedelta(days=rng.randrange(10))
        first.commands.append((on, writer.registration(h, on)))
    scripts.append(first)

    # who gets a lead: most households below the line, a few above it (some of them a sudden hardship)
    unreported = 0
    lead_households: list[tuple[dict[str, Any], bool, bool]] = []
    for h in households.values():
        below = h["per_capita_income"] < line
        if below and rng.random() < 0.85:
            lead_households.append((h, True, False))
        elif below:
            unreported += 1                     # left for the inspectors: qualifying but never reported
        elif writer.plant("above_line_lead", 0.08):
            hardship = writer.plant("sudden_hardship", 0.4)
            lead_households.append((h, hardship, hardship))
    for i, (h, qualifies, hardship) in enumerate(lead_households):
        lead_on = CAMPAIGN_START + timedelta(days=rng.randrange(CAMPAIGN_DAYS))
        source = LEAD_SOURCES[i] if i < len(LEAD_SOURCES) else rng.choice(LEAD_SOURCES)
        script = writer.procedure(h, lead_on, source, f"{h['household_id']}-L1", qualifies, hardship)
        scripts.append(script)
        if not qualifies and writer.plant("repeated_warning", 0.3):
            # warned again by a department and again not included: a pattern inspectors look for
            again = script.day + timedelta(days=30 + rng.randrange(40))
            scripts.append(writer.procedure(h, again, "department_warning", f"{h['household_id']}-L2", False, False))
            writer.counts["重复预警未纳入"] += 1
    last_day = max(day for s in scripts for day, _ in s.commands)

    # leads on households already monitored add their risks to the case
    monitored_plan = [s for s in scripts if s.commands and s.commands[-1][1].command == "enter_system"]
    for s in rng.sample(monitored_plan, k=min(len(monitored_plan), max(1, len(monitored_plan) // 10))):
        day = s.commands[-1][0] + timedelta(days=10 + rng.randrange(30))
        extra = Script(s.hid, s.division_code, day)
        extra.add("record_lead", writer.actor_for("department", s.division_code, 0), lead_id=f"{s.hid}-L9",
                  source="department_warning", risk_types=[rng.choice(["illness", "disaster", "housing"])],
                  detail="监测户新发现风险")
        scripts.append(extra)
        writer.counts["监测户新增线索"] += 1
    # a few late leads still in the procedure when the stage ends
    with_leads = {h["household_id"] for h, _, _ in lead_households}
    late = [h for h in households.values() if h["per_capita_income"] < line
            and h["household_id"] not in with_leads][:max(1, len(households) // 200)]
    for h in late:
        s = Script(h["household_id"], h["division_code"], last_day - timedelta(days=rng.randrange(6)))
        s.add("record_lead", writer.actor_for("village", h["division_code"]), lead_id=f"{h['household_id']}-L1",
              source="cadre_screening", risk_types=writer.risks_for(h), detail=_DETAIL["cadre_screening"])
        scripts.append(s)
        unreported -= 1

    return Plan(writer, scripts, late, unreported)


def run(ctx: DemoContext) -> dict[str, int]:
    rng = ctx.rng
    county = make_county(rng, ctx.households)
    households = make_households(rng, county, ctx.households)
    p = plan(rng, ctx.app.policies, county, households, ctx.start - timedelta(days=20))
    writer, late, unreported = p.writer, p.late, p.unreported
    ordered = p.commands()
    planted = p.planted
    results = ctx.submit([cmd for _, cmd in ordered])

    monitored: set[str] = set(ctx.shared.get("monitored", set()))
    included_on: dict[str, date] = dict(ctx.shared.get("included_on", {}))
    planted_refused = unexpected = 0
    for cmd, outcome in results:
        if id(cmd) in planted:
            planted_refused += not outcome.ok
            unexpected += outcome.ok
        elif not outcome.ok:
            unexpected += 1
        elif outcome.events == ["entered_system"]:
            monitored.add(cmd.household_id)
            included_on[cmd.household_id] = cmd.on

    ctx.shared["county"] = county.as_shared()
    ctx.shared["households"] = households
    ctx.shared["actor_for"] = writer.actor_for
    ctx.shared["monitored"] = monitored
    ctx.shared["included_on"] = included_on
    ctx.shared["today"] = ordered[-1][0] + timedelta(days=1)

    types = Counter(h["household_type"] for h in households.values())
    counts = writer.counts
    summary = {
        "乡镇": len(county.townships),
        "行政村/社区": sum(len(t.villages) for t in county.townships),
        "建档户数": len(households),
        "人口": sum(len(h["members"]) for h in households.values()),
        "脱贫户": types[HouseholdType.POVERTY_ALLEVIATED.value],
        "一般农户": types[HouseholdType.GENERAL.value],
        "易地搬迁户": sum(h["relocated"] for h in households.values()),
        "整户无劳动力户": sum(all(m["labour"] == "none" for m in h["members"]) for h in households.values()),
        **{k: v for k, v in sorted(counts.items()) if k.startswith("线索: ")},
        **{k: counts[k] for k in ("入户核实不符合", "重复预警未纳入", "公示异议", "乡级退回", "乡级审核不予通过",
                                  "县级退回", "县级不予批准")},
        **{k: v for k, v in sorted(counts.items()) if k.startswith("纳入监测: ")},
        "纳入监测户": len(monitored),
        "监测户新增线索": counts["监测户新增线索"],
        "识别中 (阶段结束时)": len(late),
        "低于监测线但未报线索": unreported,
        "命令": len(ordered),
        "预设拒绝": planted_refused,
        "意外结果 (应为0)": unexpected,
    }
    return summary
