"""GET /findings says how many monitored households' responsible cadre is unknown (imported from an export
without a 帮扶责任人 column), within the caller's reach."""

from __future__ import annotations

from datetime import date

from adapters.importers.national import COLUMNS, Divisions, import_national
from adapters.importers.national_writer import household_rows, person, write_divisions, write_export
from adapters.store.storage import bootstrap
from tests.http.support import auth, client_for


def test_findings_count_the_households_whose_cadre_is_unknown(tmp_path):
    db = str(tmp_path / "db")
    app = bootstrap(db)
    try:
        rows = household_rows({"县": "黎平县", "乡": "德凤镇", "村": "高近村", "户编号": "N1", "户类型": "脱贫户",
                               "监测对象类别": "脱贫不稳定户", "识别监测时间": "202203", "风险是否已消除": "否",
                               "致贫/返贫风险1": "因病"}, [person(1)])
        export = write_export(tmp_path / "e.xlsx", rows, columns=[c for c in COLUMNS if c != "帮扶责任人"])
        village = ("522631101001", "黎平县", "德凤镇", "高近村")
        divisions = Divisions.load(write_divisions(tmp_path / "d.csv", [village]))
        import_national(app, export, divisions, date(2023, 6, 30))
    finally:
        app.close()
    with client_for(db, tmp_path) as client:
        inside = client.get("/findings", params={"as_of": "2023-07-01"}, headers=auth("tok-auditor")).json()
        outside = client.get("/findings", params={"as_of": "2023-07-01"}, headers=auth("tok-village-duyun")).json()
    assert inside["cadre_unknown"] == 1 and "no_responsible_cadre" not in {f["rule"] for f in inside["findings"]}
    assert outside["cadre_unknown"] == 0
