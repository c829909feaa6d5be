"""GET /roster pages: `limit` rows at a time, in the roster's order, each page saying the total and the
cursor of the next; walking the pages gives every row of the unpaged roster once, on both stores."""

from __future__ import annotations

from datetime import date, timedelta

from tests.builders import inclusion_path, register
from tests.http.support import auth, client_for, post_as_actors

HOUSEHOLDS = 7


def test_the_roster_pages_by_cursor_giving_every_household_once_with_the_total(db_url, tmp_path):
    with client_for(db_url, tmp_path) as client:
        cmds = []
        for i in range(HOUSEHOLDS):
            cmds += [register(f"H{i}"), *inclusion_path(f"H{i}", start=date(2023, 3, 1) + timedelta(days=i))]
        post_as_actors(client, cmds)
        whole = client.get("/roster", headers=auth("tok-county-1")).json()
        assert whole["count"] == whole["total"] == HOUSEHOLDS and whole["next_cursor"] is None

        pages, cursor = [], None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = client.get("/roster", params=params, headers=auth("tok-county-1")).json()
            pages.append(page)
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [p["count"] for p in pages] == [3, 3, 1]
        assert {p["total"] for p in pages} == {HOUSEHOLDS}
        assert [r["household_id"] for p in pages for r in p["rows"]] == [r["household_id"] for r in whole["rows"]]


def test_a_cursor_that_no_page_gave_is_refused_with_what_to_do(db_url, tmp_path):
    with client_for(db_url, tmp_path) as client:
        r = client.get("/roster", params={"limit": 2, "cursor": "not-a-cursor"}, headers=auth("tok-county-1"))
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
        assert "next_cursor" in r.json()["error"]["message"]
        r = client.get("/roster", params={"limit": 0}, headers=auth("tok-county-1"))
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
