"""Reading the workspace's YAML files so that every mistake can be pointed at.

Dates stay text (pydantic parses them, so `2026-02-30` becomes a clear error instead of a
PyYAML crash), decimals stay exact (`180.10` is `Decimal("180.10")`, never a float),
duplicate keys are errors (PyYAML would silently keep the last one), and the node tree is
kept so an error location can be turned into a line number. A decimal comma in a flow mapping
(`{unit_price_per_year: 180,00}`, as German partners write numbers) is read back as the text
written, `"180,00"`, instead of YAML's reading of it: the key `unit_price_per_year: 180` and a
second key `00`, which no message could explain; the models then say what to write instead.
Bounded and plain: at most MAX_NESTING levels deep, keys are plain names, and no value holds a
control character (a line break in a customer's name would end an e-mail header and start
another, or add an entry to the renewal YAML).
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from pipelines.core.errors import ConfigError
from pipelines.core.visible import HIDDEN

MAX_NESTING = 20  # our files nest five levels; far deeper is no configuration


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """libyaml's parser where PyYAML has it (a thousand customers' contracts.yaml parses in a
    fraction of a second instead of seconds); the constructors below are ours either way."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _exact_decimal(loader: _Loader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    try:
        return Decimal(text.replace("_", ""))
    except InvalidOperation:  # .inf / .nan: let the models reject them
        return loader.construct_yaml_float(node)


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise _BadInput(key_node.start_mark.line + 1,
                            "a key must be a plain name, not a list or mapping")
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise _DuplicateKey(key, key_node.start_mark.line + 1, seen[key])
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


class _BadInput(Exception):
    def __init__(self, line: int, problem: str):
        super().__init__(line, problem)
        self.line, self.problem = line, problem


def _check_shape(root: yaml.Node) -> None:
    """Depth, and control characters in keys and values: checked on the nodes, without
    recursion, before anything is built from them."""
    pending = [(root, 1)]
    seen = set()
    while pending:
        node, depth = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        line = node.start_mark.line + 1
        if depth > MAX_NESTING:
            raise _BadInput(line, f"nested deeper than {MAX_NESTING} levels")
        if isinstance(node, yaml.ScalarNode):
            if found := HIDDEN.search(node.value):
                raise _BadInput(line, f"{node.value[:40]!r} holds the control character "
                                      f"U+{ord(found[0]):04X} (a line break or another "
                                      f"invisible character): remove it")
        elif isinstance(node, yaml.MappingNode):
            pending.extend((child, depth + 1) for pair in node.value for child in pair)
        elif isinstance(node, yaml.SequenceNode):
            pending.extend((child, depth + 1) for child in node.value)


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int, first_line: int):
        super().__init__(key, line, first_line)
        self.key, self.line, self.first_line = key, line, first_line


_Loader.add_constructor("tag:yaml.org,2002:float", _exact_decimal)
_Loader.add_constructor("tag:yaml.org,2002:map", _mapping_without_duplicates)

# What stands on either side of a decimal (or thousands) comma YAML took for a separator.
_NUMBER_BEFORE_COMMA = re.compile(r"[-+]?[0-9][0-9.,]*")
_DIGITS = re.compile(r"[0-9]+")


def _rejoin_decimal_commas(root: yaml.Node) -> None:
    """Give every `number,digits` that a flow mapping split into two entries back as one text.

    The split shows as a plain number value followed, with nothing but the comma between, by a
    plain all-digit key without a value: no key of ours is a number, so it is always a comma
    meant inside a number.
    """
    pending, seen = [root], set()
    while pending:
        node = pending.pop()
        if id(node) in seen:  # an alias: the same node again, or an anchor inside itself
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            if node.flow_style:
                _rejoin_in(node.value)
            pending.extend(value for _, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)


def _rejoin_in(pairs: list[tuple[yaml.Node, yaml.Node]]) -> None:
    index = 0
    while index + 1 < len(pairs):
        (key, value), (next_key, next_value) = pairs[index], pairs[index + 1]
        if _split_number(value, next_key, next_value):
            pairs[index] = (key, yaml.ScalarNode("tag:yaml.org,2002:str",
                                                 f"{value.value},{next_key.value}",
                                                 value.start_mark, next_key.end_mark))
            del pairs[index + 1]  # and look again: 1,234,50 was split twice
        else:
            index += 1


def _split_number(value: yaml.Node, next_key: yaml.Node, next_value: yaml.Node) -> bool:
    plain = all(isinstance(n, yaml.ScalarNode) and not n.style
                for n in (value, next_key, next_value))
    return (plain and _NUMBER_BEFORE_COMMA.fullmatch(value.value) is not None
            and _DIGITS.fullmatch(next_key.value) is not None and next_value.value == ""
            and next_key.start_mark.line == value.end_mark.line
            and next_key.start_mark.column == value.end_mark.column + 1)


class YamlDocument:
    """A parsed YAML file: its data plus a way to find the line of any location in it."""

    def __init__(self, path: Path, data: Any, root: yaml.Node | None):
        self.path, self.data, self._root = path, data, root

    @classmethod
    def read(cls, path: Path, missing_ok: bool = False) -> YamlDocument:
        if not path.exists():
            if missing_ok:
                return cls(path, {}, None)
            raise ConfigError(f"{path.name}: file not found at {path} "
                              f"(create it with `python -m pipelines init`)")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path.name}: not UTF-8 text (byte {error.start}); "
                              f"save the file as UTF-8") from None
        loader = _Loader(text)
        try:
            root = loader.get_single_node()  # parsed once: data and line numbers both from it
            if root is not None:
                _check_shape(root)
                _rejoin_decimal_commas(root)
            data = None if root is None else loader.construct_document(root)
        except _BadInput as error:
            raise ConfigError(f"{path.name}: line {error.line}: {error.problem}") from None
        except _DuplicateKey as error:
            raise ConfigError(f"{path.name}: line {error.line}: key {error.key!r} appears twice "
                              f"(first on line {error.first_line})") from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
            problem = getattr(error, "problem", None) or str(error)
            raise ConfigError(f"{path.name}: {where}not valid YAML ({problem})") from None
        finally:
            loader.dispose()
        return cls(path, {} if data is None else data, root)

    def line_of(self, location: tuple) -> int | None:
        """The line (1-based) of the deepest node on `location` that exists in the file."""
        node, line = self._root, None
        for step in location:
            if isinstance(node, yaml.MappingNode):
                node = next((value for key, value in node.value
                             if isinstance(key, yaml.ScalarNode) and key.value == str(step)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) \
                    and step < len(node.value):
                node = node.value[step]
            else:
                node = None
            if node is None:
                break
            line = node.start_mark.line + 1
        return line
