"""Where the Jinja2 templates of reports, e-mails and renewal proposals live."""
from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "reports" / "templates"
