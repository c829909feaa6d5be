"""`casecore ledger`: 双台账 — the problem ledger (问题台账) and the rectification ledger (整改台账), read from the
ledger projection after catching it up. Overdue days are computed as of `--as-of` (default: today).

Human output is two tables with Chinese headers; `--json` prints one object {as_of, division, problems,
rectifications}; `--xlsx FILE` writes both ledgers as two printable sheets (title and header rows frozen and
repeated on each page, widths that fit, dates as dates, a signature line in the footer).
"""

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
    business_date,
    check_division,
    console,
    dumps,
    err_console,
    open_app,
    read_projection,
)
from adapters.output.workbooks import problem_view, rectification_view, write_ledger_xlsx
from adapters.readside.places import Places
from adapters.usecases import ledger_rows, read_ledgers


def ledger(
    division: DivisionOption = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="截至日期 YYYY-MM-DD (默认今天): 超期按此日计算")] = None,
    json: JsonOption = False,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="另存为 Excel 工作簿 (问题台账、整改台账两张表)")] = None,
    limit: LimitOption = None,
    db: DbOption = None,
    catch_up: CatchUpOption = True,
) -> None:
    """双台账: 问题台账与整改台账 (the problem ledger and the rectification ledger)."""
    check_division(division)
    day = business_date(as_of, "--as-of")
    if not catch_up:
        problems, entries, places = read_projection(db, "台账", lambda conn, _: (*ledger_rows(conn, day, division),
                                                                              Places.load(conn) if xlsx else None))
    else:
        app = open_app(db)
        try:
            problems, entries = read_ledgers(app, day, division)
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        places = Places.of_app(app) if xlsx is not None else None
    if xlsx is not None:
        try:
            write_ledger_xlsx(xlsx, problems, entries, day, division, places)
        except OSError as exc:
            err_console.print(f"[red]无法写入 {xlsx}: {exc}[/red]")
            raise typer.Exit(2) from None
        if not json:
            console.print(f"已写入 {xlsx}: 问题台账 {len(problems)} 条, 整改台账 {len(entries)} 条")
    if json:
        print(dumps({"as_of": day, "division": division, "problems": problems, "rectifications": entries}))
        return
    if xlsx is None:
        render(problems, entries, day, limit)


def render(problems: list[dict[str, Any]], entries: list[dict[str, Any]], as_of: date,
           limit: int | None = None) -> None:
    """Both ledgers for the terminal: each problem's ids and dates stacked in one cell, so that at 80 columns the
    ids stay whole and the words have room (every column is in --json and --xlsx)."""
    from adapters.cli._common import Col, Listing, emit, limit_note, limited, paged, place, styled

    shown, total = limited(problem_view(problems), limit)
    t = Listing(f"问题台账 (截至 {as_of})", [
        Col("问题编号\n户编号", "id"), Col("地点"), Col("问题类型\n(来源)"), Col("整改责任人\n监督责任人"),
        Col("发现日期\n整改时限", "date"), Col("状态"), Col("超期\n天数", "num")])
    for r in shown:
        late = styled(f"[red]{r['overdue_days']}[/red]") if r["overdue"] else "0"
        t.add_row(f"{r['problem_id']}\n{r['household_id'] or ''}", place(r["division_code"]),
                  f"{r['kind_label']}\n({r['source_label']})",
                  f"{r['responsible_name'] or ''}\n{r['supervisor_name'] or ''}",
                  f"{r['found_on']}\n{r['deadline'] or ''}", r["status_label"], late)
    shown_entries, total_entries = limited(rectification_view(entries), limit)
    t2 = Listing(f"整改台账 (截至 {as_of})", [
        Col("问题编号", "id"), Col("记录类型\n(相关方)"), Col("日期", "date"), Col("办理人"), Col("内容"),
        Col("佐证材料")])
    for r in shown_entries:
        kind = r["entry_label"] + (f"\n({r['party_label']})" if r["party_label"] else "")
        t2.add_row(r["problem_id"], kind, str(r["acted_on"]), r["actor_name"] or r["actor_role_label"],
                   r["content"] or "", r["evidence"] or "")
    overdue = sum(1 for r in problems if r["overdue"])
    closed = sum(1 for r in problems if r["status"] == "closed")
    notes = [n for n in (limit_note(len(shown), total), limit_note(len(shown_entries), total_entries)) if n]
    with paged(len(shown) * 3 + len(shown_entries) * 3):
        emit(t, t2,
             f"共 {len(problems)} 个问题: 已销号 {closed} 个, 超期未销号 {overdue} 个; 整改台账 {len(entries)} 条",
             *notes[:1])


def register(app: typer.Typer) -> None:
    app.command()(ledger)
