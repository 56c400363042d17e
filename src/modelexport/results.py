"""Results of a gate run and the baseline they are compared with: versioned JSON, the
environment they were measured in, atomic writes. No torch."""

from __future__ import annotations

import datetime
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from modelexport import __version__, metadata
from modelexport.errors import UsageError
from modelexport.manifest import Manifest

SCHEMA = "results.schema.json"
SCHEMA_ID = "https://modelexport.dev/schemas/results/1.json"
# What must match for timings to be comparable; calibration_s is reported, not matched.
FINGERPRINT = ("tool", "python", "libraries", "os", "cpu", "cores")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def calibrate() -> float:
    """Seconds for a fixed pure-Python workload (best of 3): how fast this machine is now."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return best


def environment() -> dict[str, Any]:
    libraries = {k: v for k, v in metadata.library_versions().items()
                 if k in ("torch", "transformers", "onnx", "onnxruntime", "onnxscript")}
    return {
        "tool": __version__,
        "python": platform.python_version(),
        "libraries": libraries,
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 1,
        "calibration_s": round(calibrate(), 6),
    }


def new(manifest: Manifest, kind: str = "results") -> dict[str, Any]:
    return {
        "$schema": SCHEMA_ID,
        "schema_version": 1,
        "kind": kind,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "environment": environment(),
        "manifest": {"path": str(manifest.path), "sha256": manifest.digest},
        "models": {},
    }


def load(path: Path, kind: str | None = None) -> dict[str, Any]:
    """Read and validate a results or baseline file; a foreign or corrupt one is an error."""
    try:
        document = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: corrupt: not JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("$schema") != SCHEMA_ID:
        raise UsageError(f"{path}: not a modelexport results or baseline file")
    problems = metadata.schema_errors(document, SCHEMA)
    if problems:
        raise UsageError(f"{path}: corrupt: {problems[0]}")
    if kind is not None and document["kind"] != kind:
        raise UsageError(f"{path}: is a {document['kind']} file, expected {kind}")
    return document


def write(path: Path, document: dict[str, Any]) -> None:
    problems = metadata.schema_errors(document, SCHEMA)
    if problems:
        raise ValueError(f"refusing to write an invalid {document['kind']}: {problems[0]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata.write_json(path, document)


def environment_drift(current: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """The fingerprint fields that differ, as 'field: baseline -> current'."""
    return [
        f"{key}: {baseline['environment'][key]} -> {current['environment'][key]}"
        for key in FINGERPRINT
        if current["environment"][key] != baseline["environment"][key]
    ]


def updated_baseline(results: dict[str, Any], previous: dict[str, Any] | None
                     ) -> dict[str, Any]:
    """A baseline from results; a model that failed this time keeps its previous entry."""
    models = dict(previous["models"]) if previous else {}
    models.update({name: r for name, r in results["models"].items() if r["status"] == "ok"})
    # The pull request a run was for is no property of the baseline made from it.
    kept = {k: v for k, v in results.items() if k != "pull_request"}
    return {**kept, "kind": "baseline", "models": dict(sorted(models.items()))}



def shards(names: list[str], count: int, seconds: dict[str, float]) -> list[list[str]]:
    """Split models into ``count`` shards of about equal duration.

    Longest first onto the least loaded shard; a model with no known duration counts as the
    median of the known ones (1 s when none is known). Deterministic for the same inputs.
    """
    known = sorted(seconds[n] for n in names if n in seconds)
    typical = known[len(known) // 2] if known else 1.0
    loads = [0.0] * count
    out: list[list[str]] = [[] for _ in range(count)]
    for name in sorted(names, key=lambda n: (-seconds.get(n, typical), n)):
        lightest = loads.index(min(loads))
        out[lightest].append(name)
        loads[lightest] += seconds.get(name, typical)
    return out


def durations(baseline: dict[str, Any] | None) -> dict[str, float]:
    """Wall seconds per model in a baseline, to balance shards."""
    if baseline is None:
        return {}
    return {name: record["wall_s"] for name, record in baseline["models"].items()}


def merge(documents: list[tuple[Path, dict[str, Any]]]) -> dict[str, Any]:
    """One results document from shard results: each selected model exactly once."""
    if not documents:
        raise UsageError("nothing to merge")
    first_path, first = documents[0]
    models: dict[str, Any] = {}
    seen_in: dict[str, Path] = {}
    for path, document in documents:
        if document["kind"] != "results":
            raise UsageError(f"{path}: is a {document['kind']} file, expected results")
        if document["manifest"]["sha256"] != first["manifest"]["sha256"]:
            raise UsageError(f"{path}: from another manifest than {first_path}")
        for name, record in document["models"].items():
            if name in models:
                raise UsageError(f"{name}: in both {seen_in[name]} and {path}")
            models[name] = record
            seen_in[name] = path
    selected = {n for _, d in documents for n in d.get("shard", {}).get("selected", [])}
    missing = sorted(selected - set(models))
    if missing:
        raise UsageError(f"missing from every shard: {', '.join(missing)}")
    merged = {k: v for k, v in first.items() if k != "shard"}
    return {**merged, "models": dict(sorted(models.items()))}
