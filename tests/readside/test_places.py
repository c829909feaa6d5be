"""Places as names: GB/T 2260 down to the county, the division table an import or the demo gives below it (kept
in the store, so every later command and workbook names them), codes nobody named left as codes."""

from __future__ import annotations

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.importers.national_writer import household_rows, person, write_divisions, write_export
from adapters.readside import places
from adapters.readside.places import Places
from adapters.store.storage import bootstrap
from tests.e2e.reading import readable
from tests.workbooks import table


@pytest.fixture(autouse=True)
def forget_names():
    saved = dict(places._names)
    places._names.clear()
    yield
    places._names.clear()
    places._names.update(saved)


def test_a_county_code_is_named_from_the_national_division_codes():
    assert places.place_name("522631") == "黎平县"
    assert places.place_name("522631000000") == "黎平县"
    assert places.place_name("52") == "贵州省"
    assert places.place_name("5226") == "黔东南苗族侗族自治州"


def test_a_township_or_village_nobody_named_stays_its_code_and_its_path_names_the_county():
    assert places.place_name("522631101") == "522631101"
    assert places.place_path("522631101001") == "黎平县 (522631101001)"


def test_names_stored_by_one_process_are_read_by_the_next_on_the_same_store(db_url):
    table = places.names_of_table([("522631101001", "新坡镇", "高岩村"), ("522631101201", "新坡镇", "龙塘村")])
    writer = bootstrap(db_url)
    try:
        assert places.remember(writer, table) == 3
    finally:
        writer.close()
    places._names.clear()
    reader = bootstrap(db_url)
    try:
        assert places.load(reader) == 3
    finally:
        reader.close()
    assert places.place_name("522631101") == "新坡镇"
    assert places.place_name("522631101000") == "新坡镇"
    assert places.place_name("522631101201") == "龙塘村"
    assert places.place_path("522631101001") == "黎平县新坡镇高岩村"
    assert places.place_path("522631101") == "黎平县新坡镇"


def test_a_name_given_again_replaces_the_stored_one(db_url):
    app = bootstrap(db_url)
    try:
        places.remember(app, {"522631101001": "高岩村"})
        places.remember(app, {"522631101001": "高岩社区"})
        places._names.clear()
        places.load(app)
    finally:
        app.close()
    assert places.place_name("522631101001") == "高岩社区"


def test_a_store_that_never_held_names_loads_none(db_url):
    app = bootstrap(db_url)
    try:
        assert places.load(app) == 0
    finally:
        app.close()


def test_counties_are_named_from_the_national_division_codes_and_unknown_codes_stay_codes():
    places = Places()
    assert places.county("522631101001") == "黎平县"
    assert places.area("522631", []) == "黎平县"
    assert places.area(None, ["522631101001", "522631102201"]) == "黎平县"
    assert places.area(None, ["522631101001", "522632101201"]) == ""  # two counties: no one county to name
    assert places.township("522631101001") == "522631101"  # nobody named it
    assert places.unit("522631000000") == "黎平县" and places.unit("县医保局") == "县医保局"


def test_the_national_import_names_townships_and_villages_for_the_workbooks(db_url, tmp_path):
    base = {"县": "黎平县", "乡": "德凤镇", "村": "高近村", "户类型": "脱贫户", "监测对象类别": "脱贫不稳定户",
            "识别监测时间": "202203", "致贫/返贫风险1": "因病", "人均纯收入（元）": "5000", "风险是否已消除": "否"}
    export = write_export(tmp_path / "监测对象信息_20220630.xlsx",
                          household_rows({**base, "户编号": "N1"}, [person(1)]))
    divisions = write_divisions(tmp_path / "区划.csv", [("522631101001", "黎平县", "德凤镇", "高近村")])
    runner = CliRunner()
    result = runner.invoke(cli, ["import", "national", str(export), "--divisions", str(divisions),
                                 "--exported-on", "2022-06-30", "--db", db_url])
    assert result.exit_code == 0, result.output
    out = tmp_path / "findings.xlsx"
    result = runner.invoke(cli, ["inspect", "--as-of", "2022-12-31", "--xlsx", str(out), "--db", db_url])
    assert result.exit_code == 0, result.output
    rows = table(load_workbook(out)["问题清单"])
    assert rows and {(r["乡镇"], r["村"]) for r in rows} == {("德凤镇", "高近村")}
    assert load_workbook(out)["问题清单"]["A1"].value.startswith("黎平县 督查发现问题清单（截至2022年12月31日）")
    app = bootstrap(db_url)
    try:
        assert Places.of_app(app).village("522631101001") == "高近村"
    finally:
        app.close()


def test_a_place_name_with_markup_in_it_is_shown_as_written_in_the_roster(db_url):
    from tests.builders import inclusion_path, register, run

    app = bootstrap(db_url)
    try:
        run(app, [register("H1"), *inclusion_path("H1")])
        places.remember(app, {"522631101": "[/b]新坡镇", "522631101001": "高岩[red]村"})
    finally:
        app.close()
    places._names.clear()
    out = CliRunner().invoke(cli, ["roster", "--db", db_url], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    shown = readable(out.output)  # at the runner's width the place column folds
    assert "[/b]新坡镇" in shown and "高岩[red]村" in shown


def test_a_place_name_with_markup_in_it_is_shown_as_written_in_the_inspectors_title(db_url):
    from tests.builders import inclusion_path, register, run

    app = bootstrap(db_url)
    try:
        run(app, [register("H1"), *inclusion_path("H1")])
        places.remember(app, {"522631101001": "高岩[/b]村"})
    finally:
        app.close()
    places._names.clear()
    out = CliRunner().invoke(cli, ["inspect", "--db", db_url, "--division", "522631101001",
                                   "--as-of", "2023-12-31"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "高岩[/b]村" in out.output
