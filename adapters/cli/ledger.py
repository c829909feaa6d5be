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
from rich.markup import escape

from adapters.cli._common import (
    CatchUpOption,
    DbOption,
    JsonOption,
    LimitOption,
    business_date,
    console,
    dumps,
    err_console,
    open_app,
    read_projection,
)
from adapters.places import Places
from adapters.sheets import Column, new_workbook, sheet, subtitle, title, write_table
from casecore.problem import status_label
from casecore.values import AccountableParty, Labelled, ProblemKind, ProblemSource, Role

#: 问题台账 as a county office signs it off (the order of the national and provincial forms); what does not fit
#: the printed page is in the detail sheet, keyed by 问题编号
PROBLEM_COLUMNS = [
    Column("no", "序号"),
    Column("problem_id", "问题编号"),
    Column("township", "乡镇", wrap=8),
    Column("village", "村", wrap=8),
    Column("household_id", "户编号"),
    Column("source_label", "问题来源", wrap=8),
    Column("kind_label", "问题类型", wrap=12),
    Column("detail", "问题描述", wrap=30),
    Column("found_on", "发现日期"),
    Column("responsible_text", "整改责任单位及责任人", wrap=16),
    Column("supervisor_text", "监督责任单位及责任人", wrap=16),
    Column("deadline", "整改时限"),
    Column("status_label", "整改状态"),
    Column("closed_on", "销号日期"),
    Column("overdue_days", "超期天数"),
]

PROBLEM_DETAIL_COLUMNS = [
    Column("no", "序号"),
    Column("problem_id", "问题编号"),
    Column("division_code", "区划代码"),
    Column("found_by", "发现人", wrap=16),
    Column("found_by_unit", "发现单位", wrap=16),
    Column("actions", "整改措施(条)"),
    Column("responsible_signed_on", "责任方销号日期"),
    Column("supervisor_signed_on", "监督方销号日期"),
    Column("overdue_label", "是否超期"),
    Column("rejections", "退回次数"),
    Column("accountability", "问责(次)"),
]

RECTIFICATION_COLUMNS = [
    Column("no", "序号"),
    Column("problem_id", "问题编号"),
    Column("township", "乡镇", wrap=8),
    Column("village", "村", wrap=8),
    Column("entry_label", "记录类型", wrap=10),
    Column("party_label", "责任方/监督方"),
    Column("acted_on", "日期"),
    Column("actor_text", "办理人及单位", wrap=16),
    Column("content", "整改措施/理由", wrap=32),
    Column("persons", "被问责人员", wrap=12),
    Column("evidence", "佐证材料", wrap=16),
    Column("status_label", "办理后状态"),
    Column("overdue_days", "超期天数"),
]


def _label(enum: type[Labelled], value: str | None) -> str:
    if value is None:
        return ""
    try:
        return enum(value).label
    except ValueError:
        return value


def _who(name: str | None, ident: str | None) -> str:
    if name and ident:
        return f"{name} ({ident})"
    return name or ident or ""


def problem_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Problem-ledger rows with their Chinese labels beside the codes."""
    out = []
    for i, r in enumerate(rows, start=1):
        out.append(dict(
            r, no=i, kind_label=_label(ProblemKind, r["kind"]), source_label=_label(ProblemSource, r["source"]),
            found_by=_who(r["found_by_name"], r["found_by_id"]), status_label=status_label(r["status"]),
            responsible=_who(r["responsible_name"], r["responsible_person"]),
            supervisor=_who(r["supervisor_name"], r["supervisor_person"]),
            overdue_label="是" if r["overdue"] else "否",
        ))
    return out


def rectification_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from projections.ledger import ENTRY_LABELS

    out = []
    for i, r in enumerate(rows, start=1):
        out.append(dict(
            r, no=i, entry_label=ENTRY_LABELS.get(r["entry"], r["entry"]),
            party_label=_label(AccountableParty, r["party"]), actor=_who(r["actor_name"], r["actor_id"]),
            actor_role_label=_label(Role, r["actor_role"]), status_label=status_label(r["status_after"]),
        ))
    return out


def read_ledgers(app: Any, as_of: date, division: str | None) -> tuple[list[dict], list[dict]]:
    """Catch the ledger projection up, then read both ledgers as of a date."""
    from adapters.readmodels import read_models
    from projections.ledger import problem_rows, rectification_rows
    from projections.registry import by_name

    with read_models(app, [by_name("ledger")]) as rm:
        rm.catch_up("ledger")
        with rm.engine.connect() as conn:
            return problem_rows(conn, as_of, division), rectification_rows(conn, as_of, division)


def _unit_person(unit: str | None, person: str | None) -> str:
    return "\n".join(p for p in (unit or "", person or "") if p)


def write_ledger_xlsx(path: Path, problems: list[dict[str, Any]], rectifications: list[dict[str, Any]],
                      as_of: date, division: str | None = None, places: Places | None = None) -> None:
    """The ledger workbook: 问题台账 and 整改台账 printable on A4 landscape, and 问题台账(明细) with the rest."""
    places = places or Places()
    area = places.area(division, (r["division_code"] for r in problems))
    named = {"township": places.township, "village": places.village}
    problem_rows = [dict(r, **{k: f(r["division_code"]) for k, f in named.items()},
                         found_by_unit=places.unit(r["found_by_unit"]),
                         responsible_text=_unit_person(places.unit(r["responsible_unit"]),
                                                       r["responsible_name"] or r["responsible_person"]),
                         supervisor_text=_unit_person(places.unit(r["supervisor_unit"]),
                                                      r["supervisor_name"] or r["supervisor_person"]))
                    for r in problem_view(problems)]
    entry_rows = [dict(r, **{k: f(r["division_code"]) for k, f in named.items()},
                       actor_text=_unit_person(places.unit(r["actor_unit"]), r["actor_name"] or r["actor_id"]))
                  for r in rectification_view(rectifications)]
    closed = sum(1 for r in problems if r["status"] == "closed")
    overdue = sum(1 for r in problems if r["overdue"])
    counts = f"共 {len(problems)} 个问题, 已销号 {closed} 个, 超期未销号 {overdue} 个"
    wb = new_workbook()
    write_table(sheet(wb, "问题台账"), title(area, "防止返贫问题台账", as_of), subtitle(as_of, counts),
                PROBLEM_COLUMNS, problem_rows, form=True)
    write_table(sheet(wb, "整改台账"), title(area, "防止返贫整改台账", as_of),
                subtitle(as_of, f"共 {len(entry_rows)} 条办理记录"), RECTIFICATION_COLUMNS, entry_rows, form=True)
    write_table(sheet(wb, "问题台账(明细)"), title(area, "问题台账明细", as_of), subtitle(as_of, counts),
                PROBLEM_DETAIL_COLUMNS, problem_rows)
    wb.save(path)


def ledger(
    division: Annotated[str | None, typer.Option("--division", help="区划代码前缀 (如县 6 位、乡镇 9 位)")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="截至日期 YYYY-MM-DD (默认今天): 超期按此日计算")] = None,
    json: JsonOption = False,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="另存为 Excel 工作簿 (问题台账、整改台账两张表)")] = None,
    limit: LimitOption = None,
    db: DbOption = None,
    catch_up: CatchUpOption = True,
) -> None:
    """双台账: 问题台账与整改台账 (the problem ledger and the rectification ledger)."""
    if division is not None and not division.isdigit():
        err_console.print(f"[red]区划代码前缀应为数字: {escape(repr(division))}[/red]")
        raise typer.Exit(2)
    day = business_date(as_of, "--as-of")
    if not catch_up:
        from projections.ledger import problem_rows, rectification_rows

        problems, entries = read_projection(db, "台账", lambda conn, _: (problem_rows(conn, day, division),
                                                                      rectification_rows(conn, day, division)))
    else:
        app = open_app(db)
        try:
            problems, entries = read_ledgers(app, day, division)
        except ValueError as exc:
            err_console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    if xlsx is not None:
        try:
            write_ledger_xlsx(xlsx, problems, entries, day, division, Places.of_app(app))
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
