"""The tags of an exported file: which module each node came from, each module's class, and
the inputs the export fed it. No torch, no onnx.

The tags live in the ONNX file's node metadata, and in full in the sidecar beside it: an
export with ``--clean`` has them in the sidecar only. The sidecar also knows what the file
cannot say: the classes of modules that made no nodes of their own (``ModuleList``,
``BertEncoder``) and the inputs the export was traced with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelexport import onnxfile, sidecar
from modelexport.errors import UsageError
from modelexport.inputs import InputSpec


@dataclass(frozen=True)
class Tagged:
    """A tagged export: its graph, each node's module, each module's class, its inputs."""

    path: Path
    graph: onnxfile.Skeleton
    modules: tuple[str | None, ...]  # node i's module path ('' the root; None unattributed)
    classes: dict[str, str]  # module path -> class name
    inputs: tuple[InputSpec, ...]  # as the export fed it; empty without a sidecar

    @property
    def by_node(self) -> dict[str, str | None]:
        """Node name -> its module path."""
        return {node.name: module for node, module in zip(self.graph.nodes, self.modules,
                                                          strict=True)}


def read(path: Path, whole: bool = False) -> Tagged:
    """The graph of ``path`` with its tags, from the file, else from the sidecar beside it;
    UsageError where neither has any. ``whole``: also what the sidecar alone knows (the
    classes of modules without nodes, the inputs), where there is one; else the sidecar is
    read only for an export without tags in the file: reading it costs nearly as much as
    reading the file's graph (docs/performance.md, "Measured choices")."""
    graph = onnxfile.read(path)
    modules: tuple[str | None, ...] = tuple(node.props.get(sidecar.MODULE_KEY)
                                            for node in graph.nodes)
    classes = {module: node.props.get(sidecar.CHAIN_KEY, "").rpartition("/")[2]
               for node, module in zip(graph.nodes, modules, strict=True) if module is not None}
    beside = sidecar.sidecar_path(path)
    if (classes and not whole) or not beside.is_file():
        if not classes:
            raise UsageError(f"{path}: no module tags (no modelexport metadata in the file, no "
                             f"{beside.name} beside it): export it with `modelexport export`")
        return Tagged(path, graph, modules, classes, ())
    record = sidecar.read(beside)
    if not classes:  # exported with --clean: the sidecar alone has them
        if [entry.name for entry in record.nodes] != [node.name for node in graph.nodes]:
            raise UsageError(f"{beside}: lists other nodes than {path.name}")
        modules = tuple(entry.module for entry in record.nodes)
    return Tagged(path, graph, modules, {module.path: module.cls for module in record.modules},
                  record.inputs)
