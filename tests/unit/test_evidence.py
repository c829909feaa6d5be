"""A finding's evidence in the findings workbook: one Chinese sentence a fact, not the contract's JSON."""

from __future__ import annotations

from projections.evidence import evidence_sentences


def test_a_findings_evidence_reads_as_one_sentence_a_fact():
    lines = evidence_sentences({
        "included_on": "2023-03", "per_capita_income": "4621.00", "monitoring_line": "6700",
        "unmet_needs": ["illness"], "fitting_measure_types": {"illness": ["health"]},
        "measures": [{"measure_id": "M1", "measure_type": "health", "status": "implemented",
                      "implemented_on": "2023-04-01"}],
        "responsible": {"unit": "522631101000", "person": "t-1", "name": "杨兰学"}, "status": "closed"})
    assert lines == ["纳入监测日期: 2023-03", "人均纯收入(元): 4621.00", "政策: 监测标准(元): 6700",
                     "未对应措施的风险: 因病", "可对应的措施类型: 因病可用健康帮扶",
                     "本周期帮扶措施: 健康帮扶(已落实 2023-04-01)",
                     "整改责任方: 522631101000 杨兰学", "整改状态: 已销号"]
