"""Stage 30 of the demo: 双台账、双责任、双销号、双问责 — problems found during the 2022 campaign go through
rectification.

Inspectors (规则筛查, 督查, 巡视), auditors (审计) and townships (自查) raise problems on the county's households
during the campaign's screening window; the county names a responsible party (the township) and a supervising
party (a county cadre) with a deadline. Most problems are rectified and signed off by both parties in order;
some sign-offs are refused and the problem is redone; some run past their deadline and the county holds the
responsible party, the supervisor or both to account; some closed problems are found false by a later
inspection and reopened (which counts against both). A few commands are planted to be refused: the
supervisor signing before the responsible party, the responsible person signing again as the supervisor,
someone other than the named person signing. The stage then writes the two-sheet ledger workbook and the
monthly dispatch of the screening's last month and of the rectification deadline's month into the output
directory.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from adapters.demo import DemoContext, ScriptedCase
from casecore.commands import Command
from casecore.values import ProblemKind

TITLE = "问题整改与双台账"

#: what the problem is, by source (what each kind of inspection tends to find)
KINDS_BY_SOURCE = {
    "inspection_rule": ["helped_not", "no_developmental_measure", "risk_without_fitting_measure",
                        "slow_identification", "short_publicity", "no_responsible_cadre", "backdated_entry"],
    "supervision": ["helped_not", "risk_without_fitting_measure", "floor_only_with_labour", "other"],
    "patrol": ["missed_household", "outside_system", "helped_not", "other"],
    "audit": ["outside_system", "measure_before_identification", "backdated_entry"],
    "self_check": ["missed_household", "no_responsible_cadre", "helped_not", "other"],
}
SOURCES = ["inspection_rule"] * 3 + ["supervision"] * 2 + ["patrol", "audit", "self_check", "self_check"]
ACTIONS = {
    "helped_not": "制定并落实产业帮扶措施, 帮扶责任人入户对接",
    "no_developmental_measure": "落实公益岗位并开展就业培训",
    "risk_without_fitting_measure": "按风险类型补充匹配的帮扶措施",
    "floor_only_with_labour": "在兜底保障基础上落实开发式帮扶",
    "slow_identification": "倒查识别环节耗时原因, 完善纳入时限台账",
    "short_publicity": "重新组织村级评议并足额公示",
    "no_responsible_cadre": "明确帮扶责任人并入户见面",
    "backdated_entry": "核实补录原因, 据实更正录入日期",
    "missed_household": "入户核实后按程序纳入监测",
    "outside_system": "履行识别程序, 将已帮扶户纳入系统管理",
    "measure_before_identification": "核实措施时间, 补齐识别后的针对性帮扶",
    "other": "逐项整改并完善佐证材料",
}
REJECTIONS = ["佐证材料不全, 请补充入户照片和签字确认", "整改措施与问题不对应", "帮扶措施尚未实际落实到户"]

#: how each problem's story goes (weights)
PLOTS = {"closed": 40, "rejected_then_closed": 14, "overdue_accountable": 14, "reopened": 9, "open": 13,
         "assigned_only": 5, "closed_late": 5}
PLOT_LABELS = {"closed": "按期双销号", "rejected_then_closed": "退回后重新整改并销号",
               "overdue_accountable": "超期问责", "reopened": "销号后复查重新整改", "open": "整改中",
               "assigned_only": "已明确责任待整改", "closed_late": "超期销号并问责"}


@dataclass
class Story(ScriptedCase):
    """One problem's commands, dated, with the ones planted to be refused."""

    pid: str
    hid: str | None
    division_code: str
    day: date
    commands: list[tuple[date, Command]] = field(default_factory=list)
    planted: set[int] = field(default_factory=set)

    def target(self) -> dict[str, str]:
        return {"problem_id": self.pid}


class Rectifications:
    """Writes each problem's story with the seeded generator."""

    def __init__(self, ctx: DemoContext):
        self.ctx = ctx
        self.rng: random.Random = ctx.rng
        self.actor_for = ctx.shared["actor_for"]
        self.households: dict[str, dict[str, Any]] = ctx.shared["households"]
        self.monitored = sorted(ctx.shared.get("monitored", set()))
        self.others = sorted(set(self.households) - set(self.monitored))
        self.campaign = ctx.app.policies.on(date(ctx.start.year, 4, 1)).campaign
        self.plots: Counter[str] = Counter()
        self.planted: Counter[str] = Counter()
        self.reported = 0

    def _household(self, kind: str) -> str | None:
        pool = self.others if kind in ("missed_household", "outside_system") else self.monitored
        pool = pool or sorted(self.households)
        return self.rng.choice(pool) if pool else None

    def _raiser(self, source: str, division: str) -> dict[str, Any]:
        if source == "self_check":
            return self.actor_for("township", division, 1)
        if source == "audit":
            return self.actor_for("auditor", division, 0)
        return self.actor_for("inspector", division, self.rng.randrange(2))

    def story(self, n: int) -> Story:
        rng = self.rng
        source = rng.choice(SOURCES)
        kind = rng.choice(KINDS_BY_SOURCE[source])
        hid = self._household(kind)
        division = self.households[hid]["division_code"] if hid else self.ctx.shared["county"]["code"] + "000000"
        window = (self.campaign.screening_to - self.campaign.screening_from).days
        raised_on = self.campaign.screening_from + timedelta(days=rng.randrange(window + 1))
        county_code = self.ctx.shared["county"]["code"]
        s = Story(f"ZG-{county_code}-{raised_on.year}-{n:04d}", hid, division, raised_on)
        fields: dict[str, Any] = {"kind": kind, "division_code": division, "source": source,
                                  "detail": f"{ProblemKind(kind).label}: 专项行动排查发现"}
        if hid:
            fields["household_id"] = hid
        if source == "inspection_rule":
            fields["finding_key"] = f"{kind}:{hid or division}:1"
        s.add("raise_problem", self._raiser(source, division), **fields)

        plot = rng.choices(list(PLOTS), weights=list(PLOTS.values()))[0]
        if plot == "open" and raised_on > self.campaign.rectified_by - timedelta(days=60):
            deadline_days = rng.randint(100, 140)   # raised late: its deadline is after the ledger's date
        else:
            deadline_days = rng.randint(25, 55)
        self.plots[plot] += 1
        responsible, supervisor = self.parties(division)
        lead = self.actor_for("county", division, 0)
        s.day += timedelta(days=rng.randint(1, 4))
        deadline = s.day + timedelta(days=deadline_days)
        s.add("assign_responsibility", lead, responsible=_party(responsible), supervisor=_party(supervisor),
              deadline=deadline.isoformat())
        if plot == "assigned_only":
            return s
        self.rectify(s, kind, gap=rng.randint(3, 10))
        if plot == "open":
            return s
        if plot == "overdue_accountable":
            party = rng.choice(["responsible", "supervisor", "both", "both"])
            s.day = max(s.day, deadline)
            s.add("hold_accountable", lead, gap=rng.randint(3, 15), party=party,
                  reason=f"整改超过时限 {deadline} 仍未销号")
            if rng.random() < 0.5:   # and then it is done, late
                self.rectify(s, kind, gap=2, action="问责后限期整改到位")
                self.sign_both(s, responsible, supervisor)
            return s
        if plot == "closed_late":
            s.day = max(s.day, deadline)
            self.rectify(s, kind, gap=rng.randint(2, 8), action="补充整改")
            self.sign_both(s, responsible, supervisor)
            s.add("hold_accountable", lead, gap=1, party="responsible", reason=f"超过整改时限 {deadline} 才销号")
            return s
        s.add("report_rectified", self.actor_for("township", division, 2), gap=rng.randint(1, 5))
        signed = self.plant_refusals(s, responsible, supervisor)
        if plot == "rejected_then_closed":
            # a party refuses at its own turn: once the responsible party has signed, only the supervisor can
            who = "supervisor" if signed else rng.choice(["responsible", "supervisor"])
            if who == "supervisor" and not signed:
                s.add("sign_off", responsible, gap=rng.randint(1, 3), party="responsible")
            s.add("reject_sign_off", responsible if who == "responsible" else supervisor, gap=rng.randint(1, 3),
                  party=who, reason=rng.choice(REJECTIONS))
            self.rectify(s, kind, gap=rng.randint(2, 6), action="按退回意见补充整改并完善佐证")
            s.add("report_rectified", self.actor_for("township", division, 2), gap=rng.randint(1, 3))
            signed = False
        self.sign_both(s, responsible, supervisor, reported=True, responsible_signed=signed)
        if plot == "reopened":
            s.day += timedelta(days=rng.randint(15, 40))
            new_deadline = s.day + timedelta(days=rng.randint(20, 30))
            inspector = self.actor_for("inspector", division, 1)
            s.add("reopen_problem", inspector, reason="督查复核发现问题仍然存在, 销号不实",
                  deadline=new_deadline.isoformat(), finding_key=f"{kind}:{hid or division}:2")
            if rng.random() < 0.5:
                self.rectify(s, kind, gap=rng.randint(3, 8), action="重新整改并逐户复核")
                self.sign_both(s, responsible, supervisor)
        return s

    def parties(self, division: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The responsible party (the township's named cadre) and the supervisor (a county cadre)."""
        return self.actor_for("township", division, 0), self.actor_for("county", division, 1)

    def rectify(self, s: Story, kind: str, gap: int, action: str | None = None) -> None:
        k = len([1 for _, c in s.commands if c.command == "record_rectification"]) + 1
        s.add("record_rectification", self.actor_for("village", s.division_code, 0)
              if s.hid else self.actor_for("township", s.division_code, 2), gap=gap,
              action=action or ACTIONS[kind], evidence=[f"{s.pid}/整改佐证-{k}.pdf", f"{s.pid}/入户照片-{k}.jpg"])

    def sign_both(self, s: Story, responsible: dict, supervisor: dict, reported: bool = False,
                  responsible_signed: bool = False) -> None:
        """双销号: the responsible party's named person, then the supervisor's."""
        if not reported:
            s.add("report_rectified", self.actor_for("township", s.division_code, 2), gap=self.rng.randint(1, 3))
        if not responsible_signed:
            s.add("sign_off", responsible, gap=self.rng.randint(1, 3), party="responsible")
        s.add("sign_off", supervisor, gap=self.rng.randint(1, 4), party="supervisor")

    def plant_refusals(self, s: Story, responsible: dict, supervisor: dict) -> bool:
        """The first three reported problems, then every fifth, get a wrong sign-off first (the engine says no;
        then it is done right). Returns whether the responsible party has signed off by then."""
        self.reported += 1
        k = self.reported
        if k > 3 and k % 5 != 0:
            return False
        which = k % 3
        if which == 0:
            s.add("sign_off", supervisor, party="supervisor", planted=True)
            self.planted["监督方先于责任方销号"] += 1
            return False
        if which == 1:
            s.add("sign_off", responsible, gap=1, party="responsible")
            s.add("sign_off", responsible, party="supervisor", planted=True)
            self.planted["同一人两次销号"] += 1
            return True
        s.add("sign_off", self.actor_for("township", s.division_code, 3), party="responsible", planted=True)
        self.planted["非指定责任人销号"] += 1
        return False

def _party(actor: dict[str, Any]) -> dict[str, Any]:
    """A named party from the person who will act for it: the sign-off must come from this actor id."""
    return {"unit": actor["unit"], "person": actor["id"], "name": actor.get("name")}


def run(ctx: DemoContext) -> dict[str, int]:
    writer = Rectifications(ctx)
    if not writer.households:
        return {"登记问题": 0}
    target = max(12, min(400, len(writer.households) // 8))
    stories = [writer.story(n) for n in range(1, target + 1)]
    ordered = sorted(((day, i, j, cmd) for i, s in enumerate(stories) for j, (day, cmd) in enumerate(s.commands)),
                     key=lambda x: (x[0], x[1], x[2]))
    planted = set().union(*(s.planted for s in stories))
    results = ctx.submit([cmd for *_, cmd in ordered])

    events: Counter[str] = Counter()
    planted_refused = unexpected = 0
    for cmd, outcome in results:
        if id(cmd) in planted:
            planted_refused += not outcome.ok
            unexpected += outcome.ok
        elif not outcome.ok:
            unexpected += 1
        events.update(outcome.events)
    last = max(day for day, *_ in ordered)
    today = max(ctx.shared.get("today", last), last + timedelta(days=1))
    ctx.shared["today"] = today

    # the dispatch of the screening's last month and of the rectification deadline's month; the ledger as of
    # the day the demo has reached (so every act is in it)
    files = write_outputs(ctx, [writer.campaign.screening_to, writer.campaign.rectified_by], today)
    closed = sum(1 for cmd, o in results if o.ok and cmd.command == "sign_off" and cmd.party.value == "supervisor")
    summary = {
        "登记问题": events["raised"],
        "明确双责任": events["responsibility_assigned"],
        "整改措施": events["rectification_recorded"],
        "双销号(销号次数)": closed,
        "退回整改": events["sign_off_rejected"],
        "问责": events["held_accountable"],
        "销号后重新整改(双方问责)": events["reopened"],
        "计划内拒绝": planted_refused,
        "意外拒绝": unexpected,
        "台账/报表文件": files,
    }
    summary.update({f"情节: {PLOT_LABELS[k]}": v for k, v in sorted(writer.plots.items())})
    return summary


def write_outputs(ctx: DemoContext, months: list[date], ledger_day: date) -> int:
    """The two-sheet ledger workbook as of `ledger_day` and the monthly dispatch of each month given."""
    from adapters.output.reports import read_monthly, write_monthly_xlsx
    from adapters.output.workbooks import write_ledger_xlsx
    from adapters.readside.places import Places, names_of_county
    from adapters.usecases import read_ledgers

    county = ctx.shared["county"]
    names = names_of_county(county)
    places = Places(names)
    try:
        problems, entries = read_ledgers(ctx.app, ledger_day, county["code"])
        reports = [read_monthly(ctx.app, m.strftime("%Y-%m"), county["code"], names) for m in months]
    except ValueError:  # an in-memory event store has no tables beside it: nothing to print
        return 0
    ctx.output_dir.mkdir(parents=True, exist_ok=True)
    ledger_path = ctx.output_dir / f"双台账_{county['code']}_{ledger_day.isoformat()}.xlsx"
    write_ledger_xlsx(ledger_path, problems, entries, ledger_day, county["code"], places)
    ctx.shared.setdefault("ledger_files", []).append(ledger_path)
    for report in reports:
        path = ctx.output_dir / f"月度调度_{county['code']}_{report['month']}.xlsx"
        write_monthly_xlsx(path, report, places)
        ctx.shared.setdefault("report_files", []).append(path)
    return 1 + len(reports)
