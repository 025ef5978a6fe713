"""The package's shape (docs/architecture.md): imports run one way along the data flow.

Every import of every module under pipelines/ is read with `ast`: top-level ones, those inside
functions (the CLI imports its heavy modules lazily) and those under `if TYPE_CHECKING:`
(a type-only import is still a dependency). Relative imports are resolved. Five rules:

(a) no import cycle between modules;
(b) a module imports only from its own stage or an earlier one (STAGES, in flow order);
(c) the two sources, intake (uploads) and lens_api (pulls), never import each other: what they
    share is the raw stage's (write-audit-publish, the quality gate) or core's;
(d) delivery imports nothing from intake or lens_api: it works from the warehouse and the
    reconciliation results;
(e) the rules (reconcile) import nothing from warehouse: reconciliation/ reads and stores.

A module's stage is decided by its first name under pipelines/: its folder, or the module
itself for a top-level file. A new folder or top-level module fails the test until it is added
to STAGES, so where it sits in the flow is a decision. Dynamic imports (`importlib`) are not
seen; the package has none.
"""
from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "pipelines"

# Earliest first. Names on one line share a rank and may import each other (unless FORBIDDEN).
STAGES: tuple[tuple[str, ...], ...] = (
    ("__init__", "core"),  # __init__: pipelines/__init__.py itself
    ("warehouse",),
    ("ingest_lens",),
    ("raw",),
    ("intake", "lens_api"),
    ("reconcile", "reconciliation"),
    ("reports",),
    ("delivery",),
    ("jobs", "demo"),
    ("cli", "__main__"),
)
RANK = {stage: rank for rank, names in enumerate(STAGES) for stage in names}
# Rules (c) to (e): stage -> stages it must not import.
FORBIDDEN = {"intake": ("lens_api",), "lens_api": ("intake",),
             "delivery": ("intake", "lens_api"), "reconcile": ("warehouse",)}


@dataclass(frozen=True)
class Import:
    source: str  # module name, pipelines.intake.take
    target: str  # module imported, resolved to the most specific module known
    line: int
    path: str  # the source file, relative to the repository, for messages

    def __str__(self) -> str:
        return f"{self.path}:{self.line} imports {self.target}"


def module_name(package: Path, path: Path) -> str:
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def read_imports(package: Path) -> tuple[set[str], list[Import]]:
    """Every module under `package`, and every import of a module of `package` they make."""
    files = sorted(p for p in package.rglob("*.py")
                   if not any(part.startswith(".") or part == "__pycache__"
                              for part in p.relative_to(package).parts))
    modules = {module_name(package, path): path for path in files}
    imports = []
    for module, path in modules.items():
        shown = str(path.relative_to(package.parent))
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(module, is_package, node.module, node.level)
                # `from pipelines.core import timers` imports the module pipelines.core.timers
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            else:
                continue
            for target in dict.fromkeys(targets):
                if target == package.name or target.startswith(package.name + "."):
                    imports.append(Import(module, target, node.lineno, shown))
    return set(modules), imports


def _absolute(module: str, is_package: bool, name: str | None, level: int) -> str:
    if level == 0:
        return name or ""
    parts = module.split(".")
    if not is_package:
        parts = parts[:-1]  # a plain module's `.` is the package it is in
    if level - 1 >= len(parts):
        raise ValueError(f"{module}: relative import beyond the top-level package")
    parts = parts[:len(parts) - (level - 1)]
    return ".".join(parts + ([name] if name else []))


def unplaced_modules(modules: set[str], imports: list[Import]) -> list[str]:
    names = sorted(modules | {i.target for i in imports})
    return [f"{m} is in no stage: add {stage_of(m)!r} to STAGES in tests/test_architecture.py "
            f"where it belongs in the flow, and to docs/architecture.md"
            for m in names if stage_of(m) not in RANK]


def backward_imports(imports: list[Import]) -> list[str]:
    problems = []
    for i in imports:
        source, target = stage_of(i.source), stage_of(i.target)
        if source in RANK and target in RANK and RANK[target] > RANK[source]:
            problems.append(f"{i}: {source} (rank {RANK[source]}) may not import from "
                            f"{target} (rank {RANK[target]}), a later stage")
    return problems


def forbidden_imports(imports: list[Import]) -> list[str]:
    return [f"{i}: {stage_of(i.source)} may not import from {stage_of(i.target)}"
            for i in imports if stage_of(i.target) in FORBIDDEN.get(stage_of(i.source), ())]


def import_cycles(imports: list[Import]) -> list[str]:
    """One message per group of modules that import each other, naming one cycle in it."""
    graph: dict[str, dict[str, Import]] = {}
    for i in imports:
        graph.setdefault(i.source, {}).setdefault(i.target, i)
    problems = []
    for group in sorted(_strongly_connected(graph), key=min):
        start = min(group)
        if len(group) == 1 and start not in graph.get(start, {}):
            continue
        cycle = _shortest_cycle(graph, start, group)
        steps = [graph[a][b] for a, b in itertools.pairwise(cycle)]
        problems.append("import cycle " + " -> ".join(cycle) + " ("
                        + "; ".join(f"{s.path}:{s.line}" for s in steps) + ")"
                        + (f", in a knot of {', '.join(sorted(group))}"
                           if len(group) > len(cycle) - 1 else ""))
    return problems


def _strongly_connected(graph: dict[str, dict[str, Import]]) -> list[set[str]]:
    """Tarjan's algorithm, without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, {}))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph.get(successor, {})))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    groups.append(group)
    return groups


def _shortest_cycle(graph: dict[str, dict[str, Import]], start: str, group: set[str]) -> list[str]:
    paths = {start: [start]}
    queue = [start]
    for node in queue:
        for successor in sorted(graph.get(node, {})):
            if successor == start:
                return paths[node] + [start]
            if successor in group and successor not in paths:
                paths[successor] = paths[node] + [successor]
                queue.append(successor)
    raise AssertionError(f"no cycle through {start}")  # cannot happen in a cyclic group


def problems(package: Path) -> list[str]:
    modules, imports = read_imports(package)
    return (unplaced_modules(modules, imports) + import_cycles(imports)
            + backward_imports(imports) + forbidden_imports(imports))


def test_every_module_has_a_stage():
    modules, imports = read_imports(PACKAGE)
    # the walk found the code
    assert "pipelines.intake.take" in modules
    assert len(imports) > 100
    assert unplaced_modules(modules, imports) == []


def test_no_import_cycles():
    assert import_cycles(read_imports(PACKAGE)[1]) == []


def test_imports_come_from_the_same_or_an_earlier_stage():
    assert backward_imports(read_imports(PACKAGE)[1]) == []


def test_neither_source_imports_the_other_delivery_neither_and_the_rules_no_warehouse():
    assert forbidden_imports(read_imports(PACKAGE)[1]) == []


def test_the_rules_catch_a_broken_package(tmp_path):
    """A small package broken on purpose, with every kind of import the walk must see."""
    package = tmp_path / "pipelines"
    files = {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/months.py": "def later():\n    from pipelines.reports import render\n",
        "reports/__init__.py": "",
        "reports/render.py": "from ..core import months\n",  # relative; with months: a cycle
        "intake/__init__.py": "",
        "intake/take.py": "",
        "lens_api/__init__.py": "",
        "lens_api/pull.py": "from pipelines.intake import take\n",
        "delivery/__init__.py": "",
        "delivery/mail.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                             "    from pipelines.intake.take import Arrival\n"),
        "delivery/sms.py": "from . import mail\nimport pipelines.jobs.monthly\n",
        "jobs/__init__.py": "",
        "jobs/monthly.py": "import os\nfrom pipelines import cli\n",
        "cli.py": "",
        "gadgets/__init__.py": "",
    }
    for name, text in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)

    imports = read_imports(package)[1]
    assert {(i.source, i.target, i.line) for i in imports} == {
        ("pipelines.core.months", "pipelines.reports.render", 2),
        ("pipelines.reports.render", "pipelines.core.months", 1),
        ("pipelines.delivery.mail", "pipelines.intake.take", 3),
        ("pipelines.lens_api.pull", "pipelines.intake.take", 1),
        ("pipelines.delivery.sms", "pipelines.delivery.mail", 1),
        ("pipelines.delivery.sms", "pipelines.jobs.monthly", 2),
        ("pipelines.jobs.monthly", "pipelines.cli", 2),
    }
    assert problems(package) == [
        ("pipelines.gadgets is in no stage: add 'gadgets' to STAGES in "
         "tests/test_architecture.py where it belongs in the flow, and to docs/architecture.md"),
        ("import cycle pipelines.core.months -> pipelines.reports.render -> "
         "pipelines.core.months (pipelines/core/months.py:2; pipelines/reports/render.py:1)"),
        ("pipelines/core/months.py:2 imports pipelines.reports.render: core (rank 0) may not "
         "import from reports (rank 6), a later stage"),
        ("pipelines/delivery/sms.py:2 imports pipelines.jobs.monthly: delivery (rank 7) may not "
         "import from jobs (rank 8), a later stage"),
        ("pipelines/jobs/monthly.py:2 imports pipelines.cli: jobs (rank 8) may not import from "
         "cli (rank 9), a later stage"),
        ("pipelines/delivery/mail.py:3 imports pipelines.intake.take: delivery may not import "
         "from intake"),
        ("pipelines/lens_api/pull.py:1 imports pipelines.intake.take: lens_api may not import "
         "from intake"),
    ]


def test_a_cycle_of_three_is_named_whole():
    imports = [Import("pipelines.intake.a", "pipelines.intake.b", 1, "a.py"),
               Import("pipelines.intake.b", "pipelines.intake.c", 2, "b.py"),
               Import("pipelines.intake.c", "pipelines.intake.a", 3, "c.py"),
               Import("pipelines.intake.c", "pipelines.core.x", 4, "c.py"),
               Import("pipelines.core.x", "pipelines.core.x", 5, "x.py")]
    assert import_cycles(imports) == [
        "import cycle pipelines.core.x -> pipelines.core.x (x.py:5)",
        ("import cycle pipelines.intake.a -> pipelines.intake.b -> pipelines.intake.c -> "
         "pipelines.intake.a (a.py:1; b.py:2; c.py:3)"),
    ]


def test_a_knot_of_cycles_names_one_cycle_and_every_module_in_it():
    imports = [Import(f"pipelines.jobs.{a}", f"pipelines.jobs.{b}", n, f"{a}.py")
               for n, (a, b) in enumerate(["ab", "ba", "bc", "cb"], start=1)]
    assert import_cycles(imports) == [
        ("import cycle pipelines.jobs.a -> pipelines.jobs.b -> pipelines.jobs.a (a.py:1; b.py:2), "
         "in a knot of pipelines.jobs.a, pipelines.jobs.b, pipelines.jobs.c"),
    ]
