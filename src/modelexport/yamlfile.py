"""YAML as people write it, read with the line of every value kept, so that a problem reads
``models.yaml:14: models[2].source.revision: ...``. Bounded: a regular file of at most
``BYTES_LIMIT`` bytes, whose aliases expand to at most ``VALUES_LIMIT`` values. Dates stay
strings (a schema sees what the user wrote); duplicate keys and NaN or infinite numbers are
found. No torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from modelexport import files
from modelexport.errors import UsageError
from modelexport.schemas import json_path

VALUES_LIMIT = 100_000  # values a file may stand for once its YAML aliases are expanded
BYTES_LIMIT = 1_000_000
Where = tuple[Any, ...]  # a value's place: ("models", 2, "source")
Found = tuple[int, str]  # a line, and what is wrong there


class Problem(NamedTuple):
    """A place in a file and what is wrong there (or worth a warning)."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class ProblemsFound(UsageError):
    """Everything wrong with a file, each on its line."""

    def __init__(self, problems: list[Problem], what: str = "file") -> None:
        lines = "\n  ".join(str(p) for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the {what}:\n  {lines}")
        self.problems = problems


class _Loader(yaml.SafeLoader):
    """Safe YAML that keeps dates as strings, so the schema sees what the user wrote."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Document:
    path: Path
    raw: bytes
    data: Any  # None for an empty file
    lines: dict[Where, int]
    duplicates: tuple[Found, ...]  # keys given twice in one mapping

    def line(self, where: Where) -> int:
        """The line of the value at ``where``, or of the nearest value above it."""
        while where not in self.lines and where:
            where = where[:-1]
        return self.lines.get(where, 1)

    def at(self, where: Where) -> Located:
        return Located(self, where)

    def non_finite(self) -> list[Found]:
        """NaN and infinity, wherever they are: a NaN threshold disables its gate."""
        return _non_finite(self, self.data, ())


@dataclass(frozen=True)
class Located:
    """A place in the document, to word problems about what lies below it."""

    document: Document
    at: Where

    def line(self, sub: Where = ()) -> int:
        return self.document.line((*self.at, *sub))

    def problem(self, sub: Where, message: str) -> Found:
        return self.line(sub), f"{json_path((*self.at, *sub))}: {message}"


def read(path: Path) -> Document:
    """``path`` parsed; ProblemsFound for a file that is no YAML, UsageError for one that
    cannot be read or is not a regular file of a size a YAML file of ours can have."""
    raw = files.read_bytes(path, BYTES_LIMIT)
    text = raw.decode("utf-8", errors="replace")
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None and _expanded(node, {}) > VALUES_LIMIT:
                raise ProblemsFound([Problem(path, 1, "its aliases expand to more than "
                                                      f"{VALUES_LIMIT:,} values: refused unread")])
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProblemsFound([Problem(path, line, f"not valid YAML: {problem}")]) from exc
    except RecursionError as exc:
        raise ProblemsFound([Problem(path, 1, "nested too deeply")]) from exc
    lines: dict[Where, int] = {}
    duplicates: list[Found] = []
    if node is not None:
        _lines(node, (), lines, duplicates)
    return Document(path, raw, data, lines, tuple(duplicates))


def _key(node: yaml.Node) -> Any:
    """A mapping key as the document holds it: ``1:`` is 1, ``~:`` None, ``yes:`` True."""
    if not isinstance(node, yaml.ScalarNode) or node.style:  # quoted: the text itself
        return node.value
    return _Loader(node.value).get_single_data()


def _lines(node: yaml.Node, path: Where, out: dict[Where, int],
           problems: list[Found]) -> None:
    """Record the line of every value (its key's line, for mapping values)."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = key.value
            if name in seen:
                line = key.start_mark.line + 1
                problems.append((line, f"{json_path(path)}: duplicate key {name!r}"))
            seen.add(name)
            where = (*path, _key(key))
            out[where] = key.start_mark.line + 1
            _lines(value, where, out, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out, problems)


def _expanded(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values ``node`` stands for once its aliases are expanded, counted without
    expanding them (an alias is the same node object, counted once per use)."""
    if id(node) in sizes:
        return sizes[id(node)]
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded(item, sizes) for item in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded(k, sizes) + _expanded(v, sizes) for k, v in node.value)
    sizes[id(node)] = size
    return size


def _non_finite(document: Document, value: Any, where: Where) -> list[Found]:
    if isinstance(value, float) and not math.isfinite(value):
        return [(document.line(where), f"{json_path(where)}: {value} is not a finite number")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(document, v, (*where, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(document, v, (*where, i))]
    return []
