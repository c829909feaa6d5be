"""The HTTP service (FastAPI): commands in, households, roster, findings, ledgers, reports and events out.

`create_app(settings)` is the only way in: nothing (no engine, no application) is created at import time.
Every request carries a bearer token bound to an actor (see `adapters.http.auth`); docs/http.md describes
the endpoints, the tokens file and who sees what.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.http.auth import TokenBook, TokenFileError
from adapters.http.bodylimit import BodyLimit
from adapters.http.settings import Settings
from adapters.store.failures import store_failure
from adapters.store.storage import resolve_store, without_password
from casecore import commands as c
from casecore.errors import CaseError

log = structlog.get_logger("casecore.http")

DESCRIPTION = """
防止返贫动态监测和帮扶 — 事件溯源的办理系统的 HTTP 接口 (casecore)。

* 每个请求须带令牌 (`Authorization: Bearer <token>`); 令牌绑定一名办理人 (id、角色、单位)。
* 命令 (`POST /commands`) 的办理人必须是令牌所属办理人; 单位只能在其区划代码前缀内办理和查看。
* 四眼原则等规则由办理引擎执行, 与命令行 (`casecore apply`) 完全一致。
* 错误一律为 `{"ok": false, "error": {"code", "message", "rule"?}}`, code 为契约错误码。
"""

TAGS = [
    {"name": "commands 命令", "description": "办理命令: 建档、线索、识别程序、帮扶、风险消除、整改销号"},
    {"name": "households 户", "description": "一户的当前状态和办理记录"},
    {"name": "roster 监测对象名单", "description": "监测对象名单 (在令牌辖区内)"},
    {"name": "findings 问题线索", "description": "督查规则发现的问题"},
    {"name": "ledgers 双台账", "description": "问题台账与整改台账"},
    {"name": "reports 调度通报", "description": "一月一调度一通报"},
    {"name": "events 事件流", "description": "CloudEvents 1.0 事件流, 按位置续读"},
]

STATUS_CODES = {400: "validation_error", 401: "not_authorised", 403: "not_authorised", 404: "not_found",
                405: "validation_error", 409: "conflict", 413: "validation_error", 415: "validation_error",
                422: "validation_error", 503: "conflict"}
ERROR_STATUS = {"validation_error": 422, "not_found": 404, "not_authorised": 403, "conflict": 409,
                "invalid_transition": 409, "policy_violation": 409}


def error_body(code: str, message: str, rule: str | None = None) -> dict[str, Any]:
    error = {"code": code, "message": message}
    if rule:
        error["rule"] = rule
    return {"ok": False, "error": error}


def _store_name(settings: Settings) -> str:
    return without_password(resolve_store(settings.db).url)


def _install_error_handlers(app: FastAPI, settings: Settings) -> None:
    from eventsourcing.persistence import OperationalError as LibraryOperationalError
    from sqlalchemy.exc import OperationalError as SAOperationalError

    async def store_unusable(request: Request, exc: Exception) -> JSONResponse:
        message = store_failure(exc, _store_name(settings)) or f"事件库暂时无法读写: {exc}"
        # the store is locked by another writer, read-only or unreachable: the caller may retry later
        return JSONResponse(error_body("conflict", message), status_code=503, headers={"Retry-After": "5"})

    for kind in (sqlite3.OperationalError, LibraryOperationalError, SAOperationalError):
        app.add_exception_handler(kind, store_unusable)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "validation_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:3]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "path", "body"))
            parts.append(f"{where}: {e.get('msg', '')}")
        return JSONResponse(error_body("validation_error", "请求参数有误 — " + "; ".join(parts)), status_code=422)

    @app.exception_handler(CaseError)
    async def refused(request: Request, exc: CaseError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.rule), status_code=ERROR_STATUS.get(exc.code, 400))


def _install_request_log(app: FastAPI) -> None:
    """One log line a request: method, path (ID numbers in it masked, no query string: a search may hold a
    name), status, milliseconds and the caller's actor id and role — never the token, never a body."""
    from adapters.integration.feed import mask

    @app.middleware("http")
    async def request_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        status_code = 500
        try:
            response = await call_next(request)
            status_code = response.status_code
            return response
        finally:
            principal = getattr(request.state, "principal", None)
            log.info("request", method=request.method, path=mask(request.url.path, "path"), status=status_code,
                     ms=round((time.perf_counter() - started) * 1000, 1),
                     actor=mask(principal.actor.id, "actor") if principal else None,
                     role=str(principal.actor.role) if principal else None)


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, plus the contract's command schemas (request bodies are validated by the
    command models, one command at a time, so FastAPI does not see them)."""
    if app.openapi_schema:
        return app.openapi_schema
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                      tags=app.openapi_tags)
    commands = TypeAdapter(c.AnyCommand).json_schema(ref_template="#/components/schemas/{model}")
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(commands.pop("$defs", {}))
    commands["title"] = "Command"
    commands["description"] = "契约命令之一, 由 `command` 字段区分 (one contract command, told apart by `command`)"
    schemas["Command"] = commands
    app.openapi_schema = doc
    return doc


STATIC = Path(__file__).parent / "static"


def _install_docs(app: FastAPI) -> None:
    """/docs and /redoc with their scripts and styles served from the package (adapters/http/static), not a
    public CDN: on an intranet the pages would otherwise be blank."""
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    title = f"{app.title} — 接口文档"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=title,
                                   swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url="/static/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url="/static/swagger-ui/favicon-32x32.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url or "/openapi.json", title=title,
                              redoc_js_url="/static/redoc/redoc.standalone.js",
                              redoc_favicon_url="/static/swagger-ui/favicon-32x32.png", with_google_fonts=False)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service: open the store, load the tokens, mount one router per resource."""
    from adapters.http.routers import commands, directory, households, listings
    from adapters.http.services import Services

    settings = settings or Settings.from_env()
    if settings.tokens_file is None and settings.accounts_file is None:
        raise TokenFileError("未指定令牌文件; 请用 --tokens FILE 或 CASECORE_TOKENS 指定 (JSON: 令牌 → 办理人)")
    # a console without API tokens: the API answers every request with not_authorised
    tokens = TokenBook.from_file(settings.tokens_file) if settings.tokens_file else TokenBook({})
    services = Services(settings, tokens)
    from adapters.readside import places

    places.load(services.app)  # townships' and villages' names of this store, for the pages and the API

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        services.close()

    app = FastAPI(
        title="casecore 防止返贫动态监测和帮扶",
        version="1",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    _install_docs(app)
    app.state.services = services
    for router in (commands.router, directory.households, households.router, directory.search, listings.roster,
                   listings.findings, listings.ledgers, directory.problems, listings.reports, listings.events,
                   directory.divisions):
        app.include_router(router)
    if settings.accounts_file is not None:
        from adapters.console import mount_console

        try:
            app.state.console = mount_console(app, services, settings.accounts_file)
        except Exception:
            services.close()
            raise
    _install_error_handlers(app, settings)
    _install_request_log(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


__all__ = ["Settings", "TokenFileError", "create_app"]
