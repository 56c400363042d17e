"""The HTP pipeline: load, inputs, trace, export, project, write once, validate.

Each phase is timed with ``time.perf_counter``; the timings go into the sidecar.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from modelexport import inputs as inputs_mod
from modelexport import metadata
from modelexport.errors import ExportFailed, MetadataInvalid, ModelExportError, first_line
from modelexport.htp import dynamo, torchscript
from modelexport.htp.project import GraphNode, Resolver, Tag, project, statistics
from modelexport.htp.trace import CallTree, Recorder, trace
from modelexport.inputs import InputSpec
from modelexport.sources import Source, load

log = logging.getLogger(__name__)

Exporter = Literal["auto", "torchscript", "dynamo"]
# Tried in this order under "auto". TorchScript first: on the models we measured it exports
# 2-10x faster than dynamo below 100 M parameters and as fast above, and its tags are as
# complete (README, "Choosing the exporter"). dynamo covers what TorchScript cannot trace.
AUTO_ORDER = ("torchscript", "dynamo")
BACKENDS = {"torchscript": torchscript.export, "dynamo": dynamo.export}
UNATTRIBUTED_WARNING = 0.02  # share of nodes above which an export warns
# One protobuf message cannot exceed 2 GiB; leave room for the graph itself.
EXTERNAL_DATA_BYTES = int(1.8 * 2**30)


class ExportedGraph(Protocol):
    exporter: str
    opset: int
    nodes: list[GraphNode]

    @staticmethod
    def resolver(tree: CallTree) -> Resolver: ...

    def write(self, node_props: list[dict[str, str]], model_props: dict[str, str],
              output: Path) -> None: ...


@dataclass(frozen=True)
class ExportOptions:
    exporter: Exporter = "auto"
    opset: int | None = None
    clean: bool = False
    validate: bool = False
    tolerance: float = 1e-4
    inputs: tuple[InputSpec, ...] = ()
    use_cache: bool = False
    seed: int = 0
    external_data: bool = False  # weights in "<name>.onnx.data" (always, above ~1.8 GB)


@dataclass
class ExportResult:
    onnx_path: Path
    sidecar_path: Path
    sidecar: dict[str, Any]

    @property
    def statistics(self) -> dict[str, Any]:
        return self.sidecar["statistics"]


PHASES = ("load", "inputs", "trace", "export", "project", "write", "validate")


@dataclass
class Timer:
    phases: dict[str, float] = field(default_factory=dict)

    def snapshot(self) -> dict[str, float]:
        """Seconds per phase, every phase present (0 until it has run)."""
        seconds = {phase: 0.0 for phase in PHASES} | self.phases
        return {phase: round(value, 6) for phase, value in seconds.items()}

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + time.perf_counter() - started


def export(source: Source, output: Path, options: ExportOptions) -> ExportResult:
    """Load the model described by ``source`` and export it to ``output`` with tags."""
    timer = Timer()
    with timer("load"):
        loaded = load(source)
    if loaded.download_s:
        timer.phases["download"] = loaded.download_s
        timer.phases["load"] -= loaded.download_s
    return export_module(loaded.model, loaded.config, output, options, source, timer)


def export_module(
    model: torch.nn.Module, config: Any, output: Path, options: ExportOptions,
    source: Source, timer: Timer | None = None,
) -> ExportResult:
    """Export an already-loaded model: the part of ``export`` that the benchmark times."""
    timer = timer or Timer()
    # A KV-cache object in the outputs breaks both exporters and is rarely what is wanted.
    # The argument, not the config: encoder-decoders keep a config copy per stack.
    accepts = inspect.signature(model.forward).parameters
    constants = {"use_cache": False} if "use_cache" in accepts and not options.use_cache else {}
    with timer("inputs"):
        specs = inputs_mod.default_specs(model, config, list(options.inputs))
        tensors = inputs_mod.make(specs, options.seed)

    output = output.absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    external_data = options.external_data or _parameter_bytes(model) > EXTERNAL_DATA_BYTES
    # A scratch folder beside the output, only for what the TorchScript exporter writes on
    # its own (external data); every other export stays in memory until our one write.
    workdir = (
        Path(tempfile.mkdtemp(prefix=".modelexport-", dir=output.parent)) if external_data
        else None
    )
    try:
        with timer("export"), Recorder(model) as recorder:
            graph, fallback = _export_graph(
                model, tensors, constants, workdir / output.name if workdir else None, options,
                source, external_data,
            )
        with timer("trace"):
            # The hooks saw the exporter's forward pass; run one only if they saw none.
            tree = recorder.tree() or trace(model, {**tensors, **constants})
        with timer("project"):
            param_owner = {name: name.rpartition(".")[0] for name, _ in model.named_parameters()}
            tags = project(graph.nodes, tree, graph.resolver(tree), param_owner)
            stats = statistics(graph.nodes, tags, tree)
            _check_provenance(stats, source, graph.exporter)
            node_props = [{} if options.clean else _node_props(t, tree) for t in tags]
        with timer("write"):
            graph.write(node_props, {metadata.MODEL_VERSION_KEY: str(metadata.SCHEMA_VERSION)},
                        output)
            sidecar = _sidecar(
                source, options, graph, fallback, specs, tree, tags, stats, external_data,
                output.name,
            )
        with timer("validate"):
            sidecar["validation"] = _validate(output, model, tensors, constants, options)
            sidecar["timings"] = timer.snapshot()  # final figures are written below
            problems = metadata.schema_errors(sidecar, "hierarchy.schema.json")
            if options.validate and not problems:
                problems = metadata.agreement_problems(output, sidecar)
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    sidecar["timings"] = timer.snapshot()
    sidecar_file = metadata.sidecar_path(output)
    metadata.write_json(sidecar_file, sidecar)
    if problems:
        raise MetadataInvalid(f"{source.label}: the sidecar it wrote is invalid: {problems[0]}")
    parity = sidecar["validation"]["parity"]
    if parity is not None and not parity["passed"]:
        raise ExportFailed(
            f"{source.label}: onnxruntime output differs from PyTorch by "
            f"{parity['max_abs_diff']:.3g} (> {parity['tolerance']:g}); files kept: {output}"
        )
    return ExportResult(output, sidecar_file, sidecar)


def _export_graph(
    model: torch.nn.Module, tensors: dict[str, torch.Tensor], constants: dict[str, Any],
    scratch: Path | None, options: ExportOptions, source: Source, external_data: bool,
) -> tuple[ExportedGraph, dict[str, str] | None]:
    order = AUTO_ORDER if options.exporter == "auto" else (options.exporter,)
    if options.exporter == "auto" and options.opset is not None \
            and options.opset < dynamo.MIN_OPSET:
        order = ("torchscript",)
    first_error: tuple[str, str] | None = None
    for name in order:
        try:
            graph = BACKENDS[name](model, tensors, constants, options.opset, scratch, external_data)
        except ModelExportError:
            raise
        except Exception as exc:  # exporters fail in many ways; each is one line for the user
            message = _first_line(exc)
            log.debug("%s export failed", name, exc_info=True)
            if first_error is None:
                first_error = (name, message)
            if scratch:
                shutil.rmtree(scratch.parent)
                scratch.parent.mkdir()
            continue
        if first_error is not None:
            log.warning("%s: %s export failed (%s); exported with %s instead",
                        source.label, first_error[0], first_error[1], name)
            return graph, {"from": first_error[0], "error": first_error[1]}
        return graph, None
    tried = " and ".join(order)
    assert first_error is not None
    raise ExportFailed(f"{source.label}: {tried} export failed: {first_error[1]}")


def _check_provenance(stats: dict[str, Any], source: Source, exporter: str) -> None:
    """Refuse a graph whose provenance is gone; warn when much of it is missing.

    An exporter that stops recording provenance (a changed metadata format, a pass that
    drops it) must not turn into a file that merely looks tagged.
    """
    if stats["nodes"] and not stats["exact"]:
        raise ExportFailed(
            f"{source.label}: the {exporter} exporter recorded no provenance on any of "
            f"{stats['nodes']} nodes; no tags could be trusted, nothing was written"
        )
    share = stats["unattributed"] / max(stats["nodes"], 1)
    if share > UNATTRIBUTED_WARNING:
        log.warning("%s: %d of %d nodes (%.1f %%) are unattributed: %s", source.label,
                    stats["unattributed"], stats["nodes"], 100 * share,
                    stats["unattributed_reasons"])


def _node_props(tag: Tag, tree: CallTree) -> dict[str, str]:
    if tag.module is None:
        return {}
    return {
        metadata.MODULE_KEY: tag.module,
        metadata.CHAIN_KEY: tree.class_chain(tag.module),
        metadata.HOW_KEY: tag.how,
    }


def _sidecar(
    source: Source, options: ExportOptions, graph: ExportedGraph,
    fallback: dict[str, str] | None, specs: list[InputSpec], tree: CallTree, tags: list[Tag],
    stats: dict[str, Any], external_data: bool, onnx_file: str,
) -> dict[str, Any]:
    per_module = Counter(t.module for t in tags if t.module is not None)
    counts = tree.call_counts()
    nodes = []
    for node, tag in zip(graph.nodes, tags, strict=True):
        entry: dict[str, Any] = {"name": node.name, "op_type": node.op_type,
                                 "module": tag.module, "how": tag.how}
        if tag.reason:
            entry["reason"] = tag.reason
        nodes.append(entry)
    return {
        **metadata.header(),
        "source": source.to_json(),
        "export": {
            "requested": options.exporter,
            "exporter": graph.exporter,
            "opset": graph.opset,
            "fallback": fallback,
            "clean": options.clean,
            "external_data": external_data,
            "onnx_file": onnx_file,
        },
        "inputs": [spec.to_json() for spec in specs],
        "modules": [
            {
                "path": path,
                "class": cls,
                "class_chain": tree.class_chain(path),
                "calls": counts.get(path, 0),
                "parent": tree.parent_of(path),
                "nodes": per_module.get(path, 0),
            }
            for path, cls in tree.classes.items()
        ],
        "nodes": nodes,
        "statistics": stats,
    }


def _validate(
    path: Path, model: torch.nn.Module, tensors: dict[str, torch.Tensor],
    constants: dict[str, Any], options: ExportOptions,
) -> dict[str, Any]:
    """onnx.checker (full) and onnxruntime-vs-PyTorch parity, when asked for."""
    if not options.validate:
        return {"checker": None, "parity": None}
    import onnx
    import onnxruntime

    try:
        onnx.checker.check_model(str(path), full_check=True)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {i.name: tensors[i.name].numpy() for i in session.get_inputs()}
        got = session.run(None, feed)
    except Exception as exc:  # checker and runtime raise their own types
        raise ExportFailed(f"{path.name}: invalid ONNX: {_first_line(exc)}") from exc
    with torch.no_grad():
        expected = [t.numpy() for t in _flatten(model(**tensors, **constants))]
    want_shapes, got_shapes = [w.shape for w in expected], [h.shape for h in got]
    if want_shapes != got_shapes:
        raise ExportFailed(
            f"{path.name}: onnxruntime outputs {got_shapes} do not match PyTorch's {want_shapes}"
        )
    diff = max(
        (float(abs(w.astype("float64") - h.astype("float64")).max())
         for w, h in zip(expected, got, strict=True) if w.size),
        default=0.0,
    )
    return {
        "checker": True,
        "parity": {"outputs": len(got), "max_abs_diff": diff, "tolerance": options.tolerance,
                   "passed": diff <= options.tolerance},
    }


def _flatten(value: Any) -> list[torch.Tensor]:
    """The tensors of a model output in the order the exporters flatten them."""
    if isinstance(value, torch.Tensor):
        return [value]
    if hasattr(value, "to_tuple"):
        value = value.to_tuple()
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _flatten(item)]
    return []


def _parameter_bytes(model: torch.nn.Module) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def _first_line(exc: BaseException) -> str:
    """``Type: first line``, plus the root cause when the exporter wrapped one."""

    def line(e: BaseException) -> str:
        return f"{type(e).__name__}: {first_line(e)}"

    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    message = line(exc) if root is exc else f"{line(exc)} (cause: {line(root)})"
    return message[:500]
