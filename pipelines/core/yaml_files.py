"""Reading the workspace's YAML files so that every mistake can be pointed at.

Dates stay text (pydantic parses them, so `2026-02-30` becomes a clear error instead of a
PyYAML crash), decimals stay exact (`180.10` is `Decimal("180.10")`, never a float),
duplicate keys are errors (PyYAML would silently keep the last one), and the node tree is
kept so an error location can be turned into a line number.
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from pipelines.core.errors import ConfigError


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
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise _DuplicateKey(key, key_node.start_mark.line + 1, seen[key])
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int, first_line: int):
        super().__init__(key, line, first_line)
        self.key, self.line, self.first_line = key, line, first_line


_Loader.add_constructor("tag:yaml.org,2002:float", _exact_decimal)
_Loader.add_constructor("tag:yaml.org,2002:map", _mapping_without_duplicates)


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
            data = None if root is None else loader.construct_document(root)
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
