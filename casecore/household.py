"""The household aggregate: one event stream per household (户), from registration through inclusion,
assistance and exit.

Each command method checks who acts, asks the procedure's machine whether the step is legal now
(`invalid_transition`), checks the policy in force on the act's date (`policy_violation`), and only then
triggers ONE event. Mutators (`apply`) only assign what the event says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from casecore import commands as c
from casecore.authority import check_jurisdiction, check_role
from casecore.errors import InvalidTransition, NotAuthorised, NotFound, PolicyViolation, ValidationFailed
from casecore.events import CaseAggregate, CaseCreated, CaseEvent, common, event, plain
from casecore.policy import PolicyBook
from casecore.values import (
    Category,
    CountyDecision,
    ExitMode,
    Finding,
    HouseholdType,
    Housing,
    Labour,
    MeasureType,
    Procedure,
    RiskType,
    SignLevel,
    Stage,
    add_months,
    in_place_for,
    in_place_runs,
    month_window,
    months_covered,
)
from workflows.exit import EXIT, NOMINATION_GUARDS, Exit
from workflows.inclusion import INCLUSION, Inclusion
from workflows.machine import Workflow

WORKFLOWS: dict[str, Workflow] = {Procedure.INCLUSION: INCLUSION, Procedure.EXIT: EXIT}
#: the level of a procedure each signing command signs (四眼原则: one person, one level)
SIGN_LEVEL_OF = {"verify_lead": SignLevel.VERIFY, "verify_exit": SignLevel.VERIFY,
                 "review_township": SignLevel.TOWNSHIP, "approve_county": SignLevel.COUNTY}
CENT = Decimal("0.01")

H = "household"


class Household(CaseAggregate):
    """A household's case. Attributes are plain data so that snapshots and replays are cheap."""

    TOPIC = "cn.casecore.household"

    if TYPE_CHECKING:  # assigned by the mutators; declared here for type checkers only (no dataclass magic)
        household_id: str
        division_code: str
        household_type: str
        relocated: bool
        resettlement_site: str | None
        key_county: bool
        registered_on: date
        members: dict[str, dict[str, Any]]
        stage: str
        stage_before_procedure: str
        procedure: str | None
        step: str | None
        step_on: date | None
        cycle: int
        procedure_started_on: date | None
        category: str | None
        risk_types: list[str]
        incomes: list[dict[str, Any]]
        guarantees: list[dict[str, Any]]
        leads: dict[str, dict[str, Any]]
        objections: dict[str, dict[str, Any]]
        publicity_opened_on: date | None
        verified_by: str | None
        signers: dict[str, str]
        included_on: date | None
        eliminated_on: date | None
        exit_mode: str | None
        exit_nominated_on: date | None
        rolled_back_on: date | None
        cadre: dict[str, Any] | None
        measures: dict[str, dict[str, Any]]
        #: idempotency keys of the commands decided → the digest of each one's content (None: not kept)
        command_ids: dict[str, str | None]
        source_rows: dict[str, dict[str, str]]

    class Event(CaseEvent):
        pass

    # ------------------------------------------------------------------ events (facts) and mutators

    @event(H, "registered")
    class Registered(Event, CaseCreated):
        division_code: str
        household_type: str
        relocated: bool
        resettlement_site: str | None
        key_county: bool
        members: list[dict[str, Any]]

        def apply(self, agg: Household) -> None:
            agg.household_id = self.originator_id.split("/", 1)[-1]
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
    class Step(Event):
        """Base of procedure steps (abstract: never stored itself)."""

        TOPIC = "cn.casecore.household.step.abstract"
        procedure: str
        step: str
        stage: str

        def apply(self, agg: Household) -> None:
            agg.step = self.step
            agg.step_on = self.on
            agg.stage = self.stage
            if self.stage in (Stage.NOT_MONITORED.value, Stage.MONITORED.value, Stage.RISK_ELIMINATED.value):
                agg.procedure = None
                agg.step = None
            self.apply_step(agg)

        def apply_step(self, agg: Household) -> None:
            """What the step records beside moving the case."""

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
            m = agg.measures[self.measure_id]
            m["implemented_on"] = self.on
            m["status"] = "implemented"

    @event(H, "measure_ended")
    class MeasureEnded(Event):
        measure_id: str

        def apply(self, agg: Household) -> None:
            m = agg.measures[self.measure_id]
            m["ended_on"] = self.on
            m["status"] = "ended"

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

    # ------------------------------------------------------------------ queries used when deciding

    def size_on(self, day: date) -> int:
        """Household size on a date: members present then (registration members count from the start)."""
        n = 0
        for m in self.members.values():
            added, removed = m.get("added_on"), m.get("removed_on")
            if (added is None or added <= day) and (removed is None or removed > day):
                n += 1
        return n

    def current_members(self) -> list[dict[str, Any]]:
        return [m for m in self.members.values() if m.get("removed_on") is None]

    def has_labour(self) -> bool:
        """False for 整户无劳动力: no current member has full or weak labour capacity."""
        return any(m["labour"] in (Labour.FULL.value, Labour.WEAK.value) for m in self.current_members())

    def income_covering(self, start: date, end: date) -> dict[str, Any] | None:
        """The newest income assessment whose period covers [start, end]."""
        best = None
        for a in self.incomes:
            if a["period_start"] <= start and a["period_end"] >= end and (best is None or a["on"] >= best["on"]):
                best = a
        return best

    def latest_guarantees(self) -> dict[str, Any] | None:
        return self.guarantees[-1] if self.guarantees else None

    # ------------------------------------------------------------------ checks

    def check_actor(self, cmd: c.HouseholdCommand) -> None:
        """Whether the command's actor may act on this case at all (role and jurisdiction): the application asks
        before it answers a known `command_id`, so a key tells nobody that a case or a command exists."""
        self._check_actor(cmd)

    def _check_actor(self, cmd: c.HouseholdCommand) -> None:
        check_role(cmd.command, cmd.actor.role)
        check_jurisdiction(cmd.actor.unit, self.division_code)

    def _advance(self, cmd: c.HouseholdCommand, policies: PolicyBook, trigger: str) -> str:
        """Ask the open procedure's machine whether `trigger` is legal now; check its guards; return the
        step it leads to."""
        if self.procedure is None:
            raise InvalidTransition(
                f"户 {self.household_id} 当前{Stage(self.stage).label}, 没有进行中的程序, 不能办理"
                f"“{c.LABELS[cmd.command]}”"
            )
        workflow = WORKFLOWS[self.procedure]
        current = self.step or ""  # an open procedure always has a step
        step = workflow.step(current, trigger)
        if step is None:
            legal = "、".join(c.LABELS.get(t, t) for t in _commands_of(workflow.triggers(current))) or "无"
            raise InvalidTransition(
                f"{Procedure(self.procedure).label}当前环节为“{_step_label(self.procedure, current)}”, "
                f"不能办理“{c.LABELS[cmd.command]}”; 下一步可办理: {legal}"
            )
        if self.step_on is not None and cmd.on < self.step_on:
            raise PolicyViolation(
                f"办理日期 {cmd.on} 早于上一环节日期 {self.step_on}; 请核对日期", rule="step_date_order"
            )
        for guard in step.guards:
            getattr(self, f"_guard_{guard}")(cmd, policies)
        return step.dest

    # ------------------------------------------------------------------ commands: registration, members, assessments

    @classmethod
    def register(cls, cmd: c.RegisterHousehold, stream: str, policies: PolicyBook) -> Household:
        check_role(cmd.command, cmd.actor.role)
        check_jurisdiction(cmd.actor.unit, cmd.division_code)
        policy = policies.on(cmd.on)
        if not cmd.division_code.startswith(policy.province_code):
            raise PolicyViolation(
                f"区划代码 {cmd.division_code} 不在{policy.name}适用的省份 (区划代码以 {policy.province_code} 开头); "
                "请核对区划代码, 或在该户所在省份的系统中建档",
                rule="division_outside_province",
            )
        return cls._create(
            cls.Registered,
            id=stream,
            division_code=cmd.division_code,
            household_type=cmd.household_type.value,
            relocated=cmd.relocated,
            resettlement_site=cmd.resettlement_site,
            key_county=cmd.key_county,
            members=[plain(m) | {"person_id": m.person_id.upper()} for m in cmd.members],
            **common(cmd),
        )

    def add_member(self, cmd: c.AddMember, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        pid = cmd.member.person_id.upper()
        current = self.members.get(pid)
        if current is not None and current.get("removed_on") is None:
            raise InvalidTransition(f"成员 {pid} 已在本户, 无需重复添加")
        self.trigger_event(self.MemberAdded, member=plain(cmd.member) | {"person_id": pid},
                           reason=cmd.reason.value, **common(cmd))

    def remove_member(self, cmd: c.RemoveMember, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        pid = cmd.person_id.upper()
        member = self.members.get(pid)
        if member is None or member.get("removed_on") is not None:
            raise NotFound(f"本户没有在册成员 {pid}; 请核对身份证号")
        if len(self.current_members()) == 1:
            raise PolicyViolation("不能移除户内最后一名成员; 整户消亡请走销户流程", rule="last_member")
        self.trigger_event(self.MemberRemoved, person_id=pid, reason=cmd.reason.value, **common(cmd))

    def assess_income(self, cmd: c.AssessIncome, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        size = self.size_on(cmd.period_end)
        if size == 0:
            raise PolicyViolation(f"测算期末 {cmd.period_end} 户内无在册成员, 无法计算人均纯收入",
                                  rule="household_size")
        per_capita = ((cmd.net_income - cmd.rigid_expenditure) / size).quantize(CENT, ROUND_HALF_UP)
        self.trigger_event(
            self.IncomeAssessed,
            period_start=cmd.period_start,
            period_end=cmd.period_end,
            net_income=cmd.net_income,
            rigid_expenditure=cmd.rigid_expenditure,
            household_size=size,
            per_capita_income=per_capita,
            **common(cmd),
        )

    def assess_guarantees(self, cmd: c.AssessGuarantees, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        known = set(self.members)
        unknown = [p for p in cmd.children_out_of_school + cmd.members_without_medical_insurance
                   if p.upper() not in known]
        if unknown:
            raise ValidationFailed(f"以下人员不是本户成员: {', '.join(unknown)}")
        self.trigger_event(
            self.GuaranteesAssessed,
            housing=cmd.housing.value,
            drinking_water_safe=cmd.drinking_water_safe,
            children_out_of_school=[p.upper() for p in cmd.children_out_of_school],
            members_without_medical_insurance=[p.upper() for p in cmd.members_without_medical_insurance],
            **common(cmd),
        )

    # ------------------------------------------------------------------ commands: the inclusion procedure

    def record_lead(self, cmd: c.RecordLead, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        if cmd.lead_id in self.leads:
            raise InvalidTransition(f"线索 {cmd.lead_id} 已登记")
        opens = self.procedure is None and self.stage in (Stage.NOT_MONITORED.value, Stage.RISK_ELIMINATED.value)
        monitored = self.stage in (Stage.MONITORED.value, Stage.IN_EXIT.value)
        adds = [r.value for r in cmd.risk_types if r.value not in self.risk_types] if monitored else []
        self._require_risk_count(list(dict.fromkeys(r.value for r in cmd.risk_types)), policies, cmd.on)
        self._require_risk_count([*self.risk_types, *dict.fromkeys(adds)], policies, cmd.on)
        self.trigger_event(
            self.LeadRecorded,
            lead_id=cmd.lead_id,
            source=cmd.source.value,
            risk_types=[r.value for r in cmd.risk_types],
            detail=cmd.detail,
            opens_procedure=opens,
            cycle=self.cycle + 1 if opens else self.cycle,
            stage=Stage.IN_INCLUSION.value if opens else self.stage,
            adds_risks=list(dict.fromkeys(adds)),
            **common(cmd),
        )

    def _require_risk_count(self, risks: list[str], policies: PolicyBook, on: date) -> None:
        """At most the policy's number of risk types a household (the national system's five columns)."""
        most = policies.on(on).procedure.max_risk_types
        if len(risks) > most:
            names = "、".join(RiskType(r).label for r in risks)
            raise PolicyViolation(
                f"风险类型最多{most}项, 此处为{len(risks)}项 ({names}); 请选出最主要的{most}项",
                rule="too_many_risk_types",
            )

    def _step(self, cmd: c.HouseholdCommand, policies: PolicyBook, event_class: type, trigger: str,
              **payload: Any) -> None:
        dest = self._advance(cmd, policies, trigger)
        self.trigger_event(
            event_class, procedure=self.procedure, step=dest, stage=self._stage_after(dest), **payload,
            **common(cmd),
        )

    def _stage_after(self, dest: str) -> str:
        if self.procedure == Procedure.INCLUSION.value:
            if dest == Inclusion.ENTERED.value:
                return Stage.MONITORED.value
            if dest == Inclusion.CLOSED.value:
                return getattr(self, "stage_before_procedure", Stage.NOT_MONITORED.value)
            return Stage.IN_INCLUSION.value
        return self._exit_stage_after(dest)

    def _exit_stage_after(self, dest: str) -> str:
        from workflows.exit import Exit

        if dest == Exit.ELIMINATED.value:
            return Stage.RISK_ELIMINATED.value
        if dest == Exit.CLOSED.value:
            return Stage.MONITORED.value
        return Stage.IN_EXIT.value

    def verify_lead(self, cmd: c.VerifyLead, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        lead = self.leads.get(cmd.lead_id)
        if lead is None:
            raise NotFound(f"户 {self.household_id} 没有线索 {cmd.lead_id}; 请先登记线索")
        if lead["status"] != "open":
            raise InvalidTransition(f"线索 {cmd.lead_id} 已核实或已办结, 不能再次核实")
        if self.procedure != Procedure.INCLUSION.value:
            raise InvalidTransition(f"户 {self.household_id} 没有进行中的识别程序, 线索已记入监测档案")
        self._step(cmd, policies, self.LeadVerified, f"verify_lead_{cmd.finding.value}", lead_id=cmd.lead_id,
                   finding=cmd.finding.value)

    def sign_application(self, cmd: c.SignApplication, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        self._step(cmd, policies, self.ApplicationSigned, "sign_application")

    def open_publicity(self, cmd: c.OpenPublicity, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        self._step(cmd, policies, self.PublicityOpened, "open_publicity")

    def raise_objection(self, cmd: c.RaiseObjection, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        if cmd.objection_id in self.objections:
            raise InvalidTransition(f"异议 {cmd.objection_id} 已登记")
        self._step(cmd, policies, self.ObjectionRaised, "raise_objection", objection_id=cmd.objection_id,
                   detail=cmd.detail)

    def resolve_objection(self, cmd: c.ResolveObjection, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        objection = self.objections.get(cmd.objection_id)
        if objection is None:
            raise NotFound(f"本次公示没有异议 {cmd.objection_id}")
        if objection["outcome"] is not None:
            raise InvalidTransition(f"异议 {cmd.objection_id} 已处理")
        self._step(cmd, policies, self.ObjectionResolved, "resolve_objection", objection_id=cmd.objection_id,
                   outcome=cmd.outcome.value)

    def close_publicity(self, cmd: c.ClosePublicity, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        self._step(cmd, policies, self.PublicityClosed, "close_publicity", opened_on=self.publicity_opened_on)

    def review_township(self, cmd: c.ReviewTownship, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        self._step(cmd, policies, self.TownshipReviewed, f"review_township_{cmd.decision.value}",
                   decision=cmd.decision.value)

    def approve_county(self, cmd: c.ApproveCounty, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        inclusion = self.procedure == Procedure.INCLUSION.value
        if inclusion and cmd.decision == CountyDecision.APPROVE and (cmd.category is None or not cmd.risk_types):
            raise ValidationFailed("县级批复纳入监测时须注明监测对象类型 (category) 和风险类型 (risk_types)")
        # only an approval decides the category and risks; a return or rejection must not leave them behind
        approving = inclusion and cmd.decision == CountyDecision.APPROVE
        if approving:
            self._require_risk_count(list(dict.fromkeys(r.value for r in cmd.risk_types)), policies, cmd.on)
        self._step(cmd, policies,
            self.CountyDecided,
            f"approve_county_{cmd.decision.value}",
            decision=cmd.decision.value,
            category=cmd.category.value if (approving and cmd.category) else None,
            risk_types=[r.value for r in cmd.risk_types] if approving else [],
        )

    def enter_system(self, cmd: c.EnterSystem, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        if self.procedure != Procedure.INCLUSION.value:
            raise InvalidTransition("没有进行中的识别程序, 不能录入系统")
        self._step(cmd, policies, self.EnteredSystem, "enter_system")

    # ================================================================== assistance (帮扶) and exit (风险消除)
    # Commands and guards of assistance and exit. Decisions (see docs/assistance-and-exit.md):
    # - a cadre can be assigned from the inclusion procedure on (识别中, 监测中, 风险消除程序中);
    # - measures are planned and implemented only for a household that is monitored or in exit; ending a
    #   measure is allowed in any stage (measures wind down after elimination);
    # - targeted assistance (针对性帮扶) = measures implemented on or after the current cycle's `included_on`.

    _ASSISTED_STAGES = (Stage.MONITORED.value, Stage.IN_EXIT.value)

    def targeted_measures(self, as_of: date) -> list[dict[str, Any]]:
        """Measures counting as targeted assistance on `as_of`: implemented in the current monitoring cycle
        (on or after `included_on`) and not after `as_of`. Ended measures still count: they were carried out."""
        if self.included_on is None:
            return []
        return [m for m in self.measures.values()
                if m["implemented_on"] is not None and self.included_on <= m["implemented_on"] <= as_of]

    def income_as_of(self, start: date, end: date, as_of: date) -> dict[str, Any] | None:
        """The newest income assessment made on or before `as_of` whose period covers [start, end]."""
        best = None
        for a in self.incomes:
            if a["on"] <= as_of and a["period_start"] <= start and a["period_end"] >= end and (
                    best is None or a["on"] >= best["on"]):
                best = a
        return best

    def guarantees_as_of(self, as_of: date, after: date | None = None) -> dict[str, Any] | None:
        """The newest guarantee assessment made on or before `as_of` (and strictly after `after`, if given)."""
        best = None
        for g in self.guarantees:
            if g["on"] <= as_of and (after is None or g["on"] > after) and (best is None or g["on"] >= best["on"]):
                best = g
        return best

    def open_guarantees(self, assessment: dict[str, Any], as_of: date) -> list[str]:
        """What an assessment leaves open (三保障及饮水), counting only people who are still members on `as_of`."""
        present = {pid for pid, m in self.members.items()
                   if (m.get("added_on") is None or m["added_on"] <= as_of)
                   and (m.get("removed_on") is None or m["removed_on"] > as_of)}
        out = []
        if assessment["housing"] != Housing.SAFE.value:
            out.append(f"住房为{Housing(assessment['housing']).label}")
        if not assessment["drinking_water_safe"]:
            out.append("饮水不安全")
        dropouts = [p for p in assessment["children_out_of_school"] if p in present]
        if dropouts:
            out.append(f"义务教育阶段失学辍学 {', '.join(dropouts)}")
        uninsured = [p for p in assessment["members_without_medical_insurance"] if p in present]
        if uninsured:
            out.append(f"未参加基本医疗保险 {', '.join(uninsured)}")
        return out

    def _require_stage(self, cmd: c.HouseholdCommand, stages: tuple[str, ...]) -> None:
        if self.stage not in stages:
            allowed = "、".join(Stage(s).label for s in stages)
            raise InvalidTransition(
                f"户 {self.household_id} 当前{Stage(self.stage).label}, “{c.LABELS[cmd.command]}”只适用于{allowed}的户"
            )

    def _measure(self, measure_id: str) -> dict[str, Any]:
        measure = self.measures.get(measure_id)
        if measure is None:
            raise NotFound(f"户 {self.household_id} 没有帮扶措施 {measure_id}; 请先制定措施 (plan_measure)")
        return measure

    def assign_cadre(self, cmd: c.AssignCadre, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        self._require_stage(cmd, (Stage.IN_INCLUSION.value, *self._ASSISTED_STAGES))
        cadre = plain(cmd.cadre)
        current = self.cadre
        if current is not None and all(current.get(k) == cadre.get(k) for k in ("id", "name", "unit")):
            raise InvalidTransition(f"{cmd.cadre.name} 已是本户帮扶责任人, 无需重复指定")
        self.trigger_event(self.CadreAssigned, cadre=cadre, **common(cmd))

    def plan_measure(self, cmd: c.PlanMeasure, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        self._require_stage(cmd, self._ASSISTED_STAGES)
        if cmd.measure_id in self.measures:
            raise InvalidTransition(f"帮扶措施 {cmd.measure_id} 已登记; 措施编号不能重复使用")
        policy = policies.on(cmd.on)
        addresses = list(dict.fromkeys(r.value for r in cmd.addresses))
        if not any(cmd.measure_type.value in policy.fitting_measures(r) for r in addresses):
            risks = "、".join(RiskType(r).label for r in addresses)
            fitting = sorted({m for r in addresses for m in policy.fitting_measures(r)})
            names = "、".join(MeasureType(m).label for m in fitting) or "无"
            raise PolicyViolation(
                f"{cmd.measure_type.label}不对应所针对的风险 ({risks}); 缺什么补什么, 可选措施: {names}",
                rule="measure_does_not_fit",
            )
        self.trigger_event(
            self.MeasurePlanned,
            measure_id=cmd.measure_id,
            measure_type=cmd.measure_type.value,
            addresses=addresses,
            department=cmd.department,
            responsible=cmd.responsible,
            **common(cmd),
        )

    def implement_measure(self, cmd: c.ImplementMeasure, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        measure = self._measure(cmd.measure_id)
        self._require_stage(cmd, self._ASSISTED_STAGES)
        if measure["status"] != "planned":
            done = "落实" if measure["status"] == "implemented" else "结束"
            raise InvalidTransition(f"帮扶措施 {cmd.measure_id} 已{done}, 不能再次落实")
        if cmd.on < measure["planned_on"]:
            raise PolicyViolation(f"落实日期 {cmd.on} 早于措施制定日期 {measure['planned_on']}; 请核对日期",
                                  rule="step_date_order")
        self.trigger_event(self.MeasureImplemented, measure_id=cmd.measure_id, **common(cmd))

    def end_measure(self, cmd: c.EndMeasure, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        measure = self._measure(cmd.measure_id)
        if measure["status"] == "ended":
            raise InvalidTransition(f"帮扶措施 {cmd.measure_id} 已于 {measure['ended_on']} 结束")
        since = measure["implemented_on"] or measure["planned_on"]
        if cmd.on < since:
            raise PolicyViolation(f"结束日期 {cmd.on} 早于措施的 {since}; 请核对日期", rule="step_date_order")
        self.trigger_event(self.MeasureEnded, measure_id=cmd.measure_id, **common(cmd))

    def nominate_exit(self, cmd: c.NominateExit, policies: PolicyBook) -> None:
        """村提名: starts the exit procedure, if every nomination guard of the exit table holds."""
        self._check_actor(cmd)
        if self.stage != Stage.MONITORED.value or self.procedure is not None:
            raise InvalidTransition(
                f"户 {self.household_id} 当前{Stage(self.stage).label}, 只有监测中且没有进行中程序的户才能提名风险消除"
            )
        if self.included_on is not None and cmd.on < self.included_on:
            raise PolicyViolation(f"提名日期 {cmd.on} 早于纳入监测日期 {self.included_on}; 请核对日期",
                                  rule="step_date_order")
        for guard in NOMINATION_GUARDS:
            getattr(self, f"_guard_{guard}")(cmd, policies)
        self.trigger_event(
            self.ExitNominated, mode=cmd.mode.value, procedure=Procedure.EXIT.value, step=Exit.NOMINATED.value,
            stage=Stage.IN_EXIT.value, **common(cmd),
        )

    def verify_exit(self, cmd: c.VerifyExit, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        if self.procedure != Procedure.EXIT.value:
            raise InvalidTransition(f"户 {self.household_id} 没有进行中的风险消除程序; 请先由村提名 (nominate_exit)")
        self._step(cmd, policies, self.ExitVerified, f"verify_exit_{cmd.finding.value}", finding=cmd.finding.value)

    def mark_risk_eliminated(self, cmd: c.MarkRiskEliminated, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        if self.procedure != Procedure.EXIT.value:
            raise InvalidTransition(f"户 {self.household_id} 没有进行中的风险消除程序, 不能标注风险消除")
        self._step(cmd, policies, self.RiskEliminated, "mark_risk_eliminated", mode=self.exit_mode)

    def rollback_elimination(self, cmd: c.RollbackElimination, policies: PolicyBook) -> None:
        """风险消除回退: an eliminated household returns to monitoring (same cycle, same inclusion date)."""
        self._check_actor(cmd)
        self._require_stage(cmd, (Stage.RISK_ELIMINATED.value,))
        if self.eliminated_on is not None and cmd.on < self.eliminated_on:
            raise PolicyViolation(f"回退日期 {cmd.on} 早于标注风险消除日期 {self.eliminated_on}; 请核对日期",
                                  rule="step_date_order")
        self.trigger_event(self.EliminationRolledBack, reason=cmd.reason, stage=Stage.MONITORED.value, **common(cmd))

    # --- guards of the exit table (workflows/exit.py: NOMINATION_GUARDS and the transitions' guards)

    def _guard_household_has_labour(self, cmd: c.Command, policies: PolicyBook) -> None:
        if not self.has_labour():
            raise PolicyViolation(
                "整户无劳动力, 不能标注风险消除: 落实兜底保障等社会保障措施后继续监测 (持续跟踪)",
                rule="household_without_labour",
            )

    def _guard_min_assistance_months(self, cmd: c.NominateExit, policies: PolicyBook) -> None:
        if cmd.mode != ExitMode.ASSISTED:
            return
        months = policies.on(cmd.on).exit.min_assistance_months
        measures = self.targeted_measures(cmd.on)
        if not measures:
            raise PolicyViolation(
                f"纳入监测 ({self.included_on}) 以来没有落实的针对性帮扶措施, 不能帮扶消除 (须满{months}个月); "
                f"如风险自然消除请按自然消除 (natural) 提名",
                rule="min_assistance_months",
            )
        # in place (implemented and not ended) for the months, without a gap, before the nomination
        if in_place_for(measure_spans(measures), cmd.on, months):
            return
        runs = in_place_runs(measure_spans(measures), cmd.on)
        if runs and runs[-1][1] == cmd.on:  # still in place: say when the months will be full
            since = runs[-1][0]
            raise PolicyViolation(
                f"针对性帮扶措施自 {since} 起持续落实 (落实且未结束), 不满{months}个月, "
                f"最早于 {add_months(since, months)} 提名帮扶消除",
                rule="min_assistance_months",
            )
        longest = max(((e - s).days, s, e) for s, e in runs) if runs else None
        ran = f"最长一段为 {longest[1]} 至 {longest[2]} ({longest[0]}天)" if longest else "没有"
        raise PolicyViolation(
            f"针对性帮扶措施须持续落实 (落实且未结束) 满{months}个月, {ran}, 且提名时已无在落实的措施; "
            "请落实帮扶措施满规定时间后再提名",
            rule="min_assistance_months",
        )

    def _guard_exit_income_assessment(self, cmd: c.NominateExit, policies: PolicyBook) -> None:
        start, end = month_window(cmd.on)
        assessment = self.income_as_of(start, end, cmd.on)
        if assessment is None:
            raise PolicyViolation(
                f"缺少覆盖 {start} 至 {end} (提名前12个月) 的收入核算; 请先核算收入再提名",
                rule="exit_income_assessment_missing",
            )
        self._require_income_at_line(assessment, policies, cmd.on)

    def _require_income_at_line(self, assessment: dict[str, Any], policies: PolicyBook, decided_on: date) -> None:
        """The exit's income test, judged by the line in force on the date of the decision (nomination, mark)."""
        if policies.below_line(assessment, decided_on):
            raise PolicyViolation(
                f"{assessment['on']} 核算的人均纯收入 {assessment['per_capita_income']} 元低于"
                f"{decided_on} 适用的监测标准 {policies.monitoring_line(decided_on)} 元, 风险未消除, 继续帮扶",
                rule="exit_income_below_line",
            )

    def _guard_guarantees_secure(self, cmd: c.Command, policies: PolicyBook) -> None:
        assessment = self.guarantees_as_of(cmd.on)
        if assessment is not None:
            self._require_guarantees_closed(assessment, cmd.on)

    def _require_guarantees_closed(self, assessment: dict[str, Any], as_of: date) -> None:
        open_ = self.open_guarantees(assessment, as_of)
        if open_:
            raise PolicyViolation(
                f"{assessment['on']} 的三保障及饮水核查仍有未解决问题 ({'; '.join(open_)}); 解决后再办理风险消除",
                rule="open_guarantee",
            )

    def _guard_post_elimination_assessment(self, cmd: c.Command, policies: PolicyBook) -> None:
        """风险消除后: an income and a guarantee assessment dated after the nomination, and both clear."""
        nominated = self.exit_nominated_on
        assert nominated is not None  # the exit procedure is open
        months = policies.on(cmd.on).income.assessment_months
        # an annual income: the assessment's period spans the policy's months (a month's income proves nothing)
        incomes = [a for a in self.incomes if nominated < a["on"] <= cmd.on
                   and months_covered(a["period_start"], a["period_end"], months)]
        guarantees = self.guarantees_as_of(cmd.on, after=nominated)
        missing = ([] if incomes else [f"覆盖{months}个月的收入核算"]) + ([] if guarantees else ["三保障及饮水核查"])
        if missing:
            raise PolicyViolation(
                f"缺少提名 ({nominated}) 之后的{'和'.join(missing)} (风险消除后信息); 请入户采集后再标注风险消除",
                rule="post_elimination_assessment",
            )
        newest = incomes[0]
        for a in incomes:  # the newest by business date; of one day's assessments, the last recorded
            if a["on"] >= newest["on"]:
                newest = a
        self._require_income_at_line(newest, policies, cmd.on)
        assert guarantees is not None  # `missing` was empty
        self._require_guarantees_closed(guarantees, cmd.on)

    # ------------------------------------------------------------------ guards named in the machines' tables

    def _started(self) -> date:
        assert self.procedure_started_on is not None  # set when a procedure opens
        return self.procedure_started_on

    def _guard_publicity_min_days(self, cmd: c.Command, policies: PolicyBook) -> None:
        days = policies.on(cmd.on).procedure.publicity_days
        opened = self.publicity_opened_on
        assert opened is not None  # the machine only allows closing an opened notice
        if (cmd.on - opened).days < days:
            earliest = date.fromordinal(opened.toordinal() + days)
            raise PolicyViolation(
                f"公示自 {opened} 开始, 须满{days}天, 最早于 {earliest} 结束公示", rule="publicity_min_days"
            )

    def _guard_objections_resolved(self, cmd: c.Command, policies: PolicyBook) -> None:
        open_ = [k for k, o in self.objections.items() if o["outcome"] is None]
        if open_:
            raise PolicyViolation(f"公示期内的异议尚未处理: {', '.join(open_)}; 请先处理异议再结束公示",
                                  rule="objections_unresolved")

    def _guard_four_eyes(self, cmd: c.Command, policies: PolicyBook) -> None:
        """One person signs one level of a procedure (入户核实, 乡级审核, 县级审批): three different people."""
        level = SIGN_LEVEL_OF[cmd.command]
        signed = self.signers.get(cmd.actor.id)
        if signed is None and cmd.actor.id == self.verified_by:
            signed = SignLevel.VERIFY.value
        if signed is not None and signed != level.value:
            raise NotAuthorised(
                f"{cmd.actor.id} 已在本次{Procedure(str(self.procedure)).label}中签署{SignLevel(signed).label}, "
                f"不能再签署{level.label} (四眼原则: 核实、乡级审核、县级审批须由不同人员); 请由另一名干部办理")

    def _guard_income_assessment_window(self, cmd: c.ApproveCounty, policies: PolicyBook) -> None:
        start, end = month_window(self._started())
        if self.income_covering(start, end) is None:
            raise PolicyViolation(
                f"缺少覆盖 {start} 至 {end} (识别前12个月) 的收入核算; 请先核算收入", rule="income_assessment_window"
            )

    def _guard_category_fits_household(self, cmd: c.ApproveCounty, policies: PolicyBook) -> None:
        need = {Category.MARGINAL: HouseholdType.GENERAL,
                Category.UNSTABLE_ALLEVIATED: HouseholdType.POVERTY_ALLEVIATED}
        category = cmd.category
        wanted = need.get(category) if category is not None else None
        if category is not None and wanted is not None and self.household_type != wanted.value:
            raise PolicyViolation(
                f"{category.label}只适用于{wanted.label}, 本户为{HouseholdType(self.household_type).label}",
                rule="category_household_type",
            )

    def _guard_income_below_line(self, cmd: c.ApproveCounty, policies: PolicyBook) -> None:
        if cmd.category == Category.SUDDEN_HARDSHIP:
            return
        start, end = month_window(self._started())
        assessment = self.income_covering(start, end)
        assert assessment is not None  # income_assessment_window runs first
        if not policies.below_line(assessment, cmd.on):  # the line in force on the approval's date
            raise PolicyViolation(
                f"人均纯收入 {assessment['per_capita_income']} 元不低于 {cmd.on} 适用的"
                f"监测标准 {policies.monitoring_line(cmd.on)} 元, "
                f"不能纳入{Category(str(cmd.category)).label}; 如有大额刚性支出或收入骤减, 请按突发严重困难户认定",
                rule="income_below_line",
            )



def measure_spans(measures: list[dict[str, Any]]) -> list[tuple[date, date | None]]:
    """When each implemented measure was in place: from its implementation to its end (if it ended)."""
    return [(m["implemented_on"], m["ended_on"]) for m in measures if m["implemented_on"] is not None]


def _commands_of(triggers: list[str]) -> list[str]:
    out = []
    for t in triggers:
        for suffix in ("_not_meets", "_meets", "_pass", "_return", "_reject", "_approve"):
            if t.endswith(suffix):
                t = t[: -len(suffix)]
                break
        if t not in out:
            out.append(t)
    return out


def legal_commands(procedure: str, step: str) -> list[str]:
    """The commands the procedure's table allows from a step (the forms a console offers, the hints in refusals)."""
    return _commands_of(WORKFLOWS[procedure].triggers(step))


def step_label(procedure: str, step: str) -> str:
    """The Chinese name of a procedure's step."""
    return _step_label(procedure, step)


def _step_label(procedure: str, step: str) -> str:
    from workflows import exit as ex
    from workflows import inclusion as inc

    labels = inc.LABELS if procedure == Procedure.INCLUSION.value else ex.LABELS
    return next((v for k, v in labels.items() if k.value == step), step)


def public_state(h: Household) -> dict[str, Any]:
    """The household's current state as CONTRACT.md "Household state" names it (plus more detail)."""
    return {
        "household_id": h.household_id,
        "division_code": h.division_code,
        "household_type": h.household_type,
        "relocated": h.relocated,
        "resettlement_site": h.resettlement_site,
        "key_county": h.key_county,
        "stage": h.stage,
        "category": h.category,
        "risk_types": list(h.risk_types),
        "members": [dict(m) for m in h.members.values()],
        "household_size": len(h.current_members()),
        "has_labour": h.has_labour(),
        "open_procedure": h.procedure,
        "procedure_step": h.step,
        "procedure_started_on": h.procedure_started_on,
        "cycle": h.cycle,
        "included_on": h.included_on,
        "eliminated_on": h.eliminated_on,
        "exit_mode": h.exit_mode,
        "exit_nominated_on": h.exit_nominated_on,
        "rolled_back_on": h.rolled_back_on,
        "cadre": h.cadre,
        "income_assessments": [dict(a) for a in h.incomes],
        "guarantee_assessments": [dict(g) for g in h.guarantees],
        "leads": [dict(v) for v in h.leads.values()],
        "objections": [dict(v, objection_id=k) for k, v in h.objections.items()],
        "measures": [dict(v) for v in h.measures.values()],
        "version": h.version,
    }
