"""Encryption at rest covers the read models too: with `CASECORE_CIPHER_KEY` set, no name, ID number, birth
date or free text of a person is readable anywhere in the store — the SQLite file (and its WAL) or any
PostgreSQL table — while the CLI and the HTTP service still show them to a reader entitled to them."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import orjson
import psycopg
import pytest
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.readside.readmodels import read_models
from adapters.store.storage import bootstrap, resolve_store
from casecore.values import make_person_id
from projections.sealing import PREFIX, Sealer
from tests.builders import cmd, inclusion_path, run
from tests.problems import assign, raise_

KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # base64 of 32 bytes, for tests only
HEAD_ID = make_person_id("522631", date(1979, 8, 17), 31)
CHILD_ID = make_person_id("522631", date(2011, 4, 5), 32)
SECRETS = {
    "a member's name": "韦国强",
    "a child's name": "韦小妹",
    "an ID number": HEAD_ID,
    "a child's ID number": CHILD_ID,
    "a birth date": "1979-08-17",
    "a cadre's name": "吴建华",
    "a note": "患尿毒症需长期透析",
    "a lead's detail": "邻居反映家中老人重病",
    "a responsible person's name": "杨责任",
    "a rectification's action": "已为韦家办理医疗救助",
}
MEMBERS = [
    {"person_id": HEAD_ID, "name": "韦国强", "relation": "户主", "birth_date": "1979-08-17", "labour": "full"},
    {"person_id": CHILD_ID, "name": "韦小妹", "relation": "之女", "birth_date": "2011-04-05", "labour": "none",
     "in_school": True},
]
PARTIES = {"responsible": {"unit": "522631101000", "person": "t-cadre-1", "name": "杨责任"},
           "supervisor": {"unit": "522631000000", "person": "c-cadre-1", "name": "县级监督人"}}


def history(app) -> None:
    run(app, [
        cmd("register_household", date(2023, 3, 1), household_id="H1", division_code="522631101001",
            household_type="general", members=MEMBERS, note="患尿毒症需长期透析"),
        cmd("record_lead", date(2023, 3, 2), household_id="H1", lead_id="H1-L1", source="social_supervision",
            risk_types=["illness"], detail="邻居反映家中老人重病"),
        *inclusion_path("H1")[1:],
        cmd("assign_cadre", date(2023, 3, 14), household_id="H1",
            cadre={"id": "c-9", "name": "吴建华", "unit": "522631101000"}),
        cmd("assess_guarantees", date(2023, 3, 15), household_id="H1", housing="safe", drinking_water_safe=True,
            children_out_of_school=[CHILD_ID], members_without_medical_insurance=[]),
        raise_("P1", household_id="H1"),
        assign("P1", responsible=PARTIES["responsible"], supervisor=PARTIES["supervisor"]),
        cmd("record_rectification", date(2022, 4, 20), {"id": "t-work-3", "name": "乡镇干部丙", "role": "township",
                                                        "unit": "522631101000"},
            problem_id="P1", action="已为韦家办理医疗救助"),
    ])


@pytest.fixture
def keyed(db_url, monkeypatch):
    monkeypatch.setenv("CASECORE_CIPHER_KEY", KEY)
    app = bootstrap(db_url)
    try:
        history(app)
        with read_models(app) as rm:
            rm.catch_up()
    finally:
        app.close()
    return db_url


def stored_text(db_url: str) -> str:
    """Everything the store holds, as an operator or a thief with the files would read it."""
    store = resolve_store(db_url)
    if store.kind == "sqlite":
        path = Path(store.env["SQLITE_DBNAME"])
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        return raw.decode("utf-8", errors="replace")
    schema = store.env["POSTGRES_SCHEMA"]
    out = []
    with psycopg.connect(db_url.split("?")[0], autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))]
        assert len(tables) > 10
        for t in tables:
            out += [row for (row,) in conn.execute(f'SELECT t::text FROM "{schema}"."{t}" t')]
    return "\n".join(out)


def test_with_a_key_no_name_id_number_or_free_text_of_a_person_is_readable_in_the_store(keyed):
    text = stored_text(keyed)
    assert [what for what, secret in SECRETS.items() if secret in text] == []
    assert PREFIX in text  # the read models hold them sealed


def test_without_a_key_the_read_models_hold_them_in_clear(db_url):
    app = bootstrap(db_url)
    try:
        history(app)
        with read_models(app) as rm:
            rm.catch_up()
    finally:
        app.close()
    text = stored_text(db_url)
    assert SECRETS["a member's name"] in text and SECRETS["a cadre's name"] in text and PREFIX not in text


def test_with_the_key_the_cli_shows_an_entitled_reader_every_value(keyed, monkeypatch):
    runner = CliRunner()
    ledger = runner.invoke(cli, ["ledger", "--json", "--as-of", "2023-12-31", "--db", keyed])
    assert ledger.exit_code == 0, ledger.output
    assert "杨责任" in ledger.stdout and "已为韦家办理医疗救助" in ledger.stdout
    roster = runner.invoke(cli, ["roster", "--json", "--db", keyed])
    assert roster.exit_code == 0 and orjson.loads(roster.stdout.splitlines()[0])["cadre_name"] == "吴建华"
    export = runner.invoke(cli, ["export", "roster", "--month", "2023-03", "--entitled", "--db", keyed])
    row = orjson.loads(export.stdout)[0]
    assert (row["head_person_id"], row["head_name"]) == (HEAD_ID, "韦国强")


def test_with_the_key_the_http_service_shows_an_entitled_reader_every_value(keyed, tmp_path):
    from tests.http.support import auth, client_for

    with client_for(keyed, tmp_path) as client:
        timeline = client.get("/households/H1/timeline", headers=auth("tok-county-1")).json()
        text = json.dumps(timeline, ensure_ascii=False)
        for secret in ("韦国强", HEAD_ID, "1979-08-17", "患尿毒症需长期透析", "邻居反映家中老人重病"):
            assert secret in text, secret
        masked = json.dumps(client.get("/households/H1/timeline", headers=auth("tok-department-qdn")).json(),
                            ensure_ascii=False)
        assert "韦国强" not in masked and HEAD_ID not in masked


def test_a_sealed_value_is_the_same_for_the_same_text_and_opens_only_with_its_key():
    sealer, other = Sealer.from_base64(KEY), Sealer(b"\x01" * 32)
    assert sealer.seal(HEAD_ID) == sealer.seal(HEAD_ID) != sealer.seal(CHILD_ID)
    assert sealer.open(sealer.seal("韦国强")) == "韦国强" and sealer.open("clear text") == "clear text"
    with pytest.raises(ValueError):
        other.open(sealer.seal("韦国强"))


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.text(min_size=1))
def test_any_text_sealed_opens_to_itself_and_seals_the_same_way_twice(text):
    sealer = Sealer.from_base64(KEY)
    stored = sealer.seal(text)
    assert stored.startswith(PREFIX) and sealer.open(stored) == text and sealer.seal(text) == stored
    assert text not in stored[len(PREFIX):] or len(text) < 4
