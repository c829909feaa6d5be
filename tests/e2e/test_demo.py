"""`casecore demo` as a newcomer runs it: a small county through every stage, a summary, a store to look at."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.store.storage import bootstrap
from casecore.values import check_division_code, check_person_id
from tests.e2e.reading import rows

runner = CliRunner()
PLANTED_RULES = ("publicity_min_days", "objections_unresolved", "income_assessment_window",
                 "category_household_type", "step_date_order", "not_authorised")


def demo(*args: str, launcher: str | None = None):
    """Run the demo in-process, as `casecore demo` (or as `./dev demo` with `launcher="dev"`)."""
    from adapters.cli import app

    return runner.invoke(app, ["demo", *args], env={"CASECORE_LAUNCHER": launcher})


def counts_of(stage_title: str, output: str) -> dict[str, int]:
    """The `│ item │ count │` rows of one stage's table in the summary."""
    block = output.split(f" {stage_title} (", 1)[-1]
    block = block.split("└", 1)[0]
    return {key.strip(): int(value) for key, value in re.findall(r"^│ ([^│]+?)\s*│\s*(\d+) │$", block, re.M)}


def stored_types(db: str) -> Counter:
    app = bootstrap(db)
    try:
        return Counter(n.topic.split(".")[-2] for n in app.recorder.select_notifications(start=1, limit=10**7))
    finally:
        app.close()


def native_registrations(db: str) -> int:
    """Households the demo registered itself (the inspection stage also imports some from a national export)."""
    app = bootstrap(db)
    try:
        return sum(1 for n in app.recorder.select_notifications(start=1, limit=10**7)
                   if n.topic.endswith(".registered.v1") and n.originator_id.startswith("household/")
                   and app.mapper.to_domain_event(n).origin is None)
    finally:
        app.close()


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory) -> tuple[object, Path]:
    where = tmp_path_factory.mktemp("demo")
    result = demo("--households", "60", "--db", str(where / "demo.db"), "--output", str(where / "out"),
                  "--seed", "7")
    return result, where


def test_a_small_demo_runs_every_stage_and_exits_zero(small_demo):
    result, _ = small_demo
    assert result.exit_code == 0, result.output
    from adapters.demo import stages

    for stage in stages():
        assert stage.title in result.stdout
        assert "失败" not in result.stdout


def test_the_inclusion_stage_reports_its_counts_in_chinese_and_nothing_unexpected(small_demo):
    result, _ = small_demo
    counts = counts_of("建档与识别纳入", result.stdout)
    assert counts["建档户数"] == 60
    assert counts["脱贫户"] + counts["一般农户"] == 60
    assert counts["纳入监测户"] > 0
    for turn in ("入户核实不符合", "公示异议", "乡级退回", "乡级审核不予通过", "县级退回", "县级不予批准"):
        assert counts[turn] >= 1, turn
    assert sum(v for k, v in counts.items() if k.startswith("线索: ")) >= 5
    assert len([k for k in counts if k.startswith("线索: ")]) == 5          # every lead source
    assert counts["预设拒绝"] >= len(PLANTED_RULES)
    assert counts["意外结果 (应为0)"] == 0


def column(table: str, n: int) -> str:
    """Column `n` of a rich table as one string (cells fold long words over several lines)."""
    return "".join(line.split("│")[n].strip() for line in table.splitlines() if line.count("│") > n)


def test_the_summary_shows_the_refusals_by_rule_in_chinese_with_an_example_each(small_demo):
    from casecore.errors import ERROR_LABELS, RULE_LABELS

    result, _ = small_demo
    table = result.stdout.split("引擎拒绝的命令", 1)[1].split("└", 1)[0]
    labels, examples = column(table, 1), column(table, 3)
    for rule in PLANTED_RULES:
        assert (RULE_LABELS.get(rule) or ERROR_LABELS[rule]) in labels, rule
        assert rule not in table                                     # no English rule name
    assert "公示未满规定天数" in labels and "无权办理" in labels
    assert "最早于" in examples and "四眼原则" in examples           # and an example message
    assert "县级批复" in examples and "approve_county" not in examples  # named by the command's label


def test_the_summary_says_where_the_store_and_files_are(small_demo):
    result, _ = small_demo
    assert "事件库" in result.stdout and "demo.db" in result.stdout
    assert "输出目录" in result.stdout


def test_the_store_holds_the_generated_county_with_valid_codes_and_ids(small_demo):
    result, where = small_demo
    db = str(where / "demo.db")
    types = stored_types(db)
    assert native_registrations(db) == 60
    counts = counts_of("建档与识别纳入", result.stdout)
    assert types["entered_system"] >= counts["纳入监测户"]
    assert types["lead_recorded"] >= sum(v for k, v in counts.items() if k.startswith("线索: "))
    app = bootstrap(db)
    try:
        registrations = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=10**6)
                         if n.topic.endswith(".registered.v1") and n.originator_id.startswith("household/")
                         and app.mapper.to_domain_event(n).origin is None]
        kinds = Counter(e.household_type for e in registrations)
        assert set(kinds) == {"poverty_alleviated", "general"}
        assert any(e.relocated and e.resettlement_site for e in registrations)
        assert all(e.key_county for e in registrations)
        for e in registrations:
            assert check_division_code(e.division_code).startswith("522631")
            for m in e.members:
                check_person_id(m["person_id"], m["birth_date"])
        assert any(all(m["labour"] == "none" for m in e.members) for e in registrations)   # 整户无劳动力
        monitored = [app.get_household(e.originator_id.split("/", 1)[1]) for e in registrations]
        assert any(h.included_on is not None for h in monitored)
    finally:
        app.close()


def test_the_same_seed_gives_the_same_county_and_cases(small_demo, tmp_path):
    first, _ = small_demo
    again = demo("--households", "60", "--db", str(tmp_path / "again.db"), "--output", str(tmp_path / "out"),
                 "--seed", "7")
    assert counts_of("建档与识别纳入", again.stdout) == counts_of("建档与识别纳入", first.stdout)


def test_running_again_replaces_the_demo_store_and_says_so(tmp_path):
    db = str(tmp_path / "demo.db")
    demo("--households", "20", "--db", db, "--output", str(tmp_path / "out"))
    second = demo("--households", "20", "--db", db, "--output", str(tmp_path / "out"))
    assert second.exit_code == 0, second.output
    assert "重新创建" in second.stdout
    assert native_registrations(db) == 20


def test_the_demo_will_not_replace_a_file_that_is_not_an_event_store(tmp_path):
    precious = tmp_path / "thesis.db"
    precious.write_text("my thesis, not a database")
    result = demo("--households", "20", "--db", str(precious), "--output", str(tmp_path / "out"))
    assert result.exit_code != 0
    assert precious.read_text() == "my thesis, not a database"


def test_a_stage_that_fails_is_reported_the_others_still_summarised_and_the_exit_is_non_zero(tmp_path, monkeypatch):
    import adapters.demo as demo_pkg

    real = demo_pkg.stages()

    def broken(ctx):
        raise RuntimeError("模拟的阶段故障")

    monkeypatch.setattr(demo_pkg, "stages", lambda: [real[0], demo_pkg.StageInfo("stage_15_broken", "故障阶段", broken),
                                                     *real[1:]])
    result = demo("--households", "20", "--db", str(tmp_path / "d.db"), "--output", str(tmp_path / "out"))
    assert result.exit_code != 0
    assert "模拟的阶段故障" in result.output
    assert counts_of(real[0].title, result.stdout)["建档户数"] == 20   # the stage before it is still summarised
    for stage in real[1:]:
        assert stage.title in result.stdout            # and the stages after it ran and are shown


def test_the_demo_records_each_act_once_in_business_time_and_never_backwards_within_a_case(small_demo):
    from adapters.store.audit import audit

    _, where = small_demo
    app = bootstrap(str(where / "demo.db"), create=False)
    try:
        report = audit(app.recorder)
        rows = [r.hashed for r in app.recorder.iter_audit_rows() if r.hashed is not None]
        first = next(r for r in app.recorder.iter_audit_rows() if r.hashed is not None)
        event = next(iter(app.events.get(first.originator_id)))
    finally:
        app.close()
    assert report.ok, report.findings[:3]
    # the chain stamps the event's own recorded time: the checkpoint spreads over the county's business days
    assert len(report.days) > 30 and min(report.days) < "2023"
    assert first.hashed.recorded_at == event.timestamp.isoformat(timespec="microseconds")
    by_stream: dict[str, list[str]] = {}
    for h in rows:
        by_stream.setdefault(h.originator_id, []).append(h.recorded_at)
    assert all(times == sorted(times) for times in by_stream.values())



def test_the_demo_writes_a_tokens_file_the_service_accepts_one_token_per_role_each_printed(small_demo):
    import json

    from adapters.http.auth import TokenBook
    from casecore.values import Role

    result, where = small_demo
    path = where / "out" / "tokens.json"
    book = TokenBook.from_file(path)
    entries = json.loads(path.read_text(encoding="utf-8"))
    assert len(book) == len(entries) == 6
    by_role = {e["role"]: (token, e) for token, e in entries.items()}
    assert set(by_role) == {r.value for r in Role if r is not Role.SYSTEM}
    village = by_role["village"][1]["unit"]
    assert len(village) == 12 and village.startswith("522631") and village[9:] != "000"
    assert len(by_role["township"][1]["unit"]) == 9 and len(by_role["county"][1]["unit"]) == 6
    for role in ("department", "inspector", "auditor"):
        assert by_role[role][1]["scope"] == "522631"
    for token, entry in entries.items():
        assert token in result.stdout                                  # printed whole
        assert book.lookup(token).actor.id == entry["id"]
    assert "行业部门" in result.stdout and "可办理" in result.stdout
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_the_summary_says_where_each_monitored_figure_comes_from_and_they_add_up(small_demo):
    import json

    result, where = small_demo
    listed = runner.invoke(__import__("adapters.cli", fromlist=["app"]).app,
                           ["roster", "--json", "--db", str(where / "demo.db")])
    on_roster = len([line for line in listed.stdout.splitlines() if line.strip()])
    table = result.stdout.split("监测户数从哪里来", 1)[1].split("└", 1)[0]
    figures = {label: int(n) for label, n, _ in rows(table, 1)}
    roster_line = next(k for k in figures if k.startswith("名单中的监测户"))
    assert figures[roster_line] == on_roster
    assert figures["其中本县办理"] + figures["其中国家系统导出导入"] == on_roster
    assert figures["其中国家系统导出导入"] > 0
    assert json.loads(listed.stdout.splitlines()[0])["household_id"]


def test_the_closing_hints_name_real_households_and_every_command_works_as_printed(small_demo, monkeypatch):
    import shlex

    from adapters.cli import app

    result, _ = small_demo
    hints = result.stdout.split("下一步", 1)[1]
    commands = [line.split(":  ", 1)[1].strip() for line in hints.splitlines() if ":  casecore " in line]
    assert any(c.startswith("casecore show 522631") for c in commands)
    assert any(c.startswith("casecore serve --tokens") for c in commands)
    monkeypatch.chdir(Path.cwd())
    for command in commands:
        argv = shlex.split(command)[1:]
        if argv[0] == "serve":
            assert Path(argv[argv.index("--tokens") + 1]).is_file() or \
                (Path.cwd() / argv[argv.index("--tokens") + 1]).is_file()
            continue
        ran = runner.invoke(app, argv)
        assert ran.exit_code == 0, (command, ran.output)
        assert "Error" not in ran.output


def test_started_by_dev_the_closing_hints_are_dev_commands(tmp_path):
    result = demo("--households", "20", "--db", str(tmp_path / "d.db"), "--output", str(tmp_path / "out"),
                  launcher="dev")
    hints = result.stdout.split("下一步", 1)[1]
    assert "./dev casecore show " in hints and "  casecore show" not in hints.replace("./dev casecore", "")
