"""What the pipeline needs of an exporter's graph: the contract ``torchscript`` and
``dynamo`` each fulfil."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from modelexport.htp.project import GraphNode, Resolver
from modelexport.htp.trace import CallTree
from modelexport.htp.wire import Shape


class ExportedGraph(Protocol):
    exporter: str
    opset: int
    nodes: list[GraphNode]
    inputs: list[str]  # the graph's input and output value names
    outputs: list[str]
    shapes: dict[str, tuple[int | str | None, ...] | None]  # of the inputs and outputs

    @staticmethod
    def resolver(tree: CallTree) -> Resolver: ...

    def write(self, node_props: list[dict[str, str]], model_props: dict[str, str],
              output: Path, renames: dict[str, str], shapes: dict[str, Shape]) -> None: ...
