"""Where a model's inference memory goes, per module: the weights each module's nodes read
(from the ONNX file), the activations each module's kernels produce in a run (as ONNX
Runtime's profiler counted them) and the temporary memory they allocate for themselves (as
ORT's per-node statistics count it), self and with its descendants. Pure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from modelexport import modulepath
from modelexport.inference.records import Profile
from modelexport.structure import Structure


@dataclass(frozen=True)
class ModuleMemory:
    path: str
    cls: str
    own_weight_bytes: int
    weight_bytes: int  # with its descendants'
    own_activation_bytes: int
    activation_bytes: int  # with its descendants'
    own_temporary_bytes: int
    temporary_bytes: int  # with its descendants'


@dataclass(frozen=True)
class Memory:
    weight_bytes: int  # every initializer of the file
    activation_bytes: int  # every kernel's outputs in a run
    unattributed_activation_bytes: int  # of kernels placed on no module
    temporary_bytes: int  # every kernel's temporary allocations in a run
    arena_peak_bytes: int  # the most ORT's arena had in use (0: not recorded)
    modules: tuple[ModuleMemory, ...]  # the root first, then depth-first

    def to_json(self) -> dict[str, Any]:
        return {"weight_bytes": self.weight_bytes, "activation_bytes": self.activation_bytes,
                "unattributed_activation_bytes": self.unattributed_activation_bytes,
                "temporary_bytes": self.temporary_bytes,
                "arena_peak_bytes": self.arena_peak_bytes,
                "modules": [vars(module) for module in self.modules]}


def memory(profile: Profile, structure: Structure) -> Memory:
    """``profile``'s kernels and ``structure``'s weights (of the same file) by module."""
    own_weights = {path: module.param_bytes for path, module in structure.modules.items()}
    own_activations: dict[str, int] = defaultdict(int)
    own_temporaries: dict[str, int] = defaultdict(int)
    unattributed = 0
    for node in profile.nodes:
        if node.module is None:
            unattributed += node.output_bytes
        else:
            own_activations[node.module] += node.output_bytes
            own_temporaries[node.module] += node.temporary_bytes
    classes = {m.path: m.cls for m in profile.modules}
    classes.update({path: m.cls for path, m in structure.modules.items() if path not in classes})
    owns = (own_weights, own_activations, own_temporaries)
    totals: tuple[dict[str, int], ...] = tuple(defaultdict(int) for _ in owns)
    for path in {*own_weights, *own_activations, *classes}:
        for above in modulepath.ancestors(path):
            for own, total in zip(owns, totals, strict=True):
                total[above] += own.get(path, 0)
    weights, activations, temporaries = totals
    modules = tuple(
        ModuleMemory(path, classes.get(path, ""), own_weights.get(path, 0), weights[path],
                     own_activations.get(path, 0), activations[path],
                     own_temporaries.get(path, 0), temporaries[path])
        for path in sorted(weights, key=modulepath.natural_order))
    return Memory(structure.weight_bytes, sum(n.output_bytes for n in profile.nodes),
                  unattributed, sum(n.temporary_bytes for n in profile.nodes),
                  profile.arena_peak_bytes, modules)
