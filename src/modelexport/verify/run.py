"""Two runs of a tagged export compared module by module: the export against the PyTorch
model it came from, against another file with the same tags (an fp16 or int8 conversion,
another opset or exporter), or against itself at another ONNX Runtime optimization level.
Each ONNX run marks the values that cross a module's edge (``boundaries``) as extra outputs
of an ordinary ONNX Runtime session.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelexport import onnxfile, tags
from modelexport.errors import ExportFailed, UsageError, describe
from modelexport.inference import session
from modelexport.inputs import InputSpec
from modelexport.verify.boundaries import boundaries
from modelexport.verify.divergence import Verification, compare, matched

PROTOBUF_LIMIT = 2**31 - 1  # bytes of one serialized model; a larger one goes by file


def verify(reference: Path, candidate: Path, optimizations: tuple[str, str] = ("all", "all"),
           overrides: list[InputSpec] | None = None, seed: int = 0, depth: int | None = None,
           tolerance: float = 1e-4) -> Verification:
    """``candidate`` (it may be ``reference`` itself) run beside ``reference`` on the same
    inputs (as the export fed them, ``overrides`` by name), each module's gap (to ``depth``).
    UsageError where the two do not share their tags and inputs."""
    model = tags.read(reference, whole=True)
    edges = boundaries(model.graph, model.modules, depth)
    outputs = [sig.name for sig in model.graph.outputs]
    wanted = list(dict.fromkeys([*outputs, *(v for e in edges for v in (*e.inputs,
                                                                         *e.outputs))]))
    feed = session.feeds(model, overrides or [], seed)
    other = model if candidate == reference else tags.read(candidate)
    _same_model(model, other)
    found = values(reference, wanted, feed, optimizations[0])
    # Another exporter names its values otherwise: the candidate's own edges are marked too,
    # and paired with the reference's module by module.
    their_edges = {e.module: e for e in boundaries(other.graph, other.modules, depth)}
    theirs = values(candidate, [*wanted, *(v for e in their_edges.values() for v in e.outputs)],
                    _cast(feed, other.graph), optimizations[1])
    for edge in edges:
        lacking = {name: found[name] for name in edge.outputs
                   if name in found and name not in theirs}
        if lacking and edge.module in their_edges:
            offered = {name: theirs[name] for name in their_edges[edge.module].outputs
                       if name in theirs and name not in found}
            for name, their_name in matched(lacking, offered).items():
                theirs[name] = theirs[their_name]
    labels = (_label(reference, optimizations[0], optimizations),
              _label(candidate, optimizations[1], optimizations))
    return compare(edges, model.classes, feed, outputs, found, theirs, tolerance, labels)


def against_pytorch(path: Path, optimization: str = "all",
                    overrides: list[InputSpec] | None = None, seed: int = 0,
                    depth: int | None = None, tolerance: float = 1e-4) -> Verification:
    """The export run beside the PyTorch model it came from (its sidecar names it), on the
    export's inputs, each module's gap (to ``depth``)."""
    from modelexport.verify import reference

    model = tags.read(path, whole=True)
    source = reference.source_of(model)
    feed = session.feeds(model, overrides or [], seed)
    return against_module(model, reference.load(source), feed, optimization, depth, tolerance)


def against_module(model: tags.Tagged, module: Any, feed: dict[str, Any],
                   optimization: str = "all", depth: int | None = None,
                   tolerance: float = 1e-4) -> Verification:
    """The tagged export ``model`` run beside the loaded PyTorch ``module`` on ``feed``."""
    from modelexport.verify import reference

    edges = boundaries(model.graph, model.modules, depth)
    outputs = [sig.name for sig in model.graph.outputs]
    wanted = list(dict.fromkeys([*outputs, *(v for e in edges for v in e.outputs)]))
    theirs = values(model.path, wanted, feed, optimization)
    found = reference.values(module, edges, outputs, feed, theirs)
    return compare(edges, model.classes, feed, outputs, found, theirs, tolerance,
                   ("PyTorch", _label(model.path, optimization, ("", optimization))))


def values(path: Path, names: Iterable[str], feed: dict[str, Any], optimization: str
           ) -> dict[str, Any]:
    """The graph's outputs and every value of ``names`` the file's nodes produce, from one
    run of ``path`` in ONNX Runtime on ``feed``."""
    import onnx
    import onnxruntime as ort

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises its own types
        raise UsageError(f"{path}: not an ONNX file: {describe(exc)}") from exc
    produced = {value for node in model.graph.node for value in node.output if value}
    marked = {sig.name for sig in model.graph.output}
    for name in names:
        if name in produced and name not in marked:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
            marked.add(name)
    # Types recorded for inner values, which a conversion (fp16) may have left stale: an
    # output's recorded type must hold, an inner value's need not, so they go, and ONNX
    # Runtime infers them.
    kept = [info for info in model.graph.value_info if info.name not in marked]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    options = ort.SessionOptions()
    options.graph_optimization_level = session.level(optimization)
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="modelexport-verify-") as tmp:
        if model.ByteSize() > PROTOBUF_LIMIT:
            source: Any = str(Path(tmp) / path.name)
            onnx.save_model(model, source, save_as_external_data=True)
        else:
            source = model.SerializeToString()
        del model  # its weights are in the session now, or in the file
        try:
            runner = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types
            raise ExportFailed(f"{path.name}: onnxruntime refuses the model: "
                               f"{describe(exc)}") from exc
    try:
        got = runner.run(None, feed)
    except Exception as exc:  # onnxruntime raises its own types
        shapes = ", ".join(f"{name}={'x'.join(map(str, array.shape))}"
                           for name, array in feed.items())
        raise UsageError(f"{path.name}: does not run on the inputs {shapes} (--input): "
                         f"{describe(exc)}") from exc
    return {out.name: value for out, value in zip(runner.get_outputs(), got, strict=True)}


def _same_model(model: tags.Tagged, other: tags.Tagged) -> None:
    """UsageError unless ``other`` is an export of the same model: the same inputs and
    outputs by name, and modules in common."""
    ours, theirs = ({sig.name for sig in m.graph.inputs} for m in (model, other))
    if ours != theirs:
        raise UsageError(f"{other.path.name}: its inputs ({', '.join(sorted(theirs))}) are "
                         f"not {model.path.name}'s ({', '.join(sorted(ours))})")
    ours, theirs = ({sig.name for sig in m.graph.outputs} for m in (model, other))
    if ours != theirs:
        raise UsageError(f"{other.path.name}: its outputs ({', '.join(sorted(theirs))}) are "
                         f"not {model.path.name}'s ({', '.join(sorted(ours))})")
    if not set(model.classes) & set(other.classes):
        raise UsageError(f"{other.path.name}: its tags name none of {model.path.name}'s "
                         "modules: not an export of the same model")


def _cast(feed: dict[str, Any], graph: onnxfile.Skeleton) -> dict[str, Any]:
    """The inputs in the element types ``graph`` takes (an fp16 conversion may take
    float16)."""
    import numpy as np

    cast = {}
    for name, array in feed.items():
        wanted = next((sig.dtype for sig in graph.inputs if sig.name == name), "")
        try:
            cast[name] = array.astype(np.dtype(wanted), copy=False) if wanted else array
        except TypeError:  # a type numpy lacks (bfloat16): onnxruntime will say
            cast[name] = array
    return cast


def _label(path: Path, optimization: str, both: tuple[str, str]) -> str:
    return f"{path.name} (ORT {optimization})" if both[0] != both[1] else path.name
