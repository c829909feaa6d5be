"""Hardening of the HTTP service: a tokens file that would give a token more reach than its post is refused at
start, every request is logged with the caller's actor (never the token, never personal data), and the store's
engines never print SQL parameters (they carry ID numbers)."""

from __future__ import annotations

import json

import pytest

from adapters.http import Settings, TokenFileError, create_app
from adapters.http.auth import TokenBook


def _book(text: str, tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text(text, encoding="utf-8")
    return TokenBook.from_file(path)


@pytest.mark.parametrize(
    "entry",
    [
        {"id": "v", "role": "village", "unit": "52"},                # a village token reaching the province
        {"id": "v", "role": "village", "unit": "522631101000"},      # a village token on a township's code
        {"id": "t", "role": "township", "unit": "522631000000"},     # a township token on a county's code
        {"id": "t", "role": "township", "unit": "522631101001"},     # a township token on a village's code
        {"id": "c", "role": "county", "unit": "520000000000"},       # a county token on the province's code
        {"id": "c", "role": "county", "unit": "5226"},
        {"id": "v", "role": "village", "unit": "某村委会"},            # an area post without a division code
    ],
)
def test_a_token_whose_role_and_unit_disagree_is_refused_at_start(tmp_path, entry):
    with pytest.raises(TokenFileError, match="角色"):
        _book(json.dumps({"a-long-token": entry}), tmp_path)


@pytest.mark.parametrize(
    "entry",
    [
        {"id": "v", "role": "village", "unit": "522631101001"},
        {"id": "t", "role": "township", "unit": "522631101000"},
        {"id": "t", "role": "township", "unit": "522631101"},
        {"id": "c", "role": "county", "unit": "522631000000"},
        {"id": "c", "role": "county", "unit": "522631"},
        {"id": "i", "role": "inspector", "unit": "522631000000"},
    ],
)
def test_a_token_whose_unit_is_its_posts_division_is_accepted(tmp_path, entry):
    assert len(_book(json.dumps({"a-long-token": entry}), tmp_path)) == 1


@pytest.mark.parametrize("role", ["department", "inspector"])
def test_a_department_or_inspector_token_with_an_empty_scope_is_refused(tmp_path, role):
    entry = {"id": "x", "role": role, "unit": "黔东南州医保局", "scope": ""}
    with pytest.raises(TokenFileError, match="scope"):
        _book(json.dumps({"a-long-token": entry}), tmp_path)


def test_a_tokens_file_with_a_token_listed_twice_is_refused(tmp_path):
    text = ('{"a-long-token": {"id": "v1", "role": "village", "unit": "522631101001"},'
            ' "a-long-token": {"id": "c1", "role": "county", "unit": "522631000000"}}')
    with pytest.raises(TokenFileError, match="重复"):
        _book(text, tmp_path)


def test_a_tokens_entry_with_a_field_given_twice_is_refused(tmp_path):
    text = '{"a-long-token": {"id": "v1", "role": "village", "unit": "522631101001", "role": "county"}}'
    with pytest.raises(TokenFileError, match="重复"):
        _book(text, tmp_path)


def test_the_service_refuses_to_start_on_a_tokens_file_with_duplicate_keys(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text('{"a-long-token": {"id": "v1", "role": "village", "unit": "522631101001"},'
                    ' "a-long-token": {"id": "a", "role": "auditor", "unit": "审计厅"}}', encoding="utf-8")
    with pytest.raises(TokenFileError):
        create_app(Settings(db=str(tmp_path / "db"), tokens_file=path))


ID_NUMBER = "52263119800102001X"


def test_a_failing_statement_on_the_read_models_does_not_print_its_parameters(app):
    import sqlalchemy as sa

    from adapters.readside.readmodels import engine_for, store_of

    engine = engine_for(store_of(app))
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError) as caught:
            conn.execute(sa.text("SELECT no_such_column FROM no_such_table WHERE x = :pid"), {"pid": ID_NUMBER})
    finally:
        engine.dispose()
    assert ID_NUMBER not in str(caught.value)
    assert "hidden" in str(caught.value)
