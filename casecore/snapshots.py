"""Snapshots: a case's state at one version, so that loading it reads a handful of rows, not its history.

A snapshot is derived data, never evidence. Three rules keep it from changing what the engine decides:

- **Taken from what was saved.** After a save, an aggregate whose version crossed a multiple of the interval
  (`CASECORE_SNAPSHOT_INTERVAL`, 20 events by default, 0 = none) is snapshotted as it stands in memory: the
  state the engine has just decided on and stored the events of.
- **Bound to the fold that made it.** Every snapshot carries the fingerprint of the code that folds events
  into state (the aggregates, their events and values, the transcoder). A snapshot whose fingerprint is not
  the running code's is ignored — the case is loaded from its events — so a release that changes a
  mutator can never load state that the new fold would not produce.
- **Checked against the events.** The snapshot table is outside the hash chain, so the audit replays every
  snapshotted stream from its hash-checked events and compares the state at each snapshot's version
  (`check_stream`); a snapshot that differs is reported as tampering. Snapshots can always be dropped and
  taken again (`casecore snapshots clear|take`): nothing is lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import structlog
from eventsourcing.domain import CanMutateAggregate, DomainEventProtocol
from eventsourcing.persistence import EventStore
from eventsourcing.utils import get_topic, register_topic, resolve_topic

#: the modules whose code decides what state a history folds into (and how it is encoded)
_FOLD_MODULES = ("case.py", "household/*.py", "problem.py", "events.py", "streams.py", "values.py",
                 "transcoding.py", "snapshots.py")
#: aggregate attributes that are not state: identity and version come from the snapshot's own columns
_NOT_STATE = frozenset({"_id", "_version", "_pending_events"})
DEFAULT_INTERVAL = 20

log = structlog.get_logger("casecore")


def _fingerprint() -> str:
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for pattern in _FOLD_MODULES:
        for path in sorted(here.glob(pattern)):
            data = path.read_bytes()
            digest.update(len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()[:16]


#: the running code's fold fingerprint (any change to a module in `_FOLD_MODULES` changes it)
FOLD = _fingerprint()


@dataclass(frozen=True, kw_only=True)
class CaseSnapshot(CanMutateAggregate[str]):
    """The state of one case (household or problem) at `originator_version`."""

    TOPIC: ClassVar[str] = "cn.casecore.snapshot.v1"

    originator_id: str
    originator_version: int
    timestamp: datetime
    topic: str
    state: dict[str, Any]
    fold: str

    @classmethod
    def take(cls, aggregate: Any) -> CaseSnapshot:
        return cls(originator_id=aggregate.id, originator_version=aggregate.version, timestamp=datetime.now(UTC),
                   topic=get_topic(type(aggregate)), state=state_of(aggregate), fold=FOLD)

    def mutate(self, _: Any) -> Any:
        """The aggregate as it was at this version."""
        cls = resolve_topic(self.topic)
        state = dict(self.state)
        state["_id"] = self.originator_id
        state["_version"] = self.originator_version
        state["_pending_events"] = []
        aggregate = object.__new__(cls)
        object.__setattr__(aggregate, "__dict__", state)
        return aggregate


register_topic(CaseSnapshot.TOPIC, CaseSnapshot)


def state_of(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k not in _NOT_STATE}


def crossed(first_version: int, last_version: int, interval: int) -> bool:
    """Whether saving versions `first_version`..`last_version` crossed a multiple of `interval`."""
    return interval > 0 and (first_version - 1) // interval < last_version // interval


class CurrentSnapshots(EventStore[str]):
    """The snapshot store as loading sees it: only readable snapshots taken by the running fold. A snapshot
    that cannot be decoded is passed over (the case loads from its events; the audit names it)."""

    def get(self, originator_id: str | UUID, *, gt: int | None = None, lte: int | None = None, desc: bool = False,
            limit: int | None = None) -> Iterator[DomainEventProtocol[str]]:
        for stored in self.recorder.select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit):
            try:
                snapshot = self.mapper.to_domain_event(stored)
            except Exception:  # any row that cannot be decoded is not a usable snapshot
                log.warning("snapshot_unreadable", stream=str(originator_id), version=stored.originator_version)
                continue
            if isinstance(snapshot, CaseSnapshot) and snapshot.fold == FOLD:
                yield snapshot

    def stored(self, originator_id: str) -> tuple[list[CaseSnapshot], list[tuple[int, str]]]:
        """Every stored snapshot of a stream, whatever fold took it (for the audit), and the versions of rows
        that cannot be read as a snapshot, with the reason."""
        good: list[CaseSnapshot] = []
        bad: list[tuple[int, str]] = []
        for stored in self.recorder.select_events(originator_id):
            try:
                snapshot = self.mapper.to_domain_event(stored)
            except Exception as exc:
                bad.append((stored.originator_version, f"{type(exc).__name__}: {exc}"[:200]))
                continue
            if isinstance(snapshot, CaseSnapshot):
                good.append(snapshot)
            else:
                bad.append((stored.originator_version, f"不是快照: {stored.topic}"))
        return good, bad


@dataclass(frozen=True)
class Mismatch:
    """A stored snapshot that is not what the stream's events fold into."""

    stream: str
    version: int
    detail: str


def check_stream(stream: str, snapshots: Sequence[CaseSnapshot], events: Iterable[Any],
                 normalise: Any) -> Iterator[Mismatch]:
    """Replay `events` (the stream's stored events, in order) and compare the state at each snapshot's version
    with the snapshot. `normalise(state)` puts a replayed state through the store's encoding, so that both
    sides compare as stored. A snapshot of another fold is never loaded; only its version and type are
    checked (the running code cannot say what the old fold produced)."""
    wanted = sorted(snapshots, key=lambda s: s.originator_version)
    aggregate: Any = None
    version = 0
    broken: str | None = None  # why the stream stopped folding (an event deleted or altered below a snapshot)
    it = iter(events)
    for snapshot in wanted:
        if broken is None:
            for event in it:
                try:
                    aggregate = event.mutate(aggregate)
                except Exception as exc:  # any stored history the fold refuses: the snapshot cannot stand on it
                    broken = _why_unfoldable(version, event, exc)
                    break
                version = event.originator_version
                if version >= snapshot.originator_version:
                    break
        if broken is not None:
            yield Mismatch(stream, snapshot.originator_version,
                           f"快照第 {snapshot.originator_version} 版已无事件支撑: {broken}")
            continue
        if version != snapshot.originator_version or aggregate is None:
            yield Mismatch(stream, snapshot.originator_version,
                           f"快照版本 {snapshot.originator_version} 在事件流中不存在 (事件流至版本 {version})")
            continue
        if snapshot.topic != get_topic(type(aggregate)):
            yield Mismatch(stream, snapshot.originator_version, f"快照类型 {snapshot.topic} 与事件流不符")
            continue
        replayed = normalise(state_of(aggregate))
        if snapshot.fold == FOLD and replayed != snapshot.state:
            keys = sorted(k for k in replayed.keys() | snapshot.state.keys()
                          if replayed.get(k) != snapshot.state.get(k))
            yield Mismatch(stream, snapshot.originator_version,
                           "快照内容与事件重放不符: " + ", ".join(keys))


def _why_unfoldable(version: int, event: Any, exc: Exception) -> str:
    """One sentence on where a stream's fold stopped."""
    found = getattr(event, "originator_version", None)
    if isinstance(found, int) and found != version + 1:
        missing = f"第 {version + 1} 版" if found == version + 2 else f"第 {version + 1}–{found - 1} 版"
        return f"事件流在第 {version} 版之后缺少{missing} (下一条为第 {found} 版)"
    return f"第 {found} 版事件无法折叠 ({type(exc).__name__})"
