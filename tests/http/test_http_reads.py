"""GET /households/{id} and its timeline: contract state, reach per role, masking, the timeline's rows."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from adapters.http import Settings, TokenFileError, create_app
from tests.builders import inclusion_path, register
from tests.http.support import TOKENS, auth, body, client_for, post_as_actors, register_other

#: who sees a household in 黎平县 (522631…) and one in 都匀市 (522701…)
REACH = [
    ("tok-village-1", True, False),
    ("tok-township-1", True, False),
    ("tok-county-1", True, False),
    ("tok-village-duyun", False, True),
    ("tok-department-qdn", True, False),
    ("tok-inspector-liping", True, False),
    ("tok-auditor", True, True),
]


@pytest.fixture
def two_areas(tmp_path):
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        post_as_actors(client, [register("H1"), *inclusion_path("H1"), register_other("D1")])
        yield client


@pytest.mark.parametrize("token,sees_h1,sees_d1", REACH)
def test_each_role_reads_only_households_inside_its_reach(two_areas, token, sees_h1, sees_d1):
    for hid, sees in (("H1", sees_h1), ("D1", sees_d1)):
        state = two_areas.get(f"/households/{hid}", headers=auth(token))
        timeline = two_areas.get(f"/households/{hid}/timeline", headers=auth(token))
        assert (state.status_code, timeline.status_code) == ((200, 200) if sees else (404, 404)), token
        if not sees:
            assert state.json()["error"]["code"] == "not_found"


def test_a_household_outside_reach_looks_the_same_as_one_that_does_not_exist(two_areas):
    outside = two_areas.get("/households/D1", headers=auth("tok-village-1")).json()
    missing = two_areas.get("/households/NOBODY", headers=auth("tok-village-1")).json()
    assert outside["error"]["code"] == missing["error"]["code"] == "not_found"
    assert outside["error"]["message"].replace("D1", "X") == missing["error"]["message"].replace("NOBODY", "X")


def test_household_state_is_the_contracts(two_areas):
    state = two_areas.get("/households/H1", headers=auth("tok-county-1")).json()
    assert state["stage"] == "monitored" and state["stage_label"] == "监测中"
    assert state["category"] == "marginal" and state["risk_types"] == ["illness"]
    assert state["open_procedure"] is None and state["procedure_step"] is None
    assert state["division_code"] == "522631101001" and state["household_type"] == "general"
    assert [m["person_id"] for m in state["members"]] == [m.person_id for m in register("H1").members]
    assert state["income_assessments"][0]["per_capita_income"] == "5000.00"  # money stays exact


def test_personal_data_is_masked_for_callers_not_entitled(two_areas):
    full = two_areas.get("/households/H1", headers=auth("tok-county-1")).json()
    masked = two_areas.get("/households/H1", headers=auth("tok-department-qdn")).json()
    real = full["members"][0]["person_id"]
    assert masked["members"][0]["person_id"] == real[:6] + "********" + real[-4:]
    assert masked["members"][0]["name"] == "成**" and full["members"][0]["name"] == "成员1"
    timeline = two_areas.get("/households/H1/timeline", headers=auth("tok-inspector-liping")).json()
    registered = timeline["events"][0]["payload"]
    assert real not in json.dumps(registered) and registered["members"][0]["person_id"].startswith("522631****")


def test_the_timeline_lists_every_event_with_dates_actor_and_chinese_labels(two_areas):
    timeline = two_areas.get("/households/H1/timeline", headers=auth("tok-village-1")).json()
    events = timeline["events"]
    steps = [register("H1"), *inclusion_path("H1")]
    assert [e["version"] for e in events] == list(range(1, len(steps) + 1))
    assert [e["on"] for e in events] == [s.on.isoformat() for s in steps]
    assert [e["actor"]["id"] for e in events] == [s.actor.id for s in steps]
    assert events[0]["label"] == "建档" and events[-1]["type"] == "entered_system"
    assert events[-1]["stage"] == "monitored" and events[-2]["stage"] == "in_inclusion"
    positions = [e["position"] for e in events]
    assert positions == sorted(positions)
    recorded = [datetime.fromisoformat(e["recorded_at"]) for e in events]
    assert all(t.utcoffset() is not None and t.utcoffset().total_seconds() == 0 for t in recorded)
    income = next(e for e in events if e["type"] == "income_assessed")
    assert income["payload"]["net_income"] == "10000" and income["label"] == "收入核算"


def test_the_timeline_shows_commands_applied_after_the_first_read(two_areas):
    before = two_areas.get("/households/D1/timeline", headers=auth("tok-auditor")).json()["events"]
    post_as_actors(two_areas, [register_other("D2")])
    lead = {"command": "record_lead", "on": "2023-03-05", "household_id": "D1", "lead_id": "D1-L1",
            "source": "self_declaration", "risk_types": ["illness"]}
    assert two_areas.post("/commands", json=lead, headers=auth("tok-village-duyun")).json()["ok"]
    after = two_areas.get("/households/D1/timeline", headers=auth("tok-auditor")).json()["events"]
    assert [e["type"] for e in after] == [e["type"] for e in before] + ["lead_recorded"]


@pytest.mark.parametrize(
    "entry,complaint",
    [
        ({"id": "d", "role": "department", "unit": "某局"}, "scope"),
        ({"id": "v", "role": "village", "unit": "522631101001", "scope": "5226"}, "超出"),
        ({"id": "v", "role": "mayor", "unit": "522631101001"}, "role"),
    ],
)
def test_a_tokens_file_that_would_give_unclear_reach_is_refused_at_start(tmp_path, entry, complaint):
    path = tmp_path / "tokens.json"
    path.write_text(json.dumps({"a-long-token": entry}), encoding="utf-8")
    with pytest.raises(TokenFileError, match=complaint):
        create_app(Settings(db=str(tmp_path / "db"), tokens_file=path))


def test_tokens_may_be_listed_by_their_sha256_digest(tmp_path):
    import hashlib

    path = tmp_path / "tokens.json"
    digest = hashlib.sha256(b"the-real-secret").hexdigest()
    path.write_text(json.dumps({f"sha256:{digest}": TOKENS["tok-village-1"]}), encoding="utf-8")
    from fastapi.testclient import TestClient

    with TestClient(create_app(Settings(db=str(tmp_path / "db"), tokens_file=path))) as client:
        assert client.post("/commands", json=body([register()])[0], headers=auth("the-real-secret")).json()["ok"]
        assert client.get("/households/H1", headers=auth(f"sha256:{digest}")).status_code == 401


def test_the_service_will_not_start_without_tokens(tmp_path):
    with pytest.raises(TokenFileError, match="令牌文件"):
        create_app(Settings(db=str(tmp_path / "db")))
