"""POST /commands: the contract's results, the token's actor, the token's reach, four-eyes."""

from __future__ import annotations

from datetime import date

import orjson
import pytest
from typer.testing import CliRunner

from adapters.cli import app as cli
from tests.builders import VILLAGE, VILLAGE_2, cmd, inclusion_path, register
from tests.http.support import (
    DUAL_AS_COUNTY,
    DUAL_AS_VILLAGE,
    OTHER_VILLAGE_CODE,
    auth,
    body,
    client_for,
    post_as_actors,
    register_other,
)


def village_history() -> list[dict]:
    """Commands of one village cadre: a good start, a refusal of each kind a village meets, and more."""
    steps = body([register(), *inclusion_path()[:5]])  # lead … open publicity on 2023-03-05
    early_close = body([cmd("close_publicity", "2023-03-07", household_id="H1")])
    unknown = body([cmd("sign_application", "2023-03-07", household_id="NOBODY")])
    review = body([cmd("review_township", "2023-03-08", VILLAGE, household_id="H1", decision="pass")])
    malformed = [{"command": "record_lead", "on": "2023-03-07", "actor": VILLAGE, "household_id": "H1"}]
    return steps + early_close + unknown + review + malformed + body([cmd("close_publicity", "2023-03-10",
                                                                          household_id="H1")])


def test_commands_over_http_give_the_same_results_as_the_command_line(tmp_path):
    history = village_history()
    jsonl = tmp_path / "cmds.jsonl"
    jsonl.write_bytes(b"\n".join(orjson.dumps(c) for c in history) + b"\n")
    cli_run = CliRunner().invoke(cli, ["apply", str(jsonl), "--db", str(tmp_path / "cli.db"), "--json"])
    assert cli_run.exit_code == 0, cli_run.output
    from_cli = [orjson.loads(line) for line in cli_run.stdout.splitlines() if line.startswith("{")]

    with client_for(str(tmp_path / "http.db"), tmp_path) as client:
        r = client.post("/commands", json=history, headers=auth("tok-village-1"))
    assert r.status_code == 200
    assert r.json() == from_cli
    codes = [x["error"]["code"] for x in from_cli if not x["ok"]]
    assert codes == ["policy_violation", "not_found", "not_authorised", "validation_error"]


def test_one_command_gives_one_result_object(tmp_path):
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        r = client.post("/commands", json=body([register()])[0], headers=auth("tok-village-1"))
        again = client.post("/commands", json=dict(body([register()])[0], command_id="reg-H1"),
                            headers=auth("tok-village-1"))
    assert r.json() == {"line": 1, "ok": True, "events": ["registered"]}
    assert again.json()["error"]["code"] == "invalid_transition"


def test_a_command_whose_actor_is_not_the_tokens_is_refused_and_the_others_go_in(tmp_path):
    other_cadre = dict(body([register("H2")])[0], actor=VILLAGE_2)
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        r = client.post("/commands", json=[body([register("H1")])[0], other_cadre, body([register("H3")])[0]],
                        headers=auth("tok-village-1"))
        results = r.json()
        assert [x["ok"] for x in results] == [True, False, True]
        assert results[1]["error"]["code"] == "not_authorised"
        assert "令牌" in results[1]["error"]["message"]
        assert client.get("/households/H2", headers=auth("tok-village-1")).status_code == 404
        # the same command with the right token goes in: only the pairing was wrong
        assert client.post("/commands", json=other_cadre, headers=auth("tok-village-2")).json()["ok"] is True


def test_a_command_that_names_the_actor_by_id_only_with_another_role_is_refused(tmp_path):
    as_county = dict(body([register()])[0], actor={**VILLAGE, "role": "county"})
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        r = client.post("/commands", json=as_county, headers=auth("tok-village-1"))
    assert r.json()["error"]["code"] == "not_authorised"


def test_a_command_without_actor_acts_as_the_tokens_actor(tmp_path):
    command = body([register()])[0]
    del command["actor"]
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        assert client.post("/commands", json=command, headers=auth("tok-village-1")).json()["ok"] is True
        timeline = client.get("/households/H1/timeline", headers=auth("tok-village-1")).json()
    assert timeline["events"][0]["actor"]["id"] == "v-cadre-1"


@pytest.mark.parametrize("headers", [{}, auth("no-such-token"), {"Authorization": "Basic dXNlcjpwYXNz"}])
@pytest.mark.parametrize("method,path", [("post", "/commands"), ("get", "/households/H1"),
                                         ("get", "/households/H1/timeline")])
def test_every_endpoint_needs_a_known_token(tmp_path, headers, method, path):
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        r = client.request(method, path, headers=headers, json=body([register()])[0] if method == "post" else None)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "not_authorised"
        assert r.headers["www-authenticate"] == "Bearer"
        assert client.get("/households/H1", headers=auth("tok-village-1")).status_code == 404  # nothing went in


def test_a_body_that_is_not_a_command_or_a_list_is_refused_with_the_contract_shape(tmp_path):
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        not_json = client.post("/commands", content=b"{not json", headers=auth("tok-village-1"))
        scalar = client.post("/commands", json=42, headers=auth("tok-village-1"))
        many = client.post("/commands", json=[{}] * 3, headers=auth("tok-village-1"))
    assert not_json.status_code == 422 and not_json.json()["error"]["code"] == "validation_error"
    assert scalar.status_code == 422 and scalar.json()["ok"] is False
    assert [x["error"]["code"] for x in many.json()] == ["validation_error"] * 3


def test_too_many_commands_in_one_request_are_refused_before_any_goes_in(tmp_path):
    with client_for(str(tmp_path / "db"), tmp_path, max_commands=2) as client:
        r = client.post("/commands", json=body([register("A"), register("B"), register("C")]),
                        headers=auth("tok-village-1"))
        assert r.status_code == 413
        assert client.get("/households/A", headers=auth("tok-village-1")).status_code == 404


def test_four_eyes_hold_over_http_the_verifier_cannot_approve_with_another_post(tmp_path):
    hid = "H1"
    steps = [register(hid), *inclusion_path(hid)]
    verify = next(i for i, s in enumerate(steps) if s.command == "verify_lead")
    approve = next(i for i, s in enumerate(steps) if s.command == "approve_county")
    steps[verify] = cmd("verify_lead", steps[verify].on, DUAL_AS_VILLAGE, household_id=hid, lead_id=f"{hid}-L1",
                        finding="meets")
    as_dual = cmd("approve_county", steps[approve].on, DUAL_AS_COUNTY, household_id=hid, decision="approve",
                  category="marginal", risk_types=["illness"])
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        before = [s for s in steps[:approve]]
        for s, result in zip(before, post_as_actors_dual(client, before), strict=True):
            assert result["ok"], (s.command, result)
        refused = client.post("/commands", json=body([as_dual])[0], headers=auth("tok-dual-county")).json()
        assert refused["error"]["code"] == "not_authorised"
        assert "四眼" in refused["error"]["message"]
        assert client.get(f"/households/{hid}", headers=auth("tok-county-1")).json()["procedure_step"] != "approved"
        # another county cadre may approve
        assert post_as_actors(client, steps[approve:]) == [
            {"line": 1, "ok": True, "events": ["county_decided"]},
            {"line": 1, "ok": True, "events": ["entered_system"]},
        ]
        assert client.get(f"/households/{hid}", headers=auth("tok-county-1")).json()["stage"] == "monitored"


def post_as_actors_dual(client, commands):
    out = []
    for c in commands:
        token = "tok-dual-village" if c.actor.id == "p-dual" else None
        out.extend(post_as_actors(client, [c]) if token is None else
                   [client.post("/commands", json=body([c])[0], headers=auth(token)).json()])
    return out


@pytest.mark.parametrize(
    "token,own_area_ok,other_area_ok",
    [
        ("tok-village-1", True, False),
        ("tok-township-1", True, False),
        ("tok-county-1", True, False),
        ("tok-village-duyun", False, True),
        ("tok-department-qdn", True, False),   # scope 5226 (黔东南州) holds 522631…, not 522701…
        ("tok-inspector-liping", False, False),  # may not record leads at all (role), whatever the area
        ("tok-auditor", False, False),
    ],
)
def test_each_role_acts_only_inside_its_reach(tmp_path, token, own_area_ok, other_area_ok):
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        assert client.post("/commands", json=body([register("H1")]), headers=auth("tok-village-1")).json()[0]["ok"]
        assert client.post("/commands", json=body([register_other("D1")]),
                           headers=auth("tok-village-duyun")).json()[0]["ok"]
        results = client.post("/commands", headers=auth(token), json=[
            {"command": "record_lead", "on": "2023-03-02", "household_id": hid, "lead_id": f"{hid}-{token}",
             "source": "department_warning", "risk_types": ["illness"], "detail": "住院自付费用高"}
            for hid in ("H1", "D1")
        ]).json()
    assert [r["ok"] for r in results] == [own_area_ok, other_area_ok]
    # a household outside the token's reach answers as a missing one (not_found); a role that may not act,
    # not_authorised
    assert {r["error"]["code"] for r in results if not r["ok"]} <= {"not_authorised", "not_found"}


def test_a_department_cannot_register_a_household_outside_its_scope(tmp_path):
    department_registers = {**body([register_other("D9", date(2023, 3, 1))])[0]}
    del department_registers["actor"]
    with client_for(str(tmp_path / "db"), tmp_path) as client:
        r = client.post("/commands", json=department_registers, headers=auth("tok-department-qdn")).json()
    assert r["error"]["code"] == "not_authorised"
    assert OTHER_VILLAGE_CODE in r["error"]["message"]
