"""Results of a gate run, and the baseline they are compared with: one versioned JSON
document (``schemas/results.schema.json``) wrapped in a class. Writes are atomic. No torch."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from modelexport import jsonfile, schemas
from modelexport.environment import Environment
from modelexport.errors import UsageError
from modelexport.gate.records import Measured, ModelResult, model_result_from_json
from modelexport.github.actions import PullRequest

if TYPE_CHECKING:
    from modelexport.gate.manifest import Manifest

Kind = Literal["results", "baseline"]


@dataclass(frozen=True)
class Shard:
    """The part of the selected models a ``check --shard I/N`` run covered."""

    index: int
    count: int
    selected: tuple[str, ...]  # every model of every shard

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "count": self.count, "selected": list(self.selected)}


@dataclass(frozen=True)
class Base:
    """A pull request's base, measured beside the head in the same run: its records, paired
    with the head's by name (sample ``i`` of each measured one after the other)."""

    label: str  # a short commit, or the folder the base was given as
    manifest_sha256: str
    models: dict[str, ModelResult] = field(default_factory=dict)
    unmatched: tuple[str, ...] = ()  # models of the base's manifest the head's lacks

    @classmethod
    def new(cls, manifest: Manifest, label: str, unmatched: tuple[str, ...] = ()) -> Base:
        return cls(label, manifest.digest, {}, unmatched)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Base:
        return cls(data["label"], data["manifest_sha256"],
                   {name: model_result_from_json(r) for name, r in data["models"].items()},
                   tuple(data["unmatched"]))

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "manifest_sha256": self.manifest_sha256,
                "models": {name: record.to_json() for name, record in self.models.items()},
                "unmatched": list(self.unmatched)}


@dataclass(frozen=True)
class Results:
    SCHEMA_VERSION: ClassVar[int] = 7
    SCHEMA_ID: ClassVar[str] = "https://modelexport.dev/schemas/results/7.json"
    # Older versions still read: version 1 lacks the structure summaries, version 2 the
    # inference profiles, version 3 the base, version 4 a failed parity check's gaps,
    # version 5 a decoder's first-token latency, version 6 the peak memory of the load
    # and of each export.
    READS: ClassVar[tuple[str, ...]] = ("https://modelexport.dev/schemas/results/1.json",
                                        "https://modelexport.dev/schemas/results/2.json",
                                        "https://modelexport.dev/schemas/results/3.json",
                                        "https://modelexport.dev/schemas/results/4.json",
                                        "https://modelexport.dev/schemas/results/5.json",
                                        "https://modelexport.dev/schemas/results/6.json",
                                        SCHEMA_ID)

    kind: Kind
    created: str
    environment: Environment
    manifest_path: str
    manifest_sha256: str
    models: dict[str, ModelResult] = field(default_factory=dict)
    shard: Shard | None = None
    pull_request: PullRequest | None = None
    base: Base | None = None  # measured beside these models (check --against)

    @classmethod
    def new(cls, manifest: Manifest, kind: Kind = "results") -> Results:
        """An empty document for a run starting now, on this machine."""
        created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        return cls(kind, created, Environment.here(), str(manifest.path), manifest.digest)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        """From a document that passed the schema (see ``load``)."""
        shard, pull, base = data.get("shard"), data.get("pull_request"), data.get("base")
        return cls(
            kind=data["kind"], created=data["created"],
            environment=Environment.from_json(data["environment"]),
            manifest_path=data["manifest"]["path"], manifest_sha256=data["manifest"]["sha256"],
            models={name: model_result_from_json(r) for name, r in data["models"].items()},
            shard=Shard(shard["index"], shard["count"], tuple(shard["selected"]))
            if shard else None,
            pull_request=PullRequest(**pull) if pull else None,
            base=Base.from_json(base) if base else None,
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "$schema": self.SCHEMA_ID, "schema_version": self.SCHEMA_VERSION,
            "kind": self.kind, "created": self.created,
            "environment": self.environment.to_json(),
            "manifest": {"path": self.manifest_path, "sha256": self.manifest_sha256},
            "models": {name: record.to_json() for name, record in self.models.items()},
        }
        if self.shard:
            document["shard"] = self.shard.to_json()
        if self.pull_request:
            document["pull_request"] = {"repository": self.pull_request.repository,
                                        "number": self.pull_request.number}
        if self.base:
            document["base"] = self.base.to_json()
        return document

    @property
    def measured(self) -> dict[str, Measured]:
        """The models that exported, by name (not those that failed)."""
        return {name: r for name, r in self.models.items() if isinstance(r, Measured)}

    def with_model(self, name: str, record: ModelResult, base: ModelResult | None = None
                   ) -> Results:
        """With ``record``, and ``base``'s record beside it where there is one."""
        paired = self.base
        if paired is not None and base is not None:
            paired = replace(paired, models={**paired.models, name: base})
        return replace(self, models={**self.models, name: record}, base=paired)

    def as_baseline(self, previous: Results | None) -> Results:
        """This run as the new baseline; a model that failed keeps its previous entry."""
        models = dict(previous.models) if previous else {}
        models.update({n: r for n, r in self.models.items() if r.status == "ok"})
        # The pull request a run was for, and its base, are no property of the baseline
        # made from it.
        return replace(self, kind="baseline", models=dict(sorted(models.items())),
                       pull_request=None, base=None)


def load(path: Path, kind: Kind | None = None) -> Results:
    """Read and validate a results or baseline file; a foreign or corrupt one is an error,
    and so is one that is no regular file or too large (``jsonfile.read``)."""
    try:
        document = jsonfile.read(path)
    except ValueError as exc:  # JSONDecodeError is one
        raise UsageError(f"{path}: corrupt: not JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("$schema") not in Results.READS:
        raise UsageError(f"{path}: not a modelexport results or baseline file")
    problems = schemas.schema_errors(document, schemas.RESULTS)
    if problems:
        raise UsageError(f"{path}: corrupt: {problems[0]}")
    if kind is not None and document["kind"] != kind:
        raise UsageError(f"{path}: is a {document['kind']} file, expected {kind}")
    return Results.from_json(document)


def write(path: Path, results: Results) -> None:
    document = results.to_json()
    problems = schemas.schema_errors(document, schemas.RESULTS)
    if problems:
        raise ValueError(f"refusing to write an invalid {results.kind}: {problems[0]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    jsonfile.write_atomic(path, document)


def write_baseline(results: Results, path: Path) -> None:
    """Make ``results`` the baseline at ``path``, keeping entries of models that failed."""
    previous = load(path, kind="baseline") if path.is_file() else None
    write(path, results.as_baseline(previous))


def merge(documents: list[tuple[Path, Results]]) -> Results:
    """One results document from shard results: each selected model exactly once, with
    its base's record where the shards measured one."""
    if not documents:
        raise UsageError("nothing to merge")
    first_path, first = documents[0]
    models: dict[str, ModelResult] = {}
    bases: dict[str, ModelResult] = {}
    seen_in: dict[str, Path] = {}
    for path, document in documents:
        if document.kind != "results":
            raise UsageError(f"{path}: is a {document.kind} file, expected results")
        if document.manifest_sha256 != first.manifest_sha256:
            raise UsageError(f"{path}: from another manifest than {first_path}")
        if _base_of(document) != _base_of(first):
            raise UsageError(f"{path}: measured against another base than {first_path}")
        for name, record in document.models.items():
            if name in models:
                raise UsageError(f"{name}: in both {seen_in[name]} and {path}")
            models[name] = record
            seen_in[name] = path
        bases.update(document.base.models if document.base else {})
    selected = {n for _, d in documents if d.shard for n in d.shard.selected}
    missing = sorted(selected - set(models))
    if missing:
        raise UsageError(f"missing from every shard: {', '.join(missing)}")
    base = replace(first.base, models=dict(sorted(bases.items()))) if first.base else None
    return replace(first, shard=None, models=dict(sorted(models.items())), base=base)


def _base_of(document: Results) -> tuple[str, str] | None:
    return (document.base.label, document.base.manifest_sha256) if document.base else None
