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
from typing import Any

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


def publicity_to_county(states: type[Enum], *, after: Enum, county_guards: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The steps inclusion and exit share: the village's notice (村级评议及公示) with its objections, the
    township's review (乡级审核) and the county's decision (县级审批). `after` is the step the notice opens
    from, and where the township's return sends the case; `county_guards` are the county approval's own,
    checked after the four-eyes rule."""
    s: Any = states  # any procedure's enum with the shared steps' names
    return [
        {"trigger": "open_publicity", "source": after, "dest": s.IN_PUBLICITY},
        {"trigger": "raise_objection", "source": s.IN_PUBLICITY, "dest": s.IN_PUBLICITY},
        {"trigger": "resolve_objection", "source": s.IN_PUBLICITY, "dest": s.IN_PUBLICITY},
        {
            "trigger": "close_publicity",
            "source": s.IN_PUBLICITY,
            "dest": s.PUBLICITY_CLOSED,
            "guards": ["publicity_min_days", "objections_resolved"],
        },
        {"trigger": "review_township_pass", "source": s.PUBLICITY_CLOSED, "dest": s.TOWNSHIP_PASSED,
         "guards": ["four_eyes"]},
        {"trigger": "review_township_return", "source": s.PUBLICITY_CLOSED, "dest": after,
         "guards": ["four_eyes"]},
        {"trigger": "review_township_reject", "source": s.PUBLICITY_CLOSED, "dest": s.CLOSED,
         "guards": ["four_eyes"]},
        {"trigger": "approve_county_approve", "source": s.TOWNSHIP_PASSED, "dest": s.COUNTY_APPROVED,
         "guards": ["four_eyes", *county_guards]},
        {"trigger": "approve_county_return", "source": s.TOWNSHIP_PASSED, "dest": s.PUBLICITY_CLOSED,
         "guards": ["four_eyes"]},
        {"trigger": "approve_county_reject", "source": s.TOWNSHIP_PASSED, "dest": s.CLOSED,
         "guards": ["four_eyes"]},
    ]


def _value(s: object) -> str:
    return s.value if isinstance(s, Enum) else str(s)


def _values(s: object) -> list[str]:
    if isinstance(s, (list, tuple)):
        return [_value(x) for x in s]
    if s == "*":
        raise ValueError("list sources explicitly; '*' hides which steps are legal")
    return [_value(s)]
