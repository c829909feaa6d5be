"""Value types of the domain: enums with their Chinese labels, division codes, citizen ID numbers, money."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import TYPE_CHECKING


class Labelled(StrEnum):
    """A string enum whose members carry a Chinese label (`label`) for human output."""

    label: str

    def __new__(cls, value: str, label: str = "") -> Labelled:
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.label = label or value
        return obj


class Role(Labelled):
    VILLAGE = "village", "村级"
    TOWNSHIP = "township", "乡镇"
    COUNTY = "county", "县级"
    DEPARTMENT = "department", "行业部门"
    INSPECTOR = "inspector", "督查"
    AUDITOR = "auditor", "审计"
    SYSTEM = "system", "系统"


class HouseholdType(Labelled):
    POVERTY_ALLEVIATED = "poverty_alleviated", "脱贫户"
    GENERAL = "general", "一般农户"


class Labour(Labelled):
    FULL = "full", "有劳动能力"
    WEAK = "weak", "弱劳动能力"
    NONE = "none", "无劳动能力"


class Stage(Labelled):
    NOT_MONITORED = "not_monitored", "未纳入监测"
    IN_INCLUSION = "in_inclusion", "识别中"
    MONITORED = "monitored", "监测中"
    IN_EXIT = "in_exit", "风险消除程序中"
    RISK_ELIMINATED = "risk_eliminated", "已消除风险"


class Procedure(Labelled):
    INCLUSION = "inclusion", "识别程序"
    EXIT = "exit", "风险消除程序"


class Category(Labelled):
    UNSTABLE_ALLEVIATED = "unstable_alleviated", "脱贫不稳定户"
    MARGINAL = "marginal", "边缘易致贫户"
    SUDDEN_HARDSHIP = "sudden_hardship", "突发严重困难户"


class RiskType(Labelled):
    ILLNESS = "illness", "因病"
    DISABILITY = "disability", "因残"
    SCHOOLING = "schooling", "因学"
    DISASTER = "disaster", "因自然灾害"
    ACCIDENT = "accident", "因意外事故"
    INDUSTRY_FAILURE = "industry_failure", "因产业项目失败"
    UNSTABLE_EMPLOYMENT = "unstable_employment", "因务工就业不稳"
    LACK_OF_LABOUR = "lack_of_labour", "缺劳动力"
    HOUSING = "housing", "因安全住房"
    DRINKING_WATER = "drinking_water", "因安全饮水"
    OTHER = "other", "其他"


class MeasureType(Labelled):
    INDUSTRY = "industry", "产业帮扶"
    EMPLOYMENT = "employment", "就业帮扶"
    FINANCE = "finance", "金融帮扶"
    PUBLIC_WELFARE_JOB = "public_welfare_job", "公益岗位帮扶"
    HEALTH = "health", "健康帮扶"
    COMPULSORY_EDUCATION = "compulsory_education", "义务教育保障"
    EDUCATION = "education", "其他教育帮扶"
    SOCIAL_ASSISTANCE = "social_assistance", "综合保障"
    HOUSING = "housing", "住房安全保障"
    DRINKING_WATER = "drinking_water", "饮水安全保障"
    SOCIAL = "social", "社会帮扶"
    RELOCATION = "relocation", "搬迁"
    LIVING_CONDITIONS = "living_conditions", "生产生活条件改善"
    INFRASTRUCTURE = "infrastructure", "基础设施建设"


DEVELOPMENTAL_MEASURES = frozenset(
    {MeasureType.INDUSTRY, MeasureType.EMPLOYMENT, MeasureType.FINANCE, MeasureType.PUBLIC_WELFARE_JOB}
)


class LeadSource(Labelled):
    DEPARTMENT_WARNING = "department_warning", "部门筛查预警"
    SELF_DECLARATION = "self_declaration", "农户自主申报"
    CADRE_SCREENING = "cadre_screening", "基层干部排查"
    SOCIAL_SUPERVISION = "social_supervision", "社会监督"
    GROUP_LEADER_REPORT = "group_leader_report", "村民组长报送"


class Finding(Labelled):
    MEETS = "meets", "符合"
    NOT_MEETS = "not_meets", "不符合"


class TownshipDecision(Labelled):
    PASS = "pass", "审核通过"
    RETURN = "return", "退回"
    REJECT = "reject", "不予通过"


class CountyDecision(Labelled):
    APPROVE = "approve", "批准"
    RETURN = "return", "退回"
    REJECT = "reject", "不予批准"


class ObjectionOutcome(Labelled):
    UPHELD = "upheld", "异议成立"
    DISMISSED = "dismissed", "异议不成立"


class Housing(Labelled):
    SAFE = "safe", "住房安全"
    C_LEVEL = "c_level", "C级危房"
    D_LEVEL = "d_level", "D级危房"


class SignLevel(Labelled):
    """The levels that sign a procedure: one person may sign only one of them (四眼原则)."""

    VERIFY = "verify", "入户核实"
    TOWNSHIP = "township", "乡级审核"
    COUNTY = "county", "县级审批"


class ExitMode(Labelled):
    ASSISTED = "assisted", "帮扶消除"
    NATURAL = "natural", "自然消除"


class MemberChange(Labelled):
    BIRTH = "birth", "出生"
    MARRIAGE = "marriage", "婚嫁"
    DEATH = "death", "死亡"
    MOVED = "moved", "迁移"
    OTHER = "other", "其他"


class Party(Labelled):
    RESPONSIBLE = "responsible", "责任方"
    SUPERVISOR = "supervisor", "监督方"


class AccountableParty(Labelled):
    RESPONSIBLE = "responsible", "责任方"
    SUPERVISOR = "supervisor", "监督方"
    BOTH = "both", "双方"


class ProblemSource(Labelled):
    INSPECTION_RULE = "inspection_rule", "规则筛查"
    AUDIT = "audit", "审计"
    PATROL = "patrol", "巡视"
    SUPERVISION = "supervision", "督查"
    SELF_CHECK = "self_check", "自查"


class Rule(Labelled):
    """The inspector rules of the contract's findings table."""

    FAST_IN_FAST_OUT = "fast_in_fast_out", "快进快出"
    HELPED_NOT = "helped_not", "应帮未帮"
    RISK_WITHOUT_FITTING_MEASURE = "risk_without_fitting_measure", "措施不精准: 缺什么补什么"
    FLOOR_ONLY_WITH_LABOUR = "floor_only_with_labour", "一兜了之"
    NO_DEVELOPMENTAL_MEASURE = "no_developmental_measure", "有劳动力未落实开发式帮扶"
    MEASURE_BEFORE_IDENTIFICATION = "measure_before_identification", "识别前措施"
    ELIMINATED_BELOW_LINE = "eliminated_below_line", "风险消除不实: 收入"
    ELIMINATED_WITH_OPEN_GUARANTEE = "eliminated_with_open_guarantee", "风险消除不实: 三保障及饮水"
    LABOURLESS_ELIMINATED = "labourless_eliminated", "无劳动力标注风险消除"
    ELIMINATED_WITHOUT_REASSESSMENT = "eliminated_without_reassessment", "风险消除后信息未采集"
    QUALIFYING_NOT_MONITORED = "qualifying_not_monitored", "应纳未纳 / 体外循环"
    REPEATED_WARNINGS_NOT_INCLUDED = "repeated_warnings_not_included", "多次预警未纳入"
    SLOW_IDENTIFICATION = "slow_identification", "纳入超时"
    SHORT_PUBLICITY = "short_publicity", "公示不足"
    BACKDATED_ENTRY = "backdated_entry", "补录倒签"
    NO_RESPONSIBLE_CADRE = "no_responsible_cadre", "无帮扶责任人"
    RECTIFICATION_OVERDUE = "rectification_overdue", "整改超期"
    SAME_SIGNER_TWO_LEVELS = "same_signer_two_levels", "一人签署两级"
    FUTURE_DATED_ACT = "future_dated_act", "业务日期晚于录入日期"
    EXIT_WITHOUT_SIX_MONTHS_MEASURES = "exit_without_six_months_measures", "帮扶措施未持续落实半年即消除"
    SUDDEN_HARDSHIP_HIGH_INCOME = "sudden_hardship_high_income", "突发严重困难户收入偏高"


#: kinds of problem that no inspector rule finds (a patrol's or a self-check's own finding)
_KINDS_BEYOND_RULES = {
    "MISSED_HOUSEHOLD": ("missed_household", "漏户漏人"),
    "OUTSIDE_SYSTEM": ("outside_system", "体外循环"),
    "OTHER": ("other", "其他"),
}

if TYPE_CHECKING:
    class ProblemKind(Labelled):
        """Kinds of problem in the double ledger: every inspector rule, plus three more."""
else:
    ProblemKind = Labelled(
        "ProblemKind", {**{r.name: (r.value, r.label) for r in Rule}, **_KINDS_BEYOND_RULES}, module=__name__)
    ProblemKind.__doc__ = "Kinds of problem in the double ledger: every inspector rule, plus three more."


# --- division codes (统计用区划代码) ---------------------------------------------------------------

_DIVISION_RE = re.compile(r"^\d{12}$")
#: how many leading digits of a 12-digit code name each level
LEVEL_DIGITS = {"province": 2, "prefecture": 4, "county": 6, "township": 9, "village": 12}


def check_division_code(code: str) -> str:
    """Return the 12-digit village division code, or raise ValueError saying what is wrong."""
    if not _DIVISION_RE.match(code):
        raise ValueError(f"区划代码应为12位数字 (division code must be 12 digits): {code[:24]!r}")
    if code[:2] == "00" or code[2:4] == "00" or code[4:6] == "00":
        raise ValueError(f"区划代码的省、市、县位不能为00: {code[:24]!r}")
    return code


def county_of(code: str) -> str:
    return code[:6]


def township_of(code: str) -> str:
    return code[:9]


# --- citizen ID numbers (GB 11643) ----------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^\d{17}[\dX]$")


def id_check_digit(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of a citizen ID number."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def id_birth_date(person_id: str) -> date:
    return date(int(person_id[6:10]), int(person_id[10:12]), int(person_id[12:14]))


def check_person_id(person_id: str, birth_date: date | None = None) -> str:
    """Validate an 18-character citizen ID number (check digit, and birth date if given)."""
    pid = person_id.upper()
    if not _ID_RE.match(pid):
        raise ValueError(f"身份证号应为18位 (17位数字加校验位): {person_id[:24]!r}")
    if id_check_digit(pid[:17]) != pid[17]:
        raise ValueError(f"身份证号校验位错误 (GB 11643 check digit): {person_id[:24]!r}")
    try:
        born = id_birth_date(pid)
    except ValueError:
        raise ValueError(f"身份证号中的出生日期无效: {person_id[:24]!r}") from None
    if birth_date is not None and born != birth_date:
        raise ValueError(f"出生日期 {birth_date} 与身份证号中的 {born} 不一致: {person_id[:24]!r}")
    return pid


def make_person_id(area6: str, born: date, seq3: int) -> str:
    """Build a valid citizen ID number (used by generators and tests)."""
    first17 = f"{area6}{born:%Y%m%d}{seq3:03d}"
    return first17 + id_check_digit(first17)


# --- money ----------------------------------------------------------------------------------------

#: one fen (分): per-capita figures are rounded to it (half up)
CENT = Decimal("0.01")


def to_money(value: object) -> Decimal:
    """Exact decimal yuan from a string or number; floats are refused (they are not exact)."""
    if isinstance(value, float):
        raise ValueError("金额请用字符串表示的十进制数 (money must be a decimal string, not a float)")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"金额格式无效: {str(value)[:40]!r}") from None
    if not amount.is_finite():
        raise ValueError(f"金额格式无效: {str(value)[:40]!r}")
    return amount


def month_window(procedure_date: date) -> tuple[date, date]:
    """The income period for a procedure on `procedure_date`: the 1st of the same month a year earlier
    to the last day of the month before."""
    start = date(procedure_date.year - 1, procedure_date.month, 1)
    first_this_month = procedure_date.replace(day=1)
    end = date.fromordinal(first_this_month.toordinal() - 1)
    return start, end


def in_place_runs(spans: list[tuple[date, date | None]], until: date) -> list[tuple[date, date]]:
    """The periods before `until` during which at least one span was in place, merged and in order, each as
    [first day, day after the last). A span (start, end) is in place from `start` to the day before `end`
    (`end` None: still in place) — a measure implemented and not yet ended."""
    runs: list[tuple[date, date]] = []
    for start, end in sorted((s, until if e is None else min(e, until)) for s, e in spans if s < until):
        if end <= start:
            continue
        if runs and start <= runs[-1][1]:
            runs[-1] = (runs[-1][0], max(runs[-1][1], end))
        else:
            runs.append((start, end))
    return runs


def in_place_for(spans: list[tuple[date, date | None]], until: date, months: int) -> bool:
    """Were the spans continuously in place for `months` whole months at some time before `until`?"""
    return any(add_months(start, months) <= end for start, end in in_place_runs(spans, until))


def months_covered(start: date, end: date, months: int) -> bool:
    """Does the period [start, end] span at least `months` whole months (12: a year's income)?"""
    return add_months(start, months) <= date.fromordinal(end.toordinal() + 1)


def add_months(d: date, months: int) -> date:
    """`d` plus whole months; a day beyond the target month's end is clamped to its last day."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")
