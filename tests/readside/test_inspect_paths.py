"""The inspector's faster paths find what the rules' plain definitions find. On generated case facts (a share of
every pattern the rules look for, `benchmarks/bench_inspect.py`), as of dates across the histories and for the
whole province or one division, a run of every rule equals, finding by finding (key, severity, sentence,
evidence, problem ids) and in order, the run of a reference inspector that derives the same things the plain
way: the households outside monitoring with their newest checks and last elimination joined from per-household
maxima over all rows (SQLite probes them for those households only; PostgreSQL joins the maxima too), the
cycles and eliminations with an open guarantee check without first narrowing to households with some open
check, "included by the date" answered through its index, the signers of two levels of one procedure grouped
by signer (the inspector has each signature that is not a verification look for its signer's other levels),
and the needs without a fitting measure as a union (the inspector keeps a need named twice once as it reads
them). Signatures of the inclusions, a few by one signer on two levels, are added to the generated facts here.
On SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.bench_inspect import generate
from casecore.policy import default_policies
from casecore.values import SignLevel
from projections import casefacts as cf
from projections.queries.inspector import Inspector

POLICIES = default_policies()


class Reference(Inspector):
    """The rules' derivations written the plain way."""

    @staticmethod
    def unindexed(ordinal_col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return ordinal_col

    def some_open_check(self, household_id: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        return sa.true()

    def _latest(self, table: sa.Table) -> sa.Subquery:
        """Per household, the newest assessment's `seq` made on or before the as-of date."""
        t = table.alias(f"{table.name}_latest")
        return (sa.select(t.c.household_id, sa.func.max(t.c.seq).label("latest"))
                .where(t.c.seq < self.seq_from(self.D + 1)).group_by(t.c.household_id)
                .subquery(f"{table.name}_seq_latest"))

    def _outside(self) -> sa.Subquery:
        """The per-household maxima joined (SQLite's inspector probes them, PostgreSQL's reads the newest rows)."""
        h = cf.households.alias("h")
        le, li, lg = self._last_elimination(), self._latest(cf.incomes), self._latest(cf.guarantees)
        return (sa.select(h.c.household_id, h.c.division_code, h.c.cycle, li.c.latest.label("li"),
                          lg.c.latest.label("lg"), sa.func.coalesce(le.c.ord, 0).label("after"))
                .select_from(h)
                .outerjoin(le, le.c.household_id == h.c.household_id)
                .outerjoin(li, li.c.household_id == h.c.household_id)
                .outerjoin(lg, lg.c.household_id == h.c.household_id)
                .where(self.in_division(h.c.division_code), self._not_monitored(h)).subquery("hs"))

    @staticmethod
    def _all_needs(*needs: sa.Select) -> sa.Subquery:
        return sa.union(*needs).subquery("n")

    def signed_two_levels(self, s: sa.Table) -> sa.ColumnElement[bool]:
        t = cf.signatures.alias("ts")
        signer = [t.c[n] for n in self.SIGNER]
        return sa.tuple_(*(s.c[n] for n in self.SIGNER)).in_(
            sa.select(*signer).where(t.c.on_ord <= self.D).group_by(*signer)
            .having(sa.func.count(sa.distinct(t.c.level)) > 1))

    def _open_checks(self) -> sa.CTE:
        c, g2 = cf.cycles.alias("oc"), cf.guarantees.alias("g2")
        latest = self._latest(cf.guarantees)
        return (sa.select(c.c.key, g2.c.housing, g2.c.drinking_water_safe, g2.c.children_out_of_school,
                          g2.c.members_without_medical_insurance)
                .select_from(latest)
                .join(g2, sa.and_(g2.c.household_id == latest.c.household_id, g2.c.seq == latest.c.latest))
                .join(c, c.c.household_id == latest.c.household_id)
                .where(g2.c.open_items > 0, self.assisted_cycles(c), self.monitored(c)).cte("og"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def facts(request) -> Iterator[sa.Engine]:
    """An engine whose database holds the case-facts tables (SQLite in memory, or a PostgreSQL schema)."""
    if request.param == "sqlite":
        engine = sa.create_engine("sqlite://")
    else:
        url = request.getfixturevalue("pg_url")
        base, schema = url.split("?schema=")
        engine = sa.create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1),
                                  connect_args={"options": f"-csearch_path={schema}"})
    with engine.begin() as conn:
        cf.metadata.create_all(conn)
    try:
        yield engine
    finally:
        engine.dispose()


def signatures(cycles: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """The three levels' signatures of each inclusion, a few by one signer on two levels, some repeated."""
    rng = random.Random(seed)
    out = []
    for c in cycles:
        if c["included_on"] is None:
            continue
        signers = [f"V{rng.randrange(40)}", f"T{rng.randrange(7)}", f"C{rng.randrange(3)}"]
        if rng.random() < 0.1:
            j, k = rng.sample(range(3), 2)
            signers[k] = signers[j]
        levels = [(level, actor, c["included_on"] - timedelta(days=rng.randint(0, 20)))
                  for level, actor in zip(SignLevel, signers, strict=True)]
        if rng.random() < 0.1:   # a level signed again, by its signer or another
            level, actor, on = rng.choice(levels)
            levels.append((level, rng.choice([actor, *signers]), on + timedelta(days=rng.randint(1, 60))))
        for n, (level, actor, on) in enumerate(levels):
            out.append({"key": f"{c['key']}#S{n}", "household_id": c["household_id"], "cycle": c["cycle"],
                        "division_code": c["division_code"], "procedure": "inclusion", "instance": 0,
                        "level": level.value, "actor_id": actor, "on": on, "on_ord": on.toordinal()})
    return out


def seen(findings: list[Any]) -> list[tuple[Any, ...]]:
    return [(f.key, f.severity, f.division_code, f.problem_id, f.raised_problem, f.detail, f.evidence)
            for f in findings]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), households=st.integers(20, 80),
       as_of=st.dates(date(2021, 9, 1), date(2024, 6, 30)), division=st.sampled_from([None, "5226", "522603"]))
def test_the_faster_paths_find_what_the_plain_definitions_find(facts, seed, households, as_of, division):
    rows = generate(households, seed)
    rows[cf.signatures] = signatures(rows[cf.cycles], seed)
    with facts.begin() as conn:
        for table in reversed(cf.metadata.sorted_tables):
            conn.execute(table.delete())
        for table in cf.metadata.sorted_tables:
            if rows[table]:
                conn.execute(table.insert(), rows[table])
    with facts.connect() as conn:
        fast = Inspector(conn, POLICIES, as_of, division).run()
        plain = Reference(conn, POLICIES, as_of, division).run()
    assert seen(fast) == seen(plain)


def test_the_reference_is_not_the_inspector():
    """The comparison above compares two derivations, not one with itself."""
    for name in ("unindexed", "some_open_check", "_outside", "_open_checks", "signed_two_levels", "_all_needs"):
        assert getattr(Reference, name) is not getattr(Inspector, name)
