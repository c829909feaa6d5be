"""A procedure as one shared `transitions` machine, asked only when a command is decided.

The table is data (states, transitions with triggers, sources, destinations and guard names). One
`Machine(model=None)` per procedure is built once and shared by every aggregate; answers are cached per
(state, trigger), so deciding costs a dict lookup and replay never touches the machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cached_property

from transitions import Machine


@dataclass(frozen=True)
class Step:
    """The outcome of asking the machine: where a trigger leads from a state, and the guards it needs."""

    dest: str
    guards: tuple[str, ...]


class Workflow:
    """One procedure's table of legal steps."""

    def __init__(self, name: str, states: type[Enum], initial: Enum, transitions: Sequence[Mapping]):
        self.name = name
        self.states = states
        self.initial = initial
        self.table = [dict(t) for t in transitions]
        self.machine = Machine(
            model=None,
            states=[s.value for s in states],
            initial=initial.value,
            transitions=[
                {
                    "trigger": t["trigger"],
                    "source": _values(t["source"]),
                    "dest": _value(t["dest"]),
                    "conditions": list(t.get("guards", ())),
                }
                for t in self.table
            ],
            auto_transitions=False,
            send_event=False,
        )
        self._cache: dict[tuple[str, str], Step | None] = {}

    def step(self, state: str, trigger: str) -> Step | None:
        """Where `trigger` leads from `state`, or None when the step is not legal there."""
        key = (state, trigger)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found: Step | None = None
        event = self.machine.events.get(trigger)
        if event is not None:
            for transition in event.transitions.get(state, ()):
                guards = tuple(str(c.func) for c in transition.conditions)
                found = Step(dest=str(transition.dest), guards=guards)
                break
        self._cache[key] = found
        return found

    def triggers(self, state: str) -> list[str]:
        """Triggers legal from `state` (for messages that tell a cadre what comes next)."""
        return sorted(self.machine.get_triggers(state))

    @cached_property
    def mermaid(self) -> str:
        """The table drawn as a Mermaid state diagram."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial.value}"]
        for t in self.table:
            guards = t.get("guards", ())
            label = t["trigger"] + (f" [{', '.join(guards)}]" if guards else "")
            for src in _values(t["source"]):
                lines.append(f"    {src} --> {_value(t['dest'])} : {label}")
        return "\n".join(lines) + "\n"


def _value(s: object) -> str:
    return s.value if isinstance(s, Enum) else str(s)


def _values(s: object) -> list[str]:
    if isinstance(s, (list, tuple)):
        return [_value(x) for x in s]
    if s == "*":
        raise ValueError("list sources explicitly; '*' hides which steps are legal")
    return [_value(s)]
