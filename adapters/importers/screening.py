"""Department screening (部门筛查预警): files from 医保, 民政, 教育, 住建 and 水利 become `department_warning` leads.

Each kind declares, in one place (`KINDS`), the headers its department uses for each field and which fields
it needs. A row is matched to a household through the person index of the case-facts projection (citizen
ID → household); unknown persons and unreadable rows are reported with their row numbers. A lead's id is
derived from the row's content, so the same row never makes two leads, however often the file is screened.

- `hospital` (医保): a stay whose self-pay is over the single-stay threshold, or the stay that takes the
  person's yearly total over the yearly threshold (thresholds by household type, policy `screening.hospital`,
  since its date), for a household not monitored, where (household net income − the household's self-pay of
  that year) ÷ size is below the line (the newest income assessment; no assessment: flagged for a visit).
- `dibao` (民政): a household newly covered by 低保 (since the policy's date), risks from the reason given.
- `dropout` (教育), `housing` (住建, C- or D-grade only), `water` (水利): an open guarantee.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adapters.importers.national import cell_text
from adapters.integration.intake import validation_message
from adapters.readside.readmodels import read_models
from casecore import limits as lim
from casecore.application import CaseManagement
from casecore.commands import Command, parse_command
from casecore.policy import per_capita as exact_per_capita
from casecore.values import CENT, HouseholdType, RiskType, Stage, check_person_id
from projections.casefacts import CaseFactsProjection, household_facts, known_leads, person_households


@dataclass(frozen=True)
class Kind:
    """One department's file: its fields with the headers it may use, and the fields it needs."""

    name: str
    label: str
    department: str
    columns: dict[str, tuple[str, ...]]
    required: tuple[str, ...]


PERSON = ("身份证号", "身份证号码", "证件号码", "公民身份号码", "户主身份证号", "学生身份证号", "参保人身份证号")
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("hospital", "医保住院自付", "医疗保障局", {
        "person_id": PERSON, "name": ("姓名", "参保人姓名", "患者姓名"),
        "admitted_on": ("入院日期", "入院时间"), "discharged_on": ("出院日期", "出院时间", "结算日期"),
        "self_pay": ("个人自付", "个人自付金额", "自付金额", "合规自付", "个人负担金额"),
    }, ("person_id", "discharged_on", "self_pay")),
    Kind("dibao", "新增低保", "民政局", {
        "person_id": PERSON, "name": ("姓名", "户主姓名"),
        "covered_on": ("纳入时间", "审批时间", "享受时间", "纳入日期"),
        "reason": ("纳入原因", "致贫原因", "保障原因", "原因"), "type": ("低保类型", "保障类型"),
        "whole": ("是否整户", "整户纳入"),
    }, ("person_id", "covered_on", "reason")),
    Kind("dropout", "义务教育阶段辍学", "教育局", {
        "person_id": PERSON, "name": ("姓名", "学生姓名"), "school": ("学校", "学校名称", "原就读学校"),
        "dropped_on": ("辍学时间", "辍学日期", "日期"), "reason": ("辍学原因", "原因"),
    }, ("person_id", "dropped_on")),
    Kind("housing", "农村危房", "住房和城乡建设局", {
        "person_id": PERSON, "name": ("姓名", "户主姓名"), "grade": ("危房等级", "鉴定等级", "等级"),
        "assessed_on": ("鉴定日期", "鉴定时间", "日期"),
    }, ("person_id", "grade", "assessed_on")),
    Kind("water", "饮水不安全", "水利局", {
        "person_id": PERSON, "name": ("姓名", "户主姓名"), "problem": ("问题", "问题描述", "饮水问题"),
        "found_on": ("核查日期", "发现日期", "日期"),
    }, ("person_id", "found_on")),
)}

#: 低保 reasons → risk types
DIBAO_REASONS = (("病", RiskType.ILLNESS), ("残", RiskType.DISABILITY), ("灾", RiskType.DISASTER),
                 ("意外", RiskType.ACCIDENT), ("学", RiskType.SCHOOLING), ("劳动力", RiskType.LACK_OF_LABOUR))


class ScreeningUnreadable(Exception):
    """The file cannot be used at all (the message says what to fix)."""


@dataclass
class Hit:
    """A row that makes a lead (once its household is known and, for hospital stays, qualifies)."""

    row: int
    person_id: str
    on: date
    risk_types: list[str]
    detail: str
    digest: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    kind: str
    rows: int = 0
    leads: int = 0
    already: int = 0
    not_flagged: list[tuple[int, str]] = field(default_factory=list)
    unknown_persons: list[tuple[int, str]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "rows": self.rows, "leads": self.leads, "already_recorded": self.already,
            "not_flagged": [{"row": n, "reason": r} for n, r in self.not_flagged],
            "unknown_persons": [{"row": n, "person_id": p} for n, p in self.unknown_persons],
            "rejected_rows": [{"row": n, "reason": r} for n, r in self.rejected],
            "refused": [{"row": n, "reason": r} for n, r in self.refused],
        }


# ---------------------------------------------------------------------------------------------- reading


def _norm(header: Any) -> str:
    return re.sub(r"\s+", "", "" if header is None else str(header)).replace("(", "（").replace(")", "）")


def read_rows(path: Path, kind: Kind) -> Iterator[tuple[int, dict[str, str]]]:
    """The file's rows as {field: text}, numbered as a spreadsheet shows them. Raises ScreeningUnreadable
    naming every required field whose column is missing."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        table = list(_xlsx(path))
    else:
        table = list(_csv(path))
    known = {h for headers in kind.columns.values() for h in headers}
    header_at = next((i for i, (_, r) in enumerate(table[:10]) if known & {_norm(v) for v in r}), None)
    if header_at is None:
        raise ScreeningUnreadable(f"{path.name}: 找不到表头 (应有{'、'.join(kind.columns['person_id'][:2])}等列)")
    header = [_norm(v) for v in table[header_at][1]]
    where: dict[str, int] = {}
    for fname, headers in kind.columns.items():
        for h in headers:
            if h in header:
                where[fname] = header.index(h)
                break
    missing = [f"{f} ({'/'.join(kind.columns[f][:3])})" for f in kind.required if f not in where]
    if missing:
        raise ScreeningUnreadable(f"{path.name} 缺少{kind.label}必需的列: {'、'.join(missing)}")
    for n, values in table[header_at + 1 :]:
        if all(cell_text(v) == "" for v in values):
            continue
        yield n, {f: cell_text(values[i]) if i < len(values) else "" for f, i in where.items()}


def _xlsx(path: Path) -> Iterator[tuple[int, list[Any]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # not a workbook
        raise ScreeningUnreadable(f"无法打开工作簿 {path.name}: {exc}") from None
    try:
        for n, row in enumerate(wb.worksheets[0].iter_rows(values_only=True), start=1):
            yield n, list(row)
    finally:
        wb.close()


def _csv(path: Path) -> Iterator[tuple[int, list[Any]]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            with path.open(encoding=encoding, newline="") as fh:
                reader = csv.reader(fh)
                rows = list(reader)
            break
        except UnicodeDecodeError:
            continue
        except OSError as exc:
            raise ScreeningUnreadable(f"无法读取 {path}: {exc}") from None
        except csv.Error as exc:  # a cell beyond the csv module's field limit (128 KiB), a stray NUL …
            raise ScreeningUnreadable(
                f"{path.name} 第{reader.line_num}行无法读取 ({exc}); 请检查该行 (单元格过长或含有非法字符) 后重新报送"
            ) from None
    else:
        raise ScreeningUnreadable(f"{path.name}: 编码无法识别 (应为 UTF-8 或 GBK)")
    yield from enumerate(rows, start=1)


def _day(text: str, what: str) -> date:
    v = text.strip().split(" ")[0]
    m = re.fullmatch(r"(\d{4})[-/.年]?(\d{1,2})[-/.月]?(\d{1,2})日?", v)
    if m is None:
        raise ValueError(f"{what} “{text[:40]}” 不是日期")
    try:
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise ValueError(f"{what} “{text[:40]}” 不是有效日期") from None
    problem = lim.date_problem(day)
    if problem:
        raise ValueError(f"{what}: {problem}")
    return day


def _money(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.replace(",", "").replace("元", "").strip())
    except InvalidOperation:
        raise ValueError(f"{what} “{text[:40]}” 不是金额") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{what} “{text[:40]}” 不是有效金额")
    problem = lim.money_problem(value)
    if problem:
        raise ValueError(f"{what} “{text[:40]}” {problem}")
    return value


def _person(text: str) -> str:
    v = text.strip().upper()
    if len(v) in (20, 22):
        v = v[:18]
    return check_person_id(v)


def _digest(kind: str, values: dict[str, Any]) -> str:
    canonical = "|".join(f"{k}={values[k]}" for k in sorted(values))
    return hashlib.sha1(f"{kind}|{canonical}".encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------- kinds


def read_hits(kind: Kind, rows: Iterator[tuple[int, dict[str, str]]], report: Report) -> list[Hit]:
    """Rows read and checked into hits (before households are known); bad rows into the report."""
    hits = []
    for n, row in rows:
        report.rows += 1
        try:
            _check_cells(kind, row)
            pid = _person(row["person_id"])
            hit = _read(kind.name, n, pid, row)
        except ValueError as exc:
            report.rejected.append((n, str(exc)))
            continue
        if hit is None:
            continue
        hits.append(hit)
    return hits


def _check_cells(kind: Kind, row: dict[str, str]) -> None:
    """Every cell read is short enough for the lead it may become (its detail joins a few cells)."""
    for fname, value in row.items():
        problem = lim.free_text_problem(value, lim.CELL_MAX)
        if problem:
            raise ValueError(f"{kind.columns[fname][0]}: {problem}")



def _member(person_id: str) -> str:
    """How a system-written lead refers to a household member: by ID number (masked where the reader is not
    entitled), never by name."""
    return f"家庭成员 {person_id}"


def _read(kind: str, n: int, pid: str, row: dict[str, str]) -> Hit | None:
    if kind == "hospital":
        out = _day(row["discharged_on"], "出院日期")
        admitted = _day(row["admitted_on"], "入院日期") if row.get("admitted_on") else None
        if admitted is not None and admitted > out:
            raise ValueError(f"入院日期 {admitted} 晚于出院日期 {out}")
        pay = _money(row["self_pay"], "个人自付")
        values = {"admitted": admitted, "discharged": out, "self_pay": pay}
        return Hit(n, pid, out, [RiskType.ILLNESS.value], "", _digest(kind, values),
                   {"admitted": admitted, "discharged": out, "self_pay": pay})
    if kind == "dibao":
        on = _day(row["covered_on"], "纳入时间")
        reason = row["reason"]
        risks = list(dict.fromkeys(r.value for key, r in DIBAO_REASONS if key in reason)) or [RiskType.OTHER.value]
        whole = row.get("whole", "") in ("是", "整户")
        # the department's own words may name an illness: the lead says which risks they point to
        detail = (f"{on} 新纳入{row.get('type') or '低保'}{'(整户)' if whole else ''}, "
                  f"原因: {'、'.join(RiskType(r).label for r in risks)}")
        return Hit(n, pid, on, risks, detail, _digest(kind, {"on": on, "reason": reason}))
    if kind == "dropout":
        on = _day(row["dropped_on"], "辍学时间")
        detail = f"{_member(pid)} 义务教育阶段辍学 ({row.get('school') or '学校不详'}, {on})"
        return Hit(n, pid, on, [RiskType.SCHOOLING.value], detail,
                   _digest(kind, {"on": on, "school": row.get("school")}))
    if kind == "housing":
        grade = row["grade"].upper().replace("级", "").replace("危房", "").strip()
        on = _day(row["assessed_on"], "鉴定日期")
        if grade in ("A", "B"):
            return None
        if grade not in ("C", "D"):
            raise ValueError(f"危房等级 “{row['grade']}” 应为 A、B、C 或 D")
        return Hit(n, pid, on, [RiskType.HOUSING.value], f"{on} 鉴定为{grade}级危房",
                   _digest(kind, {"on": on, "grade": grade}))
    on = _day(row["found_on"], "核查日期")
    problem = row.get("problem") or "饮水不安全"
    return Hit(n, pid, on, [RiskType.DRINKING_WATER.value], f"{on} 核查发现: {problem}",
               _digest(kind, {"on": on, "problem": problem}))


def _since(app: CaseManagement, kind: str, on: date) -> date | None:
    s = app.policies.on(on).screening
    return {"hospital": s.hospital.since, "dibao": s.dibao_since}.get(kind)


def hospital_leads(app: CaseManagement, hits: list[Hit], household_of: dict[str, str],
                   facts: dict[str, dict[str, Any]], report: Report, on: date) -> list[tuple[Hit, str]]:
    """The stays that make a lead: over a threshold (single stay, or the stay that takes the person's year
    over the yearly total), of a household not monitored whose per-capita income after that year's
    self-pay is below the line in force on the screening's date `on` (the decision being made)."""
    line = app.policies.monitoring_line(on)
    by_person_year: dict[tuple[str, int], list[Hit]] = defaultdict(list)
    household_year: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for h in hits:
        by_person_year[(h.person_id, h.on.year)].append(h)
        household_year[(household_of[h.person_id], h.on.year)] += h.data["self_pay"]
    out = []
    for (pid, year), stays in sorted(by_person_year.items()):
        hid = household_of[pid]
        f = facts[hid]
        if f["stage"] in (Stage.MONITORED.value, Stage.IN_EXIT.value):
            report.not_flagged.extend((s.row, f"户 {hid} 已在监测") for s in stays)
            continue
        total = Decimal(0)
        crossed_at: int | None = None
        for s in sorted(stays, key=lambda x: (x.on, x.row)):
            policy = app.policies.on(s.on)
            t = policy.screening.hospital
            alleviated = f["household_type"] == HouseholdType.POVERTY_ALLEVIATED.value
            single = t.poverty_alleviated_single_stay if alleviated else t.general_single_stay
            yearly = t.poverty_alleviated_yearly_total if alleviated else t.general_yearly_total
            before, total = total, total + s.data["self_pay"]
            over_single = s.data["self_pay"] > single
            crosses = before <= yearly < total
            if crosses:
                crossed_at = s.row
            if not (over_single or crosses):
                reason = (f"年度累计已于第{crossed_at}行超过 {yearly} 元" if crossed_at is not None else
                          f"自付 {s.data['self_pay']} 元未超过单次 {single} 元, 年度累计 {total} 元未超过 {yearly} 元")
                report.not_flagged.append((s.row, reason))
                continue
            spent = household_year[(hid, year)]
            why = (f"单次住院自付 {s.data['self_pay']} 元超过 {single} 元" if over_single
                   else f"年度累计自付 {total} 元超过 {yearly} 元")
            if f["net_income"] is None:
                per_capita_text = "无收入核算, 请入户核实收入"
            else:
                size = f["household_size"] or f["size"] or 1
                exact = exact_per_capita(Decimal(f["net_income"]), spent, size)  # compared unrounded
                per_capita = exact.quantize(CENT, ROUND_HALF_UP)
                if exact >= line:
                    report.not_flagged.append((s.row, f"扣除自付后人均纯收入 {per_capita} 元不低于监测标准 {line} 元"))
                    continue
                per_capita_text = f"扣除本年自付 {spent} 元后人均纯收入 {per_capita} 元, 低于监测标准 {line} 元"
            stay = f"住院 {s.data['admitted'] or '—'} 至 {s.data['discharged']}"
            s.detail = f"{_member(pid)} {stay}; {why}; {per_capita_text}"
            out.append((s, hid))
    return out


# ---------------------------------------------------------------------------------------------- screening


def screen(app: CaseManagement, kind_name: str, path: Path, on: date, unit: str | None = None,
           batch_size: int = 500) -> Report:
    """Screen one department file: leads recorded on `on` (the business date of the screening)."""
    kind = KINDS[kind_name]
    report = Report(kind=kind.name)
    hits = read_hits(kind, read_rows(path, kind), report)
    since = {h.row: _since(app, kind.name, h.on) for h in hits}
    kept = []
    for h in hits:
        if since[h.row] is not None and h.on < since[h.row]:
            report.not_flagged.append((h.row, f"{h.on} 早于筛查起始日期 {since[h.row]}"))
        else:
            kept.append(h)
    with read_models(app, [CaseFactsProjection()]) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            household_of = person_households(conn, [h.person_id for h in kept])
            facts = household_facts(conn, set(household_of.values()), on)
            leads_known = known_leads(conn, [lead_id(kind.name, h, household_of[h.person_id]) for h in kept
                                             if h.person_id in household_of])
    matched = []
    for h in kept:
        if h.person_id not in household_of:
            report.unknown_persons.append((h.row, h.person_id))
        else:
            matched.append(h)
    pairs = (hospital_leads(app, matched, household_of, facts, report, on) if kind.name == "hospital"
             else [(h, household_of[h.person_id]) for h in matched])
    actor = {"id": f"screen-{kind.name}", "name": f"{kind.label}筛查", "role": "department",
             "unit": unit or kind.department}
    cmds: list[tuple[Hit, Command]] = []
    for h, hid in pairs:
        lid = lead_id(kind.name, h, hid)
        if lid in leads_known:
            report.already += 1
            continue
        try:
            cmd = parse_command({
                "command": "record_lead", "on": on.isoformat(), "actor": actor, "command_id": lid,
                "household_id": hid, "lead_id": lid, "source": "department_warning", "risk_types": h.risk_types,
                "detail": f"{kind.label}: {h.detail}", "evidence": [f"{path.name} 第{h.row}行"]})
        except ValidationError as exc:  # a value beyond the contract's limits: this row's lead only
            report.refused.append((h.row, validation_message(exc)))
            continue
        cmds.append((h, cmd))
    for (h, _), outcome in zip(cmds, app.handle_many([c for _, c in cmds], batch_size=batch_size), strict=True):
        if outcome.ok and outcome.duplicate:
            report.already += 1
        elif outcome.ok:
            report.leads += 1
        else:
            report.refused.append((h.row, outcome.error.message if outcome.error else "refused"))
    return report


def lead_id(kind: str, hit: Hit, household_id: str) -> str:
    """The same row (same content) always gives the same lead id. The person's ID number is not in it: a
    digest of the number beside the masked number (region, last four) and a birth year could be checked
    against every candidate in a second; the household and the row's own values tell rows apart."""
    return f"dw-{kind}-{_digest(kind, {'household': household_id, 'row': hit.digest})}"
