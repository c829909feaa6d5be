"""Rebuilding projections in several processes (`casecore projections rebuild --jobs N`).

Projections are independent: each has its own tables and its own tracked position. A rebuild in one process
folds every event into every projection one after another on one core; here the projections are split into
N groups balanced by how long each one's fold takes (measured, `docs/benchmarks.md`), and each group is
rebuilt by its own process — reading the log once for its group, exactly as `ProjectionRunner.rebuild_many`
does in one process. The time becomes the slowest group's. Nothing else changes: each batch is still one
transaction with its position's compare-and-set, so an interrupted parallel rebuild continues (in parallel
or not) from each projection's last committed batch.

On SQLite the processes share the database's single write lock (each waits its turn for a batch's writes,
`SQLITE_LOCK_SECONDS`); the folding, which is most of the time, runs side by side.
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: relative cost of each projection's rebuild (tenths of the fold seconds of a SQLite rebuild at 20,000
#: households, `docs/benchmarks.md`; the timeline and the activity table are filled in SQL, the others stream by
#: stream)
WEIGHTS = {"casefacts": 47, "roster": 24, "timeline": 10, "activity": 7, "ledger": 3}
DEFAULT_WEIGHT = 40

Progress = Callable[[str, int, int], None]


def plan(names: list[str], jobs: int) -> list[list[str]]:
    """Split projections into at most `jobs` groups of about equal fold cost (heaviest first, each to the
    lightest group so far)."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(names))))]
    loads = [0] * len(groups)
    for name in sorted(names, key=lambda n: (-WEIGHTS.get(n, DEFAULT_WEIGHT), n)):
        i = loads.index(min(loads))
        groups[i].append(name)
        loads[i] += WEIGHTS.get(name, DEFAULT_WEIGHT)
    return [g for g in groups if g]


def _peak_rss_mb() -> float:
    """This process's own peak memory: the kernel's high-water mark of its address space (`VmHWM`, new at
    exec), not `ru_maxrss`, which a child inherits from the parent it was forked from."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _child(db: str, names: list[str], batch_size: int, restart: bool, out: Any) -> None:
    """One process: rebuild its group of projections, reporting progress and the result on `out`."""
    import gc

    from adapters.bootstrap import OpenSettings, wire
    from adapters.readside.readmodels import read_models
    from projections.registry import by_name

    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    app = None
    try:
        app = wire(OpenSettings(db)).app
        seconds: dict[str, float] = {}
        with read_models(app, [by_name(n) for n in names], batch_size=batch_size) as rm:
            for p in rm.runner.projections:
                p.fold_at = timed_fold(p.fold_at, seconds, p.name)  # type: ignore[method-assign]
                p.rebuild_in_database = timed_fold(p.rebuild_in_database, seconds,  # type: ignore[method-assign]
                                                   p.name)
            last = [0.0]

            def progress(p: Any, position: int, head: int) -> None:
                now = time.monotonic()
                if now - last[0] > 0.2 or position >= head:
                    last[0] = now
                    out.put(("progress", p.name, position, head))

            totals = rm.runner.rebuild_many(progress=progress, restart=restart)
        out.put(("done", names, totals, {k: round(v, 3) for k, v in seconds.items()}, _peak_rss_mb()))
    except BaseException as exc:  # reported to the parent, which names the group that failed
        out.put(("error", names, f"{type(exc).__name__}: {exc}"))
        raise SystemExit(1) from None
    finally:
        if app is not None:
            app.close()


def timed_fold(fold: Callable[..., Any], seconds: dict[str, float], name: str) -> Callable[..., Any]:
    """The fold (or a fill in SQL), adding the time it takes to `seconds[name]` (each projection's share of a
    rebuild; the bench times the rebuild in one process with it too)."""

    def timed(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return fold(*args)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
    return timed


class RebuildFailed(RuntimeError):
    pass


@dataclass
class ParallelRebuild:
    """What a parallel rebuild did: events folded and fold seconds per projection, each process's group and
    peak memory."""

    totals: dict[str, int] = field(default_factory=dict)
    fold_seconds: dict[str, float] = field(default_factory=dict)
    groups: list[list[str]] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)


def rebuild(db: str, names: list[str], jobs: int, batch_size: int = 10_000, restart: bool = False,
            progress: Progress | None = None) -> ParallelRebuild:
    """Rebuild `names` in up to `jobs` processes on the store at `db`; raises RebuildFailed naming the groups
    whose process failed (the others' work stands; a rerun continues every projection where it stopped)."""
    ctx = mp.get_context("spawn")   # a clean interpreter: no connections or threads inherited
    out = ctx.Queue()
    result = ParallelRebuild(groups=plan(names, jobs))
    procs = [ctx.Process(target=_child, args=(db, g, batch_size, restart, out), name="rebuild-" + "+".join(g),
                         daemon=True) for g in result.groups]
    for p in procs:
        p.start()
    reported: set[str] = set()
    errors: list[str] = []
    try:
        while len(reported) < len(procs):
            try:
                message = out.get(timeout=0.5)
            except queue_module.Empty:
                for p in procs:   # a process that died without a word (killed, out of memory)
                    if p.exitcode not in (None, 0) and p.name not in reported:
                        reported.add(p.name)
                        errors.append(f"{p.name}: 进程退出码 {p.exitcode}")
                continue
            kind = message[0]
            if kind == "progress" and progress is not None:
                progress(message[1], message[2], message[3])
            elif kind == "done":
                _, group, totals, seconds, rss = message
                reported.add("rebuild-" + "+".join(group))
                result.totals.update(totals)
                result.fold_seconds.update(seconds)
                result.peak_rss_mb.append(rss)
            elif kind == "error":
                reported.add("rebuild-" + "+".join(message[1]))
                errors.append(f"rebuild-{'+'.join(message[1])}: {message[2]}")
    finally:
        for p in procs:
            p.join(timeout=10 if not errors else 1)
            if p.is_alive():
                p.terminate()
                p.join()
    if errors:
        raise RebuildFailed("; ".join(errors))
    return result
