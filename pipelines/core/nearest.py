"""The one name a misspelt one was most likely meant to be: a partner who drops a file into
inbox/acme-gmbh/ for the customer `acme-gmbh1` is told "did you mean acme-gmbh1?" instead of
only "there is no such customer", and moves the file instead of guessing.

Edit distance (Levenshtein: one insertion, deletion or substitution each), case ignored. Only
names at most MAX_EDITS away are offered, and only when one of them is the closest: a tie
offers none, since a wrong guess would put one customer's inventory into another's folder.
"""
from __future__ import annotations

from collections.abc import Iterable

MAX_EDITS = 2  # further away, a name is another word, not a slip of the hand


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the fewest single-character edits that turn `a` into `b`."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def nearest(name: str, names: Iterable[str]) -> str | None:
    """The one of `names` closest to `name` (case ignored) within MAX_EDITS, other than
    `name` itself; None when none is that close or two are equally close."""
    distances: dict[int, list[str]] = {}
    for candidate in names:
        if candidate == name or abs(len(candidate) - len(name)) > MAX_EDITS:
            continue
        distance = edit_distance(name.casefold(), candidate.casefold())
        if distance <= MAX_EDITS:
            distances.setdefault(distance, []).append(candidate)
    if not distances:
        return None
    closest = distances[min(distances)]
    return closest[0] if len(closest) == 1 else None
