"""Policy is dated data: the version in force on the act's business date applies."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from casecore.policy import POLICY_DIR, PolicyBook, default_policies
from casecore.values import MeasureType, RiskType


@pytest.fixture(scope="module")
def book() -> PolicyBook:
    return PolicyBook.load()


def test_guizhou_2022_has_the_monitoring_line_notice_days_and_hospital_thresholds_of_the_action_plan(book):
    p = book.on(date(2022, 6, 1))
    assert p.id == "guizhou-2022"
    assert p.income.monitoring_line == Decimal("6700")
    assert p.income.assessment_months == 12
    assert p.procedure.publicity_days == 5
    assert p.exit.min_assistance_months == 6
    h = p.screening.hospital
    assert (h.poverty_alleviated_single_stay, h.poverty_alleviated_yearly_total) == (Decimal(4000), Decimal(6700))
    assert (h.general_single_stay, h.general_yearly_total) == (Decimal(10000), Decimal(10000))
    assert h.since == date(2021, 1, 1)


@pytest.mark.parametrize(
    ("day", "policy_id", "line"),
    [
        (date(2022, 1, 1), "guizhou-2022", "6700"),
        (date(2022, 12, 31), "guizhou-2022", "6700"),
        (date(2023, 1, 1), "guizhou-2023", "7300"),
        (date(2023, 7, 15), "guizhou-2023", "7300"),
    ],
)
def test_the_version_in_force_changes_on_its_effective_date(book, day, policy_id, line):
    p = book.on(day)
    assert p.id == policy_id
    assert p.income.monitoring_line == Decimal(line)


def test_a_day_before_every_version_falls_back_to_the_earliest(book):
    assert book.on(date(2019, 5, 1)).id == "guizhou-2022"


def test_money_in_policy_files_is_exact_decimal(book):
    for p in book.policies:
        assert isinstance(p.income.monitoring_line, Decimal)


def test_every_fit_entry_names_real_risks_and_measures(book):
    guarantee_needs = {"child_out_of_school", "no_medical_insurance"}
    measures = {m.value for m in MeasureType}
    for p in book.policies:
        assert {r.value for r in RiskType} <= set(p.fit)
        assert set(p.fit) <= {r.value for r in RiskType} | guarantee_needs
        for need, fitting in p.fit.items():
            assert fitting, need
            assert set(fitting) <= measures, need
        assert p.fitting_measures("illness") == frozenset({"health", "social"})


def test_a_region_without_policy_files_is_an_error():
    with pytest.raises(ValueError):
        PolicyBook.load(region="atlantis")


def test_the_default_book_is_guizhou():
    assert {p.region for p in default_policies().policies} == {"guizhou"}


def test_no_policy_figure_is_written_as_a_literal_in_the_domain_code():
    """The lines and thresholds live in the policy files only."""
    figures = {"6700", "7300", "4000", "10000"}
    code = Path(POLICY_DIR).parent
    for path in [*code.glob("*.py"), *code.parent.joinpath("workflows").glob("*.py")]:
        numbers = set(re.findall(r"(?<![\w.])\d{4,5}(?![\w.])", path.read_text(encoding="utf-8")))
        assert not numbers & figures, f"{path.name} writes a policy figure: {numbers & figures}"
