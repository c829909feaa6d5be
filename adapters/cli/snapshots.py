"""`casecore snapshots take|clear|status`: the snapshot table is derived data, kept by these commands; the
audit (`casecore audit verify`) checks every snapshot against the events."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from adapters.cli._common import DbOption, JsonOption, console, dumps, err_console, open_app

snapshots_app = typer.Typer(help="快照: 加快读取案件的派生数据, 可随时清除重建 (case snapshots).",
                            no_args_is_help=True)


def _open(db: str | None, read_only: bool = False):
    app = open_app(db, read_only=read_only)
    if app.snapshots is None:
        err_console.print("[red]快照未启用 (CASECORE_SNAPSHOT_INTERVAL=0); 设为正整数 (默认 20) 即启用[/red]")
        raise typer.Exit(2)
    return app


@snapshots_app.command()
def status(db: DbOption = None, json: JsonOption = False) -> None:
    """快照数量、间隔与当前折叠指纹 (how many snapshots, the interval, the running fold's fingerprint)."""
    from adapters.store import snapshot_store as snapshots

    app = _open(db, read_only=True)
    out = {"snapshots": snapshots.count(app), "streams": len(snapshots.snapshot_streams(app)),
           "interval": app.snapshot_interval, "fold": snapshots.FOLD}
    if json:
        print(dumps(out))
    else:
        console.print(f"快照 {out['snapshots']} 个 ({out['streams']} 个案件), 每 {out['interval']} 个事件一个; "
                      f"当前折叠指纹 {out['fold']}")


@snapshots_app.command()
def take(db: DbOption = None, json: JsonOption = False,
         batch: Annotated[int, typer.Option("--batch", min=1, help="每个事务写入的快照数")] = 500) -> None:
    """为每个达到间隔的案件按当前版本补拍快照 (after a release changed the fold, or after clear)."""
    from adapters.store import snapshot_store as snapshots

    app = _open(db)
    with Progress(TextColumn("[bold]拍快照"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True, disable=json) as bar:
        task = bar.add_task("", total=None)
        n = snapshots.take(app, lambda done, total: bar.update(task, completed=done, total=total), batch=batch)
    if json:
        print(dumps({"taken": n, "fold": snapshots.FOLD}))
    else:
        console.print(f"新拍快照 {n} 个 (折叠指纹 {snapshots.FOLD})")


@snapshots_app.command()
def clear(db: DbOption = None, json: JsonOption = False) -> None:
    """清除全部快照 (always safe: cases then load from their events)."""
    from adapters.store import snapshot_store as snapshots

    n = snapshots.clear(_open(db))
    if json:
        print(dumps({"cleared": n}))
    else:
        console.print(f"已清除快照 {n} 个; 案件将从事件重放读取, 之后按间隔重新拍快照")


def register(app: typer.Typer) -> None:
    app.add_typer(snapshots_app, name="snapshots")
