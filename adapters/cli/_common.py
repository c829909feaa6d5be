"""Shared CLI plumbing: the --db option, logging set-up, JSON output."""

from __future__ import annotations

import gc
import logging
import os
import sys
from typing import Annotated, Any

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


def open_app(db: str | None):
    from adapters.storage import bootstrap

    configure_logging()
    tune_gc()
    try:
        return bootstrap(db)
    except Exception as exc:  # a store that cannot be opened is the user's to fix, not a traceback
        err_console.print(f"[red]无法打开事件库 {db or os.environ.get('CASECORE_DB') or './casecore.db'}: {exc}[/red]")
        raise typer.Exit(2) from None


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
