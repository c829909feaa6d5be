"""`casecore import national FILE.xlsx --divisions DIVISIONS.csv`: legacy histories from the national system."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from adapters.cli._common import DbOption, JsonOption, console, dumps, err_console, group, importing

#: rows of rejected lines shown in the human summary (all are in --json)
SHOWN = 50


def national(
    file: Annotated[Path, typer.Argument(help="国家防返贫监测信息系统导出的监测对象信息 .xlsx (或同样格式的 .csv)")],
    divisions: Annotated[Path, typer.Option("--divisions", help="区划表 CSV: code,county,township,village")],
    exported_on: Annotated[str | None, typer.Option(
        "--exported-on", help="导出日期 YYYY-MM-DD (默认取文件名中的日期, 否则取文件修改日期)")] = None,
    reader: Annotated[str, typer.Option(
        "--reader", help="读取方式: auto (先用 stream 逐行读取, 读不了再用 calamine (16 MB 以内) 或 openpyxl), "
                  "stream, calamine, openpyxl, csv",
    )] = "auto",
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """导入国家系统的监测对象历史 (imported facts, month precision, not re-judged)."""
    from adapters.importers.national import ExportUnreadable
    from adapters.usecases import import_national_file, national_exported_on, national_readers

    readers = national_readers()
    if reader not in readers:
        err_console.print(f"[red]--reader “{escape(reader)}” 无法识别 (可选 {'、'.join(readers)})[/red]")
        raise typer.Exit(2)
    for p in (file, divisions):
        if not p.is_file():
            err_console.print(f"[red]文件不存在: {p}[/red]")
            raise typer.Exit(2)
    try:
        when = national_exported_on(file, date.fromisoformat(exported_on) if exported_on else None)
    except ValueError:
        err_console.print(f"[red]--exported-on “{escape(exported_on)}” 不是日期 (应为 YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), console=err_console, disable=json)
    tasks: dict[str, int] = {}
    labels = {"read": "读取行", "store": "写入户"}

    def advance(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = progress.add_task(labels[phase], total=total or None)
        progress.update(tasks[phase], completed=done, total=max(total, done) or None)

    def work(app: Any) -> Any:
        with progress:
            return import_national_file(app, file, divisions, when, reader=reader, progress=advance)

    report = importing(db, json, ExportUnreadable, work)
    if json:
        print(dumps(report.as_dict()))
        return
    render(report, when)


def render(report, exported_on: date) -> None:
    # reasons, names and notes quote the export's cells: text, not terminal markup
    if report.rejected:
        t = Table(title=f"未能读取的行 ({len(report.rejected)})")
        t.add_column("行", justify="right")
        t.add_column("原因")
        for n, reason in report.rejected[:SHOWN]:
            t.add_row(str(n), escape(reason))
        console.print(t)
        if len(report.rejected) > SHOWN:
            console.print(f"另有 {len(report.rejected) - SHOWN} 行未列出 (--json 列出全部)")
    if report.unmatched_divisions:
        t = Table(title="区划表中找不到的区划名称")
        for col in ("县", "乡", "村", "行数"):
            t.add_column(col)
        for (county, township, village), n in sorted(report.unmatched_divisions.items()):
            t.add_row(escape(county), escape(township), escape(village), str(n))
        console.print(t)
    for note in report.notes[:SHOWN]:
        console.print(f"[yellow]注意:[/yellow] {escape(note)}")
    if report.missing_optional:
        console.print(f"[dim]导出中没有的可选列 (相应事实未导入): {'、'.join(report.missing_optional)}[/dim]")
    if report.cadre_unknown:
        console.print(f"导出中没有“帮扶责任人”列: {report.cadre_unknown} 户监测对象的帮扶责任人记为未知 "
                      "(督查不按“未明确帮扶责任人”判定, 请补录)")
    summary = Table(title=f"导入 {escape(report.file)} (导出日期 {exported_on}, 读取方式 {report.reader})")
    summary.add_column("项目")
    summary.add_column("数量", justify="right")
    for label, value in (("户", report.households), ("其中新建档", report.households_new),
                         ("其中有更新", report.households_changed), ("人", report.people),
                         ("导入事实 (事件)", report.events), ("未能读取的行", len(report.rejected))):
        summary.add_row(label, str(value))
    console.print(summary)


def register(app: typer.Typer) -> None:
    group(app, "import", "导入其他系统的数据 (import data from other systems).").command("national")(national)
