"""Every workbook as a county office prints it: a demo county's roster, ledgers, findings and monthly dispatch
written by their commands, rendered to PDF by LibreOffice (headless), must come out A4 landscape, a sane
number of pages, and no sheet scaled below 70 % or its body text below 9 pt.

LibreOffice does not write the scale it chose into the PDF, so the scale is the one the sheet declares: fit to
one page wide, with column widths that fit the printable width at `fit_scale`; the PDF gives the pages and
their orientation. Without LibreOffice the test is skipped with the reason (and fails under CI=true)."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook

from adapters.output.printing import demo_workbooks, missing_tools, pdf_info, to_pdf
from adapters.output.sheets import BODY_FONT_PT, HEADER_ROW, MIN_PRINTED_PT, MIN_SCALE, fit_scale
from tests.services import require

pytestmark = pytest.mark.libreoffice

A4_LANDSCAPE = (842, 595)


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    missing = missing_tools()
    require(f"LibreOffice/poppler not installed: {', '.join(missing)}" if missing else None)
    work = tmp_path_factory.mktemp("prints")
    books = demo_workbooks(work, households=200)
    pdfs = to_pdf(list(books.values()), work / "pdf")
    return {name: (book, pdf) for (name, book), pdf in zip(books.items(), pdfs, strict=True)}


@pytest.mark.parametrize("name", ["roster", "ledger", "findings", "monthly"])
def test_each_workbook_prints_on_a4_landscape_at_a_readable_scale(printed, name):
    book, pdf = printed[name]
    wb = load_workbook(book)
    data_rows = 0
    for ws in wb.worksheets:
        setup = ws.page_setup
        assert setup.orientation == "landscape" and int(setup.paperSize) == int(ws.PAPERSIZE_A4), ws.title
        assert ws.sheet_properties.pageSetUpPr.fitToPage and setup.fitToWidth == 1 and setup.fitToHeight == 0
        scale = fit_scale(ws)
        assert scale >= MIN_SCALE, f"{ws.title} prints at {scale:.0%}"
        assert BODY_FONT_PT * scale >= MIN_PRINTED_PT, f"{ws.title}: body text {BODY_FONT_PT * scale:.1f} pt"
        assert ws.print_title_rows and str(HEADER_ROW) in ws.print_title_rows
        assert "&P" in ws.oddFooter.right.text and "&N" in ws.oddFooter.right.text
        assert ws.auto_filter.ref and ws.freeze_panes
        data_rows += ws.max_row - HEADER_ROW
    info = pdf_info(pdf)
    assert info.landscape and (round(info.width_pt), round(info.height_pt)) == A4_LANDSCAPE
    # a sane count: at least one page a sheet, and on average at least five rows a page
    assert len(wb.worksheets) <= info.pages <= max(len(wb.worksheets), data_rows // 5), (info.pages, data_rows)


def test_titles_name_the_county_and_the_as_of_date_not_a_policy(printed):
    for name, (book, _) in printed.items():
        for ws in load_workbook(book).worksheets:
            heading = ws["A1"].value
            assert heading.startswith("黎平县 ") and "截至" in heading and "guizhou" not in heading, (name, heading)
            assert "打印" in ws["A2"].value, (name, ws["A2"].value)


def test_places_are_names_not_codes(printed):
    book, _ = printed["ledger"]
    ws = load_workbook(book)["问题台账"]
    headers = [c.value.replace("\n", "") for c in ws[HEADER_ROW]]
    towns = {r[headers.index("乡镇")] for r in ws.iter_rows(min_row=HEADER_ROW + 1, values_only=True)}
    assert towns and all(t and not t.isdigit() and t.endswith(("镇", "乡")) for t in towns), towns
