"""The `casecore` command line (typer + rich).

Each module in this package adds its commands with `register(app)`; modules are discovered in name
order, so a capability lives in its own module.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Annotated

import typer

app = typer.Typer(
    name="casecore",
    help="防止返贫动态监测和帮扶 — event-sourced case management.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _options(
    chain_key_file: Annotated[str | None, typer.Option(
        "--chain-key-file", envvar="CASECORE_CHAIN_KEY_FILE",
        help="哈希链密钥文件 (写入进程用最新生效的密钥, 审计用全部密钥; 见 docs/deployment.md)")] = None,
) -> None:
    """防止返贫动态监测和帮扶 — event-sourced case management."""
    from adapters.cli._common import CHAIN_KEY_FILE

    CHAIN_KEY_FILE[0] = chain_key_file


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_all()


def main() -> None:
    try:
        app()
    except Exception as exc:
        from adapters.cli._common import err_console, store_failed

        message = store_failed(exc)
        if message is None:
            raise
        err_console.print(f"[red]{message}[/red]", soft_wrap=True)  # a path stays on one line, to be copied
        raise SystemExit(2) from None
