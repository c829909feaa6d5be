"""`casecore export roster` (the monthly push to the provincial data-sharing platform) and `casecore import
measures` (the measures industry departments report back). Layouts: docs/integration.md."""

from __future__ import annotations

import re
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from adapters.cli._common import DbOption, JsonOption, check_division, console, dumps, err_console, group, open_app
from casecore.values import Role, month_window

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_end(month: str) -> date:
    """The last day of `YYYY-MM`."""
    m = MONTH.match(month)
    if m is None:
        raise typer.BadParameter(f"月份应为 YYYY-MM: {month!r}")
    year, mon = int(m.group(1)), int(m.group(2))
    nxt = date(year + (mon == 12), mon % 12 + 1, 1)
    return month_window(nxt)[1]


def export_roster(
    month: Annotated[str, typer.Option("--month", help="月份 YYYY-MM: 列出该月最后一天处于监测中的户")],
    division: Annotated[str | None, typer.Option("--division", help="区划代码前缀 (如省 2 位、县 6 位)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="json (一个数组) 或 csv")] = "json",
    out: Annotated[Path | None, typer.Option("--out", help="写入文件 (默认标准输出)")] = None,
    entitled: Annotated[bool, typer.Option(
        "--entitled", help="输出未脱敏的身份证号和姓名 (仅限有权使用个人信息的接收方); 默认脱敏")] = False,
    _mask: Annotated[bool, typer.Option("--mask", hidden=True, help="脱敏 (默认即脱敏, 保留以兼容旧脚本)")] = False,
    db: DbOption = None,
) -> None:
    """监测对象名单月度推送 (the monthly monitored-household list for the data-sharing platform)."""
    from adapters.integration.exchange import to_csv
    from adapters.usecases import month_end_push

    if fmt not in ("json", "csv"):
        err_console.print(f"[red]--format 应为 json 或 csv: {escape(repr(fmt))}[/red]")
        raise typer.Exit(2)
    check_division(division)
    last_day = month_end(month)
    app = open_app(db)
    try:
        rows = month_end_push(app, month, last_day, division, masked=not entitled or _mask)
    finally:
        app.close()
    text = to_csv(rows) if fmt == "csv" else dumps(rows) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        err_console.print(f"[red]无法写入 {out}: {exc}[/red]")
        raise typer.Exit(2) from None
    err_console.print(f"{month} 监测对象 {len(rows)} 户 → {out}")


def import_measures(
    file: Annotated[Path, typer.Argument(help="部门反馈的帮扶措施 (CSV 或 XLSX, 列见 docs/integration.md)")],
    actor_id: Annotated[str, typer.Option("--actor-id", help="报送人 id")],
    unit: Annotated[str, typer.Option("--unit", help="报送单位 (部门名称或区划代码)")],
    actor_name: Annotated[str | None, typer.Option("--actor-name", help="报送人姓名")] = None,
    role: Annotated[Role, typer.Option("--role", help="报送人角色")] = Role.DEPARTMENT,
    db: DbOption = None,
    json: JsonOption = False,
) -> None:
    """导入部门反馈的帮扶措施 (plan and implement measures reported by departments; bad rows are listed)."""
    from adapters.integration.exchange import UnreadableFile, read_measure_rows
    from adapters.usecases import import_measures as run_import
    from casecore.commands import Actor

    try:
        rows = read_measure_rows(file)
    except UnreadableFile as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    actor = Actor(id=actor_id, name=actor_name, role=role, unit=unit)
    app = open_app(db, create=True)
    try:
        summary, report = run_import(app, rows, actor)
    finally:
        app.close()
    if json:
        print(dumps(summary))
    else:
        if report:
            table = Table(title="未导入的行")
            for col in ("行", "户编号", "措施编号", "原因"):
                table.add_column(col)
            for b in report:
                table.add_row(str(b.line), b.household_id or "", b.measure_id or "", b.reason)
            console.print(table)
        console.print(f"共 {summary['rows']} 行: 新制定措施 {summary['planned']} 项, "
                      f"新落实 {summary['implemented']} 项, 已导入过 {summary['already_imported']} 项, "
                      f"有误 {summary['bad_rows']} 行")
    if report:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    group(app, "export", "导出数据 (export data for other systems).").command("roster")(export_roster)
    group(app, "import", "导入其他系统的数据 (import data from other systems).").command("measures")(import_measures)
