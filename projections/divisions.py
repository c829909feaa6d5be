"""The one division filter every read-model query uses: a division code prefix as an index range.

`division_code LIKE '5226%'` cannot use the index on the division column (SQLite's LIKE is case-insensitive,
and PostgreSQL's is only indexable under the C collation or `text_pattern_ops`): a village's roster then
costs as much as the whole store's. Division codes are digits, so the codes under a prefix are exactly those
`>= prefix` and `< the next prefix` (`5226` → `5227`; `5229` → `5230`), a range either database reads from
its ordinary B-tree index, in any collation (digits sort as digits). A prefix of nines has no upper bound;
a prefix that is not all digits (none is stored, but a caller may ask) falls back to an escaped LIKE.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles


def next_prefix(prefix: str) -> str | None:
    """The smallest digit string of the same length above `prefix` (None for all nines)."""
    if prefix.strip("9") == "":
        return None
    return str(int(prefix) + 1).zfill(len(prefix))


def within(column: sa.ColumnElement[Any], prefix: str | None) -> sa.ColumnElement[bool]:
    """`column` holds a division code under `prefix` (always true for no prefix)."""
    if not prefix:
        return sa.true()
    if not (prefix.isascii() and prefix.isdigit()):
        return column.startswith(prefix, autoescape=True)
    upper = next_prefix(prefix)
    if upper is None:
        return column >= prefix
    return sa.and_(column >= prefix, column < upper)


class _Usually(sa.sql.expression.ColumnElement[bool]):
    inherit_cache = True
    type = sa.Boolean()

    def __init__(self, condition: sa.ColumnElement[bool]):
        self.condition = condition


@compiles(_Usually)
def _usually_default(element: _Usually, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.condition, **kw))


@compiles(_Usually, "sqlite")
def _usually_sqlite(element: _Usually, compiler: Any, **kw: Any) -> str:
    return f"likely({compiler.process(element.condition, **kw)})"


def usually(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """A condition most rows meet (a roster's stage filter). Without statistics SQLite prefers an index on an
    equality over a division range, and would read a whole stage of the store for one village; `likely(…)`
    tells its planner the condition is not selective. Other databases get the condition as it is."""
    return _Usually(condition)
