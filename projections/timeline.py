"""Timeline (办理记录): a household's or a problem's whole history, and the stage index that as-of questions
("which households were monitored at the end of March?") read.

The history is the stream itself, read from the log (`stream_history`): the event table is keyed by stream
and version, so one indexed read gives every event of a case, decoded by the application's mapper, never
behind the log and never a copy of it. Each event becomes the row `row_of` makes — stream, version, global
position, type, business date, recorded time, actor and payload.

The projection's table keeps only what questions across households need: the events that move a case
(registration, a lead that opens an inclusion, procedure steps, exit nomination, rollback), with the stage
each led to, and every stream's first event (a household's registration, a problem's raising), with the
division it was registered in. Its rows are facts copied from the log; nothing is judged here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Protocol

import orjson
import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent
from sqlalchemy.engine import Connection

from casecore import limits as lim
from casecore.events import EVENT_TYPES, CaseCreated, CaseEvent
from casecore.household import Household  # noqa: F401  (declares the household events read below)
from casecore.household.state import ASSISTED_STAGES
from casecore.labels import event_label
from casecore.problem import Problem  # noqa: F401  (declares the problem events read below)
from casecore.values import Stage
from projections.in_database import EventSource, rebuild_timeline
from projections.runner import Projection, insert_rows

metadata = sa.MetaData()

timeline = sa.Table(
    "timeline_events",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("aggregate", sa.String(16), nullable=False),
    sa.Column("stream_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("on", sa.Date, nullable=False),
    sa.Column("stage", sa.String(24)),
    #: the division a stream's first event registered it in (a household's registration, a problem's raising)
    sa.Column("division_code", sa.String(12)),
    #: what the table keeps: the events that move a case, and each stream's first event
    sa.CheckConstraint("stage IS NOT NULL OR version = 1", name="ck_timeline_kept"),
)
sa.Index("ix_timeline_stream_on", timeline.c.stream_id, timeline.c.on)


def _carries_stage(cls: type[CaseEvent]) -> bool:
    return issubclass(cls, CaseCreated) or any(f.name == "stage" for f in fields(cls))


#: the topics of the events the table keeps rows of: a stream's first event, and every event that records a stage
KEPT_TOPICS: tuple[str, ...] = tuple(sorted(
    cls.TOPIC for types in EVENT_TYPES.values() for cls in types.values()  # type: ignore[attr-defined]
    if _carries_stage(cls)))


def _json(value: Any) -> str:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _default(o: Any) -> Any:
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return str(o)  # Decimal keeps its exact digits as a string


def _stage(event: CaseEvent, payload: dict[str, Any]) -> str | None:
    """The stage the event led its case to, None for an event that does not move it."""
    if type(event).TYPE == "registered":
        return Stage.NOT_MONITORED.value
    if type(event).TYPE == "lead_recorded" and not payload.get("opens_procedure"):
        return None  # a lead on a case already under way records the stage it found, it does not move it
    return payload.get("stage")


def row_of(event: CaseEvent, position: int) -> dict[str, Any]:
    """The history row of one stored event."""
    aggregate, _, stream_id = event.originator_id.partition("/")
    actor = event.actor or {}
    payload = event.payload()
    return {
        "position": position,
        "aggregate": type(event).AGGREGATE or aggregate,
        "stream_id": stream_id or aggregate,
        "version": event.originator_version,
        "type": type(event).TYPE,
        "event_version": type(event).VERSION,
        "on": event.on,
        "recorded_at": event.timestamp,
        "actor_id": actor.get("id"),
        "actor_name": actor.get("name"),
        "actor_role": actor.get("role"),
        "actor_unit": actor.get("unit"),
        "command_id": event.command_id,
        "origin": event.origin,
        "date_precision": event.date_precision,
        "stage": _stage(event, payload),
        "note": event.note,
        "evidence": _json(list(event.evidence or ())),
        "payload": _json(payload),
    }


def kept_row_of(event: CaseEvent, position: int) -> dict[str, Any] | None:
    """The table's row of one stored event, None for an event the table does not keep."""
    payload = event.payload()
    stage = _stage(event, payload)
    version = event.originator_version
    if stage is None and version != 1:
        return None
    aggregate, _, stream_id = event.originator_id.partition("/")
    division = payload.get("division_code") if version == 1 else None
    return {
        "position": position,
        "aggregate": type(event).AGGREGATE or aggregate,
        "stream_id": stream_id or aggregate,
        "version": version,
        "type": type(event).TYPE,
        "on": event.on,
        "stage": stage,
        "division_code": division or None,
    }


class TimelineProjection(Projection):
    """The stage-moving events and each stream's first event, one row each, keyed by global position."""

    name: ClassVar[str] = "timeline"
    label: ClassVar[str] = "办理时间线"
    metadata: ClassVar[sa.MetaData] = metadata
    deferred_indexes: ClassVar[tuple[str, ...]] = ("ix_timeline_stream_on",)
    topics: Sequence[str] = KEPT_TOPICS

    def fold(self, conn: Connection, events: list[CaseEvent]) -> None:  # pragma: no cover - needs positions
        raise TypeError("the timeline records global positions: fold it through the runner (fold_at)")

    def fold_at(self, conn: Connection, events: list[CaseEvent], positions: list[int]) -> None:
        rows = [r for e, p in zip(events, positions, strict=True) if (r := kept_row_of(e, p)) is not None]
        if not rows:
            return
        # a rebuild starts from empty tables and positions only grow: plain inserts, no read-modify-write
        insert_rows(conn, timeline, rows)

    def rebuild_in_database(self, conn: Connection, source: EventSource, head: int) -> int | None:
        return rebuild_timeline(conn, source, head, self.topics)


# ---------------------------------------------------------------------- a stream's history, from the log


class PositionedStreams(Protocol):
    """What the history asks of the event store: one stream's stored events in stream order, each with its
    global position, in one indexed read (`adapters.store.hashchain`'s recorders offer it)."""

    def select_stream_at(self, originator_id: str) -> list[tuple[int, StoredEvent]]: ...


def stream_history(app: Any, stream_id: str, aggregate: str = "household") -> list[dict[str, Any]]:
    """One stream's events in stream order, read from the log and decoded by `app`'s mapper (which opens
    encrypted or compressed events), payloads as JSON values, with their Chinese labels; [] for a stream
    that does not exist."""
    recorder: PositionedStreams = app.recorder
    to_event = app.mapper.to_domain_event
    return [public_row(row_of(to_event(stored), position))
            for position, stored in recorder.select_stream_at(f"{aggregate}/{stream_id}")]


def public_row(r: dict[str, Any]) -> dict[str, Any]:
    """A history row as readers get it: the actor as one object, evidence and payload as JSON values."""
    return {
        "position": r["position"],
        "stream_id": r["stream_id"],
        "aggregate": r["aggregate"],
        "version": r["version"],
        "type": r["type"],
        "event_version": r["event_version"],
        "label": event_label(r["aggregate"], r["type"]),
        "on": r["on"],
        "recorded_at": _utc(r["recorded_at"]),
        "actor": {"id": r["actor_id"], "name": r["actor_name"], "role": r["actor_role"], "unit": r["actor_unit"]},
        "command_id": r["command_id"],
        "origin": r["origin"],
        "date_precision": r["date_precision"],
        "stage": r["stage"],
        "note": r["note"],
        "evidence": orjson.loads(r["evidence"]),
        "payload": orjson.loads(r["payload"]),
    }


def _utc(moment: datetime) -> datetime:
    """Recorded times are UTC; SQLite gives them back without their zone."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


#: stages in which a household counts as monitored (监测对象): included, including an exit under way
MONITORED_STAGES = ASSISTED_STAGES


def stages_on(conn: Connection, day: date, stream_ids: Iterable[str] | None = None) -> dict[str, str]:
    """Each household's stage at the end of business date `day`: the stage of its last stage-moving event
    dated on or before `day` (ties in date broken by the order they were recorded). Set-based: one query."""
    t = timeline
    moving = sa.select(
        t.c.stream_id, t.c.stage,
        sa.func.row_number().over(partition_by=t.c.stream_id, order_by=(t.c.on.desc(), t.c.position.desc()))
        .label("rn"),
    ).where(t.c.aggregate == "household", t.c.stage.is_not(None), t.c.on <= day)
    if stream_ids is not None:
        moving = moving.where(t.c.stream_id.in_(list(stream_ids)))
    sub = moving.subquery()
    rows = conn.execute(sa.select(sub.c.stream_id, sub.c.stage).where(sub.c.rn == 1))
    return {r.stream_id: r.stage for r in rows}


def monitored_on(conn: Connection, day: date) -> list[str]:
    """The households monitored at the end of `day` (stage monitored or in exit), sorted."""
    return sorted(h for h, s in stages_on(conn, day).items() if s in MONITORED_STAGES)


def household_division(conn: Connection, household_id: str) -> str | None:
    """A registered household's division code (from its registration row), None when it is unknown."""
    return conn.execute(
        sa.select(timeline.c.division_code).where(timeline.c.aggregate == "household",
                                                  timeline.c.stream_id == household_id, timeline.c.version == 1)
    ).scalar()


def divisions_of(conn: Connection, streams: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The division codes of (aggregate, stream id) pairs, from each stream's first event (a household's
    registration, a problem's raising); streams without one are left out."""
    wanted = list(dict.fromkeys(streams))
    found: dict[tuple[str, str], str] = {}
    for i in range(0, len(wanted), 500):
        chunk = set(wanted[i : i + 500])
        ids = list({s for _, s in chunk})
        rows = conn.execute(
            sa.select(timeline.c.aggregate, timeline.c.stream_id, timeline.c.division_code)
            .where(timeline.c.stream_id.in_(ids), timeline.c.version == 1)
        )
        for aggregate, stream_id, division in rows:
            if (aggregate, stream_id) in chunk and division:
                found[(aggregate, stream_id)] = division
    return found
