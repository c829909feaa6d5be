"""风险消除程序 — the exit procedure (DOMAIN.md "Exit"), as one table.

village nominates → home visit → deliberation and 5-day notice → township review → county decision and
announcement → township marks the risk eliminated. `return` goes back one stage; `reject` and a
`not_meets` visit close the procedure and the household stays monitored. After the county's decision the
township may still decline to mark (`review_township` reject) when the fresh data do not support it, so a
case can never be stuck at `county_approved`.

Nomination starts the procedure (the machine's initial state), so it is not a transition: its guards are
listed in `NOMINATION_GUARDS` and checked by the aggregate when the village nominates.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from workflows.machine import Workflow, publicity_to_county


class Exit(StrEnum):
    NOMINATED = "nominated"                  # 村（居）提名
    VERIFIED = "verified"                    # 入户核实符合
    IN_PUBLICITY = "in_publicity"            # 村级评议及公示中
    PUBLICITY_CLOSED = "publicity_closed"    # 公示结束
    TOWNSHIP_PASSED = "township_passed"      # 乡级审核通过
    COUNTY_APPROVED = "county_approved"      # 县级审定及公告
    ELIMINATED = "eliminated"                # 标注风险消除
    CLOSED = "closed"                        # 程序终止: stays monitored


LABELS = {
    Exit.NOMINATED: "村级提名",
    Exit.VERIFIED: "入户核实符合",
    Exit.IN_PUBLICITY: "村级评议及公示中",
    Exit.PUBLICITY_CLOSED: "公示结束",
    Exit.TOWNSHIP_PASSED: "乡级审核通过",
    Exit.COUNTY_APPROVED: "县级审定及公告",
    Exit.ELIMINATED: "已标注风险消除",
    Exit.CLOSED: "程序终止",
}

S = Exit
TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "verify_exit_meets", "source": S.NOMINATED, "dest": S.VERIFIED},
    {"trigger": "verify_exit_not_meets", "source": S.NOMINATED, "dest": S.CLOSED},
    *publicity_to_county(Exit, after=S.VERIFIED),
    {"trigger": "review_township_reject", "source": S.COUNTY_APPROVED, "dest": S.CLOSED,
     "guards": ["four_eyes"]},
    {
        "trigger": "mark_risk_eliminated",
        "source": S.COUNTY_APPROVED,
        "dest": S.ELIMINATED,
        "guards": ["post_elimination_assessment", "household_has_labour"],
    },
]

#: checked, in this order, when the village nominates a household (村提名)
NOMINATION_GUARDS = (
    "household_has_labour",
    "min_assistance_months",
    "exit_income_assessment",
    "guarantees_secure",
)

EXIT = Workflow("exit", Exit, Exit.NOMINATED, TRANSITIONS)
