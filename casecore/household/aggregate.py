"""The household aggregate: one event stream per household (户), from registration through inclusion,
assistance and exit.

Each command method checks who acts, asks the procedure's machine whether the step is legal now
(`invalid_transition`), checks the policy in force on the act's date (`policy_violation`), and only then
triggers ONE event. The events and their mutators are in `events.py`, the state and its queries in
`state.py`, the guards in `guards.py`; the case core both aggregates share is `casecore/case.py`.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP
from typing import Any

from casecore import commands as c
from casecore.authority import check_jurisdiction, check_role
from casecore.case import Case, commands_of
from casecore.errors import InvalidTransition, NotFound, PolicyViolation, ValidationFailed
from casecore.events import common, plain
from casecore.household import events as ev
from casecore.household.guards import (
    GUARDS,
    measure_of,
    require_risk_count,
    require_stage,
)
from casecore.household.state import ASSISTED_STAGES, HouseholdState
from casecore.policy import PolicyBook
from casecore.values import (
    CENT,
    CountyDecision,
    MeasureType,
    Procedure,
    RiskType,
    Stage,
)
from casecore.vocabulary import step_label
from workflows.exit import EXIT, NOMINATION_GUARDS, Exit
from workflows.inclusion import INCLUSION, Inclusion
from workflows.machine import Workflow

WORKFLOWS: dict[str, Workflow] = {Procedure.INCLUSION: INCLUSION, Procedure.EXIT: EXIT}


def legal_commands(procedure: str, step: str) -> list[str]:
    """The commands the procedure's table allows from a step (the forms a console offers, the hints in refusals)."""
    return commands_of(WORKFLOWS[procedure].triggers(step))


class Household(HouseholdState, Case):
    """A household's case. Attributes are plain data so that snapshots and replays are cheap."""

    TOPIC = "cn.casecore.household"
    GUARDS = GUARDS

    # the events (facts), as the aggregate's own names
    Event = ev.Event
    Registered = ev.Registered
    MemberAdded = ev.MemberAdded
    MemberRemoved = ev.MemberRemoved
    MemberNameCorrected = ev.MemberNameCorrected
    SourceRowsRecorded = ev.SourceRowsRecorded
    IncomeAssessed = ev.IncomeAssessed
    GuaranteesAssessed = ev.GuaranteesAssessed
    LeadRecorded = ev.LeadRecorded
    Step = ev.Step
    LeadVerified = ev.LeadVerified
    ApplicationSigned = ev.ApplicationSigned
    PublicityOpened = ev.PublicityOpened
    ObjectionRaised = ev.ObjectionRaised
    ObjectionResolved = ev.ObjectionResolved
    PublicityClosed = ev.PublicityClosed
    TownshipReviewed = ev.TownshipReviewed
    CountyDecided = ev.CountyDecided
    EnteredSystem = ev.EnteredSystem
    CadreAssigned = ev.CadreAssigned
    CadreUnknown = ev.CadreUnknown
    MeasurePlanned = ev.MeasurePlanned
    MeasureImplemented = ev.MeasureImplemented
    MeasureEnded = ev.MeasureEnded
    ExitNominated = ev.ExitNominated
    ExitVerified = ev.ExitVerified
    RiskEliminated = ev.RiskEliminated
    EliminationRolledBack = ev.EliminationRolledBack

    # ------------------------------------------------------------------ the open procedure

    def _open_procedure(self, cmd: c.HouseholdCommand) -> tuple[Workflow, str]:
        if self.procedure is None:
            raise InvalidTransition(
                f"户 {self.household_id} 当前{Stage(self.stage).label}, 没有进行中的程序, 不能办理"
                f"“{c.LABELS[cmd.command]}”"
            )
        return WORKFLOWS[self.procedure], self.step or ""  # an open procedure always has a step

    def _illegal_message(self, cmd: c.HouseholdCommand, trigger: str, workflow: Workflow, current: str) -> str:
        procedure = str(self.procedure)
        legal = "、".join(c.LABELS.get(t, t) for t in commands_of(workflow.triggers(current))) or "无"
        return (f"{Procedure(procedure).label}当前环节为“{step_label(procedure, current)}”, "
                f"不能办理“{c.LABELS[cmd.command]}”; 下一步可办理: {legal}")

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
        require_risk_count(list(dict.fromkeys(r.value for r in cmd.risk_types)), policies, cmd.on)
        require_risk_count([*self.risk_types, *dict.fromkeys(adds)], policies, cmd.on)
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
            require_risk_count(list(dict.fromkeys(r.value for r in cmd.risk_types)), policies, cmd.on)
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
    # Commands of assistance and exit (their guards: guards.py). Decisions (see docs/assistance-and-exit.md):
    # - a cadre can be assigned from the inclusion procedure on (识别中, 监测中, 风险消除程序中);
    # - measures are planned and implemented only for a household that is monitored or in exit; ending a
    #   measure is allowed in any stage (measures wind down after elimination);
    # - targeted assistance (针对性帮扶) = measures implemented on or after the current cycle's `included_on`.

    def assign_cadre(self, cmd: c.AssignCadre, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        require_stage(self, cmd, (Stage.IN_INCLUSION.value, *ASSISTED_STAGES))
        cadre = plain(cmd.cadre)
        current = self.cadre
        if current is not None and all(current.get(k) == cadre.get(k) for k in ("id", "name", "unit")):
            raise InvalidTransition(f"{cmd.cadre.name} 已是本户帮扶责任人, 无需重复指定")
        self.trigger_event(self.CadreAssigned, cadre=cadre, **common(cmd))

    def plan_measure(self, cmd: c.PlanMeasure, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        require_stage(self, cmd, ASSISTED_STAGES)
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
        measure = measure_of(self, cmd.measure_id)
        require_stage(self, cmd, ASSISTED_STAGES)
        if measure["status"] != "planned":
            done = "落实" if measure["status"] == "implemented" else "结束"
            raise InvalidTransition(f"帮扶措施 {cmd.measure_id} 已{done}, 不能再次落实")
        if cmd.on < measure["planned_on"]:
            raise PolicyViolation(f"落实日期 {cmd.on} 早于措施制定日期 {measure['planned_on']}; 请核对日期",
                                  rule="step_date_order")
        self.trigger_event(self.MeasureImplemented, measure_id=cmd.measure_id, **common(cmd))

    def end_measure(self, cmd: c.EndMeasure, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        measure = measure_of(self, cmd.measure_id)
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
        self._run_guards(NOMINATION_GUARDS, cmd, policies)
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
        require_stage(self, cmd, (Stage.RISK_ELIMINATED.value,))
        if self.eliminated_on is not None and cmd.on < self.eliminated_on:
            raise PolicyViolation(f"回退日期 {cmd.on} 早于标注风险消除日期 {self.eliminated_on}; 请核对日期",
                                  rule="step_date_order")
        self.trigger_event(self.EliminationRolledBack, reason=cmd.reason, stage=Stage.MONITORED.value, **common(cmd))
