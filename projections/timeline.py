"""Timeline (办理记录): one row per stored event — stream, version, global position, type, business date,
recorded time, actor and payload — so that a household's history and as-of questions ("which households
were monitored at the end of March?") are read from a table instead of replaying the log per request.

The rows are facts copied from the log; nothing is judged here. `stage` is the case stage the event
led to, for the events that move a case (registration, a lead that opens an inclusion, procedure steps,
exit nomination, rollback); it is empty for the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Any, ClassVar

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from casecore import limits as lim
from casecore.events import CaseEvent
from casecore.labels import event_label
from casecore.values import Stage
from projections.in_database import EventSource, rebuild_timeline
from projections.runner import Projection, insert_rows
from projections.sealing import Sealed

metadata = sa.MetaData()

timeline = sa.Table(
    "timeline_events",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("aggregate", sa.String(16), nullable=False),
    sa.Column("stream_id", sa.String(lim.ID_MAX), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("event_version", sa.Integer, nullable=False),
    sa.Column("on", sa.Date, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor_id", sa.String(lim.ID_MAX)),
    sa.Column("actor_name", Sealed("text", 128)),  # wider than `lim.NAME_MAX`: names stored before the limits,
    sa.Column("actor_role", sa.String(16)),
    sa.Column("actor_unit", sa.String(lim.UNIT_MAX)),
    sa.Column("command_id", sa.String(lim.STORED_COMMAND_ID_MAX)),
    sa.Column("origin", sa.String(lim.ORIGIN_MAX)),
    sa.Column("date_precision", sa.String(8), nullable=False),
    sa.Column("stage", sa.String(24)),
    sa.Column("note", Sealed()),
    sa.Column("evidence", Sealed(), nullable=False),
    sa.Column("payload", Sealed(), nullable=False),
    sa.UniqueConstraint("aggregate", "stream_id", "version", name="uq_timeline_stream_version"),
)
sa.Index("ix_timeline_stream_on", timeline.c.stream_id, timeline.c.on)
sa.Index("ix_timeline_stage_on", timeline.c.stage, timeline.c.on)

def _json(value: Any) -> str:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _default(o: Any) -> Any:
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return str(o)  # Decimal keeps its exact digits as a string


def row_of(event: CaseEvent, position: int) -> dict[str, Any]:
    """The timeline row of one stored event."""
    aggregate, _, stream_id = event.originator_id.partition("/")
    actor = event.actor or {}
    payload = event.payload()
    stage = payload.get("stage")
    if type(event).TYPE == "registered":
        stage = Stage.NOT_MONITORED.value
    elif type(event).TYPE == "lead_recorded" and not payload.get("opens_procedure"):
        stage = None  # a lead on a case already under way records the stage it found, it does not move it
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
        "stage": stage,
        "note": event.note,
        "evidence": _json(list(event.evidence or ())),
        "payload": _json(payload),
    }


class TimelineProjection(Projection):
    """Every event, one row each, keyed by its global position."""

    name: ClassVar[str] = "timeline"
    label: ClassVar[str] = "办理时间线"
    metadata: ClassVar[sa.MetaData] = metadata
    deferred_indexes: ClassVar[tuple[str, ...]] = ("ix_timeline_stream_on", "ix_timeline_stage_on")

    def fold(self, conn: Connection, events: list[CaseEvent]) -> None:  # pragma: no cover - needs positions
        raise TypeError("the timeline records global positions: fold it through the runner (fold_at)")

    def fold_at(self, conn: Connection, events: list[CaseEvent], positions: list[int]) -> None:
        rows = [row_of(e, p) for e, p in zip(events, positions, strict=True)]
        if not rows:
            return
        # a rebuild starts from empty tables and positions only grow: plain inserts, no read-modify-write
        insert_rows(conn, timeline, rows)

    def rebuild_in_database(self, conn: Connection, source: EventSource, head: int) -> int | None:
        return rebuild_timeline(conn, source, head)


# ---------------------------------------------------------------------- queries


def stream_events(conn: Connection, stream_id: str, aggregate: str = "household") -> list[dict[str, Any]]:
    """One stream's events in stream order, payloads decoded, with their Chinese labels."""
    rows = conn.execute(
        sa.select(timeline).where(timeline.c.aggregate == aggregate, timeline.c.stream_id == stream_id)
        .order_by(timeline.c.version)
    ).mappings()
    return [_public(r) for r in rows]


def _public(r: Any) -> dict[str, Any]:
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
MONITORED_STAGES = (Stage.MONITORED.value, Stage.IN_EXIT.value)


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
    payload = conn.execute(
        sa.select(timeline.c.payload).where(timeline.c.aggregate == "household",
                                            timeline.c.stream_id == household_id, timeline.c.type == "registered")
    ).scalar()
    return None if payload is None else orjson.loads(payload).get("division_code")


def divisions_of(conn: Connection, streams: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The division codes of (aggregate, stream id) pairs, from each stream's first event (a household's
    registration, a problem's raising); streams without one are left out."""
    wanted = list(dict.fromkeys(streams))
    found: dict[tuple[str, str], str] = {}
    for i in range(0, len(wanted), 500):
        chunk = set(wanted[i : i + 500])
        ids = list({s for _, s in chunk})
        rows = conn.execute(
            sa.select(timeline.c.aggregate, timeline.c.stream_id, timeline.c.payload)
            .where(timeline.c.stream_id.in_(ids), timeline.c.version == 1)
        )
        for aggregate, stream_id, payload in rows:
            if (aggregate, stream_id) in chunk:
                division = orjson.loads(payload).get("division_code")
                if division:
                    found[(aggregate, stream_id)] = division
    return found
