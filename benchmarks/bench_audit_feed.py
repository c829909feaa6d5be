"""Measure what tamper evidence costs the writer, and how fast the auditor and the feed read.

    python benchmarks/bench_audit_feed.py [--households 5000] [--db sqlite|postgres] [--nats]
    CASECORE_CHAIN_KEY=$(python -c "import base64,os;print(base64.b64encode(os.urandom(32)).decode())") \
        python benchmarks/bench_audit_feed.py …        # the same with the keyed chain

Writes N households (each registered and taken through the whole inclusion: 10 events) by the bulk
path, once with the library's plain recorder and once with the hash-chained one, then times
`audit` (verify), the CloudEvents feed and, with `--nats`, publishing the feed to JetStream.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.integration.feed import read_feed  # noqa: E402
from adapters.readside.readmodels import store_of  # noqa: E402
from adapters.store.audit import audit  # noqa: E402
from adapters.store.storage import bootstrap, resolve_store  # noqa: E402
from benchmarks.commands import inclusion_path, register  # noqa: E402
from casecore.application import CaseManagement  # noqa: E402

PG = os.environ.get("CASECORE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def commands(n: int) -> list:
    out = []
    for i in range(n):
        out += [register(f"B{i}"), *inclusion_path(f"B{i}")]
    return out


def fresh_url(kind: str, tmp: str, tag: str) -> str:
    if kind == "sqlite":
        return str(Path(tmp) / f"{tag}.db")
    import psycopg

    schema = f"bench_{tag}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{PG}?schema={schema}"


def write(url: str, cmds: list, hashed: bool) -> tuple[CaseManagement, float]:
    if hashed:
        app = bootstrap(url)
    else:
        env = dict(resolve_store(url).env)
        env.pop("APPLICATION_RECORDER_TOPIC")
        app = CaseManagement(env=env)
    started = time.perf_counter()
    outcomes = list(app.handle_many(cmds, batch_size=500))
    elapsed = time.perf_counter() - started
    assert all(o.ok for o in outcomes)
    return app, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--households", type=int, default=5000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--nats", action="store_true")
    args = parser.parse_args()
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    cmds = commands(args.households)
    n = len(cmds)
    with tempfile.TemporaryDirectory() as tmp:
        plain, t_plain = write(fresh_url(args.db, tmp, "plain"), cmds, hashed=False)
        plain.close()
        app, t_hashed = write(fresh_url(args.db, tmp, "hashed"), cmds, hashed=True)
        chain = "keyed (HMAC)" if app.recorder.chain_keys is not None else "plain"
        print(f"{args.db}: {n} events by the bulk path (500 commands a transaction), {chain} chain")
        print(f"  write, plain recorder:  {t_plain:6.2f} s  {n / t_plain:8.0f} events/s")
        print(f"  write, hash chain:      {t_hashed:6.2f} s  {n / t_hashed:8.0f} events/s "
              f"({(t_hashed / t_plain - 1) * 100:+.0f} %)")
        started = time.perf_counter()
        report = audit(app.recorder, keys=app.recorder.chain_keys)   # keyed when CASECORE_CHAIN_KEY is set
        t = time.perf_counter() - started
        assert report.ok and report.events == n
        print(f"  audit verify:           {t:6.2f} s  {n / t:8.0f} events/s")
        started = time.perf_counter()
        count = sum(1 for _ in read_feed(app, source="urn:bench"))
        t = time.perf_counter() - started
        assert count == n
        print(f"  feed (masked):          {t:6.2f} s  {n / t:8.0f} events/s")
        if args.nats:
            from adapters.integration.nats_publisher import PositionStore, publish_nats

            name, prefix = f"BENCH_{uuid.uuid4().hex[:8]}", f"bench{uuid.uuid4().hex[:8]}"
            positions = PositionStore(store_of(app).sqlalchemy_url, "bench")
            started = time.perf_counter()
            stats = asyncio.run(publish_nats(app, positions, "nats://127.0.0.1:4222", name, prefix=prefix,
                                             once=True, batch=500))
            t = time.perf_counter() - started
            assert stats.published == n
            print(f"  publish to JetStream:   {t:6.2f} s  {n / t:8.0f} events/s")
            positions.close()

            async def drop() -> None:
                import nats

                nc = await nats.connect("nats://127.0.0.1:4222")
                await nc.jetstream().delete_stream(name)
                await nc.drain()

            asyncio.run(drop())
        app.close()


if __name__ == "__main__":
    main()
