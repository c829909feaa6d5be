"""GET /roster, /ledgers, /reports/monthly and /events: each lists only what lies inside the caller's reach."""

from __future__ import annotations

from datetime import date

import pytest

from tests.builders import COUNTY, cmd, inclusion_path, register
from tests.http.support import auth, client_for, post_as_actors, register_other

#: (token, sees 黎平县's H1, sees 都匀市's D1)
REACH = [
    ("tok-village-1", True, False),
    ("tok-township-1", True, False),
    ("tok-county-1", True, False),
    ("tok-village-duyun", False, True),
    ("tok-department-qdn", True, False),
    ("tok-inspector-liping", True, False),
    ("tok-auditor", True, True),
]


def problem(pid: str, hid: str, division: str, actor: dict) -> list:
    return [cmd("raise_problem", date(2023, 4, 1), actor, problem_id=pid, kind="helped_not", household_id=hid,
                division_code=division, source="supervision", detail="纳入后未落实帮扶措施")]


@pytest.fixture(scope="module")
def listed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("listings")
    with client_for(str(tmp / "db"), tmp) as client:
        post_as_actors(client, [register("H1"), *inclusion_path("H1"), register_other("D1"),
                                *problem("P1", "H1", "522631101001", COUNTY)])
        auditor_problem = cmd("raise_problem", date(2023, 4, 2), {"id": "sj-gz", "name": "省审计厅", "role": "auditor",
                                                                  "unit": "贵州省审计厅"},
                              problem_id="P2", kind="other", household_id="D1", division_code="522701100001",
                              source="audit", detail="档案不全")
        r = client.post("/commands", json=auditor_problem.model_dump(mode="json", exclude_none=True),
                        headers=auth("tok-auditor"))
        assert r.json()["ok"], r.json()
        yield client


def pick(items: set, seen: bool) -> set:
    return items if seen else set()


@pytest.mark.parametrize("token,sees_h1,sees_d1", REACH)
def test_each_role_sees_only_its_reach_in_every_listing(listed, token, sees_h1, sees_d1):
    roster = listed.get("/roster", headers=auth(token)).json()
    assert [r["household_id"] for r in roster["rows"]] == (["H1"] if sees_h1 else [])  # D1 is not monitored
    ledgers = listed.get("/ledgers", params={"as_of": "2023-12-31"}, headers=auth(token)).json()
    assert {p["problem_id"] for p in ledgers["problems"]} == pick({"P1"}, sees_h1) | pick({"P2"}, sees_d1)
    report = listed.get("/reports/monthly", params={"month": "2023-03"}, headers=auth(token)).json()
    assert report["total"]["inclusion"] == (1 if sees_h1 else 0)
    findings = listed.get("/findings", params={"as_of": "2023-12-31"}, headers=auth(token)).json()["findings"]
    with_findings = {f["household_id"] for f in findings if f.get("household_id")}
    assert ("H1" in with_findings, "D1" in with_findings and not sees_d1) == (sees_h1, False)
    assert ("helped_not" in {f["rule"] for f in findings}) == sees_h1  # monitored since March, no measure
    events = listed.get("/events", params={"limit": 1000}, headers=auth(token)).json()
    subjects = {e["subject"] for e in events["events"]}
    expected = pick({"household/H1", "problem/P1"}, sees_h1) | pick({"household/D1", "problem/P2"}, sees_d1)
    assert subjects == expected


def test_asking_for_an_area_outside_the_reach_is_refused(listed):
    for path, params in (("/roster", {}), ("/ledgers", {}), ("/reports/monthly", {"month": "2023-03"}),
                         ("/findings", {})):
        r = listed.get(path, params={"division": "5227", **params}, headers=auth("tok-county-1"))
        assert r.status_code == 403 and r.json()["error"]["code"] == "not_authorised"
    narrower = listed.get("/roster", params={"division": "522631101"}, headers=auth("tok-county-1")).json()
    assert narrower["division"] == "522631101" and narrower["count"] == 1


def test_the_roster_row_carries_exact_money_and_measures(listed):
    row = listed.get("/roster", headers=auth("tok-county-1")).json()["rows"][0]
    assert row["per_capita_income"] == "5000.00" and row["category"] == "marginal" and row["measures"] == []


def test_the_event_feed_resumes_after_next_after_missing_nothing_and_repeating_nothing(listed):
    for token in ("tok-auditor", "tok-village-duyun"):
        everything = listed.get("/events", params={"limit": 1000}, headers=auth(token)).json()["events"]
        seen, after = [], 0
        while True:
            page = listed.get("/events", params={"after": after, "limit": 3}, headers=auth(token)).json()
            seen.extend(page["events"])
            if page["next_after"] == after:
                break
            after = page["next_after"]
        assert [e["id"] for e in seen] == [e["id"] for e in everything]
        positions = [e["data"]["position"] for e in seen]
        assert positions == sorted(set(positions))


def test_the_event_feed_masks_personal_data_for_callers_not_entitled(listed):
    def registered(token):
        events = listed.get("/events", params={"limit": 1}, headers=auth(token)).json()["events"]
        return events[0]["data"]["members"][0]

    assert "*" not in registered("tok-county-1")["person_id"]
    assert "********" in registered("tok-department-qdn")["person_id"]


@pytest.mark.parametrize("path,params", [("/reports/monthly", {"month": "2023-13"}), ("/reports/monthly", {}),
                                         ("/roster", {"division": "52x"}), ("/events", {"after": -1}),
                                         ("/events", {"limit": 0}), ("/ledgers", {"as_of": "yesterday"}),
                                         ("/findings", {"rule": "no_such_rule"})])
def test_malformed_parameters_are_refused_with_the_contract_shape(listed, path, params):
    r = listed.get(path, params=params, headers=auth("tok-auditor"))
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
