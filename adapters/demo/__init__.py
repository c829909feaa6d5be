"""`casecore demo`: a generated Guizhou county lives through its cases, stage by stage.

Each stage is a module `adapters/demo/stage_NN_name.py` with `TITLE` (Chinese) and
`run(ctx: DemoContext) -> dict[str, int]` (its summary counts); stages run in file-name order and share
one context: the application, a seeded random generator, the county's households, a business calendar,
and `submit(commands)` which applies commands through the bulk path and records refusals for the summary.
"""

from __future__ import annotations

import importlib
import pkgutil
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from casecore.application import CaseManagement, Outcome
from casecore.commands import Command


@dataclass
class DemoContext:
    app: CaseManagement
    rng: random.Random
    households: int
    output_dir: Path
    #: anything stages hand to later stages (the county, household ids by state, …)
    shared: dict[str, Any] = field(default_factory=dict)
    #: refusals seen, by error code and rule, for the summary
    refusals: Counter = field(default_factory=Counter)
    #: a few refusal messages to show as examples, by rule
    refusal_examples: dict[str, str] = field(default_factory=dict)
    progress: Callable[[int], None] = lambda n: None
    start: date = date(2022, 3, 1)

    def submit(self, commands: Iterable[Command], batch_size: int = 500) -> list[tuple[Command, Outcome]]:
        cmds = list(commands)
        results = []
        for cmd, outcome in zip(cmds, self.app.handle_many(cmds, batch_size=batch_size), strict=True):
            if not outcome.ok and outcome.error is not None:
                key = outcome.error.rule or outcome.error.code
                self.refusals[key] += 1
                self.refusal_examples.setdefault(key, f"{cmd.command}: {outcome.error.message}")
            results.append((cmd, outcome))
            self.progress(1)
        return results


@dataclass
class StageInfo:
    name: str
    title: str
    run: Callable[[DemoContext], dict[str, int]]


def stages() -> list[StageInfo]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("stage_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(StageInfo(info.name, getattr(module, "TITLE", info.name), module.run))
    return found
