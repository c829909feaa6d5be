"""Odd input at the command line gets one clear sentence and a non-zero exit, never a traceback: dates outside
the contract's range, a department file with a cell too large to read, a store that cannot be written; and in
a file of commands, a line beyond the limits is that line's validation_error while the others go in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from adapters.cli import app as cli
from casecore import limits as lim
from tests.builders import register

runner = CliRunner()
CASECORE = str(Path(sys.executable).with_name("casecore"))


@pytest.mark.parametrize("args", [["inspect", "--as-of", "9999-12-31"], ["inspect", "--as-of", "0001-01-01"],
                                  ["ledger", "--as-of", "9999-12-31"]])
def test_a_date_option_outside_the_contract_range_is_refused_with_a_sentence(tmp_path, args):
    result = runner.invoke(cli, [*args, "--db", str(tmp_path / "e.db")])
    assert result.exit_code == 2
    assert "超出范围" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_department_file_with_a_cell_too_large_to_read_names_its_line(tmp_path):
    f = tmp_path / "yb.csv"
    f.write_text("身份证号,姓名,入院日期,出院日期,个人自付\n"
                 "522631198001020011,某,2023-05-01,2023-05-10,5000\n"
                 f"522631198001020011,\"{'很' * 200_000}\",2023-05-01,2023-05-10,5000\n", encoding="utf-8")
    result = runner.invoke(cli, ["screen", "hospital", str(f), "--on", "2023-07-01", "--db", str(tmp_path / "e.db")])
    assert result.exit_code == 2
    assert "第3行" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_read_only_store_is_named_with_what_to_do_and_no_traceback(tmp_path):
    db = tmp_path / "e.db"
    line = orjson.dumps(register("H1").model_dump(mode="json", exclude_none=True)).decode()
    (tmp_path / "a.jsonl").write_text(line + "\n", encoding="utf-8")
    assert runner.invoke(cli, ["apply", str(tmp_path / "a.jsonl"), "--db", str(db)]).exit_code == 0
    (tmp_path / "b.jsonl").write_text(line.replace('"H1"', '"H2"') + "\n", encoding="utf-8")
    read_only = f"file:{db}?mode=ro"
    done = subprocess.run([CASECORE, "apply", str(tmp_path / "b.jsonl"), "--db", read_only],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "只读" in done.stderr and f"file:{db}?mode=ro" in done.stderr


def test_a_file_of_commands_with_extreme_money_and_a_huge_line_refuses_those_lines_only(tmp_path):
    good = register("H1").model_dump(mode="json", exclude_none=True)
    income = {"command": "assess_income", "household_id": "H1", "on": "2023-03-10", "actor": good["actor"],
              "period_start": "2022-03-01", "period_end": "2023-02-28", "net_income": "8000"}
    lines = [orjson.dumps(good), orjson.dumps({**income, "net_income": "1e26"}),
             orjson.dumps({**income, "note": "x" * (lim.COMMAND_JSON_MAX + 1)}), orjson.dumps(income)]
    f = tmp_path / "c.jsonl"
    f.write_bytes(b"\n".join(lines) + b"\n")
    result = runner.invoke(cli, ["apply", str(f), "--json", "--db", str(tmp_path / "e.db")])
    assert result.exit_code == 0, result.output
    out = [orjson.loads(x) for x in result.output.splitlines() if x.startswith("{")]
    assert [r["ok"] for r in out] == [True, False, False, True]
    assert "net_income:" in out[1]["error"]["message"]
    assert out[2]["error"]["code"] == "validation_error"
