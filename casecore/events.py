"""Event base classes: every event carries its business date, actor, command id and provenance.

Events are frozen, keyword-only dataclasses with explicit, versioned topics
(`cn.casecore.<aggregate>.<event>.v<version>`), so stored history survives classes moving. A mutator
(`apply`) only assigns; it never checks, computes a date, reads a clock or raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, TypeVar

from eventsourcing.domain import BaseAggregate, CanInitAggregate, CanMutateAggregate

E = TypeVar("E", bound=type)

#: the recording clock that stamps `recorded_at`; None means the system's UTC clock. The application sets it
#: while deciding a command when it was given one (a simulation, a migration replaying dated paper records).
_RECORDING_CLOCK: ContextVar[Callable[[], datetime] | None] = ContextVar("recording_clock", default=None)


@contextmanager
def recording_clock(clock: Callable[[], datetime] | None) -> Iterator[None]:
    """Stamp events triggered inside the block with `clock()` instead of the system clock."""
    token = _RECORDING_CLOCK.set(clock)
    try:
        yield
    finally:
        _RECORDING_CLOCK.reset(token)


class CaseAggregate(BaseAggregate[str]):
    """What households and problems share: one recorded time per event, and it never goes backwards in a
    stream. An event is stamped with the recording clock (`recording_clock`, else the system's UTC clock) or,
    if that is earlier, with the stream's last recorded time — a clock set back (another server's, a
    simulated county whose acts are entered out of order, a migration of dated paper records) records the
    act as known no earlier than the case's previous one. Nothing is refused for it: the act happened; the
    audit names a stored stream whose times go backwards (`time_backwards`)."""

    def trigger_event(self, event_class: type[CanMutateAggregate[str]], **kwargs: Any) -> None:
        if kwargs.get("timestamp") is None:
            kwargs["timestamp"] = not_before(event_class.create_timestamp(), self.modified_on)
        super().trigger_event(event_class, **kwargs)


def not_before(moment: datetime, last: datetime | None) -> datetime:
    """`moment`, or `last` when the stream was last recorded later (an untimed legacy `last` is ignored)."""
    if last is None or last.tzinfo is None or moment.tzinfo is None:
        return moment
    return last if last > moment else moment


#: every event class by its public type name, per aggregate: {"household": {"lead_recorded": cls}}
EVENT_TYPES: dict[str, dict[str, type[CaseEvent]]] = {}


@dataclass(frozen=True, kw_only=True)
class CaseEvent(CanMutateAggregate[str]):
    """Fields every stored event has beside its stream, version and `timestamp` (= recorded_at)."""

    originator_id: str
    originator_version: int
    timestamp: datetime
    on: date
    actor: dict[str, Any]
    command_id: str | None = None
    #: the digest of the command's content (`Command.digest`), bound to `command_id`; None on facts imported or
    #: stored before digests were kept
    command_digest: str | None = None
    note: str | None = None
    evidence: tuple[str, ...] | list[str] = ()
    #: where the fact came from when not a native command (e.g. "national_export:FILE")
    origin: str | None = None
    #: "day", or "month" for imported facts whose date has month precision
    date_precision: str = "day"

    AGGREGATE: ClassVar[str] = ""
    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    @staticmethod
    def create_timestamp() -> datetime:
        """recorded_at: the injected recording clock if one is set, else the system's UTC clock."""
        clock = _RECORDING_CLOCK.get()
        return clock() if clock is not None else datetime.now(UTC)

    def mutate(self, aggregate: Any) -> Any:
        agg = super().mutate(aggregate)
        assert agg is not None
        if self.command_id:
            agg.command_ids[self.command_id] = self.command_digest
        return agg

    @property
    def recorded_at(self) -> datetime:
        return self.timestamp

    def payload(self) -> dict[str, Any]:
        """The event's own fields (not the common ones)."""
        common = _COMMON
        return {k: v for k, v in vars(self).items() if k not in common}


@dataclass(frozen=True, kw_only=True)
class CaseCreated(CaseEvent, CanInitAggregate[str]):
    originator_topic: str


_COMMON = frozenset(f.name for f in fields(CaseCreated)) | {"class_version"}


def event(aggregate: str, name: str, version: int = 1) -> Callable[[E], E]:
    """Declare an event class: a frozen keyword-only dataclass with topic
    `cn.casecore.<aggregate>.<name>.v<version>`."""

    def wrap(cls: E) -> E:
        cls = dataclass(frozen=True, kw_only=True)(cls)  # type: ignore[assignment]
        cls.AGGREGATE = aggregate  # type: ignore[attr-defined]
        cls.TYPE = name  # type: ignore[attr-defined]
        cls.VERSION = version  # type: ignore[attr-defined]
        cls.TOPIC = f"cn.casecore.{aggregate}.{name}.v{version}"  # type: ignore[attr-defined]
        EVENT_TYPES.setdefault(aggregate, {})[name] = cls  # type: ignore[assignment]
        return cls

    return wrap


#: values stored as they are (exact types: an enum is a str subclass and takes the branch below)
_AS_IS = frozenset({str, int, float, bool, date, datetime, Decimal, type(None)})


def common(cmd: Any) -> dict[str, Any]:
    """The fields every event takes from its command (a `casecore.commands.Command`)."""
    return {
        "on": cmd.on,
        "actor": plain(cmd.actor),
        "command_id": cmd.command_id,
        "command_digest": cmd.digest if cmd.command_id else None,
        "note": cmd.note,
        "evidence": list(cmd.evidence),
    }


def plain(value: Any) -> Any:
    """Commands' values as event payload: enums become their strings, models become dicts; dates and
    Decimals stay typed (the transcoder knows them)."""
    if type(value) in _AS_IS:   # the common case first: one set lookup (this runs for every stored value)
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (str, int, float, bool, date, Decimal)) or value is None:
        return value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return plain(dump())
    raise TypeError(f"cannot store {type(value).__name__} in an event")
