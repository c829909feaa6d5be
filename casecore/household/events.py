"""The household's events: the facts of a case, each with its mutator (`apply`), which only assigns.

Topics are explicit (`cn.casecore.household.<name>.v1`, see `casecore.events.event`): moving a class does not
change what stored history names. The aggregate (`casecore.household.aggregate.Household`) carries each
class under its own name too (`Household.LeadRecorded`), as the library and the rest of the house read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from casecore.case import StepEvent
from casecore.events import CaseCreated, CaseEvent, event
from casecore.household.state import SETTLED_STAGES
from casecore.streams import case_id
from casecore.values import Finding, Procedure, SignLevel, Stage
from workflows.inclusion import Inclusion

if TYPE_CHECKING:
    from casecore.household.aggregate import Household

H = "household"


class Event(CaseEvent):
    """Base of the household's events."""


@event(H, "registered")
class Registered(Event, CaseCreated):
    division_code: str
    household_type: str
    relocated: bool
    resettlement_site: str | None
    key_county: bool
    members: list[dict[str, Any]]

    def apply(self, agg: Household) -> None:
        agg.household_id = case_id(self.originator_id)
        agg.division_code = self.division_code
        agg.household_type = self.household_type
        agg.relocated = self.relocated
        agg.resettlement_site = self.resettlement_site
        agg.key_county = self.key_county
        agg.registered_on = self.on
        agg.members = {m["person_id"]: dict(m, added_on=None, removed_on=None) for m in self.members}
        agg.stage = Stage.NOT_MONITORED.value
        agg.procedure = None
        agg.step = None
        agg.step_on = None
        agg.cycle = 0
        agg.procedure_started_on = None
        agg.category = None
        agg.risk_types = []
        agg.incomes = []
        agg.guarantees = []
        agg.leads = {}
        agg.objections = {}
        agg.publicity_opened_on = None
        agg.verified_by = None
        agg.signers = {}
        agg.included_on = None
        agg.eliminated_on = None
        agg.exit_mode = None
        agg.exit_nominated_on = None
        agg.rolled_back_on = None
        agg.cadre = None
        agg.measures = {}
        agg.stage_before_procedure = Stage.NOT_MONITORED.value
        agg.command_ids = {}
        agg.source_rows = {}


@event(H, "member_added")
class MemberAdded(Event):
    member: dict[str, Any]
    reason: str

    def apply(self, agg: Household) -> None:
        agg.members[self.member["person_id"]] = dict(self.member, added_on=self.on, removed_on=None,
                                                     reason=self.reason)


@event(H, "member_removed")
class MemberRemoved(Event):
    person_id: str
    reason: str

    def apply(self, agg: Household) -> None:
        member = agg.members[self.person_id]
        member["removed_on"] = self.on
        member["removal_reason"] = self.reason


@event(H, "member_name_corrected")
class MemberNameCorrected(Event):
    """A member's name corrected: imports of the national export before the fix stored people with an
    empty name, and events are never changed, so a re-import records the name as a correction."""

    person_id: str
    name: str

    def apply(self, agg: Household) -> None:
        agg.members[self.person_id]["name"] = self.name


@event(H, "source_rows_recorded")
class SourceRowsRecorded(Event):
    """The columns of another system's rows that no other fact holds (national export: 人编号, 性别, 民族,
    健康状况, 劳动技能 as written, the income parts, the insurance and social-assistance columns, the
    contacts …), one dict of column → text per person, so that nothing the source said is lost."""

    people: dict[str, dict[str, str]]

    def apply(self, agg: Household) -> None:
        agg.source_rows = {pid: dict(row) for pid, row in self.people.items()}


@event(H, "income_assessed")
class IncomeAssessed(Event):
    period_start: date
    period_end: date
    net_income: Decimal
    rigid_expenditure: Decimal
    household_size: int
    per_capita_income: Decimal

    def apply(self, agg: Household) -> None:
        agg.incomes.append({
            "on": self.on,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "net_income": self.net_income,
            "rigid_expenditure": self.rigid_expenditure,
            "household_size": self.household_size,
            "per_capita_income": self.per_capita_income,
        })


@event(H, "guarantees_assessed")
class GuaranteesAssessed(Event):
    housing: str
    drinking_water_safe: bool
    children_out_of_school: list[str]
    members_without_medical_insurance: list[str]

    def apply(self, agg: Household) -> None:
        agg.guarantees.append({
            "on": self.on,
            "housing": self.housing,
            "drinking_water_safe": self.drinking_water_safe,
            "children_out_of_school": list(self.children_out_of_school),
            "members_without_medical_insurance": list(self.members_without_medical_insurance),
        })


@event(H, "lead_recorded")
class LeadRecorded(Event):
    lead_id: str
    source: str
    risk_types: list[str]
    detail: str
    #: what the lead did to the case, decided when it was recorded
    opens_procedure: bool
    cycle: int
    stage: str
    adds_risks: list[str]

    def apply(self, agg: Household) -> None:
        agg.leads[self.lead_id] = {
            "lead_id": self.lead_id,
            "on": self.on,
            "source": self.source,
            "risk_types": list(self.risk_types),
            "detail": self.detail,
            # a lead on a monitored household is not verified in a procedure: it goes into the case file
            "status": "attached" if self.stage in (Stage.MONITORED.value, Stage.IN_EXIT.value) else "open",
            "cycle": self.cycle,
        }
        if self.opens_procedure:
            agg.procedure = Procedure.INCLUSION.value
            agg.step = Inclusion.LEAD_RECORDED.value
            agg.step_on = self.on
            agg.cycle = self.cycle
            agg.procedure_started_on = self.on
            agg.objections = {}
            agg.publicity_opened_on = None
            agg.verified_by = None
            agg.signers = {}
            agg.stage_before_procedure = agg.stage
        agg.stage = self.stage
        if self.adds_risks:
            agg.risk_types = agg.risk_types + list(self.adds_risks)


# The procedure steps below all carry the procedure, the step and the stage they lead to.


@dataclass(frozen=True, kw_only=True)
class Step(Event, StepEvent):
    """Base of procedure steps (abstract: never stored itself)."""

    TOPIC = "cn.casecore.household.step.abstract"
    procedure: str
    step: str
    stage: str

    def move(self, agg: Household) -> None:
        agg.step = self.step
        agg.step_on = self.on
        agg.stage = self.stage
        if self.stage in SETTLED_STAGES:
            agg.procedure = None
            agg.step = None


@event(H, "lead_verified")
class LeadVerified(Step):
    lead_id: str
    finding: str

    def apply_step(self, agg: Household) -> None:
        agg.leads[self.lead_id]["status"] = self.finding
        if self.finding == Finding.MEETS.value:
            agg.verified_by = self.actor["id"]
        agg.signers[self.actor["id"]] = SignLevel.VERIFY.value


@event(H, "application_signed")
class ApplicationSigned(Step):
    pass


@event(H, "publicity_opened")
class PublicityOpened(Step):
    def apply_step(self, agg: Household) -> None:
        agg.publicity_opened_on = self.on
        agg.objections = {}


@event(H, "objection_raised")
class ObjectionRaised(Step):
    objection_id: str
    detail: str

    def apply_step(self, agg: Household) -> None:
        agg.objections[self.objection_id] = {"on": self.on, "detail": self.detail, "outcome": None}


@event(H, "objection_resolved")
class ObjectionResolved(Step):
    objection_id: str
    outcome: str

    def apply_step(self, agg: Household) -> None:
        agg.objections[self.objection_id]["outcome"] = self.outcome
        agg.objections[self.objection_id]["resolved_on"] = self.on


@event(H, "publicity_closed")
class PublicityClosed(Step):
    opened_on: date


@event(H, "township_reviewed")
class TownshipReviewed(Step):
    decision: str

    def apply_step(self, agg: Household) -> None:
        agg.signers[self.actor["id"]] = SignLevel.TOWNSHIP.value


@event(H, "county_decided")
class CountyDecided(Step):
    decision: str
    category: str | None
    risk_types: list[str]

    def apply_step(self, agg: Household) -> None:
        agg.signers[self.actor["id"]] = SignLevel.COUNTY.value
        if self.category is not None:
            agg.category = self.category
        if self.risk_types:
            agg.risk_types = list(self.risk_types)


@event(H, "entered_system")
class EnteredSystem(Step):
    def apply_step(self, agg: Household) -> None:
        agg.included_on = self.on
        agg.eliminated_on = None
        agg.exit_mode = None
        for lead in agg.leads.values():
            if lead["status"] == "open":
                lead["status"] = "included"


# --- assistance (帮扶) and exit (风险消除): facts; their commands are below with the others


@event(H, "cadre_assigned")
class CadreAssigned(Event):
    cadre: dict[str, Any]

    def apply(self, agg: Household) -> None:
        agg.cadre = dict(self.cadre, assigned_on=self.on)


@event(H, "cadre_unknown")
class CadreUnknown(Event):
    """Whether the household has a responsible cadre is not known: its history came from a source that
    does not say (the national export has no 帮扶责任人 column). Unknown is not a violation."""

    reason: str

    def apply(self, agg: Household) -> None:
        pass


@event(H, "measure_planned")
class MeasurePlanned(Event):
    measure_id: str
    measure_type: str
    addresses: list[str]
    department: str
    responsible: str

    def apply(self, agg: Household) -> None:
        agg.measures[self.measure_id] = {
            "measure_id": self.measure_id,
            "measure_type": self.measure_type,
            "addresses": list(self.addresses),
            "department": self.department,
            "responsible": self.responsible,
            "planned_on": self.on,
            "implemented_on": None,
            "ended_on": None,
            "status": "planned",
            "cycle": agg.cycle,
        }


@event(H, "measure_implemented")
class MeasureImplemented(Event):
    measure_id: str

    def apply(self, agg: Household) -> None:
        _measure_reaches(agg, self.measure_id, "implemented", self.on)


@event(H, "measure_ended")
class MeasureEnded(Event):
    measure_id: str

    def apply(self, agg: Household) -> None:
        _measure_reaches(agg, self.measure_id, "ended", self.on)


def _measure_reaches(agg: Household, measure_id: str, status: str, on: date) -> None:
    """A measure reaches `status` (implemented, ended) on `on`, kept as its `<status>_on`."""
    measure = agg.measures[measure_id]
    measure[f"{status}_on"] = on
    measure["status"] = status


@event(H, "exit_nominated")
class ExitNominated(Event):
    mode: str
    procedure: str
    step: str
    stage: str

    def apply(self, agg: Household) -> None:
        agg.procedure = self.procedure
        agg.step = self.step
        agg.step_on = self.on
        agg.stage = self.stage
        agg.exit_mode = self.mode
        agg.exit_nominated_on = self.on
        agg.procedure_started_on = self.on
        agg.objections = {}
        agg.publicity_opened_on = None
        agg.verified_by = None
        agg.signers = {}


@event(H, "exit_verified")
class ExitVerified(Step):
    finding: str

    def apply_step(self, agg: Household) -> None:
        if self.finding == Finding.MEETS.value:
            agg.verified_by = self.actor["id"]
        agg.signers[self.actor["id"]] = SignLevel.VERIFY.value


@event(H, "risk_eliminated")
class RiskEliminated(Step):
    mode: str

    def apply_step(self, agg: Household) -> None:
        agg.eliminated_on = self.on
        agg.exit_mode = self.mode


@event(H, "elimination_rolled_back")
class EliminationRolledBack(Event):
    reason: str
    stage: str

    def apply(self, agg: Household) -> None:
        agg.stage = self.stage
        agg.rolled_back_on = self.on
        agg.eliminated_on = None
