"""The documentation's shape (issue 27): a short README that is a front door, one page per
reader, the layout described once (docs/architecture.md) and kept true to the tree, decisions
with anchors that stay, and no relative link that leads nowhere.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
ARCHITECTURE = DOCS / "architecture.md"
DECISIONS = DOCS / "decisions.md"
PACKAGE = ROOT / "pipelines"

README_MOST_LINES = 150
# One link per reader, from the README.
READERS = ("docs/operating.md", "docs/deploying.md", "docs/architecture.md",
           "docs/decisions.md", "docs/reliability.md", "benchmarks/results.md")
PAGES = ("operating.md", "deploying.md", "decisions.md", "architecture.md")

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"\s*>\s*</a>")


def _prose(text: str) -> str:
    """The text without fenced code blocks (a `# comment` there is no heading)."""
    return _FENCE.sub("", text)


def _slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a link may name in a markdown file: its headings' slugs (repeats get -1,
    -2, as GitHub numbers them) and its explicit <a id="…"></a>."""
    text = _prose(path.read_text(encoding="utf-8"))
    found: set[str] = set(_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for _, heading in _HEADING.findall(text):
        slug = _slug(heading)
        if slug in seen:
            seen[slug] += 1
            found.add(f"{slug}-{seen[slug]}")
        else:
            seen[slug] = 0
            found.add(slug)
    return found


def relative_links(path: Path) -> list[str]:
    text = _INLINE_CODE.sub("", _prose(path.read_text(encoding="utf-8")))
    return [target for target in _LINK.findall(text)
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)]


def modules() -> list[str]:
    """Every module under pipelines/, by its path relative to pipelines/ (no __init__.py)."""
    return sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                  if p.name != "__init__.py"
                  and not any(part.startswith(".") or part == "__pycache__"
                              for part in p.relative_to(PACKAGE).parts))


def module_table() -> list[str]:
    """The modules docs/architecture.md names in its table under "## The modules"."""
    text = _prose(ARCHITECTURE.read_text(encoding="utf-8"))
    section = text.split("\n## The modules\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\|\s*`([^`]+\.py)`\s*\|", section, re.MULTILINE)


def test_the_readme_is_a_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MOST_LINES, (
        f"README.md has {len(lines)} lines: it is the front door (at most {README_MOST_LINES}); "
        f"move the detail to the reader's page in docs/")
    text = README.read_text(encoding="utf-8")
    for command in ("make demo", "make test"):
        assert command in text


def test_the_readme_links_each_readers_page():
    links = {target.split("#")[0] for target in relative_links(README)}
    assert [page for page in READERS if page not in links] == []


@pytest.mark.parametrize("page", PAGES)
def test_each_readers_page_exists(page):
    assert (DOCS / page).is_file(), f"docs/{page} is missing"


def test_every_module_is_named_in_architecture():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    missing = [m for m in modules() if f"`{m}`" not in text]
    assert missing == [], (f"docs/architecture.md does not name {', '.join(missing)}: add each "
                           f"to its table \"The modules\", in its stage")


def test_every_module_architecture_names_exists():
    named = module_table()
    assert len(named) > 20, "docs/architecture.md lost its table \"The modules\""
    gone = [m for m in named if not (PACKAGE / m).is_file()]
    assert gone == [], (f"docs/architecture.md names modules that do not exist: "
                        f"{', '.join(gone)}")


def test_every_decision_has_an_anchor():
    lines = DECISIONS.read_text(encoding="utf-8").splitlines()
    ids, missing = [], []
    for number, line in enumerate(lines):
        if not line.startswith("### "):
            continue
        before = [previous for previous in lines[:number] if previous.strip()]
        found = _ANCHOR.fullmatch(before[-1].strip()) if before else None
        if found:
            ids.append(found[1])
        else:
            missing.append(line)
    assert len(ids) >= 30, "docs/decisions.md lost its decisions"
    assert missing == [], f"decisions without <a id=\"…\"></a> on the line before: {missing}"
    assert sorted(i for i in set(ids) if ids.count(i) > 1) == [], "an anchor is used twice"
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids), ids


@pytest.mark.parametrize("page", [README, *sorted(DOCS.glob("*.md"))],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_lead_somewhere(page):
    broken = []
    for target in relative_links(page):
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT)}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no anchor #{anchor} in {linked.relative_to(ROOT)}")
    assert broken == [], f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_slugs_are_made_as_github_makes_them(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Look at the state: `status`\n\n```sh\n# a comment\n```\n\n"
                    "## Deploy to an existing Airflow 3.3\n\n## Versions\n\n## Versions\n\n"
                    '<a id="kept-anchor"></a>\n### Whatever the words say\n', encoding="utf-8")
    assert anchors(page) == {"look-at-the-state-status", "deploy-to-an-existing-airflow-33",
                             "versions", "versions-1", "kept-anchor",
                             "whatever-the-words-say"}
