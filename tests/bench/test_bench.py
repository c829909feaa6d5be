"""The benchmark's province and its one-run measurement: the commands are the engine's to accept, every key
is printed, and the store it measured is cleaned up."""

from __future__ import annotations

import json
from collections import Counter

import psycopg
import pytest
from typer.testing import CliRunner

from adapters.cli import app as cli
from benchmarks.bench import TARGETS, meets, run
from benchmarks.province import counties
from tests.services import PG_URL, postgres_reason, require

KEYS = {"households", "events", "store", "floor_write_eps", "ingest_eps", "floor_read_eps", "rebuild_eps",
        "replay_p50_ms", "replay_p99_ms", "inspect_households_per_s", "peak_rss_mb", "ingest_ratio",
        "rebuild_ratio", "read_roster_village_p95_ms", "read_findings_county_page_p95_ms", "read_timeline_p95_ms",
        "findings_store_seconds", "rebuild_copy_eps", "rebuild_ratio_copy"}


def test_a_province_is_the_same_for_the_same_seed_and_spans_the_whole_case():
    first = [c for _, _, cmds in counties(300, seed=3) for c in cmds]
    again = [c for _, _, cmds in counties(300, seed=3) for c in cmds]
    assert first == again
    kinds = Counter(c["command"] for c in first)
    for command in ("register_household", "record_lead", "verify_lead", "close_publicity", "enter_system",
                    "plan_measure", "implement_measure", "nominate_exit", "mark_risk_eliminated", "raise_problem",
                    "sign_off", "assess_income", "assess_guarantees"):
        assert kinds[command] > 0, command
    households = {c["household_id"] for c in first if c["command"] == "register_household"}
    assert len(households) == 300


def test_the_bench_stores_every_command_of_the_province_and_prints_every_key(tmp_path):
    result = run(120, workdir=tmp_path, replay_samples=20)
    assert KEYS <= set(result)
    assert result["store"] == "sqlite"
    assert result["refused"] == 0, result["refusals"]
    assert 18 <= result["events_per_household"] <= 32
    assert result["events"] == result["commands"]   # every command stores one event
    assert result["replay_households"] > 0 and 45 <= result["replay_events_mean"] <= 55
    assert set(result["fold_seconds"]) >= {"roster", "timeline", "casefacts"}
    assert sum(result["fold_seconds"].values()) <= result["rebuild_seconds"]
    assert result["ingest_ratio"] == pytest.approx(result["ingest_eps"] / result["floor_write_eps"], abs=1e-3)
    assert result["rebuild_ratio"] == pytest.approx(result["rebuild_eps"] / result["floor_read_eps"], abs=1e-3)
    assert list(tmp_path.iterdir()) == []   # the temporary store is gone


def test_the_bench_refuses_to_measure_into_an_existing_database(tmp_path):
    db = tmp_path / "casecore.db"
    db.write_bytes(b"not empty")
    with pytest.raises(FileExistsError):
        run(20, db=str(db))


def test_casecore_bench_json_prints_one_object(tmp_path):
    out = CliRunner().invoke(cli, ["bench", "--households", "40", "--json", "--workdir", str(tmp_path),
                                   "--rebuild-jobs", "2"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert KEYS <= set(result)
    assert result["households"] == 40
    # the rebuild measured again in two processes, over every projection
    assert result["rebuild_jobs"] == 2 and result["rebuild_parallel_eps"] > 0
    assert sorted(n for g in result["rebuild_parallel_groups"] for n in g) == sorted(result["fold_seconds"])
    assert result["rebuild_parallel_ratio"] == pytest.approx(
        result["rebuild_parallel_eps"] / result["floor_read_eps"], abs=1e-3)
    assert result["snapshot_interval"] == 20 and result["replay_events_read_mean"] < result["replay_events_mean"]


def test_targets_compare_the_right_way():
    assert meets("replay_p50_ms", 0.9) is True and meets("replay_p50_ms", 1.1) is False
    assert meets("ingest_ratio", 0.5) is True and meets("ingest_ratio", 0.49) is False
    assert meets("events", 10) is None
    assert meets("read_timeline_p95_ms", 20.0) is True and meets("read_timeline_p95_ms", 20.1) is False
    assert set(TARGETS) == {"ingest_ratio", "rebuild_ratio", "rebuild_ratio_copy", "replay_p50_ms",
                            "inspect_households_per_s",
                            "read_roster_village_p95_ms", "read_findings_county_page_p95_ms", "read_timeline_p95_ms"}


@pytest.mark.postgres
def test_the_bench_runs_on_postgres_in_a_schema_of_its_own_and_drops_it():
    require(postgres_reason())
    result = run(60, db=PG_URL, replay_samples=10)
    assert KEYS <= set(result)
    assert result["store"] == "postgres" and result["refused"] == 0
    # only this run's own schema is looked at: another process may create or drop bench schemas meanwhile
    schema = result["schema"]
    assert schema.startswith("bench_")
    with psycopg.connect(PG_URL) as conn:
        left = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()[0]
    assert left == 0
