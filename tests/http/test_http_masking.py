"""Masking over HTTP: one rule for every read — personal data masked unless the token is entitled to it — and
every person-name field masked, in the household state, the timeline, the roster and both ledgers."""

from __future__ import annotations

import json
from datetime import date

import pytest

from tests.builders import COUNTY, cmd, inclusion_path, person, register
from tests.http.support import auth, client_for, post_as_actors

CADRE = {"id": "c-9", "name": "王小明", "unit": "522631101000"}
PARTIES = {"responsible": {"unit": "522631101000", "person": "t-cadre-1", "name": "乡镇干部"},
           "supervisor": {"unit": "522631000000", "person": "c-cadre-1", "name": "县乡村振兴局"}}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("masking")
    with client_for(str(tmp / "db"), tmp) as client:
        post_as_actors(client, [
            register("H1"), *inclusion_path("H1"),
            cmd("assign_cadre", date(2023, 3, 14), household_id="H1", cadre=CADRE),
            cmd("raise_problem", date(2023, 4, 1), COUNTY, problem_id="P1", kind="helped_not", household_id="H1",
                division_code="522631101001", source="supervision", detail="纳入后未落实帮扶措施"),
            cmd("assign_responsibility", date(2023, 4, 2), COUNTY, problem_id="P1", deadline="2023-05-31",
                **PARTIES),
        ])
        yield client


NAMES = ("成员1", "成员2", "王小明", "村干部甲", "乡镇干部", "县乡村振兴局")


def _reads(client, token):
    return {
        "household": client.get("/households/H1", headers=auth(token)).json(),
        "timeline": client.get("/households/H1/timeline", headers=auth(token)).json(),
        "roster": client.get("/roster", headers=auth(token)).json(),
        "ledgers": client.get("/ledgers", params={"as_of": "2023-12-31"}, headers=auth(token)).json(),
    }


@pytest.mark.parametrize("token", ["tok-department-qdn", "tok-inspector-liping"])
def test_no_name_birth_date_or_id_number_reaches_a_caller_not_entitled(served, token):
    for what, doc in _reads(served, token).items():
        text = json.dumps(doc, ensure_ascii=False)
        assert [n for n in NAMES if n in text] == [], what
        assert person(1)["person_id"] not in text and "1980-01-02" not in text, what
    reads = _reads(served, token)
    assert reads["household"]["members"][0]["birth_date"] == "1980"
    assert reads["roster"]["rows"][0]["cadre_name"] == "王**"
    problem = reads["ledgers"]["problems"][0]
    assert (problem["found_by_name"], problem["responsible_name"], problem["supervisor_name"]) == \
        ("县*****", "乡***", "县*****")


def test_an_entitled_caller_reads_every_name_in_clear(served):
    reads = _reads(served, "tok-county-1")
    text = json.dumps(reads, ensure_ascii=False)
    assert [n for n in NAMES if n not in text] == []
    assert reads["household"]["members"][0]["birth_date"] == "1980-01-02"
