"""Splitting a gate run over a CI matrix: ``check --shard I/N``, balanced by the
baseline's durations, each model in exactly one shard. No torch."""

from __future__ import annotations

from pathlib import Path

from modelexport.errors import UsageError
from modelexport.gate import results
from modelexport.gate.manifest import ModelSpec
from modelexport.gate.results import Results, Shard

SHARDS_LIMIT = 256  # a CI matrix holds at most 256 jobs


def split(names: list[str], count: int, seconds: dict[str, float]) -> list[list[str]]:
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


def durations(baseline: Results | None) -> dict[str, float]:
    """Wall seconds per model in a baseline, to balance shards."""
    if baseline is None:
        return {}
    return {name: record.wall_s for name, record in baseline.models.items()}


def parse(text: str) -> tuple[int, int]:
    """``"2/3"`` -> ``(2, 3)``."""
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        raise UsageError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 1/2")
    if int(count) > SHARDS_LIMIT:
        raise UsageError(f"--shard {text!r}: at most {SHARDS_LIMIT} shards")
    return int(index), int(count)


def plan(specs: list[ModelSpec], text: str, baseline: Path | None
         ) -> tuple[list[ModelSpec], Shard]:
    """The models of shard ``text`` (I/N) and the record of it for the results."""
    index, count = parse(text)
    known = results.load(baseline, kind="baseline") if baseline and baseline.is_file() else None
    names = [spec.name for spec in specs]
    mine = set(split(names, count, durations(known))[index - 1])
    return [spec for spec in specs if spec.name in mine], Shard(index, count, tuple(names))
