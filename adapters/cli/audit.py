"""`casecore audit verify` and `casecore audit checkpoint`: tamper evidence for auditors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from adapters.cli._common import DbOption, JsonOption, console, dumps, err_console, open_app

audit_app = typer.Typer(help="审计: 核验事件库未被篡改、生成检查点 (tamper evidence).", no_args_is_help=True)


def _recorder(app):
    from adapters.hashchain import HashedRecorder

    recorder = app.recorder
    if not isinstance(recorder, HashedRecorder):
        err_console.print("[red]此事件库未启用哈希链, 无法核验[/red]")
        raise typer.Exit(2)
    return recorder


@audit_app.command()
def verify(
    from_checkpoint: Annotated[Path | None, typer.Option(
        "--from-checkpoint", help="审计方保存在系统外的检查点文件 (casecore audit checkpoint 生成)")] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """从存储的原始记录重算全部哈希, 列出被篡改、删除、调序或插入的每一条事件; 无异常时退出码为 0."""
    from adapters.audit import CheckpointError, audit, compare_checkpoint, read_checkpoint

    checkpoint = None
    if from_checkpoint is not None:
        try:
            checkpoint = read_checkpoint(orjson.loads(from_checkpoint.read_bytes()))
        except (OSError, orjson.JSONDecodeError, CheckpointError) as exc:
            err_console.print(f"[red]无法读取检查点 {from_checkpoint}: {exc}[/red]")
            raise typer.Exit(2) from None
    app = open_app(db)
    report = audit(_recorder(app), checkpoint["through_position"] if checkpoint else None)
    if checkpoint is not None:
        report.findings.extend(compare_checkpoint(report, checkpoint))
    snapshots = _check_snapshots(app, quiet=json)
    if snapshots is not None:
        report.findings.extend(snapshots.findings)
    access = check_console_access_log(app)
    if json:
        out = report.as_dict()
        if snapshots is not None:
            out["snapshots"] = {"streams": snapshots.streams, "checked": snapshots.snapshots}
            if snapshots.unchecked:
                out["snapshots"] |= {"unchecked": snapshots.unchecked, "reason": snapshots.unchecked_reason}
        if checkpoint is not None:
            out["checkpoint"] = {"through_position": checkpoint["through_position"], "digest": checkpoint["digest"]}
        if access is not None:
            out["access_log"] = {"rows": access.rows, "ok": access.ok, "problems": access.problems}
            out["ok"] = out["ok"] and access.ok
        print(dumps(out))
    else:
        scope = f"; 对照检查点 (位置 ≤ {checkpoint['through_position']})" if checkpoint else ""
        checked = f", {snapshots.snapshots} 个快照" if snapshots is not None else ""
        if snapshots is not None and snapshots.unchecked:
            err_console.print(f"[yellow]{snapshots.unchecked} 个快照未核验: {snapshots.unchecked_reason}[/yellow]")
        if report.ok:
            console.print(f"[green]✓ 已核验 {report.events} 条事件 ({report.streams} 个流){checked}{scope}: "
                          "未发现篡改[/green]")
        else:
            table = Table(title=f"发现 {len(report.findings)} 处异常")
            for col in ("类型", "流", "版本", "位置", "说明"):
                table.add_column(col, overflow="fold")
            for f in report.findings:
                table.add_row(f"[red]{f.label}[/red] ({f.kind})", f.stream or f.day or "", str(f.version or ""),
                              str(f.position or ""), f.detail)
            console.print(table)
            console.print(f"已核验 {report.events} 条事件 ({report.streams} 个流){checked}{scope}")
        if access is not None:
            if access.ok:
                console.print(f"[green]✓ 已核验控制台访问日志 {access.rows} 条: 哈希链完整[/green]")
            else:
                for problem in access.problems:
                    console.print(f"[red]{problem}[/red]")
    if not report.ok or (access is not None and not access.ok):
        raise typer.Exit(1)


def check_console_access_log(app):
    """The console's read-access log, checked like the events (None when no console ever served this store)."""
    from adapters.console.accesslog import check_access_log
    from adapters.readmodels import engine_for, store_of

    engine = engine_for(store_of(app))
    try:
        return check_access_log(engine)
    finally:
        engine.dispose()


def _check_snapshots(app, quiet: bool):
    """Replay every snapshotted stream and compare (None when snapshots are off)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from adapters import snapshots

    if app.snapshots is None:
        return None
    with Progress(TextColumn("[bold]核验快照"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True, disable=quiet) as bar:
        task = bar.add_task("", total=None)
        return snapshots.verify(app, lambda done, total: bar.update(task, completed=done, total=total))


@audit_app.command()
def checkpoint(
    out: Annotated[Path | None, typer.Option("--out", help="写入文件 (默认输出到标准输出)")] = None,
    db: DbOption = None,
) -> None:
    """生成检查点: 每日摘要和总摘要, 由审计方保存在系统之外, 日后用 verify --from-checkpoint 对照."""
    from adapters.audit import audit, checkpoint_document
    from adapters.feed import deployment_source

    app = open_app(db)
    report = audit(_recorder(app))
    document = checkpoint_document(report, deployment_source())
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
    err_console.print(f"检查点: {document['events']} 条事件, {len(document['days'])} 天, 至位置 "
                      f"{document['through_position']}, 总摘要 {document['digest']}"
                      + (f" → {out}" if out else ""))
    if not report.ok:
        err_console.print(f"[red]注意: 事件库当前有 {len(report.findings)} 处异常 (见 casecore audit verify); "
                          "检查点已标注 verified=false[/red]")
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
