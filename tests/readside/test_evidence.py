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


def test_the_new_rules_evidence_reads_in_chinese_and_a_future_dated_act_is_not_called_a_late_entry():
    """same_signer_two_levels, future_dated_act, exit_without_six_months_measures and
    sudden_hardship_high_income, with the evidence each rule writes: every fact has its label, none reads as
    an English key, and the count of acts dated ahead is not labelled as back-dated entries."""
    lines = evidence_sentences({
        "signers": [{"procedure": "inclusion", "actor_id": "v-1", "levels": ["verify", "township"],
                     "signed_on": ["2023-03-03", "2023-03-11"]}],
        "events": 1, "worst_event": "income_assessed", "worst_on": "2023-03-03",
        "worst_recorded_on": "2023-03-01", "days_ahead": 2, "future_dated_days": 1,
        "min_assistance_months": 6, "longest_days_in_place": 5, "sudden_hardship_check": "20000"})
    assert lines == ["签署人: 识别纳入 v-1 签署入户核实、乡级审核 (2023-03-03、2023-03-11)",
                     "所涉记录(条): 1", "相隔最久的记录: 收入核算", "其业务日期: 2023-03-03",
                     "其录入日期: 2023-03-01", "业务日期晚于录入(天): 2", "政策: 业务日期最多晚于录入(天): 1",
                     "政策: 落实帮扶满几个月方可消除: 6", "帮扶措施最长持续落实(天): 5",
                     "政策: 突发严重困难户人均纯收入核查标准(元): 20000"]
