"""The HTTP service under test: a tokens file with one token per role (and a few for reach and four-eyes),
a TestClient on a fresh store, and helpers that post commands as a given token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from adapters.http import Settings, create_app
from casecore.commands import Command
from tests.builders import COUNTY, TOWNSHIP, VILLAGE, VILLAGE_2, cmd, person

#: 都匀市 (黔南州), outside 黔东南州 where tests.builders puts its households
OTHER_VILLAGE_CODE = "522701100001"
OTHER_VILLAGE = {"id": "v-duyun-1", "name": "都匀村干部", "role": "village", "unit": OTHER_VILLAGE_CODE}
#: a person holding two posts: county staff stationed in the village (驻村第一书记)
DUAL_AS_VILLAGE = {"id": "p-dual", "name": "第一书记", "role": "village", "unit": VILLAGE["unit"]}
DUAL_AS_COUNTY = {"id": "p-dual", "name": "第一书记", "role": "county", "unit": COUNTY["unit"]}
DEPARTMENT = {"id": "ybj-qdn", "name": "黔东南州医保局", "role": "department", "unit": "黔东南州医保局"}
INSPECTOR = {"id": "dc-liping", "name": "黎平县督查组", "role": "inspector", "unit": "黎平县督查组"}
AUDITOR = {"id": "sj-gz", "name": "省审计厅", "role": "auditor", "unit": "贵州省审计厅"}

TOKENS: dict[str, dict[str, Any]] = {
    "tok-village-1": VILLAGE,
    "tok-village-2": VILLAGE_2,
    "tok-township-1": TOWNSHIP,
    "tok-county-1": COUNTY,
    "tok-village-duyun": OTHER_VILLAGE,
    "tok-dual-village": DUAL_AS_VILLAGE,
    "tok-dual-county": DUAL_AS_COUNTY,
    "tok-department-qdn": {**DEPARTMENT, "scope": "5226"},
    "tok-inspector-liping": {**INSPECTOR, "scope": "522631"},
    "tok-auditor": AUDITOR,
}
BY_ACTOR_ID = {v["id"]: k for k, v in TOKENS.items() if not k.startswith("tok-dual")}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_tokens(path: Path, tokens: dict[str, dict[str, Any]] | None = None) -> Path:
    path.write_text(json.dumps(tokens or TOKENS, ensure_ascii=False), encoding="utf-8")
    return path


@contextmanager
def client_for(db: str, tmp_path: Path, **settings: Any) -> Iterator[TestClient]:
    app = create_app(Settings(db=db, tokens_file=write_tokens(tmp_path / "tokens.json"), **settings))
    with TestClient(app) as client:
        yield client


def body(commands: list[Command]) -> list[dict[str, Any]]:
    return [c.model_dump(mode="json", exclude_none=True) for c in commands]


def post_as_actors(client: TestClient, commands: list[Command]) -> list[dict[str, Any]]:
    """Post each command with the token of its actor (one request a command); the results in order."""
    out = []
    for c in commands:
        r = client.post("/commands", json=c.model_dump(mode="json", exclude_none=True),
                        headers=auth(BY_ACTOR_ID[c.actor.id]))
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


def register_other(hid: str = "D1", on: date = date(2023, 3, 1)) -> Command:
    """A household in 都匀市, registered by its own village cadre."""
    return cmd("register_household", on, OTHER_VILLAGE, household_id=hid, division_code=OTHER_VILLAGE_CODE,
               household_type="general", members=[person(7)])
