"""Stage 40 of the demo: 督查 — the county's legacy histories come in from the national system, departments
send their screening data, and the inspector's rules run over native and imported cases alike.

1. Two national exports are generated the way the national system writes them (two title rows, text cells,
   an older year's spelling of some headers): an older one (2021-12) and the current one. Their households
   carry planted violations of every rule the export can show — fast-in-fast-out, eliminations below the
   line / with a guarantee open / without post-elimination data / without labour, helped-not, a risk without
   a fitting measure, floor only, no developmental measure, a measure listed before identification, a
   household below the line not monitored, no responsible cadre — beside clean cases, a row with a bad ID
   number and a row from a village the division table does not know. Both are imported (the current one
   twice: the second time adds nothing).
2. Departments' files are screened: 医保 hospital stays (over and under the thresholds, unknown persons, a
   bad row), 民政 new 低保 and 住建 dangerous houses for the same households — whose leads village cadres find
   "not meeting the criteria" twice — 教育 dropouts and 水利 water problems.
3. Two histories another system recorded (a county archive: a 3-day public notice the engine would refuse)
   are stored as what they are.
4. Twenty days later the inspectors run every rule, write the findings workbook and raise the problems in
   the double ledger. Native histories of the earlier stages are judged too (their overdue problems, slow
   inclusions, and the township entries the simulated clock records weeks late — 补录倒签).
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.demo import DemoContext
from adapters.importers.national import Divisions
from adapters.importers.national_writer import YEAR_2021_ALIASES, household_rows, write_divisions, write_export
from adapters.usecases import import_national_file, screen_file
from casecore.events import recording_clock
from casecore.household import Household
from casecore.values import HouseholdType, Stage, add_months, make_person_id, month_window

TITLE = "督查: 历史数据导入、部门筛查与规则检查"

OLD_EXPORT = date(2021, 12, 31)
#: the inspectors come this many days after the screening (open leads are then overdue)
INSPECTION_AFTER_DAYS = 20

#: what each planted imported household shows (and how many of each, at least)
PLANTS = ("fast_severe", "fast_warning", "below_line", "open_guarantee", "no_reassessment", "labourless",
          "helped_not", "no_fitting", "floor_only", "no_developmental", "before_identification", "qualifying",
          "no_cadre")
PLANT_LABELS = {
    "fast_severe": "纳入后两个月内帮扶消除", "fast_warning": "纳入四个月后自然消除", "below_line": "消除时收入低于标准",
    "open_guarantee": "消除后住房损毁", "no_reassessment": "消除后未采集信息", "labourless": "无劳动力户标注消除",
    "helped_not": "监测户无措施", "no_fitting": "因病只有产业措施", "floor_only": "有劳动力只有兜底",
    "no_developmental": "有劳动力无开发式措施", "before_identification": "识别前已列措施",
    "qualifying": "收入低于标准未纳入", "no_cadre": "无帮扶责任人",
}
GIVEN = "明华国建志秀英兰芳梅丽春光福德顺荣金银玉桂花海林"
SURNAMES = "杨吴龙石潘张王李陈刘欧陆姚罗胡蒙韦梁莫吕田"


class ExportWriter:
    """National-export rows for generated households of the county, with planted violations."""

    def __init__(self, ctx: DemoContext, county: dict[str, Any], exported_on: date):
        self.ctx = ctx
        self.rng: random.Random = ctx.rng
        self.county = county
        self.exported_on = exported_on
        code = county["code"]
        # people registered in a neighbouring area: their ID numbers never collide with the county's own
        self.area = code[:4] + ("01" if code[4:] != "01" else "02")
        self.used: set[str] = set()
        self.villages = [(t, v) for t in county["townships"] for v in t["villages"]]
        self.old: list[dict[str, str]] = []
        self.new: list[dict[str, str]] = []
        self.plan: Counter[str] = Counter()
        self.serial = 0

    def person(self, relation: str, born: date, labour: str) -> dict[str, str]:
        while True:
            pid = make_person_id(self.area, born, self.rng.randrange(1000))
            if pid not in self.used:
                self.used.add(pid)
                break
        name = self.rng.choice(SURNAMES) + self.rng.choice(GIVEN) + self.rng.choice(GIVEN)
        return {"人编号": f"P{len(self.used):06d}", "姓名": name, "证件号码": pid, "证件类型": "居民身份证",
                "出生日期": born.strftime("%Y%m%d"), "性别": "男" if int(pid[16]) % 2 else "女", "民族": "侗族",
                "与户主关系": relation, "健康状况": "健康", "劳动技能": labour,
                "是否参加城乡居民基本医疗保险": "是", "是否参加城镇职工基本医疗保险": "否"}

    def family(self, labourless: bool = False) -> list[dict[str, str]]:
        born = date(1965 + self.rng.randrange(25), 1 + self.rng.randrange(12), 1 + self.rng.randrange(28))
        head_labour = "丧失劳动力" if labourless else self.rng.choice(["普通劳动力", "普通劳动力", "技能劳动力"])
        people = [self.person("户主", born, head_labour)]
        people.append(self.person("配偶", born + timedelta(days=self.rng.randrange(-900, 900)),
                                  "无劳动力" if labourless else "弱劳动力或半劳动力"))
        if not labourless and self.rng.random() < 0.6:
            people.append(self.person("之子", date(2010 + self.rng.randrange(8), 3, 1 + self.rng.randrange(28)), ""))
        return people

    def household(self, plant: str | None, ident: date) -> None:
        township, village = self.villages[self.serial % len(self.villages)]
        self.serial += 1
        hid = f"GJ{village['code']}{self.serial:04d}"
        line = self.ctx.app.policies.on(ident).income.monitoring_line
        alleviated = self.rng.random() < 0.5
        base = {
            "县": self.county["name"], "乡": township["name"], "村": village["name"], "户编号": hid,
            "户类型": "脱贫户" if alleviated else "一般农户",
            "监测对象类别": "脱贫不稳定户" if alleviated else "边缘易致贫户",
            "识别监测时间": ident.strftime("%Y%m"), "风险是否已消除": "否", "致贫/返贫风险1": "因病",
            "人均纯收入（元）": str(int(line) - 800 - self.rng.randrange(2000)), "工资性收入": "9000",
            "是否危房户": "否", "是否解决安全饮用水": "是", "健康帮扶": "家庭医生签约服务",
            "产业帮扶": "茶叶种植", "实施开发式帮扶措施情况": "是", "帮扶责任人": f"帮扶干部{self.serial:03d}",
            "信息采集人": "村信息员",
        }
        labourless = plant == "labourless"
        people = self.family(labourless)

        def eliminated(months: int, mode: str = "帮扶消除", per_capita: int | None = None, **extra: str) -> None:
            out = add_months(ident, months)
            post_line = self.ctx.app.policies.on(out).income.monitoring_line
            pc = per_capita if per_capita is not None else int(post_line) + 1500 + self.rng.randrange(3000)
            base.update({"风险是否已消除": "是", "风险消除方式": mode, "消除监测时间": out.strftime("%Y%m"),
                         "风险消除后家庭人均纯收入": str(pc), "风险消除后家庭纯收入": str(pc * len(people)),
                         "风险消除后是否住房损毁": "否", "风险消除后是否饮水设施损毁": "否",
                         "风险消除后是否义务教育阶段适龄儿童少年失学辍学": "否",
                         "风险消除后是否有家庭成员未参加城乡居民（职工）基本医疗保险": "否", **extra})

        if plant == "fast_severe":
            eliminated(2)
        elif plant == "fast_warning":
            eliminated(4, mode="自然消除")
        elif plant == "below_line":
            out_line = self.ctx.app.policies.on(add_months(ident, 8)).income.monitoring_line
            eliminated(8, per_capita=int(out_line) - 150)
        elif plant == "open_guarantee":
            eliminated(9, **{"风险消除后是否住房损毁": "是"})
        elif plant == "no_reassessment":
            eliminated(10)
            for k in [k for k in base if k.startswith("风险消除后")]:
                base[k] = ""
        elif plant == "labourless":
            eliminated(8, mode="自然消除")
        elif plant == "helped_not":
            base.update({"健康帮扶": "", "产业帮扶": ""})
        elif plant == "no_fitting":
            base.update({"健康帮扶": ""})
        elif plant == "floor_only":
            base.update({"致贫/返贫风险1": "因残", "健康帮扶": "", "产业帮扶": "", "综合保障": "农村低保"})
        elif plant == "no_developmental":
            base.update({"产业帮扶": ""})
        elif plant == "qualifying":
            base.update({"监测对象类别": "", "识别监测时间": "", "致贫/返贫风险1": "", "健康帮扶": "",
                         "产业帮扶": ""})
        elif plant == "no_cadre":
            base.update({"帮扶责任人": ""})
        elif plant is None and self.rng.random() < 0.4:
            eliminated(7 + self.rng.randrange(6))
        rows = household_rows(base, people)
        if plant == "before_identification":
            # the older export lists the household, not yet monitored, with its measure already
            older = {**base, "监测对象类别": "", "识别监测时间": "", "致贫/返贫风险1": "", "健康帮扶": ""}
            self.old.extend(household_rows(older, people))
        self.new.extend(rows)
        self.plan[plant or "clean"] += 1

    def flawed_rows(self) -> None:
        """A row whose ID number is wrong and a row from a village the division table does not have."""
        good = dict(self.new[0])
        good["证件号码"] = good["证件号码"][:17] + ("0" if good["证件号码"][17] != "0" else "1")
        good["户编号"] = good["户编号"][:-4] + "9998"
        elsewhere = dict(self.new[1])
        elsewhere.update({"村": "外县某村", "户编号": elsewhere["户编号"][:-4] + "9999"})
        self.new.extend([good, elsewhere])


def write_exports(ctx: DemoContext, county: dict[str, Any], exported_on: date, out: Path,
                  n: int) -> tuple[Path, Path, Path, Counter[str]]:
    writer = ExportWriter(ctx, county, exported_on)
    plants = [p for p in PLANTS for _ in range(max(2, n // 40))]
    clean = max(0, n - len(plants))
    order = plants + [None] * clean
    ctx.rng.shuffle(order)
    for plant in order:
        ident = date(2022, 1, 1) + timedelta(days=ctx.rng.randrange(365))
        writer.household(plant, ident.replace(day=1))
    writer.flawed_rows()
    villages = [(v["code"], county["name"], t["name"], v["name"]) for t in county["townships"] for v in t["villages"]]
    divisions = write_divisions(out / f"区划表_{county['code']}.csv", villages)
    old = write_export(out / f"监测对象信息_{county['code']}_{OLD_EXPORT:%Y%m%d}.xlsx", writer.old,
                       aliases=YEAR_2021_ALIASES, exported_on=OLD_EXPORT, unit=county["name"])
    new = write_export(out / f"监测对象信息_{county['code']}_{exported_on:%Y%m%d}.xlsx", writer.new,
                       exported_on=exported_on, unit=county["name"])
    return divisions, old, new, writer.plan


# ---------------------------------------------------------------------------------------------- screening


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _outside(ctx: DemoContext) -> list[dict[str, Any]]:
    """Native households never monitored and never in a procedure (read from the case-facts tables)."""
    import sqlalchemy as sa

    from adapters.readside.readmodels import read_models
    from projections.casefacts import CaseFactsProjection
    from projections.casefacts import households as cf_households

    with read_models(ctx.app, [CaseFactsProjection()]) as rm:
        rm.catch_up()
        with rm.engine.connect() as conn:
            untouched = set(conn.execute(sa.select(cf_households.c.household_id).where(
                cf_households.c.stage == Stage.NOT_MONITORED.value, cf_households.c.cycle == 0,
                cf_households.c.imported.is_(False))).scalars())
    out = [h for hid, h in sorted(ctx.shared.get("households", {}).items()) if hid in untouched]
    ctx.rng.shuffle(out)
    return out


def screening(ctx: DemoContext, out: Path, day: date, report: Counter[str]) -> set[str]:
    """Department files screened on `day` (and ten days later); returns the households whose warnings the
    village found not meeting the criteria twice."""
    outside = _outside(ctx)
    households = ctx.shared.get("households", {})
    monitored = sorted(ctx.shared.get("monitored", set()))
    if len(outside) < 12:
        return set()
    pick = iter(outside)
    general = [h for h in outside if h["household_type"] == HouseholdType.GENERAL.value][:3]
    alleviated = [h for h in outside if h["household_type"] == HouseholdType.POVERTY_ALLEVIATED.value][:2]
    taken = {h["household_id"] for h in general + alleviated}
    stays = []
    for h in general:
        stays.append([h["members"][0]["person_id"], h["members"][0]["name"], "2023-10-08", "2023-10-20", "12000.50"])
    for h in alleviated:  # two stays under the single threshold, over the yearly total together
        pid, name = h["members"][0]["person_id"], h["members"][0]["name"]
        stays += [[pid, name, "2023-03-01", "2023-03-09", "3500"], [pid, name, "2023-08-01", "2023-08-06", "3400"]]
    small = next(h for h in pick if h["household_id"] not in taken)
    taken.add(small["household_id"])
    stays.append([small["members"][0]["person_id"], small["members"][0]["name"], "2023-06-01", "2023-06-05", "800"])
    stranger = make_person_id("110101", date(1975, 5, 5), 123)
    stays.append([stranger, "外省参保人", "2023-07-01", "2023-07-10", "15000"])
    stays.append([small["members"][0]["person_id"], small["members"][0]["name"], "2023-02-30", "2023-03-02", "900"])
    hospital = _csv(out / "医保_住院结算.csv", ["身份证号", "姓名", "入院日期", "出院日期", "个人自付"], stays)

    warned = [h for h in outside if h["household_id"] not in taken][:4]
    taken |= {h["household_id"] for h in warned}
    from adapters.output.sheets import write_rows

    dibao = write_rows(out / "民政_新增低保.xlsx", "Sheet", [
        ["民政局新增农村低保对象名单"], ["户主身份证号", "户主姓名", "低保类型", "纳入原因", "纳入时间", "是否整户"]],
        ([h["members"][0]["person_id"], h["members"][0]["name"], "农村低保", "因病", "2023-09-15", "是"]
         for h in warned))
    houses = [[h["members"][0]["person_id"], h["members"][0]["name"], "D级", "2023-11-02"] for h in warned]
    others = [h for h in outside if h["household_id"] not in taken][:2]
    houses += [[h["members"][0]["person_id"], h["members"][0]["name"], "B级", "2023-11-02"] for h in others]
    housing = _csv(out / "住建_危房鉴定.csv", ["户主身份证号", "户主姓名", "危房等级", "鉴定日期"], houses)
    children = [(hid, m) for hid in monitored for m in households.get(hid, {}).get("members", [])
                if m.get("in_school")][:3]
    dropout = _csv(out / "教育_控辍保学.csv", ["学生身份证号", "学生姓名", "学校", "辍学时间"],
                   [[m["person_id"], m["name"], "县第二中学", "2023-10-09"] for _, m in children])
    water_households = [households[hid] for hid in monitored[:2] if hid in households]
    water = _csv(out / "水利_饮水安全.csv", ["身份证号", "姓名", "问题描述", "核查日期"],
                 [[h["members"][0]["person_id"], h["members"][0]["name"], "水源枯水期断流", "2023-11-20"]
                  for h in water_households])

    def run_file(kind: str, path: Path, on: date) -> None:
        r = screen_file(ctx.app, kind, path, on)
        report["部门线索"] += r.leads
        report["已登记过的线索"] += r.already
        report["查无此人"] += len(r.unknown_persons)
        report["未能读取的行"] += len(r.rejected)
        report["未达预警条件"] += len(r.not_flagged)
        ctx.progress(r.rows)

    def not_meets(on: date) -> None:
        cmds = []
        for h in warned:
            agg = ctx.app.get_household(h["household_id"])
            for lead in agg.leads.values():
                if lead["status"] == "open" and lead["source"] == "department_warning":
                    cmds.append(_command("verify_lead", on, ctx.shared["actor_for"]("village", h["division_code"]),
                                         household_id=h["household_id"], lead_id=lead["lead_id"],
                                         finding="not_meets"))
        ctx.submit(cmds)

    run_file("hospital", hospital, day)
    run_file("hospital", hospital, day)  # the same file again: no lead twice
    run_file("dibao", dibao, day)
    not_meets(day + timedelta(days=3))
    later = day + timedelta(days=10)
    run_file("housing", housing, later)
    not_meets(later + timedelta(days=2))
    run_file("dropout", dropout, later)
    run_file("water", water, later)
    ctx.shared["screening_files"] = [hospital, dibao, housing, dropout, water]
    return {h["household_id"] for h in warned} | taken


def _command(name: str, on: date, actor: dict[str, Any], **fields: Any) -> Any:
    from casecore.commands import parse_command

    return parse_command({"command": name, "on": on.isoformat(), "actor": actor, **fields})


def archive_histories(ctx: DemoContext, households: list[dict[str, Any]], start: date) -> int:
    """Inclusions another system recorded (a county archive): stored as the facts they are, without today's
    guards — their public notice lasted three days, one archive clerk signed every level, the second was
    identified 突发严重困难户 on an income well above the data check's figure, and its last income
    assessment was stored with a date ten days after the day it was recorded."""
    origin = "county_archive:演示"
    stored = 0
    for i, h in enumerate(households):
        agg: Household = ctx.app.get_household(h["household_id"])
        actor = ctx.shared["actor_for"]("village", h["division_code"])
        d = start + timedelta(days=7 * i)
        common = {"actor": actor, "command_id": None, "note": "县档案补录", "evidence": [], "origin": origin}
        sudden = i == 1
        # the archive recorded each act on its business day (a case's recorded times never go backwards, so
        # the act typed ten days ahead below is recorded on its own earlier day only after these)
        clock_at = [datetime.combine(d, time(2, 0), UTC)]

        def t(cls: Any, on: date, agg: Household = agg, clock_at: list[datetime] = clock_at, **payload: Any) -> None:
            clock_at[0] = max(clock_at[0], datetime.combine(on, time(2, 0), UTC))
            with recording_clock(lambda: clock_at[0]):
                agg.trigger_event(cls, on=on, **payload)

        if sudden:  # 突发严重困难户 on 25,000 a head (Guizhou data check 1111_18 asks to verify over 20,000)
            size = max(len([m for m in agg.members.values() if m.get("removed_on") is None]), 1)
            start_w, end_w = month_window(d)
            t(Household.IncomeAssessed, on=d, period_start=start_w, period_end=end_w,
              net_income=Decimal(25000 * size), rigid_expenditure=Decimal(0), household_size=size,
              per_capita_income=Decimal(25000), **common)
        t(Household.LeadRecorded, on=d, lead_id=f"{h['household_id']}-A1", source="cadre_screening",
          risk_types=["illness"], detail="档案记录", opens_procedure=True, cycle=agg.cycle + 1,
          stage=Stage.IN_INCLUSION.value, adds_risks=[], **common)
        steps = [(Household.LeadVerified, 1, "verified", {"lead_id": f"{h['household_id']}-A1", "finding": "meets"}),
                 (Household.ApplicationSigned, 2, "applied", {}),
                 (Household.PublicityOpened, 3, "in_publicity", {}),
                 (Household.PublicityClosed, 6, "publicity_closed", {"opened_on": d + timedelta(days=3)}),
                 (Household.TownshipReviewed, 7, "township_passed", {"decision": "pass"}),
                 (Household.CountyDecided, 8, "county_approved", {"decision": "approve", "category":
                                                                   "sudden_hardship" if sudden else "marginal"
                                                                   if h["household_type"] == "general" else
                                                                   "unstable_alleviated", "risk_types": ["illness"]}),
                 (Household.EnteredSystem, 9, "entered", {})]
        for cls, offset, step, payload in steps:
            stage = Stage.MONITORED.value if step == "entered" else Stage.IN_INCLUSION.value
            t(cls, on=d + timedelta(days=offset), procedure="inclusion", step=step, stage=stage, **payload, **common)
        if sudden:  # recorded on d + 10, dated d + 20: a date typed ten days ahead
            size = max(len([m for m in agg.members.values() if m.get("removed_on") is None]), 1)
            start_w, end_w = month_window(d + timedelta(days=20))
            recorded = datetime.combine(d + timedelta(days=10), time(2, 0), UTC)
            with recording_clock(lambda at=recorded: at):
                agg.trigger_event(Household.IncomeAssessed, on=d + timedelta(days=20), period_start=start_w,
                                  period_end=end_w, net_income=Decimal(25000 * size), rigid_expenditure=Decimal(0),
                                  household_size=size, per_capita_income=Decimal(25000), **common)
        ctx.app.save(agg)
        stored += 1
    return stored


# ---------------------------------------------------------------------------------------------- the stage


def run(ctx: DemoContext) -> dict[str, int]:
    from projections.queries.inspector import RULES

    county = ctx.shared["county"]
    today: date = ctx.shared.get("today") or ctx.start
    out = ctx.output_dir / "inspection"
    out.mkdir(parents=True, exist_ok=True)
    exported_on = today
    divisions_csv, old, new, plan = write_exports(ctx, county, exported_on, out, max(40, ctx.households // 8))
    divisions = Divisions.load(divisions_csv)
    first = import_national_file(ctx.app, old, divisions, OLD_EXPORT)
    current = import_national_file(ctx.app, new, divisions, exported_on)
    again = import_national_file(ctx.app, new, divisions, exported_on)
    ctx.progress(first.people + current.people + again.people)

    screened: Counter[str] = Counter()
    used = screening(ctx, out, today, screened)
    rest = [h for h in _outside(ctx) if h["household_id"] not in used][:2]
    archived = archive_histories(ctx, rest, date(2022, 5, 9))

    inspected_on = today + timedelta(days=INSPECTION_AFTER_DAYS)
    actor = ctx.shared["actor_for"]("inspector", county["code"] + "000000")
    from adapters.usecases import inspect

    try:
        findings = inspect(ctx.app, inspected_on, every_projection=True).findings
    except ValueError:  # an in-memory event store has no tables beside it: no inspection to show
        findings = []
    from adapters.output.workbooks import write_findings
    from adapters.readside.places import Places, names_of_county

    report = out / f"督查问题清单_{county['code']}_{inspected_on.isoformat()}.xlsx"
    write_findings(report, findings, inspected_on, county["code"], Places(names_of_county(county)))
    ctx.shared.setdefault("report_files", []).append(report)
    from adapters.usecases import raise_problems_from_findings

    raised, _ = raise_problems_from_findings(ctx.app, findings, inspected_on, actor,
                                             handle=lambda cmds: [o for _, o in ctx.submit(cmds)])
    ctx.shared["today"] = inspected_on

    by_rule = Counter(f.rule for f in findings)
    result: dict[str, int] = {
        "国家系统导出: 户": current.households,
        "导入事实 (两次导出)": first.events + current.events,
        "重复导入新增事实": again.events,
        "未能读取的行": len(current.rejected),
        "区划未匹配的行": sum(current.unmatched_divisions.values()),
        **{f"注入: {PLANT_LABELS[p]}": plan[p] for p in PLANTS},
        **{f"筛查: {k}": v for k, v in screened.items()},
        "县档案补录的历史 (公示3天)": archived,
        "督查发现问题": len(findings),
        "其中严重": sum(1 for f in findings if f.severity == "severe"),
        **{f"规则: {info.label}": by_rule[rule] for rule, info in RULES.items()},
        "登记入问题台账": raised["raised"],
        "已在问题台账": raised["already"],
    }
    return result
