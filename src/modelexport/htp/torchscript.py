"""The TorchScript exporter (``torch.onnx.export(dynamo=False)``) behind the common interface.

Provenance: the scope path in each node name, resolved against the call tree.
Writing: the exporter's bytes are kept; tags are spliced in (see ``wire``), so the weights
are serialized exactly once, as in a bare export.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx
import torch

from modelexport.htp import wire
from modelexport.htp.project import GraphNode, Resolver, torchscript_resolver
from modelexport.htp.trace import CallTree


@contextlib.contextmanager
def keyword_forward(
    model: torch.nn.Module, names: list[str], constants: dict[str, Any]
) -> Iterator[None]:
    """Make ``model(*args)`` call the original forward with ``names`` as keywords.

    The TorchScript exporter fills every optional forward argument by position; transformers
    5's forward wrappers pass ``use_cache`` again by keyword ("got multiple values"). An
    instance-level ``forward`` taking ``*args`` stops the filling and, unlike a wrapper
    module, keeps the module tree, scope names and parameter names unchanged.
    """
    original = model.forward

    def forward(self: torch.nn.Module, *args: Any) -> Any:
        return original(**dict(zip(names, args, strict=True)), **constants)

    had_own = "forward" in vars(model)
    model.forward = types.MethodType(forward, model)
    try:
        yield
    finally:
        if had_own:
            model.forward = original
        else:
            del model.forward


class TorchScriptGraph:
    exporter = "torchscript"

    @staticmethod
    def resolver(tree: CallTree) -> Resolver:
        return torchscript_resolver(tree)

    def __init__(
        self, header: onnx.ModelProto, nodes: list[onnx.NodeProto], scratch: Path | None,
        data: bytes | None,
    ) -> None:
        self.opset = _opset(header)
        self._scratch = scratch
        # The exporter's bytes to splice into, or None: ``header`` is the whole model, read
        # from ``scratch`` with its weights left where the exporter put them.
        self._data = data
        self._model = header
        self.nodes = [
            GraphNode(n.name, n.op_type, tuple(n.input), tuple(n.output), n.name) for n in nodes
        ]
        self.inputs = [i.name for i in header.graph.input]
        self.outputs = [o.name for o in header.graph.output]
        self.shapes = {i.name: _shape(i) for i in (*header.graph.input, *header.graph.output)}

    def write(self, node_props: list[dict[str, str]], model_props: dict[str, str],
              output: Path, renames: dict[str, str], shapes: dict[str, wire.Shape]) -> None:
        if self._data is not None:
            _unlink_ordinary(output)
            with open(output, "wb") as fh:
                for chunk in wire.add_metadata(self._data, node_props, model_props, renames,
                                               shapes):
                    fh.write(chunk)
            return
        assert self._scratch is not None  # no bytes: the exporter wrote into scratch
        model = self._model
        for node, props in zip(model.graph.node, node_props, strict=True):
            for key, value in props.items():
                node.metadata_props.add(key=key, value=value)
            for field in (node.input, node.output):
                for i, name in enumerate(field):
                    field[i] = renames.get(name, name)
        for info in (*model.graph.input, *model.graph.output, *model.graph.value_info):
            wire.retyped(info, renames, shapes)
        for key, value in model_props.items():
            model.metadata_props.add(key=key, value=value)
        # Weights the exporter wrote as external files stay there; weights it left inline
        # (under 2 GB it ignores the request) go to one "<name>.data" file, as dynamo's do.
        onnx.save(model, self._scratch, save_as_external_data=True,
                  all_tensors_to_one_file=True, location=f"{output.name}.data")
        for produced in self._scratch.parent.iterdir():
            produced.replace(output.parent / produced.name)


def _unlink_ordinary(path: Path) -> None:
    """Remove an old regular file before writing it again (as GNU ld does).

    Truncating a large file in place makes ext4 flush it on close, and the next metadata
    change on that file system (our sidecar) then waits; an unlinked file makes it wait for
    nothing. Not done for dynamo, whose own save serializes before it opens the file: there
    a fresh file was slower (docs/performance.md, "Measured choices"). A symlink is left
    alone, so the write goes through it.
    """
    if path.is_file() and not path.is_symlink():
        path.unlink()


class _Keep:
    """A file for the exporter that keeps the bytes it is given instead of copying them.

    A BytesIO would copy the serialized model once more, and that copy and its page faults
    made the export slower than a bare one (docs/performance.md, "Measured choices").
    """

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(data)
        return len(data)

    def flush(self) -> None:
        pass

    def data(self) -> bytes:
        return self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)


def export(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], constants: dict[str, Any],
    opset: int | None, scratch: Path | None, external_data: bool,
    axes: dict[str, dict[int, str]],
) -> TorchScriptGraph:
    """Export in memory, or into ``scratch`` (a path in an empty folder, given exactly when
    ``external_data`` is asked for: over 2 GB a proto cannot be held in one buffer)."""
    names = list(inputs)
    # The TorchScript exporter writes to any file object, though torch types ``f`` as a path.
    sink: Any = _Keep() if scratch is None else scratch
    with keyword_forward(model, names, constants):
        torch.onnx.export(
            model, tuple(inputs.values()), sink, dynamo=False, opset_version=opset,
            input_names=names, do_constant_folding=True, dynamic_axes=axes or None,
        )
    if scratch is None:
        data = sink.data()
        header, nodes = wire.read(data)
        return TorchScriptGraph(header, nodes, scratch, data)
    loaded = onnx.load(scratch, load_external_data=False)
    return TorchScriptGraph(loaded, list(loaded.graph.node), scratch, None)


def _shape(info: onnx.ValueInfoProto) -> tuple[int | str | None, ...] | None:
    if not info.type.tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in info.type.tensor_type.shape.dim)


def _opset(model: onnx.ModelProto) -> int:
    return next(op.version for op in model.opset_import if op.domain in ("", "ai.onnx"))
