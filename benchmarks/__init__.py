"""The benchmark kit: runs from a source checkout (`python -m benchmarks`, `casecore bench`); not part of the
installed package."""
