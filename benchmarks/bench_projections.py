"""Rebuild speed of projections on an existing store (e.g. one `casecore demo` made).

    .venv/bin/python benchmarks/bench_projections.py --db casecore-demo.db [--projection roster] [--batch-size 2000]

Prints, per projection: events folded, wall seconds, CPU seconds of this process, events/s (wall).
"""

from __future__ import annotations

import argparse
import time

from adapters.readside.readmodels import read_models
from adapters.store.storage import bootstrap
from projections.registry import all_projections, by_name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--projection", action="append")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    app = bootstrap(args.db)
    chosen = [by_name(n) for n in args.projection] if args.projection else all_projections()
    with read_models(app, chosen, batch_size=args.batch_size) as rm:
        print(f"head {rm.runner.max_position()}, batch size {args.batch_size}")
        for p in rm.runner.projections:
            best = None
            for _ in range(args.repeat):
                wall, cpu = time.perf_counter(), time.process_time()
                n = rm.runner.rebuild(p, restart=True)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                if best is None or wall < best[1]:
                    best = (n, wall, cpu)
            n, wall, cpu = best
            print(f"{p.name:<12} {n:>8} events  {wall:6.2f} s wall  {cpu:6.2f} s cpu  {n / wall:9.0f} events/s")
    app.close()


if __name__ == "__main__":
    main()
