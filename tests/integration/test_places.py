"""Places as names: GB/T 2260 down to the county, the division table an import or the demo gives below it."""

from __future__ import annotations

import pytest

from adapters import places
from adapters.storage import bootstrap


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
