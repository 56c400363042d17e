"""The manifest: which models a gate exports, how, and with what thresholds.

YAML is read with line numbers kept, so every problem reads ``models.yaml:14:
models[2].source.revision: ...``. Structure is checked by ``schemas/manifest.schema.json``,
meaning (unique names, one kind of source, dates) here. No torch is imported.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import importlib.util
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from modelexport import schemas
from modelexport.errors import UsageError
from modelexport.htp.options import Exporter
from modelexport.inputs import Axes, InputSpec
from modelexport.profile import Settings
from modelexport.sources import Source

VALUES_LIMIT = 100_000  # values a manifest may stand for once its YAML aliases are expanded
BYTES_LIMIT = 1_000_000
SOURCE_KINDS = {"id": "hub", "path": "local", "config": "config", "factory": "factory"}


@dataclass(frozen=True)
class Thresholds:
    time: float = 0.10  # allowed slowdown of the median (+10 %)
    alpha: float = 0.01  # significance a time regression needs
    floor: float = 0.05  # seconds a time regression must exceed
    size: float = 0.05  # allowed growth of the ONNX file
    nodes: float = 0.05  # allowed growth of the node count


@dataclass(frozen=True)
class InferencePolicy:
    """Profile the export in onnxruntime; a latency regression needs the same three things
    as an export-time one (slower than the threshold, significant, above the floor)."""

    # 50, not profile's 20: the verdict compares the means of 10 blocks of runs
    # (stats.block_means), 5 runs each; measured with bench/gate_quality.py --inference.
    runs: int = 50
    warmup: int = 3
    threads: int = 1  # steadier on a shared runner than ORT's default of every core
    optimization: str = "all"
    threshold: float = 0.10
    floor_ms: float = 0.1  # sub-millisecond models need a floor in milliseconds

    @property
    def settings(self) -> Settings:
        return Settings(self.runs, self.warmup, self.threads, self.optimization)


@dataclass(frozen=True)
class StructurePolicy:
    """Whether a change of the exported graph fails the model ("fail") or is shown
    ("report"). Signature changes break every consumer of the file; module and op changes
    are often the point of a pull request."""

    signature: str = "fail"
    graph: str = "report"


@dataclass(frozen=True)
class AllowRegression:
    reason: str
    until: datetime.date


@dataclass(frozen=True)
class ModelSpec:
    name: str
    source: Source
    line: int
    exporter: Exporter = "auto"
    opset: int | None = None
    inputs: tuple[InputSpec, ...] = ()
    dynamic: Axes | None = None  # None: by input name; {}: every shape fixed
    repeats: int = 5
    timeout: float = 900.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    structure: StructurePolicy = field(default_factory=StructurePolicy)
    tags: tuple[str, ...] = ()
    allow_regression: AllowRegression | None = None
    inference: InferencePolicy | None = None


@dataclass(frozen=True)
class Manifest:
    path: Path
    models: tuple[ModelSpec, ...]
    digest: str  # sha256 of the file: results say which manifest they came from
    warnings: tuple[Problem, ...] = ()

    def overridden(self, repeats: int | None = None, time_threshold: float | None = None
                   ) -> Manifest:
        """This manifest with ``repeats`` / the time threshold set for every model."""
        models = tuple(
            replace(m, repeats=repeats or m.repeats,
                    thresholds=m.thresholds if time_threshold is None
                    else replace(m.thresholds, time=time_threshold))
            for m in self.models
        )
        return replace(self, models=models)

    def select(self, tags: list[str]) -> list[ModelSpec]:
        """Models carrying any of ``tags`` (all models when none are given)."""
        if not tags:
            return list(self.models)
        return [m for m in self.models if set(m.tags) & set(tags)]


class Problem(NamedTuple):
    """A place in a manifest and what is wrong there (or worth a warning)."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class ManifestError(UsageError):
    def __init__(self, problems: list[Problem]) -> None:
        lines = "\n  ".join(str(p) for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the manifest:\n  {lines}")
        self.problems = problems


class _Loader(yaml.SafeLoader):
    """Safe YAML that keeps dates as strings, so the schema sees what the user wrote."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int],
           problems: list[tuple[int, str]]) -> None:
    """Record the line of every value (its key's line, for mapping values)."""
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = key.value
            if name in seen:
                line = key.start_mark.line + 1
                problems.append((line, f"{schemas.json_path(path)}: duplicate key {name!r}"))
            seen.add(name)
            out[(*path, name)] = key.start_mark.line + 1
            _lines(value, (*path, name), out, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _lines(item, (*path, index), out, problems)


def _unknown_key(key: object, allowed: list[str]) -> str:
    # YAML keys need not be strings (1:, ~:, yes:): compare what the user wrote.
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(allowed)}"
    return f"unknown key{hint}"


def _line_of(lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int:
    while path not in lines and path:
        path = path[:-1]
    return lines.get(path, 1)


def load(path: Path) -> Manifest:
    """Read and check a manifest. Raises ManifestError listing every problem found."""
    raw, node, document = _parse(path)
    lines: dict[tuple[Any, ...], int] = {}
    found: list[tuple[int, str]] = []
    if node is not None:
        _lines(node, (), lines, found)
    found += _schema_problems(document, lines) + _non_finite(document, (), lines)
    if found:
        raise ManifestError([Problem(path, *found_at) for found_at in sorted(found)])

    problems: list[tuple[int, str]] = []
    warnings: list[tuple[int, str]] = []
    models = []
    defaults = document.get("defaults", {})
    first_line: dict[str, int] = {}
    for index, entry in enumerate(document["models"]):
        here = Located(lines, ("models", index))
        name = entry["name"]
        problems += _not_quite({**defaults, **entry}, here)
        if name in first_line:
            problems.append(here.problem(("name",), f"duplicate name {name!r} "
                                                    f"(first on line {first_line[name]})"))
        first_line.setdefault(name, here.line(("name",)))
        spec = _model_spec({**defaults, **entry}, defaults, here, path.parent.absolute(),
                           problems, warnings)
        if spec is not None:
            models.append(spec)
    if problems:
        raise ManifestError([Problem(path, *found_at) for found_at in sorted(problems)])
    return Manifest(path, tuple(models), hashlib.sha256(raw).hexdigest(),
                    tuple(Problem(path, *found_at) for found_at in sorted(warnings)))


def _parse(path: Path) -> tuple[bytes, yaml.Node | None, Any]:
    """The file's bytes, its YAML node tree (for line numbers) and the plain document."""
    try:
        # A FIFO would block the read, a device never end it: regular files, of a size a
        # manifest can have.
        if not path.is_file():
            raise UsageError(f"{path}: not a regular file" if path.exists()
                             else f"{path}: no such file")
        if path.stat().st_size > BYTES_LIMIT:
            raise UsageError(f"{path}: {path.stat().st_size:,} bytes; a manifest has at most "
                             f"{BYTES_LIMIT:,}")
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    text = raw.decode("utf-8", errors="replace")
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None and _expanded(node, {}) > VALUES_LIMIT:
                raise ManifestError([Problem(path, 1, "its aliases expand to more than "
                                             f"{VALUES_LIMIT:,} values: refused unread")])
            document = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError([Problem(path, line, f"not valid YAML: {problem}")]) from exc
    except RecursionError as exc:
        raise ManifestError([Problem(path, 1, "nested too deeply to be a manifest")]) from exc
    return raw, node, document


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


def _non_finite(value: Any, where: tuple[Any, ...], lines: dict[tuple[Any, ...], int]
                ) -> list[tuple[int, str]]:
    """NaN and infinity, wherever they are: a NaN threshold or timeout disables its gate."""
    if isinstance(value, float) and not math.isfinite(value):
        return [(_line_of(lines, where), f"{schemas.json_path(where)}: {value} is not a "
                                         "finite number")]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _non_finite(v, (*where, k), lines)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _non_finite(v, (*where, i), lines)]
    return []


def _schema_problems(document: Any, lines: dict[tuple[Any, ...], int]) -> list[tuple[int, str]]:
    found = []
    for error in map(schemas.narrowest,
                     schemas.validator_for(schemas.MANIFEST).iter_errors(document)):
        where = tuple(error.absolute_path)
        message = schemas.message(error)
        if error.validator == "enum" and "propertyNames" in error.schema_path:
            where = (*where, error.instance)
            message = _unknown_key(error.instance, error.validator_value)
        found.append((_line_of(lines, where), f"{schemas.json_path(where)}: {message}"))
    return found


@dataclass(frozen=True)
class Located:
    """A place in the document, to word problems about what lies below it."""

    lines: dict[tuple[Any, ...], int]
    at: tuple[Any, ...]

    def line(self, sub: tuple[Any, ...] = ()) -> int:
        return _line_of(self.lines, (*self.at, *sub))

    def problem(self, sub: tuple[Any, ...], message: str) -> tuple[int, str]:
        return self.line(sub), f"{schemas.json_path((*self.at, *sub))}: {message}"


def _model_spec(entry: dict[str, Any], defaults: dict[str, Any], here: Located, base: Path,
                problems: list[tuple[int, str]], warnings: list[tuple[int, str]],
                ) -> ModelSpec | None:
    source = _source(entry, here, base, problems, warnings)
    if source is None:
        return None
    allow = None
    if "allow_regression" in entry:
        allow = _allow_regression(entry["allow_regression"], here, problems, warnings)
        if allow is None:
            return None
    thresholds = Thresholds(**{**defaults.get("thresholds", {}), **entry.get("thresholds", {})})
    structure = StructurePolicy(**{**defaults.get("structure", {}), **entry.get("structure", {})})
    inference = _inference(defaults.get("inference"), entry.get("inference"))
    options = _present(entry, "exporter", "opset", "repeats", "timeout")
    if "timeout" in options:
        options["timeout"] = float(options["timeout"])
    if "dynamic" in entry:
        options["dynamic"] = {name: {int(axis): dim for axis, dim in axes.items()}
                              for name, axes in (entry["dynamic"] or {}).items()}
    return ModelSpec(
        name=entry["name"], source=source, line=here.line(), thresholds=thresholds,
        structure=structure, inference=inference,
        inputs=tuple(InputSpec.from_json(i) for i in entry.get("inputs", ())),
        tags=tuple(entry.get("tags", ())), allow_regression=allow, **options,
    )


def _inference(default: dict[str, Any] | bool | None, own: dict[str, Any] | bool | None
               ) -> InferencePolicy | None:
    """The model's own ``inference`` over the defaults'; ``false`` opts out."""
    if own is False or (own is None and default in (None, False)):
        return None  # ({} asks for the defaults)
    return InferencePolicy(**{**(default or {}), **(own or {})})


def _source(entry: dict[str, Any], here: Located, base: Path, problems: list[tuple[int, str]],
            warnings: list[tuple[int, str]]) -> Source | None:
    """The entry's source; paths in it resolve from the manifest's folder (``base``)."""
    doc = entry["source"]
    kinds = [key for key in SOURCE_KINDS if key in doc]
    if len(kinds) != 1:
        problems.append(here.problem(("source",), "needs exactly one of id (hub), path (local), "
                                     "config (random weights), factory (your code); has "
                                     f"{', '.join(kinds) or 'none'}"))
        return None
    kind = SOURCE_KINDS[kinds[0]]
    if kind == "hub" and "revision" not in doc:
        warnings.append(here.problem(("source",), "no revision: pin a commit sha for "
                                                  "reproducible exports"))
    if "seed" in doc and kind not in ("config", "factory"):
        problems.append(here.problem(("source", "seed"), "a seed goes with config or factory "
                                                         "(random weights)"))
    found = dict(_present(doc, "id", "revision", "seed", "factory", "kwargs"))
    if kind == "local":
        found["path"] = str(base / doc["path"])
        if not Path(found["path"]).is_dir():
            problems.append(here.problem(("source", "path"), f"no such directory: {doc['path']} "
                                                             f"(from {base})"))
    if kind == "factory":
        found["python_path"] = tuple(str(base / p) for p in doc.get("python_path", ["."]))
        missing = _missing_module(doc["factory"].partition(":")[0], found["python_path"])
        if missing:
            problems.append(here.problem(("source", "factory"), missing))
    config = dict(doc.get("config", {}))
    # Only what the manifest sets is passed on: the defaults live in Source and ModelSpec.
    return Source(kind, model_type=config.pop("model_type", None), config=config, **found,
                  **_present(entry, "model_class", "trust_remote_code"))


def _missing_module(name: str, folders: tuple[str, ...]) -> str | None:
    """Why ``name`` cannot be imported from ``folders`` or the installed packages, or None.
    Found by its files, so no code of the user runs while a manifest is checked."""
    parts = name.split(".")
    for folder in folders:
        stem = Path(folder, *parts)
        if stem.with_suffix(".py").is_file() or (stem / "__init__.py").is_file():
            return None
    if len(parts) == 1 and importlib.util.find_spec(name) is not None:
        return None
    if len(parts) > 1 and importlib.util.find_spec(parts[0]) is not None:
        return None  # an installed package: its submodules are found when it is imported
    return f"no module {name!r} in {', '.join(folders)} or the installed packages"


NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def _not_quite(entry: dict[str, Any], here: Located) -> list[tuple[int, str]]:
    """What the schema lets through: a name ending in a newline (its pattern's $ matches
    before one), and whole floats (1.0) where an integer belongs."""
    found = []
    if not NAME.fullmatch(entry["name"]):
        found.append(here.problem(("name",), f"{entry['name']!r}: letters, digits, '.', '_' "
                                             "and '-', at most 100"))
    for key in ("repeats", "opset"):
        if isinstance(entry.get(key), float):
            found.append(here.problem((key,), f"{entry[key]!r} is not an integer"))
    if isinstance(entry["source"].get("seed"), float):
        found.append(here.problem(("source", "seed"), "not an integer"))
    return found


def _present(document: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: document[key] for key in keys if key in document}


def _allow_regression(allow: dict[str, Any], here: Located, problems: list[tuple[int, str]],
                      warnings: list[tuple[int, str]]) -> AllowRegression | None:
    try:
        until = datetime.date.fromisoformat(allow["until"])
    except ValueError:
        problems.append(here.problem(("allow_regression", "until"),
                                     f"{allow['until']!r} is not a date (YYYY-MM-DD)"))
        return None
    if until < datetime.date.today():
        warnings.append(here.problem(("allow_regression", "until"),
                                     f"expired on {until}: no longer accepted"))
    return AllowRegression(allow["reason"], until)
