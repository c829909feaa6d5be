"""Every workbook and CSV file casecore writes goes through this module.

- One cell writer (`cell_value`): text is always text — a leading `= + - @`, tab or carriage return gets a `'`
  in front (the OWASP rule against spreadsheet formula injection) and characters a workbook cannot hold (NUL
  and the other control characters) are replaced — numbers stay numbers, dates are dates with a date format,
  money (Decimal) a number with two decimals. `csv_text` writes CSV with the same escaping and a UTF-8 BOM
  so Chinese Excel opens it right.
- One layout family (`write_table`): a merged title (area name and as-of date), a subtitle (as-of date, who
  printed it and when), a Chinese header row frozen, filtered and repeated on every printed page, A4
  landscape fitted to the page width at a readable scale (column widths are chosen so the fit never goes
  below `MIN_SCALE`), long text wrapped, page numbers — and the 填表人/审核人 line where the sheet is a form.
"""

from __future__ import annotations

import csv
import getpass
import io
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet.worksheet import Worksheet

DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
MONEY_FORMAT = "#,##0.00"
#: the rows above the data: title, subtitle, header
HEADER_ROWS = 3
HEADER_ROW = 3
#: a column never gets wider than this (in character cells); longer text wraps
MAX_WIDTH = 40
#: a wrapped column is never squeezed below this
MIN_WRAP_WIDTH = 10
SIGNATURE = "填表人:              审核人:              单位负责人(签字):              填报日期:"
PAGE_NUMBERS = "第 &P 页 共 &N 页"
BODY_FONT_PT = 11
#: the smallest print scale allowed, and the smallest printed text size
MIN_SCALE = 0.70
MIN_PRINTED_PT = 9.0
#: column widths are chosen so that fitting the sheet to the page width needs no scale below this: body text
#: prints at 9 pt or more
TARGET_SCALE = math.ceil(MIN_PRINTED_PT / BODY_FONT_PT * 100) / 100
#: A4 landscape width and the side margins (points; 72 a inch)
A4_LANDSCAPE_WIDTH_PT = 842.0
SIDE_MARGIN_IN = 0.4
#: the replacement for a character a workbook cannot hold
REPLACEMENT = "\ufffd"

_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
#: characters XML 1.0 (and so .xlsx) cannot hold: C0 controls other than tab, line feed, carriage return, lone
#: surrogates (a string decoded with surrogateescape may carry them) and the two non-characters
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: a text starting with one of these would be read as a formula (or a DDE call) by a spreadsheet
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


# ------------------------------------------------------------------------------------------------------- cells

def safe_text(text: str) -> str:
    """Text as a spreadsheet must show it: never a formula, no character a workbook cannot hold."""
    text = _ILLEGAL.sub(REPLACEMENT, text)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def cell_value(value: Any) -> Any:
    """What a cell holds for a value: numbers and dates typed, everything else safe text."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (int, float, Decimal)):
        return value
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return value
    if isinstance(value, (list, tuple)):
        return safe_text("、".join(str(v) for v in value))
    return safe_text(str(value))


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV for Chinese Excel: a UTF-8 BOM, the header, then each row's cells escaped as in a workbook (dates
    ISO, money as plain numbers)."""
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([safe_text(h) for h in header])
    for row in rows:
        writer.writerow([_csv_cell(v) for v in row])
    return buf.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return safe_text(str(value))


def display_width(value: Any) -> int:
    """Width in character cells: CJK characters take two."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 16
    if isinstance(value, date):
        return 10
    if isinstance(value, Decimal):
        return len(f"{value:,.2f}")
    text = value if isinstance(value, str) else str(value)
    if text.isascii():
        return len(text)
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


# ------------------------------------------------------------------------------------------------------ layout

@dataclass(frozen=True)
class Column:
    """One column: the row key it shows, its Chinese header, and for long text the width it wraps at."""

    key: str
    header: str
    wrap: int | None = None


def new_workbook() -> Workbook:
    """An empty workbook (its first sheet is used by the first `write_table`)."""
    return Workbook()


def sheet(wb: Workbook, name: str) -> Worksheet:
    """The workbook's first, still empty sheet under this name, else a new sheet."""
    first = wb.worksheets[0]
    if first.max_row == 1 and first.max_column == 1 and first["A1"].value is None and first.title == "Sheet":
        first.title = name
        return first
    return wb.create_sheet(name)


def write_rows(path: Path, name: str, head: Iterable[Sequence[Any]], rows: Iterable[Sequence[Any]],
               text: bool = False) -> Path:
    """A workbook of plain rows with no layout, as another system's export looks (the national export, a
    department's list): one sheet `name`, the `head` rows as given, then `rows` — every cell of those a text
    cell when `text` (the national system formats every cell as text). Written row by row in openpyxl's
    write-only mode: constant memory for an export of a million rows."""
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(name)
    for values in head:
        ws.append(list(values))
    for values in rows:
        if text:
            cells = []
            for value in values:
                cell = WriteOnlyCell(ws, value=value)
                cell.number_format = "@"
                cells.append(cell)
            ws.append(cells)
        else:
            ws.append(list(values))
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def long_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def title(area: str, name: str, as_of: date | None) -> str:
    """"黎平县 防返贫监测对象名单（截至2023年12月31日）"."""
    when = f"（截至{long_date(as_of)}）" if as_of else ""
    return f"{area + ' ' if area else ''}{name}{when}"


def printed_by() -> str:
    """Who prints: CASECORE_USER, else the login name."""
    who = os.environ.get("CASECORE_USER")
    if who:
        return who
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without a passwd entry)
        return ""


def subtitle(as_of: date | None, extra: str = "", who: str | None = None, at: datetime | None = None) -> str:
    """The line under the title: as-of date, what else the reader must know, who printed it and when."""
    who = printed_by() if who is None else who
    at = at or datetime.now()
    parts = [f"数据截至: {long_date(as_of)}" if as_of else "", extra,
             f"打印: {who + ' ' if who else ''}{at:%Y-%m-%d %H:%M}"]
    return "    ".join(p for p in parts if p)


def _styles(wb: Workbook) -> dict[str, str]:
    """Register the body cells' styles once per workbook (assigning a named style is cheap; building a border
    and alignment per cell costs most of the time on a large ledger)."""
    names = {"text": "表_正文", "date": "表_日期", "datetime": "表_时间", "money": "表_金额", "wrap": "表_长文本",
             "number": "表_数值"}
    if names["text"] not in wb.named_styles:
        font = Font(size=BODY_FONT_PT)
        middle = Alignment(vertical="center")
        wb.add_named_style(NamedStyle(names["text"], font=font, border=_BORDER, alignment=middle))
        wb.add_named_style(NamedStyle(names["date"], font=font, border=_BORDER, number_format=DATE_FORMAT,
                                      alignment=Alignment(horizontal="center", vertical="center")))
        wb.add_named_style(NamedStyle(names["datetime"], font=font, border=_BORDER, number_format=DATETIME_FORMAT,
                                      alignment=Alignment(horizontal="center", vertical="center")))
        wb.add_named_style(NamedStyle(names["money"], font=font, border=_BORDER, number_format=MONEY_FORMAT,
                                      alignment=middle))
        wb.add_named_style(NamedStyle(names["number"], font=font, border=_BORDER, number_format="0",
                                      alignment=middle))
        wb.add_named_style(NamedStyle(names["wrap"], font=font, border=_BORDER,
                                      alignment=Alignment(wrap_text=True, vertical="center")))
    return names


def printable_width_pt() -> float:
    return A4_LANDSCAPE_WIDTH_PT - 2 * 72 * SIDE_MARGIN_IN


def column_width_pt(width: float) -> float:
    """A column's printed width in points at 100 % (Excel's unit: the default font's digit, 7 px, plus 5 px
    padding, at 96 px an inch)."""
    return (width * 7 + 5) * 0.75


def fit_scale(ws: Worksheet) -> float:
    """The scale at which the sheet's columns fit the printable width of its page (1.0 when they fit as they
    are): what fitting to one page wide prints at."""
    total = sum(column_width_pt(ws.column_dimensions[get_column_letter(j)].width or 8.43)
                for j in range(1, ws.max_column + 1))
    return min(1.0, printable_width_pt() / total) if total else 1.0


def _widths(columns: Sequence[Column], natural: list[int]) -> list[float]:
    """Column widths: each column's content (capped), and when they cannot fit the page at TARGET_SCALE the
    wrapped columns give up width, widest first, down to MIN_WRAP_WIDTH."""
    widths = [float(min(col.wrap or MAX_WIDTH, w) + 1) for col, w in zip(columns, natural, strict=True)]
    budget = printable_width_pt() / TARGET_SCALE
    while sum(column_width_pt(w) for w in widths) > budget:
        wrapped = [j for j, col in enumerate(columns) if col.wrap and widths[j] > MIN_WRAP_WIDTH]
        if not wrapped:
            break
        j = max(wrapped, key=lambda k: widths[k])
        widths[j] -= 1
    return widths


def _header(text: str) -> str:
    """A header with its unit on a line of its own: “新纳入监测(户)” → “新纳入监测⏎(户)”."""
    head, sep, unit = text.partition("(")
    return f"{head}\n({unit}" if sep and head and display_width(text) > 6 else text


def _lines(value: Any, width: float) -> int:
    """How many lines a wrapped cell of this width takes."""
    if not isinstance(value, str):
        return 1
    room = max(1.0, width - 1)
    return sum(max(1, math.ceil(display_width(part) / room)) for part in value.split("\n"))


def write_table(ws: Worksheet, heading: str, sub: str, columns: Sequence[Column], rows: Iterable[dict[str, Any]],
                form: bool = False, totals: dict[str, Any] | None = None) -> int:
    """Write one printable table: title, subtitle, header, the rows (each cell through `cell_value`), and a
    totals row when given. `form` puts the 填表人/审核人 line in the footer. Returns the data rows written."""
    n_cols = len(columns)
    styles = _styles(ws.parent)
    last = get_column_letter(n_cols)
    ws.cell(row=1, column=1, value=safe_text(heading)).font = Font(bold=True, size=16)
    ws.cell(row=1, column=1).alignment = Alignment(horizontal="center", vertical="center")
    ws.merge_cells(f"A1:{last}1")
    ws.row_dimensions[1].height = 30
    ws.cell(row=2, column=1, value=safe_text(sub)).font = Font(size=10)
    ws.cell(row=2, column=1).alignment = Alignment(horizontal="right", vertical="center")
    ws.merge_cells(f"A2:{last}2")
    ws.row_dimensions[2].height = 18
    header_fill = PatternFill("solid", fgColor="DDDDDD")
    natural = [0] * n_cols
    for j, col in enumerate(columns, start=1):
        cell = ws.cell(row=HEADER_ROW, column=j, value=safe_text(_header(col.header)))
        cell.font = Font(bold=True, size=BODY_FONT_PT)
        cell.fill = header_fill
        cell.border = _BORDER
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        # a header wraps onto two lines rather than widen its column
        shown = _header(col.header)
        if "\n" in shown:
            natural[j - 1] = max(display_width(part) for part in shown.split("\n"))
        else:
            header_width = display_width(shown)
            natural[j - 1] = header_width if header_width <= 4 else math.ceil(header_width / 2) + 1
    count = 0
    keys = [c.key for c in columns]
    wrapped = [c.wrap is not None for c in columns]
    lines_of: list[tuple[int, list[Any]]] = []
    all_rows = list(rows)
    if totals is not None:
        all_rows.append(totals)
    for i, row in enumerate(all_rows, start=HEADER_ROWS + 1):
        count += 1
        row_texts: list[Any] = []
        for j, key in enumerate(keys):
            value = cell_value(row.get(key))
            cell = ws.cell(row=i, column=j + 1, value=value)
            if isinstance(value, datetime):
                cell.style = styles["datetime"]
            elif isinstance(value, date):
                cell.style = styles["date"]
            elif isinstance(value, Decimal):
                cell.style = styles["money"]
            elif isinstance(value, (int, float)):
                cell.style = styles["number"]
            elif wrapped[j]:
                cell.style = styles["wrap"]
            else:
                cell.style = styles["text"]
            row_texts.append(value)
            width = max((display_width(part) for part in value.split("\n")), default=0) \
                if isinstance(value, str) else display_width(value)
            if width > natural[j]:
                natural[j] = width
        lines_of.append((i, row_texts))
    widths = _widths(columns, natural)
    for j, w in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(j)].width = w
    ws.row_dimensions[HEADER_ROW].height = 15 * max(
        _lines(_header(c.header), w) for c, w in zip(columns, widths, strict=True)) + 4
    for i, texts in lines_of:  # wrapped rows as tall as their text (Excel does not measure on opening)
        lines = max((_lines(t, widths[j]) for j, t in enumerate(texts) if wrapped[j]), default=1)
        if lines > 1:
            ws.row_dimensions[i].height = 15 * lines + 2
    if totals is not None:
        for j in range(1, n_cols + 1):
            ws.cell(row=HEADER_ROWS + len(all_rows), column=j).font = Font(bold=True, size=BODY_FONT_PT)
        count -= 1
    last_row = HEADER_ROWS + max(1, len(all_rows) - (1 if totals is not None else 0))
    ws.auto_filter.ref = f"A{HEADER_ROW}:{last}{last_row}"
    ws.freeze_panes = ws.cell(row=HEADER_ROWS + 1, column=1)
    ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    print_setup(ws, form)
    return count


def print_setup(ws: Worksheet, form: bool = False) -> None:
    """A4 landscape, one page wide, centred, page numbers; the signature line when the sheet is a form."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = SIDE_MARGIN_IN
    ws.page_margins.top = 0.5
    ws.page_margins.bottom = 0.7
    ws.page_margins.footer = 0.3
    if form:
        ws.oddFooter.left.text = SIGNATURE
        ws.oddFooter.left.size = 10
    ws.oddFooter.right.text = PAGE_NUMBERS
    ws.oddFooter.right.size = 10
