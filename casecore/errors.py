"""Domain errors: each maps to one code of the public contract, with one sentence a cadre can act on."""

from __future__ import annotations


class CaseError(Exception):
    """Base of refusals. `code` is the contract's error code; `rule` names a policy rule where one applies."""

    code = "error"

    def __init__(self, message: str, rule: str | None = None):
        super().__init__(message)
        self.message = message
        self.rule = rule

    def as_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.rule:
            out["rule"] = self.rule
        return out


class ValidationFailed(CaseError):
    code = "validation_error"


class NotFound(CaseError):
    code = "not_found"


class InvalidTransition(CaseError):
    code = "invalid_transition"


class PolicyViolation(CaseError):
    code = "policy_violation"

    def __init__(self, message: str, rule: str):
        super().__init__(message, rule)


class NotAuthorised(CaseError):
    code = "not_authorised"


class Conflict(CaseError):
    code = "conflict"


ERROR_CODES = ("validation_error", "not_found", "invalid_transition", "policy_violation", "not_authorised", "conflict")

#: the Chinese label of each error code, for human output
ERROR_LABELS = {
    "validation_error": "输入有误",
    "not_found": "对象不存在",
    "invalid_transition": "环节不符",
    "policy_violation": "政策不允许",
    "not_authorised": "无权办理",
    "conflict": "并发冲突",
}

#: the Chinese label of each policy rule a refusal can name (`rule`), for human output
RULE_LABELS = {
    "publicity_min_days": "公示未满规定天数",
    "objections_unresolved": "公示异议未处理",
    "step_date_order": "办理日期早于上一环节",
    "income_assessment_window": "缺少识别前12个月的收入核算",
    "category_household_type": "监测对象类型与农户属性不符",
    "income_below_line": "人均纯收入不低于监测标准",
    "household_size": "测算期末无在册人口",
    "last_member": "不能移除最后一名成员",
    "measure_does_not_fit": "帮扶措施与风险不匹配",
    "min_assistance_months": "帮扶措施落实不满半年",
    "exit_income_assessment_missing": "缺少风险消除前12个月的收入核算",
    "exit_income_below_line": "人均纯收入仍低于监测标准",
    "open_guarantee": "三保障及饮水安全仍有未解决问题",
    "post_elimination_assessment": "缺少风险消除后的信息采集",
    "household_without_labour": "整户无劳动力不标注风险消除",
    "rectification_action_required": "退回后须有新的整改措施",
    "division_outside_province": "区划不在政策适用省份内",
    "too_many_risk_types": "风险类型超过规定项数",
    "double_responsibility_units": "双责任须为两个不同单位",
}
