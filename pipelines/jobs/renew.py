"""`renew --customer ID`: the renewal proposal of a term's last month, appended to the customer's
`terms` in contracts.yaml.

The proposal is `reports/<last month>/renewal-<customer>.yaml` as that month's reconciliation
wrote it (a partner may correct its numbers first): a valid `terms` item. contracts.yaml is
edited as text, not rewritten: the YAML parser's node positions only locate the customer's
entry, and the proposal's lines (with their comments, indented as the entry's other terms) are
inserted after the last line of its last term, so every other byte of the file — comments,
`null`s, aligned values, the next customer's heading, CRLF line ends, a byte order mark — stays
as it was (issue 29). A one-term entry (`term` + `categories`) becomes `terms` with that term
first: only those lines change. Flow-style `terms` get a flow item. The new file is checked as
`load_config` checks it before it replaces the old one, which stays beside it
(config/contracts.before-renew-…yaml). A contracts.yaml that is a symbolic link (a repository
checkout, a mounted secret) is written through: its target is replaced atomically and the link
stays; a target that cannot be written is refused in one line. Past months keep their term, so
re-running them gives the same files as before.
"""
from __future__ import annotations

import bisect
import codecs
import contextlib
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from pipelines.core.config import Config, ContractTerm, load_config
from pipelines.core.errors import ConfigError
from pipelines.core.files import free_path
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
    link = workspace.contracts_file
    target = Path(os.path.realpath(link))  # itself, or the file a (chain of) link(s) names
    old = target.read_bytes()
    bom = codecs.BOM_UTF8 if old.startswith(codecs.BOM_UTF8) else b""
    cannot = ConfigError(f"renew: customer '{customer_id}': its entry in contracts.yaml is "
                         f"written in a way renew cannot edit: nothing was changed; add the "
                         f"proposal {workspace.relative(proposal)} to its `terms` yourself")
    try:
        renewed = bom + _appended(old[len(bom):].decode("utf-8"), customer_id,
                                  proposal.read_text(encoding="utf-8-sig")).encode("utf-8")
    except (StopIteration, LookupError, TypeError, AttributeError, ValueError) as error:
        raise cannot from error  # a shape the text edit does not know: never a guess
    after = _check(workspace, renewed).contracts.get(customer_id)
    if after is None or after.all_terms != (*terms, item):  # a guard: never a wrong edit
        raise cannot
    temporary = _prepared(workspace, target, renewed, customer_id, proposal)
    try:
        kept = free_path(link.with_name(
            f"contracts.before-renew-{customer_id}-{item.term.start}.yaml"))
        shutil.copy2(target, kept)  # beside the link: config/, with the target's content
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
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


def _prepared(workspace: Workspace, target: Path, data: bytes, customer_id: str,
              proposal: Path) -> Path:
    """`data` in a temporary file beside `target`, on disk, with the target's mode (and owner,
    where allowed), ready to replace it; or ConfigError, nothing left behind, if that cannot
    be written there (a read-only mount, no permission)."""
    temporary = target.with_name(f".{target.name}.renew.tmp")
    status = target.stat()
    mode = stat.S_IMODE(status.st_mode)
    try:
        if not os.access(target, os.W_OK):
            raise PermissionError(13, os.strerror(13), str(target))
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)  # the umask may have narrowed it
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        link = workspace.contracts_file
        what = workspace.relative(link)
        if link.is_symlink():
            what += f" (a link to {target})"
        raise ConfigError(f"renew: {what} cannot be written ({error.strerror or error}): "
                          f"nothing was changed; add the proposal {workspace.relative(proposal)} "
                          f"to {customer_id}'s `terms` there yourself, or make it writable and "
                          f"run renew again") from None
    with contextlib.suppress(OSError):
        os.chown(temporary, status.st_uid, status.st_gid)
    return temporary


# --- contracts.yaml edited as text ------------------------------------------------------------

_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")  # what YAML counts as a line break
_ENDS_LINE = re.compile(r"(?:\r\n|[\r\n\x85\u2028\u2029])\Z")
_SEQUENCE_STYLE = (2, 2)  # `terms:` then `- ` two further in, the item two after the dash


class _Text:
    """A YAML text with its lines as the parser counts them: a node's mark (line, column) is
    an offset into it."""

    def __init__(self, text: str):
        self.text = text
        self.starts = [0, *(match.end() for match in _BREAK.finditer(text))]
        first = _BREAK.search(text)
        self.newline = first[0] if first else "\n"

    def offset(self, mark) -> int:
        return self.starts[mark.line] + mark.column

    def line_at(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset) - 1

    def line_end(self, line: int) -> int:
        """The offset after the line's break (the end of the text on its last line)."""
        return self.starts[line + 1] if line + 1 < len(self.starts) else len(self.text)

    def line(self, line: int) -> str:
        return self.text[self.starts[line]:self.line_end(line)].rstrip("\r\n\x85\u2028\u2029")

    def through(self, node, deeper_than: int) -> int:
        """The offset after the last line that belongs to `node`: the line its last value ends
        on (with an end-of-line comment), then comment lines indented deeper than
        `deeper_than` (a comment on the node's last lines). A blank line, or a comment further
        out — the next entry's heading — ends it."""
        import yaml

        while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) \
                and not node.flow_style and node.value:
            node = node.value[-1][1] if isinstance(node, yaml.MappingNode) else node.value[-1]
        end = self.offset(node.end_mark)
        at_line_start = end > 0 and self.starts[self.line_at(end)] == end
        if not (getattr(node, "style", None) in ("|", ">") and at_line_start):
            end = self.line_end(self.line_at(end))  # a block scalar ends with its line break
        while end < len(self.text):
            line = self.line(self.line_at(end))
            comment = line.lstrip(" ")
            if not comment.startswith("#") or len(line) - len(comment) <= deeper_than:
                break
            end = self.line_end(self.line_at(end))
        return end

    def flow(self, node) -> str:
        """The node as one line of flow style, each scalar as written."""
        import yaml

        if isinstance(node, yaml.ScalarNode):
            return self.text[self.offset(node.start_mark):self.offset(node.end_mark)]
        if isinstance(node, yaml.SequenceNode):
            return "[" + ", ".join(self.flow(item) for item in node.value) + "]"
        return "{" + ", ".join(f"{self.flow(key)}: {self.flow(value)}"
                               for key, value in node.value) + "}"


def _compose(text: str):
    import yaml

    return yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _key(mapping, name: str) -> int | None:
    import yaml

    return next((index for index, (key, _) in enumerate(mapping.value)
                 if isinstance(key, yaml.ScalarNode) and key.value == name), None)


def _keys(pairs, level: int = 0):
    """(line, column, level) of the keys of a term item's block mappings: the item's own at
    level 0, the keys of a block mapping under one of them (a category) a level deeper."""
    import yaml

    for key, value in pairs:
        yield key.start_mark.line, key.start_mark.column, level
        if isinstance(value, yaml.MappingNode) and not value.flow_style:
            yield from _keys(value.value, level + 1)


def _pairs(item) -> list:
    import yaml

    block = isinstance(item, yaml.MappingNode) and not item.flow_style
    return item.value if block else []


def _levels(pairs, item_column: int, shift: int = 0) -> dict[int, int]:
    """The column of each level's keys (the first key seen on it), moved by `shift`."""
    levels = {}
    for _, column, level in _keys(pairs):
        levels.setdefault(level, column + shift)
    levels.setdefault(0, item_column + shift)
    return levels


def _proposal_lines(proposal: _Text, root, dash: int, levels: dict[int, int]) -> list[str]:
    """The proposal's item (without the file's header comments) as lines of a block sequence
    whose dashes stand at `dash` and whose items' keys are at `levels` (level: column), as
    the file's terms are; comment lines indented as the line they describe."""
    item = root.value[0]
    if root.flow_style:
        return [" " * dash + "- " + proposal.flow(item)]
    keys = list(_keys(_pairs(item)))
    theirs = _levels(_pairs(item), item.start_mark.column)
    ours = dict(levels)
    for level in sorted(theirs):  # deeper than the file's terms go: as deep again as theirs
        if level not in ours:
            ours[level] = ours[level - 1] + theirs[level] - theirs[level - 1]
    key_at = {line: (column, level) for line, column, level in keys}
    first = root.start_mark.line
    last = proposal.line_at(proposal.through(root, root.start_mark.column) - 1)
    rest = proposal.line(first)[root.start_mark.column + 1:]
    if item.start_mark.line == first and rest.strip():
        lines: list[str | None] = [
            " " * dash + "-" + " " * max(ours[0] - dash - 1, 1) + rest.lstrip(" ")]
    else:
        lines = [" " * dash + "-" + rest]
    moved = ours[0] - theirs[0]  # how far the line above (a key, or what it continues) moved
    for number in range(first + 1, last + 1):
        line = proposal.line(number)
        content = line.lstrip(" ")
        column = len(line) - len(content)
        if not content.strip():
            lines.append("")
        elif content.startswith("#"):
            lines.append(None)  # indented below, as the next line with content
        else:
            key_column, level = key_at.get(number, (None, None))
            if key_column == column:
                moved = ours[level] - column
            lines.append(" " * max(column + moved, dash + 1) + content)
    following = None  # the indentation of the next line with content
    for number in range(len(lines) - 1, 0, -1):
        if lines[number] is None:
            line = proposal.line(first + number)
            comment = line.lstrip(" ")
            column = following if following is not None else \
                max(len(line) - len(comment) + ours[0] - theirs[0], dash + 1)
            lines[number] = " " * column + comment
        elif lines[number]:
            following = len(lines[number]) - len(lines[number].lstrip(" "))
    return lines


def _added(before: str, lines: list[str], newline: str) -> str:
    """`lines` as text to insert after `before`: each with a line break, or, at the end of a
    file without a final line break, each after one."""
    if not before or _ENDS_LINE.search(before):
        return "".join(line + newline for line in lines)
    return "".join(newline + line for line in lines)


def _sequence_style(customers) -> tuple[int, int]:
    """How the file's other `terms` are indented: (dash after `terms`, item after the dash)."""
    import yaml

    for entry in customers.value:
        index = _key(entry, "terms") if isinstance(entry, yaml.MappingNode) else None
        if index is None:
            continue
        key, terms = entry.value[index]
        if isinstance(terms, yaml.SequenceNode) and not terms.flow_style and terms.value \
                and terms.value[0].start_mark.line == terms.start_mark.line:
            dash = terms.start_mark.column
            return dash - key.start_mark.column, terms.value[0].start_mark.column - dash
    return _SEQUENCE_STYLE


def _appended(text: str, customer_id: str, proposal: str) -> str:
    """`text` (contracts.yaml) with the proposal's item added to the customer's terms, every
    byte outside the customer's term lines as it was."""
    import yaml

    source, offer = _Text(text), _Text(proposal)
    root = _compose(text)
    customers = root.value[_key(root, "customers")][1]
    entry = next(node for node in customers.value if isinstance(node, yaml.MappingNode)
                 and (found := _key(node, "id")) is not None
                 and getattr(node.value[found][1], "value", None) == customer_id)
    offered = _compose(proposal)  # a sequence of one item: _read_proposal checked it
    item = offered.value[0]
    terms = _key(entry, "terms")
    if terms is not None:
        sequence = entry.value[terms][1]
        if sequence.flow_style:
            at = source.offset(sequence.value[-1].end_mark)
            return text[:at] + ", " + offer.flow(item) + text[at:]
        dash = sequence.start_mark.column
        at = source.through(sequence.value[-1], dash)
        last = sequence.value[-1]
        lines = _proposal_lines(offer, offered, dash,
                                _levels(_pairs(last), last.start_mark.column))
        return text[:at] + _added(text[:at], lines, source.newline) + text[at:]
    return _one_term_to_terms(source, customers, entry, offer, offered)


def _one_term_to_terms(source: _Text, customers, entry, offer: _Text, offered) -> str:
    """`term` + `categories` become `terms: [that term, the proposal]` where the first of the
    two keys was; a key between them stays after `terms`."""
    text = source.text
    first, second = sorted((_key(entry, "term"), _key(entry, "categories")))
    (first_key, first_value), (second_key, second_value) = \
        entry.value[first], entry.value[second]
    start = source.offset(first_key.start_mark)
    if entry.flow_style:
        def pair(key, value):
            return text[source.offset(key.start_mark):source.offset(value.end_mark)]
        terms = (f"terms: [{{{pair(first_key, first_value)}, {pair(second_key, second_value)}}}"
                 f", {offer.flow(offered.value[0])}]")
        kept_between = text[source.offset(first_value.end_mark):
                             source.offset(entry.value[second - 1][1].end_mark)]
        return text[:start] + terms + kept_between \
            + text[source.offset(second_value.end_mark):]
    column = first_key.start_mark.column
    dash_after, item_after = _sequence_style(customers)
    shift = dash_after + item_after
    if second == first + 1:  # adjacent: the lines between (comments) go with them
        first_end = source.through(second_value, column)
        moved, cut = "", (first_end, first_end)
        between = ""
    else:  # the later key moves up, with the comment lines just above it
        line = source.line_at(source.offset(second_key.start_mark))
        above = source.through(entry.value[second - 1][1], column)
        while source.starts[line] > above \
                and source.line(line - 1).lstrip(" ").startswith("#"):
            line -= 1
        first_end = source.through(first_value, column)
        cut = (source.starts[line], source.through(second_value, column))
        moved = text[cut[0]:cut[1]]
        between = text[first_end:cut[0]]
        if not _ENDS_LINE.search(moved):  # it ended a file without a final line break
            moved += source.newline
            between = _ENDS_LINE.sub("", between)  # which still ends so
    body = text[start:first_end] + moved
    pieces = _BREAK.split(body)
    breaks = _BREAK.findall(body) + [""]
    body = "".join((" " * shift if number and piece.strip() else "") + piece + end
                   for number, (piece, end) in enumerate(zip(pieces, breaks, strict=True)))
    dash = column + dash_after
    lines = _proposal_lines(offer, offered, dash, _levels(
        [entry.value[first], entry.value[second]], column, shift))
    renewed = f"terms:{source.newline}{' ' * dash}-{' ' * (item_after - 1)}{body}"
    renewed += _added(renewed, lines, source.newline)
    return text[:start] + renewed + between + text[cut[1]:]


def _check(workspace: Workspace, data: bytes) -> Config:
    """The renewed file as load_config reads it, tried in a scratch workspace first."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="polyrecon-renew-") as scratch:
        trial = Workspace(Path(scratch))
        trial.config_dir.mkdir(parents=True)
        trial.contracts_file.write_bytes(data)
        if workspace.partner_file.exists():
            shutil.copyfile(workspace.partner_file, trial.partner_file)
        if workspace.catalog_file.exists():
            shutil.copyfile(workspace.catalog_file, trial.catalog_file)
        return load_config(trial)
