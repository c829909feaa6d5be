"""The accounts file: argon2 hashes, the second factor, five wrong passwords lock the account; the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from adapters.cli import app
from adapters.console.accounts import LOCK_MINUTES, MAX_FAILURES, AccountBook, AccountError
from tests.e2e.reading import readable

NOW = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def book(tmp_path) -> AccountBook:
    b = AccountBook(tmp_path / "accounts.json", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    b.add("lisi", "correct-horse", name="李四", role="village", unit="522631101001")
    return b


def test_the_file_keeps_an_argon2_hash_and_never_the_password(book):
    text = book.path.read_text(encoding="utf-8")
    assert "correct-horse" not in text
    assert json.loads(text)["accounts"]["lisi"]["password_hash"].startswith("$argon2id$")


def test_a_good_password_logs_in_as_the_accounts_actor_with_the_apis_reach(book):
    result = book.login("lisi", "correct-horse", now=NOW)
    assert result.principal is not None
    assert result.principal.actor.id == "lisi" and result.principal.scope == "522631101001"
    assert result.principal.personal_data is True


def test_a_wrong_password_or_an_unknown_login_gets_the_same_sentence(book):
    assert book.login("lisi", "wrong-password", now=NOW).message == book.login("nobody", "x", now=NOW).message


def test_five_wrong_passwords_lock_the_account_until_the_lock_ends_or_an_operator_unlocks_it(book):
    for _ in range(MAX_FAILURES - 1):
        assert "不正确" in book.login("lisi", "wrong-password", now=NOW).message
    assert "已锁定" in book.login("lisi", "wrong-password", now=NOW).message
    # even the right password is refused while locked
    assert book.login("lisi", "correct-horse", now=NOW + timedelta(minutes=1)).principal is None
    assert book.login("lisi", "correct-horse", now=NOW + timedelta(minutes=LOCK_MINUTES + 1)).principal is not None
    for _ in range(MAX_FAILURES):
        book.login("lisi", "wrong-password", now=NOW)
    book.unlock("lisi")
    assert book.login("lisi", "correct-horse", now=NOW).principal is not None


def test_four_wrong_passwords_then_a_right_one_start_the_count_again(book):
    for _ in range(MAX_FAILURES - 1):
        book.login("lisi", "wrong-password", now=NOW)
    assert book.login("lisi", "correct-horse", now=NOW).principal is not None
    for _ in range(MAX_FAILURES - 1):
        book.login("lisi", "wrong-password", now=NOW)
    assert book.login("lisi", "correct-horse", now=NOW).principal is not None


def test_an_account_with_totp_needs_the_current_code(book):
    account = book.add("zhao", "county-pass-1", name="赵", role="county", unit="522631000000", totp=True)
    totp = pyotp.TOTP(account.totp_secret)
    assert book.login("zhao", "county-pass-1", now=NOW).needs_totp
    assert book.login("zhao", "county-pass-1", "000000" if totp.at(NOW) != "000000" else "111111",
                      now=NOW).principal is None
    assert book.login("zhao", "county-pass-1", totp.at(NOW), now=NOW).principal is not None


def test_a_second_factor_code_that_logged_in_once_does_not_log_in_again(book):
    account = book.add("zhao", "county-pass-1", name="赵", role="county", unit="522631000000", totp=True)
    totp = pyotp.TOTP(account.totp_secret)
    code = totp.at(NOW)
    assert book.login("zhao", "county-pass-1", code, now=NOW).principal is not None
    # someone who saw it typed, within its window, with the password
    again = book.login("zhao", "county-pass-1", code, now=NOW + timedelta(seconds=20))
    assert again.principal is None and again.needs_totp
    assert book.login("zhao", "county-pass-1", totp.at(NOW + timedelta(seconds=30)),
                      now=NOW + timedelta(seconds=30)).principal is not None


def test_wrong_second_factor_codes_count_toward_the_lock_like_wrong_passwords(book):
    account = book.add("zhao", "county-pass-1", name="赵", role="county", unit="522631000000", totp=True)
    totp = pyotp.TOTP(account.totp_secret)
    wrong = "000000" if totp.at(NOW) != "000000" else "111111"
    # asking for the code is no failure; a wrong code is one
    assert book.login("zhao", "county-pass-1", now=NOW).needs_totp
    for _ in range(MAX_FAILURES - 1):
        assert book.login("zhao", "county-pass-1", wrong, now=NOW).needs_totp
    assert "已锁定" in book.login("zhao", "county-pass-1", wrong, now=NOW).message
    # the password and a right code no longer help: six digits cannot be tried without end
    assert book.login("zhao", "county-pass-1", totp.at(NOW), now=NOW + timedelta(minutes=1)).principal is None
    later = NOW + timedelta(minutes=LOCK_MINUTES + 1)
    assert book.login("zhao", "county-pass-1", totp.at(later), now=later).principal is not None


def test_a_role_the_operator_requires_totp_for_cannot_log_in_without_it(book):
    book.require_totp_for(["village"])
    result = book.login("lisi", "correct-horse", now=NOW)
    assert result.principal is None and "动态口令" in result.message


def test_an_account_cannot_reach_beyond_its_units_jurisdiction(book):
    with pytest.raises(AccountError, match="超出"):
        book.add("far", "some-pass-1", name="远", role="village", unit="522631101001", scope="5226")
    with pytest.raises(AccountError, match="scope"):
        book.add("dept", "some-pass-1", name="部门", role="department", unit="县医保局")


def test_a_login_or_a_name_beyond_the_contracts_limits_is_refused_with_a_sentence(book, tmp_path):
    # the login goes into the read-access log's column, the id and name into every command's actor
    with pytest.raises(AccountError, match="登录名"):
        book.add("x" * 65, "some-pass-1", name="李", role="village", unit="522631101001", actor_id="li")
    with pytest.raises(AccountError, match=r"name: .*上限"):
        book.add("li", "some-pass-1", name="李" * 65, role="village", unit="522631101001")
    with pytest.raises(AccountError, match=r"id: .*上限"):
        book.add("li", "some-pass-1", name="李", role="village", unit="522631101001", actor_id="i" * 65)
    assert set(book.accounts()) == {"lisi"}
    refused = CliRunner().invoke(app, ["accounts", "add", "y" * 65, "--name", "李", "--role", "village", "--unit",
                                       "522631101001", "--file", str(book.path)], input="some-pass-1\n")
    assert refused.exit_code == 2
    assert "登录名" in refused.output


def test_a_department_sees_personal_data_only_when_its_account_says_so(book):
    book.add("dept", "some-pass-1", name="部门", role="department", unit="县医保局", scope="522631")
    book.add("dept2", "some-pass-1", name="部门", role="department", unit="县医保局", scope="522631",
             personal_data=True)
    assert book.login("dept", "some-pass-1", now=NOW).principal.personal_data is False
    assert book.login("dept2", "some-pass-1", now=NOW).principal.personal_data is True


def test_the_cli_adds_lists_unlocks_and_removes_accounts_reading_the_password_from_stdin(tmp_path):
    path = tmp_path / "a.json"

    runner = CliRunner()

    def run(*args: str, stdin: str = "") -> Any:
        return runner.invoke(app, ["accounts", *args, "--file", str(path)], input=stdin)

    added = run("add", "wang", "--name", "王芳", "--role", "township", "--unit", "522631101000", "--totp",
                stdin="township-pass\n")
    assert added.exit_code == 0, added.output
    assert "otpauth://" in added.output
    listed = run("list", "--json")
    row = json.loads(listed.stdout)
    assert row["login"] == "wang" and row["role"] == "township" and row["totp"] is True
    assert "password_hash" not in row
    short = run("add", "x", "--name", "x", "--role", "village", "--unit", "522631101001", stdin="short\n")
    assert short.exit_code == 2 and "至少" in short.output
    assert run("unlock", "wang").exit_code == 0
    assert run("remove", "wang").exit_code == 0
    assert run("list", "--json").stdout == ""
    assert run("remove", "wang").exit_code == 2


def test_the_demo_writes_one_account_a_role_that_logs_in_with_its_printed_password(demo_db):
    from adapters.console.demo_accounts import ACCOUNTS_FILE

    book = AccountBook(demo_db.parent / "out" / ACCOUNTS_FILE)
    roles = {a.role.value for a in book.accounts().values()}
    assert roles == {"village", "township", "county", "department", "inspector", "auditor"}


def test_demo_accounts_log_in_with_the_passwords_printed_for_them(tmp_path):
    from adapters.console.demo_accounts import write_demo_accounts

    county = {"code": "522631", "name": "黎平县", "townships": [
        {"code": "522631101", "name": "新坡镇", "villages": [{"code": "522631101001", "name": "坡老村"}]}]}
    path, people = write_demo_accounts(tmp_path, county)
    book = AccountBook(path)
    for person in people:
        principal = book.login(person["login"], person["password"], now=NOW).principal
        assert principal is not None and principal.actor.role == person["role"]
        assert principal.scope.startswith("522631")


def test_the_console_command_says_what_to_do_without_an_accounts_file(tmp_path):
    result = CliRunner().invoke(app, ["console", "--db", str(tmp_path / "x.db"), "--accounts",
                                      str(tmp_path / "none.json")])
    assert result.exit_code == 2 and "./dev demo" in result.output


@pytest.mark.parametrize("command", ["serve", "console"])
def test_serve_with_an_accounts_file_starts_the_console_without_an_api_tokens_file(tmp_path, monkeypatch, command):
    """docs/console.md: `casecore serve --accounts FILE` (and `casecore console`) serve the console; without
    API tokens the API refuses every request, but the service starts."""
    import uvicorn

    started: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda served, **options: started.update(options, app=served))
    monkeypatch.delenv("CASECORE_TOKENS", raising=False)
    # serve logs at info by default; structlog caches a logger at the level it first saw, so a test run in
    # this process would keep it and later commands' output would carry info lines
    monkeypatch.setenv("CASECORE_LOG_LEVEL", "warning")
    accounts = tmp_path / "accounts.json"
    runner = CliRunner()
    added = runner.invoke(app, ["accounts", "add", "wang", "--name", "王芳", "--role", "township", "--unit",
                                "522631101000", "--file", str(accounts)], input="township-pass\n")
    assert added.exit_code == 0, added.output
    served = runner.invoke(app, [command, "--db", str(tmp_path / "c.db"), "--accounts", str(accounts)])
    assert served.exit_code == 0, served.output
    assert "app" in started and "/console/" in served.output and "None" not in served.output
    started["app"].state.services.close()


def test_an_account_name_with_markup_in_it_is_printed_as_written_when_added_and_listed(tmp_path):
    path = str(tmp_path / "a.json")
    runner = CliRunner()
    added = runner.invoke(app, ["accounts", "add", "wang", "--name", "王[/b]芳", "--role", "township", "--unit",
                                "522631101000", "--file", path], input="township-pass\n")
    assert added.exit_code == 0, added.output
    assert "王[/b]芳" in added.output
    listed = runner.invoke(app, ["accounts", "list", "--file", path], env={"COLUMNS": "200"})
    assert listed.exit_code == 0, listed.output
    assert "王[/b]芳" in readable(listed.output)  # at the runner's width the name column folds
