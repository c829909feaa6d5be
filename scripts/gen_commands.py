"""Write N realistic contract commands (JSON Lines) for a generated Guizhou county.

The commands are the demo's: households registered, leads from every source, home visits, notices with
objections, reviews with returns and rejections, county approvals and entries into the system — including
the refusals the demo plants (about 2% of the commands are meant to be refused). Commands come in business-date
order; the file is cut at N, so the last procedures are left where they stand.

    python scripts/gen_commands.py 10000 --output /tmp/commands.jsonl [--seed 7] [--county 522631]
    casecore apply /tmp/commands.jsonl --db /tmp/bulk.db --json > /tmp/results.jsonl
"""

from __future__ import annotations

import argparse
import random
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from adapters.demo import DemoContext  # noqa: E402
from adapters.demo.county import DEFAULT_COUNTY, make_county, make_households  # noqa: E402
from adapters.demo.stage_10_inclusion import plan  # noqa: E402
from casecore.commands import Command  # noqa: E402
from casecore.policy import default_policies  # noqa: E402

COMMANDS_PER_HOUSEHOLD = 5   # what a generated county averages; households are added until N are reached


def generate(n: int, seed: int = 7, county_code: str = DEFAULT_COUNTY) -> list[Command]:
    """`n` commands of a county's registrations and inclusion procedures, in business-date order."""
    households = max(10, n // COMMANDS_PER_HOUSEHOLD)
    while True:
        rng = random.Random(seed)
        county = make_county(rng, households, county_code)
        people = make_households(rng, county, households)
        registered_on = DemoContext.start - timedelta(days=20)
        commands = [cmd for _, cmd in plan(rng, default_policies(), county, people, registered_on).commands()]
        if len(commands) >= n:
            return commands[:n]
        households = int(households * n / max(1, len(commands))) + 10


def to_line(command: Command) -> bytes:
    return orjson.dumps(command.model_dump(mode="json", exclude_none=True, exclude_defaults=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int, help="how many commands")
    parser.add_argument("--output", "-o", type=Path, default=None, help="file to write (default: standard output)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--county", default=DEFAULT_COUNTY, help="a Guizhou county's 6-digit code")
    args = parser.parse_args(argv)
    commands = generate(args.n, args.seed, args.county)
    data = b"".join(to_line(c) + b"\n" for c in commands)
    if args.output is None:
        sys.stdout.buffer.write(data)
    else:
        args.output.write_bytes(data)
        print(f"wrote {len(commands)} commands to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
