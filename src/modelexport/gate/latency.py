"""What the gate keeps of an inference profile, and how per-module times moved between two.
Pure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from modelexport import modulepath, stats
from modelexport.gate.metric import Metric
from modelexport.inference.records import Profile, Settings

LATENCY = "inference"  # the metric's name; a decoder's: one decode step, time per output token
FIRST_TOKEN = "first token"  # a decoder's prefill of a prompt: time to first token
INFERENCE_MEMORY = "inference memory"  # the most ORT's arena had in use in a run

@dataclass(frozen=True)
class Latency:
    """What the gate keeps of a profile: every run's latency, and per module its self and
    inclusive milliseconds of a typical run."""

    settings: Settings
    latency_ms: tuple[float, ...]
    attributed: float
    modules: dict[str, tuple[float, float]]  # path -> (self, inclusive)
    name: str = LATENCY  # the metric's, as reasons say it
    arena_peak_bytes: int = 0  # 0: not recorded (results before version 7)
    activations: dict[str, int] = field(default_factory=dict)  # path -> its kernels' bytes

    @property
    def metric(self) -> Metric:
        """The latency the verdict compares: the means of blocks of consecutive runs
        (``stats.block_means`` says why), in milliseconds."""
        return Metric(self.name, "ms", tuple(stats.block_means(self.latency_ms)))

    @property
    def runs(self) -> Metric:
        """Every run's latency: what a paired verdict compares, run ``i`` of the head with
        run ``i`` of the base beside it. In pairs, a run slowed by another process sharing
        its core is one outlier pair among many, which a rank test and a median absorb."""
        return Metric(self.name, "ms", self.latency_ms)

    @property
    def memory(self) -> Metric | None:
        """The arena's peak in a run, in MB: one sample, as deterministic as the session's
        allocation plan (the rule then needs the two to differ beyond threshold and floor);
        None where not recorded."""
        if not self.arena_peak_bytes:
            return None
        return Metric(INFERENCE_MEMORY, "MB", (self.arena_peak_bytes / 1e6,))

    @classmethod
    def of(cls, found: Profile, name: str = LATENCY) -> Latency:
        activations: dict[str, int] = defaultdict(int)
        for node in found.nodes:
            activations[node.module or ""] += node.output_bytes
        return cls(found.settings, found.latency_ms, found.attributed,
                   {m.path: (m.self_ms, m.inclusive_ms) for m in found.modules}, name,
                   found.arena_peak_bytes, dict(activations))

    def to_json(self) -> dict[str, Any]:
        data = {"settings": vars(self.settings), "latency_ms": list(self.latency_ms),
                "attributed": self.attributed,
                "modules": {path: list(times) for path, times in self.modules.items()}}
        if self.arena_peak_bytes:
            data |= {"arena_peak_bytes": self.arena_peak_bytes,
                     "activation_bytes": self.activations}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], name: str = LATENCY) -> Latency:
        return cls(Settings(**data["settings"]), tuple(data["latency_ms"]), data["attributed"],
                   {path: (times[0], times[1]) for path, times in data["modules"].items()},
                   name, data.get("arena_peak_bytes", 0), data.get("activation_bytes", {}))


@dataclass(frozen=True)
class ModuleDelta:
    """How a module's own amount (milliseconds, or megabytes of activations) moved;
    ``count`` modules alike folded into one row."""

    where: str
    before: float
    after: float
    count: int = 1

    @property
    def delta(self) -> float:
        return self.after - self.before


def module_deltas(before: Latency, after: Latency, limit: int = 5) -> list[ModuleDelta]:
    """The modules whose own time moved most, in milliseconds (``moved``)."""
    return moved({path: times[0] for path, times in before.modules.items()},
                 {path: times[0] for path, times in after.modules.items()}, limit)


def memory_deltas(before: Latency, after: Latency, limit: int = 5) -> list[ModuleDelta]:
    """The modules whose kernels' activation bytes moved most, in MB (``moved``)."""
    return moved({path: b / 1e6 for path, b in before.activations.items()},
                 {path: b / 1e6 for path, b in after.activations.items()}, limit)


def moved(before: dict[str, float], after: dict[str, float], limit: int = 5
          ) -> list[ModuleDelta]:
    """The modules whose own amount moved most (those that did not move left out),
    repeated layers folded (their amounts summed): ``encoder.layer.{0..11}.intermediate.dense``
    is one row. A layer that moved more than twice all the others together stands alone,
    the others folded beside it: one layer of four made wider is
    ``model.layers.2.mlp.up_proj``, not the four."""
    groups: dict[str, list[str]] = defaultdict(list)
    for path in {*before, *after}:
        groups[modulepath.pattern(path)].append(path)

    def row(paths: list[str]) -> ModuleDelta:
        return ModuleDelta(modulepath.folded_name(sorted(paths)),
                           sum(before.get(p, 0.0) for p in paths),
                           sum(after.get(p, 0.0) for p in paths), len(paths))

    rows = []
    for paths in groups.values():
        distance = {path: abs(after.get(path, 0.0) - before.get(path, 0.0)) for path in paths}
        lead = max(sorted(paths), key=distance.__getitem__)
        rest = [path for path in paths if path != lead]
        if rest and distance[lead] > 2 * sum(distance[path] for path in rest):
            rows += [row([lead]), row(rest)]
        else:
            rows.append(row(paths))
    rows.sort(key=lambda found: (-abs(found.delta), found.where))
    return [found for found in rows if found.delta][:limit]
