"""Where each module's results leave it: for every module of a tagged graph, down to a
depth, the values its nodes produce that nodes outside it (or the graph's outputs) use,
and the values it takes from outside. Marking only these as outputs, not every tensor, keeps
a verifying run's memory near an ordinary one's. Pure: no onnx, no onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from modelexport import modulepath
from modelexport.onnxfile import Skeleton


@dataclass(frozen=True)
class Boundary:
    """A module, where it starts in the graph, and the values that cross its edge."""

    module: str
    last: int  # the index of its last node, where its results are complete
    inputs: tuple[str, ...]  # from outside it: graph inputs, other modules' results
    outputs: tuple[str, ...]  # used outside it, or the graph's outputs


def boundaries(graph: Skeleton, modules: Sequence[str | None], depth: int | None = None
               ) -> list[Boundary]:
    """Every module with nodes of its own or below it, to ``depth`` (deeper ones are part of
    their ancestor at ``depth``; None: every module), in tree order, siblings in the order
    their results are complete; not the root, whose edge is the graph's.
    Unattributed nodes (``None``) belong to the root. Initializers and Constant nodes'
    values cross no edge: they are part of the file, the same on both sides of a
    comparison."""
    owner = [".".join(modulepath.parts(module or "")[:depth]) for module in modules]
    produced_by: dict[str, int] = {}
    constant = set(graph.initializers)
    for index, node in enumerate(graph.nodes):
        for value in node.outputs:
            if value:
                produced_by[value] = index
                if node.op_type == "Constant":
                    constant.add(value)
    used_by: dict[str, list[int]] = {}
    for index, node in enumerate(graph.nodes):
        for value in node.inputs:
            if value:
                used_by.setdefault(value, []).append(index)
    graph_outputs = {sig.name for sig in graph.outputs}
    members: dict[str, list[int]] = {}
    for index, module in enumerate(owner):
        for above in modulepath.ancestors(module)[:-1]:  # not the root
            members.setdefault(above, []).append(index)
    found = []
    for module, nodes in members.items():
        inside = set(nodes)
        inputs: dict[str, None] = {}
        outputs: dict[str, None] = {}
        for index in nodes:
            node = graph.nodes[index]
            for value in node.inputs:
                if value and value not in constant and produced_by.get(value) not in inside:
                    inputs[value] = None
            for value in node.outputs:
                if value and value not in constant and (
                        value in graph_outputs or
                        any(user not in inside for user in used_by.get(value, ()))):
                    outputs[value] = None
        found.append(Boundary(module, nodes[-1], tuple(inputs), tuple(outputs)))
    last = {b.module: b.last for b in found}
    return sorted(found, key=lambda b: [last[above] for above in
                                        modulepath.lineage(b.module)[1:]])
