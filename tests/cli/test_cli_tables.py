"""The tables people read: ids whole at any width, numbers right-aligned, other columns folded, --limit."""

from __future__ import annotations

import io

from rich.console import Console

from adapters.cli._common import Col, Listing, emit, limit_note, limited

HID = "5226311010010016"
CODE = "522631101001"


def printed(width: int, listing: Listing) -> str:
    buf = io.StringIO()
    emit(listing, out=Console(width=width, file=buf, color_system=None))
    return buf.getvalue()


def roster_like() -> Listing:
    t = Listing("名单", [Col("户编号", "id"), Col("区划", "id"), Col("风险类型"), Col("帮扶措施"),
                        Col("人均纯收入", "num")])
    t.add_row(HID, CODE, "因病、因学、因残、因自然灾害", "产业帮扶(已落实)、就业帮扶(计划)、健康帮扶(已结束)", "3")
    t.add_row(HID + "-X", CODE, "因病", "健康帮扶(已落实)", "13,000.00")
    return t


def test_ids_are_never_cut_at_80_columns_or_narrower():
    for width in (80, 60, 30):
        out = printed(width, roster_like())
        assert HID in out and HID + "-X" in out and CODE in out
        assert "…" not in out


def test_text_columns_fold_so_the_table_keeps_to_80_columns():
    out = printed(80, roster_like())
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "因自然灾害" not in out.replace("\n", "")  # folded over lines, not dropped
    assert "因自然" in out


def test_numbers_are_right_aligned():
    line = next(line for line in printed(80, roster_like()).splitlines() if line.startswith("│ " + HID + " "))
    cells = line.split("│")
    assert cells[-2].endswith(" 3 ") and cells[-2].startswith("   ")


def test_a_limit_keeps_the_first_rows_and_says_how_many_there_were():
    rows, total = limited(range(10), 3)
    assert rows == [0, 1, 2] and total == 10
    assert "共 10 行" in (limit_note(3, 10) or "")
    assert limit_note(10, 10) is None


def test_a_listing_longer_than_the_terminal_goes_through_the_pager_and_a_short_one_does_not(monkeypatch):
    import rich.pager

    from adapters.cli._common import paged

    paged_out: list[str] = []
    monkeypatch.setattr(rich.pager.SystemPager, "_pager", lambda self, content: paged_out.append(content))
    screen = io.StringIO()
    tty = Console(width=80, height=24, file=screen, force_terminal=True)
    with paged(100, tty):
        emit(roster_like(), out=tty)
    assert len(paged_out) == 1 and HID in paged_out[0] and screen.getvalue() == ""
    with paged(3, tty):
        emit(roster_like(), out=tty)
    assert len(paged_out) == 1 and HID in screen.getvalue()
    piped = io.StringIO()
    with paged(100, Console(width=80, height=24, file=piped)):   # not a terminal: printed as it is
        emit(roster_like(), out=Console(width=80, file=piped))
    assert len(paged_out) == 1 and HID in piped.getvalue()
    narrow = Console(width=30, height=24, file=io.StringIO(), force_terminal=True)
    with paged(100, narrow):                                    # widened to keep the ids whole, still paged
        emit(roster_like(), out=narrow)
    assert len(paged_out) == 2 and HID + "-X" in paged_out[1] and narrow.file.getvalue() == ""
