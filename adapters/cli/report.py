"""`casecore report monthly`: 一月一调度一通报 — the monthly dispatch, read from the activity and ledger projections.

Per county and township: leads received, households included, exits, measures implemented, problems raised,
closed and overdue (as of the month's last day), accountability records; the key areas broken out (national
key assistance counties, relocation resettlement sites); and the campaign milestones of the policy in force
that month, with what is late as of the month's end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from adapters.cli._common import DbOption, JsonOption, console, dumps, err_console, open_app
from adapters.places import Places
from adapters.reports import COUNT_HEADERS, area_rows, key_rows, parse_month, read_monthly, write_monthly_xlsx

report_app = typer.Typer(help="调度通报 (reports)", no_args_is_help=True)


@report_app.command()
def monthly(
    month: Annotated[str, typer.Option("--month", help="月份 YYYY-MM")],
    division: Annotated[str | None, typer.Option("--division", help="区划代码前缀 (如县 6 位、乡镇 9 位)")] = None,
    json: JsonOption = False,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="另存为 Excel 工作簿")] = None,
    db: DbOption = None,
) -> None:
    """月度调度通报 (the monthly dispatch: counts by area, key areas, campaign milestones)."""
    try:
        parse_month(month)
    except ValueError:
        err_console.print(f"[red]月份格式应为 YYYY-MM: {month!r}[/red]")
        raise typer.Exit(2) from None
    if division is not None and not division.isdigit():
        err_console.print(f"[red]区划代码前缀应为数字: {division!r}[/red]")
        raise typer.Exit(2)
    app = open_app(db)
    try:
        places = Places.of_app(app)
        report = read_monthly(app, month, division, places.named)
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if xlsx is not None:
        try:
            write_monthly_xlsx(xlsx, report, places)
        except OSError as exc:
            err_console.print(f"[red]无法写入 {xlsx}: {exc}[/red]")
            raise typer.Exit(2) from None
        if not json:
            console.print(f"已写入 {xlsx}")
    if json:
        print(dumps(report))
        return
    if xlsx is None:
        render(report)


def render(report: dict[str, Any]) -> None:
    out = console if console.is_terminal else Console(width=200)
    t = Table(title=f"{report['month']} 月度调度 (截至 {report['as_of']})")
    t.add_column("县/乡镇")
    for h in COUNT_HEADERS.values():
        t.add_column(h, justify="right")
    for r in area_rows(report):
        t.add_row(r["area"], *(str(r[k]) for k in COUNT_HEADERS))
    out.print(t)
    keys = key_rows(report)
    if keys:
        k = Table(title="重点区域")
        k.add_column("类别")
        k.add_column("名称")
        for h in COUNT_HEADERS.values():
            k.add_column(h, justify="right")
        for r in keys:
            k.add_row(r["area_type"], r["area"], *(str(r[c]) for c in COUNT_HEADERS))
        out.print(k)
    m = Table(title=f"专项行动时间节点 ({report['policy']})")
    for col in ("节点", "完成时限", "状态", "情况"):
        m.add_column(col)
    for row in report["milestones"]:
        state = f"[red]{row['state']} 滞后[/red]" if row["late"] else row["state"]
        m.add_row(row["label"], str(row["due"]), state, row["detail"])
    out.print(m)


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
