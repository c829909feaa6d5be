"""The bulk path (`handle_many`: many households saved per transaction) decides exactly as one command at a
time does — results, refusals in the middle of a batch, and the stored histories."""

from __future__ import annotations

import importlib.util
from datetime import date, timedelta
from itertools import islice
from pathlib import Path

from adapters.integration.intake import parse_line
from adapters.store.storage import bootstrap
from casecore.errors import CaseError
from casecore.household import public_state
from tests.builders import cmd, inclusion_path, register

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("gen_commands", ROOT / "scripts" / "gen_commands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATED = _generator().generate(400, seed=11)


def renamed(commands, prefix: str):
    return [c if isinstance(c, CaseError) else c.model_copy(update={"household_id": prefix + c.household_id})
            for c in commands]


def summary(outcome) -> tuple:
    return (outcome.ok, tuple(outcome.events), outcome.error and outcome.error.code,
            outcome.error and outcome.error.rule)


def histories(app, prefix: str, ids: list[str]) -> dict[str, list[tuple[int, str, dict]]]:
    """Each household's stored events as facts: version, topic and every field but the stream id and the
    recording time (the two runs store the same facts under different ids, a moment apart)."""
    out = {}
    for hid in ids:
        events = app.recorder.select_events(f"household/{prefix}{hid}")
        out[hid] = [(e.originator_version, e.topic,
                     {k: v for k, v in vars(app.mapper.to_domain_event(e)).items()
                      if k not in ("originator_id", "timestamp")})
                    for e in events]
    return out


def test_the_generated_county_gives_the_same_results_and_histories_one_by_one_and_in_batches(app):
    assert len(GENERATED) == 400
    one_by_one = [app.handle(c) for c in renamed(GENERATED, "A")]
    batched = list(app.handle_many(renamed(GENERATED, "B"), batch_size=64))
    assert [summary(o) for o in one_by_one] == [summary(o) for o in batched]
    refused = [i for i, o in enumerate(batched) if not o.ok]
    assert refused, "the generated commands include planted refusals"
    assert any(0 < i % 64 < 63 for i in refused), "some refusals sit in the middle of a batch"
    ids = sorted({c.household_id for c in GENERATED})
    assert histories(app, "A", ids) == histories(app, "B", ids)
    for hid in ids[:: max(1, len(ids) // 25)]:
        a, b = public_state(app.get_household("A" + hid)), public_state(app.get_household("B" + hid))
        assert {**a, "household_id": hid} == {**b, "household_id": hid}


def test_refusals_in_the_middle_of_a_batch_store_nothing_and_the_rest_of_the_batch_goes_in(app):
    d = date(2023, 3, 2)
    path = inclusion_path("H1", start=d)
    batch = [
        register("H1"),
        path[0],                                                                    # lead
        cmd("close_publicity", d, household_id="H1"),                              # refused: no notice open
        path[1],                                                                    # income
        parse_line('{"command": "verify_lead"}'),                                  # refused: malformed
        path[0],                                                                    # refused: same lead again
        path[2], path[3], path[4],                                                  # visit, application, notice
        cmd("close_publicity", d + timedelta(days=7), household_id="H1"),          # refused: fourth day
        register("H2"),
        cmd("sign_application", d, household_id="H2"),                             # refused: no procedure
        path[5],                                                                    # closed on the fifth day
        cmd("record_lead", d, household_id="H404", lead_id="x", source="cadre_screening"),  # refused: not found
    ]
    expected = [True, True, False, True, False, False, True, True, True, False, True, False, True, False]
    outcomes = list(app.handle_many(renamed(batch, "B"), batch_size=100))
    assert [o.ok for o in outcomes] == expected
    for o in outcomes:
        assert o.ok or o.error.code in ("validation_error", "invalid_transition", "policy_violation", "not_found")
    one_by_one = [app.handle(c) if not isinstance(c, CaseError) else None for c in renamed(batch, "A")]
    assert [summary(o) for o in outcomes if o.ok] == [summary(o) for o in one_by_one if o is not None and o.ok]
    assert histories(app, "A", ["H1", "H2"]) == histories(app, "B", ["H1", "H2"])
    assert app.get_household("BH1").step == "publicity_closed"


def test_every_batch_size_gives_the_same_stored_state(app):
    commands = GENERATED[:100]
    reference = [summary(app.handle(c)) for c in renamed(commands, "R-")]
    ids = sorted({c.household_id for c in commands})
    for batch_size in (1, 7, 1000):
        prefix = f"S{batch_size}-"
        outcomes = list(app.handle_many(renamed(commands, prefix), batch_size=batch_size))
        assert [summary(o) for o in outcomes] == reference, batch_size
        assert histories(app, prefix, ids) == histories(app, "R-", ids), batch_size


def test_a_household_changed_by_another_writer_between_batches_is_decided_on_its_fresh_state(db_url):
    d = date(2023, 3, 2)
    path = inclusion_path("H1", start=d)
    bulk, clerk = bootstrap(db_url), bootstrap(db_url)
    try:
        assert all(o.ok for o in bulk.handle_many([register("H1"), path[0], path[1]]))   # a first call
        assert clerk.handle(path[2]).ok                                                    # someone else verifies
        [signed] = bulk.handle_many([path[3]])                                             # then the application
        assert signed.ok, signed.as_dict()
        assert clerk.get_household("H1").step == "applied"
    finally:
        bulk.close()
        clerk.close()


def test_a_command_accepted_on_a_copy_another_writer_moved_on_is_decided_again_on_the_stored_state(db_url):
    d = date(2023, 3, 2)
    path = inclusion_path("H1", start=d)
    bulk, clerk = bootstrap(db_url), bootstrap(db_url)
    try:
        assert all(o.ok for o in bulk.handle_many([register("H1"), *path[:3]]))          # a first call
        assert clerk.handle(path[3]).ok                                                   # someone signs
        second = cmd("assess_income", d + timedelta(days=3), household_id="H1", period_start="2022-03-01",
                     period_end="2023-02-28", net_income="9000")
        [assessed, opened] = bulk.handle_many([second, path[4]])   # both fit the fresh state, not the cached copy
        assert assessed.ok and opened.ok, (assessed.as_dict(), opened.as_dict())
        h = clerk.get_household("H1")
        assert (h.step, len(h.incomes)) == ("in_publicity", 2)
    finally:
        bulk.close()
        clerk.close()


def test_a_household_another_writer_moved_between_two_batches_of_one_call_is_decided_on_its_fresh_state(db_url):
    d = date(2023, 3, 2)
    path = inclusion_path("H1", start=d)
    bulk, clerk = bootstrap(db_url), bootstrap(db_url)
    try:
        outcomes = bulk.handle_many([register("H1"), path[0], path[1], path[3]], batch_size=3)
        assert all(o.ok for o in islice(outcomes, 3))     # the first batch is saved; its copy of H1 is kept
        assert clerk.handle(path[2]).ok                   # someone else verifies before the second batch
        [signed] = outcomes                               # refused on the kept copy, so decided again on the store
        assert signed.ok, signed.as_dict()
        assert clerk.get_household("H1").step == "applied"
    finally:
        bulk.close()
        clerk.close()


def test_a_command_accepted_on_a_kept_copy_another_writer_moved_on_is_decided_again_within_one_call(db_url):
    d = date(2023, 3, 2)
    path = inclusion_path("H1", start=d)
    bulk, clerk = bootstrap(db_url), bootstrap(db_url)
    try:
        second = cmd("assess_income", d + timedelta(days=3), household_id="H1", period_start="2022-03-01",
                     period_end="2023-02-28", net_income="9000")
        outcomes = bulk.handle_many([register("H1"), *path[:3], second, path[4]], batch_size=4)
        assert all(o.ok for o in islice(outcomes, 4))     # the first batch is saved; its copy of H1 is kept
        assert clerk.handle(path[3]).ok                   # someone signs before the second batch
        [assessed, opened] = outcomes                     # the batch conflicts and is decided again on the store
        assert assessed.ok and opened.ok, (assessed.as_dict(), opened.as_dict())
        h = clerk.get_household("H1")
        assert (h.step, len(h.incomes)) == ("in_publicity", 2)
    finally:
        bulk.close()
        clerk.close()
