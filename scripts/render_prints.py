"""Regenerate docs/prints/*.png: page 1 of each workbook casecore writes (roster, ledger, findings, monthly
dispatch) as LibreOffice prints it, from a demo county of 300 households.

    .venv/bin/python scripts/render_prints.py [--households 300] [--dpi 70]

Needs LibreOffice (soffice) and poppler-utils (pdfinfo, pdftoppm); `.ci/run` installs them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from adapters.output.printing import demo_workbooks, missing_tools, page_png, pdf_info, to_pdf

PRINTS = Path(__file__).resolve().parent.parent / "docs" / "prints"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=300)
    parser.add_argument("--dpi", type=int, default=70)
    args = parser.parse_args()
    missing = missing_tools()
    if missing:
        print("缺少: " + ", ".join(missing), file=sys.stderr)
        return 2
    PRINTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="casecore-prints-") as tmp:
        work = Path(tmp)
        books = demo_workbooks(work, args.households)
        pdfs = to_pdf(list(books.values()), work / "pdf")
        for (name, book), pdf in zip(books.items(), pdfs, strict=True):
            info = pdf_info(pdf)
            png = page_png(pdf, PRINTS / f"{name}.png", dpi=args.dpi)
            print(f"{book.name}: {info.pages} 页, {'横向' if info.landscape else '纵向'} "
                  f"{info.width_pt:.0f}x{info.height_pt:.0f}pt → {png.relative_to(PRINTS.parent.parent)} "
                  f"({png.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
