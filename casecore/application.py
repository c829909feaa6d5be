"""The application service: any contract command → get the aggregate → decide → save. Nothing else."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

import structlog
from eventsourcing.application import AggregateNotFoundError, Application, Repository
from eventsourcing.domain import BaseAggregate, DomainEventProtocol, MutableOrImmutableAggregate
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    PersistenceError,
    Recording,
    StoredEvent,
    Transcoding,
)
from eventsourcing.utils import Environment, strtobool

from casecore import commands as c
from casecore.case import Case
from casecore.errors import CaseError, Conflict, InvalidTransition, NotFound, ValidationFailed
from casecore.events import CaseEvent, recording_clock
from casecore.household import Household
from casecore.legacy import LegacyHousehold, Source, import_household
from casecore.legacy import Result as ImportResult
from casecore.limits import latest_business_date
from casecore.policy import PolicyBook, default_policies
from casecore.problem import Problem
from casecore.snapshots import DEFAULT_INTERVAL, CaseSnapshot, CurrentSnapshots, crossed
from casecore.streams import household_stream, problem_stream
from casecore.transcoding import DateAsISO, OrjsonTranscoder

log = structlog.get_logger("casecore")

def household_not_found(household_id: str) -> NotFound:
    """The one answer for a household that is not there (the HTTP service gives it for one outside the
    caller's reach too, so the two cannot be told apart)."""
    return NotFound(f"户 {household_id} 未建档; 请先登记户信息 (register_household)")


def problem_not_found(problem_id: str) -> NotFound:
    """The one answer for a problem that is not there (or outside the caller's reach)."""
    return NotFound(f"问题 {problem_id} 未登记; 请先登记问题 (raise_problem)")


def project(aggregate: Any, events: Iterable[Any]) -> Any:
    """Fold events into an aggregate: the library's projector without its per-event runtime check against a
    `typing.Protocol` (that check alone took about half the time of loading a 50-event household)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class CaseRepository(Repository[str]):
    """The library's repository, loading with `project` unless told otherwise."""

    def get(self, aggregate_id: str, *, version: int | None = None, projector_func: Any = project,
            fastforward_skipping: bool = False, deepcopy_from_cache: bool = True) -> Any:
        return super().get(aggregate_id, version=version, projector_func=projector_func,
                           fastforward_skipping=fastforward_skipping, deepcopy_from_cache=deepcopy_from_cache)


#: each command on a stored case → the aggregate method that decides it: (case, command, policies) → None
HANDLERS: dict[type[c.Command], Callable[[Any, Any, PolicyBook], None]] = {
    # households
    c.AddMember: Household.add_member,
    c.RemoveMember: Household.remove_member,
    c.AssessIncome: Household.assess_income,
    c.AssessGuarantees: Household.assess_guarantees,
    c.RecordLead: Household.record_lead,
    c.VerifyLead: Household.verify_lead,
    c.SignApplication: Household.sign_application,
    c.OpenPublicity: Household.open_publicity,
    c.RaiseObjection: Household.raise_objection,
    c.ResolveObjection: Household.resolve_objection,
    c.ClosePublicity: Household.close_publicity,
    c.ReviewTownship: Household.review_township,
    c.ApproveCounty: Household.approve_county,
    c.EnterSystem: Household.enter_system,
    c.AssignCadre: Household.assign_cadre,
    c.PlanMeasure: Household.plan_measure,
    c.ImplementMeasure: Household.implement_measure,
    c.EndMeasure: Household.end_measure,
    c.NominateExit: Household.nominate_exit,
    c.VerifyExit: Household.verify_exit,
    c.MarkRiskEliminated: Household.mark_risk_eliminated,
    c.RollbackElimination: Household.rollback_elimination,
    # problems
    c.AssignResponsibility: Problem.assign_responsibility,
    c.RecordRectification: Problem.record_rectification,
    c.ReportRectified: Problem.report_rectified,
    c.SignOff: Problem.sign_off,
    c.RejectSignOff: Problem.reject_sign_off,
    c.HoldAccountable: Problem.hold_accountable,
    c.ReopenProblem: Problem.reopen_problem,
}
@runtime_checkable
class StreamsReader(Protocol):
    """What the bulk path asks of a recorder beyond the library's `ApplicationRecorder`: every stored event of
    several streams with one query (`adapters.store.hashchain`'s recorders offer it; the in-memory one does not, and
    the bulk path then loads stream by stream)."""

    def select_streams(self, originator_ids: Sequence[str]) -> dict[str, list[StoredEvent]]: ...


class BulkCases:
    """The cases one bulk call (`CaseManagement.handle_many`) has loaded or decided, kept from one of its
    batches to the next: made when the call starts, dropped when it ends, at most `maxsize` of them (the
    least recently used go first). Nothing outside the call ever sees them.

    Why not the library's repository cache (`AGGREGATE_CACHE_MAXSIZE`): on every hit that cache either reads
    the stream's newer events first (fast-forward: one SELECT a case — the very cost `_prefetch`'s one query
    a batch removes) or trusts its copy for good (fast-forward off, for `handle` and every reader too), and it
    deep-copies the case on every hit. Here a copy is trusted only as far as it is safe: a command accepted
    on a copy another writer has moved on fails the batch's optimistic-concurrency check and is decided again
    by `handle`; a command refused on a copy from an earlier batch is decided again after the stream is read
    (`CaseManagement._run_batch`). A copy is changed only by this call's own decisions, so none is copied.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._cases: OrderedDict[str, Case] = OrderedDict()

    def __contains__(self, stream: str) -> bool:
        return stream in self._cases

    def __len__(self) -> int:
        return len(self._cases)

    def __getitem__(self, stream: str) -> Case:
        return self._cases[stream]

    def missing(self, streams: Iterable[str]) -> set[str]:
        """Those of `streams` that no copy is kept of."""
        return set(streams) - self._cases.keys()

    def keep(self, cases: Mapping[str, Case | None]) -> None:
        """Keep the cases of a saved batch as the newest copies (a stream not stored, None, is not kept)."""
        for stream, case in cases.items():
            if case is not None:
                self._cases[stream] = case
                self._cases.move_to_end(stream)
        while len(self._cases) > self.maxsize:
            self._cases.popitem(last=False)

    def forget(self, stream: str) -> None:
        self._cases.pop(stream, None)

    def clear(self) -> None:
        self._cases.clear()


@dataclass
class Outcome:
    """What became of one command: the event types it stored, or the refusal."""

    ok: bool
    events: list[str] = field(default_factory=list)
    error: CaseError | None = None
    duplicate: bool = False

    def as_dict(self, line: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {} if line is None else {"line": line}
        out["ok"] = self.ok
        if self.ok:
            out["events"] = self.events
            if self.duplicate:
                out["duplicate"] = True
        else:
            assert self.error is not None
            out["error"] = self.error.as_dict()
        return out


class CaseManagement(Application[str]):
    """One application and one event log for households and problems: the feed has one total order."""

    name = "casecore"
    #: events are written and read with orjson in the library's JSON format (casecore/transcoding.py): stores
    #: written by the library's JSON transcoder read the same, so no store needs converting
    env: ClassVar[dict[str, str]] = {"ORIGINATOR_ID_TYPE": "text",
                                     "TRANSCODER_TOPIC": f"{OrjsonTranscoder.__module__}:OrjsonTranscoder"}
    #: more transcodings (tests add freezegun's fake dates here)
    extra_transcodings: ClassVar[list[Transcoding]] = []
    #: snapshot a case every this many events (`CASECORE_SNAPSHOT_INTERVAL`; 0 = no snapshots)
    snapshot_interval: int = DEFAULT_INTERVAL
    #: at most this many cases kept between the batches of one bulk call (`BulkCases`)
    bulk_cases_maxsize: int = 20_000

    def __init__(self, env: dict[str, str] | None = None, policies: PolicyBook | None = None):
        super().__init__(env)
        self.policies = policies or default_policies()
        #: when set, `recorded_at` of a command's events is `recording_clock(cmd)` instead of the system clock
        #: (a simulated county, or paper records entered in order by a migration)
        self.recording_clock: Callable[[c.Command], datetime] | None = None
        #: the recorder, when it reads many streams at once (see `StreamsReader`)
        self.streams_reader: StreamsReader | None = (
            self.recorder if isinstance(self.recorder, StreamsReader) else None)

    def save(self, *objs: MutableOrImmutableAggregate[str] | DomainEventProtocol[str] | None,
             **kwargs: Any) -> list[Recording[str]]:
        """Store the pending events of the given cases in ONE transaction, then snapshot the cases whose
        versions crossed the interval. Only the library's public parts are used: each case's
        `collect_events()`, the event store's `put` (map every event, insert them all with the recorder) and
        the repository cache's `put` (as the library keeps it when it does not fast-forward).

        Not the library's own `save` (eventsourcing 9.5.6): its collection checks every object against two
        runtime `typing.Protocol`s, about 15 µs a case on the bulk path (hundreds of cases a batch), and its
        snapshots are taken by aggregate type from `snapshotting_intervals`, reloading the case, where here
        they are the state just decided on (`_snapshot_saved`). Its notification hooks (`notify`, `_notify`)
        do nothing unless overridden, and nothing here overrides them."""
        cases: dict[str, BaseAggregate[str]] = {}
        events: list[DomainEventProtocol[str]] = []
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                events.extend(obj.collect_events())
                cases[obj.id] = obj
            elif obj is not None:
                raise TypeError(f"CaseManagement.save stores cases (households, problems), not {type(obj).__name__}")
        recordings = self.events.put(events, **kwargs)
        cache = self.repository.cache
        if cache is not None and not self.repository.fastforward:
            for stream, case in cases.items():
                cache.put(stream, case)
        self._snapshot_saved(cases, events)
        return recordings

    # ------------------------------------------------------------------ snapshots (casecore/snapshots.py)

    def construct_env(self, name: str, env: Any = None) -> Environment:
        """Snapshots are on unless `CASECORE_SNAPSHOT_INTERVAL=0`."""
        environment = super().construct_env(name, env)
        interval = environment.get("CASECORE_SNAPSHOT_INTERVAL") or str(DEFAULT_INTERVAL)
        try:
            self.snapshot_interval = max(0, int(interval))
        except ValueError:
            raise ValueError(f"CASECORE_SNAPSHOT_INTERVAL 应为非负整数, 而不是 {interval!r}") from None
        environment["IS_SNAPSHOTTING_ENABLED"] = "y" if self.snapshot_interval else "n"
        return environment

    def construct_snapshot_store(self) -> CurrentSnapshots:
        return CurrentSnapshots(mapper=self.mapper, recorder=self.factory.aggregate_recorder(purpose="snapshots"))

    def _snapshot_saved(self, cases: Mapping[str, BaseAggregate[str]],
                        events: Sequence[DomainEventProtocol[str]]) -> None:
        """Snapshot, as it stands in memory, every saved case whose versions crossed a multiple of the
        interval: the state just decided on. The events are committed already; a snapshot that cannot be
        written is only logged (the case then loads from its events)."""
        if self.snapshots is None:
            return
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for e in events:
            first.setdefault(e.originator_id, e.originator_version)
            last[e.originator_id] = e.originator_version
        taken = [CaseSnapshot.take(a) for sid, a in cases.items()
                 if sid in first and a.version == last[sid] and crossed(first[sid], last[sid], self.snapshot_interval)]
        if not taken:
            return
        try:
            self.snapshots.put(taken)
        except PersistenceError as exc:
            log.warning("snapshot_not_written", streams=len(taken), error=f"{type(exc).__name__}: {exc}")

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())
        for t in self.extra_transcodings:
            transcoder.register(t)

    def construct_repository(self) -> CaseRepository:
        """The library's repository settings (aggregate cache and fast-forward from the environment)."""
        size = self.env.get(self.AGGREGATE_CACHE_MAXSIZE)
        return CaseRepository(
            self.events, snapshot_store=self.snapshots, cache_maxsize=int(size) if size else None,
            fastforward=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD, "y")),
            fastforward_skipping=strtobool(self.env.get(self.AGGREGATE_CACHE_FASTFORWARD_SKIPPING, "n")),
            deepcopy_from_cache=strtobool(self.env.get(self.DEEPCOPY_FROM_AGGREGATE_CACHE, "y")),
        )

    # ------------------------------------------------------------------ loading

    def get_household(self, household_id: str) -> Household:
        try:
            return self.repository.get(household_stream(household_id))
        except AggregateNotFoundError:
            raise household_not_found(household_id) from None

    def get_problem(self, problem_id: str) -> Any:
        try:
            return self.repository.get(problem_stream(problem_id))
        except AggregateNotFoundError:
            raise problem_not_found(problem_id) from None

    def _load(self, cmd: c.Command, touched: Mapping[str, Case | None] | None) -> Any:
        """The command's case: the batch's copy when it has one (None: known not to be stored), else read."""
        stream = self._stream(cmd)
        if touched is not None and stream in touched:
            return touched[stream]
        return self._stored(stream)

    def _stored(self, stream: str) -> Any:
        """The case stored in `stream`, or None when there is none."""
        try:
            return self.repository.get(stream)
        except AggregateNotFoundError:
            return None

    @staticmethod
    def _stream(cmd: c.Command) -> str:
        if isinstance(cmd, c.HouseholdCommand):
            return household_stream(cmd.household_id)
        return problem_stream(cmd.problem_id)  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ imported history

    def import_facts(self, households: Sequence[LegacyHousehold], source: Source) -> list[ImportResult]:
        """Store what another system's export says of some households (`casecore.legacy`): each household's
        facts that the store does not hold yet, all of them in ONE transaction. If another writer moved one of
        the households meanwhile, they are read and decided again once; a second conflict is refused."""
        for attempt in (1, 2):
            results = [import_household(self._stored(household_stream(h.household_id)), h, source, self.policies)
                       for h in households]
            changed = [r.household for r in results if r.household is not None]
            if changed:
                try:
                    self.save(*changed)
                except IntegrityError:
                    for aggregate in changed:
                        aggregate.collect_events()
                    if attempt == 2:
                        raise Conflict("导入的户已被他人同时修改; 请稍后重新导入") from None
                    continue
            return results
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ deciding

    def _decide(self, cmd: c.Command, aggregate: Any) -> tuple[Any, Outcome]:
        if self.recording_clock is None:
            return self._decide_now(cmd, aggregate)
        clock = self.recording_clock
        with recording_clock(lambda: clock(cmd)):
            return self._decide_now(cmd, aggregate)

    def _decide_now(self, cmd: c.Command, aggregate: Any) -> tuple[Any, Outcome]:
        """Run the command against the aggregate (created if the command creates one). Returns the
        aggregate holding the new pending event(s) and the outcome; raises CaseError on refusal."""
        recorded_on = CaseEvent.create_timestamp().date()
        ahead = self.policies.on(cmd.on).procedure.future_dated_days  # as the inspector's future_dated_act
        if cmd.on > latest_business_date(recorded_on, ahead):
            raise ValidationFailed(
                f"on: 办理日期 {cmd.on} 晚于录入日期 {recorded_on} 超过 {ahead} 天 (时区差); "
                "请填写实际办理的日期, 办理后再录入")
        if cmd.command_id and aggregate is not None and cmd.command_id in aggregate.command_ids:
            # who may act on this case is checked before the key is answered: no one learns whether a key exists
            aggregate.check_actor(cmd)
            stored = aggregate.command_ids[cmd.command_id]
            if stored is not None and stored != cmd.digest:
                raise Conflict(f"命令编号 {cmd.command_id} 已用于内容不同的另一条命令; 新命令请换用新的 command_id")
            return aggregate, Outcome(ok=True, events=[], duplicate=True)
        before = len(aggregate.pending_events) if aggregate is not None else 0
        if isinstance(cmd, c.RegisterHousehold):
            if aggregate is not None:
                raise InvalidTransition(f"户 {cmd.household_id} 已建档; 如需更改成员请用 add_member / remove_member")
            aggregate = Household.register(cmd, household_stream(cmd.household_id), self.policies)
        elif isinstance(cmd, c.RaiseProblem):
            if aggregate is not None:
                raise InvalidTransition(f"问题 {cmd.problem_id} 已登记")
            aggregate = Problem.raise_problem(cmd, problem_stream(cmd.problem_id))
        else:
            if aggregate is None:
                if isinstance(cmd, c.HouseholdCommand):
                    raise household_not_found(cmd.household_id)
                raise problem_not_found(cmd.problem_id)  # type: ignore[attr-defined]
            handler = HANDLERS.get(type(cmd))
            if handler is None:
                raise InvalidTransition(f"“{c.LABELS.get(cmd.command, cmd.command)}”不适用于此对象")
            handler(aggregate, cmd, self.policies)
        new = aggregate.pending_events[before:]
        return aggregate, Outcome(ok=True, events=[type(e).TYPE for e in new])

    def handle(self, cmd: c.Command) -> Outcome:
        """Decide and save one command in its own transaction."""
        started = time.perf_counter()
        stream = self._stream(cmd)
        aggregate = None
        try:
            aggregate, outcome = self._decide(cmd, self._load(cmd, None))
            if outcome.events:
                try:
                    self.save(aggregate)
                except IntegrityError:
                    raise Conflict("该户/问题已被他人同时修改; 请刷新后重试") from None
        except CaseError as err:
            if aggregate is not None:
                aggregate.collect_events()
            outcome = Outcome(ok=False, error=err)
        self._log(cmd, stream, outcome, started)
        return outcome

    def handle_many(self, cmds: Iterable[c.Command | CaseError], batch_size: int = 1000) -> Iterator[Outcome]:
        """The bulk path: decide commands in order, saving each batch's aggregates in ONE transaction.

        Each command still stands on its own: a refused command adds nothing (it triggers its event only
        after every check), and the others in the batch go in. Items that are already errors (bad input
        lines) are passed through as refusals. If a batch's transaction conflicts with another writer, the
        batch is decided again command by command. The cases are kept from one batch to the next
        (`BulkCases`) for this call only.
        """
        kept = BulkCases(self.bulk_cases_maxsize)
        batch: list[c.Command | CaseError] = []
        for item in cmds:
            batch.append(item)
            if len(batch) >= batch_size:
                yield from self._run_batch(batch, kept)
                batch = []
        if batch:
            yield from self._run_batch(batch, kept)

    def _prefetch(self, batch: list[c.Command | CaseError], kept: BulkCases,
                  touched: dict[str, Case | None]) -> None:
        """Load the batch's streams that are not cached with ONE query, when the recorder can (one select a
        stream — most of them new households, not found — was a tenth of the bulk path). A stream not stored
        is noted as None: the command that creates it creates it, any other is refused as not found."""
        reader = self.streams_reader
        if reader is None:
            return
        wanted = kept.missing(self._stream(i) for i in batch if not isinstance(i, CaseError))
        if not wanted:
            return
        stored = reader.select_streams(sorted(wanted))
        to_event = self.mapper.to_domain_event
        for stream in wanted:
            events = stored.get(stream)
            touched[stream] = project(None, map(to_event, events)) if events else None

    def _run_batch(self, batch: list[c.Command | CaseError], kept: BulkCases) -> list[Outcome]:
        touched: dict[str, Case | None] = {}
        self._prefetch(batch, kept, touched)
        # Cached copies from earlier batches that another writer (or `handle`) may have moved on since. A
        # command accepted on a stale copy is caught by the optimistic-concurrency check when the batch is
        # saved; a command refused on one would be refused wrongly, so a refusal re-reads the stream first.
        unverified: set[str] = set()
        outcomes: list[Outcome] = []
        for item in batch:
            if isinstance(item, CaseError):
                outcomes.append(Outcome(ok=False, error=item))
                continue
            started = time.perf_counter()
            stream = self._stream(item)
            if stream not in touched and stream in kept:
                touched[stream] = kept[stream]
                unverified.add(stream)
            try:
                aggregate, outcome = self._decide(item, self._load(item, touched))
                touched[stream] = aggregate
            except CaseError as err:
                outcome = Outcome(ok=False, error=err)
                if stream in unverified:
                    unverified.discard(stream)
                    copy = touched[stream]
                    assert copy is not None   # a kept copy is a stored case
                    if not copy.pending_events and self.recorder.select_events(stream, gt=copy.version, limit=1):
                        del touched[stream]
                        kept.forget(stream)
                        try:
                            aggregate, outcome = self._decide(item, self._load(item, touched))
                            touched[stream] = aggregate
                        except CaseError as again:
                            outcome = Outcome(ok=False, error=again)
            self._log(item, stream, outcome, started)
            outcomes.append(outcome)
        pending = [a for a in touched.values() if a is not None and a.pending_events]
        if pending:
            try:
                self.save(*pending)
            except IntegrityError:
                kept.clear()
                for a in pending:
                    a.collect_events()
                return [o if isinstance(i, CaseError) else self.handle(i) for i, o in zip(batch, outcomes, strict=True)]
        kept.keep(touched)
        return outcomes

    @staticmethod
    def _log(cmd: c.Command, stream: str, outcome: Outcome, started: float) -> None:
        log.info(
            "command",
            stream=stream,
            command=cmd.command,
            outcome="ok" if outcome.ok else outcome.error.code,  # type: ignore[union-attr]
            rule=None if outcome.ok else outcome.error.rule,  # type: ignore[union-attr]
            events=outcome.events,
            ms=round((time.perf_counter() - started) * 1000, 3),
        )
