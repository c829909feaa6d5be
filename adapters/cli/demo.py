"""`casecore demo`: a generated Guizhou county lives through its cases, stage by stage, on a fresh store."""

from __future__ import annotations

import os
import random
import sqlite3
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from adapters.cli._common import Col, Listing, console, emit, err_console, open_app
from adapters.demo import DemoContext
from adapters.demo.access import Access, county_tokens, write_tokens

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
    from adapters.demo import stages
    from adapters.store.storage import resolve_store

    store = resolve_store(db)
    if store.kind == "sqlite":
        path = Path(store.env["SQLITE_DBNAME"])
        replaced = path.exists()
        _replace_sqlite(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        console.print(f"事件库 [bold]{path}[/bold]: " + ("[yellow]已删除原有演示数据, 重新创建[/yellow]" if replaced
                                                       else "新建"))
    app = open_app(db, create=True)
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
    where = store.url if store.kind != "sqlite" else store.env["SQLITE_DBNAME"]
    closing: Closing | None = None
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
        if "county" in ctx.shared:
            closing = close_demo(ctx, where, output)
    finally:
        app.close()
    print_summary(ctx, reports, where, output, time.perf_counter() - started, closing)
    print_console_accounts(ctx, where, output)
    if any(r.failure for r in reports):
        raise typer.Exit(1)


@dataclass
class Closing:
    """What the demo leaves for its users: the figures' sources, the ways in, and households worth a look."""

    figures: list[tuple[str, int, str]] = field(default_factory=list)
    access: list[Access] = field(default_factory=list)
    tokens_file: Path | None = None
    #: household ids to show, by what they illustrate
    examples: dict[str, str] = field(default_factory=dict)
    township: str | None = None
    month: str | None = None


def close_demo(ctx: DemoContext, db: str, output: Path) -> Closing:
    """After the stages: store the county's place names, write the tokens file, find the figures and examples."""
    from adapters.demo.stage_20_assistance_exit import END as ASSISTANCE_END
    from adapters.readside import places
    from adapters.readside.readmodels import read_models
    from projections.registry import by_name
    from projections.roster import monitored_roster

    county = ctx.shared["county"]
    places.remember(ctx.app, places.names_of_county(county))
    closing = Closing()
    closing.access = county_tokens(county)
    closing.tokens_file = write_tokens(output / "tokens.json", closing.access)
    try:
        with read_models(ctx.app, [by_name("roster")]) as rm:
            rm.catch_up("roster")
            with rm.engine.connect() as conn:
                monitored = monitored_roster(conn, county["code"])
                everyone = monitored_roster(conn, county["code"], all_stages=True)
    except ValueError:  # an in-memory store has no read models: no figures to read back
        return closing
    native = set(ctx.shared.get("households", {}))
    own = [r for r in monitored if r["household_id"] in native]
    imported = [r for r in monitored if r["household_id"] not in native]
    closing.figures = [
        ("名单中的监测户 (casecore roster)", len(monitored), "监测中和风险消除程序中的户, 截至演示结束"),
        ("  其中本县办理", len(own), f"阶段一至四中本县纳入并仍在监测的户 (含督查阶段新纳入的); "
                                      f"阶段二的“期末监测户”是 {ASSISTANCE_END} 的数"),
        ("  其中国家系统导出导入", len(imported), "督查阶段从国家系统导出表导入、仍在监测的户"),
        ("全部建档户 (casecore roster --all)", len(everyone), "含未纳入、识别中和已消除风险的户"),
    ]
    with_measures = [r for r in own if r["measures"] and r["cadre_name"]]
    if with_measures:
        closing.examples["监测户 (有帮扶措施和责任人)"] = with_measures[0]["household_id"]
        closing.township = with_measures[0]["township_code"]
    eliminated = [r for r in everyone if r["household_id"] in native and r["eliminated_on"]]
    if eliminated:
        closing.examples["已消除风险户"] = eliminated[0]["household_id"]
    if imported:
        closing.examples["国家系统导入户"] = imported[0]["household_id"]
    included = sorted((r["included_on"] for r in own if r["included_on"]), reverse=True)
    if included:
        closing.month = included[len(included) // 2].strftime("%Y-%m")
    return closing


def _cli(args: str) -> str:
    """A command as the user can type it here: through ./dev when the demo was started by it."""
    launcher = "./dev casecore" if os.environ.get("CASECORE_LAUNCHER") == "dev" else "casecore"
    return f"{launcher} {args}"


def _db_arg(db: str) -> str:
    if "://" in db:
        return f"--db '{db}'"
    path = Path(db)
    try:
        shown = path.resolve().relative_to(Path.cwd())
    except ValueError:
        shown = path.resolve()
    return f"--db {shown}"


def print_summary(ctx, reports: list[StageReport], db: str, output: Path, seconds: float,
                  closing: Closing | None = None) -> None:
    from adapters.readside import places
    from casecore.errors import ERROR_LABELS, RULE_LABELS

    for n, r in enumerate(reports, start=1):
        title = f"阶段{n} {r.title} ({r.commands} 条命令, {r.seconds:.1f} 秒)"
        if r.failure:
            emit(f"[bold]{title}[/bold]", f"[red]失败: {r.failure}[/red]")
            continue
        t = Listing(None, [Col("项目"), Col("数量", "num")])
        for k, v in r.counts.items():
            t.add_row(k, str(v))
        emit(f"[bold]{title}[/bold]", t)

    if ctx.refusals:
        refused = Listing("引擎拒绝的命令 (按规则; 演示中预设的违规办理)",
                          [Col("规则"), Col("次数", "num"), Col("示例")])
        for key, n in ctx.refusals.most_common():
            label = RULE_LABELS.get(key) or ERROR_LABELS.get(key) or key
            refused.add_row(label, str(n), ctx.refusal_examples.get(key, ""))
        emit(refused)

    if closing is not None and closing.figures:
        f = Listing("监测户数从哪里来", [Col("数字"), Col("户数", "num"), Col("来源")])
        for label, value, source in closing.figures:
            f.add_row(label, str(value), source)
        emit(f)

    files = [Path(p) for key in ("ledger_files", "report_files") for p in ctx.shared.get(key, [])]
    files += [p for p in sorted(output.glob("**/*")) if p.is_file() and p not in files]
    lines = ["[bold]文件[/bold]", f"事件库: {db}", f"输出目录: {output.resolve()}"]
    lines += [f"  {p}" for p in files] or ["  (本次没有写出文件)"]
    lines += [f"业务日期已推进到 {ctx.shared.get('today', '—')}; 共用时 {seconds:.1f} 秒"]
    emit(*lines)

    if closing is None:
        return
    if closing.access:
        a = Listing(f"HTTP 服务的令牌 (已写入 {closing.tokens_file}; 每次运行演示重新生成)",
                    [Col("角色"), Col("办理人"), Col("范围"), Col("令牌", "id")])
        for acc in closing.access:
            a.add_row(acc.role.label, acc.actor["name"], places.place_path(acc.scope), acc.secret)
        emit(a)
        for acc in closing.access:
            console.print(f"  [bold]{acc.role.label}[/bold]可办理: {acc.may()}", overflow="fold")
    db_arg = _db_arg(db)
    hints = ["[bold]下一步 (可直接复制运行)[/bold]"]
    for what, hid in closing.examples.items():
        hints.append(f"  {what}:  {_cli(f'show {hid} {db_arg}')}")
    if closing.township:
        hints.append(f"  {places.place_name(closing.township)}的监测对象名单:  "
                     f"{_cli(f'roster --division {closing.township} {db_arg}')}")
    today = ctx.shared.get("today", "")
    hints.append(f"  双台账 (前 20 条):  {_cli(f'ledger --as-of {today} --limit 20 {db_arg}')}")
    if closing.month:
        hints.append(f"  月度调度:  {_cli(f'report monthly --month {closing.month} {db_arg}')}")
    hints.append(f"  督查规则:  {_cli(f'inspect --as-of {today} {db_arg}')}")
    first = next(iter(closing.examples.values()), None)
    if first:
        hints.append(f"  审计回放:  {_cli(f'replay {first} {db_arg}')}")
    if closing.tokens_file is not None:
        hints.append(f"  HTTP 服务:  {_cli(f'serve --tokens {_db_arg(str(closing.tokens_file))[5:]} {db_arg}')}")
    for line in hints:
        console.print(line, soft_wrap=True)


def print_console_accounts(ctx, db: str, output: Path) -> None:
    """The console's demo accounts (one per role) and the command that serves the console on this store."""
    from adapters.console.demo_accounts import write_demo_accounts
    from adapters.readside import places
    from casecore.values import Role

    county = ctx.shared.get("county")
    if not county:
        return
    path, people = write_demo_accounts(output, county)
    table = Listing(f"控制台演示账号 ({path})", [Col("登录名", "id"), Col("密码", "id"), Col("姓名"), Col("角色"),
                                                   Col("单位", "id")])
    for p in people:
        unit = places.place_path(p["unit"]) if p["unit"].isdigit() else p["unit"]
        table.add_row(p["login"], p["password"], p["name"], Role(p["role"]).label, unit)
    emit(table)
    console.print(f"打开控制台: {_cli(f'console {_db_arg(db)} --accounts {_db_arg(str(path))[5:]}')}  "
                  "(然后在浏览器打开它打印的地址)", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command()(demo)
