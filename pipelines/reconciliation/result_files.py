"""Writing a month's results: reconciliation.csv, rma.csv and renewal-<customer>.yaml.

Files are written to a temporary name and renamed, so a reader never sees half a file, and
they hold nothing run-dependent (no timestamps): the same inputs give byte-identical files.
"""
from __future__ import annotations

import csv
import io
from dataclasses import fields
from pathlib import Path

from pipelines.core.files import write_atomically
from pipelines.core.months import Month
from pipelines.core.safe_csv import neutralise
from pipelines.core.templates import TEMPLATES
from pipelines.core.workspace import Workspace
from pipelines.reconciliation.results import (
    MonthResult,
    ReconciliationRow,
    RenewalProposal,
    RmaRow,
    as_written,
)

# The columns of our result files that come from outside (contracts.yaml). The configuration
# check already keeps them to [a-z0-9-] and [A-Z]; the rule holds should that ever loosen.
FROM_INPUT = {"customer_id", "currency"}


def _csv_text(row_type, rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    names = [f.name for f in fields(row_type)]
    writer.writerow(names)
    writer.writerows([neutralise(value) if name in FROM_INPUT else value
                      for name, value in as_written(row).items()] for row in rows)
    return buffer.getvalue()


def render_renewal(proposal: RenewalProposal) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    environment = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
                              keep_trailing_newline=True, autoescape=False)
    # A name in a comment stays one line: a line break in it would start YAML of its own.
    environment.filters["one_line"] = lambda value: " ".join(str(value).split())
    return environment.get_template("renewal.yaml.j2").render(p=proposal, c=proposal.customer)


def renewal_file(workspace: Workspace, month: Month, customer_id: str) -> Path:
    """Where a term's last month puts the customer's renewal proposal (renew reads it)."""
    return workspace.reports_for(month) / f"renewal-{customer_id}.yaml"


def write_month_results(workspace: Workspace, result: MonthResult, renewals: bool = True
                        ) -> list[Path]:
    """The month's files; `renewals`: with the renewal proposals (not for a month still in
    progress, whose proposal `renew` must not take)."""
    folder = workspace.reports_for(result.month)
    written = [folder / "reconciliation.csv", folder / "rma.csv"]
    write_atomically(written[0], _csv_text(ReconciliationRow, result.rows))
    write_atomically(written[1], _csv_text(RmaRow, result.rma))
    for proposal in result.renewals if renewals else []:
        path = renewal_file(workspace, result.month, proposal.customer.id)
        write_atomically(path, render_renewal(proposal))
        written.append(path)
    return written
