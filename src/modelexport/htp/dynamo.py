"""The dynamo exporter (``torch.onnx.export(dynamo=True)``) behind the common interface.

Provenance: each node's ``pkg.torch.onnx.name_scopes`` metadata. Writing: tags are set on
the in-memory ``onnx_ir`` model before its one and only save, which streams the weights
(``wire.save_streamed``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx_ir
import torch

from modelexport.errors import UsageError
from modelexport.htp import wire
from modelexport.htp.project import GraphNode, Resolver, dynamo_resolver
from modelexport.htp.trace import CallTree
from modelexport.htp.wire import Shape
from modelexport.inputs import nested

# Below this the exporter runs the ONNX version converter, which drops every node's
# metadata: no node of the export would keep its tag.
MIN_OPSET = 18


class DynamoGraph:
    exporter = "dynamo"

    @staticmethod
    def resolver(tree: CallTree) -> Resolver:
        return dynamo_resolver(tree)

    def __init__(self, program: torch.onnx.ONNXProgram, external_data: bool) -> None:
        self._program = program
        self._external_data = external_data
        self.opset = program.model.opset_imports[""]
        self.nodes = [
            GraphNode(
                node.name or "",
                node.op_type,
                tuple(value.name or "" if value is not None else "" for value in node.inputs),
                tuple(value.name or "" for value in node.outputs),
                node.metadata_props.get("pkg.torch.onnx.name_scopes"),
            )
            for node in program.model.graph
        ]
        graph = program.model.graph
        self.inputs = [value.name or "" for value in graph.inputs]
        self.outputs = [value.name or "" for value in graph.outputs]
        self.shapes = {value.name or "": _shape(value)
                       for value in (*graph.inputs, *graph.outputs)}

    def write(self, node_props: list[dict[str, str]], model_props: dict[str, str],
              output: Path, renames: dict[str, str], shapes: dict[str, Shape]) -> None:
        graph = self._program.model.graph
        for node, props in zip(graph, node_props, strict=True):
            node.metadata_props.update(props)
        for value in (*graph.inputs, *graph.outputs):  # consumers hold the value itself
            name = value.name or ""
            if name in shapes:
                value.shape = onnx_ir.Shape(list(shapes[name]))
            value.name = renames.get(name, name)
        self._program.model.metadata_props.update(model_props)
        if self._external_data or not wire.save_streamed(self._program.model, output):
            self._program.save(output, external_data=self._external_data)


def export(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], constants: dict[str, Any],
    opset: int | None, scratch: Path | None, external_data: bool,
    axes: dict[str, dict[int, str]],
) -> DynamoGraph:
    if opset is not None and opset < MIN_OPSET:
        raise UsageError(
            f"the dynamo exporter loses every module tag below opset {MIN_OPSET} "
            "(its version converter drops node metadata): use --opset 18 or more, "
            "or --exporter torchscript"
        )
    # One Dim object per dimension name: inputs that share a name share a size.
    dims = {name: torch.export.Dim(name) for axes_of in axes.values() for name in axes_of.values()}
    shapes = {name: {axis: dims[dim] for axis, dim in axes.get(name, {}).items()} or None
              for name in inputs}
    program = torch.onnx.export(
        model, (), kwargs={**nested(inputs), **constants}, dynamo=True, opset_version=opset,
        verbose=False, external_data=external_data,
        dynamic_shapes=nested(shapes) | dict.fromkeys(constants) if axes else None,
    )
    assert program is not None  # no file was given: the program is returned
    return DynamoGraph(program, external_data)


def _shape(value: onnx_ir.Value) -> tuple[int | str | None, ...] | None:
    if value.shape is None:
        return None
    return tuple(d if isinstance(d, int) else d.value for d in value.shape)
