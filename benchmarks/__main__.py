"""The benchmark against the raw floor (docs/benchmarks.md): the same as `casecore bench`.

    python -m benchmarks --households 20000 --json
    python -m benchmarks --households 20000 --db postgresql://postgres@127.0.0.1:5432/test --json
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.cli import app  # noqa: E402

if __name__ == "__main__":
    app(["bench", *sys.argv[1:]], prog_name="bench.py")
