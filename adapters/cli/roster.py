"""`casecore roster`: the monitored-household roster (监测对象名单), read from the roster projection after
catching it up. Human output is a table with Chinese headers; `--json` prints JSON Lines (one object a
household, with its `measures`); `--xlsx FILE` writes a workbook (名单 and 帮扶措施 sheets)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from adapters.cli._common import (
    CatchUpOption,
    DbOption,
    DivisionOption,
    JsonOption,
    LimitOption,
    check_division,
    console,
    dumps,
    err_console,
    open_app,
    read_projection,
)
from adapters.output.workbooks import label_of, measures_text, risks_text, write_roster_xlsx
from adapters.usecases import read_roster, roster_rows
from casecore.values import Category, Stage


def roster(
    division: DivisionOption = None,
    all_stages: Annotated[bool, typer.Option("--all", help="列出所有户 (含未纳入、识别中、已消除风险)")] = False,
    json: JsonOption = False,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="另存为 Excel 工作簿 (.xlsx)")] = None,
    limit: LimitOption = None,
    db: DbOption = None,
    catch_up: CatchUpOption = True,
) -> None:
    """监测对象名单 (the monitored-household roster: 监测中 and 风险消除程序中 unless --all)."""
    check_division(division)
    if not catch_up:
        rows, places = read_projection(db, "名单", lambda conn, _: roster_rows(conn, division, all_stages,
                                                                            xlsx is not None))
    else:
        app = open_app(db)
        try:
            rows, places = read_roster(app, division, all_stages, xlsx is not None)
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    if xlsx is not None and places is not None:
        try:
            write_roster_xlsx(xlsx, rows, date.today(), division, places)
        except OSError as exc:
            err_console.print(f"[red]无法写入 {xlsx}: {exc}[/red]")
            raise typer.Exit(2) from None
        if not json:
            console.print(f"已写入 {xlsx}: {len(rows)} 户")
    if json:
        for r in rows:
            print(dumps(r))
        return
    if xlsx is not None:
        return
    render(rows, all_stages, limit)


def render(rows: list[dict[str, Any]], all_stages: bool, limit: int | None = None) -> None:
    from adapters.cli._common import Col, Listing, emit, limit_note, limited, paged, plain, styled
    from adapters.readside.places import place_name, place_path

    shown, total = limited(rows, limit)
    counties = sorted({r["county_code"] for r in rows if r["county_code"]})
    where = plain("、".join(place_path(c) for c in counties))
    table = Listing(f"{where}监测对象名单" + (" (全部户)" if all_stages else ""), [
        Col("户编号\n纳入日期", "id"), Col("乡镇\n村"), Col("监测对象类型\n状态"), Col("风险类型"), Col("人口", "num"),
        Col("人均纯收入\n(元)", "num"), Col("帮扶责任人"), Col("帮扶措施")])
    for r in shown:
        labour = "" if r["has_labour"] else "\n[red]无劳动力[/red]"
        risks = styled((plain(risks_text(r["risk_types"])) + labour).strip())
        table.add_row(
            f"{r['household_id']}\n{r['included_on'] or ''}",
            f"{place_name(r['township_code'])}\n{place_name(r['division_code'])}",
            f"{label_of(Category, r['category'])}\n{label_of(Stage, r['stage'])}".strip(), risks,
            str(r["household_size"]), "" if r["per_capita_income"] is None else f"{r['per_capita_income']:,}",
            r["cadre_name"] or styled("[red]未指定[/red]"), measures_text(r["measures"]) or styled("[red]无[/red]"),
        )
    implemented = sum(1 for r in rows if r["measures_implemented"])
    with paged(len(shown) * 3):
        emit(table, f"共 {len(rows)} 户; 已落实帮扶措施 {implemented} 户",
             *filter(None, [limit_note(len(shown), total)]))


def register(app: typer.Typer) -> None:
    app.command()(roster)
