"""Look at the reports as a person would: the HTML in headless Chromium, the PDF pages as PNGs.

Usage: .venv/bin/python scripts/look_at_reports.py [--home var/demo] [--month YYYY-MM]
Writes var/screenshots/<customer>-html.png and <customer>-pdf-<page>.png for each report of the
month (default: the latest month with reports). Needs Debian's `chromium` and `poppler-utils`
(`apt-get install chromium poppler-utils`).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=str(ROOT / "var" / "demo"))
    parser.add_argument("--month")
    parser.add_argument("--out", default=str(ROOT / "var" / "screenshots"))
    args = parser.parse_args()
    missing = [tool for tool in ("chromium", "pdftoppm") if not shutil.which(tool)]
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install chromium poppler-utils",
              file=sys.stderr)
        return 2
    reports = Path(args.home).resolve() / "reports"  # chromium takes file URIs: absolute
    months = sorted(p.name for p in reports.iterdir() if any(p.glob("*.pdf")))
    if not months:
        print(f"no reports under {reports}: run `make demo` first", file=sys.stderr)
        return 2
    folder = reports / (args.month or months[-1])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for html in sorted(folder.glob("*.html")):
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                            "--hide-scrollbars", "--window-size=1100,3000",
                            f"--screenshot={out / (html.stem + '-html.png')}", html.as_uri()],
                           check=True, capture_output=True, timeout=120)
        # 100 dpi: at less a badge touching its neighbour cannot be told from one that does not.
        subprocess.run(["pdftoppm", "-r", "100", "-png", str(html.with_suffix(".pdf")),
                        str(out / f"{html.stem}-pdf")], check=True, timeout=120)
        print(f"{html.stem}: {out / (html.stem + '-html.png')}, {out}/{html.stem}-pdf-*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
