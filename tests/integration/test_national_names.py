"""Names of imported people: every person arrives with the name the export gives, and a store imported
before that was fixed (everyone stored with an empty name) is repaired by importing the export again."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
import sqlalchemy as sa

from adapters.importers.national import Divisions, import_national, open_export
from adapters.importers.national_rows import assemble, read_row
from adapters.importers.national_writer import household_rows, person, write_divisions, write_export
from adapters.readside.readmodels import read_models
from casecore import legacy
from projections import casefacts as cf
from projections.casefacts import CaseFactsProjection
from projections.roster import RosterProjection, roster_members
from projections.timeline import TimelineProjection, stream_history

VILLAGE = ("522631101001", "黎平县", "德凤镇", "高近村")
WHERE = {"县": "黎平县", "乡": "德凤镇", "村": "高近村"}
EXPORTED = date(2022, 6, 30)


def monitored(hid: str) -> dict[str, str]:
    # the last measure column (基础设施建设) is empty, as in most rows: the old loop left that as the name
    return {**WHERE, "户编号": hid, "户类型": "脱贫户", "监测对象类别": "脱贫不稳定户", "识别监测时间": "202203",
            "风险是否已消除": "否", "致贫/返贫风险1": "因病", "人均纯收入（元）": "5200", "健康帮扶": "家庭医生签约"}


@pytest.fixture
def export(tmp_path):
    rows = (household_rows(monitored("HH1"), [person(1, name="张三"), person(2, date(1983, 4, 5), name="李四",
                                                                             relation="配偶")])
            + household_rows(monitored("HH2"), [person(3, name="王五")]))
    path = write_export(tmp_path / "export.xlsx", rows)
    return path, Divisions.load(write_divisions(tmp_path / "divisions.csv", [VILLAGE]))


def import_as_before_the_fix(app, path, divisions) -> None:
    """Store the export exactly as the importer did while it lost the names: every person's name empty."""
    sheet = open_export(path)
    groups: dict[str, list[legacy.Row]] = {}
    for n, raw in sheet.rows:
        row = read_row(n, raw, divisions.code(raw["县"], raw["乡"], raw["村"]) or "")
        groups.setdefault(row.household_id, []).append(dataclasses.replace(row, name=""))
    source = legacy.Source(file_name=path.name, exported_on=EXPORTED)
    app.import_facts([assemble(rows) for rows in groups.values()], source)


def names(app, hid: str) -> dict[str, str]:
    return {pid: m["name"] for pid, m in app.get_household(hid).members.items()}


def test_every_imported_person_keeps_the_name_the_export_gives(app, export):
    path, divisions = export
    import_national(app, path, divisions, EXPORTED)
    assert sorted(names(app, "HH1").values()) == ["张三", "李四"]
    assert list(names(app, "HH2").values()) == ["王五"]


def test_importing_the_export_again_repairs_names_an_older_import_left_empty(app, export):
    path, divisions = export
    import_as_before_the_fix(app, path, divisions)
    assert set(names(app, "HH1").values()) == {""}

    report = import_national(app, path, divisions, EXPORTED)

    assert sorted(names(app, "HH1").values()) == ["张三", "李四"] and list(names(app, "HH2").values()) == ["王五"]
    assert report.events == 3 and report.households_changed == 2
    corrections = [e for e in app.repository.event_store.get("household/HH1") if type(e).TYPE ==
                   "member_name_corrected"]
    assert type(corrections[0]).TOPIC == "cn.casecore.household.member_name_corrected.v1"
    assert all(e.origin == "national_export:export.xlsx" for e in corrections)


def test_the_name_repair_is_idempotent(app, export):
    path, divisions = export
    import_as_before_the_fix(app, path, divisions)
    import_national(app, path, divisions, EXPORTED)
    before = app.recorder.max_notification_id()

    again = import_national(app, path, divisions, EXPORTED)

    assert again.events == 0 and app.recorder.max_notification_id() == before


def test_every_read_model_that_shows_names_shows_the_repaired_ones(app, export):
    path, divisions = export
    import_as_before_the_fix(app, path, divisions)
    with read_models(app, [RosterProjection(), CaseFactsProjection(), TimelineProjection()]) as rm:
        rm.catch_up()  # the read models first fold the empty names, then the corrections
        import_national(app, path, divisions, EXPORTED)
        rm.catch_up()
        with rm.engine.connect() as conn:
            roster = dict(conn.execute(sa.select(roster_members.c.person_id, roster_members.c.name)
                                       .where(roster_members.c.household_id == "HH1")).all())
            facts = dict(conn.execute(sa.select(cf.members.c.person_id, cf.members.c.name)
                                      .where(cf.members.c.household_id == "HH1")).all())
    assert sorted(roster.values()) == sorted(facts.values()) == ["张三", "李四"]
    corrected = [e for e in stream_history(app, "HH1") if e["type"] == "member_name_corrected"]
    assert sorted(e["payload"]["name"] for e in corrected) == ["张三", "李四"]
    assert {e["label"] for e in corrected} == {"成员姓名更正"}


def test_a_name_repairs_command_id_carries_neither_the_persons_number_nor_a_digest_of_the_name(app, export):
    """A command id is not masked: the repair names the person by their place in the household."""
    path, divisions = export
    import_as_before_the_fix(app, path, divisions)
    import_national(app, path, divisions, EXPORTED)
    keys = [e.command_id for e in app.repository.event_store.get("household/HH1")
            if type(e).TYPE == "member_name_corrected"]
    people = {pid: m["name"] for pid, m in app.get_household("HH1").members.items()}
    assert len(keys) == 2
    for key in keys:
        for pid, name in people.items():
            assert pid not in key and pid[6:14] not in key
            assert legacy._digest(name) not in key
