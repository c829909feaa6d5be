"""Measure `casecore apply` on a generated command file: one commit per command (`--batch 1`) against the
bulk path (default batch), as events stored per second of wall-clock time of the whole command.

    python benchmarks/bench_apply.py 10000                       # SQLite files in a temporary directory
    python benchmarks/bench_apply.py 10000 --dir /dev/shm         # SQLite on a RAM disk (no fsync cost)
    python benchmarks/bench_apply.py 10000 --postgres postgresql://postgres@127.0.0.1:5432/test

Each run applies the same file to a fresh store; the results of every run must be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASECORE = shutil.which("casecore", path=str(Path(sys.executable).parent)) or "casecore"


def fresh_store(args: argparse.Namespace, workdir: Path, label: str) -> tuple[str, object]:
    """A new empty store: a SQLite file, or a PostgreSQL schema of its own (dropped afterwards)."""
    if not args.postgres:
        return str(workdir / f"bench-{label}.db"), None
    import psycopg

    schema = f"bench_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{args.postgres}?schema={schema}", schema


def drop(args: argparse.Namespace, schema: object) -> None:
    if schema:
        import psycopg

        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, nargs="?", default=10_000)
    parser.add_argument("--batches", default="1,500", help="batch sizes to compare (default 1,500)")
    parser.add_argument("--dir", type=Path, default=None, help="where the SQLite files go (default: a temp dir)")
    parser.add_argument("--postgres", default=None, help="measure on this PostgreSQL instead of SQLite")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    workdir = Path(tempfile.mkdtemp(prefix="casecore-bench-", dir=args.dir))
    try:
        commands = workdir / "commands.jsonl"
        subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_commands.py"), str(args.n), "--seed",
                        str(args.seed), "--output", str(commands)], check=True)
        outputs = {}
        for batch in (int(b) for b in args.batches.split(",")):
            db, schema = fresh_store(args, workdir, f"b{batch}")
            cmd = [CASECORE, "apply", str(commands), "--json", "--batch", str(batch), "--db", db]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, check=True)
            seconds = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            drop(args, schema)
            results = [json.loads(line) for line in done.stdout.splitlines()]
            events = sum(len(r.get("events", ())) for r in results)
            refused = sum(not r["ok"] for r in results)
            outputs[batch] = done.stdout
            shown = " ".join(cmd).replace(str(workdir), "$WORK")
            print(f"batch {batch:>5}: {len(results)} commands, {events} events, {refused} refused, "
                  f"{seconds:.2f} s wall → {events / seconds:,.0f} events/s ({cpu:.2f} s CPU → "
                  f"{events / cpu:,.0f} events per CPU-second)   [{shown}]")
        if len(set(outputs.values())) != 1:
            print("the results differ between batch sizes", file=sys.stderr)
            return 1
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
