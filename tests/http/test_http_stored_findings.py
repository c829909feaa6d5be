"""Findings kept, not recomputed per request: `casecore inspect --store` keeps a run as of a date; `/findings`
then answers from it — the same findings as the rules run live, by division and rule, paged — and says when it
was computed and which position it saw. New events change nothing until the run is refreshed; a refresh with
nothing new recomputes nothing. On both stores, the CLI in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

from tests.builders import inclusion_path, register
from tests.http.support import auth, client_for, post_as_actors, register_other

AS_OF = "2023-12-31"


def store(db_url: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-c", "from adapters.cli import main; main()", "inspect", "--store",
                           "--as-of", AS_OF, "--db", db_url], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    return done


def findings(client, token: str = "tok-auditor", **params) -> dict:
    r = client.get("/findings", params={"as_of": AS_OF, **params}, headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def test_a_stored_run_answers_as_the_rules_run_live_and_says_when_it_was_computed(db_url, tmp_path):
    with client_for(db_url, tmp_path) as client:
        post_as_actors(client, [register("H1"), *inclusion_path("H1"), register("H2"),
                                *inclusion_path("H2", start=date(2023, 5, 2)), register_other("D1")])
        asked = [{}, {"division": "522631"}, {"rule": "helped_not"}, {"division": "522701"}]
        live = [findings(client, **p) for p in asked]
        assert live[0]["computed_at"] is None and live[0]["count"] > 0

        store(db_url)
        kept = [findings(client, **p) for p in asked]
        for was, now in zip(live, kept, strict=True):
            assert now["computed_at"] is not None and now["casefacts_position"] > 0
            assert now["findings"] == was["findings"] and now["total"] == was["total"] == len(was["findings"])
        # within the caller's reach, as the live answer
        village = findings(client, "tok-village-1")
        assert village["findings"] == [f for f in kept[0]["findings"] if f["division_code"].startswith("522631101001")]

        pages, cursor = [], None
        while True:
            page = findings(client, limit=1, **({"cursor": cursor} if cursor else {}))
            pages += page["findings"]
            assert page["total"] == kept[0]["total"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == kept[0]["findings"]


def test_new_events_show_once_the_run_is_refreshed_and_a_refresh_with_nothing_new_recomputes_nothing(db_url,
                                                                                                     tmp_path):
    with client_for(db_url, tmp_path) as client:
        post_as_actors(client, [register("H1"), *inclusion_path("H1")])
        store(db_url)
        first = findings(client)
        assert {f.get("household_id") for f in first["findings"]} == {"H1"}

        post_as_actors(client, [register("H2"), *inclusion_path("H2")])
        assert findings(client) == first, "the stored run is what is read until it is refreshed"

        assert "已保存" in store(db_url).stderr
        second = findings(client)
        assert {f.get("household_id") for f in second["findings"]} == {"H1", "H2"}
        assert second["computed_at"] > first["computed_at"]
        assert second["casefacts_position"] > first["casefacts_position"]

        assert "未重算" in store(db_url).stderr
        assert findings(client) == second
