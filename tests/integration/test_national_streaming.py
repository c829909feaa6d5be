"""The national import streams: rows are read lazily by the fastest reader that reads the file, a household
whose rows are not contiguous is still assembled whole, and memory does not grow with the file's size."""

from __future__ import annotations

import tracemalloc
from datetime import date

import pytest

from adapters.importers.national import Divisions, import_national, open_export
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
    read = {name: list(open_export(xlsx, name).rows) for name in ("calamine", "openpyxl")}
    read["csv"] = list(open_export(csv).rows)
    assert read["calamine"] == read["openpyxl"] == read["csv"]
    assert [n for n, _ in read["csv"]] == list(range(4, 13))  # header on row 3: data from row 4
    assert open_export(xlsx).reader == "calamine" and open_export(csv).reader == "csv"


def test_a_csv_export_imports_like_the_workbook(app, tmp_path, divisions):
    path = write_export(tmp_path / "e.csv", [r for i in range(2) for r in family(i)])
    report = import_national(app, path, divisions, EXPORTED)
    assert (report.households, report.people) == (2, 6)


def peak_bytes(app, path, divisions) -> int:
    tracemalloc.start()
    try:
        import_national(app, path, divisions, EXPORTED, batch_size=10)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_memory_does_not_grow_with_the_files_size(sqlite_app, tmp_path, divisions, kind):
    def export(name: str, households: range):
        return write_export(tmp_path / f"{name}.{kind}", [r for i in households for r in family(i)])

    peak_bytes(sqlite_app, export("warm", range(900_000, 900_010)), divisions)  # modules, policies
    small = peak_bytes(sqlite_app, export("small", range(0, 60)), divisions)  # 180 rows
    large = peak_bytes(sqlite_app, export("large", range(1000, 1240)), divisions)  # 720 rows

    # holding every row (the import before it streamed) grew by about 3.7 KB a row: 540 rows, 2 MB; a
    # workbook's shared-strings table (every distinct text of the file) is read whole by any xlsx reader,
    # but calamine holds it outside Python's heap
    assert large - small < 540 * 3700 / 10, (small, large)
    assert large < small * 1.1, (small, large)


def test_a_file_no_reader_can_open_is_refused_with_each_readers_reason(tmp_path):
    from adapters.importers.national import ExportUnreadable

    path = tmp_path / "not-a-workbook.xlsx"
    path.write_text("这不是工作簿", encoding="utf-8")
    with pytest.raises(ExportUnreadable) as err:
        open_export(path)
    assert "not-a-workbook.xlsx" in str(err.value) and "calamine" in str(err.value) and "openpyxl" in str(err.value)


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


def test_a_workbook_too_large_for_calamines_whole_sheet_streams_through_openpyxl(tmp_path, monkeypatch):
    from adapters.importers import national

    path = write_export(tmp_path / "e.xlsx", [r for i in range(3) for r in family(i)])
    assert open_export(path).reader == "calamine"
    monkeypatch.setattr(national, "CALAMINE_MAX_BYTES", path.stat().st_size - 1)
    sheet = open_export(path)
    assert sheet.reader == "openpyxl" and len(list(sheet.rows)) == 9
