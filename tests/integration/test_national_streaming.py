"""The national import streams: rows are read lazily by the fastest reader that reads the file, a household
whose rows are not contiguous is still assembled whole, and memory does not grow with the file's size."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest

from adapters.importers.national import COLUMNS, Divisions, import_national, open_export
from adapters.importers.national_writer import household_rows, person, write_divisions, write_export

VILLAGE = ("522631101001", "黎平县", "德凤镇", "高近村")
WHERE = {"县": "黎平县", "乡": "德凤镇", "村": "高近村"}
EXPORTED = date(2023, 6, 30)


def household(i: int) -> dict[str, str]:
    return {**WHERE, "户编号": f"H{i:06d}", "户类型": "脱贫户", "监测对象类别": "脱贫不稳定户",
            "识别监测时间": "202203", "风险是否已消除": "否", "致贫/返贫风险1": "因病", "人均纯收入（元）": "5200",
            "健康帮扶": "家庭医生签约"}


def family(i: int) -> list[dict[str, str]]:
    return household_rows(household(i), [person(3 * i, name=f"户主{i}"),
                                         person(3 * i + 1, date(1983, 4, 5), name=f"配偶{i}", relation="配偶"),
                                         person(3 * i + 2, date(2010, 5, 6), name=f"子女{i}", relation="之子",
                                                labour="无劳动力")])


@pytest.fixture
def divisions(tmp_path) -> Divisions:
    return Divisions.load(write_divisions(tmp_path / "divisions.csv", [VILLAGE]))


def test_a_household_whose_rows_are_not_contiguous_is_assembled_whole(app, tmp_path, divisions):
    families = [family(i) for i in range(5)]
    # every household's rows spread over the file: first rows of all, then second rows, then third
    scattered = [f[k] for k in range(3) for f in families]
    path = write_export(tmp_path / "scattered.xlsx", scattered)

    report = import_national(app, path, divisions, EXPORTED, batch_size=2)

    assert (report.households, report.people, report.rejected) == (5, 15, [])
    for i in range(5):
        h = app.get_household(f"H{i:06d}")
        assert sorted(m["name"] for m in h.members.values()) == sorted([f"户主{i}", f"配偶{i}", f"子女{i}"])
        assert h.stage == "monitored"
    contiguous = write_export(tmp_path / "contiguous.xlsx", [r for f in families for r in f])
    assert import_national(app, contiguous, divisions, EXPORTED).events == 0  # the same facts


def test_every_reader_reads_the_same_rows(tmp_path):
    rows = [r for i in range(3) for r in family(i)]
    xlsx = write_export(tmp_path / "e.xlsx", rows)
    csv = write_export(tmp_path / "e.csv", rows)
    read = {name: list(open_export(xlsx, name).rows) for name in ("stream", "calamine", "openpyxl")}
    read["csv"] = list(open_export(csv).rows)
    assert read["stream"] == read["calamine"] == read["openpyxl"] == read["csv"]
    assert [n for n, _ in read["csv"]] == list(range(4, 13))  # header on row 3: data from row 4
    assert open_export(xlsx).reader == "stream" and open_export(csv).reader == "csv"


def test_a_workbook_another_program_wrote_reads_the_same_through_the_streaming_reader_and_openpyxl(tmp_path):
    """Shared strings, numbers, dates, empty cells, a column left out, blank rows, the header on row 5 and a
    household whose rows are apart: the rows (numbers, columns, text) are the same whichever reader reads."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws["A1"] = "（自定义）监测对象信息"
    header = list(COLUMNS)
    for i, name in enumerate(header, start=1):
        ws.cell(row=5, column=i, value=name)  # two more title rows than the national system writes
    people = [*family(0), *family(1)]
    people.insert(5, people.pop(1))  # household 0's second row after household 1's rows
    row = 6
    for n, person_row in enumerate(people):
        if n == 3:
            row += 2  # two blank rows inside the data
        for i, name in enumerate(header, start=1):
            value: object = person_row.get(name) or None  # an empty cell is no cell at all
            if name == "人均纯收入（元）":
                value = 5200.5 if n % 2 else 5200  # numbers, not text
            elif name == "出生日期":
                value = datetime.strptime(person_row[name], "%Y%m%d")  # a date cell
            elif name == "工资性收入":
                value = None  # a column left out of every row: a gap between cells
            ws.cell(row=row, column=i, value=value)
        row += 1
    path = tmp_path / "other.xlsx"
    wb.save(path)  # openpyxl's full writer: text through the shared-strings table

    stream, op = open_export(path, "stream"), open_export(path, "openpyxl")
    read = list(stream.rows)
    assert read == list(op.rows)
    assert (stream.header_row, stream.total_rows) == (op.header_row, op.total_rows) == (5, 8)
    assert [n for n, _ in read] == [6, 7, 8, 11, 12, 13]
    assert [r["户编号"] for _, r in read] == ["H000000", "H000000", "H000001", "H000001", "H000001", "H000000"]
    assert [r["人均纯收入（元）"] for _, r in read] == ["5200", "5200.5"] * 3
    assert [r["出生日期"] for _, r in read] == [p["出生日期"] for p in people]
    assert all(r["工资性收入"] == "" and r["在校生状况"] == "" for _, r in read)


def _workbook_of_parts(path: Path, sheet: str, shared: str) -> Path:
    """A minimal workbook written part by part, as a program other than openpyxl may write one."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006/relationships"
    sml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{sml}.sheet.main+xml"/>'
            f'<Override PartName="/xl/worksheets/data.xml" ContentType="{sml}.worksheet+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{sml}.sharedStrings+xml"/></Types>'))
        z.writestr("_rels/.rels", f'<Relationships xmlns="{pkg}"><Relationship Id="rId1" '
                                  f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>'
                                      '<sheet name="监测对象信息" sheetId="1" r:id="rId7"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", (
            f'<Relationships xmlns="{pkg}"><Relationship Id="rId2" Type="{rel}/sharedStrings" '
            f'Target="sharedStrings.xml"/><Relationship Target="worksheets/data.xml" Type="{rel}/worksheet" '
            'Id="rId7"/></Relationships>'))
        z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{main}">{shared}</sst>')
        z.writestr("xl/worksheets/data.xml", f'<worksheet xmlns="{main}"><dimension ref="A1:F9"/>'
                                             f'<sheetData>{sheet}</sheetData></worksheet>')
    return path


def test_inline_and_rich_text_numbers_and_cells_without_a_reference_read_the_same_through_both_readers(tmp_path):
    from adapters.importers.national import _openpyxl_rows, _stream_rows, cell_text

    shared = ('<si><t>户编号</t></si><si><r><rPr><b/></rPr><t>张</t></r><r><t xml:space="preserve"> 三 </t></r></si>'
              '<si><t xml:space="preserve">  两行\n文字 </t></si>')
    sheet = ('<row r="2"><c r="B2" t="s"><v>0</v></c></row>'
             '<row r="4"><c r="A4" t="inlineStr"><is><t>x</t></is></c><c r="D4" t="s"><v>1</v></c>'
             '<c r="F4"><v>12</v></c></row>'
             '<row r="5"><c r="B5" t="s"><v>2</v></c><c r="C5"><v>3.25</v></c><c r="D5" t="str"><v>f</v></c>'
             '<c r="E5" t="b"><v>1</v></c></row>'
             '<row><c t="inlineStr"><is><t>无引用</t></is></c><c><v>7</v></c></row>'
             '<row r="9"><c r="C9" t="inlineStr"><is><r><t>rich</t></r><r><t>inline</t></r></is></c></row>')
    path = _workbook_of_parts(tmp_path / "parts.xlsx", sheet, shared)

    def read(opener) -> tuple[list[list[str]], int]:
        values, total, close = opener(path)
        try:
            return [[cell_text(v) for v in row] for row in values], total
        finally:
            close()

    expected = [[""] * 6, ["", "户编号", "", "", "", ""], [""] * 6, ["x", "", "", "张 三", "", "12"],
                ["", "两行\n文字", "3.25", "f", "True", ""], ["无引用", "7", "", "", "", ""], [""] * 6, [""] * 6,
                ["", "", "richinline", "", "", ""]]
    assert read(_stream_rows) == read(_openpyxl_rows) == (expected, 9)  # 9: the declared last row


def test_a_csv_export_imports_like_the_workbook(app, tmp_path, divisions):
    path = write_export(tmp_path / "e.csv", [r for i in range(2) for r in family(i)])
    report = import_national(app, path, divisions, EXPORTED)
    assert (report.households, report.people) == (2, 6)


def test_numbers_written_as_number_cells_read_as_their_digits_through_the_streaming_reader(tmp_path):
    """An ID number another program wrote as a number keeps all 18 digits (python-calamine reads numbers as
    floats: 522631198001020001 came back as …032), a whole number has no decimal point, a month stays YYYYMM."""
    from adapters.importers.national import _openpyxl_rows, _stream_rows, cell_text

    sheet = ('<row r="1"><c r="A1"><v>522631198001020001</v></c><c r="B1"><v>13900000001</v></c>'
             '<c r="C1"><v>5200.50</v></c><c r="D1"><v>1E+3</v></c><c r="E1"><v>0.1</v></c>'
             '<c r="F1"><v>202203</v></c></row>')
    path = _workbook_of_parts(tmp_path / "numbers.xlsx", sheet, "")
    read = {}
    for name, opener in (("stream", _stream_rows), ("openpyxl", _openpyxl_rows)):
        values, _, close = opener(path)
        read[name] = [cell_text(v) for v in next(values)]
        close()
    assert read["stream"] == read["openpyxl"] == ["522631198001020001", "13900000001", "5200.5", "1000", "0.1",
                                                  "202203"]


def peak_bytes(app, path, divisions, reader: str) -> int:
    tracemalloc.start()
    try:
        assert import_national(app, path, divisions, EXPORTED, batch_size=10, reader=reader).reader == reader
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("kind", "reader"), [("csv", "csv"), ("xlsx", "stream"), ("xlsx", "openpyxl")])
def test_memory_does_not_grow_with_the_files_size(sqlite_app, tmp_path, divisions, kind, reader):
    def export(name: str, households: range):
        return write_export(tmp_path / f"{name}.{kind}", [r for i in households for r in family(i)])

    peak_bytes(sqlite_app, export("warm", range(900_000, 900_010)), divisions, reader)  # modules, policies
    small = peak_bytes(sqlite_app, export("small", range(0, 60)), divisions, reader)  # 180 rows
    large = peak_bytes(sqlite_app, export("large", range(1000, 1240)), divisions, reader)  # 720 rows

    # holding every row (the import before it streamed) grew by about 3.7 KB a row: 540 rows, 2 MB; a
    # workbook's shared-strings table (every distinct text of the file) is read whole by any xlsx reader,
    # but calamine holds it outside Python's heap
    assert large - small < 540 * 3700 / 10, (small, large)
    assert large < small * 1.1, (small, large)


READ_ALL = """
import json, sys
from pathlib import Path
from adapters.importers.national import open_export
sheet = open_export(Path(sys.argv[1]), sys.argv[2])
rows = sum(1 for _ in sheet.rows)
peak = next(int(l.split()[1]) for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM"))
print(json.dumps({"rows": rows, "peak_kb": peak, "reader": sheet.reader}))
"""


def peak_rss_reading(path: Path, reader: str) -> tuple[int, int]:
    """Rows read and the peak resident set (KB) of a process that reads every row of `path` and nothing else:
    what the reader holds outside Python's heap, which tracemalloc does not see, counts here."""
    out = subprocess.run([sys.executable, "-c", READ_ALL, str(path), reader], capture_output=True, text=True,
                         check=True, timeout=300)
    done = json.loads(out.stdout)
    assert done["reader"] == reader
    return done["rows"], done["peak_kb"]


def test_the_streaming_readers_resident_memory_does_not_grow_with_the_files_size(tmp_path):
    def export(name: str, households: int) -> Path:
        return write_export(tmp_path / f"{name}.xlsx", [r for i in range(households) for r in family(i)])

    small, large = export("small", 100), export("large", 2000)  # 300 and 6,000 rows
    rows_small, peak_small = peak_rss_reading(small, "stream")
    rows_large, peak_large = peak_rss_reading(large, "stream")
    _, whole_sheet = peak_rss_reading(large, "calamine")

    assert (rows_small, rows_large) == (300, 6000)
    # the whole-sheet reader holds about 4 KB a row of this export (5,700 rows more: about 23 MB); the
    # streaming reader holds one row, so the larger file costs it no more than allocator noise
    assert peak_large - peak_small < 4 * 1024, (peak_small, peak_large)
    assert whole_sheet - peak_large > 10 * 1024, (peak_large, whole_sheet)


def test_a_file_no_reader_can_open_is_refused_with_each_readers_reason(tmp_path):
    from adapters.importers.national import ExportUnreadable

    path = tmp_path / "not-a-workbook.xlsx"
    path.write_text("这不是工作簿", encoding="utf-8")
    with pytest.raises(ExportUnreadable) as err:
        open_export(path)
    assert "not-a-workbook.xlsx" in str(err.value)
    assert all(f"{reader}:" in str(err.value) for reader in ("stream", "calamine", "openpyxl"))
    assert "另存为 .xlsx" in str(err.value) and "--reader csv" in str(err.value)   # and what to do about it


def test_the_cli_shows_its_progress_on_stderr_and_its_summary_on_stdout(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    path = write_export(tmp_path / "e_20230630.xlsx", [r for i in range(4) for r in family(i)])
    write_divisions(tmp_path / "d.csv", [VILLAGE])
    casecore = Path(sys.executable).with_name("casecore")
    done = subprocess.run([str(casecore), "import", "national", str(path), "--divisions", str(tmp_path / "d.csv"),
                           "--db", str(tmp_path / "s.db")], capture_output=True, text=True, timeout=120, check=True)
    assert "读取行" in done.stderr and "12/12" in done.stderr and "写入户" in done.stderr and "4/4" in done.stderr
    assert "读取行" not in done.stdout and "导入 e_20230630.xlsx" in done.stdout
    assert "读取方式 stream" in done.stdout   # which reader read it, as --json says


def test_a_workbook_too_large_for_calamines_whole_sheet_streams_through_openpyxl(tmp_path, monkeypatch):
    """Without the streaming reader (not installed, or a file it cannot read), a small workbook goes through
    python-calamine and a large one through openpyxl, never calamine's whole sheet."""
    from adapters.importers import national

    def no_stream(path: Path):
        raise ImportError("No module named 'python_calamine_plus'")

    monkeypatch.setitem(national._OPENERS, "stream", no_stream)
    path = write_export(tmp_path / "e.xlsx", [r for i in range(3) for r in family(i)])
    assert open_export(path).reader == "calamine"
    monkeypatch.setattr(national, "CALAMINE_MAX_BYTES", path.stat().st_size - 1)
    sheet = open_export(path)
    assert sheet.reader == "openpyxl" and len(list(sheet.rows)) == 9


def test_a_large_workbook_streams_through_the_streaming_reader(tmp_path, monkeypatch):
    from adapters.importers import national

    path = write_export(tmp_path / "e.xlsx", [r for i in range(3) for r in family(i)])
    monkeypatch.setattr(national, "CALAMINE_MAX_BYTES", 0)
    sheet = open_export(path)
    assert sheet.reader == "stream" and [n for n, _ in sheet.rows] == list(range(4, 13))


def test_an_unknown_reader_is_refused_naming_every_reader_the_import_has(tmp_path):
    from typer.testing import CliRunner

    from adapters.cli import app as cli
    from adapters.importers.national import READERS

    path = write_export(tmp_path / "e.xlsx", [r for i in range(1) for r in family(i)])
    divisions = write_divisions(tmp_path / "d.csv", [VILLAGE])
    done = CliRunner().invoke(cli, ["import", "national", str(path), "--divisions", str(divisions),
                                    "--reader", "excel", "--db", str(tmp_path / "s.db")])
    assert done.exit_code == 2
    assert "无法识别" in done.output and all(r in done.output for r in ("auto", *READERS, "csv"))
    assert not (tmp_path / "s.db").exists()
