"""Rebuild the copy-like projections (timeline, activity) of a kept store in SQL and by the Python fold, one after
the other, and print each one's seconds (the whole rebuild: shadow tables, fill or fold, deferred indexes,
switch).

    python -m benchmarks --households 20000 --keep --db /tmp/b20k.db --json
    python benchmarks/bench_rebuild_copy.py --db /tmp/b20k.db
    python benchmarks/bench_rebuild_copy.py --db 'postgresql://postgres@127.0.0.1:5432/test?schema=bench_…'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters.readside.readmodels import read_models
from adapters.store.storage import bootstrap
from projections.activity import ActivityProjection
from projections.timeline import TimelineProjection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="a store kept by benchmarks/__main__.py --keep")
    parser.add_argument("--modes", default="sql,python", help="in this order (sql, python)")
    args = parser.parse_args()
    app = bootstrap(args.db, create=False)
    out: dict[str, object] = {}
    try:
        with read_models(app, [TimelineProjection(), ActivityProjection()], batch_size=10_000) as rm:
            out["events"] = rm.runner.max_position()
            for mode in args.modes.split(","):
                rm.runner.in_database = mode == "sql"
                rm.runner.not_in_database.clear()
                for p in rm.runner.projections:
                    started = time.perf_counter()
                    rm.runner.rebuild(p, restart=True)
                    out[f"{mode}_{p.name}_seconds"] = round(time.perf_counter() - started, 2)
                if mode == "sql":
                    out["folded_in_python"] = dict(rm.runner.not_in_database)
    finally:
        app.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
