"""`casecore inspect`: the inspector's rules over native and imported histories; findings as a table, JSON
Lines (`--json`, one finding a line as CONTRACT.md "Findings" says) or a workbook (`--xlsx`);
`--raise-problems` enters them in the double ledger (idempotent: one problem per rule, household and cycle)."""

from __future__ import annotations

import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from adapters.cli._common import (
    CatchUpOption,
    DbOption,
    JsonOption,
    business_date,
    dumps,
    err_console,
    open_app,
    read_projection,
)
from adapters.output.workbooks import write_findings
from adapters.readside.places import Places

#: findings listed in the human output (all are in --json and --xlsx)
SHOWN = 40


def inspect(
    as_of: Annotated[str | None, typer.Option("--as-of", help="检查基准日 YYYY-MM-DD (默认今天)")] = None,
    rule: Annotated[list[str] | None, typer.Option("--rule", help="只运行这些规则 (可重复)")] = None,
    division: Annotated[str | None, typer.Option("--division", help="区划代码前缀 (如 522631)")] = None,
    db: DbOption = None,
    json: JsonOption = False,
    xlsx: Annotated[Path | None, typer.Option("--xlsx", help="写出问题清单工作簿")] = None,
    raise_problems: Annotated[bool, typer.Option("--raise-problems", help="将发现的问题登记入问题台账")] = False,
    actor_id: Annotated[str, typer.Option("--actor-id", help="登记问题的督查人员")] = "inspection-rules",
    actor_unit: Annotated[str, typer.Option("--actor-unit", help="登记问题的督查单位")] = "督查组",
    catch_up: CatchUpOption = True,
    limit: Annotated[int, typer.Option("--limit", min=1, help="列出的问题条数 (全部见 --json 或 --xlsx)")] = SHOWN,
    store: Annotated[bool, typer.Option("--store", help="保存本次督查结果 (全部区划和规则), "
                                        "供 /findings 直接读取")] = False,
    every: Annotated[float | None, typer.Option("--every", min=1.0, help="与 --store 同用: 每隔这么多秒追赶事件, "
                                                "有新事件或日期变化时重算并保存; Ctrl-C 停止")] = None,
) -> None:
    """运行督查规则 (run the inspector's rules); --store 保存结果, --every 按计划刷新."""
    from adapters.readside.snapshot import inspection_jobs
    from adapters.usecases import run_rules, unknown_rules
    from projections.queries.inspector import RULES

    day = business_date(as_of, "--as-of")
    try:
        inspection_jobs()   # read when a run starts: a wrong value is said now, not in the middle of it
    except ValueError as exc:
        err_console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    unknown = unknown_rules(rule)
    if unknown:
        err_console.print(f"[red]未知规则: {escape(', '.join(unknown))}; 可选: {', '.join(RULES)}[/red]")
        raise typer.Exit(2)
    if json and xlsx:
        err_console.print("[red]--json 与 --xlsx 只能选一个[/red]")
        raise typer.Exit(2)
    if every is not None and not store:
        err_console.print("[red]--every 须与 --store 同用[/red]")
        raise typer.Exit(2)
    if store:
        if not catch_up or raise_problems or rule or division:
            err_console.print("[red]--store 保存全部区划和规则的结果, 不能与 --rule、--division、--raise-problems 或 "
                              "--no-catch-up 同用[/red]")
            raise typer.Exit(2)
        _store(db, as_of, every)
        return
    if not catch_up:
        if raise_problems:
            err_console.print("[red]--raise-problems 要登记问题 (写入事件库), 不能与 --no-catch-up 同用[/red]")
            raise typer.Exit(2)
        def read(conn: Any, app: Any) -> tuple[Any, Places]:
            return run_rules(conn, app.policies, day, rule, division), Places.load(conn)

        done, places = read_projection(db, "案件事实", read)
        _output(done.findings, day, division, None, json, xlsx, places, done.cadre_unknown, limit)
        return
    from adapters.usecases import inspect as run_inspection

    app = open_app(db)
    try:
        actor = {"id": actor_id, "name": "督查规则", "role": "inspector", "unit": actor_unit}
        done = run_inspection(app, day, rule, division, raise_as=actor if raise_problems else None)
        for line in done.refusals:
            err_console.print(f"[red]{line}[/red]")
        places = Places.of_app(app)
    finally:
        app.close()
    _output(done.findings, day, division, done.raised if raise_problems else None, json, xlsx, places,
            done.cadre_unknown, limit)


def _store(db: str | None, as_of: str | None, every: float | None) -> None:
    """Catch the case facts up and store the run as of the date (today when none is given, moving with the
    clock); with `every`, again every so many seconds, recomputing only the households whose events arrived
    since (everything when the day or the policy changed)."""
    from adapters.usecases import store_findings

    app = open_app(db)
    try:
        store_findings(
            app, lambda: business_date(as_of, "--as-of"), every,
            stored=lambda run: err_console.print(
                f"已保存督查结果: 基准日 {run.as_of}, {run.count} 条, 案件事实位置 {run.casefacts_position}, "
                f"计算于 {run.computed_at:%Y-%m-%d %H:%M:%S}"),
            current=lambda day: err_console.print(f"督查结果 (基准日 {day}) 已是最新, 未重算"))
    except KeyboardInterrupt:
        err_console.print("已停止")
    finally:
        app.close()


def _output(findings: list[Any], day: date, division: str | None, raised: Counter[str] | None, json: bool,
            xlsx: Path | None, places: Places, cadre_unknown: int, limit: int) -> None:
    if json:
        out = sys.stdout
        for f in findings:
            out.write(dumps(f.as_dict()) + "\n")
        return
    if xlsx:
        write_findings(xlsx, findings, day, division, places, cadre_unknown)
    render(findings, day, division, raised, xlsx, cadre_unknown, limit)


def render(findings: list[Any], day: date, division: str | None, raised: Counter[str] | None,
           xlsx: Path | None, cadre_unknown: int = 0, limit: int | None = SHOWN) -> None:
    from adapters.cli._common import Col, Listing, emit, limit_note, limited, paged, place, styled
    from adapters.readside.places import place_name
    from projections.queries.inspector import RULES, SEVERITY_LABELS, Summary

    out: list[Any] = []
    shown, total = limited(findings, limit)
    if findings and not xlsx:
        t = Listing("发现的问题", [Col("户编号", "id"), Col("地点"), Col("规则"), Col("严重\n程度"), Col("说明")])
        for f in shown:
            style = "red" if f.severity == "severe" else "yellow"
            t.add_row(f.household_id or "—", place(f.division_code), RULES[f.rule].label,
                      styled(f"[{style}]{SEVERITY_LABELS[f.severity]}[/{style}]"), f.detail)
        out.append(t)
        out.extend(filter(None, [limit_note(len(shown), total)]))
    s = Summary.of(findings)
    where = f", {escape(place_name(division))}" if division else ""   # a stored name is text
    t = Listing(f"督查结果 (基准日 {day}{where})", [Col("规则"), Col("依据"), Col("严重", "num"), Col("一般", "num"),
                                                  Col("合计", "num")])
    sev: dict[str, Counter[str]] = {r: Counter() for r in RULES}
    for f in findings:
        sev[f.rule][f.severity] += 1
    for r, info in RULES.items():
        t.add_row(info.label, info.policy, str(sev[r]["severe"]), str(sev[r]["warning"]), str(s.by_rule[r]))
    t.add_row(styled("[bold]合计[/bold]"), "", str(s.by_severity["severe"]), str(s.by_severity["warning"]),
              str(len(findings)))
    out.append(t)
    if cadre_unknown:
        out.append(f"帮扶责任人未知: {cadre_unknown} 户监测对象的历史来自无“帮扶责任人”列的国家系统导出, "
                   "未按“未明确帮扶责任人”判定; 请补录帮扶责任人")
    if raised is not None:
        from casecore.errors import ERROR_LABELS

        out.append(f"问题台账: 新登记 {raised['raised']} 个, 已登记过 {raised['already'] + raised['duplicate']} 个"
                   + "".join(f", {ERROR_LABELS.get(k, k)} {v} 个" for k, v in raised.items()
                             if k not in ("raised", "already", "duplicate")))
    if xlsx:
        out.append(f"问题清单已写入 {xlsx}")
    with paged(len(shown) * 3 + 40):
        emit(*out)


def register(app: typer.Typer) -> None:
    app.command()(inspect)
