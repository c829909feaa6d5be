"""Input limits: the one place that says how long a text may be, which characters it may hold, and the range of
every amount and date the engine accepts.

Events cannot be removed, so whatever a command may carry must fit every read-model column it reaches. The
command models (`casecore.commands`), the JSON Schema, the read-model column sizes (`projections/*.py`) and the
importers' checks all derive from the figures below; docs/security.md ("Input limits") lists them.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

# --- text ---------------------------------------------------------------------------------------------------

#: identifiers: household, problem, person-in-command, lead, measure, objection ids; an actor's id
ID_MAX = 64
#: the idempotency key (`command_id`; room for `measures:<household id>:<measure id>:implement`)
COMMAND_ID_MAX = 160
#: the command id column of stored events: a command's key, or an imported fact's
#: `national_export:<household id>:<fact key>`
STORED_COMMAND_ID_MAX = COMMAND_ID_MAX + ID_MAX
#: a person's or an actor's name (members, cadres, parties)
NAME_MAX = 64
#: a unit (division code or department name), a measure's department or responsible party
UNIT_MAX = 128
#: a member's relation to the head of household (户主, 配偶, 之子 …)
RELATION_MAX = 32
#: a resettlement site (安置点)
SITE_MAX = 128
#: an inspector rule's cycle key on a problem (`finding_key`)
FINDING_KEY_MAX = 160
#: one evidence reference (a document number, a file name)
EVIDENCE_MAX = 256
#: where an imported fact comes from (`national_export:<file name>`, a file name of up to 255 characters)
ORIGIN_MAX = 300
#: free text: a note, a lead's or an objection's detail, a reason, a rectification action
FREE_TEXT_MAX = 5000

#: one cell of a department's screening file (a lead's detail joins at most three)
CELL_MAX = 1000
#: one command as JSON (a line of `casecore apply`): the largest command the limits allow is well under it
COMMAND_JSON_MAX = 1024 * 1024

# --- lists --------------------------------------------------------------------------------------------------

#: members of one household, and person ids named in one guarantee check
MEMBERS_MAX = 50
#: evidence references on one command
EVIDENCE_ITEMS_MAX = 50

# --- characters ---------------------------------------------------------------------------------------------

#: short text (ids, names, units): no control character at all (NUL, newline, tab, DEL …)
SHORT_TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"
#: free text: no control character except newline and tab
FREE_TEXT_PATTERN = r"^[^\x00-\x08\x0b-\x1f\x7f]*$"
_SHORT_RE = re.compile(SHORT_TEXT_PATTERN)
_FREE_RE = re.compile(FREE_TEXT_PATTERN)

# --- money --------------------------------------------------------------------------------------------------

#: amounts are yuan with at most two decimals and |x| < 10^10 (what a household can have): NUMERIC(14, 2)
#: holds them and a per-capita figure or a difference of two of them
MONEY_BOUND = Decimal(10) ** 10
MONEY_DECIMALS = 2
MONEY_PATTERN = r"^-?\d{1,10}(\.\d{1,2})?$"
#: the read models' money columns: digits and scale (room for the sum or difference of two amounts)
MONEY_PRECISION, MONEY_SCALE = 14, MONEY_DECIMALS
_CENT = Decimal(1).scaleb(-MONEY_DECIMALS)

# --- dates --------------------------------------------------------------------------------------------------

#: business dates (the act's `on`, income periods, deadlines) lie in this range; `on` also no later than the
#: day it is recorded plus the policy's `procedure.future_dated_days` (time zones: the recording clock is UTC,
#: cadres are at UTC+8), the figure the inspector's `future_dated_act` reads too
DATE_MIN = date(2000, 1, 1)
DATE_MAX = date(2099, 12, 31)
#: birth dates of members
BIRTH_MIN = date(1900, 1, 1)


def short_text_problem(value: str, limit: int) -> str | None:
    """Why `value` is not acceptable short text (too long, a control character), or None."""
    if len(value) > limit:
        return f"长度 {len(value)} 超过上限 {limit} 个字符"
    if not _SHORT_RE.match(value):
        return "含有控制字符 (如换行、制表符或 NUL)"
    return None


def free_text_problem(value: str, limit: int = FREE_TEXT_MAX) -> str | None:
    """Why `value` is not acceptable free text (too long, a control character other than newline and tab)."""
    if len(value) > limit:
        return f"长度 {len(value)} 超过上限 {limit} 个字符"
    if not _FREE_RE.match(value):
        return "含有换行和制表符以外的控制字符 (如 NUL)"
    return None


def money_problem(amount: Decimal) -> str | None:
    """Why `amount` (a finite Decimal) is out of the accepted range or has more than two decimals, or None."""
    if not amount.is_finite():
        return "不是有限的数"
    if abs(amount) >= MONEY_BOUND:
        return f"超出范围 (绝对值应小于 {MONEY_BOUND:,.0f} 元)"
    if amount != amount.quantize(_CENT):
        return f"最多保留 {MONEY_DECIMALS} 位小数 (到分)"
    return None


def date_problem(value: date, low: date = DATE_MIN, high: date = DATE_MAX) -> str | None:
    """Why `value` is outside [low, high], or None."""
    if value < low or value > high:
        return f"日期 {value} 超出范围 {low} 至 {high}"
    return None


def latest_business_date(recorded_on: date, days_ahead: int) -> date:
    """The latest business date a command recorded on `recorded_on` may state, `days_ahead` being the policy's
    `procedure.future_dated_days`."""
    return recorded_on + timedelta(days=days_ahead)
