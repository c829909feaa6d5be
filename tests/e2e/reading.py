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
