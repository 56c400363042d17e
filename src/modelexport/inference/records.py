"""A profile of an export in ONNX Runtime, per kernel and per module: the records
``modelexport profile`` writes (``--json``) and the gate keeps a part of. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelexport.kvcache import NEW_TOKENS, PROMPT_TOKENS

# 2: a fused kernel names the modules it absorbed; kernels their shapes, output and
# temporary bytes; the arena's peak
SCHEMA_VERSION = 2
OPTIMIZATIONS = ("disable", "basic", "extended", "all")  # ORT's levels; "all" is its default


@dataclass(frozen=True)
class Settings:
    runs: int
    warmup: int
    threads: int | None  # None: ORT's default
    optimization: str  # disable | basic | extended | all (ORT's default)
    # A decoder with its KV cache: the prompt its prefill takes, and the tokens generated
    # after it (the decode step profiled is the middle one); see ``kvcache.phases``.
    prompt_tokens: int = PROMPT_TOKENS
    new_tokens: int = NEW_TOKENS


@dataclass(frozen=True)
class NodeTime:
    """One kernel of the optimized graph: milliseconds in a typical run, calls per run."""

    name: str
    op_type: str
    module: str | None
    how: str
    members: tuple[str, ...]
    ms: float
    calls: int
    absorbed: tuple[str, ...] = ()  # fused: the other modules whose nodes it computes
    shapes: str = ""  # its inputs' and outputs' types and shapes, as ORT recorded them
    output_bytes: int = 0  # the tensors it produces in a run, as ORT counted them
    temporary_bytes: int = 0  # the scratch memory it allocates in a run, as ORT counted it


@dataclass(frozen=True)
class ModuleTime:
    """One module: its own kernels (self) and with its descendants (inclusive), in
    milliseconds of a typical run (see ``aggregate``), with a 95 % interval of the median
    over runs (None below 6 runs)."""

    path: str
    cls: str
    self_ms: float
    inclusive_ms: float
    self_interval: tuple[float, float] | None
    inclusive_interval: tuple[float, float] | None
    calls: int  # its own kernel calls per run
    ops: tuple[tuple[str, float], ...]  # its own time by op type, heaviest first


@dataclass(frozen=True)
class Profile:
    model: str
    settings: Settings
    latency_ms: tuple[float, ...]  # each measured run, end to end
    kernel_ms: tuple[float, ...]  # each measured run, summed over its kernels
    attributed: float  # share of kernel time placed on a module below the root
    modules: tuple[ModuleTime, ...]  # the root first, then depth-first
    nodes: tuple[NodeTime, ...]  # heaviest first
    arena_peak_bytes: int = 0  # the most ORT's arena had in use in a run; 0: not recorded

    @property
    def total_ms(self) -> float:
        """Kernel milliseconds of a typical run: the root's inclusive time."""
        return self.modules[0].inclusive_ms if self.modules else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION, "model": self.model,
            "settings": vars(self.settings), "latency_ms": list(self.latency_ms),
            "kernel_ms": list(self.kernel_ms), "attributed": self.attributed,
            "modules": [{**vars(m), "self_interval": _pair(m.self_interval),
                         "inclusive_interval": _pair(m.inclusive_interval),
                         "ops": [list(op) for op in m.ops]} for m in self.modules],
            "nodes": [{**vars(n), "members": list(n.members), "absorbed": list(n.absorbed)}
                      for n in self.nodes],
            "arena_peak_bytes": self.arena_peak_bytes,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Profile:
        return cls(
            data["model"], Settings(**data["settings"]), tuple(data["latency_ms"]),
            tuple(data["kernel_ms"]), data["attributed"],
            tuple(ModuleTime(**{**m, "self_interval": _tuple(m["self_interval"]),
                                "inclusive_interval": _tuple(m["inclusive_interval"]),
                                "ops": tuple((op, ms) for op, ms in m["ops"])})
                  for m in data["modules"]),
            tuple(NodeTime(**{**n, "members": tuple(n["members"]),
                              "absorbed": tuple(n.get("absorbed", ()))})
                  for n in data["nodes"]),
            data.get("arena_peak_bytes", 0),
        )


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return list(interval) if interval else None


def _tuple(interval: list[float] | None) -> tuple[float, float] | None:
    return (interval[0], interval[1]) if interval else None
