"""Value rules a cadre's input is checked against: ID numbers, division codes, money, income windows."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casecore.values import (
    Category,
    HouseholdType,
    LeadSource,
    RiskType,
    Stage,
    add_months,
    check_division_code,
    check_person_id,
    id_birth_date,
    id_check_digit,
    make_person_id,
    month_window,
    to_money,
)


def test_a_published_sample_id_number_has_the_check_digit_the_standard_gives():
    # GB 11643's worked example: 11010519491231002 → check character X
    assert id_check_digit("11010519491231002") == "X"
    assert check_person_id("11010519491231002x") == "11010519491231002X"


@given(st.dates(min_value=date(1920, 1, 1), max_value=date(2023, 12, 31)), st.integers(0, 999))
def test_every_generated_id_number_validates_and_carries_its_birth_date(born, seq):
    pid = make_person_id("522631", born, seq)
    assert check_person_id(pid, born) == pid
    assert id_birth_date(pid) == born


@given(st.dates(min_value=date(1920, 1, 1), max_value=date(2023, 12, 31)), st.integers(0, 999), st.integers(1, 9))
def test_changing_any_single_digit_breaks_the_check(born, seq, bump):
    pid = make_person_id("522631", born, seq)
    pos = seq % 17
    wrong = pid[:pos] + str((int(pid[pos]) + bump) % 10) + pid[pos + 1:]
    with pytest.raises(ValueError):
        check_person_id(wrong)


def test_an_id_number_whose_birth_date_differs_from_the_stated_one_is_refused():
    pid = make_person_id("522631", date(1980, 1, 2), 1)
    with pytest.raises(ValueError, match="不一致"):
        check_person_id(pid, date(1980, 1, 3))


@pytest.mark.parametrize("bad", ["52263119800102001", "5226311980010200XX", "abcdefghijklmnopqr", ""])
def test_id_numbers_of_the_wrong_shape_are_refused(bad):
    with pytest.raises(ValueError):
        check_person_id(bad)


def test_an_id_number_with_an_impossible_birth_date_is_refused():
    first17 = "52263119800231001"  # 31 February
    with pytest.raises(ValueError, match="出生日期"):
        check_person_id(first17 + id_check_digit(first17))


def test_twelve_digit_division_codes_are_accepted():
    assert check_division_code("522631101001") == "522631101001"


@pytest.mark.parametrize("bad", ["522631", "52263110100A", "5226311010011", "002631101001", "520031101001",
                                 "522600101001"])
def test_division_codes_that_are_not_twelve_digits_down_to_a_real_county_are_refused(bad):
    with pytest.raises(ValueError):
        check_division_code(bad)


def test_money_is_exact_decimal_and_floats_are_refused():
    assert to_money("6700.10") == Decimal("6700.10")
    assert to_money(6700) == Decimal(6700)
    with pytest.raises(ValueError):
        to_money(6700.1)
    for bad in ("abc", "NaN", "Infinity"):
        with pytest.raises(ValueError):
            to_money(bad)


@pytest.mark.parametrize(
    ("procedure_on", "start", "end"),
    [
        (date(2023, 3, 15), date(2022, 3, 1), date(2023, 2, 28)),
        (date(2024, 3, 1), date(2023, 3, 1), date(2024, 2, 29)),
        (date(2023, 1, 31), date(2022, 1, 1), date(2022, 12, 31)),
    ],
)
def test_the_income_window_runs_from_the_first_of_the_month_a_year_earlier_to_the_end_of_last_month(
    procedure_on, start, end
):
    assert month_window(procedure_on) == (start, end)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)))
def test_the_income_window_is_always_twelve_whole_months_ending_before_the_procedure(day):
    start, end = month_window(day)
    assert start.day == 1
    assert end < day.replace(day=1) and end + timedelta(days=1) == day.replace(day=1)
    assert add_months(start, 12) == day.replace(day=1)


def test_adding_months_clamps_to_the_end_of_a_shorter_month():
    assert add_months(date(2023, 8, 31), 6) == date(2024, 2, 29)
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2023, 11, 15), 3) == date(2024, 2, 15)


@pytest.mark.parametrize("enum", [Stage, HouseholdType, Category, RiskType, LeadSource])
def test_every_enum_value_has_a_chinese_label(enum):
    for member in enum:
        assert member.label != member.value
        assert any("\u4e00" <= ch <= "\u9fff" for ch in member.label)


def test_every_error_code_and_every_policy_rule_the_domain_names_has_a_chinese_label():
    import re
    from pathlib import Path

    import casecore
    from casecore.errors import ERROR_CODES, ERROR_LABELS, RULE_LABELS

    assert set(ERROR_LABELS) == set(ERROR_CODES)
    source = "".join(p.read_text(encoding="utf-8") for p in Path(casecore.__file__).parent.glob("*.py"))
    named = set(re.findall(r'rule="([a-z_]+)"', source))
    assert named, "the domain names its rules"
    missing = named - set(RULE_LABELS)
    assert not missing, f"rules without a Chinese label in casecore.errors.RULE_LABELS: {missing}"
