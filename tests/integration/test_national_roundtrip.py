"""The round trip: an export of the national columns imported and written back (national_writer) loses no
field — every column of shared/NATIONAL_EXPORT.md, on every person's row."""

from __future__ import annotations

from datetime import date

import pytest
from openpyxl import load_workbook

from adapters.importers.national import COLUMNS, Divisions, import_national, open_export
from adapters.importers.national_writer import export_store, household_rows, person, write_divisions, write_export

VILLAGES = [("522631101001", "黎平县", "德凤镇", "高近村"), ("522631102003", "黎平县", "高屯镇", "八舟村")]
EXPORTED = date(2023, 6, 30)
#: the national system's export (it has no 帮扶责任人 column)
NATIONAL = [c for c in COLUMNS if c != "帮扶责任人"]


def every_column(hid: str, village: tuple[str, str, str, str], eliminated: bool) -> dict[str, str]:
    """A household with a value in every household column of the export."""
    _, county, township, village_name = village
    h = {"县": county, "乡": township, "村": village_name, "户编号": hid, "户类型": "脱贫户",
         "监测对象类别": "边缘易致贫户", "整户无劳动能力兜底保障户": "否", "致贫/返贫风险1": "因病",
         "致贫/返贫风险2": "因学", "致贫/返贫风险3": "因务工就业不稳", "致贫/返贫风险4": "缺劳动力",
         "致贫/返贫风险5": "其他", "识别监测时间": "202203", "风险是否已消除": "否", "风险消除方式": "",
         "消除监测时间": "", "人均纯收入（元）": "7200.50", "工资性收入": "18000", "生产经营性收入": "3500",
         "财产性收入": "120", "转移性收入": "2400", "生产经营性支出": "1200", "合规自付支出": "800", "理赔收入": "300",
         "是否危房户": "否", "是否解决安全饮用水": "是", "是否义务教育阶段适龄儿童少年失学辍学": "否",
         "是否有家庭成员未参加城乡居民（职工）基本医疗保险": "否", "是否参加大病保险": "是",
         "享受低保政策情况": "农村低保", "享受特困供养政策情况": "不享受",
         "实施开发式帮扶措施情况": "是", "信息采集人": "杨采集", "信息采集人联系电话": "13800000001",
         "户联系电话": "13900000002"}
    h |= {column: f"{column}措施" for column in ("产业帮扶", "就业帮扶", "金融帮扶", "公益岗位帮扶", "健康帮扶",
                                                "义务教育保障", "教育帮扶", "综合保障", "住房安全保障",
                                                "饮水安全保障", "社会帮扶", "搬迁", "生产生活条件改善",
                                                "基础设施建设")}
    h["产业帮扶"] = "种茶,养牛"
    if eliminated:
        h |= {"风险是否已消除": "是", "风险消除方式": "帮扶消除", "消除监测时间": "202211",
              "风险消除后是否义务教育阶段适龄儿童少年失学辍学": "否", "风险消除后是否住房损毁": "否",
              "风险消除后是否有家庭成员未参加城乡居民（职工）基本医疗保险": "否", "风险消除后是否饮水设施损毁": "否",
              "风险消除后工资性收入": "20000", "风险消除后财产性收入": "100", "风险消除后转移性收入": "2000",
              "风险消除后生产经营性收入": "4000", "风险消除后生产经营性支出": "1000", "风险消除后家庭纯收入": "25100",
              "风险消除后家庭人均纯收入": "8366.67", "风险消除后理赔收入": "0", "风险消除后合规自付支出": "500"}
    return h


def people(seed: int) -> list[dict[str, str]]:
    """Three people with a value in every person column (a disability card's 20-character number too)."""
    head = person(seed, name="张大山", 民族="侗族", 健康状况="长期慢性病", 劳动技能="技能劳动力",
                  在校生状况="非在校生", 是否参加城镇职工基本医疗保险="否")
    spouse = person(seed + 1, date(1983, 4, 5), name="吴小花", relation="配偶", 健康状况="残疾",
                    劳动技能="弱劳动力或半劳动力", 证件类型="残疾人证", 在校生状况="非在校生")
    spouse["证件号码"] += "62"
    child = person(seed + 2, date(2012, 9, 1), name="张小石", relation="之子", 劳动技能="无劳动力",
                   在校生状况="义务教育", 义务教育阶段未上学原因="")
    return [head, spouse, child]


#: the workbook readers the import chooses between (auto: the streaming one)
READERS = pytest.mark.parametrize("reader", ["stream", "openpyxl"])


@READERS
def test_an_export_imported_and_written_back_loses_no_field(app, tmp_path, reader):
    rows = [*household_rows(every_column("HH1", VILLAGES[0], eliminated=False), people(1)),
            *household_rows(every_column("HH2", VILLAGES[1], eliminated=True), people(11))]
    original = write_export(tmp_path / "export.xlsx", rows, columns=NATIONAL, extra_columns=())
    divisions = Divisions.load(write_divisions(tmp_path / "divisions.csv", VILLAGES))
    report = import_national(app, original, divisions, EXPORTED, reader=reader)
    assert report.rejected == [] and report.people == 6 and report.reader == reader

    back = export_store(app, tmp_path / "back.xlsx", ["HH1", "HH2"], divisions, columns=NATIONAL)

    def read(path):
        return {(r["户编号"], r["证件号码"]): r for _, r in open_export(path, reader).rows}

    before, after = read(original), read(back)
    assert sorted(after) == sorted(before)
    empty_allowed = ("风险消除方式", "消除监测时间", "义务教育阶段未上学原因")  # HH1 is not eliminated
    assert all(v for r in before.values() for c, v in r.items()
               if c not in empty_allowed and not c.startswith("风险消除后")), "every column has a value"
    lost = {(key, c): (v, after[key].get(c)) for key, r in before.items() for c, v in r.items()
            if after[key].get(c) != v}
    assert lost == {}
    assert [c.value for c in load_workbook(back, read_only=True).worksheets[0][3]] == NATIONAL


@READERS
def test_a_kept_cell_with_a_line_break_goes_in_and_comes_back_as_written(app, tmp_path, reader):
    """A column no other fact holds is kept as written: free text, so a line break in it does not reject the
    person's row (a tab or a line break is what a cell typed in a spreadsheet holds)."""
    family = people(21)
    family[0]["民族"] = "侗族\n(户籍登记为苗族)"
    rows = household_rows(every_column("HH1", VILLAGES[0], eliminated=False), family)
    original = write_export(tmp_path / "export.xlsx", rows, columns=NATIONAL, extra_columns=())
    divisions = Divisions.load(write_divisions(tmp_path / "divisions.csv", VILLAGES))
    report = import_national(app, original, divisions, EXPORTED, reader=reader)
    assert report.rejected == [] and report.people == 3
    back = export_store(app, tmp_path / "back.xlsx", ["HH1"], divisions, columns=NATIONAL)
    kept = {r["证件号码"]: r["民族"] for _, r in open_export(back, reader).rows}
    assert kept[family[0]["证件号码"]] == "侗族\n(户籍登记为苗族)"
