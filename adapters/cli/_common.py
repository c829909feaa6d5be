"""Shared CLI plumbing: the --db option, logging set-up, JSON output, and the tables people read.

Tables (`listing`): identifiers (household, problem, person and division codes) are never cut; numbers are
right-aligned; the other columns fold. Where the terminal (or `COLUMNS`) is too narrow even for the ids, the
table is printed wider and the terminal wraps it rather than cutting an id. A listing longer than the
terminal goes through the pager when a person is reading (a TTY); `--limit N` prints only the first N rows.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import click
import orjson
import structlog
import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from adapters.bootstrap import Wiring

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
DivisionOption = Annotated[str | None, typer.Option("--division", help="区划代码前缀 (如县 6 位、乡镇 9 位)")]
LimitOption = Annotated[int | None, typer.Option("--limit", min=1, help="只列出前 N 行 (终端上较长的列表会分页显示)")]

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
    command decided; the HTTP service defaults to info: one line a request). A later call takes effect for
every logger, those that already wrote a line included."""
    level = getattr(logging, os.environ.get("CASECORE_LOG_LEVEL", default).upper(), logging.WARNING)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o, default=str).decode()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),
        # not cached: a cached logger keeps the level it first saw, and a process that configures again (a
        # later command in the same process, a service embedding the CLI) must get the new level
        cache_logger_on_first_use=False,
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
    from adapters.store.storage import without_password

    return without_password(db or os.environ.get("CASECORE_DB") or "./casecore.db")


#: `casecore --chain-key-file FILE …`: the keyed chain's keys for this process (else CASECORE_CHAIN_KEY_FILE or
#: CASECORE_CHAIN_KEY, see adapters/store/hashchain.py)
CHAIN_KEY_FILE: list[str | None] = [None]


def open_app(db: str | None, *, create: bool = False, read_only: bool = False, chain_key_file: str | None = None):
    """The application on `--db` (`open_wiring`)."""
    return open_wiring(db, create=create, read_only=read_only, chain_key_file=chain_key_file).app


def open_wiring(db: str | None, *, create: bool = False, read_only: bool = False,
                chain_key_file: str | None = None) -> Wiring:
    """The application on `--db`, with its store. Only writing commands pass `create=True` (apply, imports,
    demo): any other command pointed at a store that does not exist says so and exits 2, instead of creating
    an empty one and reporting on it. `read_only=True`: nothing is created or written (audit, replay, show,
    events)."""
    from adapters.bootstrap import OpenSettings, wire
    from adapters.store.hashchain import ChainKeyError
    from adapters.store.storage import StoreMissing

    configure_logging()
    tune_gc()
    _opened.append(store_name(db))
    try:
        wiring = wire(OpenSettings(db, create, read_only, chain_key_file or CHAIN_KEY_FILE[0]))
    except (StoreMissing, ChainKeyError) as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    except Exception as exc:  # a store that cannot be opened is the user's to fix, not a traceback
        err_console.print(f"[red]无法打开事件库 {store_name(db)}: {exc}[/red]")
        raise typer.Exit(2) from None
    # closed when the command ends (its pool's connections too: a process running many commands, a test
    # runner or an embedding service, kept every one of them open)
    app = wiring.app
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(app.close)
    from adapters.readside import places

    try:
        places.load(app)  # townships' and villages' names, for every place printed
    except Exception as exc:  # names are a courtesy: without them places print as codes
        logging.getLogger(__name__).debug("place names not loaded: %s", exc)
    return wiring


def read_projection(db: str | None, what: str, read: Callable[[Any, Any], T]) -> T:
    """`--no-catch-up`: `read(connection, app)` over the projection tables as they stand, on a store opened
    read-only (nothing is created, folded or written). Tables never built are named, not a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from adapters.store.storage import read_only_engine

    wiring = open_wiring(db, read_only=True)
    app = wiring.app
    engine = read_only_engine(wiring.store)
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
    from adapters.store.failures import store_failure

    return store_failure(exc, _opened[-1] if _opened else store_name(None))


def business_date(text: str | None, option: str) -> date:
    """A date option (`--as-of`, `--on`): today when not given; a date outside the contract's range
    (casecore/limits.py) or not a date is refused with exit status 2."""
    from casecore import limits as lim

    try:
        day = date.fromisoformat(text) if text else date.today()
    except ValueError:
        err_console.print(f"[red]{option} “{escape(text)}” 不是日期 (应为 YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None
    problem = lim.date_problem(day)
    if problem:
        err_console.print(f"[red]{option}: {problem}; 请给出此范围内的日期[/red]")
        raise typer.Exit(2)
    return day


def check_division(division: str | None) -> None:
    """`--division` is a code prefix: digits only (else the command says so and exits 2)."""
    if division is not None and not division.isdigit():
        err_console.print(f"[red]区划代码前缀应为数字: {escape(repr(division))}[/red]")
        raise typer.Exit(2)


def refused(err: Any, json: bool) -> typer.Exit:
    """A request the domain refused (a `CaseError`): its contract error as JSON, or its sentence; exit 1."""
    if json:
        print(dumps({"ok": False, "error": err.as_dict()}))
    else:
        err_console.print(f"[red]{err.message}[/red]")
    return typer.Exit(1)


def group(app: typer.Typer, name: str, help: str) -> typer.Typer:
    """The command group `casecore <name> …`, shared by every module that adds a command to it (created by
    the first, found by the others), so that e.g. `import national` and `import measures` live side by side."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    sub = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(sub, name=name)
    return sub


def importing(db: str | None, json: bool, unreadable_errors: type[Exception] | tuple[type[Exception], ...],
              work: Callable[[Any], T]) -> T:
    """`work(app)` on a store opened (created when missing) for an import, closed after; an input file that
    cannot be read at all (`unreadable_errors`) ends the command as `unreadable` says."""
    app = open_app(db, create=True)
    try:
        return work(app)
    except unreadable_errors as exc:
        raise unreadable(exc, json) from None
    finally:
        app.close()


def unreadable(exc: Exception, json: bool) -> typer.Exit:
    """Report an input file that cannot be read at all (a `validation_error`); return the exit to raise."""
    if json:
        print(dumps({"ok": False, "error": {"code": "validation_error", "message": str(exc)}}))
    else:
        err_console.print(f"[red]{exc}[/red]")
    return typer.Exit(2)


# --------------------------------------------------------------------------------------------- tables

Kind = Literal["id", "num", "date", "text"]


@dataclass(frozen=True)
class Col:
    """A table column: `id` (never cut), `num` (right-aligned, never cut), `date` (never cut) or `text` (folds)."""

    header: str
    kind: Kind = "text"


def _cell_width(text: str | Text) -> int:
    from rich.cells import cell_len

    plain = text.plain if isinstance(text, Text) else Text.from_markup(text).plain
    return max((cell_len(line) for line in plain.splitlines()), default=0)


def styled(markup: str) -> Text:
    """A table cell written with markup on purpose (a label in red). Every other cell of a `Listing` is
    printed as written: a note a cadre typed with `[/b]` or `[red]` in it is text, not markup."""
    return Text.from_markup(markup)


def plain(text: str) -> str:
    """Text to be placed inside markup (`styled`) and shown as written."""
    return escape(text)


class Listing:
    """A rich table whose id, number and date columns are as wide as their widest value (so nothing in them
    is cut) while text columns share the rest of the width and fold; `emit()` prints it wider when the
    terminal cannot hold the ids at all."""

    def __init__(self, title: str | None, columns: Sequence[Col], **table_options: Any):
        self.columns = list(columns)
        self.table = Table(title=title, **table_options)
        # the narrowest each column may be: a value's width for ids, dates and numbers (a number's header may
        # fold), 4 cells for text; and the widest it would like to be (its longest line)
        self.widths = [4 if c.kind == "num" else max(4, _cell_width(c.header)) if c.kind != "text" else 4
                       for c in self.columns]
        self.natural = [max(4, _cell_width(c.header)) for c in self.columns]
        for c in self.columns:
            self.table.add_column(c.header, justify="right" if c.kind == "num" else "left", overflow="fold",
                                  no_wrap=c.kind in ("id", "date"))
        self.rows = 0

    def add_row(self, *cells: Any) -> None:
        """One row: a `Text` (see `styled`) is shown with its style, anything else as written."""
        texts = [v if isinstance(v, Text) else Text("" if v is None else str(v)) for v in cells]
        for i, (c, t) in enumerate(zip(self.columns, texts)):
            w = _cell_width(t)
            self.natural[i] = max(self.natural[i], w)
            if c.kind != "text":
                self.widths[i] = max(self.widths[i], w)
        self.table.add_row(*texts)
        self.rows += 1

    def _overhead(self) -> int:
        edges = len(self.columns) + 1 if self.table.box else 0
        padding = sum(self.table.padding[1::2]) if self.table.padding else 0
        return len(self.columns) * padding + edges

    def min_width(self) -> int:
        """The narrowest this table prints with every id whole and text columns at least 4 cells."""
        return sum(self.widths) + self._overhead()

    def __rich_console__(self, console: Console, options: Any):
        room = options.max_width - self._overhead()
        widths = list(self.widths)
        if sum(self.natural) <= room:
            widths = list(self.natural)
        else:
            # share what the fixed columns leave fairly among the text columns: a column that needs less than an
            # equal share gets what it needs, the others split the rest
            open_ = sorted((i for i, c in enumerate(self.columns) if c.kind == "text"),
                           key=lambda i: self.natural[i])
            spare = room - sum(widths) + sum(widths[i] for i in open_)
            while open_:
                share = spare // len(open_)
                i = open_[0]
                if self.natural[i] <= share or len(open_) == 1:
                    widths[i] = max(4, min(self.natural[i], share if len(open_) > 1 else spare))
                    spare -= widths[i]
                    open_.pop(0)
                    continue
                for j in open_:
                    widths[j] = max(4, share)
                break
        for column, w in zip(self.table.columns, widths):
            column.width = w
        yield self.table


def _needed_width(out: Console, renderable: RenderableType) -> int:
    if isinstance(renderable, Listing):
        return renderable.min_width()
    return Measurement.get(out, out.options, renderable).minimum


@contextmanager
def paged(rows: int, out: Console | None = None):
    """Page what is printed inside when a person reads it on a terminal and it is longer than the screen."""
    out = out or console
    if out.is_terminal and rows + 8 > out.size.height:
        os.environ.setdefault("LESS", "-RFX")  # colours through `less`, and no pager for what fits after all
        with out.pager(styles=True):
            yield
    else:
        yield


def emit(*renderables: RenderableType | str, out: Console | None = None) -> None:
    """Print tables and lines; a table that would cut an id at this width is printed wider instead."""
    out = out or console
    for r in renderables:
        if isinstance(r, str):
            out.print(r)
            continue
        need = _needed_width(out, r)
        if need > out.width:
            # wider than the terminal, which wraps the long lines: no id is cut. The same console prints it
            # (a narrower `width` is all `print` allows), so a pager around it still catches the output.
            saved = out.width
            out.width = need
            try:
                out.print(r, crop=False)
            finally:
                out.width = saved
        else:
            out.print(r)


def limited(rows: Iterable[Any], limit: int | None) -> tuple[list[Any], int]:
    """The first `limit` rows (all without a limit) and how many there were in all."""
    rows = list(rows)
    return (rows if limit is None else rows[:limit]), len(rows)


def limit_note(shown: int, total: int) -> str | None:
    return f"[dim]只列出前 {shown} 行, 共 {total} 行 (--limit 调整; --json 输出全部)[/dim]" if shown < total else None


def place(code: str | None) -> str:
    """A division code as people say it: county, township and village names (the code where none is known)."""
    from adapters.readside.places import place_path

    return place_path(code) if code else ""


def person(name: str | None, unit: str | None = None) -> str:
    """A person as the terminal shows them: the name, and the unit as a place name when it is an area."""
    if not name:
        return ""
    if unit and unit.isdigit():
        return f"{name} ({place(unit)})"
    return f"{name} ({unit})" if unit and unit not in name else name
