"""Snapshot housekeeping on either store: which streams have snapshots, checking them against the
hash-checked events (for the audit), dropping them, and taking them again (after a release changed the fold).
What a snapshot is and why it cannot change a decision: `casecore/snapshots.py`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresAggregateRecorder
from psycopg.sql import SQL, Identifier

from adapters.store.audit import Tampering
from casecore.application import CaseManagement
from casecore.snapshots import FOLD, CaseSnapshot, CurrentSnapshots, check_stream

Progress = Callable[[int, int], None]


def _store(app: CaseManagement) -> CurrentSnapshots:
    if not isinstance(app.snapshots, CurrentSnapshots):
        raise ValueError("快照未启用 (CASECORE_SNAPSHOT_INTERVAL=0); 设为正整数 (默认 20) 即启用")
    return app.snapshots


def _query(recorder: Any, sqlite: str, postgres: str, params: tuple = ()) -> list[tuple]:
    """Run one statement against a recorder's table (`{t}`: its table) and return plain tuples."""
    if isinstance(recorder, PostgresAggregateRecorder):
        statement = SQL(postgres).format(t=SQL("{}.{}").format(Identifier(recorder.datastore.schema),
                                                               Identifier(recorder.events_table_name)))
        with recorder.datastore.transaction(commit=True) as curs:
            curs.execute(statement, params)
            return [tuple(r.values()) for r in curs.fetchall()] if curs.description else []
    with recorder.datastore.transaction(commit=True) as c:
        c.execute(sqlite.format(t=recorder.events_table_name), params)
        return [tuple(r) for r in c.fetchall()]


def snapshot_streams(app: CaseManagement) -> list[str]:
    """Every stream that has at least one stored snapshot, in order."""
    sql = "SELECT DISTINCT originator_id FROM {t} ORDER BY 1"
    return [str(r[0]) for r in _query(_store(app).recorder, sql, sql.replace("originator_id", "originator_id::text"))]


def event_streams(app: CaseManagement) -> list[str]:
    """Every stream of the event log, in order."""
    sql = "SELECT DISTINCT originator_id FROM {t} ORDER BY 1"
    return [str(r[0]) for r in _query(app.recorder, sql, sql.replace("originator_id", "originator_id::text"))]


def count(app: CaseManagement) -> int:
    sql = "SELECT count(*) FROM {t}"
    return int(_query(_store(app).recorder, sql, sql)[0][0])


@dataclass
class SnapshotCheck:
    """What the audit found in the snapshot table."""

    streams: int = 0
    snapshots: int = 0
    findings: list[Tampering] = field(default_factory=list)
    #: snapshots that could not be checked because their stream's events cannot be decoded here (an
    #: encrypted store audited without `CASECORE_CIPHER_KEY`), and why
    unchecked: int = 0
    unchecked_reason: str | None = None


def verify(app: CaseManagement, progress: Progress | None = None) -> SnapshotCheck:
    """Replay every snapshotted stream from its stored events and compare each snapshot with the state at its
    version: `snapshot_altered` (content, version or type is not what the events fold into) and
    `snapshot_unreadable` (the row cannot be decoded as a snapshot)."""
    store = _store(app)
    transcoder = app.mapper.transcoder

    def normalise(state: dict[str, Any]) -> Any:
        return transcoder.decode(transcoder.encode(state))

    result = SnapshotCheck()
    streams = snapshot_streams(app)
    for i, sid in enumerate(streams, 1):
        if progress is not None:
            progress(i, len(streams))
        events, undecodable = _decoded(app, sid)
        if undecodable is not None and not events:
            # not one event of the stream decodes: the store is encrypted and the key is not set here
            result.unchecked += count_in(store, sid)
            result.unchecked_reason = (f"事件无法解码 ({undecodable}); 加密的事件库须设置 "
                                       "CASECORE_CIPHER_KEY 才能核验快照")
            continue
        snapshots, unreadable = store.stored(sid)
        result.streams += 1
        result.snapshots += len(snapshots) + len(unreadable)
        for version, reason in unreadable:
            result.findings.append(Tampering("snapshot_unreadable", f"快照无法读取: {reason}", sid, version))
        for m in check_stream(sid, snapshots, events, normalise):
            result.findings.append(Tampering("snapshot_altered", m.detail, m.stream, m.version))
    return result


def _decoded(app: CaseManagement, sid: str) -> tuple[list[Any], str | None]:
    """The stream's events decoded in order, up to the first that cannot be (an event altered behind the
    engine's back, already named by the hash check: the fold then stops there), and why that one failed."""
    events: list[Any] = []
    for stored in app.recorder.select_events(sid):
        try:
            events.append(app.mapper.to_domain_event(stored))
        except Exception as exc:
            return events, f"第 {stored.originator_version} 版: {type(exc).__name__}"
    return events, None


def count_in(store: CurrentSnapshots, stream: str) -> int:
    return len(store.recorder.select_events(stream))


def clear(app: CaseManagement) -> int:
    """Drop every snapshot (always safe: cases then load from their events). Returns how many were dropped."""
    n = count(app)
    sql = "DELETE FROM {t}"
    _query(_store(app).recorder, sql, sql)
    return n


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def take(app: CaseManagement, progress: Progress | None = None, batch: int = 500) -> int:
    """Snapshot every case of at least one interval's events that has no snapshot of the running fold at its
    current version (after a release changed the fold, or after `clear`). Returns how many were taken."""
    store = _store(app)
    interval = app.snapshot_interval
    streams = event_streams(app)
    taken = 0
    done = 0
    for chunk in _chunks(streams, batch):
        fresh = []
        for sid in chunk:
            aggregate = app.repository.get(sid)
            if aggregate.version < interval:
                continue
            newest = next(iter(store.get(sid, desc=True, limit=1)), None)
            if newest is None or newest.originator_version != aggregate.version:
                fresh.append(CaseSnapshot.take(aggregate))
        if fresh:
            try:
                store.put(fresh)
            except IntegrityError:   # a snapshot of another fold at the same version: replace it
                for s in fresh:
                    _query(store.recorder, "DELETE FROM {t} WHERE originator_id = ? AND originator_version = ?",
                           "DELETE FROM {t} WHERE originator_id = %s AND originator_version = %s",
                           (s.originator_id, s.originator_version))
                store.put(fresh)
            taken += len(fresh)
        done += len(chunk)
        if progress is not None:
            progress(done, len(streams))
    return taken


__all__ = ["FOLD", "SnapshotCheck", "clear", "count", "event_streams", "snapshot_streams", "take", "verify"]
