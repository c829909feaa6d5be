"""GET /households (every stage, paged, xlsx), /search, /problems/{id} and /divisions/{code}, each within the
caller's reach, on both stores."""

from __future__ import annotations

from datetime import date

import pytest

from tests.builders import COUNTY, cmd, inclusion_path, person, register
from tests.http.support import auth, client_for, post_as_actors, register_other


@pytest.fixture
def directory(db_url, tmp_path):
    with client_for(db_url, tmp_path) as client:
        post_as_actors(client, [register("H1"), *inclusion_path("H1"), register("H2"), register("H3"),
                                register_other("D1"),
                                cmd("raise_problem", date(2023, 4, 1), COUNTY, problem_id="P1", kind="helped_not",
                                    household_id="H1", division_code="522631101001", source="supervision",
                                    detail="纳入后未落实帮扶措施")])
        yield client


def test_households_of_every_stage_are_paged_within_the_reach(directory):
    first = directory.get("/households", params={"limit": 2}, headers=auth("tok-county-1")).json()
    second = directory.get("/households", params={"limit": 2, "offset": 2}, headers=auth("tok-county-1")).json()
    assert first["total"] == 3 and second["total"] == 3
    ids = [r["household_id"] for r in first["rows"] + second["rows"]]
    assert ids == ["H1", "H2", "H3"]
    monitored = directory.get("/households", params={"stage": "monitored"}, headers=auth("tok-county-1")).json()
    assert [r["household_id"] for r in monitored["rows"]] == ["H1"]
    everywhere = directory.get("/households", headers=auth("tok-auditor")).json()
    assert everywhere["total"] == 4


def test_households_download_as_a_workbook(directory):
    r = directory.get("/households", params={"format": "xlsx"}, headers=auth("tok-county-1"))
    assert r.status_code == 200 and r.content[:2] == b"PK"
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")


def test_search_finds_a_household_by_number_within_the_reach_only(directory):
    found = directory.get("/search", params={"q": "H1"}, headers=auth("tok-county-1")).json()
    assert [r["household_id"] for r in found["rows"]] == ["H1"]
    outside = directory.get("/search", params={"q": "D1"}, headers=auth("tok-county-1")).json()
    assert outside["count"] == 0


def test_search_masks_names_for_a_department_not_entitled(directory):
    rows = directory.get("/search", params={"q": "H1"}, headers=auth("tok-department-qdn")).json()["rows"]
    assert rows and rows[0]["head"]["name"].endswith("*")
    entitled = directory.get("/search", params={"q": "H1"}, headers=auth("tok-county-1")).json()["rows"]
    assert "*" not in entitled[0]["head"]["name"] and entitled[0]["head"]["name"]


def test_one_problem_comes_with_its_history_and_is_not_found_outside_the_reach(directory):
    doc = directory.get("/problems/P1", params={"as_of": "2023-12-31"}, headers=auth("tok-county-1")).json()
    assert doc["problem"]["problem_id"] == "P1" and doc["problem"]["kind"] == "helped_not"
    assert [e["type"] for e in doc["history"]] == ["raised"]
    r = directory.get("/problems/P1", headers=auth("tok-village-duyun"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("as_of", ["0001-01-01", "9999-12-31"])
def test_one_problem_as_of_a_date_outside_the_contracts_range_is_one_validation_error(directory, as_of):
    r = directory.get("/problems/P1", params={"as_of": as_of}, headers=auth("tok-county-1"))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error" and "as_of" in r.json()["error"]["message"]


def test_a_division_code_is_named(directory):
    doc = directory.get("/divisions/522631", headers=auth("tok-county-1")).json()
    assert doc == {"code": "522631", "name": "黎平县", "path": "黎平县"}


def test_search_by_part_of_a_name_or_id_number_does_not_spell_out_what_masking_hides(directory):
    """A caller who sees 522631********1234 and 成* must not learn the hidden digits and characters one at a
    time from whether a prefix finds a household; the whole number or name finds it as before."""
    dept = auth("tok-department-qdn")
    full = person(1)["person_id"]
    for part in (full[:10], full[:-1], "成员"):
        assert directory.get("/search", params={"q": part}, headers=dept).json()["count"] == 0, part
    for whole in (full, "成员1"):
        assert "H1" in [r["household_id"] for r in
                        directory.get("/search", params={"q": whole}, headers=dept).json()["rows"]]
    entitled = directory.get("/search", params={"q": full[:10]}, headers=auth("tok-county-1")).json()
    assert "H1" in [r["household_id"] for r in entitled["rows"]]


def test_a_name_that_reads_as_a_formula_stays_text_in_the_households_workbook(db_url, tmp_path):
    from io import BytesIO

    from openpyxl import load_workbook

    members = [{**person(1), "name": "=1+1"}, {**person(2, date(1982, 5, 6), relation="配偶"), "name": "+SUM(A1)"}]
    with client_for(db_url, tmp_path) as client:
        post_as_actors(client, [register("H1", members=members)])
        for token in ("tok-county-1", "tok-department-qdn"):  # names shown, and masked (`=*` is a formula too)
            r = client.get("/households", params={"format": "xlsx"}, headers=auth(token))
            assert r.status_code == 200
            cells = [c for row in load_workbook(BytesIO(r.content)).active.iter_rows() for c in row]
            assert "H1" in [c.value for c in cells]
            assert [c.value for c in cells if c.data_type == "f"] == [], token
            assert any(str(c.value).startswith("'=") for c in cells), token
