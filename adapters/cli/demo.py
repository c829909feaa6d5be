"""`casecore demo`: a generated Guizhou county lives through its cases, stage by stage, on a fresh store."""

from __future__ import annotations

import random
import sqlite3
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.cli._common import console, err_console, open_app

DEFAULT_DEMO_DB = "./casecore-demo.db"
DEFAULT_OUTPUT = "./casecore-demo"


@dataclass
class StageReport:
    name: str
    title: str
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    commands: int = 0
    failure: str | None = None


def _replace_sqlite(path: Path) -> None:
    """Remove an earlier demo store — only if it is a SQLite file (never some other file by mistake)."""
    if path.exists():
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
                conn.execute("select count(*) from sqlite_master").fetchone()
        except sqlite3.DatabaseError:
            err_console.print(f"[red]{path} 不是 SQLite 事件库, 演示不会覆盖它; 请换一个 --db 路径[/red]")
            raise typer.Exit(2) from None
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def demo(
    households: Annotated[int, typer.Option("--households", "-n", min=10, help="生成的农户数")] = 1000,
    db: Annotated[str, typer.Option("--db", help="演示事件库 (SQLite 文件每次重新创建; PostgreSQL 须为空库)")]
    = DEFAULT_DEMO_DB,
    seed: Annotated[int, typer.Option(help="随机种子: 同一种子重现同一次演示")] = 2022,
    output: Annotated[Path, typer.Option("--output", help="台账、报表等文件的输出目录")] = Path(DEFAULT_OUTPUT),
) -> None:
    """演示: 生成一个贵州的县, 走完识别、帮扶、风险消除与整改 (a generated county through its cases)."""
    from adapters.demo import DemoContext, stages
    from adapters.storage import resolve_store

    store = resolve_store(db)
    if store.kind == "sqlite":
        path = Path(store.env["SQLITE_DBNAME"])
        replaced = path.exists()
        _replace_sqlite(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        console.print(f"事件库 [bold]{path}[/bold]: " + ("[yellow]已删除原有演示数据, 重新创建[/yellow]" if replaced
                                                       else "新建"))
    app = open_app(db)
    if store.kind != "sqlite" and app.recorder.max_notification_id():
        err_console.print(f"[red]{db} 中已有事件; 演示只在空库上运行, 不会覆盖已有数据[/red]")
        raise typer.Exit(2)
    output.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(app=app, rng=random.Random(seed), households=households, output_dir=output)
    found = stages()
    console.print(f"随机种子 {seed}, {households} 户, {len(found)} 个阶段: "
                  + " → ".join(s.title for s in found))
    reports: list[StageReport] = []
    started = time.perf_counter()
    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                        TextColumn("{task.completed} 条命令"), TimeElapsedColumn(), console=console)
    try:
        with progress:
            for stage in found:
                report = StageReport(stage.name, stage.title)
                task = progress.add_task(stage.title, total=None)
                ctx.progress = lambda n, task=task: progress.advance(task, n)
                t0 = time.perf_counter()
                try:
                    report.counts = dict(stage.run(ctx) or {})
                except Exception as exc:  # a failing stage must not hide the others' results
                    report.failure = f"{type(exc).__name__}: {exc}"
                    report.counts = {}
                    err_console.print(f"[red]阶段 {stage.title} ({stage.name}) 失败:[/red]\n"
                                      + "".join(traceback.format_exception(exc)[-6:]))
                report.seconds = time.perf_counter() - t0
                report.commands = int(progress.tasks[task].completed)
                progress.update(task, total=max(1, report.commands), completed=max(1, report.commands))
                reports.append(report)
    finally:
        app.close()
    print_summary(ctx, reports, store.url if store.kind != "sqlite" else store.env["SQLITE_DBNAME"], output,
                  time.perf_counter() - started)
    print_console_accounts(ctx, db, output)
    if any(r.failure for r in reports):
        raise typer.Exit(1)


def print_summary(ctx, reports: list[StageReport], db: str, output: Path, seconds: float) -> None:
    from casecore.errors import ERROR_LABELS, RULE_LABELS

    table = Table(title="演示结果 (各阶段)", show_lines=True)
    for col in ("阶段", "结果", "命令", "用时"):
        table.add_column(col)
    for r in reports:
        if r.failure:
            result = f"[red]失败: {r.failure}[/red]"
        else:
            result = "\n".join(f"{k}: {v}" for k, v in r.counts.items()) or "—"
        table.add_row(f"{r.title}\n[dim]{r.name}[/dim]", result, str(r.commands), f"{r.seconds:.1f} 秒")
    console.print(table)

    if ctx.refusals:
        refused = Table(title="引擎拒绝的命令 (按规则; 演示中预设的违规办理)")
        refused.add_column("规则", overflow="fold")
        refused.add_column("说明", overflow="fold")
        refused.add_column("次数", justify="right")
        refused.add_column("示例", overflow="fold", ratio=3)
        for key, n in ctx.refusals.most_common():
            label = RULE_LABELS.get(key) or ERROR_LABELS.get(key) or key
            refused.add_row(key, label, str(n), ctx.refusal_examples.get(key, ""))
        console.print(refused)

    files = [Path(p) for key in ("ledger_files", "report_files") for p in ctx.shared.get(key, [])]
    files += [p for p in sorted(output.glob("**/*")) if p.is_file() and p not in files]
    lines = [f"事件库: {db}", f"输出目录: {output.resolve()}"]
    lines += [f"  {p}" for p in files] or ["  (本次没有写出文件)"]
    lines += [f"业务日期已推进到 {ctx.shared.get('today', '—')}; 共用时 {seconds:.1f} 秒",
              f"查看一户: casecore show <户编号> --db {db}"]
    console.print(Panel("\n".join(lines), title="文件", expand=False))


def print_console_accounts(ctx, db: str, output: Path) -> None:
    """The console's demo accounts (one per role) and the command that serves the console on this store."""
    from adapters.console.demo_accounts import write_demo_accounts

    county = ctx.shared.get("county")
    if not county:
        return
    path, people = write_demo_accounts(output, county)
    table = Table(title=f"控制台演示账号 ({path})")
    for col in ("登录名", "密码", "姓名", "角色", "单位"):
        table.add_column(col)
    for p in people:
        table.add_row(p["login"], p["password"], p["name"], p["role"], p["unit"])
    console.print(table)
    console.print(f"打开控制台: casecore console --db {db} --accounts {path}  (然后在浏览器打开它打印的地址)")


def register(app: typer.Typer) -> None:
    app.command()(demo)
