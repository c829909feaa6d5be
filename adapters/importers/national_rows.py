"""Reading one row of the national export (国家防返贫监测信息系统): its Chinese headers, 是/否 flags, YYYYMM
months, amounts as text, and the people's ID numbers, checked cell by cell into the typed facts of one person
(`casecore.legacy.Row`); then one household assembled from its readable rows (`assemble`), which the domain
turns into imported facts (`casecore.legacy.import_household`, through `CaseManagement.import_facts`).

Each check raises `LegacyRowError` with the reason in one sentence: the import reports it with the row's
number and goes on with the rest of the file.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from casecore import limits as lim
from casecore.legacy import Income, LegacyHousehold, Row
from casecore.values import (
    Category,
    ExitMode,
    HouseholdType,
    Labour,
    MeasureType,
    RiskType,
    check_person_id,
    id_birth_date,
)

#: 户类型
HOUSEHOLD_TYPES = {"脱贫户": HouseholdType.POVERTY_ALLEVIATED.value}
#: 监测对象类别 (empty: not a monitored household)
CATEGORIES = {c.label: c.value for c in Category}
#: 劳动技能 → labour capacity
LABOUR = {
    "普通劳动力": Labour.FULL.value, "技能劳动力": Labour.FULL.value, "有劳动能力": Labour.FULL.value,
    "弱劳动力或半劳动力": Labour.WEAK.value, "弱劳动力": Labour.WEAK.value, "半劳动力": Labour.WEAK.value,
    "弱劳动能力": Labour.WEAK.value,
    "丧失劳动力": Labour.NONE.value, "无劳动力": Labour.NONE.value, "丧失劳动能力": Labour.NONE.value,
    "无劳动能力": Labour.NONE.value, "": Labour.NONE.value,
}
#: 致贫/返贫风险 labels (the national system's are the enum's labels) plus spellings seen in exports
RISKS = {r.label: r.value for r in RiskType} | {"因灾": RiskType.DISASTER.value, "因意外": RiskType.ACCIDENT.value,
                                               "因务工就业不稳定": RiskType.UNSTABLE_EMPLOYMENT.value,
                                               "因产业失败": RiskType.INDUSTRY_FAILURE.value}
RISK_COLUMNS = tuple(f"致贫/返贫风险{i}" for i in range(1, 6))
EXIT_MODES = {m.label: m.value for m in ExitMode}
#: the fourteen measure columns → measure type
MEASURE_COLUMNS = {
    "产业帮扶": MeasureType.INDUSTRY.value,
    "就业帮扶": MeasureType.EMPLOYMENT.value,
    "金融帮扶": MeasureType.FINANCE.value,
    "公益岗位帮扶": MeasureType.PUBLIC_WELFARE_JOB.value,
    "健康帮扶": MeasureType.HEALTH.value,
    "义务教育保障": MeasureType.COMPULSORY_EDUCATION.value,
    "教育帮扶": MeasureType.EDUCATION.value,
    "综合保障": MeasureType.SOCIAL_ASSISTANCE.value,
    "住房安全保障": MeasureType.HOUSING.value,
    "饮水安全保障": MeasureType.DRINKING_WATER.value,
    "社会帮扶": MeasureType.SOCIAL.value,
    "搬迁": MeasureType.RELOCATION.value,
    "生产生活条件改善": MeasureType.LIVING_CONDITIONS.value,
    "基础设施建设": MeasureType.INFRASTRUCTURE.value,
}
INCOME_PARTS = ("工资性收入", "生产经营性收入", "财产性收入", "转移性收入", "理赔收入")
POST_INCOME_PARTS = tuple(f"风险消除后{p}" for p in INCOME_PARTS)

#: columns whose value other facts hold (the household, its division, the member, the case's dates, the
#: measures): every other column of a row is kept as it was written (SourceRowsRecorded)
HELD_ELSEWHERE = frozenset({"户编号", "县", "乡", "村", "姓名", "与户主关系", "监测对象类别", "识别监测时间",
                            "风险消除方式", "消除监测时间", *MEASURE_COLUMNS})

_SPLIT = re.compile(r"[,，、;；\n]+")
_YES = {"是", "Y", "y", "1", "TRUE", "True", "true"}
_NO = {"否", "N", "n", "0", "FALSE", "False", "false"}


class LegacyRowError(ValueError):
    """A row that cannot be read; the message says why, in one sentence."""


# ---------------------------------------------------------------------------------------------- reading rows


def yes(value: str) -> bool | None:
    """是 → True, 否 → False, empty or unknown → None."""
    v = value.strip()
    if v in _YES:
        return True
    if v in _NO:
        return False
    return None


def export_month(value: str, column: str) -> date | None:
    """YYYYMM (also YYYY-MM, YYYYMMDD, YYYY年M月) → the 1st of that month; empty → None."""
    v = value.strip()
    if not v:
        return None
    m = re.fullmatch(r"(\d{4})[-/.年]?(\d{1,2})(?:[-/.月]?(\d{1,2})?日?)?月?", v)
    if m is None or (len(m.group(2)) == 1 and not re.search(r"[-/.年]", v)):
        raise LegacyRowError(f"{column} “{value}” 不是年月 (应为 YYYYMM)")
    year, month = int(m.group(1)), int(m.group(2))
    if not (1 <= month <= 12 and lim.DATE_MIN.year <= year <= lim.DATE_MAX.year):
        raise LegacyRowError(f"{column} “{value}” 不是有效的年月")
    return date(year, month, 1)


def export_day(value: str, column: str) -> date | None:
    """YYYYMMDD (also YYYY-MM-DD) → a date; empty → None."""
    v = value.strip().replace("-", "").replace("/", "").replace(".", "")
    if not v:
        return None
    if not re.fullmatch(r"\d{8}", v):
        raise LegacyRowError(f"{column} “{value}” 不是日期 (应为 YYYYMMDD)")
    try:
        return date(int(v[:4]), int(v[4:6]), int(v[6:]))
    except ValueError:
        raise LegacyRowError(f"{column} “{value}” 不是有效日期") from None


def amount(value: str, column: str) -> Decimal | None:
    """Yuan as text (thousands separators allowed) → Decimal; empty → None."""
    v = value.strip().replace(",", "").replace("，", "").replace("元", "")
    if not v:
        return None
    try:
        d = Decimal(v)
    except InvalidOperation:
        raise LegacyRowError(f"{column} “{value[:40]}” 不是金额") from None
    if not d.is_finite():
        raise LegacyRowError(f"{column} “{value[:40]}” 不是金额")
    problem = lim.money_problem(d)
    if problem:
        raise LegacyRowError(f"{column} “{value[:40]}” {problem}")
    return d


def short_text(value: str, column: str, limit: int) -> str:
    """A cell of short text within the contract's limits (length, no control character)."""
    problem = lim.short_text_problem(value, limit)
    if problem:
        raise LegacyRowError(f"{column} “{value[:20]}…” {problem}")
    return value


def cell_text(value: str, column: str) -> str:
    """A cell kept as written (a column no other fact holds): free text within the contract's limits (line
    breaks and tabs allowed, no other control character)."""
    problem = lim.free_text_problem(value, lim.CELL_MAX)
    if problem:
        raise LegacyRowError(f"{column} “{value[:20]}…” {problem}")
    return value


def person_number(value: str) -> str:
    """证件号码: 18 characters; a disability card's 20 or 22 characters carry the ID in the first 18."""
    v = value.strip().upper()
    if len(v) in (20, 22):
        v = v[:18]
    try:
        return check_person_id(v)
    except ValueError as exc:
        raise LegacyRowError(f"证件号码无效: {exc}") from None



def _get(row: dict[str, str], column: str) -> str:
    value = row.get(column)
    if type(value) is str:
        return value.strip()
    return "" if value is None else str(value).strip()


def _income(row: dict[str, str], parts: tuple[str, ...], cost: str, rigid: str, net: str | None,
            per_capita: str) -> Income | None:
    values = {p: amount(_get(row, p), p) for p in parts}
    cost_v = amount(_get(row, cost), cost)
    rigid_v = amount(_get(row, rigid), rigid)
    net_v = amount(_get(row, net), net) if net else None
    pc_v = amount(_get(row, per_capita), per_capita)
    if net_v is None and pc_v is None and all(v is None for v in values.values()):
        return None
    if net_v is None:
        net_v = sum((v or Decimal(0) for v in values.values()), Decimal(0)) - (cost_v or Decimal(0))
        problem = lim.money_problem(net_v)
        if problem:
            raise LegacyRowError(f"{'、'.join(parts)}合计减{cost} {problem}")
    return Income(net_income=net_v, rigid_expenditure=rigid_v or Decimal(0), per_capita_income=pc_v)


def read_row(number: int, row: dict[str, str], division_code: str) -> Row:
    """Check one row of the export (canonical column names → text). Raises LegacyRowError with the reason."""
    hid = short_text(_get(row, "户编号"), "户编号", lim.ID_MAX)
    if not hid:
        raise LegacyRowError("户编号为空")
    pid = person_number(_get(row, "证件号码"))
    name = short_text(_get(row, "姓名"), "姓名", lim.NAME_MAX)
    if not name:
        raise LegacyRowError("姓名为空")
    relation = short_text(_get(row, "与户主关系"), "与户主关系", lim.RELATION_MAX)
    if not relation:
        raise LegacyRowError("与户主关系为空")
    born = export_day(_get(row, "出生日期"), "出生日期")
    from_id = id_birth_date(pid)
    if born is not None and born != from_id:
        raise LegacyRowError(f"出生日期 {born} 与证件号码中的 {from_id} 不一致")
    labour_text = _get(row, "劳动技能")
    if labour_text not in LABOUR:
        raise LegacyRowError(f"劳动技能 “{labour_text}” 无法识别")
    category_text = _get(row, "监测对象类别")
    if category_text and category_text not in CATEGORIES:
        raise LegacyRowError(f"监测对象类别 “{category_text}” 无法识别 (应为{'、'.join(CATEGORIES)}或空)")
    category = CATEGORIES.get(category_text)
    identified = export_month(_get(row, "识别监测时间"), "识别监测时间")
    if category and identified is None:
        raise LegacyRowError("监测对象类别已填, 但识别监测时间为空")
    eliminated_flag = yes(_get(row, "风险是否已消除"))
    eliminated = export_month(_get(row, "消除监测时间"), "消除监测时间")
    mode_text = _get(row, "风险消除方式")
    exit_mode = None
    if category and eliminated_flag:
        if eliminated is None:
            raise LegacyRowError("风险已消除, 但消除监测时间为空")
        if mode_text not in EXIT_MODES:
            raise LegacyRowError(f"风险消除方式 “{mode_text}” 无法识别 (应为帮扶消除或自然消除)")
        exit_mode = EXIT_MODES[mode_text]
        if identified is not None and eliminated < identified:
            raise LegacyRowError(f"消除监测时间 {eliminated:%Y%m} 早于识别监测时间 {identified:%Y%m}")
    else:
        eliminated = None
    risks = []
    for column in RISK_COLUMNS:
        text = _get(row, column)
        if not text:
            continue
        if text not in RISKS:
            raise LegacyRowError(f"{column} “{text}” 无法识别")
        risks.append(RISKS[text])
    measures = []
    for column, mtype in MEASURE_COLUMNS.items():
        for measure in _SPLIT.split(_get(row, column)):
            if measure.strip():
                measures.append((mtype, short_text(measure.strip(), column, lim.UNIT_MAX)))
    health = _get(row, "健康状况")
    return Row(
        number=number,
        household_id=hid,
        division_code=division_code,
        person_id=pid,
        name=name,
        relation=relation,
        birth_date=from_id,
        labour=LABOUR[labour_text],
        in_school=bool(_get(row, "在校生状况")) and _get(row, "在校生状况") not in ("非在校生", "否", "无"),
        disabled=health == "残疾",
        illness=health in ("长期慢性病", "患大病"),
        household_type=HOUSEHOLD_TYPES.get(_get(row, "户类型"), HouseholdType.GENERAL.value),
        category=category,
        identified=identified if category else None,
        eliminated=eliminated,
        exit_mode=exit_mode,
        risks=risks,
        income=_income(row, INCOME_PARTS, "生产经营性支出", "合规自付支出", None, "人均纯收入（元）"),
        post_income=_income(row, POST_INCOME_PARTS, "风险消除后生产经营性支出", "风险消除后合规自付支出",
                            "风险消除后家庭纯收入", "风险消除后家庭人均纯收入"),
        dangerous_house=yes(_get(row, "是否危房户")),
        water_safe=yes(_get(row, "是否解决安全饮用水")),
        dropout_flag=yes(_get(row, "是否义务教育阶段适龄儿童少年失学辍学")),
        uninsured_flag=yes(_get(row, "是否有家庭成员未参加城乡居民（职工）基本医疗保险")),
        insured=_insured(row),
        out_of_school_reason=_get(row, "义务教育阶段未上学原因"),
        post_house_damaged=yes(_get(row, "风险消除后是否住房损毁")),
        post_water_damaged=yes(_get(row, "风险消除后是否饮水设施损毁")),
        post_dropout_flag=yes(_get(row, "风险消除后是否义务教育阶段适龄儿童少年失学辍学")),
        post_uninsured_flag=yes(_get(row, "风险消除后是否有家庭成员未参加城乡居民（职工）基本医疗保险")),
        measures=measures,
        developmental_done=yes(_get(row, "实施开发式帮扶措施情况")),
        cadre=short_text(_get(row, "帮扶责任人"), "帮扶责任人", lim.NAME_MAX),
        collector=short_text(_get(row, "信息采集人"), "信息采集人", lim.NAME_MAX),
        kept={c: cell_text(_get(row, c), c) for c in row if c not in HELD_ELSEWHERE
              and not (c == "证件号码" and _get(row, c).upper() == pid)},
    )


def _insured(row: dict[str, str]) -> bool | None:
    resident = yes(_get(row, "是否参加城乡居民基本医疗保险"))
    employee = yes(_get(row, "是否参加城镇职工基本医疗保险"))
    if resident or employee:
        return True
    if resident is False and employee is not True:
        return False
    return None



def assemble(rows: list[Row], rejected_rows: int = 0, has_measure_columns: bool = True,
             has_cadre_column: bool = True) -> LegacyHousehold:
    """A household from its readable rows: household-level values from the head's row (户主), risks and
    measures from all rows (the export repeats or splits them)."""
    if not rows:
        raise ValueError("a household needs at least one readable row")
    head = next((r for r in rows if r.relation == "户主"), rows[0])
    risks = list(dict.fromkeys(x for r in [head, *rows] for x in r.risks))
    measures = list(dict.fromkeys(m for r in [head, *rows] for m in r.measures))
    done = [r.developmental_done for r in rows if r.developmental_done is not None]
    return LegacyHousehold(
        household_id=head.household_id,
        division_code=head.division_code,
        household_type=head.household_type,
        rows=rows,
        category=head.category,
        identified=head.identified,
        eliminated=head.eliminated,
        exit_mode=head.exit_mode,
        risks=risks,
        measures=measures,
        developmental_done=head.developmental_done if head.developmental_done is not None else (
            done[0] if done else None),
        cadre=head.cadre or next((r.cadre for r in rows if r.cadre), ""),
        rejected_rows=rejected_rows,
        has_measure_columns=has_measure_columns,
        has_cadre_column=has_cadre_column,
    )
