"""问题整改 — the rectification procedure (DOMAIN.md "Rectification": 双台账、双责任、双销号、双问责), as one table.

raised → responsibility assigned (responsible party, supervising party, deadline) → rectification recorded
→ reported rectified → the responsible party signs off → the supervisor signs off: closed (销号).
Either party may refuse its sign-off at its turn: the problem goes back to rectification with the reason.
Accountability (问责) can be recorded in every state once responsibility is assigned. A closed problem
found false by a new finding is reopened: back to rectification, with accountability against both parties.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from workflows.machine import Workflow


class Rectification(StrEnum):
    RAISED = "raised"                          # 问题已登记
    ASSIGNED = "assigned"                      # 已明确双责任
    IN_RECTIFICATION = "in_rectification"      # 整改中
    REPORTED = "reported"                      # 整改完成待销号
    RESPONSIBLE_SIGNED = "responsible_signed"  # 责任方已销号, 待监督方销号
    CLOSED = "closed"                          # 已销号


LABELS = {
    Rectification.RAISED: "已登记",
    Rectification.ASSIGNED: "已明确责任",
    Rectification.IN_RECTIFICATION: "整改中",
    Rectification.REPORTED: "整改完成待销号",
    Rectification.RESPONSIBLE_SIGNED: "责任方已销号",
    Rectification.CLOSED: "已销号",
}

S = Rectification

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "assign_responsibility", "source": S.RAISED, "dest": S.ASSIGNED, "guards": ["four_eyes_parties"]},
    {"trigger": "record_rectification", "source": [S.ASSIGNED, S.IN_RECTIFICATION], "dest": S.IN_RECTIFICATION},
    {"trigger": "report_rectified", "source": S.IN_RECTIFICATION, "dest": S.REPORTED,
     "guards": ["action_since_return"]},
    # 双销号: the responsible party first, then the supervisor — each the named person, two different people
    {"trigger": "sign_off_responsible", "source": S.REPORTED, "dest": S.RESPONSIBLE_SIGNED,
     "guards": ["named_person"]},
    {"trigger": "sign_off_supervisor", "source": S.RESPONSIBLE_SIGNED, "dest": S.CLOSED,
     "guards": ["four_eyes_sign_off", "named_person"]},
    {"trigger": "reject_sign_off_responsible", "source": S.REPORTED, "dest": S.IN_RECTIFICATION,
     "guards": ["named_person"]},
    {"trigger": "reject_sign_off_supervisor", "source": S.RESPONSIBLE_SIGNED, "dest": S.IN_RECTIFICATION,
     "guards": ["four_eyes_sign_off", "named_person"]},
    # 双问责: accountability is recorded without moving the problem
    {"trigger": "hold_accountable", "source": S.ASSIGNED, "dest": S.ASSIGNED},
    {"trigger": "hold_accountable", "source": S.IN_RECTIFICATION, "dest": S.IN_RECTIFICATION},
    {"trigger": "hold_accountable", "source": S.REPORTED, "dest": S.REPORTED},
    {"trigger": "hold_accountable", "source": S.RESPONSIBLE_SIGNED, "dest": S.RESPONSIBLE_SIGNED},
    {"trigger": "hold_accountable", "source": S.CLOSED, "dest": S.CLOSED},
    # a closed problem found false: back to rectification (the event carries accountability against both)
    {"trigger": "reopen_problem", "source": S.CLOSED, "dest": S.IN_RECTIFICATION},
]

RECTIFICATION = Workflow("rectification", Rectification, Rectification.RAISED, TRANSITIONS)
