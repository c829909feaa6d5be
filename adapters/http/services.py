"""What the HTTP routes call: the application, the projection tables and the callers' reach, composed once
per service (`create_app`). Routes translate HTTP to these calls and back; the rules live in the domain
(commands) and in the projections' query functions (reads)."""

from __future__ import annotations

import base64
import json
import threading
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from adapters.bootstrap import OpenSettings, Wiring, wire
from adapters.http.auth import Principal, TokenBook
from adapters.http.settings import Settings
from adapters.integration.feed import mask
from adapters.integration.intake import parse_object
from adapters.readside.readmodels import ReadModels
from casecore import commands as c
from casecore import limits as lim
from casecore.application import CaseManagement, household_not_found, problem_not_found
from casecore.errors import CaseError, NotAuthorised, NotFound, ValidationFailed
from casecore.household import public_state
from casecore.values import Stage
from projections import timeline as tl


class Services:
    """The composition root of the HTTP service: one application, one engine, one token book."""

    def __init__(self, settings: Settings, tokens: TokenBook):
        self.settings = settings
        self.tokens = tokens
        self.wiring: Wiring = wire(OpenSettings(settings.db))
        self.app: CaseManagement = self.wiring.app
        try:
            self.read = ReadModels(self.app)  # every projection of the registry, beside the events
        except Exception:
            self.app.close()
            raise
        self.engine: Engine = self.read.engine
        from projections import findings_store, monthly_summary

        with self.engine.begin() as conn:
            findings_store.create(conn)
            monthly_summary.create(conn)
        # the bulk path keeps a cache of aggregates: one writer at a time per process
        self._write_lock = threading.Lock()
        #: one lock per projection: a catch-up of the roster never holds up a read of the timeline
        self._catch_up_locks = {p.name: threading.Lock() for p in self.read.runner.projections}

    def close(self) -> None:
        self.read.close()
        self.app.close()

    def writing(self) -> threading.Lock:
        """Held around every decision of commands: the bulk path's cache of aggregates takes one writer at a
        time per process (`with services.writing(): …`)."""
        return self._write_lock

    # ------------------------------------------------------------------ reads are fresh

    def fresh(self, *names: str) -> None:
        """Fold what the log holds beyond these projections' positions (unless workers keep them)."""
        if not self.settings.catch_up_on_read:
            return
        for name in names:
            with self._catch_up_locks[name]:
                self.read.catch_up(name)

    def connect(self) -> Connection:
        return self.engine.connect()

    def shown(self, principal: Principal, doc: Any) -> Any:
        """The document as this caller may see it (personal data masked unless entitled)."""
        return doc if principal.personal_data else mask(doc)

    # ------------------------------------------------------------------ commands

    def submit(self, principal: Principal, items: list[Any]) -> list[dict[str, Any]]:
        """Decide the commands in order, each on its own (the bulk path), after checking that each carries
        the token's actor and stays within the token's reach. Results are the contract's, `line` = 1-based
        index in the request."""
        known: dict[str, str] = {}
        admitted = [self._admit(principal, self._with_actor(principal, item), known) for item in items]
        with self.writing():
            outcomes = list(self.app.handle_many(admitted, batch_size=500))
        return [o.as_dict(line=n) for n, o in enumerate(outcomes, start=1)]

    @staticmethod
    def _with_actor(principal: Principal, item: Any) -> Any:
        """A command without `actor` acts as the token's actor."""
        if isinstance(item, dict) and "actor" not in item:
            return {**item, "actor": principal.actor.model_dump(mode="json", exclude_none=True)}
        return item

    def _admit(self, principal: Principal, item: Any, known: dict[str, str]) -> c.Command | CaseError:
        cmd = parse_object(item)
        if isinstance(cmd, CaseError):
            return cmd
        if not principal.same_actor(cmd.actor):
            return NotAuthorised(
                f"命令的办理人 {cmd.actor.id} ({cmd.actor.role}, {cmd.actor.unit}) 与令牌所属办理人 "
                f"{principal.actor.id} ({principal.actor.role}, {principal.actor.unit}) 不符; 请以令牌所属办理人提交"
            )
        if isinstance(cmd, (c.RegisterHousehold, c.RaiseProblem)):
            # the division is the command's own: saying it lies outside the reach tells nothing stored
            if isinstance(cmd, c.RegisterHousehold) and self._division_of(cmd.household_id, known) is None:
                known[cmd.household_id] = cmd.division_code  # later commands of the request act on it
            if not principal.reaches(cmd.division_code):
                return NotAuthorised(
                    f"区划 {cmd.division_code} 不在令牌的办理范围 {principal.scope or '全部'} 内; 请由属地单位办理")
            return cmd
        if principal.scope == "":
            return cmd
        # a case outside the caller's reach answers exactly as a missing one: nobody learns that it exists,
        # where it is or what state it is in
        if isinstance(cmd, c.HouseholdCommand):
            division = self._division_of(cmd.household_id, known)
            if division is not None and not principal.reaches(division):
                return household_not_found(cmd.household_id)
            return cmd
        pid = cmd.problem_id  # type: ignore[attr-defined]
        try:
            problem_division = str(self.app.get_problem(pid).division_code)
        except NotFound:
            return cmd  # the domain reports it
        if not principal.reaches(problem_division):
            return problem_not_found(pid)
        return cmd

    def _division_of(self, household_id: str, known: dict[str, str]) -> str | None:
        """The division code of a stored household (or one registered earlier in the same request); None
        when there is none."""
        if household_id not in known:
            try:
                known[household_id] = self.app.get_household(household_id).division_code
            except NotFound:
                return None
        return known[household_id]

    # ------------------------------------------------------------------ one household

    def household(self, principal: Principal, household_id: str) -> dict[str, Any]:
        """A household's current state (CONTRACT "Household state"), or NotFound when it does not exist or
        lies outside the caller's reach (the two are not told apart)."""
        try:
            h = self.app.get_household(household_id)
        except NotFound:
            h = None
        if h is None or not principal.reaches(h.division_code):
            raise NotFound(f"户 {household_id} 不存在或不在您的查看范围内")
        state = public_state(h)
        state["stage_label"] = Stage(state["stage"]).label
        return self.shown(principal, state)

    def timeline(self, principal: Principal, household_id: str) -> list[dict[str, Any]]:
        """A household's whole history, read from the log itself (never behind it, whatever the projections'
        positions), or NotFound when it does not exist or lies outside the caller's reach."""
        rows = tl.stream_history(self.app, household_id)
        division = rows[0]["payload"].get("division_code") if rows and rows[0]["type"] == "registered" else None
        if division is None or not principal.reaches(division):
            raise NotFound(f"户 {household_id} 不存在或不在您的查看范围内")
        return [self.shown(principal, r) for r in rows]

    # ------------------------------------------------------------------ listings (each within the caller's reach)

    def area(self, principal: Principal, requested: str | None) -> str:
        """The division prefix a listing is read with, or NotAuthorised when the prefix asked for lies
        outside the caller's reach."""
        prefix = narrow(principal.scope, requested)
        if prefix is None:
            raise NotAuthorised(f"区划 {requested} 不在令牌的查看范围 {principal.scope or '全部'} 内")
        return prefix

    def roster(self, principal: Principal, division: str | None, limit: int | None = None,
               cursor: str | None = None) -> dict[str, Any]:
        """A page of the roster within the caller's reach: `rows`, `count` (this page's), `total` (every
        page's) and `next_cursor` (None on the last page)."""
        from projections.roster import monitored_roster, roster_total

        after = None if cursor is None else read_cursor(cursor, 2)
        prefix = self.area(principal, division)
        self.fresh("roster")
        with self.connect() as conn:
            # one row more than the page: whether there is a next page
            rows = monitored_roster(conn, prefix or None, limit=None if limit is None else limit + 1,
                                    after=(after[0], after[1]) if after else None)
            total = len(rows) if limit is None and after is None else roster_total(conn, prefix or None)
        next_cursor = None
        if limit is not None and len(rows) > limit:
            rows = rows[:limit]
            next_cursor = make_cursor(rows[-1]["division_code"], rows[-1]["household_id"])
        return {"division": prefix or None, "count": len(rows), "total": total, "next_cursor": next_cursor,
                "rows": self.shown(principal, rows)}

    def ledgers(self, principal: Principal, as_of: date, division: str | None, limit: int | None = None,
                cursor: str | None = None, overdue: bool = False, offset: int = 0) -> dict[str, Any]:
        """The double ledger as of a date within the caller's reach. With `limit`, one page of the problem
        ledger (after `cursor`, else from `offset`) and the rectification acts of its problems: `count` (this
        page's problems), `total` (every page's) and `next_cursor` (None on the last page). `overdue`: only
        the problems overdue on `as_of`."""
        from projections.ledger import problem_page, problem_rows, rectification_rows

        check_as_of(as_of)
        prefix = self.area(principal, division)
        after = None
        if cursor is not None:
            key = read_cursor(cursor, 3)
            after = (key[0], _day(key[1]), key[2])
        self.fresh("ledger")
        with self.connect() as conn:
            if limit is None and after is None:
                problems = problem_rows(conn, as_of, prefix or None)
                if overdue:
                    problems = [p for p in problems if p["overdue"]]
                acts = rectification_rows(conn, as_of, prefix or None)
                if overdue:
                    late = {p["problem_id"] for p in problems}
                    acts = [a for a in acts if a["problem_id"] in late]
                total, next_cursor = len(problems), None
            else:
                page = problem_page(conn, as_of, prefix or None, limit=limit, after=after,
                                    offset=offset, overdue_only=overdue)
                problems, total = page.rows, page.total
                ids = [p["problem_id"] for p in problems]
                acts = rectification_rows(conn, as_of, prefix or None, ids) if ids else []
                next_cursor = None if page.next_key is None else make_cursor(
                    page.next_key[0], page.next_key[1].isoformat(), page.next_key[2])
        doc = {"as_of": as_of, "division": prefix or None, "count": len(problems), "total": total,
               "next_cursor": next_cursor, "problems": problems, "rectifications": acts}
        return self.shown(principal, doc)

    def monthly_report(self, principal: Principal, month: str, division: str | None) -> dict[str, Any]:
        from adapters.output.reports import build_monthly

        _check_month(month)
        prefix = self.area(principal, division)
        self.fresh("ledger", "activity")
        with self.connect() as conn:
            return self.shown(principal, build_monthly(conn, self.app.policies, month, prefix or None))

    def monthly_dispatch(self, principal: Principal, month: str, division: str | None) -> dict[str, Any]:
        """The month's counts per county and township, key counties and total (`monthly_report`'s figures,
        without its milestones), from the kept monthly summary."""
        from adapters.output.reports import monthly_dispatch

        _check_month(month)
        prefix = self.area(principal, division)
        self.fresh("ledger", "activity")
        return self.shown(principal, monthly_dispatch(self.engine, self.app.policies, month, prefix or None))

    def findings(self, principal: Principal, as_of: date, rules: list[str] | None,
                 division: str | None, limit: int | None = None, cursor: str | None = None,
                 count_cadre_unknown: bool = True) -> dict[str, Any]:
        """The inspector's findings as of a date, within the caller's reach (CONTRACT "Findings"): the stored
        run of that date when there is one (`computed_at` and the positions it saw say how current it is;
        pages by `limit` and `cursor`), else the rules run now. `count_cadre_unknown=False` leaves out the
        count of households whose cadre is unknown (0) for a reader that does not show it."""
        from adapters.usecases import run_rules, unknown_rules
        from projections import findings_store
        from projections.queries.inspector import RULES, Inspector

        check_as_of(as_of)
        unknown = unknown_rules(rules)
        if unknown:
            raise ValidationFailed(f"未知规则 {', '.join(unknown)}; 可选: {', '.join(RULES)}")
        prefix = self.area(principal, division)
        after = None if cursor is None else read_cursor(cursor, 1)
        with self.connect() as conn:
            kept = findings_store.read(conn, as_of, prefix or None, rules or None,
                                       None if limit is None else limit + 1,
                                       None if after is None else _seq(after[0]))
        if kept is not None:
            run, rows, total = kept
            next_cursor = None
            if limit is not None and len(rows) > limit:
                rows = rows[:limit]
                next_cursor = make_cursor(str(rows[-1]["seq"]))
            for r in rows:
                del r["seq"]
            cadre_unknown = 0
            if count_cadre_unknown:
                with self.connect() as conn:
                    cadre_unknown = Inspector(conn, self.app.policies, as_of, prefix or None).cadre_unknown()
            return {"as_of": as_of, "division": prefix or None, "count": len(rows), "total": total,
                    "next_cursor": next_cursor, "computed_at": run.computed_at,
                    "casefacts_position": run.casefacts_position, "cadre_unknown": cadre_unknown,
                    "findings": self.shown(principal, rows)}
        if cursor is not None:
            raise ValidationFailed("cursor 无效: 该日期没有保存的督查结果可分页; 请去掉 cursor")
        self.fresh("casefacts")
        with self.connect() as conn:
            done = run_rules(conn, self.app.policies, as_of, rules, prefix or None)
        cadre_unknown = done.cadre_unknown
        rows = [dict(f.as_dict(), label=f.label, key=f.key, raised_problem=f.raised_problem) for f in done.findings]
        total = len(rows)
        if limit is not None:
            rows = rows[:limit]
        return {"as_of": as_of, "division": prefix or None, "count": len(rows), "total": total,
                "next_cursor": None, "computed_at": None, "casefacts_position": None, "cadre_unknown": cadre_unknown,
                "findings": self.shown(principal, rows)}

    def households_page(self, principal: Principal, filters: Any, offset: int, limit: int
                        ) -> tuple[int, list[dict[str, Any]]]:
        """Households of every stage within the caller's reach and the filters (`adapters.usecases.Filters`):
        the total and one page."""
        from adapters.usecases import households_page

        if filters.division and narrow(principal.scope, filters.division) is None:
            raise NotAuthorised(f"区划 {filters.division} 不在您的查看范围 {principal.scope or '全部'} 内")
        self.fresh("roster")
        with self.connect() as conn:
            total, rows = households_page(conn, principal.scope, filters, offset, limit)
        return total, self.shown(principal, rows)

    def search(self, principal: Principal, q: str, limit: int = 50) -> list[dict[str, Any]]:
        """Households within reach whose number, member's name or ID number, or village code matches."""
        from adapters.usecases import search_households

        self.fresh("roster")
        with self.connect() as conn:
            rows = search_households(conn, principal.scope, q, limit, personal_data=principal.personal_data)
        return self.shown(principal, rows)

    def problem(self, principal: Principal, problem_id: str, as_of: date) -> dict[str, Any]:
        """One problem as the ledger shows it on `as_of`, its rectification acts and its history (its events);
        NotFound when it does not exist or lies outside the caller's reach; ValidationFailed when `as_of` lies
        outside the contract's range of business dates."""
        from projections.ledger import problem_ledger, problem_rows, rectification_rows

        check_as_of(as_of)
        self.fresh("ledger")
        with self.connect() as conn:
            division = conn.execute(sa.select(problem_ledger.c.division_code)
                                    .where(problem_ledger.c.problem_id == problem_id)).scalar_one_or_none()
            if division is None or not principal.reaches(division):
                raise NotFound(f"问题 {problem_id} 不存在或不在您的查看范围内")
            row = next((p for p in problem_rows(conn, as_of, division) if p["problem_id"] == problem_id), None)
            if row is None:
                raise NotFound(f"问题 {problem_id} 在 {as_of} 尚未登记; 请换一个截至日期")
            acts = [a for a in rectification_rows(conn, as_of, division) if a["problem_id"] == problem_id]
        history = tl.stream_history(self.app, problem_id, aggregate="problem")
        return self.shown(principal, {"problem": row, "rectifications": acts, "history": history})

    def events(self, principal: Principal, after: int, limit: int) -> dict[str, Any]:
        """A page of the CloudEvents feed after a position: the events of streams inside the caller's reach,
        and `next_after`, the last position this page looked at (resume after it: nothing missed, nothing
        seen twice, even when the page's events all lay outside the reach)."""
        from adapters.integration.feed import deployment_source, read_events, to_cloudevent

        page = read_events(self.app, after, limit)
        if not page:
            return {"events": [], "next_after": after}
        source = self.settings.source or deployment_source()
        visible = page
        next_after = page[-1][0]
        if principal.scope:
            self.fresh(tl.TimelineProjection.name)
            keys = [_stream_key(e.originator_id) for _, e in page]
            with self.connect() as conn:
                divisions = tl.divisions_of(conn, keys)
            visible = []
            next_after = after
            for (position, event), key in zip(page, keys, strict=True):
                if key not in divisions:
                    # the timeline has not seen this stream yet (a projection worker lagging): stop before
                    # it rather than skip it, so the consumer gets it on a later read
                    break
                if principal.reaches(divisions[key]):
                    visible.append((position, event))
                next_after = position
        return {"events": [to_cloudevent(e, p, source, entitled=principal.personal_data) for p, e in visible],
                "next_after": next_after}


def make_cursor(*key: str) -> str:
    """An opaque cursor for the row keyed `key` (a listing resumes after it)."""
    return base64.urlsafe_b64encode(json.dumps(list(key), ensure_ascii=False).encode()).decode().rstrip("=")


def read_cursor(cursor: str, parts: int) -> list[str]:
    """The key a cursor stands for; ValidationFailed when no page could have given it."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(key, list) and len(key) == parts and all(isinstance(k, str) for k in key):
            return key
    except (ValueError, UnicodeDecodeError):
        pass
    raise ValidationFailed("cursor 无效; 请用上一页返回的 next_cursor, 或不带 cursor 从第一页读起")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("cursor 无效; 请用上一页返回的 next_cursor, 或不带 cursor 从第一页读起") from None


def _seq(text: str) -> int:
    if not text.isdigit():
        raise ValidationFailed("cursor 无效; 请用上一页返回的 next_cursor, 或不带 cursor 从第一页读起")
    return int(text)


def check_as_of(as_of: date) -> None:
    """A date a listing is read as of lies in the contract's range of business dates (casecore/limits.py)."""
    problem = lim.date_problem(as_of)
    if problem:
        raise ValidationFailed(f"as_of: {problem}; 请给出此范围内的日期")


def _stream_key(originator_id: str) -> tuple[str, str]:
    aggregate, _, stream_id = originator_id.partition("/")
    return aggregate, stream_id


def narrow(scope: str, requested: str | None) -> str | None:
    """The division prefix a listing is read with: the caller's reach, narrowed by the prefix asked for;
    None when the two do not overlap (nothing to show)."""
    if not requested:
        return scope
    if requested.startswith(scope):
        return requested
    if scope.startswith(requested):
        return scope
    return None


def _check_month(month: str) -> None:
    """A month as the reports take it (YYYY-MM), or the caller's validation error."""
    from adapters.output.reports import parse_month

    try:
        parse_month(month)
    except ValueError:
        raise ValidationFailed(f"月份 {month!r} 无效; 应为 YYYY-MM, 如 2023-06") from None
