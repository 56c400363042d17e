"""The HTP (Hierarchical Trace-and-Project) pipeline: load, inputs, trace, export, project,
write once, validate.

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from modelexport import inputs as inputs_mod
from modelexport import kvcache, tags
from modelexport import sidecar as sidecar_mod
from modelexport.errors import (
    ExportFailed,
    MetadataInvalid,
    ModelExportError,
    UsageError,
    describe,
)
from modelexport.htp import dynamo, naming, torchscript
from modelexport.htp.graph import ExportedGraph
from modelexport.htp.options import EXPORTERS, PHASES, ExportOptions
from modelexport.htp.project import Tag, project, statistics
from modelexport.htp.trace import CallTree, Recorder, trace
from modelexport.htp.wire import Shape
from modelexport.inputs import Axes, InputSpec
from modelexport.sidecar import (
    ExportInfo,
    Fallback,
    ModuleEntry,
    NodeEntry,
    Sidecar,
    TagStatistics,
    Validation,
)
from modelexport.sources import Source, load
from modelexport.verify import checker, generation, parity
from modelexport.verify.divergence import Diverged, Verification

log = logging.getLogger(__name__)

UNATTRIBUTED_WARNING = 0.02  # share of nodes above which an export warns
# One protobuf message cannot exceed 2 GiB; leave room for the graph itself.
EXTERNAL_DATA_BYTES = int(1.8 * 2**30)


BACKENDS: dict[str, Callable[..., ExportedGraph]] = {"torchscript": torchscript.export,
                                                     "dynamo": dynamo.export}


@dataclass
class ExportResult:
    onnx_path: Path
    sidecar_path: Path
    sidecar: Sidecar

    @property
    def statistics(self) -> TagStatistics:
        return self.sidecar.statistics


@dataclass
class Timer:
    phases: dict[str, float] = field(default_factory=dict)

    def snapshot(self) -> dict[str, float]:
        """Seconds per phase, every phase present (0 until it has run)."""
        seconds = dict.fromkeys(PHASES, 0.0) | self.phases
        return {phase: round(value, 6) for phase, value in seconds.items()}

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[phase] = self.phases.get(phase, 0.0) + time.perf_counter() - started


@dataclass
class _Run:
    """One export in progress: what goes in, and what each phase adds."""

    model: torch.nn.Module
    source: Source
    options: ExportOptions
    output: Path
    timer: Timer
    specs: list[InputSpec]
    tensors: dict[str, torch.Tensor]
    constants: dict[str, Any]
    external_data: bool
    axes: Axes  # the dynamic axes of the inputs


def export(source: Source, output: Path, options: ExportOptions) -> ExportResult:
    """Load the model described by ``source`` and export it to ``output`` with tags."""
    timer = Timer()
    with timer("load"):
        loaded = load(source)
    if loaded.download_s:
        timer.phases["download"] = loaded.download_s
        timer.phases["load"] -= loaded.download_s
    return export_module(loaded.model, loaded.config, output, options, source, timer,
                         loaded.examples)


def export_module(
    model: torch.nn.Module, config: Any, output: Path, options: ExportOptions,
    source: Source, timer: Timer | None = None,
    examples: dict[str, torch.Tensor] | None = None,
) -> ExportResult:
    """Export an already-loaded model: the part of ``export`` that the benchmark times.
    ``examples``: inputs the model came with (a factory's), used instead of made ones."""
    run = _prepare(model, config, output, options, source, timer or Timer(), examples)
    # A scratch folder beside the output, only for what the TorchScript exporter writes on
    # its own (external data); every other export stays in memory until our one write.
    workdir = (Path(tempfile.mkdtemp(prefix=".modelexport-", dir=run.output.parent))
               if run.external_data else None)
    try:
        with run.timer("export"), Recorder(model) as recorder:
            graph, fallback = _export_graph(run, workdir / output.name if workdir else None)
        with run.timer("trace"):
            # The hooks saw the exporter's forward pass; run one only if they saw none.
            tree = recorder.tree() or trace(model, {**inputs_mod.nested(run.tensors),
                                                    **run.constants})
        with run.timer("project"):
            tags, stats = _tag(run, graph, tree)
        with run.timer("write"):
            renames = (naming.input_renames(graph, list(run.tensors))
                       | naming.output_renames(graph, recorder.output_names))
            sizes = {name: tuple(tensor.shape) for name, tensor in run.tensors.items()}
            shapes = naming.named_dims(graph, run.axes, sizes, recorder.output_sizes, renames)
            record = _write(run, graph, fallback, tree, tags, stats, renames, shapes)
        with run.timer("validate"):
            record = replace(record, validation=_validate(run), timings=run.timer.snapshot())
            problems = record.schema_errors()
            if options.validate and not problems:
                problems = sidecar_mod.agreement_problems(run.output, record)
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    return _finish(run, replace(record, timings=run.timer.snapshot()), problems)


def _prepare(model: torch.nn.Module, config: Any, output: Path, options: ExportOptions,
             source: Source, timer: Timer, examples: dict[str, torch.Tensor] | None) -> _Run:
    # A KV-cache object in the outputs breaks both exporters (a decoder's cache is exported
    # as tensors with its task, ``kvcache``). The argument, not the config: encoder-decoders
    # keep a config copy per stack.
    accepts = inspect.signature(model.forward).parameters
    constants = {"use_cache": False} if "use_cache" in accepts else {}
    with timer("inputs"):
        if examples and not options.inputs:
            specs = inputs_mod.specs_of(examples)
            axes = inputs_mod.traceable(specs, inputs_mod.axes_for(specs, options.dynamic))
            tensors = dict(examples)
        else:
            specs, axes = _specs(model, config, options)
            tensors = inputs_mod.make(specs, options.seed)
    output = output.absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    external_data = options.external_data or _parameter_bytes(model) > EXTERNAL_DATA_BYTES
    return _Run(model, source, options, output, timer, specs, tensors, constants, external_data,
                axes)


def _specs(model: torch.nn.Module, config: Any, options: ExportOptions
           ) -> tuple[list[InputSpec], Axes]:
    layout = kvcache.layout_of(model)
    if layout is not None:
        if options.inputs or options.dynamic is not None:
            raise UsageError(f"--input, --dynamic and --static do not go with --task "
                             f"{kvcache.TASK}: its inputs follow from the model's cache")
        return kvcache.specs(layout, kvcache.vocabulary(model)), kvcache.axes(layout)
    specs = inputs_mod.default_specs(model, config, list(options.inputs))
    axes = inputs_mod.axes_for(specs, options.dynamic)
    if any(0 in dims for dims in axes.values()):
        # torch.export fixes a dimension traced at size 1: trace a dynamic batch at 2.
        specs = inputs_mod.default_specs(model, config, list(options.inputs), batch=2)
    return specs, inputs_mod.traceable(specs, axes)


def _tag(run: _Run, graph: ExportedGraph, tree: CallTree) -> tuple[list[Tag], TagStatistics]:
    param_owner = {name: name.rpartition(".")[0] for name, _ in run.model.named_parameters()}
    tags = project(graph.nodes, tree, graph.resolver(tree), param_owner)
    stats = statistics(graph.nodes, tags, tree)
    _check_provenance(stats, run.source, graph.exporter)
    return tags, stats


def _write(run: _Run, graph: ExportedGraph, fallback: Fallback | None, tree: CallTree,
           tags: list[Tag], stats: TagStatistics, renames: dict[str, str],
           shapes: dict[str, Shape]) -> Sidecar:
    """The ONNX file with its tags, and the sidecar record (written by ``_finish``)."""
    record = _sidecar(run, graph, fallback, tree, tags, stats)
    chains = {m.path: m.class_chain for m in record.modules}
    node_props = [{} if run.options.clean else {**sidecar_mod.expected_tags(entry, chains, False),
                                                **sidecar_mod.namespace(entry)}
                  for entry in record.nodes]
    graph.write(node_props, {sidecar_mod.MODEL_VERSION_KEY: str(sidecar_mod.SCHEMA_VERSION)},
                run.output, renames, shapes)
    return record


def _finish(run: _Run, record: Sidecar, problems: list[str]) -> ExportResult:
    sidecar_file = sidecar_mod.sidecar_path(run.output)
    if run.options.sidecar:
        record.write(sidecar_file)
    if problems:
        raise MetadataInvalid(f"{run.source.label}: the sidecar it wrote is invalid: "
                              f"{problems[0]}")
    parity = record.validation.parity
    if parity is not None and not parity.passed:
        message = (f"{run.source.label}: onnxruntime output differs from PyTorch by "
                   f"{parity.max_abs_diff:.3g} (> {parity.tolerance:g})")
        found = _module_by_module(run)
        first = found.first if found else None
        if first is not None:
            message += f"; {first.said_first()}; `modelexport verify` shows every module)"
        message += f"; files kept: {run.output}"
        raise ExportFailed(message) if found is None else Diverged(message, found)
    return ExportResult(run.output, sidecar_file, record)


def _module_by_module(run: _Run) -> Verification | None:
    """A failed parity check compared module by module on the traced inputs, to say where
    the gap starts; None where that comparison fails (the failure stands without it)."""
    from modelexport.verify.run import against_module

    try:
        return against_module(tags.read(run.output), run.model,
                              {k: v.numpy() for k, v in run.tensors.items()},
                              tolerance=run.options.tolerance)
    except ModelExportError:
        return None


def _export_graph(run: _Run, scratch: Path | None) -> tuple[ExportedGraph, Fallback | None]:
    options = run.options
    order = EXPORTERS if options.exporter == "auto" else (options.exporter,)
    if kvcache.layout_of(run.model) is not None:
        if options.exporter == "torchscript":
            raise UsageError(f"{run.source.label}: the TorchScript exporter cannot take a KV "
                             f"cache ({kvcache.TASK}); use --exporter dynamo or auto")
        order = ("dynamo",)
    if options.exporter == "auto" and options.opset is not None \
            and options.opset < dynamo.MIN_OPSET:
        order = ("torchscript",)
    first_error: Fallback | None = None
    for name in order:
        try:
            graph = BACKENDS[name](run.model, run.tensors, run.constants, options.opset,
                                   scratch, run.external_data, run.axes)
        except ModelExportError:
            raise
        except Exception as exc:  # exporters fail in many ways; each is one line for the user
            log.debug("%s export failed", name, exc_info=True)
            first_error = first_error or Fallback(name, describe(exc))
            if scratch:
                shutil.rmtree(scratch.parent)
                scratch.parent.mkdir()
            continue
        if first_error is not None:
            log.warning("%s: %s export failed (%s); exported with %s instead",
                        run.source.label, first_error.exporter, first_error.error, name)
        return graph, first_error
    assert first_error is not None
    raise ExportFailed(f"{run.source.label}: {' and '.join(order)} export failed: "
                       f"{first_error.error}")


def _check_provenance(stats: TagStatistics, source: Source, exporter: str) -> None:
    """Refuse a graph whose provenance is gone; warn when much of it is missing.

    An exporter that stops recording provenance (a changed metadata format, a pass that
    drops it) must not turn into a file that merely looks tagged.
    """
    if stats.nodes and not stats.exact:
        raise ExportFailed(
            f"{source.label}: the {exporter} exporter recorded no provenance on any of "
            f"{stats.nodes} nodes; no tags could be trusted, nothing was written"
        )
    share = stats.unattributed / max(stats.nodes, 1)
    if share > UNATTRIBUTED_WARNING:
        log.warning("%s: %d of %d nodes (%.1f %%) are unattributed: %s", source.label,
                    stats.unattributed, stats.nodes, 100 * share, stats.unattributed_reasons)


def _sidecar(run: _Run, graph: ExportedGraph, fallback: Fallback | None, tree: CallTree,
             tags: list[Tag], stats: TagStatistics) -> Sidecar:
    per_module = Counter(t.module for t in tags if t.module is not None)
    counts = tree.call_counts()
    return Sidecar(
        source=run.source,
        export=ExportInfo(
            requested=run.options.exporter, exporter=graph.exporter, opset=graph.opset,
            fallback=fallback, clean=run.options.clean, external_data=run.external_data,
            onnx_file=run.output.name,
        ),
        inputs=tuple(run.specs),
        modules=tuple(
            ModuleEntry(path, cls, tree.class_chain(path), counts.get(path, 0),
                        tree.parent_of(path), per_module.get(path, 0))
            for path, cls in tree.classes.items()
        ),
        nodes=tuple(NodeEntry(node.name, node.op_type, tag.module, tag.how, tag.reason)
                    for node, tag in zip(graph.nodes, tags, strict=True)),
        statistics=stats,
        timings=run.timer.snapshot(),
        validation=Validation(),
    )


def _validate(run: _Run) -> Validation:
    """onnx.checker (full) and onnxruntime-vs-PyTorch parity, when asked for: at the traced
    shapes, and again at other sizes along the dynamic axes when there are any."""
    if not run.options.validate:
        return Validation()
    if kvcache.layout_of(run.model) is not None:
        checker.check(run.output)
        return Validation(True, generation.compare(run.output, run.model,
                                                   run.options.tolerance, run.options.seed))
    feeds = [run.tensors]
    if run.axes:
        feeds.append(inputs_mod.make(inputs_mod.resized(run.specs, run.axes),
                                     run.options.seed + 1))
    checker.check(run.output)
    return Validation(True, parity.compare(run.output, run.model, feeds, run.constants,
                                           run.options.tolerance))


def _parameter_bytes(model: torch.nn.Module) -> int:
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)
