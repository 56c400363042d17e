"""What the gate keeps of an inference profile, and how per-module times moved between two.
Pure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from modelexport import modulepath, stats
from modelexport.gate.metric import Metric
from modelexport.inference.records import Profile, Settings

LATENCY = "inference"  # the metric's name; a decoder's: one decode step, time per output token
FIRST_TOKEN = "first token"  # a decoder's prefill of a prompt: time to first token

@dataclass(frozen=True)
class Latency:
    """What the gate keeps of a profile: every run's latency, and per module its self and
    inclusive milliseconds of a typical run."""

    settings: Settings
    latency_ms: tuple[float, ...]
    attributed: float
    modules: dict[str, tuple[float, float]]  # path -> (self, inclusive)
    name: str = LATENCY  # the metric's, as reasons say it

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

    @classmethod
    def of(cls, found: Profile, name: str = LATENCY) -> Latency:
        return cls(found.settings, found.latency_ms, found.attributed,
                   {m.path: (m.self_ms, m.inclusive_ms) for m in found.modules}, name)

    def to_json(self) -> dict[str, Any]:
        return {"settings": vars(self.settings), "latency_ms": list(self.latency_ms),
                "attributed": self.attributed,
                "modules": {path: list(times) for path, times in self.modules.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any], name: str = LATENCY) -> Latency:
        return cls(Settings(**data["settings"]), tuple(data["latency_ms"]), data["attributed"],
                   {path: (times[0], times[1]) for path, times in data["modules"].items()},
                   name)


@dataclass(frozen=True)
class ModuleDelta:
    """How a module's own time moved; ``count`` modules alike folded into one row."""

    where: str
    before_ms: float
    after_ms: float
    count: int = 1

    @property
    def delta_ms(self) -> float:
        return self.after_ms - self.before_ms


def module_deltas(before: Latency, after: Latency, limit: int = 5) -> list[ModuleDelta]:
    """The modules whose own time moved most, repeated layers folded (their times summed):
    ``encoder.layer.{0..11}.intermediate.dense`` is one row. A layer that moved more than
    twice all the others together stands alone, the others folded beside it: one layer of
    four made wider is ``model.layers.2.mlp.up_proj``, not the four."""
    groups: dict[str, list[str]] = defaultdict(list)
    for path in {*before.modules, *after.modules}:
        groups[modulepath.pattern(path)].append(path)

    def own(latency: Latency, path: str) -> float:
        return latency.modules.get(path, (0.0, 0.0))[0]

    def row(paths: list[str]) -> ModuleDelta:
        return ModuleDelta(modulepath.folded_name(sorted(paths)),
                           sum(own(before, p) for p in paths), sum(own(after, p) for p in paths),
                           len(paths))

    rows = []
    for paths in groups.values():
        moved = {path: abs(own(after, path) - own(before, path)) for path in paths}
        lead = max(sorted(paths), key=moved.__getitem__)
        rest = [path for path in paths if path != lead]
        if rest and moved[lead] > 2 * sum(moved[path] for path in rest):
            rows += [row([lead]), row(rest)]
        else:
            rows.append(row(paths))
    rows.sort(key=lambda found: (-abs(found.delta_ms), found.where))
    return rows[:limit]
