"""The console: web pages for cadres, inspectors and auditors (docs/console.md), served under `/console/`
beside the HTTP API by `casecore serve --accounts FILE`.

Server-rendered (Jinja2) pages, htmx and ECharts served from this package (no CDN), one stylesheet. Every
page calls the same use cases and read models as the CLI and the API (`adapters.usecases`,
`adapters.http.services.Services`, `projections.*`); a posted step is a contract command decided by the same
application. Reach and masking are the API's (`Principal`); every household view, search, export and replay
is written to the read-access log (`adapters.console.accesslog`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from adapters.console.routes import Console
    from adapters.http.services import Services

HERE = Path(__file__).parent


def mount_console(app: FastAPI, services: Services, accounts_file: Path) -> Console:
    """Add the console's routes and static files to the service; returns the console (its sessions, access
    log and jobs)."""
    from adapters.console.routes import Console

    console = Console(services, accounts_file)
    console.install(app)
    return console
