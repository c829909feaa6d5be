"""`casecore screen KIND FILE`: a department's screening file (CSV or XLSX) becomes department-warning leads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from adapters.cli._common import (
    DbOption,
    JsonOption,
    business_date,
    console,
    dumps,
    err_console,
    importing,
)

#: rows listed per section in the human output (all are in --json)
SHOWN = 30


def screen(
    kind: Annotated[str, typer.Argument(
        help="hospital (医保) / dibao (民政) / dropout (教育) / housing (住建) / water (水利)")],
    file: Annotated[Path, typer.Argument(help="部门筛查数据 (CSV 或 XLSX)")],
    on: Annotated[str | None, typer.Option("--on", help="筛查 (线索登记) 日期 YYYY-MM-DD, 默认今天")] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="报送部门名称")] = None,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """部门筛查预警 (department screening: leads from a department's file)."""
    from adapters.importers.screening import ScreeningUnreadable
    from adapters.usecases import screen_file, screening_kinds

    kinds = screening_kinds()
    if kind not in kinds:
        err_console.print(f"[red]未知的筛查类型 {escape(repr(kind))}; 可选: {', '.join(kinds)}[/red]")
        raise typer.Exit(2)
    if not file.is_file():
        err_console.print(f"[red]文件不存在: {file}[/red]")
        raise typer.Exit(2)
    day = business_date(on, "--on")
    report = importing(db, json, ScreeningUnreadable, lambda app: screen_file(app, kind, file, day, unit))
    if json:
        print(dumps(report.as_dict()))
        return
    for title, rows, head in (("未能读取的行", report.rejected, "原因"),
                              ("查无此人 (人员索引中没有)", report.unknown_persons, "身份证号"),
                              ("未登记的线索", report.refused, "原因")):
        if rows:
            t = Table(title=f"{title} ({len(rows)})")
            t.add_column("行", justify="right")
            t.add_column(head)
            for n, text in rows[:SHOWN]:
                t.add_row(str(n), escape(text))   # the file's own text
            console.print(t)
    summary = Table(title=f"{kinds[kind].label}筛查 {escape(file.name)} ({day})")
    summary.add_column("项目")
    summary.add_column("数量", justify="right")
    for label, value in (("读取行数", report.rows), ("新登记线索", report.leads), ("已登记过", report.already),
                         ("未达预警条件", len(report.not_flagged)), ("查无此人", len(report.unknown_persons)),
                         ("未能读取", len(report.rejected))):
        summary.add_row(label, str(value))
    console.print(summary)


def register(app: typer.Typer) -> None:
    app.command()(screen)
