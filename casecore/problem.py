"""The problem aggregate: one event stream per problem found (问题), through rectification to its closing (销号).

双责任: a responsible party (who fixes it) and a supervising party (who checks it), each a unit and a named
person, and a deadline. 双销号: the responsible party signs off first, then the supervisor — each sign-off by
the person named for that party (matched on `actor.id`), and by two different people. A refused sign-off
sends the problem back to rectification with the reason. 双问责: accountability against the responsible
party, the supervisor or both; a closed problem reopened by a new finding counts against both.

Each command checks who acts, asks the rectification machine whether the step is legal now
(`invalid_transition`), runs the guards its table names, and only then triggers ONE event. Mutators only
assign what the event says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from casecore import commands as c
from casecore.authority import check_jurisdiction, check_role
from casecore.case import Case, StepEvent, commands_of
from casecore.errors import InvalidTransition, NotAuthorised, PolicyViolation, ValidationFailed
from casecore.events import CaseCreated, CaseEvent, common, event, plain
from casecore.policy import PolicyBook
from casecore.streams import case_id
from casecore.values import AccountableParty, Party
from casecore.views import problem_state as public_state
from casecore.vocabulary import status_label
from workflows.machine import Workflow
from workflows.rectification import RECTIFICATION, Rectification

P = "problem"


def overdue_days(deadline: date | None, closed_on: date | None, as_of: date) -> int:
    """Days a problem is past its deadline as of `as_of`: 0 when it was closed by then, when it has no
    deadline yet, or when the deadline has not passed (a problem closed ON its deadline is on time)."""
    if deadline is None or (closed_on is not None and closed_on <= as_of):
        return 0
    return max(0, (as_of - deadline).days)


class Problem(Case):
    """A problem's rectification case. Attributes are plain data (cheap to replay and snapshot)."""

    TOPIC = "cn.casecore.problem"

    if TYPE_CHECKING:  # the attributes the mutators assign (declared for type checkers only)
        problem_id: str
        kind: str
        household_id: str | None
        division_code: str
        source: str
        detail: str
        finding_key: str | None
        raised_on: date
        raised_by: dict[str, Any]
        status: str
        step_on: date
        responsible: dict[str, Any] | None
        supervisor: dict[str, Any] | None
        deadline: date | None
        assigned_on: date | None
        actions: list[dict[str, Any]]
        returned_after: int
        reported_on: date | None
        signatures: dict[str, dict[str, Any]]
        closed_on: date | None
        rejections: list[dict[str, Any]]
        accountability: list[dict[str, Any]]
        reopenings: list[dict[str, Any]]
        #: idempotency keys of the commands decided → the digest of each one's content (None: not kept)
        command_ids: dict[str, str | None]

    class Event(CaseEvent):
        pass

    # ------------------------------------------------------------------ events (facts) and mutators

    @event(P, "raised")
    class Raised(Event, CaseCreated):
        kind: str
        household_id: str | None
        division_code: str
        source: str
        detail: str
        finding_key: str | None

        def apply(self, agg: Problem) -> None:
            agg.problem_id = case_id(self.originator_id)
            agg.kind = self.kind
            agg.household_id = self.household_id
            agg.division_code = self.division_code
            agg.source = self.source
            agg.detail = self.detail
            agg.finding_key = self.finding_key
            agg.raised_on = self.on
            agg.raised_by = dict(self.actor)
            agg.status = Rectification.RAISED.value
            agg.step_on = self.on
            agg.responsible = None
            agg.supervisor = None
            agg.deadline = None
            agg.assigned_on = None
            agg.actions = []
            agg.returned_after = 0
            agg.reported_on = None
            agg.signatures = {}
            agg.closed_on = None
            agg.rejections = []
            agg.accountability = []
            agg.reopenings = []
            agg.command_ids = {}

    @dataclass(frozen=True, kw_only=True)
    class Step(Event, StepEvent):
        """Base of the steps that move the problem (abstract: never stored itself)."""

        TOPIC = "cn.casecore.problem.step.abstract"
        status: str

        def move(self, agg: Problem) -> None:
            agg.status = self.status
            agg.step_on = self.on

    @event(P, "responsibility_assigned")
    class ResponsibilityAssigned(Step):
        responsible: dict[str, Any]
        supervisor: dict[str, Any]
        deadline: date

        def apply_step(self, agg: Problem) -> None:
            agg.responsible = dict(self.responsible)
            agg.supervisor = dict(self.supervisor)
            agg.deadline = self.deadline
            agg.assigned_on = self.on

    @event(P, "rectification_recorded")
    class RectificationRecorded(Step):
        action: str
        #: the action's number in the problem's history (1, 2, …)
        seq: int

        def apply_step(self, agg: Problem) -> None:
            agg.actions.append({"seq": self.seq, "on": self.on, "action": self.action, "by": self.actor.get("id"),
                                "evidence": list(self.evidence)})

    @event(P, "rectification_reported")
    class RectificationReported(Step):
        def apply_step(self, agg: Problem) -> None:
            agg.reported_on = self.on

    @event(P, "signed_off")
    class SignedOff(Step):
        party: str
        #: the person the party named (who signed: `actor`)
        person: str

        def apply_step(self, agg: Problem) -> None:
            agg.signatures[self.party] = {"by": self.actor.get("id"), "name": self.actor.get("name"), "on": self.on}
            if self.status == Rectification.CLOSED.value:
                agg.closed_on = self.on

    @event(P, "sign_off_rejected")
    class SignOffRejected(Step):
        party: str
        reason: str
        #: how many actions were recorded before the return: the redo must add one after them
        actions_before: int

        def apply_step(self, agg: Problem) -> None:
            agg.signatures = {}
            agg.reported_on = None
            agg.returned_after = self.actions_before
            agg.rejections.append({"party": self.party, "reason": self.reason, "on": self.on,
                                   "by": self.actor.get("id")})

    @event(P, "held_accountable")
    class HeldAccountable(Event):
        party: str
        reason: str
        #: the parties held to account, as named at the time
        parties: list[dict[str, Any]]
        deadline: date | None
        #: days past the deadline on the act's date (while not closed; for a closed problem, how late it closed)
        overdue_days: int

        def apply(self, agg: Problem) -> None:
            agg.accountability.append({"party": self.party, "reason": self.reason, "on": self.on,
                                       "parties": list(self.parties), "overdue_days": self.overdue_days})

    @event(P, "reopened")
    class Reopened(Step):
        reason: str
        deadline: date
        finding_key: str | None
        #: a problem closed falsely counts against both parties (双问责)
        accountable_party: str
        parties: list[dict[str, Any]]
        closed_on: date | None
        actions_before: int

        def apply_step(self, agg: Problem) -> None:
            agg.reopenings.append({"on": self.on, "reason": self.reason, "closed_on": self.closed_on,
                                   "finding_key": self.finding_key})
            agg.accountability.append({"party": self.accountable_party, "reason": self.reason, "on": self.on,
                                       "parties": list(self.parties), "overdue_days": 0})
            agg.deadline = self.deadline
            agg.signatures = {}
            agg.reported_on = None
            agg.closed_on = None
            agg.returned_after = self.actions_before

    # ------------------------------------------------------------------ queries

    def overdue_days(self, as_of: date) -> int:
        return overdue_days(self.deadline, self.closed_on, as_of)

    def is_overdue(self, as_of: date) -> bool:
        """Not closed by its deadline, as of `as_of`."""
        return self.overdue_days(as_of) > 0

    def party(self, which: str) -> dict[str, Any]:
        """The named party (`responsible` or `supervisor`): {unit, person}."""
        found = self.responsible if which == Party.RESPONSIBLE.value else self.supervisor
        if found is None:
            raise InvalidTransition(f"问题 {self.problem_id} 尚未明确双责任; 请先明确双责任 (assign_responsibility)")
        return found

    # ------------------------------------------------------------------ the open procedure

    def _open_procedure(self, cmd: c.ProblemCommand) -> tuple[Workflow, str]:
        return RECTIFICATION, self.status

    def _illegal_message(self, cmd: c.ProblemCommand, trigger: str, workflow: Workflow, current: str) -> str:
        here = f"问题 {self.problem_id} 当前为“{status_label(self.status)}”"
        if trigger == "sign_off_supervisor" and self.status == Rectification.REPORTED.value:
            return f"{here}, 责任方尚未销号; 双销号须先由责任方销号, 再由监督方销号"
        if trigger.endswith("_supervisor") and self.status == Rectification.REPORTED.value:
            return f"{here}, 尚未轮到监督方; 请等待责任方销号"
        if trigger.endswith("_responsible") and self.status == Rectification.RESPONSIBLE_SIGNED.value:
            return f"{here}, 责任方已销号, 应由监督方销号或退回"
        if self.status == Rectification.RAISED.value and trigger != "assign_responsibility":
            return f"{here}, 尚未明确整改责任; 请先明确双责任 (assign_responsibility)"
        legal = "、".join(dict.fromkeys(c.LABELS.get(t, t) for t in commands_of(workflow.triggers(current))))
        return f"{here}, 不能办理“{c.LABELS.get(cmd.command, cmd.command)}”; 可办理: {legal or '无'}"

    # ------------------------------------------------------------------ commands

    @classmethod
    def raise_problem(cls, cmd: c.RaiseProblem, stream: str) -> Problem:
        check_role(cmd.command, cmd.actor.role)
        check_jurisdiction(cmd.actor.unit, cmd.division_code)
        return cls._create(
            cls.Raised,
            id=stream,
            kind=cmd.kind.value,
            household_id=cmd.household_id,
            division_code=cmd.division_code,
            source=cmd.source.value,
            detail=cmd.detail,
            finding_key=cmd.finding_key,
            **common(cmd),
        )

    def assign_responsibility(self, cmd: c.AssignResponsibility, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        dest = self._advance(cmd, policies, "assign_responsibility")
        if cmd.deadline < cmd.on:
            raise ValidationFailed(f"整改时限 {cmd.deadline} 早于明确责任的日期 {cmd.on}; 请核对整改时限")
        self.trigger_event(self.ResponsibilityAssigned, status=dest, responsible=plain(cmd.responsible),
                           supervisor=plain(cmd.supervisor), deadline=cmd.deadline, **common(cmd))

    def record_rectification(self, cmd: c.RecordRectification, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        dest = self._advance(cmd, policies, "record_rectification")
        self.trigger_event(self.RectificationRecorded, status=dest, action=cmd.action, seq=len(self.actions) + 1,
                           **common(cmd))

    def report_rectified(self, cmd: c.ReportRectified, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        dest = self._advance(cmd, policies, "report_rectified")
        self.trigger_event(self.RectificationReported, status=dest, **common(cmd))

    def sign_off(self, cmd: c.SignOff, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        dest = self._advance(cmd, policies, f"sign_off_{cmd.party.value}")
        self.trigger_event(self.SignedOff, status=dest, party=cmd.party.value,
                           person=self.party(cmd.party.value)["person"], **common(cmd))

    def reject_sign_off(self, cmd: c.RejectSignOff, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        dest = self._advance(cmd, policies, f"reject_sign_off_{cmd.party.value}")
        self.trigger_event(self.SignOffRejected, status=dest, party=cmd.party.value, reason=cmd.reason,
                           actions_before=len(self.actions), **common(cmd))

    def hold_accountable(self, cmd: c.HoldAccountable, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        self._advance(cmd, policies, "hold_accountable")
        which = ([Party.RESPONSIBLE.value, Party.SUPERVISOR.value] if cmd.party == AccountableParty.BOTH
                 else [cmd.party.value])
        parties = [dict(self.party(w), party=w) for w in which]
        late_as_of = self.closed_on if self.closed_on is not None else cmd.on
        late = 0 if self.deadline is None else max(0, (late_as_of - self.deadline).days)
        self.trigger_event(self.HeldAccountable, party=cmd.party.value, reason=cmd.reason, parties=parties,
                           deadline=self.deadline, overdue_days=late, **common(cmd))

    def reopen_problem(self, cmd: c.ReopenProblem, policies: PolicyBook) -> None:
        self._check_actor(cmd)
        dest = self._advance(cmd, policies, "reopen_problem")
        if cmd.deadline < cmd.on:
            raise ValidationFailed(f"新的整改时限 {cmd.deadline} 早于重新整改的日期 {cmd.on}; 请核对整改时限")
        parties = [dict(self.party(w), party=w) for w in (Party.RESPONSIBLE.value, Party.SUPERVISOR.value)]
        self.trigger_event(self.Reopened, status=dest, reason=cmd.reason, deadline=cmd.deadline,
                           finding_key=cmd.finding_key, accountable_party=AccountableParty.BOTH.value,
                           parties=parties, closed_on=self.closed_on, actions_before=len(self.actions),
                           **common(cmd))

    # ------------------------------------------------------------------ guards named in the machine's table

    def _guard_four_eyes_parties(self, cmd: c.AssignResponsibility, policies: PolicyBook) -> None:
        if cmd.responsible.person == cmd.supervisor.person:
            raise NotAuthorised(f"责任方与监督方为同一人 {cmd.responsible.person} (四眼原则); "
                                "双责任须由两名不同人员分别承担")
        if cmd.responsible.unit.strip() == cmd.supervisor.unit.strip():
            raise PolicyViolation(f"责任方与监督方为同一单位 {cmd.responsible.unit}; 双责任须由整改单位和另一监督单位"
                                  "分别承担, 请指定另一单位监督", rule="double_responsibility_units")

    def _guard_action_since_return(self, cmd: c.ReportRectified, policies: PolicyBook) -> None:
        if len(self.actions) <= self.returned_after:
            raise PolicyViolation("退回后尚未记录新的整改措施; 请先记录整改措施 (record_rectification) 再报告整改完成",
                                  rule="rectification_action_required")

    def _guard_named_person(self, cmd: c.SignOff | c.RejectSignOff, policies: PolicyBook) -> None:
        named = self.party(cmd.party.value)["person"]
        if cmd.actor.id != named:
            raise NotAuthorised(f"{cmd.party.label}销号须由指定人员 {named} 本人办理, {cmd.actor.id} 不是该方指定人员")

    def _guard_four_eyes_sign_off(self, cmd: c.SignOff | c.RejectSignOff, policies: PolicyBook) -> None:
        signed = self.signatures.get(Party.RESPONSIBLE.value, {}).get("by")
        if signed is not None and cmd.actor.id == signed:
            raise NotAuthorised(f"{cmd.actor.id} 已作为责任方销号, 不能再作监督方销号 (四眼原则); "
                                "请由监督方指定人员办理")


#: every guard the rectification table names, by that name
Problem.GUARDS = {
    "four_eyes_parties": Problem._guard_four_eyes_parties,
    "action_since_return": Problem._guard_action_since_return,
    "named_person": Problem._guard_named_person,
    "four_eyes_sign_off": Problem._guard_four_eyes_sign_off,
}

__all__ = ["Problem", "overdue_days", "public_state", "status_label"]
