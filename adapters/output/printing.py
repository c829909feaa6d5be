"""Workbooks as a county office prints them: LibreOffice (headless) turns a workbook into PDF, poppler's
`pdfinfo` tells its pages and `pdftoppm` draws one as PNG. Used by the render test and
`scripts/render_prints.py`; nothing here runs in the product's own commands."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

#: what the render needs on the machine, and the Debian packages that bring it
TOOLS = {"soffice": "libreoffice-calc", "pdfinfo": "poppler-utils", "pdftoppm": "poppler-utils"}


def missing_tools() -> list[str]:
    """The tools not on PATH (with the package to install), empty when the render can run."""
    return [f"{tool} ({package})" for tool, package in TOOLS.items() if shutil.which(tool) is None]


def to_pdf(workbooks: list[Path], outdir: Path, timeout: float = 300) -> list[Path]:
    """Each workbook as a PDF in `outdir` (LibreOffice headless, a private profile so a desktop session or a
    parallel run does not lock it)."""
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="casecore-lo-") as profile:
        env = dict(os.environ, HOME=profile)
        subprocess.run(["soffice", f"-env:UserInstallation=file://{profile}", "--headless", "--norestore",
                        "--convert-to", "pdf", "--outdir", str(outdir), *map(str, workbooks)],
                       check=True, capture_output=True, timeout=timeout, env=env)
    pdfs = [outdir / (w.stem + ".pdf") for w in workbooks]
    missing = [p.name for p in pdfs if not p.is_file()]
    if missing:
        raise RuntimeError(f"LibreOffice wrote no PDF for: {', '.join(missing)}")
    return pdfs


@dataclass(frozen=True)
class PdfInfo:
    pages: int
    width_pt: float
    height_pt: float

    @property
    def landscape(self) -> bool:
        return self.width_pt > self.height_pt


def pdf_info(pdf: Path) -> PdfInfo:
    """Page count and the first page's size."""
    out = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", out, re.M).group(1))  # type: ignore[union-attr]
    size = re.search(r"^Page size:\s+([\d.]+) x ([\d.]+)", out, re.M)
    assert size is not None, out
    return PdfInfo(pages, float(size.group(1)), float(size.group(2)))


def page_png(pdf: Path, png: Path, page: int = 1, dpi: int = 80) -> Path:
    """One page of a PDF as a PNG."""
    stem = png.with_suffix("")
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile",
                    str(pdf), str(stem)], check=True, capture_output=True)
    return png


#: the workbooks a county office prints, the command that writes each (after `--db DB`), as of the demo's dates
WORKBOOKS: dict[str, list[str]] = {
    "roster": ["roster", "--xlsx"],
    "ledger": ["ledger", "--as-of", "2023-12-31", "--xlsx"],
    "findings": ["inspect", "--as-of", "2024-01-20", "--xlsx"],
    "monthly": ["report", "monthly", "--month", "2023-06", "--xlsx"],
}


def demo_workbooks(workdir: Path, households: int = 300, seed: int = 7) -> dict[str, Path]:
    """A demo county lived through into `workdir`, then each workbook written by its own command, as a user
    runs them (the `casecore` beside this Python)."""
    import sys

    casecore = str(Path(sys.executable).with_name("casecore"))
    db = workdir / "demo.db"
    env = dict(os.environ, CASECORE_USER=os.environ.get("CASECORE_USER", "县乡村振兴局"))
    subprocess.run([casecore, "demo", "--households", str(households), "--seed", str(seed), "--db", str(db),
                    "--output", str(workdir / "demo")], check=True, capture_output=True, env=env)
    out: dict[str, Path] = {}
    for name, args in WORKBOOKS.items():
        path = workdir / f"{name}.xlsx"
        subprocess.run([casecore, *args, str(path), "--db", str(db)], check=True, capture_output=True, env=env)
        out[name] = path
    return out
