"""Server time of every console page on a store the benchmark made (`python -m benchmarks -n N --keep`).

    python benchmarks/bench_console.py --db /tmp/p20k.db [--requests 20] [--json]
    python benchmarks/bench_console.py --db "postgresql://postgres@127.0.0.1:5432/test?schema=bench_…"

Accounts for a village (the village with the most households), its township and county, an inspector (scope:
the county) and an auditor (scope: the province) are written to a temporary file; each page is requested
in-process (the ASGI app, no network) after one warm-up request, and p50 / p95 of the wall time around each
request are reported, with the worst page (highest p95). The read models must be up to date (the bench leaves
them so); reads then fold nothing. The findings pages are read as of the newest stored inspection run
(`casecore inspect --store`; the bench stores one) — a date without a stored run runs every rule for the
request — and `--as-of` / `--month` choose the ledgers' date and the dispatch's month.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--as-of", default="2023-12-31", help="the ledgers' date (YYYY-MM-DD)")
    parser.add_argument("--month", default="2023-06", help="the monthly dispatch's month (YYYY-MM)")
    args = parser.parse_args()

    from adapters.cli._common import configure_logging

    configure_logging()  # warnings only, to stderr: a line a request would be timed too, and --json is stdout

    import re

    import sqlalchemy as sa
    from argon2 import PasswordHasher
    from fastapi.testclient import TestClient

    from adapters.console.accounts import AccountBook
    from adapters.http import Settings, create_app
    from projections import findings_store
    from projections.roster import roster, roster_members

    work = Path(tempfile.mkdtemp(prefix="bench-console-"))
    accounts = work / "accounts.json"
    app = create_app(Settings(db=args.db, accounts_file=accounts, tokens_file=None))
    services = app.state.services
    with services.connect() as conn:
        households = conn.execute(sa.select(sa.func.count()).select_from(roster)).scalar_one()
        village, n = conn.execute(sa.select(roster.c.division_code, sa.func.count()).group_by(roster.c.division_code)
                                  .order_by(sa.func.count().desc()).limit(1)).one()
        # a monitored household if the village has one (its page offers the most forms), else any
        hid = conn.execute(sa.select(roster.c.household_id).where(roster.c.division_code == village)
                           .order_by(roster.c.stage != "monitored", roster.c.household_id).limit(1)).scalar_one()
        name = conn.execute(sa.select(roster_members.c.name).where(roster_members.c.household_id == hid)
                            .limit(1)).scalar() or hid
        stored = conn.execute(sa.select(sa.func.max(findings_store.runs.c.as_of))).scalar()
    findings_on = stored.isoformat() if stored else args.as_of
    county, township, province = village[:6], village[:9], village[:2]
    book = AccountBook(accounts, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    people = {"village": ("village", village, None), "township": ("township", township + "000", None),
              "county": ("county", county + "000000", None), "inspector": ("inspector", "督查组", county),
              "auditor": ("auditor", "审计厅", province)}
    for login, (role, unit, scope) in people.items():
        book.add(login, "bench-password", name=login, role=role, unit=unit, scope=scope)

    common = ["/console/", "/console/inbox", f"/console/households/{hid}", f"/console/search?q={name[:2]}",
              f"/console/search?q={hid}", "/console/households", "/console/households?page=20&stage=monitored",
              f"/console/ledgers?as_of={args.as_of}", f"/console/ledgers?as_of={args.as_of}&page=3",
              f"/console/ledgers?as_of={args.as_of}&overdue=1", f"/console/monthly?month={args.month}"]
    pages = {"village": common, "township": common,
             "county": [*common, f"/console/findings?as_of={findings_on}"],
             "inspector": ["/console/", f"/console/findings?as_of={findings_on}",
                           f"/console/findings?as_of={findings_on}&township={township}"],
             "auditor": ["/console/", "/console/audit",
                         f"/console/audit/replay?household_id={hid}&as_of=2023-06-30"]}
    results = []
    with TestClient(app) as client:
        for login, paths in pages.items():
            client.cookies.clear()
            page = client.get("/console/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            client.post("/console/login", data={"username": login, "password": "bench-password",
                                                "csrf_token": token})
            for path in paths:
                first = client.get(path)
                assert first.status_code == 200, (login, path, first.status_code, first.text[:300])
                times = []
                for _ in range(args.requests):
                    t0 = time.perf_counter()
                    client.get(path)
                    times.append((time.perf_counter() - t0) * 1000)
                times.sort()
                p95 = times[max(0, round(0.95 * len(times)) - 1)]
                results.append({"who": login, "page": path, "p50_ms": round(statistics.median(times), 1),
                                "p95_ms": round(p95, 1), "bytes": len(first.content)})
    store = "postgresql" if args.db.startswith("postgresql") else "sqlite"
    worst = max(results, key=lambda r: r["p95_ms"])
    doc = {"store": store, "households": households, "village_households": n, "requests": args.requests,
           "findings_as_of": findings_on, "findings_stored": stored is not None, "pages": results,
           "worst": worst}
    if args.json:
        print(json.dumps(doc, ensure_ascii=False))
        return
    print(f"{store}, {households} households (village {village}: {n}), {args.requests} requests a page; "
          f"findings as of {findings_on} ({'stored run' if stored else 'no stored run: rules run per request'})")
    print("| who | page | p50 ms | p95 ms |")
    print("|---|---|---:|---:|")
    for r in results:
        print(f"| {r['who']} | `{r['page']}` | {r['p50_ms']} | {r['p95_ms']} |")
    print(f"worst page: {worst['who']} `{worst['page']}` p95 {worst['p95_ms']} ms")


if __name__ == "__main__":
    main()
