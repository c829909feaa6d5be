"""The console's pages. Routes translate HTTP to use cases and read models and back; no rule lives here."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from adapters.console import HERE
from adapters.console.accesslog import AccessLog
from adapters.console.accounts import AccountBook
from adapters.console.sessions import COOKIE, CSRF_FIELD, LOGIN_COOKIE, Session, Sessions, csrf_ok
from adapters.http.services import Services
from adapters.readside.places import place_name, place_path
from adapters.usecases import (
    Filters,
    approval_inbox,
    command_from_form,
    households_workbook,
    raise_problems_from_findings,
    step_forms,
    village_todo,
)
from casecore import commands as c
from casecore.errors import CaseError, NotAuthorised, NotFound, ValidationFailed
from casecore.labels import event_label
from casecore.values import (
    Role,
    Rule,
)
from casecore.vocabulary import value_labels
from projections.evidence import evidence_sentences

PREFIX = "/console"
PAGE_SIZE = 50
#: the findings a page lists; the others are counted and paged (raising with none chosen raises all the filters
#: select)
FINDINGS_SHOWN = 100
#: the most rows one download holds (a county has tens of thousands of households)
EXPORT_LIMIT = 500_000


class LoginRequired(Exception):
    """No live session: back to the login page."""


class Refused(Exception):
    """A page this person may not open, or a form without its CSRF token: shown as the contract's code and
    one sentence."""

    def __init__(self, code: str, message: str, status: int = 403):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class VerifyJob:
    """`audit verify` running in the background for an auditor."""

    id: str
    started: float = field(default_factory=time.monotonic)
    done: bool = False
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 1)


def _labels() -> dict[str, Any]:
    return value_labels()


def _fmt_dt(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    return "" if value is None else str(value)


class Console:
    """Sessions, accounts, the access log and the background jobs of one served console."""

    def __init__(self, services: Services, accounts_file: Path):
        self.services = services
        self.accounts = AccountBook(accounts_file)
        self.accounts.check()
        self.sessions = Sessions()
        self.access = AccessLog(services.engine)
        self.jobs: dict[str, VerifyJob] = {}
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        env = self.templates.env
        env.globals.update(labels=_labels(), place_name=place_name, place_path=place_path, PREFIX=PREFIX,
                           CSRF_FIELD=CSRF_FIELD)
        env.filters["dt"] = _fmt_dt
        env.filters["place"] = place_path
        self.router = APIRouter(prefix=PREFIX, include_in_schema=False)
        self._routes()

    def install(self, app: FastAPI) -> None:
        app.mount(f"{PREFIX}/static", StaticFiles(directory=str(HERE / "static")), name="console-static")
        app.include_router(self.router)

        @app.exception_handler(LoginRequired)
        async def to_login(request: Request, exc: LoginRequired) -> Response:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)

        @app.exception_handler(Refused)
        async def refused(request: Request, exc: Refused) -> Response:
            session = self.sessions.find(request.cookies.get(COOKIE))
            return self.render(request, "error.html", session, {"code": exc.code, "message": exc.message},
                               status=exc.status)

    # ------------------------------------------------------------------ helpers

    def render(self, request: Request, template: str, session: Session | None, ctx: dict[str, Any],
               status: int = 200) -> HTMLResponse:
        flash = session_flash(session)
        return self.templates.TemplateResponse(
            request, template, {"session": session, "me": session.principal if session else None,
                                "flash": flash, "today": date.today(), **ctx}, status_code=status)

    def session(self, request: Request) -> Session:
        session = self.sessions.find(request.cookies.get(COOKIE))
        if session is None:
            raise LoginRequired()
        return session

    async def posted(self, request: Request) -> tuple[Session, FormData]:
        """The session and the form of a POST, after checking the form's CSRF token."""
        session = self.session(request)
        form = await request.form()
        if not csrf_ok(session.csrf, form.get(CSRF_FIELD)):  # type: ignore[arg-type]
            raise Refused("not_authorised", "表单已失效或来源不明 (缺少或不符的安全令牌); 请刷新页面后重新提交")
        return session, form

    def log(self, request: Request, session: Session, action: str, target: str) -> None:
        remote = request.client.host if request.client else ""
        self.access.record(session.login, session.principal, action, target, remote)

    @staticmethod
    def require(session: Session, *roles: Role) -> None:
        if session.principal.actor.role not in roles:
            names = "、".join(r.label for r in roles)
            raise Refused("not_authorised", f"此页面仅供{names}使用; 如需查看请联系相应人员")

    # ------------------------------------------------------------------ routes

    async def submitted(self, session: Session, doc: dict[str, Any], back: str) -> Response:
        """Decide one command posted by a form as the session's actor, note its outcome for the next page (a
        refusal with the engine's sentence, rule and code) and go back to `back`."""
        [result] = await run_in_threadpool(self.services.submit, session.principal, [doc])
        label = c.LABELS.get(doc["command"], doc["command"])
        if result["ok"]:
            session_note(session, "ok", f"已办理“{label}”", None)
        else:
            err = result["error"]
            session_note(session, "error", f"“{label}”未办理: {err['message']}", err.get("rule"), code=err["code"])
        return RedirectResponse(back, status_code=303)

    def _routes(self) -> None:
        r = self.router
        svc = self.services

        @r.get("/login", response_class=HTMLResponse)
        async def login_form(request: Request, next: str = "") -> Response:
            token = secrets.token_urlsafe(24)
            response = self.render(request, "login.html", None, {"csrf": token, "next": next, "error": "",
                                                                  "needs_totp": False, "username": ""})
            response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path=PREFIX,
                                secure=request.url.scheme == "https")
            return response

        @r.post("/login", response_class=HTMLResponse)
        async def login(request: Request) -> Response:
            form = await request.form()
            username = str(form.get("username") or "").strip()
            if not csrf_ok(request.cookies.get(LOGIN_COOKIE), form.get(CSRF_FIELD)):  # type: ignore[arg-type]
                raise Refused("not_authorised", "登录表单已失效 (缺少或不符的安全令牌); 请刷新登录页后重新登录")
            result = await run_in_threadpool(self.accounts.login, username, str(form.get("password") or ""),
                                             str(form.get("totp") or "") or None)
            if result.principal is None:
                return self.render(request, "login.html", None, {
                    "csrf": request.cookies.get(LOGIN_COOKIE), "next": form.get("next") or "",
                    "error": result.message, "needs_totp": result.needs_totp, "username": username}, status=401)
            cookie, _ = self.sessions.start(username, result.principal)
            target = _within(str(form.get("next") or ""), PREFIX + "/")
            if target.startswith(PREFIX + "/login"):
                target = PREFIX + "/"
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, cookie, httponly=True, samesite="lax", path=PREFIX,
                                secure=request.url.scheme == "https",
                                max_age=int(self.sessions.lifetime.total_seconds()))
            response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
            return response

        @r.post("/logout")
        async def logout(request: Request) -> Response:
            await self.posted(request)
            self.sessions.end(request.cookies.get(COOKIE))
            response = RedirectResponse(f"{PREFIX}/login", status_code=303)
            response.delete_cookie(COOKIE, path=PREFIX)
            return response

        @r.get("", include_in_schema=False)
        async def bare() -> Response:
            return RedirectResponse(f"{PREFIX}/", status_code=307)

        @r.get("/", response_class=HTMLResponse)
        async def dashboard(request: Request) -> Response:
            session = self.session(request)
            ctx = await run_in_threadpool(self._dashboard, session)
            return self.render(request, "dashboard.html", session, ctx)

        @r.get("/inbox", response_class=HTMLResponse)
        async def inbox(request: Request) -> Response:
            session = self.session(request)
            ctx = await run_in_threadpool(self._dashboard, session)
            if ctx["inbox"] or session.principal.actor.role in (Role.TOWNSHIP, Role.COUNTY):
                ctx["todo"] = []  # the approval inbox alone: the village work is on 工作台
            return self.render(request, "dashboard.html", session, {**ctx, "inbox_only": True})

        # ---------------------------------------------------------------- households

        @r.get("/households/{household_id}", response_class=HTMLResponse)
        async def household(request: Request, household_id: str) -> Response:
            session = self.session(request)
            try:
                ctx = await run_in_threadpool(self._household, session, household_id)
            except NotFound as exc:
                raise Refused("not_found", exc.message, 404) from None
            self.log(request, session, "view_household", household_id)
            return self.render(request, "household.html", session, ctx)

        @r.post("/households/{household_id}/commands")
        async def household_command(request: Request, household_id: str) -> Response:
            session, form = await self.posted(request)
            name = str(form.get("command") or "")
            data = {k: form.getlist(k) for k in form}
            doc = command_from_form(household_id, name, data, str(form.get("on") or date.today().isoformat()))
            doc["command_id"] = f"console:{uuid.uuid4()}"
            # the household must be in reach before anything is decided (the API's rule)
            try:
                await run_in_threadpool(svc.household, session.principal, household_id)
            except NotFound as exc:
                raise Refused("not_found", exc.message, 404) from None
            return await self.submitted(session, doc, f"{PREFIX}/households/{quote(household_id)}")

        @r.get("/search", response_class=HTMLResponse)
        async def search(request: Request, q: str = "") -> Response:
            session = self.session(request)
            rows: list[dict[str, Any]] = []
            if q.strip():
                rows = await run_in_threadpool(self._search, session, q)
                self.log(request, session, "search", q.strip())
            return self.render(request, "search.html", session, {"q": q, "rows": rows})

        @r.get("/households", response_class=HTMLResponse)
        async def listing(request: Request, division: str = "", stage: str = "", category: str = "",
                          risk_type: str = "", page: int = 1, format: str = "") -> Response:
            session = self.session(request)
            filters = Filters(division=division.strip(), stage=stage, category=category, risk_type=risk_type)
            if format == "xlsx":
                data = await run_in_threadpool(self._households_xlsx, session, filters)
                self.log(request, session, "export", f"名单 {orjson.dumps(asdict(filters)).decode()}")
                return Response(data, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                                headers={"Content-Disposition": "attachment; filename=households.xlsx"})
            page = max(1, page)
            total, rows = await run_in_threadpool(self._households, session, filters, page)
            self.log(request, session, "list", f"名单 第{page}页 {orjson.dumps(asdict(filters)).decode()}")
            return self.render(request, "households.html", session, {
                "filters": filters, "rows": rows, "total": total, "page": page,
                "pages": max(1, -(-total // PAGE_SIZE)), "query": request.url.query})

        # ---------------------------------------------------------------- ledgers and problems

        @r.get("/ledgers", response_class=HTMLResponse)
        async def ledgers(request: Request, as_of: str = "", overdue: str = "", page: int = 1) -> Response:
            session = self.session(request)
            day = _day(as_of) or date.today()
            page, overdue = max(1, page), "1" if overdue else ""
            doc = await run_in_threadpool(lambda: svc.ledgers(session.principal, day, None, limit=PAGE_SIZE,
                                                              overdue=bool(overdue), offset=(page - 1) * PAGE_SIZE))
            return self.render(request, "ledgers.html", session, {
                "as_of": day, "problems": doc["problems"], "rectifications": doc["rectifications"],
                "overdue": overdue, "total": doc["total"], "page": page,
                "pages": max(1, -(-doc["total"] // PAGE_SIZE))})

        @r.get("/problems/{problem_id}", response_class=HTMLResponse)
        async def problem(request: Request, problem_id: str, as_of: str = "") -> Response:
            session = self.session(request)
            ctx = await run_in_threadpool(self._problem, session, problem_id, _day(as_of) or date.today())
            self.log(request, session, "view_problem", problem_id)
            return self.render(request, "problem.html", session, ctx)

        @r.post("/problems/{problem_id}/commands")
        async def problem_command(request: Request, problem_id: str) -> Response:
            session, form = await self.posted(request)
            name = str(form.get("command") or "")
            doc: dict[str, Any] = {"command": name, "problem_id": problem_id,
                                   "on": str(form.get("on") or date.today().isoformat()),
                                   "command_id": f"console:{uuid.uuid4()}"}
            for key in form:
                value = str(form.get(key) or "").strip()
                if key in (CSRF_FIELD, "command", "on") or not value:
                    continue
                if "." in key:
                    outer, inner = key.split(".", 1)
                    doc.setdefault(outer, {})[inner] = value
                else:
                    doc[key] = value
            return await self.submitted(session, doc, f"{PREFIX}/problems/{quote(problem_id)}")

        @r.post("/problems")
        async def raise_problem(request: Request) -> Response:
            session, form = await self.posted(request)
            pid = f"P{date.today():%Y%m%d}-{secrets.token_hex(3).upper()}"
            doc = {"command": "raise_problem", "problem_id": pid, "on": str(form.get("on") or date.today()),
                   "kind": str(form.get("kind") or ""), "division_code": str(form.get("division_code") or ""),
                   "source": str(form.get("source") or "supervision"), "detail": str(form.get("detail") or ""),
                   "command_id": f"console:{uuid.uuid4()}"}
            if form.get("household_id"):
                doc["household_id"] = str(form.get("household_id"))
            [result] = await run_in_threadpool(svc.submit, session.principal, [doc])
            if result["ok"]:
                session_note(session, "ok", f"已登记问题 {pid}", None)
                return RedirectResponse(f"{PREFIX}/problems/{pid}", status_code=303)
            err = result["error"]
            session_note(session, "error", f"问题未登记: {err['message']}", err.get("rule"), code=err["code"])
            return RedirectResponse(_within(str(form.get("back") or ""), f"{PREFIX}/ledgers"), status_code=303)

        # ---------------------------------------------------------------- findings

        @r.get("/findings", response_class=HTMLResponse)
        async def findings(request: Request, rule: str = "", severity: str = "", township: str = "",
                           as_of: str = "", cursor: str = "") -> Response:
            session = self.session(request)
            day = _day(as_of) or date.today()
            ctx = await run_in_threadpool(self._findings, session, day, rule, severity, township, cursor or None)
            return self.render(request, "findings.html", session, {**ctx, "query": request.url.query})

        @r.post("/findings/raise")
        async def findings_raise(request: Request) -> Response:
            session, form = await self.posted(request)
            day = _day(str(form.get("as_of") or "")) or date.today()
            keys = set(form.getlist("key"))
            counts = await run_in_threadpool(self._raise_findings, session, day, str(form.get("rule") or ""),
                                             str(form.get("township") or ""), keys)
            session_note(session, "ok" if not counts.get("refused") else "error",
                         f"登记问题 {counts.get('raised', 0)} 个, 已登记过 {counts.get('already', 0)} 个"
                         + (f"; 未登记 {counts['refused']} 个: {counts['message']}" if counts.get("refused") else ""),
                         None)
            return RedirectResponse(f"{PREFIX}/findings?{form.get('query') or ''}", status_code=303)

        # ---------------------------------------------------------------- audit

        @r.get("/audit", response_class=HTMLResponse)
        async def audit_page(request: Request, page: int = 1) -> Response:
            session = self.session(request)
            self.require(session, Role.AUDITOR)
            total, rows = await run_in_threadpool(self.access.page, (max(1, page) - 1) * PAGE_SIZE, PAGE_SIZE,
                                                  None, session.principal.personal_data)
            last = max(self.jobs.values(), key=lambda j: j.started, default=None)
            return self.render(request, "audit.html", session, {
                "log_total": total, "log_rows": rows, "page": max(1, page), "job": last, "replay": None})

        @r.get("/audit/replay", response_class=HTMLResponse)
        async def audit_replay(request: Request, household_id: str, as_of: str = "",
                               recorded_before: str = "") -> Response:
            session = self.session(request)
            self.require(session, Role.AUDITOR)
            result = await run_in_threadpool(self._replay, session, household_id.strip(), _day(as_of),
                                             _moment(recorded_before))
            self.log(request, session, "replay", f"{household_id} as_of={as_of} recorded_before={recorded_before}")
            total, rows = await run_in_threadpool(self.access.page, 0, PAGE_SIZE, None, session.principal.personal_data)
            return self.render(request, "audit.html", session, {
                "log_total": total, "log_rows": rows, "page": 1, "job": None, "replay": result,
                "form": {"household_id": household_id, "as_of": as_of, "recorded_before": recorded_before}})

        @r.post("/audit/verify", response_class=HTMLResponse)
        async def audit_verify(request: Request) -> Response:
            session, _ = await self.posted(request)
            self.require(session, Role.AUDITOR)
            job = VerifyJob(uuid.uuid4().hex[:12])
            self.jobs[job.id] = job
            threading.Thread(target=self._run_verify, args=(job,), daemon=True).start()
            return self.templates.TemplateResponse(request, "_verify_job.html", {"job": job, "PREFIX": PREFIX})

        @r.get("/audit/verify/{job_id}", response_class=HTMLResponse)
        async def audit_verify_job(request: Request, job_id: str) -> Response:
            session = self.session(request)
            self.require(session, Role.AUDITOR)
            job = self.jobs.get(job_id)
            if job is None:
                raise Refused("not_found", "没有这项核验任务; 请重新运行核验", 404)
            return self.templates.TemplateResponse(request, "_verify_job.html", {"job": job, "PREFIX": PREFIX})

        @r.get("/audit/checkpoint")
        async def audit_checkpoint(request: Request) -> Response:
            session = self.session(request)
            self.require(session, Role.AUDITOR)
            doc = await run_in_threadpool(self._checkpoint)
            self.log(request, session, "export", "检查点")
            return Response(orjson.dumps(doc, option=orjson.OPT_INDENT_2), media_type="application/json",
                            headers={"Content-Disposition": "attachment; filename=casecore-checkpoint.json"})

        # ---------------------------------------------------------------- monthly

        @r.get("/monthly", response_class=HTMLResponse)
        async def monthly(request: Request, month: str = "") -> Response:
            session = self.session(request)
            month = month or f"{date.today():%Y-%m}"
            try:
                doc = await run_in_threadpool(svc.monthly_dispatch, session.principal, month, None)
            except ValidationFailed as exc:
                raise Refused("validation_error", exc.message, 422) from None
            chart = {"townships": [], "series": {}}
            from adapters.output.reports import COUNT_HEADERS

            for county in doc["counties"]:
                for t in county["townships"]:
                    chart["townships"].append(place_name(t["township_code"]))
                    for k in COUNT_HEADERS:
                        chart["series"].setdefault(COUNT_HEADERS[k], []).append(t[k])
            return self.render(request, "monthly.html", session, {
                "month": month, "doc": doc, "headers": COUNT_HEADERS,
                "chart": chart})

    # ------------------------------------------------------------------ page data (run in threads)

    def _dashboard(self, session: Session) -> dict[str, Any]:
        p = session.principal
        role = p.actor.role
        svc = self.services
        svc.fresh("roster", "timeline")
        today = date.today()
        ctx: dict[str, Any] = {"role": role, "todo": [], "inbox": [], "stages": [], "findings_summary": None}
        with svc.connect() as conn:
            from sqlalchemy import func, select

            from projections.divisions import within
            from projections.roster import roster

            where = [within(roster.c.division_code, p.scope)]
            ctx["stages"] = [(s, n) for s, n in conn.execute(
                select(roster.c.stage, func.count()).where(*where).group_by(roster.c.stage))]
            if role == Role.VILLAGE:
                ctx["todo"] = village_todo(conn, svc.app.policies, p.scope, today)
            elif role in (Role.TOWNSHIP, Role.COUNTY):
                ctx["inbox"] = approval_inbox(conn, svc.app.policies, role, p.scope, today)
                if role == Role.TOWNSHIP:
                    ctx["todo"] = village_todo(conn, svc.app.policies, p.scope, today)
        if role == Role.INSPECTOR:
            ctx["findings_summary"] = self._findings_summary(session, today)
        if role == Role.AUDITOR:
            last = max(self.jobs.values(), key=lambda j: j.started, default=None)
            ctx["job"] = last
            ctx["log_total"], ctx["log_rows"] = self.access.page(0, 10, None, p.personal_data)
        return ctx

    def _findings_summary(self, session: Session, today: date) -> dict[str, Any]:
        """Findings by rule and by township: counted in SQL from the newest stored inspection run (`casecore
        inspect --store --every …` keeps today's), else from the rules run now."""
        from projections import findings_store

        svc = self.services
        p = session.principal
        with svc.connect() as conn:
            run = findings_store.latest_run(conn, today)
            if run is not None:
                by_rule, by_township = findings_store.counts(conn, run.as_of, p.scope or None)
        if run is None:
            doc = svc.findings(p, today, None, None)
            by_rule, by_township = {}, {}
            for f in doc["findings"]:
                by_rule[f["rule"]] = by_rule.get(f["rule"], 0) + 1
                by_township[f["division_code"][:9]] = by_township.get(f["division_code"][:9], 0) + 1
        return {"as_of": run.as_of if run else today, "computed_at": run.computed_at if run else None,
                "count": sum(by_rule.values()), "by_rule": sorted(by_rule.items(), key=lambda x: (-x[1], x[0])),
                "by_township": sorted(by_township.items())}

    def _household(self, session: Session, household_id: str) -> dict[str, Any]:
        svc = self.services
        state = svc.household(session.principal, household_id)
        events = svc.timeline(session.principal, household_id)
        for e in events:
            recorded = e["recorded_at"].date() if isinstance(e["recorded_at"], datetime) else None
            e["late_days"] = (recorded - e["on"]).days if recorded and isinstance(e["on"], date) else 0
        forms = step_forms(state, session.principal.actor.role)
        clocks = []
        policy = svc.app.policies.on(date.today())
        if state.get("procedure_step") == "in_publicity":
            opened = max((e["on"] for e in events if e["type"] == "publicity_opened"), default=None)
            if opened is not None:
                from datetime import timedelta

                days = policy.procedure.publicity_days
                closes = opened + timedelta(days=days)
                clocks.append({"what": f"公示期 {days} 天", "since": opened, "deadline": closes,
                               "text": f"公示自 {opened} 开始, 最早于 {closes} 结束公示"})
        if state.get("open_procedure") == "inclusion" and state.get("procedure_started_on"):
            from datetime import timedelta

            started = state["procedure_started_on"]
            limit = policy.procedure.identification_days_limit
            clocks.append({"what": f"识别时限 {limit} 天", "since": started,
                           "deadline": started + timedelta(days=limit),
                           "text": f"线索自 {started} 起, 应于 {started + timedelta(days=limit)} 前完成识别"})
        return {"h": state, "events": events, "forms": forms, "clocks": clocks,
                "step_label": _step_text(state)}

    def _search(self, session: Session, q: str) -> list[dict[str, Any]]:
        return self.services.search(session.principal, q)

    def _households(self, session: Session, filters: Filters, page: int) -> tuple[int, list[dict[str, Any]]]:
        try:
            return self.services.households_page(session.principal, filters, (page - 1) * PAGE_SIZE, PAGE_SIZE)
        except NotAuthorised as exc:
            raise Refused(exc.code, exc.message) from None

    def _households_xlsx(self, session: Session, filters: Filters) -> bytes:
        try:
            _, rows = self.services.households_page(session.principal, filters, 0, EXPORT_LIMIT)
        except NotAuthorised as exc:
            raise Refused(exc.code, exc.message) from None
        return households_workbook(rows)

    def _problem(self, session: Session, problem_id: str, as_of: date) -> dict[str, Any]:
        try:
            doc = self.services.problem(session.principal, problem_id, as_of)
        except NotFound as exc:
            raise Refused("not_found", exc.message, 404) from None
        return {"p": doc["problem"], "history": doc["history"], "acts": doc["rectifications"]}

    def _findings(self, session: Session, day: date, rule: str, severity: str, township: str,
                  cursor: str | None = None) -> dict[str, Any]:
        svc = self.services
        try:
            # a page of FINDINGS_SHOWN and the total (a severity is not stored apart: filtered here, over all)
            doc = svc.findings(session.principal, day, [rule] if rule else None, township or None,
                               None if severity else FINDINGS_SHOWN, None if severity else cursor,
                               count_cadre_unknown=False)
        except (ValidationFailed, NotAuthorised) as exc:
            raise Refused(exc.code, exc.message, 422 if exc.code == "validation_error" else 403) from None
        rows = [f for f in doc["findings"] if not severity or f["severity"] == severity]
        count = len(rows) if severity else doc["total"]
        rows = rows[:FINDINGS_SHOWN]
        for f in rows:
            f["evidence_text"] = "; ".join(evidence_sentences(f.get("evidence") or {}))
        return {"as_of": day, "rule": rule, "severity": severity, "township": township, "rows": rows,
                "count": count, "shown": len(rows), "rules": [(r.value, r.label) for r in Rule],
                "computed_at": doc.get("computed_at"), "next_cursor": doc.get("next_cursor"), "cursor": cursor}

    def _raise_findings(self, session: Session, day: date, rule: str, township: str, keys: set[str]
                        ) -> dict[str, Any]:
        from projections.queries.inspector import inspect

        self.require(session, Role.INSPECTOR, Role.COUNTY, Role.AUDITOR, Role.TOWNSHIP)
        svc = self.services
        prefix = svc.area(session.principal, township or None)
        svc.fresh("casefacts")
        with svc.connect() as conn:
            found = inspect(conn, svc.app.policies, day, [rule] if rule else None, prefix or None)
        chosen = [f for f in found if not keys or f.key in keys]
        actor = session.principal.actor.model_dump(mode="json", exclude_none=True)
        with svc.writing():
            counts, refusals = raise_problems_from_findings(svc.app, chosen, day, actor)
        refused = sum(v for k, v in counts.items() if k not in ("raised", "duplicate", "already"))
        return {**counts, "refused": refused, "message": refusals[0] if refusals else ""}

    def _replay(self, session: Session, household_id: str, as_of: date | None, moment: datetime | None) -> Any:
        from projections.queries.replay import replay, stream_of

        svc = self.services
        try:
            svc.household(session.principal, household_id)
            result = replay(svc.app, stream_of(household_id), as_of=as_of, recorded_before=moment)
        except CaseError as exc:
            raise Refused(exc.code, exc.message, 404 if exc.code == "not_found" else 422) from None
        # masked as the household's page and timeline are, for a reader not entitled to personal data
        for e in result.entries:
            e.actor, e.payload, e.after = svc.shown(session.principal, [e.actor, e.payload, e.after])
        result.state, result.after = svc.shown(session.principal, [result.state, result.after])
        return result

    def _run_verify(self, job: VerifyJob) -> None:
        from adapters.console.accesslog import check_access_log
        from adapters.store.audit import audit
        from adapters.store.hashchain import HashedRecorder

        try:
            recorder = self.services.app.recorder
            if not isinstance(recorder, HashedRecorder):
                raise RuntimeError("此事件库未启用哈希链, 无法核验")
            report = audit(recorder)
            log = check_access_log(self.services.engine)
            job.result = {**report.as_dict(), "access_log_rows": log.rows if log else 0,
                          "access_log_problems": log.problems if log else []}
        except Exception as exc:  # shown to the auditor, never a traceback
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            job.done = True

    def _checkpoint(self) -> dict[str, Any]:
        from adapters.integration.feed import deployment_source
        from adapters.store.audit import audit, checkpoint_document

        report = audit(self.services.app.recorder)  # type: ignore[arg-type]
        return checkpoint_document(report, self.services.settings.source or deployment_source())


# ---------------------------------------------------------------------------------------------------- small helpers


def session_note(session: Session, kind: str, message: str, rule: str | None, code: str | None = None) -> None:
    session.notes.append({"kind": kind, "message": message, "rule": rule, "code": code})


def session_flash(session: Session | None) -> list[dict[str, Any]]:
    if session is None:
        return []
    notes, session.notes = session.notes, []
    return notes


def _within(target: str, default: str) -> str:
    """A posted place to go next, when it is one of the console's own pages; else `default` (a form must not
    send its reader to another site)."""
    return target if target.startswith(PREFIX + "/") else default


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise Refused("validation_error", f"日期 {text!r} 无效; 应为 YYYY-MM-DD, 如 2023-06-30", 422) from None


def _moment(text: str) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Refused("validation_error", f"时间 {text!r} 无效; 应为 2023-03-05T10:00 这样的时间", 422) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _step_text(state: dict[str, Any]) -> str:
    from casecore.household import step_label

    if state.get("open_procedure") and state.get("procedure_step"):
        return step_label(state["open_procedure"], state["procedure_step"])
    return ""


__all__ = ["Console", "LoginRequired", "Refused", "event_label"]
