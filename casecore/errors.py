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
