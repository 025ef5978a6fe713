"""`renew --customer ID`: the renewal proposal of a term's last month, appended to the customer's
`terms` in contracts.yaml.

The proposal is `reports/<last month>/renewal-<customer>.yaml` as that month's reconciliation
wrote it (a partner may correct its numbers first): a valid `terms` item. contracts.yaml is
edited as a document, not rewritten: ruamel.yaml's round trip keeps every other line and
comment; a one-term entry (`term` + `categories`) becomes `terms` with that term first. The new
file is checked as `load_config` checks it before it replaces the old one, which stays beside
it. Past months keep their term, so re-running them gives the same files as before.
"""
from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.config import Config, ContractTerm, load_config
from pipelines.core.errors import ConfigError
from pipelines.core.files import free_path, write_atomically
from pipelines.core.workspace import Workspace
from pipelines.core.yaml_files import YamlDocument
from pipelines.jobs.monthly import exclusive
from pipelines.reconciliation.result_files import renewal_file


@dataclass(frozen=True)
class Renewal:
    customer_id: str
    term: ContractTerm
    proposal: Path
    kept: Path  # contracts.yaml as it was before


@exclusive("renew")
def renew(config: Config, customer_id: str) -> Renewal:
    workspace = config.workspace
    customer = config.contracts.get(customer_id)
    if customer is None:
        raise ConfigError(f"--customer: there is no customer '{customer_id}' in contracts.yaml")
    terms = customer.all_terms
    latest = terms[-1].term
    proposal = renewal_file(workspace, latest.last_month, customer_id)
    if not proposal.exists():
        earlier = len(terms) > 1 and renewal_file(
            workspace, terms[-2].term.last_month, customer_id).exists()
        if earlier:
            raise ConfigError(f"renew: customer '{customer_id}' already has its next term "
                              f"({latest.start}..{latest.end}) in contracts.yaml: nothing to do")
        raise ConfigError(f"renew: customer '{customer_id}': the term ends in "
                          f"{latest.last_month}, which has not been reconciled (no "
                          f"{workspace.relative(proposal)}): run `python -m pipelines reconcile "
                          f"--month {latest.last_month}` first")
    item = _read_proposal(workspace, proposal)
    if item.term.start <= latest.end:
        raise ConfigError(f"renew: customer '{customer_id}' already has a term from "
                          f"{item.term.start} in contracts.yaml: nothing to do")
    text = workspace.contracts_file.read_text(encoding="utf-8-sig")
    renewed = _appended(text, customer_id, proposal.read_text(encoding="utf-8"))
    _check(workspace, renewed)
    kept = free_path(workspace.contracts_file.with_name(
        f"contracts.before-renew-{customer_id}-{item.term.start}.yaml"))
    shutil.copy2(workspace.contracts_file, kept)
    write_atomically(workspace.contracts_file, renewed)
    return Renewal(customer_id, item, proposal, kept)


def _read_proposal(workspace: Workspace, path: Path) -> ContractTerm:
    from pydantic import ValidationError

    data = YamlDocument.read(path).data
    if not (isinstance(data, list) and len(data) == 1):
        raise ConfigError(f"{workspace.relative(path)}: expected one `terms` item (`- term: "
                          f"…`, `categories: …`); restore it from the month's reconciliation "
                          f"(`python -m pipelines reconcile --month …`)")
    try:
        return ContractTerm.model_validate(data[0])
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(step) for step in problem["loc"])
        raise ConfigError(f"{workspace.relative(path)}: {where}: {problem['msg']}; correct the "
                          f"proposal and run renew again") from None


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()  # round trip: comments, order and flow style kept
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long line
    yaml.indent(mapping=2, sequence=4, offset=2)  # as `init` and the demo write contracts.yaml
    return yaml


def _appended(text: str, customer_id: str, proposal: str) -> str:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    yaml = _yaml()
    document = yaml.load(text)
    entry = next(c for c in document["customers"] if c.get("id") == customer_id)
    if "terms" not in entry:
        first = CommentedMap()
        for key in ("term", "categories"):
            first[key] = entry[key]
            if key in entry.ca.items:  # a comment on the key's line moves with it
                first.ca.items[key] = entry.ca.items.pop(key)
        position = list(entry).index("term")
        del entry["term"], entry["categories"]
        entry.insert(position, "terms", CommentedSeq([first]))
    entry["terms"].append(yaml.load(proposal)[0])
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _check(workspace: Workspace, text: str) -> None:
    """The renewed file as load_config reads it, tried in a scratch workspace first."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="polyrecon-renew-") as scratch:
        trial = Workspace(Path(scratch))
        trial.config_dir.mkdir(parents=True)
        trial.contracts_file.write_text(text, encoding="utf-8")
        if workspace.partner_file.exists():
            shutil.copyfile(workspace.partner_file, trial.partner_file)
        if workspace.catalog_file.exists():
            shutil.copyfile(workspace.catalog_file, trial.catalog_file)
        load_config(trial)
