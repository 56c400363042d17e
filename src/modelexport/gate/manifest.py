"""The manifest: which models a gate exports, how, and with what thresholds.

Read by ``yamlfile`` (every problem on its line: ``models.yaml:14:
models[2].source.revision: ...``); its structure is checked by
``schemas/manifest.schema.json``, its meaning (unique names, one kind of source, dates)
here. No torch is imported.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import importlib.util
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from modelexport import schemas, yamlfile
from modelexport.gate.metric import Rule
from modelexport.htp.options import Exporter
from modelexport.inference.records import Settings
from modelexport.inputs import Axes, InputSpec
from modelexport.sources import Source, SourceKind, class_for
from modelexport.yamlfile import Found, Located, Problem, ProblemsFound

SOURCE_KINDS: dict[str, SourceKind] = {"id": "hub", "path": "local", "config": "config",
                                       "factory": "factory"}


@dataclass(frozen=True)
class Thresholds:
    time: float = 0.10  # allowed slowdown of the median (+10 %)
    alpha: float = 0.01  # significance a time regression needs
    floor: float = 0.05  # seconds a time regression must exceed
    size: float = 0.05  # allowed growth of the ONNX file
    nodes: float = 0.05  # allowed growth of the node count
    memory: float = 0.10  # allowed growth of the export's peak memory
    memory_floor_mb: float = 20.0  # megabytes a memory growth must exceed

    @property
    def rule(self) -> Rule:
        """The rule export time is judged by."""
        return Rule(self.time, self.alpha, self.floor)

    @property
    def memory_rule(self) -> Rule:
        """The rule the export's peak memory is judged by."""
        return Rule(self.memory, self.alpha, self.memory_floor_mb)


@dataclass(frozen=True)
class InferencePolicy:
    """Profile the export in onnxruntime; a latency regression needs the same three things
    as an export-time one (slower than the threshold, significant, above the floor)."""

    # 50, not profile's 20: the verdict compares the means of 10 blocks of runs
    # (stats.block_means), 5 runs each; docs/profile.md has the measurement.
    runs: int = 50
    warmup: int = 3
    threads: int = 1  # steadier on a shared runner than ORT's default of every core
    optimization: str = "all"
    threshold: float = 0.10
    floor_ms: float = 0.1  # sub-millisecond models need a floor in milliseconds
    memory: bool = False  # gate the arena's peak in a run too
    memory_threshold: float = 0.10
    memory_floor_mb: float = 1.0
    prompt_tokens: int = Settings.prompt_tokens  # of a decoder with its KV cache
    new_tokens: int = Settings.new_tokens

    @property
    def settings(self) -> Settings:
        return Settings(self.runs, self.warmup, self.threads, self.optimization,
                        self.prompt_tokens, self.new_tokens)

    def rule(self, alpha: float) -> Rule:
        """The rule latency is judged by; its significance is the model's ``alpha``."""
        return Rule(self.threshold, alpha, self.floor_ms)

    def memory_rule(self, alpha: float) -> Rule:
        """The rule the arena's peak is judged by, where ``memory`` asks for it."""
        return Rule(self.memory_threshold, alpha, self.memory_floor_mb)


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
    tolerance: float = 1e-4  # of the warm-up export's parity check, as export's own
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


class ManifestError(ProblemsFound):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems, "manifest")


def _unknown_key(key: object, allowed: list[str]) -> str:
    # YAML keys need not be strings (1:, ~:, yes:): compare what the user wrote.
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(allowed)}"
    return f"unknown key{hint}"


def load(path: Path) -> Manifest:
    """Read and check a manifest. Raises ManifestError listing every problem found."""
    try:
        document = yamlfile.read(path)
    except ProblemsFound as exc:
        raise ManifestError(exc.problems) from None
    found = [*document.duplicates, *_schema_problems(document), *document.non_finite()]
    if found:
        raise ManifestError([Problem(path, *found_at) for found_at in sorted(found)])

    problems: list[Found] = []
    warnings: list[Found] = []
    models = []
    defaults = document.data.get("defaults", {})
    first_line: dict[str, int] = {}
    for index, entry in enumerate(document.data["models"]):
        here = document.at(("models", index))
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
    return Manifest(path, tuple(models), hashlib.sha256(document.raw).hexdigest(),
                    tuple(Problem(path, *found_at) for found_at in sorted(warnings)))


def _schema_problems(document: yamlfile.Document) -> list[Found]:
    found = []
    for error in map(schemas.narrowest,
                     schemas.validator_for(schemas.MANIFEST).iter_errors(document.data)):
        where = tuple(error.absolute_path)
        message = schemas.message(error)
        if error.validator == "enum" and "propertyNames" in error.schema_path:
            where = (*where, error.instance)
            message = _unknown_key(error.instance, error.validator_value)
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            for key in (k for k in error.instance if k not in allowed):
                at = (*where, key)
                found.append((document.line(at), f"{schemas.json_path(at)}: "
                                                  f"{_unknown_key(key, allowed)}"))
            continue
        found.append((document.line(where), f"{schemas.json_path(where)}: {message}"))
    return found


def _model_spec(entry: dict[str, Any], defaults: dict[str, Any], here: Located, base: Path,
                problems: list[Found], warnings: list[Found],
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
    options = _present(entry, "exporter", "opset", "repeats", "timeout", "tolerance")
    for key in ("timeout", "tolerance"):
        if key in options:
            options[key] = float(options[key])
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
    return InferencePolicy(**{**(default if isinstance(default, dict) else {}),
                              **(own if isinstance(own, dict) else {})})


def _source(entry: dict[str, Any], here: Located, base: Path, problems: list[Found],
            warnings: list[Found]) -> Source | None:
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
        folder = base if "package" not in doc else _package_folder(doc["package"])
        if folder is None:
            problems.append(here.problem(("source", "package"), f"no installed package "
                                         f"{doc['package']!r} where the manifest is read"))
            return None
        found["path"] = str(folder / doc["path"])
        if not Path(found["path"]).is_dir():
            problems.append(here.problem(("source", "path"), f"no such directory: {doc['path']} "
                                                             f"(from {folder})"))
    if kind == "factory":
        found["python_path"] = tuple(str(base / p) for p in doc.get("python_path", ["."]))
        missing = _missing_module(doc["factory"].partition(":")[0], found["python_path"])
        if missing:
            problems.append(here.problem(("source", "factory"), missing))
        root = _repository(base)
        for index, folder in enumerate(found["python_path"]):
            if not Path(folder).resolve().is_relative_to(root):
                warnings.append(here.problem(
                    ("source", "python_path", index), f"{folder} lies outside the repository "
                    f"({root}): code from there is imported and run by the gate"))
    config = dict(doc.get("config", {}))
    # Only what the manifest sets is passed on: the defaults live in Source and ModelSpec.
    task = entry.get("task")
    return Source(kind, model_type=config.pop("model_type", None), config=config, **found,
                  model_class=entry.get("model_class", class_for(task)), task=task,
                  **_present(entry, "trust_remote_code"))


def _package_folder(name: str) -> Path | None:
    """The folder of the installed top-level package ``name``, found by its files (none of
    its code runs), or None."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    return Path(spec.origin).parent if spec.origin else None


def _repository(folder: Path) -> Path:
    """The checkout ``folder`` lies in (the nearest folder holding ``.git``), else itself."""
    resolved = folder.resolve()
    return next((above for above in (resolved, *resolved.parents)
                 if (above / ".git").exists()), resolved)


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


def _not_quite(entry: dict[str, Any], here: Located) -> list[Found]:
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


def _allow_regression(allow: dict[str, Any], here: Located, problems: list[Found],
                      warnings: list[Found]) -> AllowRegression | None:
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
