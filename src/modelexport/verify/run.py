"""Two runs of a tagged export compared module by module: the export against the PyTorch
model it came from, against another file with the same tags (an fp16 or int8 conversion,
another opset or exporter), or against itself at another ONNX Runtime optimization level.
Each ONNX run marks the values that cross a module's edge (``boundaries``) as extra outputs
of an ordinary ONNX Runtime session.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelexport import modulepath, onnxfile, sources, tags
from modelexport.errors import ExportFailed, ModelExportError, UsageError, describe
from modelexport.inference import session
from modelexport.inputs import InputSpec
from modelexport.verify.boundaries import Boundary, boundaries
from modelexport.verify.divergence import Gap, Verification, compare, matched
from modelexport.verify.isolate import run_alone

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
    wanted = _crossing(outputs, edges)
    feed = session.feeds(model, overrides or [], seed)
    other = model if candidate == reference else tags.read(candidate)
    _same_model(model, other)
    found = values(reference, wanted, feed, optimizations[0])
    # Another exporter names its values otherwise: the candidate's own edges are marked too,
    # and paired with the reference's module by module.
    their_edges = {e.module: e for e in boundaries(other.graph, other.modules, depth)}
    their_feed = _cast(feed, other.graph)
    theirs = values(candidate, [*wanted, *_crossing([], their_edges.values())], their_feed,
                    optimizations[1])
    pairs = {name: name for name in found if name in theirs}
    for edge in edges:
        lacking = {name: found[name] for name in edge.outputs
                   if name in found and name not in pairs}
        if lacking and edge.module in their_edges:
            offered = {name: theirs[name] for name in their_edges[edge.module].outputs
                       if name in theirs and name not in found}
            pairs.update(matched(lacking, offered))
    levels = optimizations[0] != optimizations[1]  # said only where they differ
    labels = (_label(reference, optimizations[0], levels),
              _label(candidate, optimizations[1], levels))
    alone = _Alone(candidate, other, their_edges, found, {**theirs, **their_feed}, pairs,
                   optimizations[1])
    return _compared(edges, model.classes, feed, outputs, found, alone, tolerance, labels)


def against_pytorch(path: Path, optimization: str = "all",
                    overrides: list[InputSpec] | None = None, seed: int = 0,
                    depth: int | None = None, tolerance: float = 1e-4) -> Verification:
    """The export run beside the PyTorch model it came from (its sidecar names it; loaded
    as the export loaded it, a config's random weights with the export's seed), on the
    export's inputs, each module's gap (to ``depth``)."""
    from modelexport.verify import reference

    model = tags.read(path, whole=True)
    source = reference.source_of(model)
    feed = session.feeds(model, overrides or [], seed)
    return against_module(model, sources.load(source).model, feed, optimization, depth,
                          tolerance)


def against_module(model: tags.Tagged, module: Any, feed: dict[str, Any],
                   optimization: str = "all", depth: int | None = None,
                   tolerance: float = 1e-4) -> Verification:
    """The tagged export ``model`` run beside the loaded PyTorch ``module`` on ``feed``."""
    from modelexport.verify import reference

    edges = boundaries(model.graph, model.modules, depth)
    outputs = [sig.name for sig in model.graph.outputs]
    theirs = values(model.path, _crossing(outputs, edges), feed, optimization)
    found = reference.values(module, edges, outputs, feed, theirs)
    alone = _Alone(model.path, model, {e.module: e for e in edges}, found,
                   {**theirs, **feed}, {name: name for name in found if name in theirs},
                   optimization)
    return _compared(edges, model.classes, feed, outputs, found, alone, tolerance,
                     ("PyTorch", _label(model.path, optimization, True)))


@dataclass(frozen=True)
class _Alone:
    """The candidate's side of a verification: its values, how they pair with the
    reference's (reference name -> candidate name), and what is needed to run one of its
    modules alone on the reference's values."""

    path: Path
    model: tags.Tagged
    edges: dict[str, Boundary]
    reference: dict[str, Any]
    theirs: dict[str, Any]  # its values by its names, its (cast) inputs among them
    pairs: dict[str, str]
    optimization: str

    @property
    def aligned(self) -> dict[str, Any]:
        """Its values by the reference's names."""
        return {ours: self.theirs[their] for ours, their in self.pairs.items()}

    def measured(self, modules: list[str]) -> dict[str, float]:
        """What each of ``modules`` adds, run alone in the candidate on the reference's
        values (its own where the reference has none): its outputs' largest gap. A module
        that cannot run alone is left out: its estimate stands."""
        if not modules:
            return {}
        import numpy as np
        import onnx

        proto = onnx.load(str(self.path))
        back = {their: ours for ours, their in self.pairs.items()}
        fed = {name: (np.asarray(self.reference[back[name]]).astype(value.dtype)
                      if back.get(name) in self.reference else value)
               for name, value in self.theirs.items()}
        found = {}
        for module in modules:
            nodes = [i for i, owner in enumerate(self.model.modules)
                     if module in modulepath.ancestors(owner or "")]
            outputs = [name for name in self.edges[module].outputs if name in back]
            if not outputs:
                continue
            try:
                got = run_alone(proto, nodes, fed, outputs, self.optimization)
            except ModelExportError:
                continue
            found[module] = Gap.worst(Gap.of(self.reference[back[name]], got[name])
                                      for name in outputs).max_abs
        return found


MEASURED_LIMIT = 64  # modules run alone at most: the first suspects in graph order


def _compared(edges: list[Boundary], classes: dict[str, str], feed: dict[str, Any],
              outputs: list[str], found: dict[str, Any], alone: _Alone, tolerance: float,
              labels: tuple[str, str]) -> Verification:
    """The verification, with what each module whose estimate crosses the tolerance adds
    measured by running it alone."""
    aligned = alone.aligned
    estimated = compare(edges, classes, feed, outputs, found, aligned, tolerance, labels)
    suspects = [m.module for m in estimated.modules
                if m.added > tolerance and m.module in alone.edges][:MEASURED_LIMIT]
    return compare(edges, classes, feed, outputs, found, aligned, tolerance, labels,
                   alone.measured(suspects))


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


def _label(path: Path, optimization: str, level: bool) -> str:
    return f"{path.name} (ORT {optimization})" if level else path.name


def _crossing(outputs: list[str], edges: Iterable[Boundary]) -> list[str]:
    """The graph's outputs and every value that crosses a module's edge, once each."""
    return list(dict.fromkeys([*outputs, *(v for e in edges for v in (*e.inputs,
                                                                       *e.outputs))]))
