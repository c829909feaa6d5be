"""Measure the national import against its readers' own floor.

Generates an export of N rows (three people a household, the national columns, every household's rows
contiguous except a share that is scattered over the file), then, each in its own process so that each
peak resident set is its own:

- the floor of each reader: iterating the sheet's rows and nothing else (python-calamine-plus streaming,
  python-calamine, openpyxl read-only);
- the import's read phase: the rows read, mapped, checked and spilled to the temporary table
  (`--phase read`);
- the whole import (`casecore import national`) into a fresh SQLite store: rows/s, its ratio to the floor
  of the reader it used, the time to the end of its read phase, peak RSS and the temporary table's size on
  disk (the import's TMPDIR is a folder of its own). Its progress goes to stderr every `--every` seconds.

    python benchmarks/bench_import.py --rows 100000                 # export in a temp dir
    python benchmarks/bench_import.py --rows 100000 --keep /tmp/e   # keep (and reuse) the export there
    python benchmarks/bench_import.py --rows 1000000 --skip-store   # floors and read phase only
    python benchmarks/bench_import.py --rows 100000 --keep /tmp/e --only-import --import-reader openpyxl
    python benchmarks/bench_import.py --rows 1000000 --keep /tmp/e --readers stream --no-read-phase
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VILLAGE = ("522631101001", "黎平县", "德凤镇", "高近村")
EXPORTED = date(2023, 6, 30)


def generate(path: Path, rows: int, scattered: float = 0.05, shared_strings: bool = False) -> None:
    """An export of `rows` person rows; `scattered` of the households have their rows spread over the file.
    The workbook is the one `national_writer.write_export` writes (inline text cells), its sheet streamed
    straight to the archive: writing it cell by cell through openpyxl took longer than importing it. With
    `shared_strings` the data cells index a shared-strings table instead (every distinct text once), as
    spreadsheet programs write: the table is what every reader holds whole."""
    import zipfile
    from xml.sax.saxutils import escape

    from openpyxl.utils import get_column_letter

    from adapters.importers.national import COLUMNS
    from adapters.importers.national_writer import household_rows, person, write_export

    def household(i: int) -> dict[str, str]:
        eliminated = i % 3 == 0
        h = {"县": VILLAGE[1], "乡": VILLAGE[2], "村": VILLAGE[3], "户编号": f"5226311010010{i:07d}",
             "户类型": "脱贫户" if i % 2 else "一般农户", "监测对象类别": "脱贫不稳定户" if i % 4 else "",
             "识别监测时间": "202203", "风险是否已消除": "是" if eliminated else "否", "致贫/返贫风险1": "因病",
             "致贫/返贫风险2": "因学" if i % 5 == 0 else "", "人均纯收入（元）": str(6000 + i % 5000),
             "工资性收入": str(12000 + i % 7000), "转移性收入": "2400", "是否危房户": "否", "是否解决安全饮用水": "是",
             "健康帮扶": "家庭医生签约", "就业帮扶": "外出务工" if i % 2 else "", "信息采集人": "采集员",
             "户联系电话": f"139{i:08d}"}
        if eliminated:
            h |= {"风险消除方式": "帮扶消除", "消除监测时间": "202211", "风险消除后家庭人均纯收入": "9000",
                  "风险消除后是否住房损毁": "否", "风险消除后是否饮水设施损毁": "否"}
        return h

    def people(i: int) -> list[dict[str, str]]:
        return [person(3 * i, name=f"户主{i}"), person(3 * i + 1, date(1983, 4, 5), name=f"配偶{i}", relation="配偶"),
                person(3 * i + 2, date(2010, 5, 6), name=f"子女{i}", relation="之子", labour="无劳动力")]

    households = (rows + 2) // 3
    held: list[dict[str, str]] = []  # the scattered households' later rows, written at the end

    def all_rows():
        n = 0
        for i in range(households):
            family = household_rows(household(i), people(i))
            if i % int(1 / scattered) == 0:
                yield family[0]
                held.extend(family[1:])
                n += 1
            else:
                yield from family
                n += len(family)
        yield from held

    template = write_export(path.with_suffix(".template.xlsx"), [], exported_on=EXPORTED, extra_columns=())
    letters = [get_column_letter(i + 1) for i in range(len(COLUMNS))]
    with zipfile.ZipFile(template) as src:
        sheet = src.read("xl/worksheets/sheet1.xml").decode()
        head, _, _ = sheet.partition("</sheetData>")
        # the extent a writer declares (the national system's does): readers take the row total from it
        dimension = f'<dimension ref="A1:{letters[-1]}{rows + 3}"/>'
        head = head.replace("<sheetViews>", dimension + "<sheetViews>", 1) if "<dimension" not in head else head
        strings: dict[str, int] = {}
        sml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
        relationships = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
        parts = {"[Content_Types].xml": ("</Types>", f'<Override PartName="/xl/sharedStrings.xml" '
                                                     f'ContentType="{sml}.sharedStrings+xml"/></Types>'),
                 "xl/_rels/workbook.xml.rels": ("</Relationships>", f'<Relationship Id="rIdShared" Type='
                                                                    f'"{relationships}/sharedStrings" Target='
                                                                    '"sharedStrings.xml"/></Relationships>')}

        def cell(ref: str, text: str) -> str:
            if shared_strings:
                return f'<c r="{ref}" t="s"><v>{strings.setdefault(text, len(strings))}</v></c>'
            return f'<c r="{ref}" t="inlineStr"><is><t>{escape(text)}</t></is></c>'

        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst:
            for item in src.infolist():
                if item.filename != "xl/worksheets/sheet1.xml":
                    data = src.read(item.filename)
                    if shared_strings and item.filename in parts:
                        data = data.decode().replace(*parts[item.filename]).encode()
                    dst.writestr(item, data)
            with dst.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
                out.write(head.encode())
                for n, row in enumerate((r for _, r in zip(range(rows), all_rows(), strict=False)), start=4):
                    cells = "".join(cell(f"{letters[i]}{n}", row[c]) for i, c in enumerate(COLUMNS) if row.get(c))
                    out.write(f'<row r="{n}">{cells}</row>'.encode())
                out.write(b"</sheetData></worksheet>")
            if shared_strings:
                with dst.open("xl/sharedStrings.xml", "w", force_zip64=True) as out:
                    out.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                              + f'uniqueCount="{len(strings)}">'.encode())
                    for text in strings:  # in the order of their index
                        out.write(f"<si><t>{escape(text)}</t></si>".encode())
                    out.write(b"</sst>")
    template.unlink()


def child(args: list[str], env: dict[str, str] | None = None) -> dict:
    """Run this script in a child process (its own peak RSS) and read the JSON it prints; its stderr (the
    progress) passes through."""
    out = subprocess.run([sys.executable, *args], check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                         env={**os.environ, **(env or {})})
    return json.loads(out.stdout)


def floor(path: str, reader: str) -> None:
    """Iterate the sheet's rows with the reader alone; prints rows and peak RSS."""
    start = time.perf_counter()
    n = 0
    if reader == "stream":
        from python_calamine_plus import CalamineWorkbook as Streaming

        for _ in Streaming.from_path(path).stream_sheet_by_index(0):
            n += 1
    elif reader == "calamine":
        from python_calamine import CalamineWorkbook

        wb = CalamineWorkbook.from_path(path)
        for _ in wb.get_sheet_by_index(0).iter_rows():
            n += 1
    else:
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        for _ in wb.worksheets[0].iter_rows(values_only=True):
            n += 1
    print(json.dumps({"rows": n, "seconds": time.perf_counter() - start, "rss": _peak()}))


def read_phase(path: str, reader: str) -> None:
    """The import's read phase alone: rows read, mapped, checked, spilled."""
    from adapters.importers import national
    from adapters.importers.national import Divisions, Report

    divisions = Divisions({(VILLAGE[1], VILLAGE[2], VILLAGE[3]): VILLAGE[0]})
    start = time.perf_counter()
    sheet = national.open_export(Path(path), reader)
    report = Report(file=path)
    n = 0
    with tempfile.TemporaryDirectory() as tmp, national._Spill(Path(tmp) / "rows.db") as spill:
        for number, raw in sheet.rows:
            n += 1
            row = national._read(number, raw, divisions, report)
            if row is not None:
                spill.add(row)
        spill.flush()
        households = spill.households()
        assembled = sum(1 for _ in spill.by_household())
    print(json.dumps({"rows": n, "households": households, "assembled": assembled, "rejected": len(report.rejected),
                      "seconds": time.perf_counter() - start, "rss": _peak(), "reader": sheet.reader}))


def import_phase(path: str, divisions: str, db: str, reader: str = "auto", every: str = "60") -> None:
    """The whole import (what `casecore import national` runs) into a fresh SQLite store; progress on stderr
    every `every` seconds (phase, done/total, rate, resident set now and at its peak, temporary disk)."""
    from adapters.importers.national import Divisions, import_national
    from adapters.store.storage import bootstrap

    app = bootstrap(db)
    start = time.perf_counter()
    seen = {"last": start, "read_done": 0.0, "temp": 0}
    temp = Path(tempfile.gettempdir())

    def progress(phase: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if phase == "store" and not seen["read_done"]:
            seen["read_done"] = now - start
        if now - seen["last"] < float(every) and not (phase == "store" and done == total):
            return
        seen["last"] = now
        seen["temp"] = max(seen["temp"], _disk(temp))
        print(json.dumps({"t": round(now - start), "phase": phase, "done": done, "total": total,
                          "rss_mb": round(_rss() / 2**20), "peak_rss_mb": round(_peak() / 2**20),
                          "temp_mb": round(seen["temp"] / 2**20), "db_mb": round(_disk(Path(db)) / 2**20)}),
              file=sys.stderr, flush=True)

    try:
        report = import_national(app, Path(path), Divisions.load(Path(divisions)), EXPORTED, reader=reader,
                                 progress=progress)
    finally:
        app.close()
    print(json.dumps({"seconds": time.perf_counter() - start, "read_seconds": seen["read_done"], "rss": _peak(),
                      "temp_bytes": seen["temp"], "households": report.households, "reader": report.reader,
                      "people": report.people, "events": report.events, "rejected": len(report.rejected)}))


def _disk(path: Path) -> int:
    """Bytes under `path` (a file, or a folder's files), as the import runs."""
    if path.is_file():
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += (Path(root) / f).stat().st_size
            except OSError:  # removed while walking
                pass
    return total


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _peak() -> int:
    """This process's peak resident set (VmHWM), bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--keep", type=Path, help="folder to keep (and reuse) the generated export in")
    p.add_argument("--skip-store", action="store_true", help="floors and read phase only")
    p.add_argument("--json", action="store_true")
    p.add_argument("--floor", nargs=2, metavar=("FILE", "READER"), help=argparse.SUPPRESS)
    p.add_argument("--phase-read", nargs=2, metavar=("FILE", "READER"), help=argparse.SUPPRESS)
    p.add_argument("--phase-import", nargs="+", metavar="FILE DIVISIONS DB [READER]", help=argparse.SUPPRESS)
    p.add_argument("--import-reader", default="auto",
                   help="the reader of the whole import (auto, stream, calamine, openpyxl)")
    p.add_argument("--only-import", action="store_true", help="the whole import only (no floors)")
    p.add_argument("--readers", default="stream,calamine,openpyxl",
                   help="the readers whose floor and read phase are measured (comma-separated)")
    p.add_argument("--no-read-phase", action="store_true", help="floors without the read phase")
    p.add_argument("--every", type=int, default=60, help="seconds between the whole import's progress lines")
    p.add_argument("--shared-strings", action="store_true",
                   help="text through a shared-strings table (as spreadsheet programs write) instead of inline")
    a = p.parse_args()
    if a.floor:
        return floor(*a.floor)
    if a.phase_read:
        return read_phase(*a.phase_read)
    if a.phase_import:
        return import_phase(*a.phase_import)

    folder = a.keep or Path(tempfile.mkdtemp(prefix="bench-import-"))
    folder.mkdir(parents=True, exist_ok=True)
    export = folder / f"national_{a.rows}{'_shared' if a.shared_strings else ''}.xlsx"
    results: dict[str, object] = {"rows": a.rows, "shared_strings": a.shared_strings}
    if not export.exists():
        start = time.perf_counter()
        generate(export, a.rows, shared_strings=a.shared_strings)
        results["generate_seconds"] = round(time.perf_counter() - start, 1)
    results["file_bytes"] = export.stat().st_size
    me = str(Path(__file__).resolve())
    for reader in () if a.only_import else a.readers.split(","):
        f = child([me, "--floor", str(export), reader])
        results[f"floor_{reader}"] = {"rows_per_s": round(f["rows"] / f["seconds"]), "seconds": round(f["seconds"], 1),
                                      "peak_rss_mb": round(f["rss"] / 2**20)}
        print(json.dumps({f"floor_{reader}": results[f"floor_{reader}"]}), file=sys.stderr, flush=True)
        if a.no_read_phase:
            continue
        r = child([me, "--phase-read", str(export), reader])
        results[f"read_phase_{reader}"] = {"rows_per_s": round(r["rows"] / r["seconds"]),
                                           "seconds": round(r["seconds"], 1), "peak_rss_mb": round(r["rss"] / 2**20),
                                           "households": r["households"], "assembled": r["assembled"],
                                           "rejected": r["rejected"]}
        print(json.dumps({f"read_phase_{reader}": results[f"read_phase_{reader}"]}), file=sys.stderr, flush=True)
    if not a.skip_store:
        from adapters.importers.national_writer import write_divisions

        divisions = write_divisions(folder / "divisions.csv", [VILLAGE])
        db = folder / f"store_{a.rows}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        temp = folder / "tmp"
        temp.mkdir(exist_ok=True)
        r = child([me, "--phase-import", str(export), str(divisions), str(db), a.import_reader, str(a.every)],
                  env={"TMPDIR": str(temp)})
        results["import"] = {"reader": r["reader"], "rows_per_s": round(a.rows / r["seconds"]),
                             "seconds": round(r["seconds"], 1), "read_phase_seconds": round(r["read_seconds"], 1),
                             "peak_rss_mb": round(r["rss"] / 2**20), "temp_disk_mb": round(r["temp_bytes"] / 2**20),
                             "store_mb": round(_disk(db) / 2**20), "households": r["households"],
                             "people": r["people"], "events": r["events"], "rejected": r["rejected"]}
        own_floor = results.get(f"floor_{r['reader']}")
        if isinstance(own_floor, dict):
            results["import"]["floor_ratio"] = round(results["import"]["rows_per_s"] / own_floor["rows_per_s"], 4)
    if a.json:
        print(json.dumps(results, ensure_ascii=False))
    else:
        for k, v in results.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
