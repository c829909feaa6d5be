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
from rich.markup import escape

from adapters.cli._common import (
    DbOption,
    DivisionOption,
    JsonOption,
    check_division,
    console,
    dumps,
    err_console,
    open_app,
)
from adapters.output.reports import COUNT_HEADERS, area_rows, key_rows, parse_month, read_monthly, write_monthly_xlsx
from adapters.readside.places import Places

report_app = typer.Typer(help="调度通报 (reports)", no_args_is_help=True)


@report_app.command()
def monthly(
    month: Annotated[str, typer.Option("--month", help="月份 YYYY-MM")],
    division: DivisionOption = None,
    json: JsonOption = False,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="另存为 Excel 工作簿")] = None,
    db: DbOption = None,
) -> None:
    """月度调度通报 (the monthly dispatch: counts by area, key areas, campaign milestones)."""
    try:
        parse_month(month)
    except ValueError:
        err_console.print(f"[red]月份格式应为 YYYY-MM: {escape(repr(month))}[/red]")
        raise typer.Exit(2) from None
    check_division(division)
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
    from adapters.cli._common import Col, Listing, emit, plain, styled
    from adapters.readside.places import place_name

    facts = report.get("facts") or {}
    where = plain(place_name(report["division"])) if report["division"] else "事件库"
    if not facts.get("in_month"):
        span = (f"记录的业务日期从 {facts['first_on']} 到 {facts['last_on']}" if facts.get("first_on")
                else "事件库中还没有任何办理记录")
        emit(f"[yellow]{where}中没有 {report['month']} 的办理记录 ({span}); 请换一个月份[/yellow]")
        return
    t = Listing(f"{plain(report['month'])} 月度调度 (截至 {report['as_of']})",
                [Col("县/乡镇"), *(Col(h, "num") for h in COUNT_HEADERS.values())])
    for r in area_rows(report):
        t.add_row(r["area"], *(str(r[k]) for k in COUNT_HEADERS))
    out: list[Any] = [t]
    keys = key_rows(report)
    if keys:
        k = Listing("重点区域", [Col("类别"), Col("名称"), *(Col(h, "num") for h in COUNT_HEADERS.values())])
        for r in keys:
            k.add_row(r["area_type"], r["area"], *(str(r[c]) for c in COUNT_HEADERS))
        out.append(k)
    m = Listing(f"专项行动时间节点 ({plain(report['policy'])})",
                [Col("节点"), Col("完成时限", "date"), Col("状态"), Col("情况")])
    for row in report["milestones"]:
        state = styled(f"[red]{plain(row['state'])} 滞后[/red]") if row["late"] else row["state"]
        m.add_row(row["label"], str(row["due"]), state, row["detail"])
    out.append(m)
    emit(*out)


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
