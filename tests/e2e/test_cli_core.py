"""`casecore apply`, `show` and `schema` as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from casecore.commands import BY_NAME, Command
from tests.builders import cmd, inclusion_path, register

runner = CliRunner()
D = date(2023, 3, 2)
CASECORE = Path(sys.executable).with_name("casecore")


def cli(*args: str, input: str | None = None):
    from adapters.cli import app

    return runner.invoke(app, list(args), input=input)


def line(command: Command) -> str:
    return orjson.dumps(command.model_dump(mode="json", exclude_none=True)).decode()


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def commands_file(tmp_path) -> Path:
    path = inclusion_path("H1", start=D)
    lines = [line(register("H1")), *map(line, path[:5]),
             line(cmd("close_publicity", D + timedelta(days=7), household_id="H1")),   # too early: refused
             "",                                                                      # blank lines are skipped
             '{"command": "close_publicity", "household_id": "H1"',                  # not JSON
             *map(line, path[5:]),
             line(cmd("sign_application", D, household_id="NOPE"))]
    return write(tmp_path / "commands.jsonl", lines)


def test_apply_json_prints_one_contract_result_per_command_in_order_and_exits_zero_with_refusals(
    tmp_path, commands_file
):
    result = cli("apply", str(commands_file), "--json", "--db", str(tmp_path / "e.db"))
    assert result.exit_code == 0, result.output
    out = [orjson.loads(x) for x in result.stdout.splitlines()]
    assert [o["line"] for o in out] == [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14]
    assert out[0] == {"line": 1, "ok": True, "events": ["registered"]}
    assert out[6]["ok"] is False
    assert out[6]["error"]["code"] == "policy_violation"
    assert out[6]["error"]["rule"] == "publicity_min_days"
    assert out[6]["error"]["message"]
    assert out[7]["error"]["code"] == "validation_error" and "rule" not in out[7]["error"]
    assert [o["events"] for o in out[8:12]] == [["publicity_closed"], ["township_reviewed"], ["county_decided"],
                                                ["entered_system"]]
    assert out[12]["error"]["code"] == "not_found"
    for o in out:
        assert set(o) == ({"line", "ok", "events"} if o["ok"] else {"line", "ok", "error"})


def test_apply_gives_the_same_results_one_commit_per_command_and_in_batches(tmp_path, commands_file):
    one = cli("apply", str(commands_file), "--json", "--batch", "1", "--db", str(tmp_path / "one.db"))
    many = cli("apply", str(commands_file), "--json", "--batch", "500", "--db", str(tmp_path / "many.db"))
    assert one.exit_code == many.exit_code == 0
    assert one.stdout == many.stdout


def test_apply_without_json_prints_a_chinese_table_and_summary(tmp_path, commands_file):
    result = cli("apply", str(commands_file), "--db", str(tmp_path / "e.db"))
    assert result.exit_code == 0
    assert "命令办理结果" in result.stdout
    assert "公示结束" in result.stdout          # the command's Chinese label
    assert "共 13 条" in result.stdout and "办理成功 10 条" in result.stdout
    assert "政策不允许" in result.stdout and "输入有误" in result.stdout   # refusals by their Chinese labels


def test_apply_names_the_events_it_recorded_and_the_refusals_in_chinese_only(tmp_path, commands_file):
    from tests.e2e.reading import readable

    result = cli("apply", str(commands_file), "--db", str(tmp_path / "e.db"))
    text = readable(result.stdout)
    assert "✓ 线索登记" in text and "✓ 建档" in text
    for english in ("lead_recorded", "registered", "policy_violation", "validation_error"):
        assert english not in result.stdout, english


def test_apply_reads_commands_from_standard_input(tmp_path):
    result = cli("apply", "-", "--json", "--db", str(tmp_path / "e.db"), input=line(register("H1")) + "\n")
    assert result.exit_code == 0
    assert orjson.loads(result.stdout) == {"line": 1, "ok": True, "events": ["registered"]}


def test_apply_exits_non_zero_when_the_file_cannot_be_read(tmp_path):
    missing = cli("apply", str(tmp_path / "missing.jsonl"), "--db", str(tmp_path / "e.db"))
    assert missing.exit_code != 0
    assert "无法读取" in missing.output
    not_text = tmp_path / "binary.jsonl"
    not_text.write_bytes(b"\xff\xfe\x00\x81 not utf-8")
    assert cli("apply", str(not_text), "--db", str(tmp_path / "e.db")).exit_code != 0
    a_directory = cli("apply", str(tmp_path), "--db", str(tmp_path / "e.db"))
    assert a_directory.exit_code != 0


def test_apply_exits_non_zero_when_the_store_cannot_be_opened(tmp_path, commands_file):
    result = cli("apply", str(commands_file), "--db", str(tmp_path / "no" / "such" / "dir" / "e.db"))
    assert result.exit_code != 0


def test_show_json_has_the_contract_fields(tmp_path, commands_file):
    db = str(tmp_path / "e.db")
    cli("apply", str(commands_file), "--json", "--db", db)
    result = cli("show", "H1", "--json", "--db", db)
    assert result.exit_code == 0
    state = orjson.loads(result.stdout)
    for key in ("household_id", "division_code", "household_type", "stage", "category", "risk_types", "members",
                "open_procedure", "procedure_step"):
        assert key in state
    assert state["household_id"] == "H1" and state["division_code"] == "522631101001"
    assert (state["stage"], state["category"], state["risk_types"]) == ("monitored", "marginal", ["illness"])
    assert (state["open_procedure"], state["procedure_step"]) == (None, None)
    assert len(state["members"]) == 2 and state["members"][0]["birth_date"] == "1980-01-02"
    assert state["income_assessments"][0]["per_capita_income"] == "5000.00"   # money stays exact, as a string
    assert [lead["lead_id"] for lead in state["leads"]] == ["H1-L1"]


def test_show_during_the_procedure_names_it_and_its_step(tmp_path):
    db = str(tmp_path / "e.db")
    write(tmp_path / "c.jsonl", [line(register("H1")), *map(line, inclusion_path("H1", start=D)[:5])])
    cli("apply", str(tmp_path / "c.jsonl"), "--db", db)
    state = orjson.loads(cli("show", "H1", "--json", "--db", db).stdout)
    assert (state["stage"], state["open_procedure"], state["procedure_step"]) == ("in_inclusion", "inclusion",
                                                                                  "in_publicity")
    human = cli("show", "H1", "--db", db)
    assert human.exit_code == 0
    assert "识别中" in human.stdout and "一般农户" in human.stdout and "家庭成员" in human.stdout
    assert "村级评议及公示中" in human.stdout and "核实符合" in human.stdout


def test_show_of_an_unknown_household_says_not_found_and_fails(tmp_path):
    from adapters.store.storage import bootstrap

    bootstrap(str(tmp_path / "e.db")).close()   # an empty store (reading commands never create one)
    result = cli("show", "NOPE", "--json", "--db", str(tmp_path / "e.db"))
    assert result.exit_code != 0
    assert orjson.loads(result.stdout)["error"]["code"] == "not_found"


def test_schema_prints_the_json_schema_of_every_command():
    result = cli("schema")
    assert result.exit_code == 0
    schema = orjson.loads(result.stdout)
    assert set(schema["discriminator"]["mapping"]) == set(BY_NAME)
    assert len(schema["oneOf"]) == len(BY_NAME)
    register_schema = schema["$defs"]["RegisterHousehold"]
    assert {"household_id", "division_code", "household_type", "members", "on", "actor"} <= set(
        register_schema["properties"])


def test_the_installed_console_script_runs(tmp_path):
    assert CASECORE.exists(), "the casecore console script is installed beside the interpreter"
    path = write(tmp_path / "c.jsonl", [line(register("H1")), "not json"])
    done = subprocess.run([str(CASECORE), "apply", str(path), "--json", "--db", str(tmp_path / "e.db")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [orjson.loads(x)["ok"] for x in done.stdout.splitlines()] == [True, False]


def test_show_prints_the_whole_household_grouped_with_chinese_labels_and_places_by_name(tmp_path):
    from adapters.readside import places
    from tests.builders import guarantees, measure
    from tests.e2e.reading import readable

    db = str(tmp_path / "e.db")
    path = inclusion_path("H1", start=D)
    objection = [cmd("raise_objection", D + timedelta(days=4), household_id="H1", objection_id="H1-O1",
                     detail="邻居反映家中有车"),
                 cmd("resolve_objection", D + timedelta(days=5), household_id="H1", objection_id="H1-O1",
                     outcome="dismissed")]
    after = [cmd("assign_cadre", D + timedelta(days=12), household_id="H1",
                 cadre={"id": "c-01", "name": "王帮扶", "unit": "522631101001"}),
             *measure("H1", "H1-M1", D + timedelta(days=13), D + timedelta(days=20)),
             guarantees("H1", D + timedelta(days=14), housing="c_level", drinking_water_safe=False)]
    write(tmp_path / "c.jsonl", [line(register("H1")), *map(line, path[:5]), *map(line, objection),
                                 *map(line, path[5:]), *map(line, after)])
    applied = cli("apply", str(tmp_path / "c.jsonl"), "--db", db)
    assert "拒绝" not in applied.stdout and "✗" not in applied.stdout, applied.stdout
    app = __import__("adapters.store.storage", fromlist=["bootstrap"]).bootstrap(db)
    try:
        places.remember(app, {"522631101": "德凤镇", "522631101001": "高近村"})
    finally:
        app.close()
    human = cli("show", "H1", "--db", db)
    assert human.exit_code == 0, human.output
    text = readable(human.stdout)
    for group in ("基本情况", "帮扶责任人", "家庭成员", "收入核算", "三保障及饮水核查", "线索", "公示异议", "帮扶措施"):
        assert group in text, group
    for shown in ("黎平县德凤镇高近村", "王帮扶", "健康帮扶", "已落实", "县医保局", "张医生", "C级危房", "饮水不安全",
                  "邻居反映家中有车", "异议不成立", "排查发现", "基层干部排查", "边缘易致贫户", "因病", "H1-M1"):
        assert shown in text, shown
    for english in ("health", "implemented", "c_level", "dismissed", "cadre_screening", "marginal"):
        assert english not in human.stdout, english


def test_show_prints_free_text_with_square_brackets_as_written(tmp_path):
    """A note a cadre typed is text, not terminal markup: `[/b]` must not stop `show`, `[red]` must not vanish."""
    from tests.builders import person

    db = str(tmp_path / "e.db")
    members = [{**person(1), "name": "[red]张三"}, person(2, date(1982, 5, 6), relation="配偶")]
    commands = [register("H1", members=members),
                cmd("record_lead", D, household_id="H1", lead_id="L1", source="cadre_screening",
                    risk_types=["illness"], detail="[/b] [red]甲"),
                cmd("assign_cadre", D, household_id="H1", cadre={"id": "c-01", "name": "王[/i]", "unit": "县帮扶办"})]
    write(tmp_path / "c.jsonl", [line(c) for c in commands])
    cli("apply", str(tmp_path / "c.jsonl"), "--db", db)
    human = cli("show", "H1", "--db", db)
    assert human.exit_code == 0, human.output
    for written in ("[/b]", "[red]甲", "[red]张三", "王[/i]"):
        assert written in human.stdout, written
