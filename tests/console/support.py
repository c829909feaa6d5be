"""The console on a small demo store, served for real (uvicorn on a free port), and the accounts of its
people: one per role in the demo county 黎平县 (522631)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CASECORE = str(Path(sys.executable).parent / "casecore")
CHROMIUM = os.environ.get("CASECORE_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "demo-pass-2023"
VILLAGE = "522631101001"
TOWNSHIP = "522631101000"
COUNTY = "522631000000"

#: login → (name, role, unit, extra `accounts add` options)
PEOPLE: dict[str, tuple[str, str, str, list[str]]] = {
    "village": ("村干部李明", "village", VILLAGE, []),
    "township": ("乡镇干部王芳", "township", TOWNSHIP, []),
    "county": ("县级干部赵强", "county", COUNTY, []),
    # the village cadre also holds a county account: the same person (same id) at two levels
    "village-at-county": ("村干部李明", "county", COUNTY, ["--id", "village"]),
    "inspector": ("督查员陈静", "inspector", "县督查组", ["--scope", "522631"]),
    "auditor": ("审计员周伟", "auditor", "县审计局", []),
    "department": ("县医保局", "department", "县医保局", ["--scope", "522631"]),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_demo(where: Path, households: int = 150) -> Path:
    """A demo county's store, made once (`casecore demo`)."""
    db = where / "demo.db"
    subprocess.run([CASECORE, "demo", "--households", str(households), "--db", str(db), "--output",
                    str(where / "out")], check=True, capture_output=True, timeout=300)
    return db


def write_accounts(path: Path) -> Path:
    """The people's accounts (cheap argon2 parameters: tests log in often; the CLI is tested on its own)."""
    from argon2 import PasswordHasher

    from adapters.console.accounts import AccountBook

    book = AccountBook(path, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    for login, (name, role, unit, extra) in PEOPLE.items():
        options = dict(zip(extra[::2], extra[1::2], strict=True))
        book.add(login, PASSWORD, name=name, role=role, unit=unit, scope=options.get("--scope"),
                 actor_id=options.get("--id"))
    return path


@dataclass
class Served:
    """A console served in this process (so a test can reach its sessions), and where to find it."""

    base: str
    app: Any
    server: Any
    thread: threading.Thread

    @property
    def console(self) -> Any:
        return self.app.state.console

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(db: Path, accounts: Path) -> Served:
    import uvicorn

    from adapters.http import Settings, create_app

    app = create_app(Settings(db=str(db), accounts_file=accounts))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(base + "/console/login", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    return Served(base, app, server, thread)


def copy_store(db: Path, to: Path) -> Path:
    to.mkdir(parents=True, exist_ok=True)
    target = to / db.name
    shutil.copy(db, target)
    return target


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def login(client: httpx.Client, base: str, user: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get(base + "/console/login")
    return client.post(base + "/console/login", data={"username": user, "password": password,
                                                      "csrf_token": csrf_of(page.text)})
