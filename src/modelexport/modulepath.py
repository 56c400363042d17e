"""Module paths as the tags write them (``encoder.layer.0.attention``; '' is the root): their
ancestors, their common ancestor, their depth, and the folding of repeated layers into one
name (``encoder.layer.{0..11}.output``). Pure; every other module asks this one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_INDEX = re.compile(r"^\d+$")


def parts(path: str) -> list[str]:
    """The path's names from the root down; as a sort key it puts every module right after
    its parent, the root first."""
    return path.split(".") if path else []


def depth(path: str) -> int:
    """0 for the root, 1 for its children."""
    return len(parts(path))


def leaf(path: str) -> str:
    """The module's own name within its parent ('' for the root)."""
    return path.rpartition(".")[2]


def ancestors(path: str) -> list[str]:
    """The module and every module above it, the root last."""
    split = parts(path)
    return [".".join(split[:i]) for i in range(len(split), -1, -1)]


def lineage(path: str) -> list[str]:
    """The root, then every module down to ``path`` itself: ``ancestors`` outermost first."""
    return ancestors(path)[::-1]


def common(paths: Iterable[str]) -> str:
    """The lowest common ancestor of module paths (the root for none)."""
    split = [parts(path) for path in paths]
    shared: list[str] = []
    for level in zip(*split, strict=False):  # stops at the shortest path
        if any(part != level[0] for part in level):
            break
        shared.append(level[0])
    return ".".join(shared)


def natural_order(path: str) -> tuple[tuple[int, int, str], ...]:
    """A sort key in which ``layer.2`` comes before ``layer.10``, and as ``parts`` every
    module right after its parent, the root first."""
    return tuple((0, int(p), "") if _INDEX.match(p) else (1, 0, p) for p in parts(path))


def pattern(path: str) -> str:
    """The path with its numeric segments (layer indices) as '#': the key repeated layers
    share."""
    return ".".join("#" if _INDEX.match(p) else p for p in path.split("."))


def folded_name(paths: list[str]) -> str:
    """One name for paths that differ only in numeric segments: encoder.layer.{0..11}.output."""
    split = [path.split(".") for path in paths]
    return ".".join(_indices({each[i] for each in split}) if _INDEX.match(part) else part
                    for i, part in enumerate(split[0])) or "(root)"


def _indices(values: set[str]) -> str:
    numbers = sorted(int(v) for v in values)
    if len(numbers) == 1:
        return str(numbers[0])
    if len(numbers) > 2 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{{{numbers[0]}..{numbers[-1]}}}"
    return "{" + ",".join(map(str, numbers)) + "}"
