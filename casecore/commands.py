"""The public command contract (shared/CONTRACT.md) as pydantic models.

One command is one JSON object with a `command` name; `parse_command` validates it into its model.
Fields may be added, never renamed. Every command and enum has its Chinese label in one place.
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, Union, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from casecore import limits as lim
from casecore.values import (
    AccountableParty,
    Category,
    CountyDecision,
    ExitMode,
    Finding,
    HouseholdType,
    Housing,
    Labour,
    LeadSource,
    MeasureType,
    MemberChange,
    ObjectionOutcome,
    Party,
    ProblemKind,
    ProblemSource,
    RiskType,
    Role,
    TownshipDecision,
    check_division_code,
    check_person_id,
    to_money,
)


def _short(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        problem = lim.short_text_problem(value, limit)
        if problem:
            raise ValueError(problem)
        return value
    return AfterValidator(check)


def _free(limit: int) -> AfterValidator:
    def check(value: str) -> str:
        problem = lim.free_text_problem(value, limit)
        if problem:
            raise ValueError(problem)
        return value
    return AfterValidator(check)


def _dated(low: date, high: date) -> AfterValidator:
    def check(value: date) -> date:
        problem = lim.date_problem(value, low, high)
        if problem:
            raise ValueError(problem)
        return value
    return AfterValidator(check)


def _schema(limit: int, pattern: str) -> Any:
    return Field(json_schema_extra={"maxLength": limit, "pattern": pattern})


# Constrained text, amounts and dates of the contract (limits in casecore/limits.py): every value a command may
# carry fits the read models' columns. Short text has no control character; free text allows newline and tab.
Id = Annotated[str, Field(min_length=1), _schema(lim.ID_MAX, lim.SHORT_TEXT_PATTERN), _short(lim.ID_MAX)]
CommandId = Annotated[str, Field(min_length=1), _schema(lim.COMMAND_ID_MAX, lim.SHORT_TEXT_PATTERN),
                      _short(lim.COMMAND_ID_MAX)]
Name = Annotated[str, Field(min_length=1), _schema(lim.NAME_MAX, lim.SHORT_TEXT_PATTERN), _short(lim.NAME_MAX)]
Unit = Annotated[str, Field(min_length=1), _schema(lim.UNIT_MAX, lim.SHORT_TEXT_PATTERN), _short(lim.UNIT_MAX)]
Relation = Annotated[str, Field(min_length=1), _schema(lim.RELATION_MAX, lim.SHORT_TEXT_PATTERN),
                     _short(lim.RELATION_MAX)]
Site = Annotated[str, _schema(lim.SITE_MAX, lim.SHORT_TEXT_PATTERN), _short(lim.SITE_MAX)]
FindingKey = Annotated[str, _schema(lim.FINDING_KEY_MAX, lim.SHORT_TEXT_PATTERN), _short(lim.FINDING_KEY_MAX)]
Evidence = Annotated[str, _schema(lim.EVIDENCE_MAX, lim.SHORT_TEXT_PATTERN), _short(lim.EVIDENCE_MAX)]
FreeText = Annotated[str, _schema(lim.FREE_TEXT_MAX, lim.FREE_TEXT_PATTERN), _free(lim.FREE_TEXT_MAX)]
RequiredText = Annotated[str, Field(min_length=1), _schema(lim.FREE_TEXT_MAX, lim.FREE_TEXT_PATTERN),
                         _free(lim.FREE_TEXT_MAX)]
BusinessDate = Annotated[date, Field(json_schema_extra={"formatMinimum": lim.DATE_MIN.isoformat(),
                                                        "formatMaximum": lim.DATE_MAX.isoformat()}),
                         _dated(lim.DATE_MIN, lim.DATE_MAX)]
BirthDate = Annotated[date, Field(json_schema_extra={"formatMinimum": lim.BIRTH_MIN.isoformat(),
                                                     "formatMaximum": lim.DATE_MAX.isoformat()}),
                      _dated(lim.BIRTH_MIN, lim.DATE_MAX)]
DivisionCode = Annotated[str, Field(max_length=12, json_schema_extra={"pattern": r"^\d{12}$"})]


def _money(value: Any) -> Decimal:
    amount = to_money(value)
    problem = lim.money_problem(amount)
    if problem:
        raise ValueError(f"金额 {str(value)[:40]!r} {problem}")
    return amount


Money = Annotated[
    Decimal,
    BeforeValidator(_money),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": lim.MONEY_PATTERN},
                              {"type": "integer", "exclusiveMinimum": -int(lim.MONEY_BOUND),
                               "exclusiveMaximum": int(lim.MONEY_BOUND)}],
                    "description": "decimal yuan, as a string: |x| < 10^10, at most two decimals"}),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class Actor(_Model):
    """Who acts: an id, optionally a name, a role and a unit (a division code or a department's name)."""

    id: Id
    name: Name | None = None
    role: Role
    unit: Unit


class Person(_Model):
    """A named person of a unit (cadre, responsible or supervising party)."""

    id: Id | None = None
    name: Name
    unit: Unit


class Member(_Model):
    person_id: Id
    name: Name
    relation: Relation
    birth_date: BirthDate
    labour: Labour
    in_school: bool = False
    disabled: bool = False
    illness: bool = False

    @model_validator(mode="after")
    def _id_matches_birth(self) -> Member:
        check_person_id(self.person_id, self.birth_date)
        return self


class Command(_Model):
    """Fields every command has."""

    command: str
    on: BusinessDate = Field(description="business date of the act; no later than the day it is recorded plus the "
                                          "policy's procedure.future_dated_days (1 in Guizhou)")
    actor: Actor
    command_id: CommandId | None = Field(default=None, description="idempotency key")
    note: FreeText | None = None
    evidence: list[Evidence] = Field(default_factory=list, max_length=lim.EVIDENCE_ITEMS_MAX)

    #: the Chinese label of the command, for human output
    label: ClassVar[str] = ""

    @cached_property
    def digest(self) -> str:
        """The digest of the command's content, bound to its `command_id`: the same key with other content is
        another command, not a duplicate."""
        # fields left at their defaults are left out: a field added later (with a default) changes no digest
        content = self.model_dump_json(exclude_defaults=True).encode()
        return hashlib.sha256(content).hexdigest()[:32]


class HouseholdCommand(Command):
    household_id: Id

    @property
    def stream(self) -> str:
        return self.household_id


class ProblemCommand(Command):
    problem_id: Id

    @property
    def stream(self) -> str:
        return self.problem_id


# --- household case -----------------------------------------------------------------------------


class RegisterHousehold(HouseholdCommand):
    command: Literal["register_household"]
    label: ClassVar[str] = "建档"
    division_code: DivisionCode
    household_type: HouseholdType
    relocated: bool = False
    resettlement_site: Site | None = None
    key_county: bool = False
    members: list[Member] = Field(min_length=1, max_length=lim.MEMBERS_MAX)

    @field_validator("division_code")
    @classmethod
    def _division(cls, v: str) -> str:
        return check_division_code(v)

    @model_validator(mode="after")
    def _unique_members(self) -> RegisterHousehold:
        ids = [m.person_id.upper() for m in self.members]
        if len(ids) != len(set(ids)):
            raise ValueError("家庭成员身份证号重复 (a person appears twice)")
        return self


class AddMember(HouseholdCommand):
    command: Literal["add_member"]
    label: ClassVar[str] = "人口增加"
    member: Member
    reason: MemberChange


class RemoveMember(HouseholdCommand):
    command: Literal["remove_member"]
    label: ClassVar[str] = "人口减少"
    person_id: Id
    reason: MemberChange


class AssessIncome(HouseholdCommand):
    command: Literal["assess_income"]
    label: ClassVar[str] = "收入核算"
    period_start: BusinessDate
    period_end: BusinessDate
    net_income: Money
    rigid_expenditure: Money = Decimal("0")

    @model_validator(mode="after")
    def _period(self) -> AssessIncome:
        if self.period_end < self.period_start:
            raise ValueError("收入测算期的结束日期早于开始日期")
        if self.period_end > self.on:
            raise ValueError(f"收入测算期结束于 {self.period_end}, 晚于核算日期 {self.on}; 只能核算已经过去的收入")
        if self.rigid_expenditure < 0:
            raise ValueError("合规自付支出不能为负数")
        return self


class AssessGuarantees(HouseholdCommand):
    command: Literal["assess_guarantees"]
    label: ClassVar[str] = "三保障及饮水核查"
    housing: Housing
    drinking_water_safe: bool
    children_out_of_school: list[Id] = Field(default_factory=list, max_length=lim.MEMBERS_MAX)
    members_without_medical_insurance: list[Id] = Field(default_factory=list, max_length=lim.MEMBERS_MAX)


class RecordLead(HouseholdCommand):
    command: Literal["record_lead"]
    label: ClassVar[str] = "线索"
    lead_id: Id
    source: LeadSource
    risk_types: list[RiskType] = Field(default_factory=list, max_length=len(RiskType))
    detail: FreeText = ""


class VerifyLead(HouseholdCommand):
    command: Literal["verify_lead"]
    label: ClassVar[str] = "入户核实"
    lead_id: Id
    finding: Finding


class SignApplication(HouseholdCommand):
    command: Literal["sign_application"]
    label: ClassVar[str] = "农户申请及承诺授权"


class OpenPublicity(HouseholdCommand):
    command: Literal["open_publicity"]
    label: ClassVar[str] = "村级评议及公示"


class RaiseObjection(HouseholdCommand):
    command: Literal["raise_objection"]
    label: ClassVar[str] = "公示异议"
    objection_id: Id
    detail: FreeText = ""


class ResolveObjection(HouseholdCommand):
    command: Literal["resolve_objection"]
    label: ClassVar[str] = "异议处理"
    objection_id: Id
    outcome: ObjectionOutcome


class ClosePublicity(HouseholdCommand):
    command: Literal["close_publicity"]
    label: ClassVar[str] = "公示结束"


class ReviewTownship(HouseholdCommand):
    command: Literal["review_township"]
    label: ClassVar[str] = "乡级审核"
    decision: TownshipDecision


class ApproveCounty(HouseholdCommand):
    command: Literal["approve_county"]
    label: ClassVar[str] = "县级批复/审定及公告"
    decision: CountyDecision
    category: Category | None = None
    risk_types: list[RiskType] = Field(default_factory=list, max_length=len(RiskType))


class EnterSystem(HouseholdCommand):
    command: Literal["enter_system"]
    label: ClassVar[str] = "乡级录入系统"


class AssignCadre(HouseholdCommand):
    command: Literal["assign_cadre"]
    label: ClassVar[str] = "帮扶责任人"
    cadre: Person


class PlanMeasure(HouseholdCommand):
    command: Literal["plan_measure"]
    label: ClassVar[str] = "制定帮扶措施"
    measure_id: Id
    measure_type: MeasureType
    addresses: list[RiskType] = Field(min_length=1, max_length=len(RiskType))
    department: Unit
    responsible: Unit


class ImplementMeasure(HouseholdCommand):
    command: Literal["implement_measure"]
    label: ClassVar[str] = "落实帮扶措施"
    measure_id: Id


class EndMeasure(HouseholdCommand):
    command: Literal["end_measure"]
    label: ClassVar[str] = "结束帮扶措施"
    measure_id: Id


class NominateExit(HouseholdCommand):
    command: Literal["nominate_exit"]
    label: ClassVar[str] = "村提名"
    mode: ExitMode


class VerifyExit(HouseholdCommand):
    command: Literal["verify_exit"]
    label: ClassVar[str] = "风险消除入户核实"
    finding: Finding


class MarkRiskEliminated(HouseholdCommand):
    command: Literal["mark_risk_eliminated"]
    label: ClassVar[str] = "标注风险消除"


class RollbackElimination(HouseholdCommand):
    command: Literal["rollback_elimination"]
    label: ClassVar[str] = "风险消除回退"
    reason: RequiredText


# --- rectification ------------------------------------------------------------------------------


class RaiseProblem(ProblemCommand):
    command: Literal["raise_problem"]
    label: ClassVar[str] = "问题登记"
    kind: ProblemKind
    household_id: Id | None = None
    division_code: DivisionCode
    source: ProblemSource
    detail: FreeText = ""
    #: the inspector rule's cycle key, when raised from a finding (one problem per rule, household and cycle)
    finding_key: FindingKey | None = None

    @field_validator("division_code")
    @classmethod
    def _division(cls, v: str) -> str:
        return check_division_code(v)


class Party_(_Model):
    """One party of a double responsibility: its unit and its named person. `person` is the person's actor id
    (the sign-off for the party must come from `actor.id == person`); `name` is for the printed ledgers."""

    unit: Unit
    person: Id
    name: Name | None = None


class AssignResponsibility(ProblemCommand):
    command: Literal["assign_responsibility"]
    label: ClassVar[str] = "双责任"
    responsible: Party_
    supervisor: Party_
    deadline: BusinessDate


class RecordRectification(ProblemCommand):
    command: Literal["record_rectification"]
    label: ClassVar[str] = "整改措施"
    action: RequiredText


class ReportRectified(ProblemCommand):
    command: Literal["report_rectified"]
    label: ClassVar[str] = "整改完成"


class SignOff(ProblemCommand):
    command: Literal["sign_off"]
    label: ClassVar[str] = "销号"
    party: Party


class RejectSignOff(ProblemCommand):
    command: Literal["reject_sign_off"]
    label: ClassVar[str] = "退回整改"
    party: Party
    reason: RequiredText


class HoldAccountable(ProblemCommand):
    command: Literal["hold_accountable"]
    label: ClassVar[str] = "问责"
    party: AccountableParty
    reason: RequiredText


class ReopenProblem(ProblemCommand):
    """A closed problem found false by a new finding goes back to rectification; accountability is recorded
    against both parties."""

    command: Literal["reopen_problem"]
    label: ClassVar[str] = "销号后重新整改"
    reason: RequiredText
    deadline: BusinessDate
    finding_key: FindingKey | None = None


HOUSEHOLD_COMMANDS: tuple[type[HouseholdCommand], ...] = (
    RegisterHousehold, AddMember, RemoveMember, AssessIncome, AssessGuarantees, RecordLead, VerifyLead,
    SignApplication, OpenPublicity, RaiseObjection, ResolveObjection, ClosePublicity, ReviewTownship,
    ApproveCounty, EnterSystem, AssignCadre, PlanMeasure, ImplementMeasure, EndMeasure, NominateExit,
    VerifyExit, MarkRiskEliminated, RollbackElimination,
)
PROBLEM_COMMANDS: tuple[type[ProblemCommand], ...] = (
    RaiseProblem, AssignResponsibility, RecordRectification, ReportRectified, SignOff, RejectSignOff,
    HoldAccountable, ReopenProblem,
)
ALL_COMMANDS = HOUSEHOLD_COMMANDS + PROBLEM_COMMANDS
BY_NAME: dict[str, type[Command]] = {get_args(c.model_fields["command"].annotation)[0]: c for c in ALL_COMMANDS}
LABELS: dict[str, str] = {name: cls.label for name, cls in BY_NAME.items()}

AnyCommand = Annotated[Union[ALL_COMMANDS], Field(discriminator="command")]  # type: ignore[valid-type]  # noqa: UP007
_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnyCommand)


def parse_command(data: Any) -> Command:
    """Validate one JSON object (dict) or JSON text into its command model (raises pydantic.ValidationError)."""
    if isinstance(data, (str, bytes)):
        return _ADAPTER.validate_json(data)
    return _ADAPTER.validate_python(data)


def json_schema() -> dict[str, Any]:
    """JSON Schema of every command, as `casecore schema` prints it."""
    return _ADAPTER.json_schema()
