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


def test_the_ledgers_page_by_cursor_in_the_ledgers_order_each_page_with_its_problems_acts(db_url, tmp_path):
    from tests.builders import COUNTY, cmd
    from tests.problems import PARTIES, raise_, rectify

    villages = ["522631101001", "522631101002", "522631102001"]
    cmds = []
    for i in range(7):
        pid, on = f"P{i}", date(2023, 3, 1) + timedelta(days=i)
        deadline = date(2023, 4, 1) if i % 2 else date(2023, 12, 1)
        cmds += [raise_(pid, on, household_id=None, division_code=villages[i % 3], actor=COUNTY),
                 cmd("assign_responsibility", on + timedelta(days=1), COUNTY, problem_id=pid,
                     responsible=PARTIES["responsible"], supervisor=PARTIES["supervisor"],
                     deadline=deadline.isoformat())]
        if i % 3 == 0:
            cmds.append(rectify(pid, on + timedelta(days=2), actor=COUNTY))
    with client_for(db_url, tmp_path) as client:
        post_as_actors(client, cmds)
        params = {"as_of": "2023-06-30"}
        whole = client.get("/ledgers", params=params, headers=auth("tok-county-1")).json()
        assert whole["count"] == whole["total"] == 7 and whole["next_cursor"] is None
        for overdue in (False, True):
            expected = [p for p in whole["problems"] if p["overdue"] or not overdue]
            pages, cursor = [], None
            while True:
                query = {**params, "limit": 2, "overdue": str(overdue).lower(),
                         **({"cursor": cursor} if cursor else {})}
                page = client.get("/ledgers", params=query, headers=auth("tok-county-1")).json()
                pages.append(page)
                assert {a["problem_id"] for a in page["rectifications"]} <= {p["problem_id"] for p in page["problems"]}
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            assert {p["total"] for p in pages} == {len(expected)}
            assert [p for page in pages for p in page["problems"]] == expected
            assert [a for page in pages for a in page["rectifications"]] == [
                a for a in whole["rectifications"] if a["problem_id"] in {p["problem_id"] for p in expected}]
        assert len([p for p in whole["problems"] if p["overdue"]]) == 3  # P1, P3, P5: April deadlines
        village = client.get("/ledgers", params={**params, "limit": 1}, headers=auth("tok-village-1")).json()
        assert village["total"] == 3 and village["count"] == 1 and village["next_cursor"]
        bad = client.get("/ledgers", params={**params, "limit": 2, "cursor": "bm90LWEta2V5"},
                         headers=auth("tok-county-1"))
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
