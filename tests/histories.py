"""Random household histories for property tests of projections.

Events are triggered on the aggregates directly, without the commands' guards: a projection must fold any
stored history (events are facts — imported legacy history breaks rules too), as long as the aggregate can
replay it. So references stay valid (a measure is implemented only after it was planned, a member removed
only while present, an objection resolved only while the publicity that raised it is open), and
everything else — order, dates, stages, steps — is drawn at random.

    hist = Histories(app)
    hist.step(data)   # one event on a random household (registering it first if needed)
    hist.save()       # store what is pending in one transaction
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from casecore.household import Household
from casecore.values import (
    Category,
    CountyDecision,
    ExitMode,
    Finding,
    HouseholdType,
    Housing,
    Labour,
    LeadSource,
    MeasureType,
    MemberChange,
    ObjectionOutcome,
    Procedure,
    RiskType,
    Stage,
    TownshipDecision,
    make_person_id,
)
from workflows.exit import Exit
from workflows.inclusion import Inclusion

ACTOR = {"id": "gen", "name": "生成器", "role": "village", "unit": "522631101001"}
DIVISIONS = ["522631101001", "522631101002", "522631102001", "520111001001"]
STEPS = sorted({s.value for s in Inclusion} | {s.value for s in Exit})
KINDS = [
    "member_added", "member_removed", "income_assessed", "guarantees_assessed", "lead_recorded",
    "lead_verified", "application_signed", "publicity_opened", "objection_raised", "objection_resolved",
    "publicity_closed", "township_reviewed", "county_decided", "entered_system", "cadre_assigned",
    "measure_planned", "measure_implemented", "measure_ended", "exit_nominated", "exit_verified",
    "risk_eliminated", "elimination_rolled_back", "member_name_corrected", "cadre_unknown", "source_rows_recorded",
]

#: business dates: often close together (ties decide "newest" rules), sometimes far apart
days = st.one_of(st.integers(0, 20), st.integers(0, 900)).map(lambda n: date(2022, 1, 1) + timedelta(days=n))
money = st.integers(min_value=0, max_value=3_000_000).map(lambda cents: Decimal(cents) / 100)
risks = st.lists(st.sampled_from([r.value for r in RiskType]), max_size=3, unique=True)


def _enum(e: Any) -> st.SearchStrategy[str]:
    return st.sampled_from([m.value for m in e])


class Histories:
    """Households whose events are drawn one at a time; `save` stores everything pending."""

    def __init__(self, app: Any, households: int = 4):
        self.app = app
        self.ids = [f"G{i}" for i in range(households)]
        self.aggregates: dict[str, Household] = {}
        self.serial = 0

    def _next(self) -> int:
        self.serial += 1
        return self.serial

    def _member(self, data: st.DataObject) -> dict[str, Any]:
        born = date(1950, 1, 1) + timedelta(days=data.draw(st.integers(0, 20000)))
        return {"person_id": make_person_id("522631", born, self._next() % 1000), "name": "成员",
                "relation": data.draw(st.sampled_from(["户主", "配偶", "子女"])), "birth_date": born,
                "labour": data.draw(_enum(Labour)), "in_school": data.draw(st.booleans()),
                "disabled": False, "illness": data.draw(st.booleans())}

    def _common(self, data: st.DataObject) -> dict[str, Any]:
        return {"on": data.draw(days), "actor": ACTOR, "command_id": None, "note": None, "evidence": []}

    def _step_fields(self, data: st.DataObject) -> dict[str, Any]:
        return {"procedure": data.draw(_enum(Procedure)), "step": data.draw(st.sampled_from(STEPS)),
                "stage": data.draw(_enum(Stage))}

    def step(self, data: st.DataObject) -> None:
        hid = data.draw(st.sampled_from(self.ids))
        agg = self.aggregates.get(hid)
        if agg is None:
            self.aggregates[hid] = Household._create(
                Household.Registered, id=f"household/{hid}", division_code=data.draw(st.sampled_from(DIVISIONS)),
                household_type=data.draw(_enum(HouseholdType)), relocated=data.draw(st.booleans()),
                resettlement_site=None, key_county=data.draw(st.booleans()),
                members=[self._member(data) for _ in range(data.draw(st.integers(1, 3)))], **self._common(data))
            return
        kind = data.draw(st.sampled_from(KINDS))
        self.trigger(data, agg, kind)

    def trigger(self, data: st.DataObject, agg: Household, kind: str) -> None:
        c = self._common(data)
        present = [p for p, m in agg.members.items() if m.get("removed_on") is None]
        t = agg.trigger_event
        if kind == "member_added":
            removed = [p for p in agg.members if p not in present]
            member = self._member(data)
            if removed and data.draw(st.booleans()):
                member["person_id"] = data.draw(st.sampled_from(removed))
            t(Household.MemberAdded, member=member, reason=data.draw(_enum(MemberChange)), **c)
        elif kind == "member_removed" and present:
            t(Household.MemberRemoved, person_id=data.draw(st.sampled_from(present)),
              reason=data.draw(_enum(MemberChange)), **c)
        elif kind == "member_name_corrected":
            t(Household.MemberNameCorrected, person_id=data.draw(st.sampled_from(sorted(agg.members))),
              name=data.draw(st.sampled_from(["张三", "李四", "王五"])), **c)
        elif kind == "cadre_unknown":
            t(Household.CadreUnknown, reason="国家监测系统导出无“帮扶责任人”列", **c)
        elif kind == "source_rows_recorded":
            t(Household.SourceRowsRecorded, people={p: {"民族": data.draw(st.sampled_from(["汉族", "侗族"]))}
                                                    for p in present}, **c)
        elif kind == "income_assessed":
            end = data.draw(days)
            t(Household.IncomeAssessed, period_start=end - timedelta(days=364), period_end=end,
              net_income=data.draw(money), rigid_expenditure=data.draw(money),
              household_size=max(1, len(present)), per_capita_income=data.draw(money), **c)
        elif kind == "guarantees_assessed":
            everyone = sorted(agg.members)
            t(Household.GuaranteesAssessed, housing=data.draw(_enum(Housing)),
              drinking_water_safe=data.draw(st.booleans()),
              children_out_of_school=data.draw(st.lists(st.sampled_from(everyone), max_size=2, unique=True)),
              members_without_medical_insurance=data.draw(st.lists(st.sampled_from(everyone), max_size=2,
                                                                    unique=True)), **c)
        elif kind == "lead_recorded":
            opens = data.draw(st.booleans())
            t(Household.LeadRecorded, lead_id=f"L{self._next()}", source=data.draw(_enum(LeadSource)),
              risk_types=data.draw(risks), detail="", opens_procedure=opens,
              cycle=agg.cycle + 1 if opens else agg.cycle, stage=data.draw(_enum(Stage)),
              adds_risks=data.draw(risks), **c)
        elif kind == "lead_verified" and agg.leads:
            t(Household.LeadVerified, lead_id=data.draw(st.sampled_from(sorted(agg.leads))),
              finding=data.draw(_enum(Finding)), **self._step_fields(data), **c)
        elif kind == "application_signed":
            t(Household.ApplicationSigned, **self._step_fields(data), **c)
        elif kind == "publicity_opened":
            t(Household.PublicityOpened, **self._step_fields(data), **c)
        elif kind == "objection_raised":
            t(Household.ObjectionRaised, objection_id=f"O{self._next()}", detail="", **self._step_fields(data), **c)
        elif kind == "objection_resolved" and agg.objections:
            t(Household.ObjectionResolved, objection_id=data.draw(st.sampled_from(sorted(agg.objections))),
              outcome=data.draw(_enum(ObjectionOutcome)), **self._step_fields(data), **c)
        elif kind == "publicity_closed":
            t(Household.PublicityClosed, opened_on=data.draw(days), **self._step_fields(data), **c)
        elif kind == "township_reviewed":
            t(Household.TownshipReviewed, decision=data.draw(_enum(TownshipDecision)), **self._step_fields(data), **c)
        elif kind == "county_decided":
            t(Household.CountyDecided, decision=data.draw(_enum(CountyDecision)),
              category=data.draw(st.none() | _enum(Category)), risk_types=data.draw(risks),
              **self._step_fields(data), **c)
        elif kind == "entered_system":
            t(Household.EnteredSystem, **self._step_fields(data), **c)
        elif kind == "cadre_assigned":
            n = self._next()
            t(Household.CadreAssigned, cadre={"id": data.draw(st.none() | st.just(f"c{n}")), "name": f"干部{n}",
                                             "unit": "乡政府"}, **c)
        elif kind == "measure_planned":
            t(Household.MeasurePlanned, measure_id=f"M{self._next()}", measure_type=data.draw(_enum(MeasureType)),
              addresses=data.draw(risks), department="县医保局", responsible="张", **c)
        elif kind in ("measure_implemented", "measure_ended") and agg.measures:
            cls = Household.MeasureImplemented if kind == "measure_implemented" else Household.MeasureEnded
            t(cls, measure_id=data.draw(st.sampled_from(sorted(agg.measures))), **c)
        elif kind == "exit_nominated":
            t(Household.ExitNominated, mode=data.draw(_enum(ExitMode)), procedure=Procedure.EXIT.value,
              step=Exit.NOMINATED.value, stage=Stage.IN_EXIT.value, **c)
        elif kind == "exit_verified":
            t(Household.ExitVerified, finding=data.draw(_enum(Finding)), **self._step_fields(data), **c)
        elif kind == "risk_eliminated":
            t(Household.RiskEliminated, mode=data.draw(_enum(ExitMode)), **self._step_fields(data), **c)
        elif kind == "elimination_rolled_back":
            t(Household.EliminationRolledBack, reason="回退", stage=data.draw(_enum(Stage)), **c)

    def save(self) -> int:
        """Store every pending event in one transaction; returns how many."""
        pending = [a for a in self.aggregates.values() if a.pending_events]
        n = sum(len(a.pending_events) for a in pending)
        if pending:
            self.app.save(*pending)
        return n
