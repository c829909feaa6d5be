"""Measure a full inspection (all 21 rules) over N generated households.

The case-facts tables are filled directly with a generated province (the rows the fold would write for
such histories: cycles, members, risks, measures, assessments, leads, notices, back-dated events, problems,
with a planted share of every pattern the rules look for), then every rule runs as of one date and the
wall-clock time of each rule and of the whole inspection is printed.

    python benchmarks/bench_inspect.py --households 100000                    # SQLite file in a temp dir
    python benchmarks/bench_inspect.py --households 100000 --postgres postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/bench_inspect.py --households 100000 --json

With `--store`, the rules run over a store that exists — a kept `python -m benchmarks --keep` store (SQLite
file or PostgreSQL URL with `?schema=`), its case facts folded from events — as `benchmarks/bench.py` times
them (shared out among one snapshot's connections, `--jobs`, by default one per core), `--repeat` times, then
each rule alone on one connection:

    python benchmarks/bench_inspect.py --store /tmp/copy-of-kept.db --repeat 5
"""

from __future__ import annotations

import argparse
import calendar
import json
import random
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.readside.snapshot import inspection_jobs, snapshot  # noqa: E402
from casecore.policy import default_policies  # noqa: E402
from casecore.values import make_person_id  # noqa: E402
from projections import casefacts as cf  # noqa: E402
from projections.queries.inspector import RULES, Inspector  # noqa: E402
from projections.runner import positions, positions_metadata  # noqa: E402

AS_OF = date(2023, 9, 30)
RISKS = ["illness", "disability", "schooling", "disaster", "accident", "industry_failure", "unstable_employment",
         "lack_of_labour", "housing", "drinking_water"]
FIT = {need: list(types) for need, types in default_policies().on(AS_OF).fit.items()}
MEASURES = ["industry", "employment", "finance", "public_welfare_job", "health", "compulsory_education", "education",
            "social_assistance", "housing", "drinking_water", "social"]


def month_fields(prefix: str, d: date) -> dict[str, Any]:
    return {f"{prefix}_on": d, f"{prefix}_ord": d.toordinal(), f"{prefix}_month": d.year * 12 + d.month - 1,
            f"{prefix}_day": d.day}


def generate(n: int, seed: int) -> dict[sa.Table, list[dict[str, Any]]]:
    """Rows of the case-facts tables for `n` households (about 60 % monitored at some point)."""
    rng = random.Random(seed)
    rows: dict[sa.Table, list[dict[str, Any]]] = {t: [] for t in cf.metadata.sorted_tables}
    start = date(2021, 6, 1)
    for i in range(n):
        hid = f"B{i:07d}"
        division = f"5226{i % 17 + 1:02d}{i % 23 + 1:03d}{i % 29 + 1:03d}"
        included = rng.random() < 0.6
        cycle = 1 if included or rng.random() < 0.3 else 0
        cadre = included and rng.random() > 0.03
        rows[cf.households].append({
            "household_id": hid, "division_code": division,
            "household_type": rng.choice(["general", "poverty_alleviated"]),
            "stage": "not_monitored", "cycle": cycle, "cycle_status": None, "registered_on": start,
            "cadre_name": "干部" if cadre else None, "cadre_on": start if cadre else None,
            "cadre_ord": start.toordinal() if cadre else None, "imported": rng.random() < 0.3})
        size = rng.randint(1, 5)
        labourless = rng.random() < 0.05
        for k in range(size):
            pid = make_person_id("522631", date(1950 + (i + k) % 60, 1 + k % 12, 1 + i % 28), (i * 7 + k) % 1000)
            rows[cf.members].append({"key": f"{hid}#{pid}#{k}", "household_id": hid, "person_id": pid, "name": "人",
                                     "labour": "none" if labourless or k > 2 else rng.choice(["full", "full", "weak"]),
                                     "added_ord": None, "removed_ord": None, "removed_on": None})
        serial = iter(range(1, 100))

        def assessment(on: date, cyc: int, hid: str = hid, serial: Any = serial) -> dict[str, Any]:
            seq = next(serial)
            return {"key": f"{hid}#{seq}", "household_id": hid, "cycle": cyc, "on": on, "on_ord": on.toordinal(),
                    "seq": on.toordinal() * 1_000_000 + seq, "origin": None}

        first = start + timedelta(days=rng.randint(0, 700))
        rows[cf.incomes].append(assessment(first, 0) | {
            "net_income": Decimal(rng.randint(8000, 60000)), "rigid_expenditure": Decimal(0), "household_size": size,
            "per_capita_income": Decimal(rng.randint(5000, 20000))})
        if rng.random() < 0.5:
            rows[cf.guarantees].append(assessment(first, 0) | {
                "housing": "safe" if rng.random() > 0.05 else "c_level", "drinking_water_safe": rng.random() > 0.03,
                "children_out_of_school": 0, "members_without_medical_insurance": int(rng.random() < 0.03),
                "open_items": 0})
            g = rows[cf.guarantees][-1]
            g["open_items"] = int(g["housing"] != "safe") + int(not g["drinking_water_safe"]) + \
                g["members_without_medical_insurance"]
        if rng.random() < 0.15:
            for j in range(rng.randint(1, 3)):
                on = first + timedelta(days=30 * j)
                rows[cf.leads].append({
                    "key": f"{hid}#W{j}", "household_id": hid, "lead_id": f"W{j}", "cycle": cycle, "on": on,
                    "on_ord": on.toordinal(), "source": "department_warning", "risk_types": ["illness"], "detail": "",
                    "opens_procedure": j == 0, "monitored_at": False, "status": "not_meets"})
        if not cycle:
            continue
        lead_on = first + timedelta(days=rng.randint(0, 30))
        c: dict[str, Any] = {col.name: None for col in cf.cycles.columns}
        c.update(key=f"{hid}#1", household_id=hid, cycle=1, division_code=division, status="closed", eliminations=0,
                 origin=None, category=rng.choice(["marginal", "unstable_alleviated", "sudden_hardship"]),
                 risk_types=[], first_lead_on=lead_on, first_lead_ord=lead_on.toordinal())
        if not included:
            closed = lead_on + timedelta(days=rng.randint(3, 20))
            c.update(closed_on=closed, closed_ord=closed.toordinal())
            rows[cf.cycles].append(c)
            continue
        incl = lead_on + timedelta(days=rng.randint(8, 14) if rng.random() < 0.9 else rng.randint(15, 40))
        c.update(status="monitored", included_precision="day", **month_fields("included", incl))
        opened = incl - timedelta(days=8)
        closed = opened + timedelta(days=5 if rng.random() < 0.97 else 4)
        rows[cf.publicity].append({"key": f"{hid}#P", "household_id": hid, "cycle": 1, "division_code": division,
                                   "procedure": "inclusion", "opened_on": opened, "opened_ord": opened.toordinal(),
                                   "closed_on": closed, "closed_ord": closed.toordinal()})
        risks = rng.sample(RISKS, rng.randint(1, 3))
        c["risk_types"] = risks
        for r in risks:
            rows[cf.risks].append({"key": f"{hid}#1#{r}", "household_id": hid, "cycle": 1, "risk_type": r})
        # most households get a measure that fits each risk, and one developmental measure; some do not
        chosen = [rng.choice(FIT[r]) if rng.random() < 0.92 else rng.choice(MEASURES) for r in risks]
        if rng.random() < 0.85:
            chosen.append(rng.choice(["industry", "employment", "finance", "public_welfare_job"]))
        if rng.random() < 0.04:
            chosen = []
        for j, mtype in enumerate(chosen):
            planned = incl + timedelta(days=rng.randint(-2 if rng.random() < 0.03 else 0, 25))
            implemented = planned + timedelta(days=rng.randint(0, 10)) if rng.random() < 0.95 else None
            rows[cf.measures].append({
                "key": f"{hid}#M{j}", "household_id": hid, "measure_id": f"M{j}", "cycle": 1, "measure_type": mtype,
                "developmental": mtype in ("industry", "employment", "finance", "public_welfare_job"),
                "status": "implemented" if implemented else "planned", "planned_on": planned,
                "planned_ord": planned.toordinal(), "implemented_on": implemented,
                "implemented_ord": implemented.toordinal() if implemented else None, "ended_on": None,
                "ended_ord": None, "origin": None})
        if rng.random() < 0.4:
            elim = incl + timedelta(days=rng.randint(40, 200) if rng.random() < 0.1 else rng.randint(185, 500))
            if elim < AS_OF:
                mode = rng.choice(["assisted", "natural"])
                nominated = elim - timedelta(days=11)
                c.update(status="eliminated", exit_mode=mode, nominated_on=nominated,
                         nominated_ord=nominated.toordinal(), eliminated_precision="day",
                         eliminated_month_end=elim.day == calendar.monthrange(elim.year, elim.month)[1],
                         **month_fields("eliminated", elim))
                c["eliminations"] = 1
                rows[cf.eliminations].append({col.name: c.get(col.name) for col in cf.eliminations.columns}
                                             | {"key": f"{hid}#1#1", "n": 1})
                if rng.random() < 0.9:
                    rows[cf.incomes].append(assessment(elim - timedelta(days=1), 1) | {
                        "net_income": Decimal(30000), "rigid_expenditure": Decimal(0), "household_size": size,
                        "per_capita_income": Decimal(rng.randint(6600, 12000) if rng.random() < 0.1
                                                     else rng.randint(7400, 12000))})
                    water = rng.random() > 0.01
                    rows[cf.guarantees].append(assessment(elim - timedelta(days=1), 1) | {
                        "housing": "safe", "drinking_water_safe": water, "children_out_of_school": 0,
                        "members_without_medical_insurance": 0, "open_items": int(not water)})
        rows[cf.cycles].append(c)
        if rng.random() < 0.05:
            recorded = incl + timedelta(days=rng.randint(1, 90))
            rows[cf.backdating].append({
                "key": f"{hid}#B", "household_id": hid, "cycle": 1, "division_code": division,
                "event_type": "entered_system", "on": incl, "on_ord": incl.toordinal(), "recorded_on": recorded,
                "lag_days": (recorded - incl).days, "actor_id": "t"})
        if rng.random() < 0.05:
            deadline = incl + timedelta(days=rng.randint(30, 300))
            closed_p = deadline - timedelta(days=3) if rng.random() < 0.5 else None
            rows[cf.problems].append({
                "problem_id": f"P{i}", "kind": "helped_not", "household_id": hid, "division_code": division,
                "source": "supervision", "finding_key": None, "status": "closed" if closed_p else "assigned",
                "raised_on": incl, "raised_ord": incl.toordinal(), "deadline": deadline,
                "deadline_ord": deadline.toordinal(), "responsible": {"unit": "乡", "person": "甲"},
                "supervisor": {"unit": "县", "person": "乙"}, "closed_on": closed_p,
                "closed_ord": closed_p.toordinal() if closed_p else None})
    for row in rows[cf.incomes]:
        row["exact_fen"] = cf.exact_fen(row["net_income"], row["rigid_expenditure"], row["household_size"],
                                        row["per_capita_income"])
    return rows


def time_store(url: str, repeat: int, jobs: int) -> dict[str, Any]:
    """Full inspections (shared out among `jobs` connections on one snapshot) and each rule alone (on one
    connection) over an existing store, as `benchmarks/bench.py` runs them."""
    from adapters.readside.readmodels import read_models
    from adapters.store.storage import bootstrap
    from benchmarks.bench import INSPECT_AS_OF

    app = bootstrap(url)
    try:
        with read_models(app, []) as rm, rm.engine.connect() as conn:
            households = conn.execute(sa.select(sa.func.count()).select_from(cf.households)).scalar_one()
            seconds, total = [], 0
            for _ in range(repeat):
                started = time.perf_counter()
                with snapshot(rm.engine, jobs) as seen:
                    total = len(Inspector(seen.main, app.policies, INSPECT_AS_OF).run(None, seen.workers))
                seconds.append(round(time.perf_counter() - started, 3))
            timings, counts = {}, {}
            for rule in RULES:   # the best of two, each alone
                best = None
                for _ in range(2):
                    started = time.perf_counter()
                    counts[rule] = len(Inspector(conn, app.policies, INSPECT_AS_OF).run([rule]))
                    took = time.perf_counter() - started
                    best = took if best is None else min(best, took)
                timings[rule] = round(best or 0.0, 3)
            store = rm.engine.dialect.name
    finally:
        app.close()
    median = sorted(seconds)[len(seconds) // 2]
    return {"households": households, "store": store, "findings": total, "as_of": INSPECT_AS_OF.isoformat(),
            "jobs": jobs, "inspect_seconds": seconds, "median_seconds": median,
            "inspect_households_per_s": round(households / median) if median else 0,
            "rule_seconds": timings, "rule_findings": counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--postgres", help="PostgreSQL URL (a schema of its own is created and dropped)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--store", help="time the rules over this existing store instead (read only)")
    parser.add_argument("--repeat", type=int, default=3, help="with --store: full runs to time")
    parser.add_argument("--jobs", type=int, default=None,
                        help="connections a full run is shared out among (default: as casecore inspect)")
    args = parser.parse_args()
    if args.store:
        result = time_store(args.store, args.repeat, args.jobs or inspection_jobs())
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            print(f"{result['households']} households on {result['store']}: {result['findings']} findings; "
                  f"full runs on {result['jobs']} connection{'s' if result['jobs'] > 1 else ''} "
                  f"{result['inspect_seconds']} s (median {result['median_seconds']} s, "
                  f"{result['inspect_households_per_s']} households/s)")
            for rule in RULES:
                print(f"  {rule:34s} {result['rule_findings'][rule]:7d} findings  "
                      f"{result['rule_seconds'][rule]:6.3f} s (alone)")
        return

    tmp = tempfile.TemporaryDirectory()
    schema = None
    if args.postgres:
        schema = f"bench_inspect_{uuid.uuid4().hex[:8]}"
        base = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
        admin = sa.create_engine(base)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        engine = sa.create_engine(base, connect_args={"options": f"-csearch_path={schema}"})
    else:
        engine = sa.create_engine(f"sqlite:///{Path(tmp.name) / 'bench.db'}")
    try:
        t0 = time.perf_counter()
        rows = generate(args.households, args.seed)
        generated = time.perf_counter() - t0
        t0 = time.perf_counter()
        with engine.begin() as conn:
            cf.metadata.create_all(conn)
            positions_metadata.create_all(conn)   # where the connections of a shared run see one snapshot
            conn.execute(positions.insert().values(name="casefacts", position=1, rebuilding=False))
            for table in cf.metadata.sorted_tables:
                data = rows[table]
                for k in range(0, len(data), 20_000):
                    conn.execute(table.insert(), data[k : k + 20_000])
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(sa.text("ANALYZE"))
        loaded = time.perf_counter() - t0
        policies = default_policies()
        timings: dict[str, float] = {}
        counts: dict[str, int] = {}
        # the whole inspection, as `casecore inspect` runs it: every rule, evidence and problem ids attached,
        # shared out among one snapshot's connections
        jobs = args.jobs or inspection_jobs()
        started = time.perf_counter()
        with snapshot(engine, jobs) as seen:
            findings = Inspector(seen.main, policies, AS_OF).run(None, seen.workers)
        elapsed = time.perf_counter() - started
        total = len(findings)
        with engine.connect() as conn:
            # then each rule on its own, for the breakdown
            for rule in RULES:
                t = time.perf_counter()
                counts[rule] = len(Inspector(conn, policies, AS_OF).run([rule]))
                timings[rule] = round(time.perf_counter() - t, 3)
        result = {
            "households": args.households, "store": engine.dialect.name, "rows": sum(len(v) for v in rows.values()),
            "findings": total, "jobs": jobs, "inspect_seconds": round(elapsed, 2), "as_of": AS_OF.isoformat(),
            "inspect_households_per_s": round(args.households / elapsed), "generate_seconds": round(generated, 1),
            "load_seconds": round(loaded, 1), "rule_seconds": timings, "rule_findings": counts,
        }
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        else:
            print(f"{args.households} households on {result['store']}: {total} findings in {elapsed:.2f} s on {jobs} "
                  f"connection{'s' if jobs > 1 else ''} "
                  f"({result['inspect_households_per_s']} households/s)")
            for rule in RULES:
                print(f"  {rule:34s} {counts[rule]:7d} findings  {timings[rule]:6.2f} s (alone)")
    finally:
        if schema:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
        tmp.cleanup()


if __name__ == "__main__":
    main()
