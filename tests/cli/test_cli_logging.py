"""Logging set up by the CLI: a later `configure_logging` in the same process takes effect, for loggers that
already wrote a line too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# a fresh interpreter: the level under test is process-wide, and the test suite's own process keeps its own
SCRIPT = textwrap.dedent("""
    import structlog
    from adapters.cli._common import configure_logging

    log = structlog.get_logger("casecore")
    configure_logging("info")
    log.info("first_info")
    configure_logging("warning")
    log.info("second_info")
    log.warning("second_warning")
""")


def test_a_later_configure_logging_in_the_same_process_changes_the_level():
    env = {k: v for k, v in os.environ.items() if k != "CASECORE_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60,
                          check=True)
    assert "first_info" in done.stderr
    assert "second_warning" in done.stderr
    assert "second_info" not in done.stderr
