"""A newcomer's first minute: `./dev` says how to use it, and the demo's files stay out of git."""

from __future__ import annotations

import subprocess
from pathlib import Path

from adapters.cli.demo import DEFAULT_DEMO_DB, DEFAULT_OUTPUT

ROOT = Path(__file__).resolve().parents[2]


def test_dev_without_arguments_prints_its_usage_in_chinese_not_its_own_source():
    done = subprocess.run([str(ROOT / "dev")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "./dev demo" in done.stdout and "./dev casecore" in done.stdout and "演示" in done.stdout
    assert "set -euo" not in done.stdout and "#" not in done.stdout


def test_dev_with_an_unknown_word_says_so_and_fails():
    done = subprocess.run([str(ROOT / "dev"), "dmeo"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "dmeo" in done.stderr and "./dev demo" in done.stderr


def test_the_files_the_demo_writes_into_the_checkout_are_ignored_by_git():
    for path in (Path(DEFAULT_OUTPUT) / "tokens.json", Path(DEFAULT_OUTPUT) / "inspection" / "x.xlsx",
                 Path(DEFAULT_DEMO_DB)):
        done = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT, timeout=30)
        assert done.returncode == 0, f"{path} is not ignored"
