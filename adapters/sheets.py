"""Printable worksheets: a title row, a Chinese header row (both frozen and repeated on every printed page),
columns as wide as their content, dates as real dates, and a signature line in the page footer — what a
county office prints, signs and files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

DATE_FORMAT = "yyyy-mm-dd"
#: the rows above the data: title, header
HEADER_ROWS = 2
MAX_WIDTH = 48
SIGNATURE = "填表人:              审核人:              单位负责人(签字):              填报日期:"

_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)


@dataclass(frozen=True)
class Column:
    """One column: the row key it shows and its Chinese header."""

    key: str
    header: str


def display_width(value: Any) -> int:
    """Width in character cells: CJK characters take two."""
    if value is None:
        return 0
    if isinstance(value, (date, datetime)):
        return 10
    text = value if isinstance(value, str) else str(value)
    if text.isascii():
        return len(text)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _styles(ws: Worksheet) -> tuple[str, str, str]:
    """Register the body cells' styles once per workbook and return their names (assigning a named style is
    cheap; building a border and alignment per cell costs most of the time on a large ledger)."""
    wb = ws.parent
    names = ("台账_正文", "台账_日期", "台账_长文本")
    if names[0] not in wb.named_styles:
        wb.add_named_style(NamedStyle(names[0], border=_BORDER))
        wb.add_named_style(NamedStyle(names[1], border=_BORDER, number_format=DATE_FORMAT,
                                      alignment=Alignment(horizontal="center")))
        wb.add_named_style(NamedStyle(names[2], border=_BORDER, alignment=Alignment(wrap_text=True, vertical="top")))
    return names


def fill_sheet(ws: Worksheet, title: str, columns: Sequence[Column], rows: Iterable[dict[str, Any]]) -> int:
    """Write a title, the headers and the rows; returns how many data rows were written."""
    n_cols = len(columns)
    body, dated, long_text = _styles(ws)
    ws.cell(row=1, column=1, value=title).font = Font(bold=True, size=14)
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center", vertical="center")
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=n_cols)
    ws.row_dimensions[1].height = 26
    widths = [display_width(c.header) for c in columns]
    header_fill = PatternFill("solid", fgColor="DDDDDD")
    for j, col in enumerate(columns, start=1):
        cell = ws.cell(row=2, column=j, value=col.header)
        cell.font = Font(bold=True)
        cell.fill = header_fill
        cell.border = _BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    count = 0
    keys = [c.key for c in columns]
    for i, row in enumerate(rows, start=HEADER_ROWS + 1):
        count += 1
        for j, key in enumerate(keys):
            value = row.get(key)
            if isinstance(value, datetime):
                value = value.replace(tzinfo=None)
            cell = ws.cell(row=i, column=j + 1, value=value)
            width = display_width(value)
            if isinstance(value, date):
                cell.style = dated
            elif width > MAX_WIDTH:
                cell.style = long_text
            else:
                cell.style = body
            if width > widths[j]:
                widths[j] = width
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = min(MAX_WIDTH, w + 2)
    ws.freeze_panes = ws.cell(row=HEADER_ROWS + 1, column=1)
    ws.print_title_rows = f"1:{HEADER_ROWS}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.oddFooter.left.text = SIGNATURE
    ws.oddFooter.right.text = "第 &P 页 共 &N 页"
    return count
