"""The demo workspace: every case of rules.md on realistic data, with one command.

`build_demo_workspace(home, last_month)` (behind `python -m pipelines demo`) writes
config/partner.yaml (a copy of partner.yaml here), config/contracts.yaml and one Lens device
export per customer and month into inbox/<customer_id>/, plus RMA logs, for the twelve months
ending at `last_month` (called L; L-11 is the oldest month). The same arguments always give
byte-identical files with identical modification times.

Terms: most run one year from the first of L-10 to the end of L+1, so L-11 lies before the
term (its export is kept, not used) and L is not the last month. Defaults of rules.md apply
(buffer 5 %, trigger 5 %, watch at 80 % of the trigger, RMA threshold 5 %).

What each of the seven customers demonstrates is in customers.yaml. exports.py writes their
exports as Lens and the partner write them (Lens's product names and header labels, and a
German partner's own), rma_logs.py their RMA logs.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.config import CategoryContract
from pipelines.demo.customers import CUSTOMERS, Customer
from pipelines.demo.exports import LateUpload, write_inboxes
from pipelines.demo.files import add_months, days_in, epoch, write_file

_PARTNER_YAML = Path(__file__).with_name("partner.yaml")
_COPIED_BY = "cobalt-ridge-engineering"  # its exports carry Lens's "Last Detected" column
_CONTRACTS_HEADER = (
    "# Demo contracts: one entry per customer under a Poly+ Enterprise contract.",
    "# id: lower-case letters, digits and '-'; it is also the inbox folder name.",
    "# A category gives ordered_devices, or installed_devices + growth_rate_pct",
    "# (ordered = ceil(installed x (1 + growth/100))). Prices are per device and year.",
)


@dataclass(frozen=True)
class DemoWorkspace:
    home: Path
    months: tuple[str, ...]  # the months with data, oldest first
    customer_ids: tuple[str, ...]
    # Corrected exports of the last month, put into the inbox after its first run, and one
    # export copied under the wrong month's name.
    late_uploads: tuple[LateUpload, ...] = ()


def start_workspace(home: Path, configured: int, review: str = "off") -> Path:
    """The folders of a new workspace in `home` and its partner.yaml, modified at `configured`,
    with `delivery.review` as given; returns the path contracts.yaml is to be written to.

    Raises FileExistsError when `home` already has config/contracts.yaml.
    """
    contracts = home / "config" / "contracts.yaml"
    if contracts.exists():
        raise FileExistsError(f"{contracts} already exists: choose an empty folder")
    for folder in ("config", "inbox", "archive", "quarantine", "reports", "outbox"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    partner = _PARTNER_YAML.read_text("utf-8")
    write_file(home / "config" / "partner.yaml",
               partner.replace("review: off", f"review: {review}", 1), "utf-8", configured)
    return contracts


def contract_lines(customer: Customer, first: str, last: str,
                   earlier: tuple[str, str] | None = None) -> list[str]:
    """`customer` as an entry of contracts.yaml, with a term from month `first` to `last`,
    and with `earlier` (its first and last month) a renewed contract's `terms`."""
    lines = [
        f"  - id: {customer.id}",
        f'    name: "{customer.name}"',
        f"    master_account_id: {customer.master_account_id}",
        f"    site_ids: [{', '.join(customer.site_ids)}]",
        "    lens_tenant_id: null",
        f'    csm: {{name: "{customer.csm["name"]}", email: {customer.csm["email"]}}}',
        f"    partner_contacts: [{', '.join(customer.partner_contacts)}]",
        f"    currency: {customer.currency}",
        *([f"    language: {customer.language}"] if customer.language else []),
    ]
    if earlier is None:
        return [*lines, *_term_lines(first, last, customer.categories, "    ")]
    lines.append("    terms:")
    for start, end, categories in ((*earlier, customer.earlier_term.categories),
                                   (first, last, customer.categories)):
        term = _term_lines(start, end, categories, "        ")
        lines += [f"      - {term[0].lstrip()}", *term[1:]]
    return lines


def _term_lines(first: str, last: str, categories: dict, indent: str) -> list[str]:
    lines = [f"{indent}term: {{start: {first}-01, end: {last}-{days_in(last):02d}}}",
             f"{indent}categories:"]
    for category, terms in categories.items():
        values = ", ".join(f"{key}: {value}" for key, value in terms.items())
        line = f"{indent}  {category}: {{{values}}}"
        if "installed_devices" in terms:  # the reader should not have to work it out
            line += f"  # ordered {CategoryContract(**terms).ordered}"
        lines.append(line)
    return lines


def _contracts_yaml(months: list[str]) -> str:
    lines = [*_CONTRACTS_HEADER, f"# The demo data covers {months[0]} to {months[-1]}.", "",
             "customers:"]
    for customer in CUSTOMERS:
        first = months[customer.term_start]
        lines += [
            *textwrap.wrap(customer.note.format(m=months), 94, initial_indent="  # ",
                           subsequent_indent="  # ", break_on_hyphens=False),
            *contract_lines(customer, first, add_months(first, 11), _earlier(customer, months)),
            "",
        ]
    return "\n".join(lines)


def _earlier(customer: Customer, months: list[str]) -> tuple[str, str] | None:
    if customer.earlier_term is None:
        return None
    return (add_months(months[0], customer.earlier_term.first),
            add_months(months[0], customer.term_start - 1))


def build_demo_workspace(home: Path, last_month: str, seed: int = 7, review: str = "off"
                         ) -> DemoWorkspace:
    """Create a demo workspace in `home` with data for the twelve months ending `last_month`;
    `review`: its partner.yaml's `delivery.review` (`demo` requires it, to show an approval;
    the tests and benchmarks built on the demo send at once).

    Raises FileExistsError when `home` already has config/contracts.yaml.
    """
    home = Path(home)
    months = [add_months(last_month, count) for count in range(-11, 1)]
    configured = epoch(months[0], 1, 9)
    contracts = start_workspace(home, configured, review)
    write_file(contracts, _contracts_yaml(months), "utf-8", configured)
    late = write_inboxes(home / "inbox", CUSTOMERS, months, seed)
    return DemoWorkspace(home, tuple(months), tuple(c.id for c in CUSTOMERS),
                         (*late, _copied_under_earlier_month(home / "inbox", months)))


def _copied_under_earlier_month(inbox: Path, months: list[str]) -> LateUpload:
    """The slip review exists for: the last month's Lens export copied into the inbox under
    the month before's name, as Windows names a copy. Its own "Last Detected" dates lie in the
    last month, so it is held, not taken for the month its name says."""
    customer = next(c for c in CUSTOMERS if c.id == _COPIED_BY)
    last, before = (customer.file_name.format(month=m) for m in months[-2:][::-1])
    source = inbox / customer.id / last
    copy = Path(before).stem + " (2)" + Path(before).suffix
    return LateUpload(f"{customer.id}/{copy}", source.read_bytes(),
                      int(source.stat().st_mtime) + 2 * 86400)
