"""Measure the double ledger at a county's scale: N problems (two in three closed with both sign-offs, one in
three overdue and held accountable) applied through the bulk path, then a rebuild of the `ledger` and
`activity` projections, the ledger read as of a date, the monthly dispatch and the two-sheet workbook.

    python benchmarks/bench_ledgers.py 3000 [--db URL]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> None:
    import structlog

    from adapters.output.reports import build_monthly
    from adapters.output.workbooks import write_ledger_xlsx
    from adapters.readside.readmodels import read_models
    from adapters.store.storage import bootstrap
    from projections.ledger import problem_rows, rectification_rows
    from projections.registry import by_name
    from tests.problems import accountable, assign, closed_path, raise_, rectify

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("problems", type=int)
    parser.add_argument("--db", default=None, help="event store (default: a fresh SQLite file)")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    tmp = Path(tempfile.mkdtemp())
    app = bootstrap(args.db or str(tmp / "bench.db"))
    cmds = []
    for i in range(args.problems):
        d = date(2022, 4, 1) + timedelta(days=i % 90)
        div = f"522631101{1 + i % 9:03d}"
        if i % 3:
            cmds += closed_path(f"P{i}", d, household_id=f"H{i}", division_code=div)
        else:
            cmds += [raise_(f"P{i}", d, household_id=f"H{i}", division_code=div),
                     assign(f"P{i}", d + timedelta(days=1), deadline=d + timedelta(days=20)),
                     rectify(f"P{i}", d + timedelta(days=5)), accountable(f"P{i}", "both", d + timedelta(days=30))]
    t = time.perf_counter()
    ok = sum(o.ok for o in app.handle_many(cmds, batch_size=1000))
    print(f"apply: {ok}/{len(cmds)} commands in {time.perf_counter() - t:.1f}s")
    with read_models(app, [by_name("ledger"), by_name("activity")]) as rm:
        for name in ("ledger", "activity"):
            t = time.perf_counter()
            n = rm.runner.rebuild(rm.projection(name))
            dt = time.perf_counter() - t
            print(f"rebuild {name}: {n} events in {dt:.2f}s ({n / dt:,.0f} events/s)")
        with rm.engine.connect() as conn:
            t = time.perf_counter()
            problems = problem_rows(conn, date(2022, 9, 30))
            acts = rectification_rows(conn, date(2022, 9, 30))
            print(f"ledger as of a date: {len(problems)} problems, {len(acts)} acts in {time.perf_counter() - t:.2f}s")
            t = time.perf_counter()
            build_monthly(conn, app.policies, "2022-06")
            print(f"monthly dispatch: {time.perf_counter() - t:.2f}s")
    t = time.perf_counter()
    write_ledger_xlsx(tmp / "ledger.xlsx", problems, acts, date(2022, 9, 30))
    print(f"workbook ({len(problems) + len(acts)} rows): {time.perf_counter() - t:.1f}s")
    app.close()


if __name__ == "__main__":
    main()
