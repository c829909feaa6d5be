"""Reading the terminal's tables back as a person does: a cell folded over several lines is one text."""

from __future__ import annotations


def columns(output: str) -> list[str]:
    """Each column of the tables in `output`, its cells' lines joined in order (a folded word is whole again).
    Lines outside tables come first, as they are."""
    cols: dict[int, list[str]] = {}
    plain: list[str] = []
    for line in output.splitlines():
        if line.startswith(("│", "┃")):
            for n, cell in enumerate(line.replace("┃", "│").split("│")[1:-1]):
                cols.setdefault(n, []).append(cell.strip())
        else:
            plain.append(line)
    return ["\n".join(plain), *("".join(parts) for _, parts in sorted(cols.items()))]


def readable(output: str) -> str:
    """All of `output` with folded cells joined again: search it for a label or an id."""
    return "\n".join(columns(output))


def rows(table: str, starts: int) -> list[list[str]]:
    """The rows of one table: a line whose column `starts` (0-based) is not empty begins a row (a number or an
    id is printed on its row's first line); the other lines continue the row's folded cells."""
    out: list[list[str]] = []
    for line in table.splitlines():
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells[starts] or not out:
            out.append(cells)
        else:
            out[-1] = [a + b for a, b in zip(out[-1], cells)]
    return out
