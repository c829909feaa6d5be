"""`casecore bench`: the engine against the bare database (benchmarks/bench.py), one JSON object with --json."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from adapters.cli._common import JsonOption, configure_logging, console, err_console, tune_gc

LABELS = {
    "floor_write_eps": "原始驱动写入 (事件/秒)",
    "ingest_eps": "批量办理入库 (事件/秒)",
    "ingest_ratio": "入库 / 原始写入",
    "floor_read_eps": "原始读取并解码 (事件/秒)",
    "rebuild_eps": "全部投影重建 (事件/秒)",
    "rebuild_ratio": "重建 / 原始读取",
    "rebuild_copy_eps": "时间线与活动表重建 (事件/秒)",
    "rebuild_ratio_copy": "时间线与活动表重建 / 原始读取",
    "replay_p50_ms": "载入约50个事件的户 p50 (毫秒)",
    "replay_p99_ms": "载入约50个事件的户 p99 (毫秒)",
    "inspect_households_per_s": "全部督查规则 (户/秒)",
    "peak_rss_mb": "进程内存峰值 (MB)",
}


def bench(
    households: Annotated[int, typer.Option("--households", "-n", min=10, help="合成省份的户数")] = 20_000,
    db: Annotated[str | None, typer.Option(
        "--db", help="新的 SQLite 文件或 postgresql://… (在其中新建 schema); 默认临时文件")] = None,
    json: JsonOption = False,
    seed: Annotated[int, typer.Option(help="随机种子")] = 7,
    batch: Annotated[int, typer.Option(help="批量路径每个事务的命令数 (同 casecore apply)")] = 500,
    rebuild_batch: Annotated[int, typer.Option(help="重建时每个事务折叠的事件数")] = 10_000,
    rebuild_jobs: Annotated[int, typer.Option(
        help="另测一次多进程重建 (projections rebuild --jobs N) 的速度; 1 = 不测", min=1)] = 1,
    keep: Annotated[bool, typer.Option("--keep", help="保留基准库 (默认用完即删)")] = False,
    workdir: Annotated[Path | None, typer.Option("--workdir", help="临时 SQLite 文件所在目录")] = None,
) -> None:
    """基准测试: 合成省份, 与原始数据库驱动对比 (the engine against the raw floor, in one run)."""
    kit = _kit()
    as_json, meets, run = kit.as_json, kit.meets, kit.run
    configure_logging()
    tune_gc()   # as every other casecore command does

    def progress(phase: str, done: int, total: int) -> None:
        if json or (total and done < total):
            return
        err_console.print(f"[dim]{phase}: {done}{f' / {total}' if total else ''}[/dim]")

    try:
        result = run(households, db, seed=seed, batch_size=batch, keep=keep, workdir=workdir,
                     rebuild_batch=rebuild_batch, rebuild_jobs=rebuild_jobs, progress=progress)
    except FileExistsError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if json:
        print(as_json(result))
        return
    table = Table(title=f"基准: {result['households']:,} 户, {result['events']:,} 个事件, {result['store']}")
    for col in ("指标", "key", "结果", "目标"):
        table.add_column(col)
    TARGETS = kit.TARGETS

    for key, label in LABELS.items():
        value = result.get(key)
        ok = meets(key, value)
        target = TARGETS.get(key)
        mark = "" if ok is None else ("[green]✓[/green] " if ok else "[red]✗[/red] ")
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        table.add_row(label, key, mark + shown, f"{target[0]} {target[1]:,}" if target else "")
    console.print(table)
    console.print(f"重建 {result['rebuild_seconds']} 秒, 其中各投影折叠 (秒): "
                  + ", ".join(f"{k} {v}" for k, v in result["fold_seconds"].items()))
    console.print("各阶段内存峰值 (MB): " + ", ".join(f"{k} {v}" for k, v in result["phase_rss_mb"].items()))
    if result["refused"]:
        console.print(f"[yellow]被拒命令 {result['refused']} 条: {result['refusals']}[/yellow]")


def _kit() -> Any:
    """The benchmark kit: it ships with the source, not in the installed package, so the command runs from a
    checkout (the current directory, or anywhere the kit is importable)."""
    root = Path.cwd()
    if (root / "benchmarks" / "__init__.py").is_file() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        from benchmarks import bench as kit
    except ImportError:
        err_console.print("[red]基准测试工具随源码提供 (benchmarks/), 不在安装包内: 请在源码目录中运行[/red]")
        raise typer.Exit(2) from None
    return kit


def register(app: typer.Typer) -> None:
    app.command()(bench)
