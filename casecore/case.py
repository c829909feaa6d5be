"""The case core that households and problems share: who may act, one procedure step decided against the
procedure's table, and the event base of the steps that move a case.

A command on a case checks its actor (`check_actor`: role and jurisdiction), asks the open procedure's
machine whether the trigger is legal from the current step (`advance`: `invalid_transition` otherwise), keeps
business dates in order (`step_date_order`) and runs the guards the table names for that step, looked up in
the aggregate's `GUARDS` table. Only then does the command trigger its one event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

from casecore.authority import check_jurisdiction, check_role
from casecore.errors import InvalidTransition, PolicyViolation
from casecore.events import CaseAggregate, CaseEvent
from casecore.policy import PolicyBook
from workflows.machine import Workflow

#: a guard named in a procedure's table: (case, command, policies) → None, or raises the refusal
Guard = Callable[[Any, Any, PolicyBook], None]

#: what a trigger adds to its command's name: the decision (`verify_lead_meets`) or the party
#: (`sign_off_responsible`)
TRIGGER_SUFFIXES = ("_not_meets", "_meets", "_pass", "_return", "_reject", "_approve", "_responsible",
                    "_supervisor")


def command_of(trigger: str) -> str:
    """The command a procedure's trigger belongs to (`approve_county_return` → `approve_county`)."""
    for suffix in TRIGGER_SUFFIXES:
        if trigger.endswith(suffix):
            return trigger[: -len(suffix)]
    return trigger


def commands_of(triggers: Iterable[str]) -> list[str]:
    """The commands of some triggers, each once, in the triggers' order."""
    return list(dict.fromkeys(command_of(t) for t in triggers))


class Case(CaseAggregate):
    """The base of both aggregates. Subclasses say which machine is open (`_open_procedure`), how a refused
    trigger is explained (`_illegal_message`) and which functions implement the guards (`GUARDS`)."""

    if TYPE_CHECKING:  # declared for type checkers only: at run time these are plain attributes
        division_code: str
        step_on: date | None
        GUARDS: ClassVar[Mapping[str, Guard]]

    def check_actor(self, cmd: Any) -> None:
        """Whether the command's actor may act on this case at all (role and jurisdiction): the application asks
        before it answers a known `command_id`, so a key tells nobody that a case or a command exists."""
        self._check_actor(cmd)

    def _check_actor(self, cmd: Any) -> None:
        check_role(cmd.command, cmd.actor.role)
        check_jurisdiction(cmd.actor.unit, self.division_code)

    def _open_procedure(self, cmd: Any) -> tuple[Workflow, str]:
        """The machine of the procedure open now and its current step; raises InvalidTransition if none is."""
        raise NotImplementedError

    def _illegal_message(self, cmd: Any, trigger: str, workflow: Workflow, current: str) -> str:
        """Why `trigger` is not legal from `current`, and what is."""
        raise NotImplementedError

    def _advance(self, cmd: Any, policies: PolicyBook, trigger: str) -> str:
        """Ask the open procedure's machine whether `trigger` is legal now; run the guards its table names;
        return the step it leads to."""
        workflow, current = self._open_procedure(cmd)
        step = workflow.step(current, trigger)
        if step is None:
            raise InvalidTransition(self._illegal_message(cmd, trigger, workflow, current))
        if self.step_on is not None and cmd.on < self.step_on:
            raise PolicyViolation(
                f"办理日期 {cmd.on} 早于上一环节日期 {self.step_on}; 请核对日期", rule="step_date_order"
            )
        self._run_guards(step.guards, cmd, policies)
        return step.dest

    def _run_guards(self, guards: Iterable[str], cmd: Any, policies: PolicyBook) -> None:
        table = type(self).GUARDS
        for name in guards:
            table[name](self, cmd, policies)


@dataclass(frozen=True, kw_only=True)
class StepEvent(CaseEvent):
    """Base of the events that move a case along its procedure: the mutator moves the case (`move`), then
    records what the step adds (`apply_step`)."""

    def apply(self, agg: Any) -> None:
        self.move(agg)
        self.apply_step(agg)

    def move(self, agg: Any) -> None:
        """Where the step leaves the case."""

    def apply_step(self, agg: Any) -> None:
        """What the step records beside moving the case."""
