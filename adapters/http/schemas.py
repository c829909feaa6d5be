"""Response models of the HTTP service (`…Public`): what callers receive, documented for the OpenAPI page.

Request bodies are the contract's command objects (`casecore schema commands`); they are validated by the
command models themselves so that a bad command in a list is refused on its own, not the whole request.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from casecore.errors import ERROR_CODES


class _Public(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorPublic(BaseModel):
    """A refusal: one of the contract's error codes and one sentence saying what to do."""

    code: Literal[ERROR_CODES] = Field(  # type: ignore[valid-type]
        description="validation_error 输入有误 · not_found 不存在 · invalid_transition 当前环节不能办理 · "
        "policy_violation 政策规则不允许 · not_authorised 无权办理 · conflict 并发修改冲突",
        examples=["policy_violation"],
    )
    message: str = Field(description="可据以办理的一句话说明",
                         examples=["公示自 2023-03-05 开始, 须满5天, 最早于 2023-03-10 结束公示"])
    rule: str | None = Field(default=None, description="policy_violation 时的政策规则名",
                             examples=["publicity_min_days"])


class CommandResultPublic(BaseModel):
    """The result of one command, as `casecore apply --json` prints it (`line` is its 1-based place in the
    request)."""

    line: int = Field(description="命令在请求中的序号 (从1起)", examples=[1])
    ok: bool = Field(description="是否办理成功")
    events: list[str] | None = Field(default=None, description="写入的事件类型 (成功时)",
                                     examples=[["publicity_closed"]])
    duplicate: bool | None = Field(default=None, description="同一 command_id 已办理过, 未作改动")
    error: ErrorPublic | None = Field(default=None, description="拒绝原因 (失败时)")


class ErrorResponse(BaseModel):
    """The body of every non-2xx response."""

    ok: Literal[False] = False
    error: ErrorPublic


class MemberPublic(_Public):
    """A household member (家庭成员). ID number and name are masked for callers not entitled to them."""

    person_id: str = Field(description="身份证号 (无权查看者为脱敏后的号码)", examples=["522631********1234"])
    name: str = Field(description="姓名", examples=["张*"])
    relation: str = Field(description="与户主关系", examples=["户主"])
    birth_date: date | str = Field(
        description="出生日期 (无权查看者只见出生年份, 如 \"1980\": 日期即身份证号中被隐去的数字)",
        examples=["1980-01-02", "1980"])
    labour: str = Field(description="劳动能力: full 有劳动能力 · weak 弱劳动能力 · none 无劳动能力")
    in_school: bool = False
    disabled: bool = False
    illness: bool = False
    added_on: date | None = Field(default=None, description="增员日期 (建档成员为空)")
    removed_on: date | None = Field(default=None, description="减员日期 (在册为空)")


class HouseholdPublic(_Public):
    """A household's current state (CONTRACT.md "Household state") with its detail."""

    household_id: str = Field(description="户编号")
    division_code: str = Field(description="12位统计用区划代码 (村)")
    household_type: str = Field(description="poverty_alleviated 脱贫户 · general 一般农户")
    stage: str = Field(description="not_monitored 未纳入监测 · in_inclusion 识别中 · monitored 监测中 · "
                       "in_exit 风险消除程序中 · risk_eliminated 已消除风险")
    stage_label: str = Field(description="stage 的中文名", examples=["监测中"])
    category: str | None = Field(description="监测对象类型: unstable_alleviated 脱贫不稳定户 · marginal 边缘易致贫户 · "
                                 "sudden_hardship 突发严重困难户")
    risk_types: list[str] = Field(description="风险类型 (因病 illness, 因学 schooling, …)")
    members: list[MemberPublic]
    open_procedure: str | None = Field(description="进行中的程序: inclusion 识别程序 · exit 风险消除程序")
    procedure_step: str | None = Field(description="程序当前环节")
    household_size: int = Field(description="在册人口")
    included_on: date | None = Field(default=None, description="纳入监测日期")
    eliminated_on: date | None = Field(default=None, description="风险消除日期")
    cadre: dict[str, Any] | None = Field(default=None, description="帮扶责任人")
    measures: list[dict[str, Any]] = Field(default_factory=list, description="帮扶措施")
    version: int = Field(description="事件流版本 (已存事件数)")


class ActorPublic(BaseModel):
    id: str | None = None
    name: str | None = None
    role: str | None = Field(default=None, description="village 村级 · township 乡镇 · county 县级 · "
                             "department 行业部门 · inspector 督查 · auditor 审计 · system 系统")
    unit: str | None = Field(default=None, description="区划代码或部门名称")


class TimelineEventPublic(BaseModel):
    """One stored event of a household (办理记录): business date, recorded time, actor, payload."""

    position: int = Field(description="事件在全局日志中的位置 (只增不减)")
    version: int = Field(description="事件在本户事件流中的版本号")
    type: str = Field(description="事件类型", examples=["publicity_closed"])
    event_version: int = Field(description="事件结构版本", examples=[1])
    label: str = Field(description="事件的中文名", examples=["公示结束"])
    on: date = Field(description="业务日期 (办理、公示、签字发生的日期)")
    recorded_at: datetime = Field(description="系统记录时间 (UTC)")
    actor: ActorPublic
    command_id: str | None = Field(default=None, description="命令幂等键")
    origin: str | None = Field(default=None, description="非本系统办理时的来源 (如导入文件)")
    date_precision: str = Field(description="day, 或 month (导入的按月精度数据)")
    stage: str | None = Field(default=None, description="事件后的办理阶段 (改变阶段的事件)")
    note: str | None = None
    evidence: list[str] = Field(default_factory=list, description="佐证材料")
    payload: dict[str, Any] = Field(description="事件自身字段")


class TimelinePublic(BaseModel):
    household_id: str
    events: list[TimelineEventPublic]


class RosterRowPublic(_Public):
    """One household of the monitored roster (监测对象名单), from the roster projection."""

    household_id: str
    division_code: str
    county_code: str | None = None
    township_code: str | None = None
    household_type: str
    stage: str = Field(description="monitored 监测中 · in_exit 风险消除程序中")
    category: str | None = None
    risk_types: list[str]
    household_size: int
    has_labour: bool = Field(description="false: 整户无劳动力")
    cadre_name: str | None = Field(default=None, description="帮扶责任人")
    included_on: date | None = Field(default=None, description="纳入监测日期")
    per_capita_income: Decimal | None = Field(default=None,
                                              description="最新收入核算的人均纯收入 (元, 十进制字符串)")
    measures_planned: int
    measures_implemented: int
    measures: list[dict[str, Any]] = Field(description="帮扶措施 (类型、针对风险、责任部门、落实日期、状态)")


class RosterPublic(BaseModel):
    division: str | None = Field(description="实际查询的区划代码前缀 (令牌辖区与请求的交集); 空为全部")
    count: int = Field(description="本页行数")
    total: int = Field(description="全部页的行数")
    next_cursor: str | None = Field(default=None, description="下一页的 cursor; 末页为空")
    rows: list[RosterRowPublic]


class LedgersPublic(BaseModel):
    """双台账: the problem ledger (问题台账) and the rectification ledger (整改台账) as of a date."""

    as_of: date
    division: str | None
    count: int = Field(0, description="本页的问题数")
    total: int = Field(0, description="全部页的问题数")
    next_cursor: str | None = Field(default=None, description="下一页的 cursor; 末页为空")
    problems: list[dict[str, Any]] = Field(
        description="问题台账: 每个问题一行 (类型、户、区划、发现日期及来源、双责任、时限、进度、"
        "是否超期 overdue / overdue_days)")
    rectifications: list[dict[str, Any]] = Field(description="整改台账: 每项整改措施、销号、退回、问责一行 "
                                                 "(分页时为本页问题的记录)")


class MonthlyReportPublic(_Public):
    """一月一调度一通报: counts by county and township for the month, key areas, campaign milestones."""

    month: str
    as_of: date
    division: str | None
    policy: str = Field(description="当月适用的政策版本")
    counties: list[dict[str, Any]] = Field(
        description="各县及乡镇: 线索、新纳入、风险消除、落实措施、发现问题、销号、超期、问责")
    total: dict[str, Any]
    milestones: list[dict[str, Any]] = Field(description="专项行动时间节点及逾期情况")


class FindingPublic(BaseModel):
    """One inspector finding (CONTRACT.md "Findings")."""

    rule: str = Field(description="规则: fast_in_fast_out 快进快出 · helped_not 应帮未帮 · … (见契约)")
    label: str = Field(description="规则中文名")
    household_id: str | None = None
    problem_id: str | None = None
    division_code: str
    severity: str = Field(description="severe 严重 · warning 一般")
    detail: str
    evidence: dict[str, Any]
    key: str | None = Field(default=None, description="发现的键: 同一规则、户和周期只登记一个问题")
    raised_problem: str | None = Field(default=None, description="已为此发现登记的问题编号")


class FindingsPublic(BaseModel):
    as_of: date
    division: str | None
    count: int = Field(description="本页条数")
    total: int = Field(description="全部页的条数")
    next_cursor: str | None = Field(default=None, description="下一页的 cursor; 末页为空")
    computed_at: datetime | None = Field(default=None, description="保存的督查结果的计算时间; 空为本次请求时计算")
    casefacts_position: int | None = Field(default=None, description="保存的督查结果读到的案件事实位置")
    cadre_unknown: int = Field(0, description="监测对象中帮扶责任人未知的户数 (导出无帮扶责任人列, "
                                              "未按 no_responsible_cadre 判定)")
    findings: list[FindingPublic]


class CloudEventPublic(BaseModel):
    """A stored event as a CloudEvents 1.0 structured JSON object."""

    specversion: str = Field(examples=["1.0"])
    id: str = Field(description="事件 id (按流和版本稳定不变, 可作去重键)")
    source: str
    type: str = Field(examples=["cn.casecore.household.publicity_closed.v1"])
    subject: str = Field(examples=["household/H1"])
    time: datetime = Field(description="recorded_at (UTC)")
    datacontenttype: str = "application/json"
    data: dict[str, Any] = Field(description="事件内容, 另含 on (业务日期)、position、version、actor 等")


class EventsPublic(BaseModel):
    events: list[CloudEventPublic]
    next_after: int = Field(description="下次从此位置之后续读 (本页看过的最后位置; 不漏不重)")
