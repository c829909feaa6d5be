"""The bulk path loads a batch's streams with one query: streams stored earlier (and not cached) are decided
on their stored history, unknown ones are refused as not found, and re-registering is refused — the same
outcomes as one command at a time."""

from __future__ import annotations

from datetime import date

from adapters.store.storage import bootstrap
from tests.builders import cmd, inclusion_path, register


def test_a_batch_decides_on_stored_streams_loaded_together_and_refuses_unknown_and_repeated_ones(app):
    first = [register("H1"), *inclusion_path("H1"), register("H2")]
    assert all(o.ok for o in app.handle_many(first, batch_size=100))
    assign = cmd("assign_cadre", date(2023, 4, 20), household_id="H1",
                 cadre={"id": "c-1", "name": "帮扶干部", "unit": "522631101201"})
    batch = [register("H2"), assign, cmd("sign_application", date(2023, 4, 20), household_id="NOPE"),
             register("H3"), *inclusion_path("H3")]
    outcomes = list(app.handle_many(batch, batch_size=100))   # a new call keeps nothing: all from the store
    assert [o.ok for o in outcomes[:4]] == [False, True, False, True]
    assert outcomes[0].error.code == "invalid_transition"
    assert outcomes[1].events == ["cadre_assigned"]
    assert outcomes[2].error.code == "not_found"
    assert all(o.ok for o in outcomes[4:])
    assert app.get_household("H1").cadre["id"] == "c-1"
    assert app.get_household("H3").stage == "monitored"


def test_the_bulk_path_reads_a_store_another_process_wrote(db_url):
    writer, reader = bootstrap(db_url), bootstrap(db_url)
    try:
        assert all(o.ok for o in writer.handle_many([register("H1"), *inclusion_path("H1")], batch_size=50))
        again = list(reader.handle_many([register("H1"), cmd("assign_cadre", date(2023, 4, 20), household_id="H1",
                                                             cadre={"id": "c-2", "name": "干部", "unit": "522631"})]))
        assert not again[0].ok and again[1].ok
    finally:
        writer.close()
        reader.close()
