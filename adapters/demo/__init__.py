"""`casecore demo`: a generated Guizhou county lives through its cases, stage by stage.

Each stage is a module `adapters/demo/stage_NN_name.py` with `TITLE` (Chinese) and
`run(ctx: DemoContext) -> dict[str, int]` (its summary counts); stages run in file-name order and share
one context: the application, a seeded random generator, the county's households, a business calendar,
and `submit(commands)` which applies commands through the bulk path and records refusals for the summary.
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from casecore.application import CaseManagement, Outcome
from casecore.commands import LABELS, Command, parse_command


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
    #: one `enter_system` in this many is entered late (补录), after the policy's back-dating limit
    late_entry_every: int = 40

    def __post_init__(self) -> None:
        # The county's history is simulated: each act is recorded on its business date during office hours,
        # not today — else every act would look back-dated to the inspector.
        self.app.recording_clock = self.recorded_at

    def recorded_at(self, cmd: Command) -> datetime:
        """When the simulated county's system stored `cmd`: its business date, 09:00–17:00 China time (a
        deterministic minute from the command), and a few township entries made weeks late."""
        digest = hashlib.blake2b(cmd.model_dump_json().encode(), digest_size=8).digest()
        minute = int.from_bytes(digest[:4]) % 480
        at = datetime.combine(cmd.on, time(1, 0), UTC) + timedelta(minutes=minute)
        if cmd.command == "enter_system" and int.from_bytes(digest[4:]) % self.late_entry_every == 0:
            late = self.app.policies.on(cmd.on).procedure.backdated_entry_days
            at += timedelta(days=late + 15)
        return at

    def submit(self, commands: Iterable[Command], batch_size: int = 500) -> list[tuple[Command, Outcome]]:
        cmds = list(commands)
        results = []
        for cmd, outcome in zip(cmds, self.app.handle_many(cmds, batch_size=batch_size), strict=True):
            if not outcome.ok and outcome.error is not None:
                key = outcome.error.rule or outcome.error.code
                self.refusals[key] += 1
                example = f"{LABELS.get(cmd.command, cmd.command)}: {outcome.error.message}"
                self.refusal_examples.setdefault(key, example)
            results.append((cmd, outcome))
            self.progress(1)
        return results


class ScriptedCase:
    """A case's commands in order, with a running business date and the ones planted to be refused.
    Subclasses are dataclasses with `day`, `commands`, `planted` and say which stream they address."""

    day: date
    commands: list[tuple[date, Command]]
    planted: set[int]

    def target(self) -> dict[str, str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def add(self, command: str, actor: dict, gap: int = 0, planted: bool = False, **fields: Any) -> Command:
        self.day = self.day + timedelta(days=gap)
        cmd = parse_command({"command": command, "on": self.day.isoformat(), "actor": actor, **self.target(),
                             **fields})
        self.commands.append((self.day, cmd))
        if planted:
            self.planted.add(id(cmd))
        return cmd


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
