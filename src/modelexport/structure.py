"""The structure of a tagged export, per module: what a graph diff compares.

Deterministic (the same export gives the same summary on any machine) and compact (a
12-layer BERT's is a few tens of KB): the graph's signature, opset and IR version, node
count and op histogram, weight bytes; and per module that has nodes or parameters its
class, node count, op histogram and parameter bytes. Read from the ONNX file without its
weights (``onnxfile``); the modules come from the tags in the file, or from the sidecar
beside it for a ``--clean`` export. No torch, no onnx.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelexport import tags
from modelexport.onnxfile import Skeleton, TensorSig


@dataclass(frozen=True)
class ModuleStructure:
    cls: str
    nodes: int
    ops: dict[str, int]
    param_bytes: int  # the weights its own nodes read

    def to_json(self) -> dict[str, Any]:
        return {"class": self.cls, "nodes": self.nodes, "ops": self.ops,
                "param_bytes": self.param_bytes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModuleStructure:
        return cls(data["class"], data["nodes"], data["ops"], data["param_bytes"])


@dataclass(frozen=True)
class Structure:
    inputs: tuple[TensorSig, ...]
    outputs: tuple[TensorSig, ...]
    opset: int
    ir_version: int
    nodes: int
    ops: dict[str, int]
    weight_bytes: int  # all initializers
    modules: dict[str, ModuleStructure]  # path -> its own nodes and parameters

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": [_sig_json(s) for s in self.inputs],
            "outputs": [_sig_json(s) for s in self.outputs],
            "opset": self.opset, "ir_version": self.ir_version, "nodes": self.nodes,
            "ops": self.ops, "weight_bytes": self.weight_bytes,
            "modules": {path: m.to_json() for path, m in self.modules.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Structure:
        return cls(
            inputs=tuple(_sig(s) for s in data["inputs"]),
            outputs=tuple(_sig(s) for s in data["outputs"]),
            opset=data["opset"], ir_version=data["ir_version"], nodes=data["nodes"],
            ops=data["ops"], weight_bytes=data["weight_bytes"],
            modules={p: ModuleStructure.from_json(m) for p, m in data["modules"].items()},
        )


def _sig_json(sig: TensorSig) -> dict[str, Any]:
    return {"name": sig.name, "dtype": sig.dtype,
            "shape": None if sig.shape is None else list(sig.shape)}


def _sig(data: dict[str, Any]) -> TensorSig:
    shape = data["shape"]
    return TensorSig(data["name"], data["dtype"], None if shape is None else tuple(shape))


def of_file(path: Path) -> Structure:
    """The structure of a tagged ONNX file (tags in the file, else in its sidecar)."""
    tagged = tags.read(path)
    return summarize(tagged.graph, list(tagged.modules), tagged.classes)


def summarize(skeleton: Skeleton, modules: list[str | None], classes: dict[str, str]
              ) -> Structure:
    """``modules[i]``: the module path node i is tagged with (None: unattributed).

    A module's class is recorded where it has nodes: the tags in a file name the classes of
    those modules only, and a summary must not depend on where its tags were read.
    """
    ops: dict[str, Counter[str]] = {}
    for node, path in zip(skeleton.nodes, modules, strict=True):
        if path is not None:
            ops.setdefault(path, Counter())[node.op_type] += 1
    params = _parameter_bytes(skeleton, modules)
    return Structure(
        inputs=skeleton.inputs, outputs=skeleton.outputs,
        opset=skeleton.opsets.get("", skeleton.opsets.get("ai.onnx", 0)),
        ir_version=skeleton.ir_version, nodes=len(skeleton.nodes),
        ops=dict(sorted(Counter(n.op_type for n in skeleton.nodes).items())),
        weight_bytes=sum(skeleton.initializers.values()),
        modules={
            path: ModuleStructure(classes.get(path, "") if path in ops else "",
                                  sum(ops.get(path, {}).values()),
                                  dict(sorted(ops.get(path, Counter()).items())),
                                  params.get(path, 0))
            for path in sorted({*ops, *params})
        },
    )


def _parameter_bytes(skeleton: Skeleton, modules: list[str | None]) -> dict[str, int]:
    """The bytes of the weights each module's nodes read; a tensor read by several modules
    counts in each. Several readers are a tied embedding, or equal values the exporter
    stored once (random weights give many: every zero bias, behind Identity nodes). Owning
    such a tensor by its first reader or by a common ancestor made it move between
    modules when a model grew by a layer; what each module reads does not move."""
    read: dict[str, set[str]] = {}
    for node, path in zip(skeleton.nodes, modules, strict=True):
        if path is not None:
            read.setdefault(path, set()).update(
                name for name in node.inputs if name in skeleton.initializers)
    return {path: sum(skeleton.initializers[n] for n in names)
            for path, names in read.items() if names}
