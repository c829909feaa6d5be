"""The HTTP service on the real PostgreSQL: commands in, state, timeline, roster and feed out."""

from __future__ import annotations

import pytest

from tests.builders import inclusion_path, register
from tests.http.support import auth, client_for, post_as_actors


@pytest.mark.postgres
def test_the_service_works_the_same_on_postgresql(pg_url, tmp_path):
    with client_for(pg_url, tmp_path) as client:
        results = post_as_actors(client, [register("H1"), *inclusion_path("H1")])
        assert all(r["ok"] for r in results)
        state = client.get("/households/H1", headers=auth("tok-township-1")).json()
        assert state["stage"] == "monitored"
        timeline = client.get("/households/H1/timeline", headers=auth("tok-township-1")).json()["events"]
        assert [e["type"] for e in timeline][-1] == "entered_system" and len(timeline) == len(results)
        roster = client.get("/roster", headers=auth("tok-county-1")).json()
        assert [r["household_id"] for r in roster["rows"]] == ["H1"]
        feed = client.get("/events", params={"limit": 1000}, headers=auth("tok-department-qdn")).json()
        assert len(feed["events"]) == len(results) and feed["next_after"] == feed["events"][-1]["data"]["position"]
