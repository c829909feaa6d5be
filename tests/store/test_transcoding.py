"""The orjson transcoder writes the library JSON transcoder's format: every event type of a lived-through
county decodes the same with both, encodes to the same bytes, and a store written by the old transcoder is
read unchanged by the new one."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest
from eventsourcing.persistence import JSONTranscoder

from adapters.demo import DemoContext, stages
from adapters.store.storage import bootstrap
from casecore.application import CaseManagement
from casecore.events import EVENT_TYPES
from casecore.household import public_state
from casecore.transcoding import OrjsonTranscoder
from tests.builders import inclusion_path, register, run


def _transcoders(app: CaseManagement) -> tuple[OrjsonTranscoder, JSONTranscoder]:
    fast, plain = OrjsonTranscoder(), JSONTranscoder()
    app.register_transcodings(fast)
    app.register_transcodings(plain)
    return fast, plain


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> CaseManagement:
    """A demo county through every stage (registration to rectification and imported history)."""
    where: Path = tmp_path_factory.mktemp("county")
    app = bootstrap(str(where / "county.db"))
    ctx = DemoContext(app=app, rng=random.Random(11), households=80, output_dir=where / "out")
    for stage in stages():
        stage.run(ctx)
    _import_repairs(app)
    yield app
    app.close()


def _import_repairs(app: CaseManagement) -> None:
    """The national import's repair facts, which the demo has no occasion for: a name an older import left
    empty (member_name_corrected), an export without a 帮扶责任人 column (cadre_unknown)."""
    from dataclasses import replace

    from adapters.importers.national_rows import assemble, read_row
    from adapters.importers.national_writer import household_rows, person
    from casecore import legacy
    from tests.readside.test_inspect_rules import export_household

    raw = household_rows(export_household("TRANSCODING-1"), [person(901, name="杨名")])
    rows = [read_row(4, r, "522631101001") for r in raw]
    source = legacy.Source("t.xlsx", date(2023, 6, 30))
    app.import_facts([assemble([replace(r, name="") for r in rows])], source)
    app.import_facts([assemble(rows, has_cadre_column=False)], source)


def _stored(app: CaseManagement):
    return app.recorder.select_notifications(start=1, limit=1_000_000)


def test_the_app_stores_events_with_the_orjson_transcoder(county):
    assert isinstance(county.mapper.transcoder, OrjsonTranscoder)


def test_every_event_type_decodes_the_same_with_both_transcoders_and_encodes_to_the_same_bytes(county):
    fast, plain = _transcoders(county)
    seen = set()
    for n in _stored(county):
        old, new = plain.decode(n.state), fast.decode(n.state)
        assert new == old, n.topic
        assert fast.encode(new) == plain.encode(old) == n.state
        cls = type(county.mapper.to_domain_event(n))
        seen.add((cls.AGGREGATE, cls.TYPE))
    every = {(aggregate, name) for aggregate, types in EVENT_TYPES.items() for name in types}
    assert every <= seen, f"event types the county did not produce: {sorted(every - seen)}"


def test_typed_values_come_back_typed(county):
    fast, _ = _transcoders(county)
    from datetime import date, datetime
    from decimal import Decimal

    for n in _stored(county):
        state = fast.decode(n.state)
        assert isinstance(state["on"], date) and isinstance(state["timestamp"], datetime)
        if n.topic.endswith("income_assessed.v1"):
            assert isinstance(state["net_income"], Decimal) and isinstance(state["period_start"], date)
            return
    pytest.fail("no income assessment stored")


def test_a_store_written_by_the_library_json_transcoder_is_read_unchanged(tmp_path):
    db = str(tmp_path / "old.db")
    old = CaseManagement(env=bootstrap(db).env | {"TRANSCODER_TOPIC": "eventsourcing.persistence:JSONTranscoder"})
    assert type(old.mapper.transcoder) is JSONTranscoder
    run(old, [register("H1"), *inclusion_path("H1")])
    written = public_state(old.get_household("H1"))
    old.close()
    new = bootstrap(db)
    assert isinstance(new.mapper.transcoder, OrjsonTranscoder)
    assert public_state(new.get_household("H1")) == written
    new.close()
