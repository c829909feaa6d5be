"""`casecore serve` as a real process: it answers over HTTP, and refuses to start without tokens."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.builders import register
from tests.http.support import auth, write_tokens

CASECORE = str(Path(sys.executable).parent / "casecore")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_commands_and_reads_over_http(tmp_path):
    port = free_port()
    tokens = write_tokens(tmp_path / "tokens.json")
    proc = subprocess.Popen([CASECORE, "serve", "--port", str(port),
                             "--db", str(tmp_path / "db"), "--tokens", str(tokens)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(base + "/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        command = json.loads(register().model_dump_json(exclude_none=True))
        r = httpx.post(base + "/commands", json=command, headers=auth("tok-village-1"), timeout=10)
        assert r.json() == {"line": 1, "ok": True, "events": ["registered"]}
        assert httpx.get(base + "/households/H1", headers=auth("tok-village-1"), timeout=10).json()["stage"] == \
            "not_monitored"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_will_not_start_without_a_tokens_file(tmp_path):
    r = subprocess.run([CASECORE, "serve", "--db", str(tmp_path / "db")],
                       capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and "令牌文件" in r.stderr


def _serve(tmp_path, *args: str, env: dict[str, str] | None = None) -> tuple[int, subprocess.Popen]:
    port = free_port()
    tokens = write_tokens(tmp_path / "tokens.json")
    proc = subprocess.Popen([CASECORE, "serve", "--port", str(port), "--db", str(tmp_path / "db"),
                             "--tokens", str(tokens), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    return port, proc


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    return err


def test_serve_says_where_it_listens_and_logs_each_request_with_its_actor_but_not_the_token(tmp_path):
    port, proc = _serve(tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        command = json.loads(register().model_dump_json(exclude_none=True))
        assert httpx.post(base + "/commands", json=command, headers=auth("tok-village-1"), timeout=10).json()["ok"]
        assert httpx.get(base + "/households/H1", headers=auth("tok-department-qdn"), timeout=10).status_code == 200
        assert httpx.get(base + "/roster", headers=auth("wrong-token-123"), timeout=10).status_code == 401
    finally:
        err = _stop(proc)
    assert f"http://127.0.0.1:{port}" in err
    requests = [json.loads(line) for line in err.splitlines() if line.startswith("{") and '"request"' in line]
    seen = {(r["method"], r["path"], r["status"], r["actor"], r["role"]) for r in requests}
    assert ("POST", "/commands", 200, "v-cadre-1", "village") in seen
    assert ("GET", "/households/H1", 200, "ybj-qdn", "department") in seen
    assert ("GET", "/roster", 401, None, None) in seen
    for secret in ("tok-village-1", "tok-department-qdn", "wrong-token-123", "成员1",
                   command["members"][0]["person_id"]):
        assert secret not in err
    assert "警告" not in err  # loopback: no warning


def test_serve_warns_when_it_listens_beyond_this_machine_without_tls(tmp_path):
    port, proc = _serve(tmp_path, "--host", "0.0.0.0")
    err = _stop(proc)
    assert f"http://0.0.0.0:{port}" in err
    assert "警告" in err and "TLS" in err



def test_serve_without_tokens_says_how_to_start_with_the_demo_tokens_file(tmp_path):
    r = subprocess.run([CASECORE, "serve", "--db", str(tmp_path / "db")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 2
    assert "casecore demo" in r.stderr and "casecore-demo/tokens.json" in r.stderr
    (tmp_path / "casecore-demo").mkdir()
    (tmp_path / "casecore-demo" / "tokens.json").write_text("{}", encoding="utf-8")
    again = subprocess.run([CASECORE, "serve"], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin"})
    assert again.returncode == 2
    assert "casecore serve --tokens casecore-demo/tokens.json --db casecore-demo.db" in again.stderr


def test_serve_will_not_start_with_a_wrong_number_of_inspection_connections(tmp_path):
    tokens = write_tokens(tmp_path / "tokens.json")
    r = subprocess.run([CASECORE, "serve", "--db", str(tmp_path / "db"), "--tokens", str(tokens)],
                       capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "CASECORE_INSPECT_JOBS": "0"})
    assert r.returncode == 2 and "CASECORE_INSPECT_JOBS" in r.stderr
