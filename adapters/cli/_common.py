"""Shared CLI plumbing: the --db option, logging set-up, JSON output."""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, TypeVar

import click
import orjson
import structlog
import typer
from rich.console import Console

DbOption = Annotated[
    str | None,
    typer.Option("--db", envvar="CASECORE_DB",
                 help="事件库: 文件路径、sqlite:///… 或 postgresql://… (默认 ./casecore.db)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="机器可读的 JSON 输出")]
CatchUpOption = Annotated[bool, typer.Option(
    "--catch-up/--no-catch-up",
    help="先把投影追到事件流末尾 (默认); --no-catch-up 只读现有投影表, 不写事件库 (审计方的证据副本)")]
T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


class _CurrentStderr:
    """Whatever `sys.stderr` is when a line is written (not when logging was configured): a process whose
    stderr is swapped — a test runner capturing output, an embedding service — keeps its logs."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(default: str = "warning") -> None:
    """Structured logs to stderr; level from CASECORE_LOG_LEVEL (default warning, `info` shows one line a
    command decided; the HTTP service defaults to info: one line a request)."""
    level = getattr(logging, os.environ.get("CASECORE_LOG_LEVEL", default).upper(), logging.WARNING)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o, default=str).decode()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),
        cache_logger_on_first_use=True,
    )


def dumps(obj: Any) -> str:
    return orjson.dumps(obj, default=_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _default(o: Any) -> Any:
    from decimal import Decimal

    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    return str(o)


def tune_gc() -> None:
    """Collect garbage less often in the CLI's commands (bulk work, and workers folding the same way): what is
    loaded at start-up is frozen out of the collector's sight, and a collection waits for 50,000 new
    containers instead of 700. Decoding and folding events build millions of small dicts that live on; with
    the defaults the collector took a fifth to a third of an ingest or a rebuild (docs/benchmarks.md)."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


#: the store the running command opened (named when it cannot be read or written: `store_failed`)
_opened: list[str] = []


def store_name(db: str | None) -> str:
    """The store as the operator named it, without a password."""
    import re

    name = db or os.environ.get("CASECORE_DB") or "./casecore.db"
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", name)


#: `casecore --chain-key-file FILE …`: the keyed chain's keys for this process (else CASECORE_CHAIN_KEY_FILE or
#: CASECORE_CHAIN_KEY, see adapters/hashchain.py)
CHAIN_KEY_FILE: list[str | None] = [None]


def open_app(db: str | None, *, create: bool = False, read_only: bool = False, chain_key_file: str | None = None):
    """The application on `--db`. Only writing commands pass `create=True` (apply, imports, demo): any other
    command pointed at a store that does not exist says so and exits 2, instead of creating an empty one and
    reporting on it. `read_only=True`: nothing is created or written (audit, replay, show, events)."""
    from adapters.hashchain import ChainKeyError
    from adapters.storage import StoreMissing, bootstrap

    configure_logging()
    tune_gc()
    _opened.append(store_name(db))
    try:
        app = bootstrap(db, create=create, read_only=read_only, chain_key_file=chain_key_file or CHAIN_KEY_FILE[0])
    except (StoreMissing, ChainKeyError) as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except Exception as exc:  # a store that cannot be opened is the user's to fix, not a traceback
        err_console.print(f"[red]无法打开事件库 {store_name(db)}: {exc}[/red]")
        raise typer.Exit(2) from None
    # closed when the command ends (its pool's connections too: a process running many commands, a test
    # runner or an embedding service, kept every one of them open)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(app.close)
    return app


def read_projection(db: str | None, what: str, read: Callable[[Any, Any], T]) -> T:
    """`--no-catch-up`: `read(connection, app)` over the projection tables as they stand, on a store opened
    read-only (nothing is created, folded or written). Tables never built are named, not a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from adapters.storage import read_only_engine

    app = open_app(db, read_only=True)
    engine = read_only_engine(app.store)
    try:
        with engine.connect() as conn:
            return read(conn, app)
    except SQLAlchemyError as exc:
        reason = type(getattr(exc, "orig", None) or exc).__name__
        err_console.print(f"[red]{what}投影表无法读取 ({reason}): 投影可能尚未建立; 去掉 --no-catch-up, "
                          "或先运行 casecore projections catch-up[/red]")
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
        app.close()


def store_failed(exc: BaseException) -> str | None:
    """The sentence for a store that could not be read or written while a command ran (locked, read-only,
    gone), or None when `exc` is not about the store."""
    from adapters.store_errors import store_failure

    return store_failure(exc, _opened[-1] if _opened else store_name(None))


def business_date(text: str | None, option: str) -> date:
    """A date option (`--as-of`, `--on`): today when not given; a date outside the contract's range
    (casecore/limits.py) or not a date is refused with exit status 2."""
    from casecore import limits as lim

    try:
        day = date.fromisoformat(text) if text else date.today()
    except ValueError:
        err_console.print(f"[red]{option} “{text}” 不是日期 (应为 YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None
    problem = lim.date_problem(day)
    if problem:
        err_console.print(f"[red]{option}: {problem}; 请给出此范围内的日期[/red]")
        raise typer.Exit(2)
    return day


def group(app: typer.Typer, name: str, help: str) -> typer.Typer:
    """The command group `casecore <name> …`, shared by every module that adds a command to it (created by
    the first, found by the others), so that e.g. `import national` and `import measures` live side by side."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    sub = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(sub, name=name)
    return sub


def unreadable(exc: Exception, json: bool) -> typer.Exit:
    """Report an input file that cannot be read at all (a `validation_error`); return the exit to raise."""
    if json:
        print(dumps({"ok": False, "error": {"code": "validation_error", "message": str(exc)}}))
    else:
        err_console.print(f"[red]{exc}[/red]")
    return typer.Exit(2)
