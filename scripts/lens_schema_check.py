"""Does Poly Lens still have every field the pull asks for? Run it before run day (issue 31).

Lens renames a field now and then, and a GraphQL server refuses a whole query over one unknown
field: the pull would fail on run day with Lens's "Cannot query field …". This check reads an
answer of Lens's API against the queries the pull sends (the GraphQL documents in
pipelines/lens_api/client.py) and names each field the pull asks for that Lens no longer has, in
one sentence that says what to do.

- `--live` sends the pull's queries to Lens now, without credentials: Lens checks a query's
  fields before it asks who is calling (rknightion/polylens2otel's schema canary relies on
  this), so a query whose fields all exist is answered "You must be logged in to run this query"
  and one with a renamed field "Cannot query field …". No secret and no customer's data travel.
- `--replay FILE` reads a recorded answer instead: Lens's refusal of a query, or a data answer.
  A data answer shows only what its query asked for: `--asked QUERY` names that query when it
  was not the pull's own (a public client's recording); the pull's fields it did not ask for are
  listed as not shown by the answer, not as drift.

Exit 0: every field the answer can show is there; 1: drift, or Lens answered with an error that
says nothing about its fields; 2: the file, the query or the arguments cannot be used.

Usage: .venv/bin/python scripts/lens_schema_check.py --live [--url URL]
       .venv/bin/python scripts/lens_schema_check.py --replay ANSWER.json [--asked QUERY.graphql]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# A selection tree: field name -> its own selections (None for a scalar field).
Tree = dict[str, "Tree | None"]

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\.\.\.|[A-Za-z_]\w*|\$\w+|-?\d[\w.]*|\S')
_CANNOT_QUERY = re.compile(r'Cannot query field "(\w+)" on type "(\w+)"\.(?: Did you mean (.+)\?)?')
# Lens's answers to a query it accepted but will not run without a login.
_LOGIN = ("you must be logged in", "authorization failed", "unauthorized", "unauthenticated")
# Lens's words for a query it refused before running it.
_REFUSED_CODES = ("GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED", "BAD_USER_INPUT")
_INSTRUCTION = ("rename it in pipelines/lens_api/client.py (and where pipelines/ingest_lens.py "
                "reads it), then run this check again")
ANSWER_LIMIT = 1024 * 1024  # bytes read of a live answer: a refusal or a login request is small
# Values for a live query's variables: Lens checks them against their types before the login.
_PLACEHOLDERS = {"ID": "polyrecon-schema-check", "String": "polyrecon-schema-check", "Int": 1,
                 "Boolean": False, "DeviceFindArgs": {"pageSize": 1}}


class Unusable(Exception):
    """The input cannot be checked; the message names it and says what to do."""


@dataclass(frozen=True)
class PullQuery:
    name: str  # the operation's name, as Lens's logs and this check's sentences show it
    document: str
    tree: Tree


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)  # drift, or an answer that says nothing
    notes: list[str] = field(default_factory=list)


def selections(document: str) -> Tree:
    """The fields a GraphQL document selects; arguments, variables and comments are skipped.
    Aliases and fragments are not read (the pull uses neither)."""
    tokens = _TOKEN.findall(re.sub(r"#[^\n]*", "", document))
    try:
        start = tokens.index("{")
    except ValueError:
        raise Unusable("the query has no selection set ({ … }); give a GraphQL query") from None
    tree, end = _selection_set(tokens, start)
    if end != len(tokens):
        raise Unusable(f"the query goes on after its selection set ({tokens[end]!r}); give one "
                       f"GraphQL query")
    return tree


def _selection_set(tokens: list[str], at: int) -> tuple[Tree, int]:
    tree: Tree = {}
    at += 1  # past "{"
    while at < len(tokens) and tokens[at] != "}":
        name = tokens[at]
        if not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise Unusable(f"the query holds {name!r} where a field name belongs (aliases and "
                           f"fragments are not read); give a plain GraphQL query")
        at += 1
        if at < len(tokens) and tokens[at] == "(":
            at = _past_parentheses(tokens, at)
        subtree = None
        if at < len(tokens) and tokens[at] == "{":
            subtree, at = _selection_set(tokens, at)
        tree[name] = subtree
    if at >= len(tokens):
        raise Unusable("the query's braces do not close; give a complete GraphQL query")
    return tree, at + 1


def _past_parentheses(tokens: list[str], at: int) -> int:
    depth = 0
    for position in range(at, len(tokens)):
        depth += {"(": 1, ")": -1}.get(tokens[position], 0)
        if depth == 0:
            return position + 1
    raise Unusable("the query's parentheses do not close; give a complete GraphQL query")


def pull_queries() -> list[PullQuery]:
    """The GraphQL documents the pull sends: the upper-case string constants of its client."""
    from pipelines.lens_api import client

    found = []
    for constant, value in sorted(vars(client).items()):
        if constant.isupper() and isinstance(value, str) and re.match(r"\s*(query\b|\{)", value):
            named = re.match(r"\s*query\s+(\w+)", value)
            found.append(PullQuery(named[1] if named else constant, value, selections(value)))
    return found


def paths(tree: Tree, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field of a tree, as its path from the answer's `data`."""
    found = []
    for name, subtree in tree.items():
        found.append((*prefix, name))
        if subtree:
            found += paths(subtree, (*prefix, name))
    return found


def _shown(path: tuple[str, ...]) -> str:
    return ".".join(path[-2:])


def judge(answer, pull: list[PullQuery], asked: Tree | None = None) -> Verdict:
    """What one answer of Lens says about the fields the pull asks for. `asked`: the selections
    of the query the answer answers, when it is not one of the pull's own."""
    if not isinstance(answer, dict) or not ({"data", "errors"} & answer.keys()):
        raise Unusable("it is no GraphQL answer (a JSON object with data or errors); give "
                       "Lens's answer as it came")
    verdict = Verdict()
    errors = answer.get("errors") or []
    if not isinstance(errors, list):
        errors = [errors]
    messages = [" ".join(str(e.get("message", e) if isinstance(e, dict) else e).split())
                for e in errors]
    codes = [str((e.get("extensions") or {}).get("code", "")) if isinstance(e, dict) else ""
             for e in errors]
    pull_fields = {path[-1] for query in pull for path in paths(query.tree)}
    for message, code in zip(messages, codes, strict=True):
        refused = _CANNOT_QUERY.search(message)
        if refused:
            name, kind, suggestion = refused.groups()
            users = [q.name for q in pull if name in {p[-1] for p in paths(q.tree)}]
            if not users:
                raise Unusable(f"Lens refused the field \"{name}\", which the pull does not ask "
                               f"for: the answer is to another query; record Lens's answer to "
                               f"the pull's own queries (--live)")
            hint = f" (it suggests {suggestion})" if suggestion else ""
            verdict.problems.append(f"Lens has no field \"{name}\" on {kind} any more{hint}, "
                                    f"and the pull asks for it in {', '.join(users)}: "
                                    f"{_INSTRUCTION}.")
        elif any(word in message.lower() for word in _LOGIN):
            verdict.notes.append("Lens checked the pull's fields and asked for a login: none is "
                                 "missing.")
        elif code in _REFUSED_CODES or message.startswith(("Unknown ", "Variable ")):
            verdict.problems.append(f"Lens refused the pull's query: {message[:300]}; change "
                                    f"pipelines/lens_api/client.py to what Lens names now, then "
                                    f"run this check again.")
        else:
            verdict.problems.append(f"Lens answered with an error that says nothing about its "
                                    f"fields: {message[:300]}; run this check again later.")
    data = answer.get("data")
    if isinstance(data, dict) and data:
        _judge_data(data, pull, asked, pull_fields, verdict)
    elif not errors:
        raise Unusable("the answer holds no data and no errors; give an answer that holds "
                       "either")
    return verdict


def _judge_data(data: dict, pull: list[PullQuery], asked: Tree | None, pull_fields: set[str],
                verdict: Verdict) -> None:
    answered = [q for q in pull if q.tree.keys() & data.keys()]
    if not answered:
        raise Unusable(f"the answer holds none of the fields the pull's queries start from "
                       f"({', '.join(sorted({k for q in pull for k in q.tree}))}); give an "
                       f"answer to one of them")
    for query in answered:
        recorded = asked if asked is not None else query.tree
        missing, extra = _walk(recorded, data)
        shown = set(paths(recorded))
        checked = [p for p in paths(query.tree) if p in shown]
        for path in missing:
            if path not in set(paths(query.tree)):
                continue  # asked by the recording's query, not by the pull: not ours to judge
            instead = sorted(extra.get(path[:-1], set()) - pull_fields)
            named = ", ".join(f'"{key}"' for key in instead)
            hint = f" (it answered {named} there)" if instead else ""
            place = f"at {'.'.join(path[:-1])}" if path[:-1] else "at the top of its data"
            verdict.problems.append(f"Lens answered without the field \"{path[-1]}\" {place}"
                                    f"{hint}, and the pull asks for it in {query.name}: if Lens "
                                    f"renamed it, {_INSTRUCTION}.")
        unshown = [p for p in paths(query.tree) if p not in shown and p[:-1] in shown | {()}]
        present = len([p for p in checked if p not in missing])
        verdict.notes.append(f"{query.name}: the answer shows {len(checked)} of its "
                             f"{len(paths(query.tree))} fields; {present} are there.")
        if unshown:
            verdict.notes.append(f"{query.name}: not shown by this answer (its query did not ask "
                                 f"for them): {', '.join(_shown(p) for p in unshown)}; check "
                                 f"them with --live.")


def _walk(tree: Tree, value, prefix: tuple[str, ...] = ()):
    """The asked fields an answer lacks, and the keys it holds that were not asked, by path.
    Null objects and empty lists show nothing."""
    missing: list[tuple[str, ...]] = []
    extra: dict[tuple[str, ...], set[str]] = {}
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            continue
        unasked = set(item) - set(tree) - {"__typename"}
        if unasked:
            extra.setdefault(prefix, set()).update(unasked)
        for name, subtree in tree.items():
            if name not in item:
                if (*prefix, name) not in missing:
                    missing.append((*prefix, name))
            elif subtree:
                more_missing, more_extra = _walk(subtree, item[name], (*prefix, name))
                missing += [m for m in more_missing if m not in missing]
                for path, keys in more_extra.items():
                    extra.setdefault(path, set()).update(keys)
    return missing, extra


def live_answers(url: str, pull: list[PullQuery]) -> list[tuple[PullQuery, dict]]:
    """Each pull query as Lens answers it now, sent without credentials (see the docstring)."""
    import requests

    answers = []
    for query in pull:
        try:
            with requests.post(url, json={"query": query.document,
                                          "variables": _variables(query.document)},
                               timeout=(10, 30), allow_redirects=False, stream=True) as reply:
                body = reply.raw.read(ANSWER_LIMIT + 1, decode_content=True)
                status = reply.status_code
        except requests.RequestException as failure:
            raise Unusable(f"it could not be reached ({type(failure).__name__}); check the "
                           f"address and the network, then run this check again") from None
        try:
            answer = json.loads(body[:ANSWER_LIMIT])
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not ({"data", "errors"} & answer.keys()):
            raise Unusable(f"it answered HTTP {status} without a GraphQL answer; check the "
                           f"address (Lens's is the graphql_url of partner.yaml's lens "
                           f"section), then run this check again")
        answers.append((query, answer))
    return answers


def _variables(document: str) -> dict:
    values = {}
    for name, kind in re.findall(r"\$(\w+)\s*:\s*\[?\s*(\w+)", document.split("{", 1)[0]):
        if kind in _PLACEHOLDERS:
            values[name] = _PLACEHOLDERS[kind]
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--live", action="store_true",
                        help="ask Lens now, without credentials")
    source.add_argument("--replay", type=Path, metavar="ANSWER",
                        help="a recorded answer of Lens's GraphQL API (JSON)")
    parser.add_argument("--asked", type=Path, metavar="QUERY",
                        help="the query a replayed answer answers, when not the pull's own")
    parser.add_argument("--url", help="Lens's GraphQL address (default: polyrecon's default)")
    args = parser.parse_args(argv)
    if args.asked and args.live:
        parser.error("--asked names the query of a --replay answer; --live asks the pull's own")
    try:
        pull = pull_queries()
    except Unusable as problem:
        print(f"pipelines/lens_api/client.py: {problem}.", file=sys.stderr)
        return 2
    try:
        if args.live:
            from pipelines.core.config import LensSettings

            where = args.url or LensSettings().graphql_url
            verdicts = [judge(answer, [query]) for query, answer in live_answers(where, pull)]
            print(f"Asked {where} without credentials.")
        else:
            where = args.asked
            asked = selections(_read(args.asked)) if args.asked else None
            where = args.replay
            try:
                answer = json.loads(_read(args.replay))
            except ValueError:
                raise Unusable("it is not JSON; give Lens's answer as it came") from None
            verdicts = [judge(answer, pull, asked)]
    except Unusable as problem:
        print(f"{where}: {problem}.", file=sys.stderr)
        return 2
    problems = [line for verdict in verdicts for line in verdict.problems]
    for line in [line for verdict in verdicts for line in verdict.notes] + problems:
        print(line)
    if not problems:
        print("No drift: Lens has every field of the pull's queries that the answer shows.")
    return 1 if problems else 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as failure:
        raise Unusable(f"cannot be read ({type(failure).__name__}); give a UTF-8 file") from None


if __name__ == "__main__":
    sys.exit(main())
