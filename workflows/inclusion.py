"""识别程序 — the inclusion procedure (DOMAIN.md "Inclusion procedure"), as one table.

lead → home visit → application and commitment → village deliberation and 5-day notice → township
review → county approval and announcement → township enters the household into the system.
A `return` sends the case back one stage; `reject` and a `not_meets` visit close the procedure.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from workflows.machine import Workflow, publicity_to_county


class Inclusion(StrEnum):
    LEAD_RECORDED = "lead_recorded"          # 线索已搜集
    VERIFIED = "verified"                    # 入户核实符合
    APPLIED = "applied"                      # 农户已申请并承诺授权
    IN_PUBLICITY = "in_publicity"            # 村级评议及公示中
    PUBLICITY_CLOSED = "publicity_closed"    # 公示结束
    TOWNSHIP_PASSED = "township_passed"      # 乡级审核通过
    COUNTY_APPROVED = "county_approved"      # 县级批复及公告
    ENTERED = "entered"                      # 乡级录入系统: monitored
    CLOSED = "closed"                        # 程序终止 (not_meets, reject)


LABELS = {
    Inclusion.LEAD_RECORDED: "线索已搜集",
    Inclusion.VERIFIED: "入户核实符合",
    Inclusion.APPLIED: "已申请及承诺授权",
    Inclusion.IN_PUBLICITY: "村级评议及公示中",
    Inclusion.PUBLICITY_CLOSED: "公示结束",
    Inclusion.TOWNSHIP_PASSED: "乡级审核通过",
    Inclusion.COUNTY_APPROVED: "县级批复及公告",
    Inclusion.ENTERED: "已录入系统",
    Inclusion.CLOSED: "程序终止",
}

S = Inclusion
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "verify_lead_meets", "source": S.LEAD_RECORDED, "dest": S.VERIFIED},
    {"trigger": "verify_lead_not_meets", "source": S.LEAD_RECORDED, "dest": S.CLOSED},
    {"trigger": "sign_application", "source": S.VERIFIED, "dest": S.APPLIED},
    *publicity_to_county(Inclusion, after=S.APPLIED,
                         county_guards=["income_assessment_window", "category_fits_household", "income_below_line"]),
    {"trigger": "enter_system", "source": S.COUNTY_APPROVED, "dest": S.ENTERED},
]

INCLUSION = Workflow("inclusion", Inclusion, Inclusion.LEAD_RECORDED, TRANSITIONS)
