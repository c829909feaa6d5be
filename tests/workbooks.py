"""Reading back what casecore's workbooks hold, the way a reader sees a table: the header row under the title
and subtitle, then one dict a data row."""

from __future__ import annotations

from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

from adapters.output.sheets import HEADER_ROW


def headers(ws: Worksheet) -> list[str]:
    """The header row as written, a unit put on its own line read back on one."""
    return [c.value.replace("\n", "") for c in ws[HEADER_ROW]]


def table(ws: Worksheet) -> list[dict[str, Any]]:
    """The data rows of a sheet as {header: value}."""
    names = headers(ws)
    return [dict(zip(names, row, strict=False)) for row in ws.iter_rows(min_row=HEADER_ROW + 1, values_only=True)]
