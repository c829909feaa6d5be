"""Limits at the HTTP edge: request bodies have a ceiling (413 before they are read), fields have theirs
(validation_error naming the field), listings take dates only in the contract's range, and a household or
problem outside the caller's reach answers exactly as a missing one."""

from __future__ import annotations

from datetime import date

import pytest

from casecore import limits as lim
from tests.builders import cmd, register
from tests.http.support import auth, body, client_for, register_other

LEAD = {"command": "record_lead", "on": "2023-03-02", "source": "department_warning", "risk_types": ["illness"]}


def _without_ids(result: dict, *ids: str) -> dict:
    """A result with the household ids blanked, to compare the answers for two households."""
    text = result["error"]["message"]
    for i in ids:
        text = text.replace(i, "…")
    return {**result, "error": {**result["error"], "message": text}}


@pytest.mark.parametrize("token", ["tok-village-1", "tok-department-qdn", "tok-inspector-liping"])
def test_a_household_outside_the_reach_answers_exactly_as_a_missing_one(tmp_path, token):
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        assert client.post("/commands", json=body([register_other("D1")]),
                           headers=auth("tok-village-duyun")).json()[0]["ok"]
        results = client.post("/commands", headers=auth(token), json=[
            {**LEAD, "household_id": hid, "lead_id": "L1"} for hid in ("D1", "NOPE1")]).json()
    outside, missing = results
    assert outside["error"]["code"] == "not_found"
    assert _without_ids(outside, "D1") == {**_without_ids(missing, "NOPE1"), "line": 1}
    assert "522701" not in outside["error"]["message"]


def test_a_known_key_outside_the_reach_answers_as_a_missing_household_too(tmp_path):
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        mine = body([register_other("D1", date(2023, 3, 1))])[0]
        first = client.post("/commands", headers=auth("tok-village-duyun"),
                            json={**mine, "command_id": "reg-D1"}).json()
        assert first["ok"]
        lead = {**LEAD, "household_id": "D1", "lead_id": "L1", "command_id": "lead-D1"}
        assert client.post("/commands", headers=auth("tok-village-duyun"), json=lead).json()["ok"]
        replayed = client.post("/commands", headers=auth("tok-village-1"), json=lead).json()
    assert replayed["ok"] is False
    assert replayed["error"]["code"] == "not_found"


def test_a_problem_outside_the_reach_answers_exactly_as_a_missing_one(tmp_path):
    raise_problem = {"command": "raise_problem", "problem_id": "P1", "on": "2023-03-02", "kind": "other",
                     "division_code": "522701100001", "source": "self_check", "detail": "自查发现"}
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        assert client.post("/commands", headers=auth("tok-auditor"), json=raise_problem).json()["ok"]
        act = {"command": "record_rectification", "on": "2023-03-03", "action": "整改"}
        outside, missing = client.post("/commands", headers=auth("tok-department-qdn"), json=[
            {**act, "problem_id": "P1"}, {**act, "problem_id": "P404"}]).json()
    assert outside["error"]["code"] == missing["error"]["code"] == "not_found"
    assert outside["error"]["message"].replace("P1", "…") == missing["error"]["message"].replace("P404", "…")


def test_a_body_declared_larger_than_the_ceiling_is_refused_before_it_is_read(tmp_path):
    with client_for(str(tmp_path / "db"), tmp_path, max_body_bytes=4096) as client:
        r = client.post("/commands", headers={**auth("tok-village-1"), "content-type": "application/json"},
                        content=b"[" + b" " * 8000 + b"]")
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "validation_error"
        assert "4096" in r.json()["error"]["message"]
        assert client.get("/households/H1", headers=auth("tok-village-1")).status_code == 404


def test_a_streamed_body_without_a_length_is_cut_off_at_the_ceiling(tmp_path):
    def chunks():
        yield b"["
        for _ in range(100):
            yield b" " * 1000
        yield b"]"

    with client_for(str(tmp_path / "db"), tmp_path, max_body_bytes=4096) as client:
        r = client.post("/commands", headers={**auth("tok-village-1"), "content-type": "application/json"},
                        content=chunks())
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "validation_error"


def test_a_body_under_the_ceiling_goes_in(tmp_path):
    with client_for(str(tmp_path / "db"), tmp_path, max_body_bytes=64 * 1024) as client:
        r = client.post("/commands", json=body([register("H1")]), headers=auth("tok-village-1"))
    assert r.status_code == 200 and r.json()[0]["ok"]


def test_a_note_beyond_its_limit_is_one_commands_validation_error_naming_the_field(tmp_path):
    long_note = cmd("record_lead", date(2023, 3, 2), household_id="H1", lead_id="L1", source="cadre_screening")
    data = {**body([long_note])[0], "note": "很长" * lim.FREE_TEXT_MAX}
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        results = client.post("/commands", json=[*body([register("H1")]), data],
                              headers=auth("tok-village-1")).json()
    assert results[0]["ok"]
    assert results[1]["error"]["code"] == "validation_error"
    assert "note:" in results[1]["error"]["message"]


@pytest.mark.parametrize("path", ["/findings?as_of=0001-01-01", "/findings?as_of=9999-12-31",
                                  "/ledgers?as_of=9999-12-31"])
def test_a_listing_as_of_a_date_outside_the_contract_range_is_a_validation_error(tmp_path, path):
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        r = client.get(path, headers=auth("tok-county-1"))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"
    assert r.json()["error"]["message"].startswith("as_of:")
