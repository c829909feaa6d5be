"""Forwarding the feed to NATS JetStream, exactly once as the stream sees it.

Each event is published as its CloudEvent (structured JSON) to `<prefix>.<aggregate>.<event>.v<version>`
with the headers `Nats-Msg-Id` (the event id: JetStream drops a second message with the same id inside
the stream's duplicate window) and `Casecore-Position`.

The publisher's position lives in the event database (`feed_positions`) and is advanced only after
JetStream has acknowledged every message up to it. A crash between an ack and saving the position leaves
the position behind, so the restart publishes those events again: JetStream recognises their ids and keeps
one copy. For a restart later than the duplicate window, the publisher first reads the last message in the
stream under its prefix and starts after that message's position: the stream holds a prefix of what was
sent (one connection, one order), so nothing is skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import nats
import orjson
import sqlalchemy as sa
import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from adapters.integration.feed import deployment_source, read_events, to_cloudevent
from casecore.application import CaseManagement

log = structlog.get_logger("casecore.nats")
metadata = sa.MetaData()
feed_positions = sa.Table(
    "feed_positions",
    metadata,
    sa.Column("consumer", sa.String(200), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)

POSITION_HEADER = "Casecore-Position"


class PositionStore:
    """A consumer's tracked position, in the event database."""

    def __init__(self, url: str, consumer: str):
        self.engine = sa.create_engine(url, hide_parameters=True)
        self.consumer = consumer
        with self.engine.begin() as conn:
            metadata.create_all(conn)

    def get(self) -> int:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(feed_positions.c.position)
                               .where(feed_positions.c.consumer == self.consumer)).first()
        return int(row[0]) if row else 0

    def set(self, position: int) -> None:
        values = {"position": position, "updated_at": datetime.now(UTC)}
        with self.engine.begin() as conn:
            done = conn.execute(feed_positions.update().where(feed_positions.c.consumer == self.consumer)
                                .values(**values))
            if done.rowcount == 0:
                conn.execute(feed_positions.insert().values(consumer=self.consumer, **values))

    def close(self) -> None:
        self.engine.dispose()


@dataclass
class PublishStats:
    published: int = 0
    duplicates: int = 0
    position: int = 0


def subject_for(prefix: str, event_type: str) -> str:
    """`cn.casecore.household.registered.v1` → `<prefix>.household.registered.v1`."""
    return f"{prefix}.{event_type.removeprefix('cn.casecore.')}"


async def ensure_stream(js: JetStreamContext, stream: str, prefix: str, duplicate_window: float) -> None:
    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(name=stream, subjects=[f"{prefix}.>"], duplicate_window=duplicate_window)


async def last_published_position(js: JetStreamContext, stream: str, prefix: str) -> int:
    """The position of the last message under `prefix` in the stream (0: none)."""
    try:
        msg = await js.get_last_msg(stream, f"{prefix}.>")
    except NotFoundError:
        return 0
    headers = msg.headers or {}
    return int(headers.get(POSITION_HEADER, 0))


async def _log_error(exc: Exception) -> None:
    log.warning("nats", error=f"{type(exc).__name__}: {exc}")


async def publish_nats(
    app: CaseManagement,
    positions: PositionStore,
    url: str,
    stream: str,
    prefix: str = "casecore",
    once: bool = False,
    entitled: bool = False,
    batch: int = 200,
    poll_seconds: float = 0.5,
    duplicate_window: float = 120.0,
    stop: Callable[[], bool] | None = None,
    on_batch: Callable[[PublishStats], None] | None = None,
) -> PublishStats:
    """Publish every event after the tracked position; with `once`, stop at the head of the log."""
    source = deployment_source()
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=3, error_cb=_log_error)
    stats = PublishStats()
    try:
        js = nc.jetstream(timeout=10)
        await ensure_stream(js, stream, prefix, duplicate_window)
        tracked = positions.get()
        position = max(tracked, await last_published_position(js, stream, prefix))
        if position > tracked:  # acknowledged before a crash, or the tracked position was lost
            positions.set(position)
        stats.position = position
        while not (stop and stop()):
            page = read_events(app, position, batch)
            if not page:
                if once:
                    break
                await asyncio.sleep(poll_seconds)
                continue
            acks = []
            for pos, event in page:
                ce = to_cloudevent(event, pos, source, entitled)
                headers = {"Nats-Msg-Id": ce["id"], POSITION_HEADER: str(pos),
                           "Content-Type": "application/cloudevents+json"}
                acks.append(await js.publish_async(subject_for(prefix, ce["type"]), orjson.dumps(ce),
                                                   stream=stream, headers=headers))
            done = 0
            try:
                for ack in acks:
                    result = await asyncio.wait_for(ack, timeout=30)
                    stats.duplicates += bool(result.duplicate)
                    stats.published += not result.duplicate
                    done += 1
            finally:
                if done:
                    position = page[done - 1][0]
                    positions.set(position)
                    stats.position = position
            if on_batch:
                on_batch(stats)
    finally:
        await nc.drain()
    return stats
