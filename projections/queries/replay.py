"""The auditor's replay: one stream's whole history from the log itself, with both clocks.

Every event of the stream is listed with its business date (`on`), its recorded time (`recorded_at`),
actor, payload and the case's stage after it. Two cuts show the case at a moment:

- `as_of` (a business date): the case as it stood on that date — the events whose `on` is on or before it,
  folded in stream order, including entries recorded later but dated earlier (back-dated entries);
- `recorded_before` (a timestamp): the case as the system knew it then — the events recorded before it,
  whatever date they state.

Both may be given. Excluded events are listed with the reason. The replay folds the stored events with
the aggregates' own mutators; it is the one read that goes to the log rather than to a projection (its
point is the log).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from casecore import vocabulary
from casecore.application import CaseManagement
from casecore.errors import NotFound
from casecore.events import CaseEvent
from casecore.labels import event_label
from casecore.streams import HOUSEHOLD_PREFIX, PROBLEM_PREFIX
from casecore.values import Procedure, Stage
from casecore.views import household_state, problem_state


def load_event_classes() -> None:
    """Import every aggregate module, so every stored topic resolves to its class."""
    for module in ("casecore.household", "casecore.problem"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:  # an aggregate not yet in this build has no stored events either
            pass


@dataclass
class Entry:
    """One event of the history and the case right after it."""

    position: int | None
    version: int
    type: str
    topic: str
    label: str
    on: date
    recorded_at: datetime
    actor: dict[str, Any]
    command_id: str | None
    payload: dict[str, Any]
    after: dict[str, Any] = field(default_factory=dict)
    #: days between the business date and the day it was recorded (a large number: a late entry)
    lag_days: int = 0
    applied: bool = True
    problem: str | None = None


@dataclass
class Excluded:
    position: int | None
    version: int
    type: str
    label: str
    on: date
    recorded_at: datetime
    reason: str


@dataclass
class Replay:
    stream: str
    aggregate: str
    as_of: date | None
    recorded_before: datetime | None
    entries: list[Entry]
    excluded: list[Excluded]
    #: the case after the included events (None: it did not exist yet at the cut)
    state: dict[str, Any] | None
    after: dict[str, Any] = field(default_factory=dict)


def stream_of(target: str, problem: bool = False) -> str:
    """`H1` → `household/H1`; with `problem`, `P1` → `problem/P1`; a full stream id is kept."""
    if target.startswith((HOUSEHOLD_PREFIX, PROBLEM_PREFIX)):
        return target
    return (PROBLEM_PREFIX if problem else HOUSEHOLD_PREFIX) + target


def replay(app: CaseManagement, stream: str, as_of: date | None = None,
           recorded_before: datetime | None = None) -> Replay:
    """Fold one stream's stored events, keeping those inside both cuts."""
    load_event_classes()
    events: list[CaseEvent] = list(app.events.get(stream))  # type: ignore[arg-type]
    if not events:
        kind = "问题" if stream.startswith(PROBLEM_PREFIX) else "户"
        raise NotFound(f"{kind} {stream.split('/', 1)[-1]} 没有任何记录; 请核对编号")
    positions = _positions(app, stream)
    aggregate_kind = type(events[0]).AGGREGATE
    agg: Any = None
    entries: list[Entry] = []
    excluded: list[Excluded] = []
    for ev in events:
        cls = type(ev)
        label = event_label(cls.AGGREGATE, cls.TYPE)
        position = positions.get(ev.originator_version)
        reason = _excluded_because(ev, as_of, recorded_before)
        if reason is not None:
            excluded.append(Excluded(position, ev.originator_version, cls.TYPE, label, ev.on, ev.timestamp, reason))
            continue
        entry = Entry(position, ev.originator_version, cls.TYPE, cls.TOPIC, label, ev.on, ev.timestamp,
                      dict(ev.actor), ev.command_id, ev.payload(), lag_days=(ev.timestamp.date() - ev.on).days)
        try:
            if agg is None:
                agg = ev.mutate(None)
            else:
                # a cut may leave gaps in the versions: the fold follows the stream's order, not its numbering
                agg.version = ev.originator_version - 1
                agg = ev.mutate(agg)
        except Exception as exc:  # a cut can separate an event from the one it refers to
            entry.applied = False
            entry.problem = f"{type(exc).__name__}: {exc}"
        entry.after = summary(agg)
        entries.append(entry)
    return Replay(stream, aggregate_kind, as_of, recorded_before, entries, excluded,
                  None if agg is None else public(agg), summary(agg))


def _excluded_because(ev: CaseEvent, as_of: date | None, recorded_before: datetime | None) -> str | None:
    if as_of is not None and ev.on > as_of:
        return f"业务日期 {ev.on} 晚于 {as_of}"
    if recorded_before is not None and ev.timestamp >= recorded_before:
        return f"记录于 {ev.timestamp.isoformat(timespec='seconds')}, 不早于 {recorded_before.isoformat()}"
    return None


def _positions(app: CaseManagement, stream: str) -> dict[int, int]:
    lookup = getattr(app.recorder, "stream_positions", None)
    return lookup(stream) if lookup is not None else {}


def summary(agg: Any) -> dict[str, Any]:
    """Where the case stands: stage and procedure step (household) or rectification status (problem)."""
    if agg is None:
        return {}
    kind = _kind(agg)
    if kind == "household":
        out: dict[str, Any] = {"stage": agg.stage, "stage_label": Stage(agg.stage).label}
        if agg.procedure:
            out |= {"procedure": agg.procedure, "procedure_label": Procedure(agg.procedure).label,
                    "step": agg.step, "step_label": step_label(agg.procedure, agg.step)}
        return out
    if kind == "problem":
        return {"status": agg.status, "status_label": vocabulary.status_label(agg.status)}
    return {}


def step_label(procedure: str, step: str | None) -> str:
    return vocabulary.step_label(procedure, step or "")


def _kind(agg: Any) -> str:
    """`household` or `problem`, from the aggregate's topic (`cn.casecore.household`)."""
    return str(getattr(type(agg), "TOPIC", "")).rsplit(".", 1)[-1]


def public(agg: Any) -> dict[str, Any]:
    return household_state(agg) if _kind(agg) == "household" else problem_state(agg)
