"""`casecore projections rebuild | catch-up | status`: the read models beside the event log."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from adapters.cli._common import DbOption, JsonOption, console, dumps, err_console, open_app

ProjectionOption = Annotated[str | None, typer.Option("--projection", "-p", help="只处理这个投影 (默认: 全部)")]
BatchOption = Annotated[int, typer.Option("--batch-size", min=1, help="每个事务折叠的事件数")]

projections_app = typer.Typer(name="projections", help="投影 (读模型): 重建、追赶、查看进度", no_args_is_help=True)


def _open(db: str | None, projection: str | None, batch_size: int = 2000):
    from adapters.usecases import open_read_models

    app = open_app(db)
    try:
        return open_read_models(app, projection, batch_size)
    except KeyError as exc:
        err_console.print(f"[red]{exc.args[0]}[/red]")
        raise typer.Exit(2) from None
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("事件位置"), TimeRemainingColumn(), console=err_console, transient=False)


def rebuild(projection: ProjectionOption = None, restart: Annotated[bool, typer.Option(
        "--restart", help="丢弃中断的重建, 从位置 0 重新开始")] = False, db: DbOption = None,
        batch_size: BatchOption = 10_000, jobs: Annotated[int, typer.Option(
            "--jobs", "-j", min=1, help="并行重建的进程数 (投影按折叠耗时分组, 每组一个进程)")] = 1) -> None:
    """从位置 0 重建投影, 读者不停 (blue/green rebuild; an interrupted rebuild continues unless --restart).

    Each projection is rebuilt into tables beside the live ones, which readers go on reading (and workers go on
    keeping current); when caught up with the log they replace the live ones in one transaction. Every chosen
    projection is rebuilt from ONE read of the log (each batch decoded once for all of them); with --jobs N
    the projections are split into N groups, each rebuilt so by its own process. A second rebuild of a
    projection while one runs is refused (exit 2)."""
    from adapters.usecases import RebuildStopped, rebuild_projections

    with _open(db, projection, batch_size) as rm:
        tasks: dict[str, TaskID] = {}
        with _progress() as bar:

            def started(name: str, position: int, head: int, resumed: bool) -> None:
                tasks[name] = bar.add_task(f"重建 {name}" + (" (续)" if resumed else ""), total=max(1, head))
                bar.update(tasks[name], completed=position)

            def advanced(name: str, position: int, head: int) -> None:
                bar.update(tasks[name], completed=position, total=max(1, head))

            try:
                totals = rebuild_projections(rm, started, advanced, restart=restart, jobs=jobs, batch_size=batch_size)
            except RebuildStopped as exc:
                err_console.print(f"[red]重建失败 (已提交的批次保留, 重新运行将从中断处继续): {exc.reason}[/red]"
                                  if exc.kept else f"[red]{exc.reason}[/red]")
                raise typer.Exit(2 if exc.running else 1) from None
        for name, (n, at) in totals.items():
            console.print(f"投影 {name}: 折叠 {n} 个事件, 已到位置 {at}")


def catch_up(projection: ProjectionOption = None, db: DbOption = None, batch_size: BatchOption = 2000) -> None:
    """折叠新事件 (fold the events after each projection's position)."""
    from adapters.usecases import catch_up_projections

    with _open(db, projection, batch_size) as rm:
        tasks: dict[str, TaskID] = {}
        with _progress() as bar:

            def started(name: str, position: int, head: int) -> None:
                tasks[name] = bar.add_task(f"追赶 {name}", total=max(1, head), completed=position)

            def advanced(name: str, position: int, head: int) -> None:
                bar.update(tasks[name], completed=position, total=max(1, head))

            totals = catch_up_projections(rm, started, advanced)
        for name, (n, at) in totals.items():
            console.print(f"投影 {name}: 新折叠 {n} 个事件, 已到位置 {at}")


def status(projection: ProjectionOption = None, db: DbOption = None, json: JsonOption = False) -> None:
    """各投影的位置与事件日志头 (each projection's position against the head of the log)."""
    with _open(db, projection) as rm:
        rows = rm.runner.status()
    if json:
        for s in rows:
            print(dumps({"projection": s.name, "position": s.position, "head": s.head, "behind": s.behind,
                         "rebuilding": s.rebuilding, "rebuild_position": s.rebuild_position,
                         "filled_through": s.filled_through, "stale": s.stale, "updated_at": s.updated_at}))
        return
    from rich.markup import escape

    from adapters.cli._common import Col, Listing, emit, styled
    from projections.registry import by_name

    table = Listing("投影进度", [Col("投影 (--projection)"), Col("位置", "num"), Col("日志头", "num"),
                                 Col("未折叠", "num"), Col("状态"), Col("更新时间 (UTC)", "date")])
    for s in rows:
        state = styled("[red]表结构已变, 追赶时将重建[/red]" if s.stale else
                       f"[yellow]重建中或中断可续 (新表逐户填充, 已到 {escape(s.filled_through)}; "
                       "读者仍读旧表)[/yellow]"
                       if s.filled_through is not None else
                       f"[yellow]重建中或中断可续 (新表已到位置 {s.rebuild_position}; 读者仍读旧表)[/yellow]"
                       if s.rebuild_position is not None else
                       "[yellow]重建中断, 可续[/yellow]" if s.rebuilding else
                       "[green]最新[/green]" if s.behind == 0 else "[cyan]待追赶[/cyan]")
        updated = s.updated_at.strftime("%Y-%m-%d %H:%M:%S") if s.updated_at else "—"
        label = by_name(s.name).label
        table.add_row(f"{label} ({s.name})" if label else s.name, str(s.position), str(s.head), str(s.behind),
                      state, updated)
    emit(table)


def run(projection: ProjectionOption = None, db: DbOption = None, batch_size: BatchOption = 2000,
        poll: Annotated[float, typer.Option("--poll", min=0.05, help="无新事件时的轮询间隔 (秒)")] = 0.5) -> None:
    """持续折叠新提交的事件, 直到 Ctrl-C 或 SIGTERM (a projection worker: keeps the tables current).

    One process per projection (`--projection NAME`) is how a province deploys it (docs/deployment.md):
    each batch commits with the projection's position, so a killed worker restarts where it stopped;
    SIGTERM/SIGINT finish the batch under way and exit 0. On PostgreSQL the worker wakes on the event
    store's NOTIFY as soon as events are committed."""
    from adapters.readside.worker import run_worker, stop_on_signals
    from projections.registry import all_projections, by_name

    stopping = threading.Event()
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    stop_on_signals(stopping)
    try:
        try:
            chosen = all_projections() if projection is None else [by_name(projection)]
        except KeyError as exc:
            err_console.print(f"[red]{exc.args[0]}[/red]")
            raise typer.Exit(2) from None
        app = open_app(db)
        names = ", ".join(p.name for p in chosen)
        err_console.print(f"持续折叠 {names}; 按 Ctrl-C 停止")
        try:
            stats = run_worker(app, chosen, poll=poll, batch_size=batch_size, stop=stopping,
                               on_batch=lambda name, n, at: err_console.print(f"{name}: 折叠 {n} 个新事件, 位置 {at}"))
        except ValueError as exc:   # e.g. an in-memory store cannot hold projection tables
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        finally:
            app.close()
        err_console.print(f"已停止; 共折叠 {stats.events} 个事件, 各投影位置已保存")
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def register(app: typer.Typer) -> None:
    projections_app.command("rebuild")(rebuild)
    projections_app.command("catch-up")(catch_up)
    projections_app.command("status")(status)
    projections_app.command("run")(run)
    app.add_typer(projections_app)
