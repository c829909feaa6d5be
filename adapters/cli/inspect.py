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
from rich.table import Table

from adapters.cli._common import (
    CatchUpOption,
    DbOption,
    JsonOption,
    business_date,
    console,
    dumps,
    err_console,
    open_app,
    read_projection,
)

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
    store: Annotated[bool, typer.Option("--store", help="保存本次督查结果 (全部区划和规则), "
                                        "供 /findings 直接读取")] = False,
    every: Annotated[float | None, typer.Option("--every", min=1.0, help="与 --store 同用: 每隔这么多秒追赶事件, "
                                                "有新事件或日期变化时重算并保存; Ctrl-C 停止")] = None,
) -> None:
    """运行督查规则 (run the inspector's rules); --store 保存结果, --every 按计划刷新."""
    from adapters.readmodels import read_models
    from projections.casefacts import CaseFactsProjection
    from projections.inspect import RULES, Inspector, problem_commands

    day = business_date(as_of, "--as-of")
    unknown = [r for r in rule or [] if r not in RULES]
    if unknown:
        err_console.print(f"[red]未知规则: {', '.join(unknown)}; 可选: {', '.join(RULES)}[/red]")
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
        findings = read_projection(db, "案件事实", lambda conn, app: Inspector(conn, app.policies, day, division)
                                   .run(rule or None))
        _output(findings, day, division, None, json, xlsx)
        return
    app = open_app(db)
    try:
        with read_models(app, [CaseFactsProjection()]) as rm:
            rm.catch_up()
            with rm.engine.connect() as conn:
                findings = Inspector(conn, app.policies, day, division).run(rule or None)
            raised: Counter[str] = Counter()
            if raise_problems:
                actor = {"id": actor_id, "name": "督查规则", "role": "inspector", "unit": actor_unit}
                cmds = problem_commands(findings, day, actor)
                by_id = {f.derived_problem_id: f for f in findings}
                for cmd, outcome in zip(cmds, app.handle_many(cmds), strict=True):
                    if outcome.ok:
                        raised["duplicate" if outcome.duplicate else "raised"] += 1
                        by_id[cmd.problem_id].problem_id = by_id[cmd.problem_id].problem_id or cmd.problem_id
                    else:
                        error = outcome.error
                        raised[error.code if error else "error"] += 1
                        err_console.print(f"[red]{cmd.problem_id}: {error.message if error else ''}[/red]")
                raised["already"] = sum(1 for f in findings if f.raised_problem is not None)
                rm.catch_up()
    finally:
        app.close()
    _output(findings, day, division, raised if raise_problems else None, json, xlsx)


def _store(db: str | None, as_of: str | None, every: float | None) -> None:
    """Catch the case facts up and store the run as of the date (today when none is given, moving with the
    clock); with `every`, again every so many seconds, recomputing only when events arrived or the day
    changed."""
    import time

    from adapters.readmodels import read_models
    from projections import findings_store
    from projections.casefacts import CaseFactsProjection

    app = open_app(db)
    try:
        with read_models(app, [CaseFactsProjection()]) as rm:
            while True:
                rm.catch_up()
                day = business_date(as_of, "--as-of")
                projection = rm.runner.get("casefacts")
                with rm.engine.begin() as conn:
                    findings_store.create(conn)
                    run = findings_store.refresh(conn, app.policies, day, rm.runner.position(projection),
                                                 rm.runner.max_position())
                if run is not None:
                    err_console.print(f"已保存督查结果: 基准日 {run.as_of}, {run.count} 条, 案件事实位置 "
                                      f"{run.casefacts_position}, 计算于 {run.computed_at:%Y-%m-%d %H:%M:%S}")
                elif every is None:
                    err_console.print(f"督查结果 (基准日 {day}) 已是最新, 未重算")
                if every is None:
                    return
                time.sleep(every)
    except KeyboardInterrupt:
        err_console.print("已停止")
    finally:
        app.close()


def _output(findings: list[Any], day: date, division: str | None, raised: Counter[str] | None, json: bool,
            xlsx: Path | None) -> None:
    if json:
        out = sys.stdout
        for f in findings:
            out.write(dumps(f.as_dict()) + "\n")
        return
    if xlsx:
        write_findings(xlsx, findings, day)
    render(findings, day, division, raised, xlsx)


def render(findings: list[Any], day: date, division: str | None, raised: Counter[str] | None,
           xlsx: Path | None) -> None:
    from projections.inspect import RULES, SEVERITY_LABELS, Summary

    if findings and not xlsx:
        t = Table(title=f"发现的问题 (前 {min(SHOWN, len(findings))} 条)")
        for col in ("规则", "严重程度", "户", "区划", "说明"):
            t.add_column(col)
        for f in findings[:SHOWN]:
            style = "red" if f.severity == "severe" else "yellow"
            t.add_row(RULES[f.rule].label, f"[{style}]{SEVERITY_LABELS[f.severity]}[/{style}]", f.household_id or "—",
                      f.division_code, f.detail)
        console.print(t)
    s = Summary.of(findings)
    t = Table(title=f"督查结果 (基准日 {day}{', 区划 ' + division if division else ''})")
    for col in ("规则", "名称", "依据", "严重", "一般", "合计"):
        t.add_column(col, justify="right" if col in ("严重", "一般", "合计") else "left")
    sev: dict[str, Counter[str]] = {r: Counter() for r in RULES}
    for f in findings:
        sev[f.rule][f.severity] += 1
    for r, info in RULES.items():
        t.add_row(r, info.label, info.policy, str(sev[r]["severe"]), str(sev[r]["warning"]), str(s.by_rule[r]))
    t.add_row("", "合计", "", str(s.by_severity["severe"]), str(s.by_severity["warning"]), str(len(findings)))
    console.print(t)
    if raised is not None:
        console.print(f"问题台账: 新登记 {raised['raised']} 个, 已登记过 {raised['already'] + raised['duplicate']} 个"
                      + "".join(f", {k} {v} 个" for k, v in raised.items()
                                if k not in ("raised", "already", "duplicate")))
    if xlsx:
        console.print(f"问题清单已写入 {xlsx}")


def write_findings(path: Path, findings: list[Any], day: date) -> None:
    """The findings as a workbook: a list (问题清单) and counts by rule (汇总), Chinese headers, frozen header
    rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from projections.inspect import RULES, SEVERITY_LABELS, Summary

    wb = Workbook()
    ws = wb.active
    ws.title = "问题清单"
    headers = ("规则", "规则名称", "严重程度", "户编号", "区划代码", "说明", "政策依据", "证据", "问题编号")
    ws.append(headers)
    for f in findings:
        ws.append([f.rule, RULES[f.rule].label, SEVERITY_LABELS[f.severity], f.household_id or "", f.division_code,
                   f.detail, RULES[f.rule].policy, dumps(f.evidence), f.problem_id or ""])
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    for col, width in zip("ABCDEFGHI", (30, 24, 10, 16, 14, 70, 50, 60, 24), strict=True):
        ws.column_dimensions[col].width = width
    summary = wb.create_sheet("汇总")
    summary.append(("规则", "规则名称", "合计", f"基准日 {day}"))
    s = Summary.of(findings)
    for r, info in RULES.items():
        summary.append((r, info.label, s.by_rule[r]))
    summary.append(("", "合计", len(findings)))
    for cell in summary[1]:
        cell.font = Font(bold=True)
    summary.freeze_panes = "A2"
    summary.column_dimensions["A"].width = 32
    summary.column_dimensions["B"].width = 28
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def register(app: typer.Typer) -> None:
    app.command()(inspect)
