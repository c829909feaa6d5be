"""The one cell writer every workbook and CSV goes through: any text comes back from the saved file as text,
as typed apart from a `'` before a formula-like start and U+FFFD for characters a workbook cannot hold;
numbers, money and dates keep their types."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from adapters.output.sheets import (
    BODY_FONT_PT,
    MIN_PRINTED_PT,
    Column,
    cell_value,
    csv_text,
    fit_scale,
    new_workbook,
    sheet,
    write_table,
)

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
LEADS = ("=", "+", "-", "@", "\t", "\r")
#: text with the characters that matter over-represented
TEXT = st.text(alphabet=st.sampled_from(list("=+-@\t\r\n\x00\x01\x1f'!|A1 王(\"),")) | st.characters(),
               max_size=30)


def _roundtrip(values: list, tmp_path) -> list:
    wb = Workbook()
    ws = wb.active
    for i, v in enumerate(values, start=1):
        ws.cell(row=i, column=1, value=cell_value(v))
    path = tmp_path / "cells.xlsx"
    wb.save(path)
    back = load_workbook(path).active
    cells = [back.cell(row=i, column=1) for i in range(1, len(values) + 1)]
    assert all(c.data_type != "f" for c in cells)
    return [c.value for c in cells]


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(TEXT.filter(bool), min_size=1, max_size=8))
def test_any_text_comes_back_as_text_never_a_formula(texts, tmp_path_factory):
    back = _roundtrip(texts, tmp_path_factory.mktemp("cells"))
    for typed, shown in zip(texts, back, strict=True):
        cleaned = CONTROL.sub("\ufffd", typed)
        expected = "'" + cleaned if cleaned.startswith(LEADS) else cleaned
        assert _lines(shown) == _lines(expected)


def _lines(text: str) -> str:
    """XML reads a carriage return back as a line feed."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def test_hostile_examples_are_shown_as_typed_behind_a_quote(tmp_path):
    typed = ['=HYPERLINK("http://x","y")', "=cmd|' /C calc'!A0", "+1", "-1+1", "@SUM(A1)", "\tA", "a\x00b\x07c"]
    assert _roundtrip(typed, tmp_path) == ['\'=HYPERLINK("http://x","y")', "'=cmd|' /C calc'!A0", "'+1", "'-1+1",
                                           "'@SUM(A1)", "'\tA", "a\ufffdb\ufffdc"]


def test_numbers_money_and_dates_keep_their_types(tmp_path):
    back = _roundtrip([-1, 2.5, Decimal("5300.10"), date(2023, 3, 13), datetime(2023, 3, 13, 8, 30)], tmp_path)
    assert back[:3] == [-1, 2.5, 5300.1]
    assert back[3] == datetime(2023, 3, 13) and back[4] == datetime(2023, 3, 13, 8, 30)


def test_the_layout_types_money_and_dates_and_filters_the_header(tmp_path):
    wb = new_workbook()
    ws = sheet(wb, "表")
    write_table(ws, "标题", "副标题", [Column("a", "金额"), Column("b", "日期"), Column("c", "说明", wrap=20)],
                [{"a": Decimal("12.5"), "b": date(2023, 1, 2), "c": "=1+1"}])
    wb.save(tmp_path / "t.xlsx")
    back = load_workbook(tmp_path / "t.xlsx")["表"]
    assert back["A4"].number_format == "#,##0.00" and back["A4"].data_type == "n"
    assert back["B4"].number_format == "yyyy-mm-dd" and back["B4"].is_date
    assert back["C4"].value == "'=1+1" and back["C4"].data_type == "s"
    assert back.auto_filter.ref == "A3:C4" and back.freeze_panes == "A4"
    assert back.page_setup.orientation == "landscape" and back.page_setup.fitToWidth == 1
    assert back.print_title_rows == "$3:$3"
    assert "第 &P 页 共 &N 页" in back.oddFooter.right.text


def test_a_wide_table_gives_up_width_in_its_wrapped_columns_to_stay_readable():
    wb = new_workbook()
    ws = sheet(wb, "宽表")
    columns = [Column(f"k{j}", f"第{j}列说明", wrap=40) for j in range(8)]
    write_table(ws, "标题", "副标题", columns, [{f"k{j}": "很长的一段文字" * 10 for j in range(8)}])
    assert BODY_FONT_PT * fit_scale(ws) >= MIN_PRINTED_PT


def test_csv_has_a_bom_escapes_text_and_keeps_numbers_plain():
    text = csv_text(["name", "n", "money", "day"], [["=1+1", -3, Decimal("-12.50"), date(2023, 1, 2)],
                                                   ["@x\x01", None, None, None]])
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows == [["name", "n", "money", "day"], ["'=1+1", "-3", "-12.50", "2023-01-02"],
                    ["'@x\ufffd", "", "", ""]]

