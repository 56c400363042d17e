"""A profile as Model Explorer node data: milliseconds (or activation bytes) per node of
the exported graph. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from modelexport.inference.attribute import WEIGHT
from modelexport.inference.records import Profile
from modelexport.onnxfile import Node


def overlay(profile: Profile, exported: Sequence[Node], graph_id: str,
            memory: bool = False) -> dict[str, Any]:
    """Model Explorer node data: milliseconds per node of the exported graph, keyed by node
    name as its ONNX adapter names nodes. A kernel's time goes to the heaviest nodes among
    those it computes (evenly; ``attribute.WEIGHT``: a MatMul fused with its bias Add is the
    MatMul's time), else, where all are elementwise, to the one that produced its result.
    ``memory``: the bytes each kernel's outputs take instead, on the node that produced
    them."""
    ops = {node.name: node.op_type for node in exported}
    values: dict[str, float] = defaultdict(float)
    for node in profile.nodes:
        members = [m for m in node.members if m in ops]
        if not members:
            continue
        if memory:
            values[members[-1]] += node.output_bytes
            continue
        weights = [WEIGHT.get(ops[m], 1) for m in members]
        top = max(weights)
        heavy = ([m for m, w in zip(members, weights, strict=True) if w == top] if top > 1
                 else members[-1:])
        for member in heavy:
            values[member] += node.ms / len(heavy)
    return {graph_id: {
        "results": {name: {"value": round(ms, 6)} for name, ms in values.items()},
        "gradient": [{"stop": 0, "bgColor": "#fff7ec"}, {"stop": 1, "bgColor": "#d7301f"}],
    }}
