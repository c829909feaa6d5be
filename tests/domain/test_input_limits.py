"""Input limits (casecore/limits.py): what a command may carry is bounded, and anything beyond is one
`validation_error` naming the field — never stored, so no read model can be stopped by it."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.integration.intake import parse_line, parse_object
from casecore import limits as lim
from casecore.commands import json_schema
from casecore.errors import CaseError
from tests.builders import VILLAGE, VILLAGE_CODE, person

BASE = {"command": "close_publicity", "household_id": "H1", "on": "2023-03-10", "actor": VILLAGE}
INCOME = {**BASE, "command": "assess_income", "period_start": "2022-03-01", "period_end": "2023-02-28",
          "net_income": "8000", "rigid_expenditure": "0"}


def refusal(data: dict) -> str:
    out = parse_object(data)
    assert isinstance(out, CaseError), f"accepted: {data}"
    assert out.code == "validation_error"
    return out.message


@pytest.mark.parametrize(("field", "value", "named"), [
    ("command_id", "k" * 200, "command_id"),
    ("household_id", "H" * 100, "household_id"),
    ("note", "很长" * 5000, "note"),
    ("note", "带\x00NUL", "note"),
    ("note", "回车\r换行", "note"),
    ("evidence", ["e\x00"], "evidence.0"),
    ("evidence", ["x"] * 51, "evidence"),
    ("actor", {**VILLAGE, "id": "a" * 100}, "actor.id"),
    ("actor", {**VILLAGE, "name": "名" * 65}, "actor.name"),
    ("actor", {**VILLAGE, "unit": "u" * 129}, "actor.unit"),
    ("actor", {**VILLAGE, "id": "tab\tid"}, "actor.id"),
    ("on", "1999-12-31", "on"),
    ("on", "2100-01-01", "on"),
])
def test_a_value_beyond_the_limits_is_a_validation_error_naming_its_field(field, value, named):
    message = refusal({**BASE, field: value})
    assert f"{named}:" in message


def test_free_text_keeps_newlines_tabs_and_chinese_up_to_its_limit():
    text = ("第一行\t说明\n" * 1000)[: lim.FREE_TEXT_MAX]
    cmd = parse_object({**BASE, "note": text})
    assert not isinstance(cmd, CaseError)
    assert cmd.note == text


@pytest.mark.parametrize("field", ["name", "relation"])
def test_a_member_name_or_relation_beyond_its_column_is_refused(field):
    member = {**person(1), field: "名" * 100}
    message = refusal({**BASE, "command": "register_household", "division_code": VILLAGE_CODE,
                       "household_type": "general", "members": [member]})
    assert f"members.0.{field}:" in message


def test_a_lead_id_and_resettlement_site_beyond_their_columns_are_refused():
    lead = {**BASE, "command": "record_lead", "lead_id": "L" * 100, "source": "cadre_screening"}
    assert "lead_id:" in refusal(lead)
    site = {**BASE, "command": "register_household", "division_code": VILLAGE_CODE, "household_type": "general",
            "members": [person(1)], "relocated": True, "resettlement_site": "安置点" * 70}
    assert "resettlement_site:" in refusal(site)


@pytest.mark.parametrize("amount", ["10000000000000", "1e25", "1e26", "1e999999", "-1e26", "NaN", "Infinity",
                                    "-Infinity", "sNaN", "10000000000", "1.001", "12.345"])
def test_money_out_of_range_or_finer_than_a_cent_is_refused_naming_the_field(amount):
    assert "net_income:" in refusal({**INCOME, "net_income": amount})


@pytest.mark.parametrize("amount", ["9999999999.99", "-9999999999.99", "0.01", "1.10", "0", 12])
def test_money_within_the_range_to_the_cent_is_accepted_unchanged(amount):
    cmd = parse_object({**INCOME, "net_income": amount})
    assert not isinstance(cmd, CaseError), cmd
    assert str(cmd.net_income) == str(amount)


def test_a_json_line_with_money_of_1e26_is_one_validation_error_not_a_crash():
    line = ('{"command":"assess_income","household_id":"H1","on":"2023-03-10","actor":{"id":"v","role":"village",'
            '"unit":"522631101001"},"period_start":"2022-03-01","period_end":"2023-02-28","net_income":1e26}')
    out = parse_line(line)
    assert isinstance(out, CaseError) and out.code == "validation_error"


def test_the_json_schema_states_the_limits():
    defs = json_schema()["$defs"]
    actor = defs["Actor"]["properties"]
    assert actor["id"]["maxLength"] == lim.ID_MAX
    assert actor["id"]["pattern"] == lim.SHORT_TEXT_PATTERN
    close = defs["ClosePublicity"]["properties"]
    note = next(s for s in close["note"]["anyOf"] if s.get("type") == "string")
    assert note["maxLength"] == lim.FREE_TEXT_MAX and note["pattern"] == lim.FREE_TEXT_PATTERN
    assert close["on"]["formatMinimum"] == lim.DATE_MIN.isoformat()
    money = defs["AssessIncome"]["properties"]["net_income"]["anyOf"]
    assert {"type": "string", "pattern": lim.MONEY_PATTERN} in money
    assert defs["RecordLead"]["properties"]["detail"]["maxLength"] == lim.FREE_TEXT_MAX


def test_the_money_pattern_of_the_schema_agrees_with_the_validation():
    import re

    for text, ok in (("9999999999.99", True), ("10000000000", False), ("1.234", False), ("-0.5", True)):
        assert bool(re.match(lim.MONEY_PATTERN, text)) is ok
        assert (not isinstance(parse_object({**INCOME, "net_income": text}), CaseError)) is ok


def test_the_latest_business_date_is_the_recording_day_plus_the_policys_days():
    assert lim.latest_business_date(date(2023, 3, 10), 1) == date(2023, 3, 11)
